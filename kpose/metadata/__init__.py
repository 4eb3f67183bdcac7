"""The metadata an exported kpose model carries (:mod:`kpose.metadata.contract`)."""

from kpose.metadata.contract import (
    FORMAT_VERSION,
    METADATA_KEY,
    MetadataError,
    ModelMetadata,
    crop_pixels_to_keypoints,
    keypoints_to_crop_pixels,
    metadata_from_props,
    read_metadata,
    read_onnx_metadata,
    read_tflite_metadata,
    tflite_metadata_entries,
)

__all__ = [
    "FORMAT_VERSION",
    "METADATA_KEY",
    "MetadataError",
    "ModelMetadata",
    "crop_pixels_to_keypoints",
    "keypoints_to_crop_pixels",
    "metadata_from_props",
    "read_metadata",
    "read_onnx_metadata",
    "read_tflite_metadata",
    "tflite_metadata_entries",
]
