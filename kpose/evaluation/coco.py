"""COCO keypoint AP: pycocotools ``COCOeval`` with the schema's OKS sigmas.

The ten standard numbers (fractions in [0, 1], -1 where there is no ground truth):
AP, AP50, AP75, APm, APl (average precision over OKS 0.50:0.95, at 0.50, at 0.75, on medium
and large people) and AR, AR50, AR75, ARm, ARl (the same for average recall), at most 20
detections per image. They equal what pycocotools prints for the same files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from kpose.data.cocofile import load_annotations
from kpose.evaluation import pycoco
from kpose.evaluation.pycoco import Metric
from kpose.evaluation.resultsfile import load_results
from kpose.keypoints import KeypointSchema, get_schema

COCO_METRICS = (
    Metric("AP"),
    Metric("AP50", iou=0.5),
    Metric("AP75", iou=0.75),
    Metric("APm", area="medium"),
    Metric("APl", area="large"),
    Metric("AR", recall=True),
    Metric("AR50", recall=True, iou=0.5),
    Metric("AR75", recall=True, iou=0.75),
    Metric("ARm", recall=True, area="medium"),
    Metric("ARl", recall=True, area="large"),
)

# AP across OKS thresholds, strict ones included: where heatmap quantization shows.
THRESHOLD_METRICS = (
    Metric("AP"),
    Metric("AP50", iou=0.5),
    Metric("AP75", iou=0.75),
    Metric("AP85", iou=0.85),
    Metric("AP95", iou=0.95),
)


def evaluate_coco(
    results: str | Path | list[dict[str, Any]],
    annotations: str | Path | dict[str, Any] | Any,
    schema: KeypointSchema | str = "coco",
    metrics: Sequence[Metric] = COCO_METRICS,
) -> dict[str, float]:
    """COCO keypoint evaluation of a results list or file.

    Args:
        results: COCO keypoint results (``image_id``, ``category_id``, ``keypoints`` as
            [x, y, score] * K in image pixels, ``score``): a JSON path or the list itself.
        annotations: the ground truth: a COCO JSON path, its dict, or a pycocotools ``COCO``.
        schema: keypoint schema (or its name / file); its sigmas are the OKS sigmas, so a
            custom keypoint set is scored with its own.
        metrics: the numbers to report; default the ten standard ones.

    Returns:
        ``{"AP": ..., "AP50": ..., ..., "ARl": ...}``, one number per metric.

    Raises:
        AnnotationError: a malformed file, naming the file and the field.
    """
    schema = get_schema(schema)
    dataset, name = load_annotations(annotations, schema)
    checked = load_results(results, dataset, name, schema)
    gt = pycoco.ground_truth(dataset)
    evaluator = pycoco.run_keypoint_eval(gt, pycoco.detections(gt, checked), schema.sigmas_array)
    return pycoco.summarize(evaluator, metrics)
