"""Test devices for the runtime: exported files with the kpose contract, and videos with truth.

* :func:`write_tflite` / :func:`write_onnx` convert a ``tf.function`` on ``image`` (uint8
  NHWC) into a real ``.tflite`` / ``.onnx`` file carrying kpose metadata.
* :func:`oracle_function` is a model that needs no training: the synthetic renderer draws
  each keypoint as a disc of its own colour (:func:`kpose.data.synthetic.joint_colors`); the
  oracle returns, per keypoint, the crop position that best matches that colour (with a
  mild preference for the crop's centre). Its
  keypoints are as good as the crop and the interpreter are, so crop -> run -> map back can
  be checked against the renderer's truth.
* videos of moving synthetic people with their truth come from
  :func:`kpose.benchmarks.demo.write_people_video`, which ``kpose bench demo`` uses too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kpose import metadata as md
from kpose.data.synthetic import joint_colors
from kpose.keypoints import get_schema

ORACLE_SIZE = (256, 192)  # (H, W): markers stay a few pixels wide in the crop


def _metadata(name: str, input_size: tuple[int, int], batch_size: int | None) -> md.ModelMetadata:
    return md.ModelMetadata(
        model_name=name, schema=get_schema("coco").to_dict(), input_size=input_size,
        heatmap_size=input_size, batch_size=batch_size,
    )


def oracle_function(batch_size: int | None = None, input_size: tuple[int, int] = ORACLE_SIZE):
    """A ``tf.function`` with the export contract that finds the coloured keypoint markers."""
    import tensorflow as tf

    height, width = input_size
    colors_rgb = joint_colors(17)[:, ::-1].astype(np.float32)  # (K, 3)
    # like a top-down model, prefer the person in the middle of the crop over a neighbour's
    # marker of the same colour near its edge
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    centre_prior = 4000.0 * (((xs - (width - 1) / 2) / width) ** 2 + ((ys - (height - 1) / 2) / height) ** 2)
    centre_prior = centre_prior[None, :, :, None]

    @tf.function(input_signature=[tf.TensorSpec([batch_size, height, width, 3], tf.uint8, name="image")])
    def oracle(image):
        pixels = tf.cast(image, tf.float32)[..., None, :]  # (B, H, W, 1, 3)
        distance = tf.reduce_sum(tf.square(pixels - colors_rgb), axis=-1)  # (B, H, W, K)
        distance = tf.nn.avg_pool2d(distance, 3, 1, "SAME") + centre_prior
        flat = tf.reshape(distance, [-1, height * width, 17])
        index = tf.math.argmin(flat, axis=1, output_type=tf.int32)  # (B, K)
        x = tf.cast(index % width, tf.float32)
        y = tf.cast(index // width, tf.float32)
        keypoints = tf.stack([(x + 0.5) / width, (y + 0.5) / height], axis=-1)
        scores = tf.exp(-tf.reduce_min(flat, axis=1) / 5000.0)
        return {"keypoints": keypoints, "scores": scores}

    return oracle


def write_tflite(path: Path, function, metadata: md.ModelMetadata | None) -> Path:
    """Convert ``function`` to ``path`` with builtin ops, embedding ``metadata`` (None: none)."""
    import tensorflow as tf
    from tensorflow.lite.python import schema_py_generated as schema_fb
    from tensorflow.lite.tools import flatbuffer_utils

    module = tf.Module()
    module.serve = function
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], module)
    model = flatbuffer_utils.convert_bytearray_to_object(converter.convert())
    if metadata is not None:
        buffer = schema_fb.BufferT()
        buffer.data = np.frombuffer(metadata.to_json().encode(), dtype=np.uint8)
        model.buffers.append(buffer)
        entry = schema_fb.MetadataT()
        entry.name, entry.buffer = md.METADATA_KEY, len(model.buffers) - 1
        model.metadata.append(entry)
    path.write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    return path


def write_onnx(path: Path, function, metadata: md.ModelMetadata) -> Path:
    """Convert ``function`` to ``path`` with tf2onnx, embedding ``metadata``."""
    import onnx
    import tf2onnx

    proto, _ = tf2onnx.convert.from_function(function, input_signature=function.input_signature, opset=17)
    entry = proto.metadata_props.add()
    entry.key, entry.value = md.METADATA_KEY, metadata.to_json()
    onnx.save(proto, str(path))
    return path


def write_oracle(path: Path, batch_size: int | None = None) -> Path:
    """The oracle as ``.tflite`` or ``.onnx`` (by ``path``'s suffix), with kpose metadata."""
    function = oracle_function(batch_size)
    metadata = _metadata("oracle", ORACLE_SIZE, batch_size)
    if path.suffix == ".onnx":
        return write_onnx(path, function, metadata)
    return write_tflite(path, function, metadata)


def match_people(found: list[np.ndarray], truth: np.ndarray) -> list[np.ndarray]:
    """For each true person ``(K, 3)``, the found ``(K, 2)`` keypoints nearest to it (or NaNs)."""
    out = []
    for person in truth:
        visible = person[:, 2] > 0
        best = np.full((len(person), 2), np.nan, np.float32)
        best_error = np.inf
        for candidate in found:
            error = np.nanmedian(np.linalg.norm(candidate[visible] - person[visible, :2], axis=1))
            if error < best_error:
                best, best_error = candidate, error
        out.append(best)
    return out
