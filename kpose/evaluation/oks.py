"""Object keypoint similarity (OKS) and OKS non-maximum suppression, in numpy.

OKS follows the COCO definition: for keypoint ``i`` at distance ``d_i`` (pixels) from its
reference, ``e_i = d_i**2 / (2 * s**2 * k_i**2)`` with ``k_i = 2 * sigma_i`` and ``s**2`` the
object area in square pixels; OKS is the mean of ``exp(-e_i)`` over the keypoints that count.

This module imports numpy only, so a device-side tool can use it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def oks(
    reference: ArrayLike,
    candidates: ArrayLike,
    sigmas: ArrayLike,
    areas: ArrayLike,
    visible: ArrayLike | None = None,
) -> np.ndarray:
    """OKS between one pose and N others.

    Args:
        reference: (K, 2) keypoints (x, y) in pixels; extra columns (a score) are ignored.
        candidates: (N, K, 2) keypoints in pixels, extra columns ignored.
        sigmas: (K,) per-keypoint OKS sigmas, COCO convention (e.g. 0.026 for the nose).
        areas: the object area ``s**2`` in square pixels: a scalar, or (N,) one per candidate.
        visible: (K,) mask of the reference keypoints that count; None counts all of them.

    Returns:
        (N,) float64 OKS in [0, 1]; 0 for every candidate when no keypoint counts.
    """
    reference = np.asarray(reference, dtype=np.float64)[..., :2]
    candidates = np.asarray(candidates, dtype=np.float64)[..., :2]
    sigmas = np.asarray(sigmas, dtype=np.float64)
    num_keypoints = sigmas.shape[0]
    if reference.shape != (num_keypoints, 2) or candidates.shape[1:] != (num_keypoints, 2):
        raise ValueError(
            f"oks: expected reference (K, 2) and candidates (N, K, 2) with K = {num_keypoints} "
            f"(one sigma per keypoint), got {reference.shape} and {candidates.shape}"
        )
    mask = np.ones(num_keypoints, bool) if visible is None else np.asarray(visible) > 0
    if not mask.any():
        return np.zeros(candidates.shape[0])
    areas = np.broadcast_to(np.asarray(areas, dtype=np.float64), candidates.shape[:1])
    squared_distance = np.sum((candidates - reference) ** 2, axis=-1)  # (N, K)
    variances = (2.0 * sigmas) ** 2
    e = squared_distance / variances / (areas[:, None] + np.spacing(1)) / 2.0
    return np.mean(np.exp(-e[:, mask]), axis=1)


def oks_nms(
    keypoints: ArrayLike,
    scores: ArrayLike,
    areas: ArrayLike,
    sigmas: ArrayLike,
    threshold: float = 0.9,
) -> np.ndarray:
    """Greedy non-maximum suppression of poses by OKS (the top-down COCO protocol).

    The best-scoring pose is kept and every remaining pose whose OKS with it exceeds
    ``threshold`` is dropped; repeat on what is left. OKS between two poses uses all
    keypoints and the mean of the two areas.

    Args:
        keypoints: (N, K, 2) poses in pixels; a third column (keypoint scores) is ignored.
        scores: (N,) pose scores, higher is better.
        areas: (N,) pose areas (the person box area) in square pixels.
        sigmas: (K,) per-keypoint OKS sigmas, COCO convention.
        threshold: OKS above which a lower-scoring pose is a duplicate.

    Returns:
        int64 indices of the kept poses, best score first (ties keep input order).
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    areas = np.asarray(areas, dtype=np.float64)
    if keypoints.ndim != 3 or scores.shape != keypoints.shape[:1] or areas.shape != scores.shape:
        raise ValueError(
            f"oks_nms: expected keypoints (N, K, 2), scores (N,) and areas (N,), got "
            f"{keypoints.shape}, {scores.shape} and {areas.shape}"
        )
    order = np.argsort(-scores, kind="stable")
    kept = []
    while order.size:
        best, rest = order[0], order[1:]
        kept.append(best)
        overlap = oks(keypoints[best], keypoints[rest], sigmas, (areas[best] + areas[rest]) / 2.0)
        order = rest[overlap <= threshold]
    return np.asarray(kept, dtype=np.int64)
