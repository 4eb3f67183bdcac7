"""Quantization-aware training with tensorflow-model-optimization, confined to this module.

tfmot only takes legacy ``tf_keras`` models, and importing it switches TensorFlow's Keras alias to
``tf_keras`` for the whole process. So :func:`run_qat` runs this module in a subprocess
(``python -m kpose.export.qat ...``); nothing here is imported by the rest of kpose.

In the subprocess:

1. The float32 inference network of the ``.keras`` model is rebuilt layer by layer in
   tf_keras with the same weights (:func:`tf_keras_twin`; the backbone sub-model is inlined,
   :class:`~kpose.models.KeypointConv2D` becomes a grouped ``Conv2D``, kpose's other layers
   get their twins in :mod:`kpose.export.qat_layers`), and the twin is checked to give the
   Keras model's heatmaps on real crops (:func:`check_twin`).
2. ``quantize_model`` wraps it, with quantize configs for the twins of kpose's layers;
   BatchNorm layers are frozen (inference mode), so fine-tuning adapts the weights to the
   quantizers without re-estimating the trained statistics on small batches.
3. The quantizers' ranges start from the float model's activations on real crops
   (:func:`initialize_ranges`), then the model is fine-tuned with ``fit`` on the training
   config's pipeline and heatmap loss.
4. It is converted like a PTQ file (:mod:`kpose.export.graph` serving function: uint8 in,
   in-graph decoder, keypoints and scores out, metadata inside, validated), int8 from the
   fake-quant ranges.
"""

from __future__ import annotations

import argparse
import inspect
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from kpose.errors import KposeError


ERROR_PREFIX = "kpose qat: error: "


class QATError(KposeError):
    """Quantization-aware training cannot run as asked."""


