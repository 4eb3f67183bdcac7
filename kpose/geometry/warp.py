"""The one affine warp of a crop, with OpenCV (numpy/OpenCV only).

The training pipeline calls it on each decoded image (through ``tf.numpy_function``) and a
device runtime can call it on camera frames, so crops are resampled the same way in both.
"""

from __future__ import annotations

import cv2
import numpy as np


def warp_crop(image: np.ndarray, matrix: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
    """Warp ``image`` into a crop: bilinear, zeros outside the image.

    Args:
        image: ``(h, w, C)`` uint8 (any channel order; it is kept).
        matrix: ``(2, 3)`` affine mapping image points to crop points, pixel centres at
            integers, as :func:`kpose.geometry.crop_matrix` gives.
        output_size: crop ``(height, width)`` in pixels.

    Returns:
        ``(height, width, C)`` uint8 crop.
    """
    height, width = output_size
    crop = cv2.warpAffine(
        image,
        np.asarray(matrix, np.float64),
        (int(width), int(height)),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return crop.reshape(height, width, -1)
