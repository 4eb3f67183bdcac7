"""The associative-embedding codec (Newell et al., 2017): heatmaps and tags <-> people, numpy.

A bottom-up model predicts, for a whole image, heatmaps ``(h, w, K)`` with one peak per person
and keypoint type, and tags ``(h, w, K)`` (or ``(h, w, K, D)`` after a flip test): the
keypoints of one person carry similar tags, those of different people dissimilar ones.
Decoding turns them into people in three steps:

1. :func:`find_candidates`: heatmap NMS (a max-pool keeps local maxima), the ``top_k`` peaks
   per keypoint type, each moved to the sub-pixel peak of a Gaussian through it and its
   neighbours ("adjust": :func:`log_parabola_offset`; the papers' code moves a quarter pixel
   toward the higher neighbour, 0.01 AP lower here), with its score and its tag. The
   exported graph computes exactly these candidates
   (:func:`kpose.codecs.associative_embedding_tf.find_candidates`).
2. :func:`group_candidates`: keypoint types one at a time; each candidate above the detection
   threshold joins the person whose mean tag is nearest (cost ``round(distance) * 100 -
   score``, greedy, within ``tag_threshold``) or starts a new person.
3. :func:`refine_people` ("refine"): a person's missing keypoint takes the candidate of
   that type whose tag is nearest the person's tag, so every person has K keypoints.

:class:`AssociativeEmbeddingCodec` holds the settings (its heatmap side is a
:class:`~kpose.codecs.heatmap.HeatmapCodec`, whose peak window is the NMS kernel) and is what
evaluation, export and the device runtime use. The training targets are rendered by the
losses (:mod:`kpose.engine.bottomup_loss`) with the same heatmap codec. Only numpy: it runs on
a device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from kpose.codecs.decoders import LOG_EPS, flip_back
from kpose.codecs.gaussian import peak_window, sigma_for_stride
from kpose.codecs.heatmap import HeatmapCodec
from kpose.errors import KposeError
from kpose.geometry.affine import heatmap_to_input

TOP_K = 30
DETECTION_THRESHOLD = 0.1
TAG_THRESHOLD = 1.0
# matching cost: tag distance rounded to whole units first, then heatmap score (as MMPose)
_TAG_COST = 100.0


@dataclass(frozen=True)
class Candidates:
    """The ``M`` best heatmap peaks of each keypoint type of one image.

    Attributes:
        coords: ``(K, M, 2)`` float (x, y) in input pixels.
        scores: ``(K, M)`` heatmap values at the peaks (0 where fewer than M peaks exist).
        tags: ``(K, M, D)`` the tags at the peaks.
    """

    coords: np.ndarray
    scores: np.ndarray
    tags: np.ndarray

    @property
    def num_keypoints(self) -> int:
        return self.scores.shape[0]


def _as_tags(tags: np.ndarray) -> np.ndarray:
    """Tags as ``(h, w, K, D)``."""
    tags = np.asarray(tags, dtype=np.float32)
    return tags[..., None] if tags.ndim == 3 else tags


def heatmap_nms(heatmaps: np.ndarray, kernel: int) -> np.ndarray:
    """``(h, w, K)`` heatmaps with every value that is not its ``kernel`` x ``kernel``
    neighbourhood's maximum set to 0 (padding outside the map counts as -inf)."""
    pad = kernel // 2
    padded = np.pad(heatmaps, ((pad, pad), (pad, pad), (0, 0)), constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kernel, kernel), axis=(0, 1))
    pooled = windows.max(axis=(-2, -1))
    return np.where(pooled == heatmaps, heatmaps, 0.0).astype(heatmaps.dtype)