def run_qat(
    model: str | Path,
    config: str | Path,
    output: str | Path,
    *,
    epochs: int = 1,
    learning_rate: float | None = None,
    batch_size: int = 16,
    steps_per_epoch: int | None = None,
) -> Path:
    """Fine-tune ``model`` with QAT on ``config``'s training split and write an int8 TFLite
    file to ``output``, in a subprocess (tfmot's switch to the legacy Keras stays there).

    Raises:
        QATError: the subprocess failed; its last error line is in the message.
    """
    command = [
        sys.executable, "-m", "kpose.export.qat", str(model), "--config", str(config), "-o", str(output),
        "--epochs", str(epochs), "--batch-size", str(batch_size),
    ]
    if learning_rate is not None:
        command += ["--learning-rate", str(learning_rate)]
    if steps_per_epoch:
        command += ["--steps-per-epoch", str(steps_per_epoch)]
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    result = subprocess.run(command, env=env, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        message = lines[-1].removeprefix(ERROR_PREFIX) if lines else f"QAT subprocess exited with {result.returncode}"
        raise QATError(message)
    return Path(output)


# --- everything below runs in the subprocess ------------------------------------------------


_BASE_ARGUMENTS = {"name", "dtype", "trainable"}


def _standard_twin(layer, tf_keras) -> Any:
    """A tf_keras layer of the same class built from the Keras 3 layer's config (only the
    arguments the tf_keras class takes; initializers are irrelevant, weights are copied)."""
    cls = getattr(tf_keras.layers, type(layer).__name__, None)
    if cls is None:
        raise QATError(f"layer {layer.name!r} ({type(layer).__name__}) has no tf_keras twin for QAT")
    accepted = set(inspect.signature(cls.__init__).parameters) | _BASE_ARGUMENTS
    config = {
        key: value for key, value in layer.get_config().items()
        if key in accepted and not key.endswith(("_initializer", "_regularizer", "_constraint"))
    }
    config["dtype"] = "float32"
    return cls(**config)


def tf_keras_twin(network) -> Any:
    """The tf_keras twin of a float32 Keras 3 inference network.

    Returns:
        tf_keras.Model ``image`` -> heatmaps with the network's weights.
    """
    import keras
    import numpy as np
    import tf_keras

    from kpose.export import qat_layers
    from kpose.models.layers import GELU, ImageNormalization, KeypointConv2D, KeypointPixelShuffle

    copies: list[tuple[Any, list]] = []  # (twin layer, weights to set once built)

    def operation_twin(kind: str, args: tuple) -> Any:
        tensors = [a for a in args if not isinstance(a, (int, float))]
        if kind not in ("Add", "Multiply"):
            raise QATError(f"operation {kind} in the model graph has no tf_keras twin for QAT")
        if len(tensors) == 2:
            return getattr(tf_keras.layers, kind)()(tensors)
        (constant,) = [a for a in args if isinstance(a, (int, float))]
        return qat_layers.ScalarOp(kind, constant)(tensors[0])

    def twin_of(layer):
        if isinstance(layer, keras.Model):
            return lambda *args, **kwargs: layer._run_through_graph(args[0], operation_fn=twin_of)
        if not isinstance(layer, keras.layers.Layer):  # an op on KerasTensors, e.g. ``x + 3.0``
            return lambda *args, **kwargs: operation_twin(type(layer).__name__, args)
        name = layer.name
        if isinstance(layer, ImageNormalization):
            return qat_layers.Normalization(layer.mean, layer.std, layer.bgr, name=name)
        if isinstance(layer, GELU):
            return qat_layers.Gelu(name=name)
        if isinstance(layer, KeypointPixelShuffle):
            return qat_layers.PixelShuffle(layer.num_keypoints, layer.upscale, name=name)
        if isinstance(layer, keras.layers.Activation) and layer.get_config()["activation"] in ("hard_swish", "hard_silu"):
            return qat_layers.HardSwish(name=name)
        if isinstance(layer, KeypointConv2D):
            twin = tf_keras.layers.Conv2D(
                layer.num_keypoints * layer.outputs_per_keypoint, layer.kernel_size, padding="same",
                groups=layer.num_keypoints, use_bias=layer.use_bias, name=name,
            )
            from kpose.export.layers import GroupedKeypointConv2D

            grouped = GroupedKeypointConv2D.from_layer(layer)
            copies.append((twin, [np.asarray(w) for w in grouped.weights]))
            return twin
        twin = _standard_twin(layer, tf_keras)
        copies.append((twin, [np.asarray(w) for w in layer.weights]))
        return twin

    image = tf_keras.Input(tuple(network.input.shape[1:]), name="image")
    heatmaps = network._run_through_graph(image, operation_fn=twin_of)
    model = tf_keras.Model(image, heatmaps, name=network.name)
    for twin, weights in copies:
        if weights:
            twin.set_weights(weights)
    return model


def check_twin(network, twin, crops, tolerance: float = 1e-4) -> float:
    """Largest heatmap difference between the Keras model and its twin on ``crops``,
    relative to the heatmaps' range; QATError above ``tolerance``."""
    import numpy as np

    images = crops.astype(np.float32)
    want = np.asarray(network(images))
    got = np.asarray(twin(images, training=False))
    error = float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12))
    if error > tolerance:
        raise QATError(f"the tf_keras twin of {network.name!r} differs from the Keras model by {error:.2e} (relative)")
    return error


def quantize(twin) -> Any:
    """``tfmot.quantization.keras.quantize_model`` with configs for the twins of kpose layers
    and frozen BatchNorm layers."""
    import tensorflow_model_optimization as tfmot
    import tf_keras

    from kpose.export import qat_layers

    api = tfmot.quantization.keras

    def annotate(layer):
        config = qat_layers.QUANTIZE_CONFIGS.get(type(layer))
        return api.quantize_annotate_layer(layer, config() if config else None)

    for layer in twin.layers:  # keep the trained statistics: BatchNorm runs in inference mode
        if isinstance(layer, tf_keras.layers.BatchNormalization):
            layer.trainable = False
    annotated = tf_keras.models.clone_model(twin, clone_function=annotate)
    with api.quantize_scope(qat_layers.CUSTOM_OBJECTS):
        return api.quantize_apply(annotated)


_RANGE_SUFFIXES = {"output_min": min, "output_max": max, "post_activation_min": min, "post_activation_max": max}


def initialize_ranges(qat_model, twin, crops) -> int:
    """Start every activation quantizer at the range the float twin shows on ``crops``.

    tfmot starts them at [-6, 6] and moves them by an exponential average with decay 0.999,
    so a fine-tune of a few hundred steps would keep ranges far too wide (a heatmap in
    [0, 1] quantized on [-6, 6]). Each quantizer of a wrapped layer covers that layer's output;
    the model's input quantizer covers 0..255. Returns the number of ranges set.
    """
    import numpy as np
    import tf_keras

    wrappers = [layer for layer in qat_model.layers if hasattr(layer, "layer")]
    probe = tf_keras.Model(twin.input, [twin.get_layer(w.layer.name).output for w in wrappers])
    observed = probe.predict(crops.astype(np.float32), verbose=0)
    count = 0
    for wrapper, values in zip(wrappers, observed):
        bounds = {min: min(float(values.min()), 0.0), max: max(float(values.max()), 0.0)}
        for variable in wrapper.weights:
            reduce = _RANGE_SUFFIXES.get(variable.name.split("/")[-1].split(":")[0])
            if reduce is not None:
                variable.assign(bounds[reduce])
                count += 1
    for variable in qat_model.get_layer("quantize_layer").weights:
        if variable.name.endswith(("quantize_layer_min:0", "quantize_layer_max:0")):
            variable.assign(0.0 if "min" in variable.name.split("/")[-1] else 255.0)
            count += 1
    return count


