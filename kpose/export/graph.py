"""The serving graph an exported model carries: uint8 crop in, normalized keypoints out.

:func:`float32_network` turns a trained kpose model into its float32 inference network
(``image`` -> final heatmaps), rebuilding it when it was trained under a mixed-precision
policy. :func:`serving_graph` wraps that network in one ``tf.function`` with the exported-model
contract (docs/export.md, "The file"): input ``image`` uint8 ``(B, H, W, 3)``; outputs ``keypoints``
``(B, K, 2)`` float32, normalized to the crop (``x_norm = (x_px + 0.5) / W``), ``scores``
``(B, K)`` float32 and, on request, ``heatmaps`` ``(B, h, w, K)`` float32. The decoder is the
max-pool decoder (:func:`~kpose.codecs.decoders_tf.locate_rows`: exact argmax, TFLite builtins only), optionally
with the quarter-pixel shift and the flip test of :mod:`kpose.codecs.decoders_tf`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import keras
import tensorflow as tf

from kpose import __version__
from kpose.codecs import decoders_tf
from kpose.codecs.decoders_tf import DECODER_SCOPE
from kpose.errors import KposeError
from kpose.keypoints import KeypointSchema
from kpose.metadata import ModelMetadata
from kpose.models import heatmap_output

NORMALIZATION_LAYER = "normalize"


class ExportError(KposeError):
    """A model cannot be exported as asked (bad model, option, op or data)."""


def _is_mixed_policy(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.get("class_name") in ("DTypePolicy", "FloatDTypePolicy")
        and str(value.get("config", {}).get("name", "")).startswith("mixed_")
    )


def _float32_config(config: Any) -> Any:
    """``config`` with every mixed-precision dtype policy replaced by float32."""
    if _is_mixed_policy(config):
        return {**config, "config": {**config["config"], "name": "float32"}}
    if isinstance(config, dict):
        return {key: _float32_config(value) for key, value in config.items()}
    if isinstance(config, list):
        return [_float32_config(value) for value in config]
    return config


def _all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    layers = []
    for layer in model.layers:
        layers.append(layer)
        if isinstance(layer, keras.Model):
            layers.extend(_all_layers(layer))
    return layers


def float32_config_network(network: keras.Model) -> keras.Model:
    """``network`` itself when every layer computes in float32, else a float32 rebuild: a
    model trained under ``mixed_float16`` / ``mixed_bfloat16`` is rebuilt from its config with
    float32 policies and given the same (float32) weights."""
    if all(layer.dtype_policy.name == "float32" for layer in _all_layers(network)):
        return network
    rebuilt = keras.Model.from_config(_float32_config(network.get_config()))
    rebuilt.set_weights(network.get_weights())
    return rebuilt


def float32_network(model: keras.Model) -> keras.Model:
    """The inference network of a top-down ``model`` in float32: ``image (B, H, W, 3)``
    0..255 float -> final heatmaps ``(B, h, w, K)`` (:func:`float32_config_network`)."""
    return float32_config_network(heatmap_output(model))


def normalization_of(model: keras.Model) -> dict[str, Any]:
    """The in-graph normalization (the ``normalize`` layer's mean/std/bgr, 0..255 units)."""
    try:
        layer = model.get_layer(NORMALIZATION_LAYER)
    except ValueError:
        raise ExportError(
            f"model {model.name!r} has no {NORMALIZATION_LAYER!r} layer: not a kpose model "
            "(kpose models take RGB 0..255 and normalize inside)"
        ) from None
    config = layer.get_config()
    return {"mean": config["mean"], "std": config["std"], "bgr": config["bgr"], "input_range": [0, 255]}


def decode_keypoints(maps: tf.Tensor, quarter_shift: bool = False) -> dict[str, tf.Tensor]:
    """The in-graph decoder: float32 heatmaps ``(B, h, w, K)`` -> ``keypoints`` ``(B, K, 2)``
    normalized to the crop and ``scores`` ``(B, K)``; its arithmetic under :data:`DECODER_SCOPE`."""
    map_h, map_w = maps.shape[1:3]
    coords, scores = decoders_tf.locate_rows(maps, float_scope=DECODER_SCOPE)
    with tf.name_scope(DECODER_SCOPE):
        coords = decoders_tf.refine_quarter(maps, coords) if quarter_shift else tf.cast(coords, tf.float32)
        # (u + 0.5) / w: heatmap_to_input then crop_pixels_to_keypoints, in one step.
        keypoints = (coords + 0.5) / tf.constant([map_w, map_h], tf.float32)
        return {"keypoints": keypoints, "scores": tf.identity(scores)}


@dataclass(frozen=True)
class ServingGraph:
    """The serving function and what the metadata says about it.

    Attributes:
        function: ``tf.function`` ``image`` uint8 ``(B, H, W, 3)`` -> dict of outputs.
        network: the float32 inference network inside it.
        input_size: (H, W) of the crop, pixels.
        heatmap_size: (h, w) of the decoded heatmap.
        batch_size: fixed batch size, or None for a dynamic one.
        outputs: output names, in order.
        decoder: the decoder settings baked in (for the metadata).
    """

    function: Callable[..., dict[str, tf.Tensor]]
    network: keras.Model
    input_size: tuple[int, int]
    heatmap_size: tuple[int, int]
    batch_size: int | None
    outputs: tuple[str, ...]
    decoder: dict[str, Any]

    def concrete_function(self) -> Any:
        """The traced function (its input signature is ``image``)."""
        return self.function.get_concrete_function()

    def trackable(self) -> tf.Module:
        """A module owning the function and the network's variables, for converters: the
        TFLite converter writes a signature only when given one."""
        module = tf.Module()
        module.serve = self.function
        # Keras 3 variables wrap tf.Variables; track those so the converter freezes them.
        module.weights = [
            variable.value if isinstance(variable, keras.Variable) else variable for variable in self.network.variables
        ]
        return module


def serving_graph(
    network: keras.Model,
    schema: KeypointSchema,
    *,
    heatmaps: bool = False,
    flip_test: bool = False,
    quarter_shift: bool = False,
    batch_size: int | None = 1,
) -> ServingGraph:
    """Wrap a float32 inference network (from :func:`float32_network`) for export.

    Args:
        network: ``image`` float 0..255 ``(B, H, W, 3)`` -> heatmaps ``(B, h, w, K)``; a
            Keras 3 model, or the tf_keras QAT model of :mod:`kpose.export.qat`.
        schema: the keypoint schema (its flip pairs serve the flip test).
        heatmaps: also return the (flip-averaged) heatmaps.
        flip_test: run the mirrored crop too and average the heatmaps (doubles the work).
        quarter_shift: move each peak a quarter heatmap pixel toward its higher neighbour.
        batch_size: fixed batch size of ``image``, or None for a dynamic one.
    """
    if batch_size is not None and batch_size < 1:
        raise ExportError(f"batch_size must be >= 1 or None (dynamic), got {batch_size}")
    _, height, width, _ = network.input.shape
    _, map_h, map_w, num_keypoints = network.output.shape
    if num_keypoints != schema.num_keypoints:
        raise ExportError(
            f"model {network.name!r} predicts {num_keypoints} keypoints but schema "
            f"{schema.name!r} has {schema.num_keypoints}"
        )
    flip_index = schema.flip_index.tolist()

    signature = [tf.TensorSpec([batch_size, height, width, 3], tf.uint8, name="image")]

    @tf.function(input_signature=signature)
    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        pixels = tf.cast(image, tf.float32)
        if flip_test:
            both = network(tf.concat([pixels, tf.reverse(pixels, axis=[2])], axis=0), training=False)
            plain, mirrored = tf.split(tf.cast(both, tf.float32), 2, axis=0)
            maps = decoders_tf.flip_average(plain, mirrored, flip_index)
        else:
            maps = tf.cast(network(pixels, training=False), tf.float32)
        out = decode_keypoints(maps, quarter_shift)
        if heatmaps:
            out["heatmaps"] = maps
        return out

    outputs = ("keypoints", "scores", "heatmaps") if heatmaps else ("keypoints", "scores")
    decoder = {"name": "maxpool", "pool": [1, map_w], "flip_test": flip_test, "quarter_shift": quarter_shift}
    return ServingGraph(serve, network, (height, width), (map_h, map_w), batch_size, outputs, decoder)


def model_metadata(model: keras.Model, graph: ServingGraph, schema: KeypointSchema, quantization: str) -> ModelMetadata:
    """What the exported file says about itself."""
    return ModelMetadata(
        model_name=model.name,
        schema=schema.to_dict(),
        input_size=graph.input_size,
        heatmap_size=graph.heatmap_size,
        normalization=normalization_of(model),
        outputs=graph.outputs,
        decoder=graph.decoder,
        batch_size=graph.batch_size,
        quantization=quantization,
        kpose_version=__version__,
    )