def log_parabola_offset(left: np.ndarray, centre: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Sub-pixel offset of a peak from its value and its two neighbours on one axis: the vertex
    of the parabola through their logs, exact for a sampled Gaussian. Values are floored at
    ``LOG_EPS``; 0 where the logs do not curve down; clipped to half a pixel."""
    a, c, b = (np.log(np.maximum(v, LOG_EPS)) for v in (left, centre, right))
    curve = a - 2.0 * c + b
    offset = np.where(curve < 0, 0.5 * (a - b) / np.where(curve < 0, curve, -1.0), 0.0)
    return np.clip(offset, -0.5, 0.5)


def _peak_offsets(heatmaps: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(K, M, 2)`` sub-pixel offsets (:func:`log_parabola_offset` on each axis) of integer
    peaks ``x, y (K, M)``; 0 on the map's border."""
    h, w, k = heatmaps.shape
    ch = np.arange(k)[:, None]
    centre = heatmaps[y, x, ch]
    dx = log_parabola_offset(heatmaps[y, np.maximum(x - 1, 0), ch], centre, heatmaps[y, np.minimum(x + 1, w - 1), ch])
    dy = log_parabola_offset(heatmaps[np.maximum(y - 1, 0), x, ch], centre, heatmaps[np.minimum(y + 1, h - 1), x, ch])
    return np.stack([dx * ((x > 0) & (x < w - 1)), dy * ((y > 0) & (y < h - 1))], axis=-1)


def find_candidates(
    heatmaps: np.ndarray,
    tags: np.ndarray,
    stride: float = 1.0,
    top_k: int = TOP_K,
    nms_kernel: int | None = None,
) -> Candidates:
    """Heatmap NMS, the ``top_k`` peaks per keypoint type, sub-pixel adjust.

    Args:
        heatmaps: ``(h, w, K)`` float.
        tags: ``(h, w, K)`` or ``(h, w, K, D)``.
        stride: input pixels per heatmap pixel (coordinates come back in input pixels).
        top_k: M, candidates per keypoint type (the most people an image can hold).
        nms_kernel: odd max-pool kernel; default: the peak window of a default-sigma
            target at ``stride`` (:func:`~kpose.codecs.gaussian.peak_window`).

    Returns:
        :class:`Candidates`, best first per keypoint type.
    """
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    tags = _as_tags(tags)
    if heatmaps.ndim != 3 or tags.shape[:3] != heatmaps.shape:
        raise KposeError(
            f"find_candidates: heatmaps must be (h, w, K) and tags (h, w, K) or (h, w, K, D) of the "
            f"same h, w, K; got heatmaps {heatmaps.shape} and tags {np.shape(tags)}"
        )
    if top_k < 1:
        raise KposeError(f"find_candidates: top_k must be >= 1, got {top_k}")
    h, w, k = heatmaps.shape
    peaks = heatmap_nms(heatmaps, nms_kernel or peak_window(sigma_for_stride(stride)))
    flat = peaks.reshape(h * w, k).T  # (K, h*w)
    m = min(top_k, h * w)
    best = np.argsort(-flat, axis=1, kind="stable")[:, :m]  # (K, M)
    scores = np.take_along_axis(flat, best, axis=1)
    y, x = np.divmod(best, w)
    coords = np.stack([x, y], axis=-1).astype(np.float32) + _peak_offsets(heatmaps, x, y)
    peak_tags = tags[y, x, np.arange(k)[:, None]]  # (K, M, D)
    return Candidates(heatmap_to_input(coords, stride).astype(np.float32), scores, peak_tags)


def group_candidates(
    candidates: Candidates,
    detection_threshold: float = DETECTION_THRESHOLD,
    tag_threshold: float = TAG_THRESHOLD,
    order: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Match candidates into people by tag distance and heatmap score.

    Args:
        candidates: from :func:`find_candidates`.
        detection_threshold: candidates scoring at most this are ignored.
        tag_threshold: a candidate joins a person only if its tag is nearer than this to the
            person's mean tag (L2 over D).
        order: the keypoint types in the order they are matched (default: schema order).

    Returns:
        ``people (N, K, 3)`` float32 (x, y in input pixels, score; score 0 where missing) and
        ``person_tags (N, D)`` (mean tag of each person's keypoints).
    """
    k, _, d = candidates.tags.shape
    people: list[np.ndarray] = []
    tag_sums: list[np.ndarray] = []
    counts: list[int] = []
    for joint in range(k) if order is None else order:
        keep = np.flatnonzero(candidates.scores[joint] > detection_threshold)
        if keep.size == 0:
            continue
        coords, scores, tags = (
            candidates.coords[joint, keep], candidates.scores[joint, keep], candidates.tags[joint, keep]
        )
        owner = np.full(keep.size, -1)
        if people:
            person_tags = np.stack(tag_sums) / np.asarray(counts, dtype=np.float32)[:, None]
            dist = np.linalg.norm(tags[:, None, :] - person_tags[None], axis=-1)  # (M, P)
            cost = np.round(dist) * _TAG_COST - scores[:, None]
            taken = np.zeros(len(people), bool)
            for flat in np.argsort(cost, axis=None, kind="stable"):
                c, p = divmod(int(flat), len(people))
                if owner[c] < 0 and not taken[p] and dist[c, p] < tag_threshold:
                    owner[c], taken[p] = p, True
        for c in range(keep.size):
            if owner[c] < 0:
                owner[c] = len(people)
                people.append(np.zeros((k, 3), np.float32))
                tag_sums.append(np.zeros(d, np.float32))
                counts.append(0)
            p = owner[c]
            people[p][joint] = (*coords[c], scores[c])
            tag_sums[p] += tags[c]
            counts[p] += 1
    if not people:
        return np.zeros((0, k, 3), np.float32), np.zeros((0, d), np.float32)
    person_tags = np.stack(tag_sums) / np.asarray(counts, dtype=np.float32)[:, None]
    return np.stack(people), person_tags.astype(np.float32)


def refine_people(people: np.ndarray, person_tags: np.ndarray, candidates: Candidates) -> np.ndarray:
    """Fill each person's missing keypoints (score 0) with the candidate of that type whose
    tag is nearest the person's (cost ``round(distance) * 100 - score``, candidates with a
    positive score only). Returns a new ``(N, K, 3)`` array."""
    people = people.copy()
    for p, person in enumerate(people):
        for joint in np.flatnonzero(person[:, 2] <= 0):
            valid = candidates.scores[joint] > 0
            if not valid.any():
                continue
            dist = np.linalg.norm(candidates.tags[joint] - person_tags[p], axis=-1)
            cost = np.where(valid, np.round(dist) * _TAG_COST - candidates.scores[joint], np.inf)
            best = int(np.argmin(cost))
            person[joint] = (*candidates.coords[joint, best], candidates.scores[joint, best])
    return people


def group_people(
    candidates: Candidates,
    detection_threshold: float = DETECTION_THRESHOLD,
    tag_threshold: float = TAG_THRESHOLD,
    refine: bool = True,
    max_people: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Candidates to people: :func:`group_candidates`, optionally :func:`refine_people`.

    Returns:
        ``people (N, K, 3)`` (x, y in input pixels, score) and ``scores (N,)``, the mean
        keypoint score of each person as grouped, before refinement, best first (at most
        ``max_people``). Scored after it, a stray candidate that started a person of its own
        would borrow real people's keypoints and rank with them (as in Newell et al.'s and
        HigherHRNet's code, refinement moves keypoints, not scores).
    """
    people, person_tags = group_candidates(candidates, detection_threshold, tag_threshold)
    scores = people[:, :, 2].mean(axis=1) if len(people) else np.zeros(0, np.float32)
    if refine and len(people):
        people = refine_people(people, person_tags, candidates)
    best = np.argsort(-scores, kind="stable")[:max_people]
    return people[best], scores[best].astype(np.float32)


def flip_merge(
    heatmaps: np.ndarray,
    tags: np.ndarray,
    flipped_heatmaps: np.ndarray,
    flipped_tags: np.ndarray,
    flip_index: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Flip test: average the heatmaps of the image and of its mirror (un-flipped, left and
    right swapped) and stack both tags.

    Args:
        heatmaps, tags: ``(h, w, K)`` of the image.
        flipped_heatmaps, flipped_tags: ``(h, w, K)`` of the horizontally flipped image.
        flip_index: ``(K,)`` from the keypoint schema.

    Returns:
        ``heatmaps (h, w, K)`` and ``tags (h, w, K, 2)``.
    """
    back = flip_back(np.stack([flipped_heatmaps, flipped_tags]), flip_index)
    merged = 0.5 * (np.asarray(heatmaps, np.float32) + back[0])
    return merged.astype(np.float32), np.stack([tags, back[1]], axis=-1).astype(np.float32)


@dataclass(frozen=True)
class AssociativeEmbeddingCodec:
    """Heatmaps and tags of a whole image <-> people, with one set of settings.

    Attributes:
        heatmap: the heatmap side (input size, stride, sigma); its peak window is the NMS
            kernel.
        top_k: candidates per keypoint type (the most people an image can hold).
        detection_threshold, tag_threshold, refine, max_people: grouping settings
            (:func:`group_people`).
    """

    heatmap: HeatmapCodec
    top_k: int = TOP_K
    detection_threshold: float = DETECTION_THRESHOLD
    tag_threshold: float = TAG_THRESHOLD
    refine: bool = True
    max_people: int | None = None

    @property
    def nms_kernel(self) -> int:
        """The max-pool kernel of heatmap NMS, heatmap pixels."""
        return self.heatmap.peak_window

    @property
    def num_candidates(self) -> int:
        """M, candidates per keypoint type: ``top_k``, or every pixel of a smaller map."""
        h, w = self.heatmap.heatmap_size
        return min(self.top_k, h * w)

    def candidates(self, heatmaps: np.ndarray, tags: np.ndarray) -> Candidates:
        """One image's ``(h, w, K)`` heatmaps and ``(h, w, K[, D])`` tags -> candidates in
        input pixels (:func:`find_candidates`)."""
        return find_candidates(heatmaps, tags, self.heatmap.stride, self.top_k, self.nms_kernel)

    def candidates_tf(self, heatmaps: Any, tags: Any) -> dict[str, Any]:
        """TensorFlow twin of :meth:`candidates` on a batch ``(B, h, w, K)``, builtin ops only,
        coordinates normalized to the input
        (:func:`kpose.codecs.associative_embedding_tf.find_candidates`)."""
        from kpose.codecs import associative_embedding_tf

        return associative_embedding_tf.find_candidates(heatmaps, tags, self.top_k, self.nms_kernel)

    def group(self, candidates: Candidates) -> tuple[np.ndarray, np.ndarray]:
        """People ``(N, K, 3)`` (x, y input pixels, score) and their scores ``(N,)``, best
        first (:func:`group_people`)."""
        return group_people(candidates, self.detection_threshold, self.tag_threshold, self.refine, self.max_people)

    def decode(self, heatmaps: np.ndarray, tags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One image's heatmaps and tags -> people and scores: :meth:`candidates`, then
        :meth:`group`."""
        return self.group(self.candidates(heatmaps, tags))
