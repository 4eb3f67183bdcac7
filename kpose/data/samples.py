"""The table of person samples that every reader returns and the pipeline consumes.

One row per person instance (a ground-truth person or a detected box), numpy columns.
Coordinates are image pixels with pixel centres at integers (see :mod:`kpose.geometry`).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, fields, replace

import numpy as np

from kpose.errors import AnnotationError

log = logging.getLogger("kpose.data")


@dataclass(frozen=True)
class PersonSamples:
    """Person instances, column-wise. N rows, K keypoints.

    Attributes:
        image_paths: ``(N,)`` str, the image file of each row.
        image_ids: ``(N,)`` int64, the dataset's image id (COCO ``image_id``; MPII: the
            image's order of first appearance).
        boxes: ``(N, 4)`` float32 person boxes ``(x, y, w, h)``, image pixels.
        keypoints: ``(N, K, 2)`` float32 ``(x, y)``, image pixels; 0 where unlabeled.
        visibility: ``(N, K)`` float32 COCO flags: 0 unlabeled, 1 labeled but hidden,
            2 visible.
        scores: ``(N,)`` float32 box scores (1 for ground truth).
        areas: ``(N,)`` float32 areas for OKS, pixels^2 (COCO ``area``; else box area).
        head_boxes: ``(N, 4)`` float32 head boxes ``(x1, y1, x2, y2)`` for PCKh; NaN where
            the annotation has none.
        ann_ids: ``(N,)`` int64 annotation ids (COCO ``id``; else the row's position in the
            file; -1 for detections).
        source: the annotation or detection file the rows came from.
    """

    image_paths: np.ndarray
    image_ids: np.ndarray
    boxes: np.ndarray
    keypoints: np.ndarray
    visibility: np.ndarray
    scores: np.ndarray
    areas: np.ndarray
    head_boxes: np.ndarray
    ann_ids: np.ndarray
    source: str = ""

    def __post_init__(self) -> None:
        n = len(self.image_paths)
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray) and len(value) != n:
                raise ValueError(f"PersonSamples.{f.name} has {len(value)} rows, image_paths has {n}")

    def __len__(self) -> int:
        return len(self.image_paths)

    @property
    def num_keypoints(self) -> int:
        return int(self.keypoints.shape[1])

    def select(self, rows: np.ndarray) -> PersonSamples:
        """The rows picked by a boolean mask or an index array."""
        return replace(
            self, **{f.name: getattr(self, f.name)[rows] for f in fields(self) if f.name != "source"}
        )

    @classmethod
    def build(
        cls,
        image_paths: list[str],
        image_ids: list[int],
        boxes: np.ndarray,
        keypoints: np.ndarray,
        visibility: np.ndarray,
        source: str,
        scores: np.ndarray | None = None,
        areas: np.ndarray | None = None,
        head_boxes: np.ndarray | None = None,
        ann_ids: np.ndarray | None = None,
    ) -> PersonSamples:
        """Cast columns to their dtypes and fill the optional ones with their defaults."""
        n = len(image_paths)
        boxes = np.asarray(boxes, np.float32).reshape(n, 4)
        return cls(
            image_paths=np.asarray(image_paths, dtype=object),
            image_ids=np.asarray(image_ids, np.int64),
            boxes=boxes,
            keypoints=np.asarray(keypoints, np.float32).reshape(n, -1, 2),
            visibility=np.asarray(visibility, np.float32).reshape(n, -1),
            scores=np.ones(n, np.float32) if scores is None else np.asarray(scores, np.float32),
            areas=boxes[:, 2] * boxes[:, 3] if areas is None else np.asarray(areas, np.float32),
            head_boxes=np.asarray(np.full((n, 4), np.nan) if head_boxes is None else head_boxes, np.float32),
            ann_ids=np.arange(n, dtype=np.int64) if ann_ids is None else np.asarray(ann_ids, np.int64),
            source=source,
        )


def keep_rows(samples: PersonSamples, reasons: dict[str, np.ndarray], what: str) -> PersonSamples:
    """Drop the rows flagged in ``reasons`` (name -> (N,) bool drop mask), log the counts.

    A row is counted under the first reason that drops it.

    Raises:
        AnnotationError: if no row is left; the message gives the counts per reason.
    """
    dropped = np.zeros(len(samples), bool)
    counts: Counter[str] = Counter()
    for name, mask in reasons.items():
        counts[name] = int((mask & ~dropped).sum())
        dropped |= mask
    summary = ", ".join(f"{n} {name}" for name, n in counts.items() if n) or "none"
    kept = samples.select(~dropped)
    if len(kept) == 0:
        raise AnnotationError(
            f"{samples.source}: no {what} left after filtering: {len(samples)} read, dropped {summary}"
        )
    log.info("%s: %d %s kept of %d (dropped: %s)", samples.source, len(kept), what, len(samples), summary)
    return kept

