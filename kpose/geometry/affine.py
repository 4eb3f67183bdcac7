"""Person boxes and the affine warp of a top-down crop, in numpy.

Conventions used everywhere in kpose (the TensorFlow twin in ``affine_tf`` follows them):

* Image coordinates are pixels with pixel centres at integers: pixel ``(i, j)`` of an image
  is the point ``x = j, y = i``. ``cv2.warpAffine`` and TensorFlow's projective transform
  both sample that way, so points and pixels move together under the same matrix.
* A crop is described by a ``center`` (x, y) and a ``scale`` (w, h): the size in image
  pixels of the region that fills the crop. The region's aspect ratio equals the crop's.
* The crop matrix maps image points to crop points: rotate the region by ``rotation``
  degrees (counter-clockwise as seen on screen) about its centre, scale it to the output
  size, put its centre at the crop centre ``((W - 1) / 2, (H - 1) / 2)``, then, if
  ``flip``, mirror the crop horizontally (``x -> W - 1 - x``).

Shapes: ``...`` is any batch shape; matrices are ``(..., 2, 3)``.
"""

from __future__ import annotations

import numpy as np

DEFAULT_PADDING = 1.25


def box_to_center_scale(
    boxes: np.ndarray, aspect_ratio: float, padding: float = DEFAULT_PADDING
) -> tuple[np.ndarray, np.ndarray]:
    """Person boxes to crop centre and scale.

    Args:
        boxes: ``(..., 4)`` boxes ``(x, y, w, h)`` in image pixels (COCO convention).
        aspect_ratio: crop width / height, e.g. 192 / 256 = 0.75.
        padding: factor applied to the box after fixing its aspect ratio.

    Returns:
        ``center (..., 2)`` and ``scale (..., 2)`` in image pixels; ``scale`` has the
        aspect ratio ``aspect_ratio`` and contains the padded box.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    x, y, w, h = np.moveaxis(boxes, -1, 0)
    center = np.stack([x + 0.5 * w, y + 0.5 * h], axis=-1)
    wide = w > aspect_ratio * h
    w_fixed = np.where(wide, w, h * aspect_ratio)
    h_fixed = np.where(wide, w / aspect_ratio, h)
    scale = np.stack([w_fixed, h_fixed], axis=-1) * padding
    return center, scale


def crop_matrix(
    center: np.ndarray,
    scale: np.ndarray,
    output_size: tuple[int, int],
    rotation: np.ndarray | float = 0.0,
    flip: np.ndarray | bool = False,
) -> np.ndarray:
    """The affine matrix mapping image points to crop points.

    Args:
        center: ``(..., 2)`` region centre (x, y), image pixels.
        scale: ``(..., 2)`` region size (w, h), image pixels; only ``w`` sets the zoom, so
            pass a scale with the crop's aspect ratio.
        output_size: crop size ``(height, width)`` in pixels.
        rotation: ``(...)`` degrees, counter-clockwise on screen.
        flip: ``(...)`` mirror the crop horizontally.

    Returns:
        ``(..., 2, 3)`` float64 matrix ``M`` with ``crop = M @ [x, y, 1]``.
    """
    center = np.asarray(center, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    out_h, out_w = output_size
    theta = np.deg2rad(np.asarray(rotation, dtype=np.float64))
    zoom = out_w / scale[..., 0]
    cos, sin = np.cos(theta) * zoom, np.sin(theta) * zoom
    # Screen y points down, so a counter-clockwise turn is [[cos, sin], [-sin, cos]].
    a, b, c, d = np.broadcast_arrays(cos, sin, -sin, cos)
    cx, cy = center[..., 0], center[..., 1]
    tx = (out_w - 1) / 2.0 - (a * cx + b * cy)
    ty = (out_h - 1) / 2.0 - (c * cx + d * cy)
    mirror = np.where(np.asarray(flip, dtype=bool), -1.0, 1.0)
    row_x = np.stack([a * mirror, b * mirror, tx * mirror + (mirror < 0) * (out_w - 1)], axis=-1)
    row_y = np.stack(np.broadcast_arrays(c, d, ty), axis=-1)
    return np.stack(np.broadcast_arrays(row_x, row_y), axis=-2)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of ``(..., 2, 3)`` affine matrices."""
    matrix = np.asarray(matrix, dtype=np.float64)
    linear = matrix[..., :2]
    inv_linear = np.linalg.inv(linear)
    inv_shift = -np.einsum("...ij,...j->...i", inv_linear, matrix[..., 2])
    return np.concatenate([inv_linear, inv_shift[..., None]], axis=-1)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply ``(..., 2, 3)`` affine matrices to ``(..., N, 2)`` points."""
    points = np.asarray(points, dtype=np.float64)
    matrix = np.asarray(matrix, dtype=np.float64)
    return np.einsum("...ij,...nj->...ni", matrix[..., :2], points) + matrix[..., None, :, 2]


def heatmap_to_input(coords: np.ndarray, stride: float) -> np.ndarray:
    """Heatmap pixel coordinates to input (crop) pixel coordinates.

    Heatmap pixel ``u`` covers input pixels ``[u * s, (u + 1) * s)``, whose centre is
    ``u * s + (s - 1) / 2``; this is also what a pixel shuffle by ``s`` produces. Plain
    arithmetic, so ``coords`` may be a numpy array or a TensorFlow tensor.
    """
    return (coords + 0.5) * stride - 0.5


def input_to_heatmap(coords: np.ndarray, stride: float) -> np.ndarray:
    """Inverse of :func:`heatmap_to_input` (numpy array or TensorFlow tensor)."""
    return (coords + 0.5) / stride - 0.5
