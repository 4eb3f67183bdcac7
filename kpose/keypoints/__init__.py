"""Keypoint schemas (no TensorFlow): built-in COCO-17, MPII-16, CrowdPose-14 and user files."""

from kpose.keypoints.schema import (
    KeypointSchema,
    SchemaError,
    builtin_schema_names,
    get_schema,
    load_schema,
    schema_from_dict,
)

__all__ = [
    "KeypointSchema",
    "SchemaError",
    "builtin_schema_names",
    "get_schema",
    "load_schema",
    "schema_from_dict",
]
