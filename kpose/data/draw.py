"""Drawing keypoints and skeletons on images, and tiling images into a grid.

numpy and OpenCV only, so a device runtime without TensorFlow can reuse it. Colours are BGR
(OpenCV order) for BGR images; pass an RGB image and the colours come out swapped unless the
caller converts.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from kpose.keypoints import KeypointSchema


def draw_keypoints(
    image: np.ndarray,
    keypoints: np.ndarray,
    schema: KeypointSchema,
    scores: np.ndarray | None = None,
    threshold: float = 0.0,
    radius: int | None = None,
    thickness: int | None = None,
) -> np.ndarray:
    """Draw one person's keypoints and skeleton on a copy of ``image``.

    Args:
        image: ``(H, W, 3)`` uint8.
        keypoints: ``(K, 2)`` pixels (x, y), pixel centres at integers.
        schema: gives the skeleton and the colours (``schema.colors``, ``limb_colors()``).
        scores: ``(K,)`` confidences or visibility weights; a keypoint is drawn if its score
            is above ``threshold`` and a limb if both ends are. None draws all.
        threshold: see ``scores``.
        radius, thickness: in pixels; default scales with the image size.

    Returns:
        The drawn ``(H, W, 3)`` uint8 copy.
    """
    out = np.ascontiguousarray(image, dtype=np.uint8).copy()
    keypoints = np.asarray(keypoints, dtype=np.float64)
    shown = np.ones(len(keypoints), bool) if scores is None else np.asarray(scores) > threshold
    shown &= np.isfinite(keypoints).all(axis=1)
    size = min(out.shape[:2])
    radius = radius or max(2, size // 80)
    thickness = thickness or max(1, size // 160)
    shift = 4
    pts = np.round(np.nan_to_num(keypoints) * (1 << shift)).astype(np.int64)
    for (a, b), color in zip(schema.skeleton, schema.limb_colors()):
        if shown[a] and shown[b]:
            start, end = tuple(map(int, pts[a])), tuple(map(int, pts[b]))
            cv2.line(out, start, end, color, thickness, cv2.LINE_AA, shift)
    for i in np.flatnonzero(shown):
        center = tuple(map(int, pts[i]))
        cv2.circle(out, center, (radius + 1) << shift, (0, 0, 0), -1, cv2.LINE_AA, shift)
        cv2.circle(out, center, radius << shift, schema.colors[i], -1, cv2.LINE_AA, shift)
    return out


def make_grid(images: Sequence[np.ndarray], columns: int, gap: int = 2, fill: int = 255) -> np.ndarray:
    """Tile equally sized ``(H, W, 3)`` images row by row into one image, ``gap`` px apart."""
    if not images:
        raise ValueError("make_grid needs at least one image")
    h, w = images[0].shape[:2]
    columns = max(1, min(columns, len(images)))
    rows = -(-len(images) // columns)
    grid = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, 3), fill, np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        grid[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = image
    return grid
