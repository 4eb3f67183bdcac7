"""The bridge to pycocotools: quiet COCO objects, a keypoint COCOeval run, summary numbers.

pycocotools prints progress on stdout; everything here silences it, so ``kpose eval --json``
prints nothing but JSON. pycocotools is imported inside the functions: the rest of
``kpose.evaluation`` works without it.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

ALL_AREAS = (0.0, 1e10)  # pycocotools' 'all' area range, in square pixels


@dataclass(frozen=True)
class Metric:
    """One summary number of a keypoint COCOeval run.

    Attributes:
        name: the key in the stats dict, e.g. ``"AP50"``.
        recall: average recall (True) or average precision (False).
        iou: a single OKS threshold, or None for the mean over 0.50:0.05:0.95.
        area: the label of the area range (``"all"``, ``"medium"``, ``"large"``).
    """

    name: str
    recall: bool = False
    iou: float | None = None
    area: str = "all"


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Swallow what pycocotools prints on stdout."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def ground_truth(dataset: Mapping[str, Any]) -> Any:
    """A ``pycocotools.coco.COCO`` built from a validated annotation dict."""
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = dict(dataset)
    with quiet():
        coco.createIndex()
    return coco


def detections(gt: Any, results: list[dict[str, Any]]) -> Any:
    """The results as a ``COCO`` object, as ``COCO.loadRes`` builds it (which rejects an empty list)."""
    if results:
        with quiet():
            return gt.loadRes([dict(r) for r in results])
    empty = {"images": list(gt.dataset["images"]), "categories": copy.deepcopy(gt.dataset["categories"])}
    return ground_truth({**empty, "annotations": []})


def run_keypoint_eval(
    gt: Any,
    dt: Any,
    sigmas: np.ndarray,
    *,
    area_ranges: Mapping[str, tuple[float, float]] | None = None,
    image_ids: Iterable[int] | None = None,
) -> Any:
    """Run ``COCOeval(iouType="keypoints")``: evaluate and accumulate, quietly.

    Args:
        gt, dt: ground truth and detections ``COCO`` objects.
        sigmas: (K,) per-keypoint OKS sigmas (COCO convention).
        area_ranges: label -> (min, max) area in square pixels; None keeps pycocotools'
            ``all`` / ``medium`` / ``large``.
        image_ids: evaluate on these images only; None evaluates every image of ``gt``.

    Returns:
        The ``COCOeval`` object, with ``eval`` filled.
    """
    from pycocotools.cocoeval import COCOeval

    evaluator = COCOeval(gt, dt, iouType="keypoints")
    params = evaluator.params
    params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
    if area_ranges is not None:
        params.areaRngLbl = list(area_ranges)
        params.areaRng = [list(bounds) for bounds in area_ranges.values()]
    if image_ids is not None:
        params.imgIds = sorted(image_ids)
    with quiet():
        evaluator.evaluate()
        evaluator.accumulate()
    return evaluator


def summarize(evaluator: Any, metrics: Iterable[Metric]) -> dict[str, float]:
    """The summary numbers of an accumulated keypoint ``COCOeval``, as pycocotools defines them.

    Each number is the mean of the precision (or recall) entries at the metric's OKS
    threshold(s) and area range, with the largest ``maxDets``, over the entries that exist;
    -1.0 when none does (no ground truth).
    """
    params = evaluator.params
    stats = {}
    for metric in metrics:
        values = evaluator.eval["recall" if metric.recall else "precision"]
        if metric.iou is not None:
            values = values[np.isclose(params.iouThrs, metric.iou)]
        area = params.areaRngLbl.index(metric.area)
        values = values[..., area, len(params.maxDets) - 1]
        valid = values[values > -1]
        stats[metric.name] = float(np.mean(valid)) if valid.size else -1.0
    return stats
