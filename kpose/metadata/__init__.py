"""The metadata an exported kpose model carries, and how to read it without TensorFlow.

An exported file (``.tflite`` or ``.onnx``) is self-describing: its keypoint schema, input
size, normalization, decoder settings, model name and kpose version travel inside it as one
JSON document (:class:`ModelMetadata`) under the key :data:`METADATA_KEY` — in the TFLite
flatbuffer's ``metadata`` list (a named buffer) and in the ONNX model's ``metadata_props``.
The exporter writes it; the device runtime reads it with this package, which needs only the
Python standard library (``.tflite``) or onnxruntime (``.onnx``).

* :mod:`~kpose.metadata.contract`: the document, its key and its layout version.
* :mod:`~kpose.metadata.tflite_file`: the flatbuffer reader.
* :mod:`~kpose.metadata.onnx_file`: the ``metadata_props`` reader.

The ``keypoints`` output is normalized to the crop; :mod:`kpose.geometry.crop_coordinates`
states the convention and converts.
"""

from __future__ import annotations

from pathlib import Path

from kpose.metadata.contract import (
    BOTTOMUP,
    FORMAT_VERSION,
    METADATA_KEY,
    TOPDOWN,
    MetadataError,
    ModelMetadata,
)
from kpose.metadata.onnx_file import metadata_from_props, read_onnx_metadata
from kpose.metadata.tflite_file import read_tflite_metadata, tflite_metadata_entries

__all__ = [
    "BOTTOMUP",
    "FORMAT_VERSION",
    "METADATA_KEY",
    "MetadataError",
    "ModelMetadata",
    "TOPDOWN",
    "metadata_from_props",
    "read_metadata",
    "read_onnx_metadata",
    "read_tflite_metadata",
    "tflite_metadata_entries",
]


def read_metadata(path: str | Path) -> ModelMetadata:
    """The kpose metadata of an exported ``.tflite`` or ``.onnx`` file, chosen by suffix."""
    path = Path(path)
    if not path.is_file():
        raise MetadataError(f"{path}: no such model file")
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        return read_tflite_metadata(path)
    if suffix == ".onnx":
        return read_onnx_metadata(path)
    raise MetadataError(f"{path}: not an exported model (expected a .tflite or .onnx file)")
