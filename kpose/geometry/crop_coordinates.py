"""The normalized crop coordinates of an exported model's ``keypoints`` output (numpy).

``x_norm = (x_px + 0.5) / W`` and ``y_norm = (y_px + 0.5) / H`` for a crop of ``(H, W)``
pixels whose pixel centres sit at integer ``x_px, y_px``; so 0 and 1 are the crop's outer
edges.
"""

from __future__ import annotations

import numpy as np


def keypoints_to_crop_pixels(keypoints: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """Normalized crop coordinates (..., 2) (x, y) in [0, 1] -> crop pixels (centres at integers).

    Args:
        keypoints: (..., 2) normalized (x, y).
        input_size: (H, W) of the crop, pixels.

    Returns:
        (..., 2) float32 crop pixels (x, y).
    """
    height, width = input_size
    size = np.array([width, height], dtype=np.float32)
    return np.asarray(keypoints, dtype=np.float32) * size - 0.5


def crop_pixels_to_keypoints(points: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """Crop pixels (..., 2) (x, y) -> normalized crop coordinates; inverse of
    :func:`keypoints_to_crop_pixels`.

    Args:
        points: (..., 2) crop pixels (x, y), centres at integers.
        input_size: (H, W) of the crop, pixels.

    Returns:
        (..., 2) float32 normalized (x, y).
    """
    height, width = input_size
    size = np.array([width, height], dtype=np.float32)
    return (np.asarray(points, dtype=np.float32) + 0.5) / size
