"""The task-independent entry points: train, evaluate and export, each dispatched by
:func:`~kpose.tasks.select.task_of` to the task that does the work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras

from kpose.engine.config import Config, DatasetConfig
from kpose.engine.training import TrainResult, run_training
from kpose.errors import ConfigError
from kpose.export.graph import normalization_of
from kpose.export.writer import ExportOptions, load_model
from kpose.keypoints import KeypointSchema, get_schema
from kpose.models import heatmap_output, load_pose_model
from kpose.runtime.backends import open_backend
from kpose.tasks.select import EXPORTED_SUFFIXES, task_of


def train(config: Config, overwrite: bool = False) -> TrainResult:
    """``kpose train``: train ``config.model`` as its task does
    (:func:`kpose.engine.training.run_training`; resumes a run that was cut short).

    Raises:
        ConfigError: settings the model's task cannot train with.
        TrainingError: see :func:`~kpose.engine.training.run_training`.
    """
    task = task_of(config.model.name)
    task.check_config(config)
    return run_training(config, task.fit, overwrite)


def _check_keypoints(model: Any, predicted: int, schema: KeypointSchema) -> None:
    if predicted != schema.num_keypoints:
        raise ConfigError(
            f"{model} predicts {predicted} keypoints but schema {schema.name!r} has {schema.num_keypoints}"
        )


def evaluate(
    model: str | Path | keras.Model,
    dataset: DatasetConfig,
    schema: KeypointSchema | str,
    *,
    flip_test: bool = True,
    decoder: str = "argmax",
    batch_size: int | None = None,
    results_file: Path | None = None,
    threads: int | None = None,
) -> dict[str, float]:
    """``kpose eval --model``: metrics of a model on one dataset split.

    Args:
        model: a keras.Model or ``.keras`` file (``flip_test`` and the top-down ``decoder``
            apply), or an exported ``.tflite`` / ``.onnx`` file, run by the device runtime
            with the decoder and flip setting inside it (``threads``: its CPU threads).
        dataset: the split; top-down models are scored on its ground-truth boxes, or on
            ``dataset.boxes`` when set; bottom-up models on whole images.
        schema: the dataset's keypoint schema.
        batch_size: default: the task's (32 top-down, 8 bottom-up).
        results_file: where to write the COCO results JSON (AP protocols).

    Raises:
        ConfigError: the model predicts another number of keypoints than ``schema`` has.
    """
    schema = get_schema(schema)
    batch = {} if batch_size is None else {"batch_size": batch_size}
    if not isinstance(model, keras.Model) and Path(model).suffix.lower() in EXPORTED_SUFFIXES:
        backend = open_backend(model, threads=threads)
        _check_keypoints(model, backend.metadata.keypoint_schema.num_keypoints, schema)
        return task_of(backend).evaluate_file(backend, dataset, schema, results_file=results_file, **batch)
    name = f"model {model.name!r}" if isinstance(model, keras.Model) else model
    model = model if isinstance(model, keras.Model) else load_pose_model(model)
    _check_keypoints(name, heatmap_output(model).output.shape[-1], schema)
    return task_of(model).evaluate(
        model, dataset, schema, flip_test=flip_test, decoder=decoder, results_file=results_file, **batch
    )


def export_model(
    model: str | Path | keras.Model,
    output: str | Path,
    *,
    schema: str | Path | KeypointSchema | None = None,
    **options: Any,
) -> Path:
    """``kpose export``: one validated ``.tflite`` / ``.onnx`` file with the decoder inside.

    >>> export_model("runs/quickstart/best.keras", "pose.tflite")                 # float32
    >>> export_model(model, "pose_int8.tflite", quantize="int8", calibration="config.yaml")
    >>> export_model(model, "pose.onnx", format="onnx", batch_size=None)          # dynamic batch

    Args:
        model: a ``.keras`` file or a keras.Model (training or inference graph; a
            mixed-precision model is rebuilt in float32).
        output: the file to write.
        schema: the keypoint schema to embed; default: the calibration config's, else the
            built-in schema with the model's number of keypoints.
        options: :class:`~kpose.export.writer.ExportOptions` fields (``format``, ``quantize``,
            ``calibration``, ``calibration_size``, ``heatmaps``, ``flip_test``,
            ``quarter_shift``, ``batch_size``, ``opset``). A bottom-up model exports float32 or
            fp16 candidates, without the crop options.

    Returns:
        The written path.

    Raises:
        ExportError: bad model, option or calibration data, or an op that cannot be a
            builtin; no file is written then.
    """
    output = Path(output)
    export_options = ExportOptions(**options)
    export_options.check(output)
    keras_model = load_model(model)
    normalization_of(keras_model)  # fails early, with a clear message, for foreign models
    return task_of(keras_model).export(keras_model, output, schema, export_options)
