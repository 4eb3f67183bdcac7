"""Regions the bottom-up loss ignores, as outlines: COCO segmentations (polygons, or the RLE
masks of crowd regions) traced to polygons in image pixels, and drawn into a warped mask.

Outlines rather than masks keep the reading cheap (a few vertices per region, not an image
per region) and let one affine warp place them in any augmented input.
"""

from __future__ import annotations

from typing import Any, Sequence

import cv2
import numpy as np

from kpose.geometry import transform_points

Outline = np.ndarray  # (V, 2) float32 image pixels (x, y), V >= 3


def annotation_outlines(ann: dict[str, Any], height: int, width: int) -> list[Outline]:
    """The outline(s) of one annotation's region in an image of ``height`` x ``width`` pixels:
    its segmentation polygons, the contours of its RLE mask, or its box when it has neither
    (``segmentation`` missing or empty). The annotation is validated already
    (:mod:`kpose.data.cocofile`)."""
    segmentation = ann.get("segmentation")
    if isinstance(segmentation, dict):
        outlines = _rle_outlines(segmentation, height, width)
    else:
        outlines = [np.reshape(np.asarray(p, np.float32), (-1, 2)) for p in segmentation or ()]
    if outlines:
        return outlines
    x, y, w, h = (float(v) for v in ann["bbox"])
    if w <= 0 or h <= 0:
        return []
    return [np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32)]


def _rle_outlines(rle: dict[str, Any], height: int, width: int) -> list[Outline]:
    """Outer contours of an RLE mask (compressed ``counts`` string or uncompressed list)."""
    from pycocotools import mask as mask_utils

    h, w = (int(v) for v in rle["size"])
    encoded = mask_utils.frPyObjects(rle, h, w) if isinstance(rle["counts"], list) else rle
    binary = np.ascontiguousarray(mask_utils.decode(encoded)[:height, :width])
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    # Pixel (i, j) covers [j - 0.5, j + 0.5]; contours run through pixel centres, which is
    # within half a pixel of the region's edge.
    return [c[:, 0].astype(np.float32) for c in contours if len(c) >= 3]


def draw_mask(outlines: Sequence[Outline], matrix: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` uint8 mask of the input: 1 everywhere but inside the outlines (image pixels),
    warped by ``matrix`` (``(2, 3)``, image -> input), 0 there."""
    mask = np.ones(input_size, np.uint8)
    if len(outlines):
        cv2.fillPoly(mask, [np.round(transform_points(o, matrix)).astype(np.int32) for o in outlines], 0)
    return mask