def fine_tune(
    model, config, schema, *, epochs: int, learning_rate: float | None, batch_size: int, steps_per_epoch: int | None
):
    """``fit`` on the config's training split with the training heatmap loss (the config's
    sigma), at ``learning_rate`` or, if None, the rate the config's schedule ends at."""
    import tensorflow as tf
    import tf_keras

    from kpose.data.pipeline import make_topdown_dataset
    from kpose.engine.datasets import fit_inputs, read_split
    from kpose.engine.losses import HeatmapLoss

    input_size = tuple(model.input.shape[1:3])
    samples = read_split(config.data.train, schema)
    data = make_topdown_dataset(
        samples, schema, input_size, batch_size, training=True, seed=config.train.seed, augment=config.data.augment
    )
    data = data.map(fit_inputs(["heatmaps"]), num_parallel_calls=tf.data.AUTOTUNE).map(lambda x, y: (x, y["heatmaps"]))
    loss = HeatmapLoss(input_size, config.train.sigma)
    if learning_rate is None:
        schedule = config.train.optimizer
        learning_rate = schedule.learning_rate * schedule.gamma ** len(schedule.milestones)
    print(f"QAT fine-tune: Adam at learning rate {learning_rate:.2g}", flush=True)
    model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate), loss=lambda y, p: loss.call(y, p))
    model.fit(data, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kpose.export.qat", description="QAT fine-tune and int8 export")
    parser.add_argument("model", type=Path)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps-per-epoch", type=int)
    args = parser.parse_args(argv)
    try:
        return _main(args)
    except KposeError as exc:
        print(f"{ERROR_PREFIX}{exc}", file=sys.stderr)
        return 2


def _main(args: argparse.Namespace) -> int:
    import numpy as np

    from kpose.engine.config import load_config
    from kpose.export.calibration import calibration_crops, resolve_calibration
    from kpose.export.graph import float32_network, model_metadata, normalization_of, serving_graph
    from kpose.export.tflite import convert_tflite, with_metadata
    from kpose.export.validate import validate_exported
    from kpose.export.writer import load_model, write_validated
    from kpose.keypoints import get_schema

    if args.output.suffix != ".tflite":
        raise QATError(f"-o {args.output}: QAT writes a .tflite file")
    if args.epochs < 1:
        raise QATError(f"--epochs must be >= 1, got {args.epochs}")
    config = load_config(args.config)
    if config.data.train is None:
        raise QATError(f"--config {args.config}: QAT needs data.train")
    schema = get_schema(config.data.schema)
    keras_model = load_model(args.model)
    normalization_of(keras_model)
    network = float32_network(keras_model)
    twin = tf_keras_twin(network)
    crops = np.concatenate(list(calibration_crops(resolve_calibration(args.config), schema, tuple(network.input.shape[1:3]), 64)))
    error = check_twin(network, twin, crops)
    print(f"tf_keras twin of {network.name}: max relative heatmap difference {error:.1e}", flush=True)
    qat_model = quantize(twin)
    count = initialize_ranges(qat_model, twin, crops)
    print(f"{count} quantizer ranges started from the float model's activations", flush=True)
    fine_tune(
        qat_model, config, schema, epochs=args.epochs, learning_rate=args.learning_rate,
        batch_size=args.batch_size, steps_per_epoch=args.steps_per_epoch,
    )
    graph = serving_graph(qat_model, schema)
    metadata = model_metadata(keras_model, graph, schema, "qat")
    data = with_metadata(convert_tflite(graph, "qat"), metadata)
    path = write_validated(data, args.output, metadata, validate_exported)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB): {network.name}, QAT int8; loaded and ran once")
    return 0


if __name__ == "__main__":
    sys.exit(main())
