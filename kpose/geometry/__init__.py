"""Boxes and affine crops (numpy; no TensorFlow). The TensorFlow twin is ``affine_tf``."""

from kpose.geometry.affine import (
    DEFAULT_PADDING,
    box_to_center_scale,
    crop_matrix,
    heatmap_to_input,
    input_to_heatmap,
    invert_affine,
    transform_points,
)

__all__ = [
    "DEFAULT_PADDING",
    "box_to_center_scale",
    "crop_matrix",
    "heatmap_to_input",
    "input_to_heatmap",
    "invert_affine",
    "transform_points",
]
