"""Top-down COCO protocol, prediction side: rescoring, OKS-NMS and the COCO results list.

A top-down evaluator runs the model on one person box at a time; :class:`TopDownResults`
collects those per-box predictions (batched arrays) and turns them into the list of COCO
results that :func:`kpose.evaluation.evaluate_coco` scores:

- rescore: pose score = box score x mean of the keypoint scores above 0.2;
- OKS-NMS at 0.9 among the poses of each image;
- one result per kept pose: ``{"image_id", "category_id": 1, "keypoints": [x, y, score] * K,
  "score"}``.

This module imports numpy only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from kpose.evaluation.oks import oks_nms
from kpose.keypoints import KeypointSchema, get_schema


def rescore(keypoint_scores: ArrayLike, box_scores: ArrayLike, threshold: float = 0.2) -> np.ndarray:
    """Pose scores of the top-down protocol.

    Args:
        keypoint_scores: (N, K) keypoint confidences (heatmap maxima).
        box_scores: (N,) person detector scores.
        threshold: keypoint scores above it enter the mean.

    Returns:
        (N,) float64: ``box_score * mean(keypoint scores > threshold)``, 0 where no keypoint
        score passes the threshold.
    """
    keypoint_scores = np.asarray(keypoint_scores, dtype=np.float64)
    box_scores = np.asarray(box_scores, dtype=np.float64)
    confident = keypoint_scores > threshold
    count = confident.sum(axis=1)
    total = np.where(confident, keypoint_scores, 0.0).sum(axis=1)
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return box_scores * mean


class TopDownResults:
    """Collects per-box predictions and produces the COCO keypoint results list.

    Args:
        schema: keypoint schema (or its name / file); gives K and the OKS sigmas for NMS.
        keypoint_threshold: keypoint scores above it enter the rescoring mean.
        nms_threshold: OKS above which a lower-scoring pose of the same image is dropped.
        category_id: the COCO category of every result (1 = person).
    """

    def __init__(
        self,
        schema: KeypointSchema | str = "coco",
        *,
        keypoint_threshold: float = 0.2,
        nms_threshold: float = 0.9,
        category_id: int = 1,
    ) -> None:
        self.schema = get_schema(schema)
        self.keypoint_threshold = keypoint_threshold
        self.nms_threshold = nms_threshold
        self.category_id = category_id
        self._batches: list[tuple[np.ndarray, ...]] = []

    def __len__(self) -> int:
        """Number of boxes added so far."""
        return sum(len(batch[0]) for batch in self._batches)

    def add(
        self,
        image_ids: ArrayLike,
        keypoints: ArrayLike,
        keypoint_scores: ArrayLike,
        box_scores: ArrayLike,
        box_areas: ArrayLike,
    ) -> None:
        """Add the predictions for B person boxes (or one box, without the batch axis).

        Args:
            image_ids: (B,) COCO image ids.
            keypoints: (B, K, 2) keypoints (x, y) in image pixels.
            keypoint_scores: (B, K) keypoint confidences.
            box_scores: (B,) person detector scores.
            box_areas: (B,) areas of the person boxes in square pixels (used by OKS-NMS).
        """
        keypoints = np.asarray(keypoints, dtype=np.float64)
        if keypoints.ndim == 2:
            keypoints = keypoints[None]
        batch = (
            np.asarray(image_ids, dtype=np.int64).reshape(-1),
            keypoints,
            np.asarray(keypoint_scores, dtype=np.float64).reshape(len(keypoints), -1),
            np.asarray(box_scores, dtype=np.float64).reshape(-1),
            np.asarray(box_areas, dtype=np.float64).reshape(-1),
        )
        b, k = len(keypoints), self.schema.num_keypoints
        expected = ((b,), (b, k, 2), (b, k), (b,), (b,))
        got = tuple(array.shape for array in batch)
        if got != expected:
            names = "image_ids, keypoints, keypoint_scores, box_scores, box_areas"
            raise ValueError(
                f"TopDownResults.add: expected shapes {expected} for ({names}) with "
                f"K = {k} (schema {self.schema.name!r}), got {got}"
            )
        self._batches.append(batch)

    def results(self) -> list[dict[str, Any]]:
        """The COCO results list: rescored, OKS-NMS per image, sorted by image then score."""
        if not self._batches:
            return []
        image_ids, keypoints, keypoint_scores, box_scores, box_areas = (
            np.concatenate(column) for column in zip(*self._batches)
        )
        scores = rescore(keypoint_scores, box_scores, self.keypoint_threshold)
        flat = np.concatenate([keypoints, keypoint_scores[..., None]], axis=-1).reshape(len(scores), -1)
        results = []
        by_image = np.argsort(image_ids, kind="stable")
        unique_ids, counts = np.unique(image_ids[by_image], return_counts=True)
        for image_id, members in zip(unique_ids, np.split(by_image, np.cumsum(counts)[:-1])):
            kept = oks_nms(
                keypoints[members],
                scores[members],
                box_areas[members],
                self.schema.sigmas_array,
                self.nms_threshold,
            )
            for index in members[kept]:
                results.append(
                    {
                        "image_id": int(image_id),
                        "category_id": self.category_id,
                        "keypoints": flat[index].tolist(),
                        "score": float(scores[index]),
                    }
                )
        return results

    def write_results(self, path: str | Path) -> Path:
        """Write :meth:`results` as a COCO results JSON file; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.results()))
        return path
