"""PCK: the fraction of labeled keypoints predicted within a fraction of the person's size."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def pck(
    predictions: ArrayLike,
    ground_truth: ArrayLike,
    visibility: ArrayLike,
    sizes: ArrayLike,
    threshold: float = 0.1,
) -> float:
    """PCK@``threshold`` of N people, as a fraction in [0, 1].

    Args:
        predictions, ground_truth: ``(N, K, 2)`` keypoints (x, y) in pixels.
        visibility: ``(N, K)``, > 0 where the keypoint is labeled (only those count).
        sizes: ``(N,)`` each person's reference size in pixels, e.g. the longer box side.
        threshold: a keypoint is correct within ``threshold * size``.

    Returns:
        Correct labeled keypoints over labeled keypoints; NaN if none is labeled.
    """
    error = np.linalg.norm(np.asarray(predictions, np.float64) - np.asarray(ground_truth, np.float64), axis=-1)
    labeled = np.asarray(visibility) > 0
    correct = error <= threshold * np.asarray(sizes, np.float64)[:, None]
    return float((correct & labeled).sum() / labeled.sum()) if labeled.any() else float("nan")
