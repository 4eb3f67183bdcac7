"""Boxes, affine crops and the crop warp (numpy and OpenCV; no TensorFlow). The TensorFlow
twin of the affine maths is ``affine_tf``."""

from kpose.geometry.affine import (
    DEFAULT_PADDING,
    box_to_center_scale,
    crop_matrix,
    heatmap_to_input,
    input_to_heatmap,
    invert_affine,
    transform_points,
)
from kpose.geometry.crop_coordinates import (
    crop_pixels_to_keypoints,
    keypoints_to_crop_pixels,
)
from kpose.geometry.warp import warp_crop

__all__ = [
    "DEFAULT_PADDING",
    "box_to_center_scale",
    "crop_matrix",
    "crop_pixels_to_keypoints",
    "heatmap_to_input",
    "input_to_heatmap",
    "invert_affine",
    "keypoints_to_crop_pixels",
    "transform_points",
    "warp_crop",
]
