"""TensorFlow twin of :mod:`kpose.geometry.affine`, for the data pipeline and graphs.

Same conventions and signatures as the numpy module; tensors are float32.
"""

from __future__ import annotations

import math

import tensorflow as tf

from kpose.geometry.affine import DEFAULT_PADDING


def box_to_center_scale(
    boxes: tf.Tensor, aspect_ratio: float, padding: float = DEFAULT_PADDING
) -> tuple[tf.Tensor, tf.Tensor]:
    """``(..., 4)`` boxes (x, y, w, h) -> ``center (..., 2)``, ``scale (..., 2)``, pixels."""
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    x, y, w, h = tf.unstack(boxes, axis=-1)
    center = tf.stack([x + 0.5 * w, y + 0.5 * h], axis=-1)
    wide = w > aspect_ratio * h
    w_fixed = tf.where(wide, w, h * aspect_ratio)
    h_fixed = tf.where(wide, w / aspect_ratio, h)
    return center, tf.stack([w_fixed, h_fixed], axis=-1) * padding


def crop_matrix(
    center: tf.Tensor,
    scale: tf.Tensor,
    output_size: tuple[int, int],
    rotation: tf.Tensor | float = 0.0,
    flip: tf.Tensor | bool = False,
) -> tf.Tensor:
    """``(..., 2, 3)`` matrix mapping image points to crop points (see the numpy module)."""
    center = tf.convert_to_tensor(center, tf.float32)
    scale = tf.convert_to_tensor(scale, tf.float32)
    out_h, out_w = output_size
    theta = tf.convert_to_tensor(rotation, tf.float32) * (math.pi / 180.0)
    zoom = out_w / scale[..., 0]
    a = tf.cos(theta) * zoom
    b = tf.sin(theta) * zoom
    a, b = a + tf.zeros_like(zoom), b + tf.zeros_like(zoom)
    cx, cy = center[..., 0], center[..., 1]
    tx = (out_w - 1) / 2.0 - (a * cx + b * cy)
    ty = (out_h - 1) / 2.0 - (-b * cx + a * cy)
    flip = tf.convert_to_tensor(flip, tf.bool) | tf.zeros_like(zoom, tf.bool)
    mirror = tf.where(flip, -1.0, 1.0)
    row_x = tf.stack([a * mirror, b * mirror, tx * mirror + tf.cast(flip, tf.float32) * (out_w - 1)], -1)
    row_y = tf.stack([-b, a, ty], axis=-1)
    return tf.stack([row_x, row_y], axis=-2)


def invert_affine(matrix: tf.Tensor) -> tf.Tensor:
    """Inverse of ``(..., 2, 3)`` affine matrices."""
    matrix = tf.convert_to_tensor(matrix, tf.float32)
    a, b, tx = matrix[..., 0, 0], matrix[..., 0, 1], matrix[..., 0, 2]
    c, d, ty = matrix[..., 1, 0], matrix[..., 1, 1], matrix[..., 1, 2]
    det = a * d - b * c
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    row_x = tf.stack([ia, ib, -(ia * tx + ib * ty)], axis=-1)
    row_y = tf.stack([ic, id_, -(ic * tx + id_ * ty)], axis=-1)
    return tf.stack([row_x, row_y], axis=-2)


def transform_points(points: tf.Tensor, matrix: tf.Tensor) -> tf.Tensor:
    """Apply ``(..., 2, 3)`` matrices to ``(..., N, 2)`` points."""
    points = tf.convert_to_tensor(points, tf.float32)
    matrix = tf.convert_to_tensor(matrix, tf.float32)
    return tf.linalg.matmul(points, matrix[..., :2], transpose_b=True) + matrix[..., None, :, 2]
