"""Export of bottom-up models: whole image in, keypoint candidates with tags out.

The serving graph runs the network (``heatmaps`` and ``tags``), then heatmap NMS (a max-pool:
a pixel is kept where it equals its neighbourhood's maximum) and the ``top_k`` peaks of each
keypoint type (``top_k``), each moved to the sub-pixel peak of a Gaussian through it and its
neighbours — all TFLite builtins. It returns, for ``M = top_k``:

- ``candidates`` ``(B, K, M, 2)`` float32 (x, y) normalized to the input image, as
  ``keypoints`` of top-down files (``x_norm = (x_px + 0.5) / W``);
- ``candidate_scores`` ``(B, K, M)`` float32 heatmap values (0 where fewer peaks exist);
- ``candidate_tags`` ``(B, K, M)`` float32 associative-embedding tags.

Grouping them into people is the runtime's job (:mod:`kpose.runtime.grouping`); these are
exactly :func:`kpose.runtime.grouping.find_candidates`' candidates. The metadata's decoder is
``{"name": "bottomup", "top_k", "nms_kernel"}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kpose.codecs.decoders import LOG_EPS
from kpose.export.graph import (
    DECODER_SCOPE,
    ExportError,
    ServingGraph,
    _all_layers,
    _float32_config,
    model_metadata,
)
from kpose.export.validate import check_contract, run_exported
from kpose.keypoints import KeypointSchema
from kpose.metadata import ModelMetadata
from kpose.models import inference_model
from kpose.runtime.grouping import TOP_K, nms_kernel_for_stride

OUTPUTS = ("candidates", "candidate_scores", "candidate_tags")


def is_bottomup(model: keras.Model) -> bool:
    """Whether ``model`` predicts associative-embedding ``tags`` (a bottom-up model)."""
    return isinstance(model.output, dict) and "tags" in model.output


def bottomup_network(model: keras.Model) -> keras.Model:
    """The float32 inference network: ``image`` -> {"heatmaps", "tags"} ``(B, h, w, K)``
    (a mixed-precision model is rebuilt in float32 with the same weights)."""
    network = inference_model(model)
    if all(layer.dtype_policy.name == "float32" for layer in _all_layers(network)):
        return network
    rebuilt = keras.Model.from_config(_float32_config(network.get_config()))
    rebuilt.set_weights(network.get_weights())
    return rebuilt


def log_parabola_offset_tf(left: tf.Tensor, centre: tf.Tensor, right: tf.Tensor) -> tf.Tensor:
    """In-graph twin of :func:`kpose.runtime.grouping.log_parabola_offset`."""
    a, c, b = (tf.math.log(tf.maximum(v, LOG_EPS)) for v in (left, centre, right))
    curve = a - 2.0 * c + b
    bends = curve < 0
    offset = tf.where(bends, 0.5 * (a - b) / tf.where(bends, curve, -tf.ones_like(curve)), tf.zeros_like(curve))
    return tf.clip_by_value(offset, -0.5, 0.5)


def candidates_tf(
    heatmaps: tf.Tensor, tags: tf.Tensor, top_k: int, nms_kernel: int
) -> dict[str, tf.Tensor]:
    """In-graph twin of :func:`kpose.runtime.grouping.find_candidates` (builtin ops only).

    Args:
        heatmaps, tags: ``(B, h, w, K)`` float32.

    Returns:
        The three outputs of the module docstring.
    """
    h, w, k = heatmaps.shape[1:]
    with tf.name_scope(DECODER_SCOPE):
        pooled = tf.nn.max_pool2d(heatmaps, nms_kernel, 1, "SAME")
        peaks = tf.where(tf.equal(pooled, heatmaps), heatmaps, tf.zeros_like(heatmaps))
        flat = tf.reshape(tf.transpose(peaks, [0, 3, 1, 2]), [-1, k, h * w])  # (B, K, h*w)
        scores, index = tf.math.top_k(flat, k=min(top_k, h * w))  # (B, K, M)
        y, x = index // w, index % w
        maps = tf.reshape(tf.transpose(heatmaps, [0, 3, 1, 2]), [-1, k, h * w])

        def at(dy: int, dx: int) -> tf.Tensor:
            yy = tf.clip_by_value(y + dy, 0, h - 1)
            xx = tf.clip_by_value(x + dx, 0, w - 1)
            return tf.gather(maps, yy * w + xx, batch_dims=2)

        centre = at(0, 0)
        dx = log_parabola_offset_tf(at(0, -1), centre, at(0, 1)) * tf.cast((x > 0) & (x < w - 1), tf.float32)
        dy = log_parabola_offset_tf(at(-1, 0), centre, at(1, 0)) * tf.cast((y > 0) & (y < h - 1), tf.float32)
        coords = tf.stack([tf.cast(x, tf.float32) + dx, tf.cast(y, tf.float32) + dy], axis=-1)
        flat_tags = tf.reshape(tf.transpose(tags, [0, 3, 1, 2]), [-1, k, h * w])
        # (u + 0.5) / w as a multiply-add with (2,) constants: tf2onnx's transpose optimizer
        # fails on an Add of a scalar constant here
        return {
            "candidates": coords * tf.constant([1.0 / w, 1.0 / h]) + tf.constant([0.5 / w, 0.5 / h]),
            "candidate_scores": tf.identity(scores),
            "candidate_tags": tf.gather(flat_tags, index, batch_dims=2),
        }


def bottomup_serving_graph(
    network: keras.Model, schema: KeypointSchema, top_k: int = TOP_K, batch_size: int | None = 1
) -> ServingGraph:
    """Wrap a float32 bottom-up network (:func:`bottomup_network`) for export."""
    if batch_size is not None and batch_size < 1:
        raise ExportError(f"batch_size must be >= 1 or None (dynamic), got {batch_size}")
    if top_k < 1:
        raise ExportError(f"top_k must be >= 1, got {top_k}")
    _, height, width, _ = network.input.shape
    _, map_h, map_w, num_keypoints = network.output["heatmaps"].shape
    if num_keypoints != schema.num_keypoints:
        raise ExportError(
            f"model {network.name!r} predicts {num_keypoints} keypoints but schema "
            f"{schema.name!r} has {schema.num_keypoints}"
        )
    nms_kernel = nms_kernel_for_stride(height / map_h)
    signature = [tf.TensorSpec([batch_size, height, width, 3], tf.uint8, name="image")]

    @tf.function(input_signature=signature)
    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        out = network(tf.cast(image, tf.float32), training=False)
        return candidates_tf(tf.cast(out["heatmaps"], tf.float32), tf.cast(out["tags"], tf.float32), top_k, nms_kernel)

    decoder = {"name": "bottomup", "top_k": min(top_k, map_h * map_w), "nms_kernel": nms_kernel}
    return ServingGraph(serve, network, (height, width), (map_h, map_w), batch_size, OUTPUTS, decoder)


def validate_bottomup(path: str | Path, expected: ModelMetadata) -> dict[str, np.ndarray]:
    """Run ``path`` once and check the bottom-up contract: ``candidates`` (B, K, M, 2),
    ``candidate_scores`` and ``candidate_tags`` (B, K, M), float32.

    Raises:
        ExportError: the file does not load or run, or breaks the contract.
    """
    outputs, batch = run_exported(path, expected)
    k, m = expected.keypoint_schema.num_keypoints, expected.decoder["top_k"]
    contract = {"candidates": (batch, k, m, 2), "candidate_scores": (batch, k, m), "candidate_tags": (batch, k, m)}
    check_contract(path, outputs, contract, "candidates")
    return outputs


def export_bottomup(
    model: keras.Model,
    output: Path,
    schema: KeypointSchema,
    *,
    format: str = "tflite",
    quantize: str = "none",
    top_k: int = TOP_K,
    batch_size: int | None = 1,
    opset: int = 17,
) -> Path:
    """Export a bottom-up model to one validated file (called by
    :func:`kpose.export.export_model`, which checks the options and resolves the schema).

    Only float files (``quantize`` ``none`` or ``fp16``): calibrating int8 on whole images is
    not implemented.
    """
    if quantize not in ("none", "fp16"):
        raise ExportError(f"--quantize {quantize}: bottom-up models export as float32 or fp16 only")
    graph = bottomup_serving_graph(bottomup_network(model), schema, top_k, batch_size)
    metadata = model_metadata(model, graph, schema, quantize)
    if format == "onnx":
        from kpose.export.onnx import convert_onnx

        data = convert_onnx(graph, metadata, opset)
    else:
        from kpose.export.tflite import convert_tflite, with_metadata

        data = with_metadata(convert_tflite(graph, quantize, None), metadata)
    from kpose.export.api import write_validated

    return write_validated(data, output, metadata, validate=validate_bottomup)


def export_options_used(**options: Any) -> None:
    """Raise for top-down-only export options set on a bottom-up model."""
    used = sorted(name for name, value in options.items() if value)
    if used:
        raise ExportError(f"option(s) {', '.join(used)} apply to top-down models only, not to bottom-up ones")
