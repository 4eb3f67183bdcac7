"""MPII PCKh: the fraction of joints found within a fraction of the head size.

The standard protocol (as HRNet and MMPose compute it):

- head size = 0.6 x the length of the head box diagonal, ``norm(x2 - x1, y2 - y1)``;
- a visible joint is correct at threshold ``t`` when its error is at most ``t`` x head size;
- PCKh of a joint = correct / visible over all people, in percent;
- groups: Head (head_top), Shoulder, Elbow, Wrist, Hip, Knee, Ankle (each the plain mean of
  left and right), and Mean over all joints but pelvis and thorax, weighted by how many
  times each joint is visible;
- the PCKh curve: the same at thresholds 0, 0.01, ..., 0.5.

Predictions and ground truth must share one coordinate frame (the MATLAB annotation is
1-based: add 1 to 0-based predictions, or subtract it from the ground truth).

A person without a head box cannot be scored: :func:`check_head_boxes` fails naming the file
and the ``head_box`` field rather than let PCKh count that person's joints as wrong.

This module imports numpy only (and kpose's error classes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from kpose.errors import AnnotationError
from kpose.keypoints import KeypointSchema, get_schema

HEAD_SIZE_FACTOR = 0.6
CURVE_THRESHOLDS = np.linspace(0.0, 0.5, 51)
# Reported groups: name -> the joints averaged (plain mean of their PCKh).
JOINT_GROUPS = {
    "Head": ("head_top",),
    "Shoulder": ("left_shoulder", "right_shoulder"),
    "Elbow": ("left_elbow", "right_elbow"),
    "Wrist": ("left_wrist", "right_wrist"),
    "Hip": ("left_hip", "right_hip"),
    "Knee": ("left_knee", "right_knee"),
    "Ankle": ("left_ankle", "right_ankle"),
}
EXCLUDED_FROM_MEAN = ("pelvis", "thorax")


@dataclass(frozen=True)
class PCKhResult:
    """PCKh of a set of predictions, in percent.

    Attributes:
        threshold: the PCKh threshold, as a fraction of the head size (0.5 for PCKh@0.5).
        per_joint: (K,) PCKh of each joint at ``threshold``; NaN for a joint never visible.
        visible_count: (K,) how many times each joint is visible.
        groups: ``{"Head", "Shoulder", ..., "Ankle", "Mean", "Mean@0.1"}``.
        thresholds: (T,) thresholds of the curve, 0 to 0.5.
        curve: (T, K) PCKh of each joint at each threshold.
        mean_curve: (T,) the Mean at each threshold.
    """

    threshold: float
    per_joint: np.ndarray
    visible_count: np.ndarray
    groups: dict[str, float]
    thresholds: np.ndarray
    curve: np.ndarray
    mean_curve: np.ndarray


def check_head_boxes(head_boxes: ArrayLike, source: str) -> np.ndarray:
    """(N, 4) head boxes ``[x1, y1, x2, y2]`` as float64, every one of them finite.

    Args:
        head_boxes: (N, 4) boxes, NaN where a person has none (as the MPII reader gives them).
        source: the annotation file, named in the error.

    Raises:
        AnnotationError: a person has no head box; the message names ``source`` and the
            ``head_box`` field and says how to add them.
    """
    boxes = np.asarray(head_boxes, dtype=np.float64)
    missing = ~np.isfinite(boxes).all(axis=-1)
    if not missing.any():
        return boxes
    fix = (
        "PCKh needs head boxes: run `kpose data prepare mpii --root DIR` (it writes them from the "
        "official annotation file, or from MMPose's mpii_gt_val.mat beside MMPose's mpii_val.json)"
    )
    if missing.all():
        raise AnnotationError(f"{source}: no record has 'head_box'; {fix}")
    first = int(np.argmax(missing))
    raise AnnotationError(
        f"{source}: {int(missing.sum())} of {len(boxes)} people have no 'head_box' (the first is person {first}); {fix}"
    )


def head_sizes_from_boxes(head_boxes: ArrayLike) -> np.ndarray:
    """(N,) head sizes, ``0.6 * norm(x2 - x1, y2 - y1)``, from (N, 4) ``[x1, y1, x2, y2]`` boxes."""
    boxes = np.asarray(head_boxes, dtype=np.float64)
    return HEAD_SIZE_FACTOR * np.linalg.norm(boxes[:, 2:4] - boxes[:, 0:2], axis=1)


def _rates(
    error: np.ndarray, visible: np.ndarray, in_mean: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """PCKh in percent at each threshold: (T, K) per joint (NaN if never visible) and (T,) Mean.

    ``error`` (N, K) is the joint error over the head size, ``visible`` (N, K) a mask and
    ``in_mean`` (K,) the joints the Mean counts (it weights them by visible count).
    """
    correct = (error[None] <= thresholds[:, None, None]) & visible  # (T, N, K)
    count = visible.sum(axis=0)
    per_joint = np.divide(
        100.0 * correct.sum(axis=1), count, out=np.full((len(thresholds), len(count)), np.nan), where=count > 0
    )
    total = visible[:, in_mean].sum()
    mean = 100.0 * correct[..., in_mean].sum(axis=(1, 2)) / total if total else np.full(len(thresholds), np.nan)
    return per_joint, mean


def pckh(
    predictions: ArrayLike,
    ground_truth: ArrayLike,
    visibility: ArrayLike,
    head_boxes: ArrayLike | None = None,
    *,
    head_sizes: ArrayLike | None = None,
    threshold: float = 0.5,
    schema: KeypointSchema | str = "mpii",
    source: str = "pckh",
) -> PCKhResult:
    """PCKh of N people.

    Args:
        predictions: (N, K, 2) predicted joints (x, y) in pixels.
        ground_truth: (N, K, 2) annotated joints, same frame.
        visibility: (N, K), > 0 where the joint is annotated (MPII: not ``jnt_missing``).
        head_boxes: (N, 4) head boxes ``[x1, y1, x2, y2]`` in pixels; or give ``head_sizes``.
        head_sizes: (N,) head sizes in pixels (already multiplied by 0.6).
        threshold: PCKh threshold as a fraction of the head size.
        schema: keypoint schema naming the joints (MPII-16 by default); it must have the
            joints of :data:`JOINT_GROUPS` and :data:`EXCLUDED_FROM_MEAN`.
        source: the annotation file, named when a head box is missing.

    Returns:
        A :class:`PCKhResult`, numbers in percent.

    Raises:
        AnnotationError: a head box is missing (NaN), see :func:`check_head_boxes`.
    """
    schema = get_schema(schema)
    predictions = np.asarray(predictions, dtype=np.float64)
    ground_truth = np.asarray(ground_truth, dtype=np.float64)
    visible = np.asarray(visibility) > 0
    if (head_boxes is None) == (head_sizes is None):
        raise ValueError("pckh: give exactly one of head_boxes (N, 4) and head_sizes (N,)")
    if head_sizes is None:
        sizes = head_sizes_from_boxes(check_head_boxes(head_boxes, source))
    else:
        sizes = np.asarray(head_sizes, np.float64)
    n, k = len(predictions), schema.num_keypoints
    shapes = (predictions.shape, ground_truth.shape, visible.shape, sizes.shape)
    if shapes != ((n, k, 2), (n, k, 2), (n, k), (n,)):
        raise ValueError(
            f"pckh: expected predictions (N, K, 2), ground_truth (N, K, 2), visibility (N, K) and "
            f"N head sizes with K = {k} (schema {schema.name!r}), got {shapes}"
        )
    if np.any(sizes <= 0):
        raise ValueError(f"pckh: head sizes must be positive, person {int(np.argmin(sizes))} has {sizes.min()}")

    error = np.linalg.norm(predictions - ground_truth, axis=-1) / sizes[:, None]  # (N, K)
    in_mean = np.ones(k, bool)
    in_mean[[schema.index(joint) for joint in EXCLUDED_FROM_MEAN]] = False
    curve, mean_curve = _rates(error, visible, in_mean, CURVE_THRESHOLDS)
    (per_joint, _), (mean, mean_at_01) = _rates(error, visible, in_mean, np.array([threshold, 0.1]))

    groups = {
        group: float(np.mean([per_joint[schema.index(joint)] for joint in joints]))
        for group, joints in JOINT_GROUPS.items()
    }
    groups["Mean"] = float(mean)
    groups["Mean@0.1"] = float(mean_at_01)
    return PCKhResult(
        threshold=threshold,
        per_joint=per_joint,
        visible_count=visible.sum(axis=0),
        groups=groups,
        thresholds=CURVE_THRESHOLDS.copy(),
        curve=curve,
        mean_curve=mean_curve,
    )
