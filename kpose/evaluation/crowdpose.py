"""CrowdPose keypoint AP, on pycocotools.

The CrowdPose protocol is COCO keypoint evaluation with these changes:

- OKS sigmas of the schema (CrowdPose-14's by default);
- at most 20 detections per image and a single area range, ``all``;
- a ground-truth person without ``area`` (CrowdPose files have none) is scaled by
  ``0.53 * bbox_w * bbox_h``;
- AP_easy / AP_medium / AP_hard: AP over the images whose ``crowdIndex`` (an image field)
  is below the first threshold, between the two, or at or above the second.

The thresholds default to the CrowdPose paper's 0.1 and 0.8. The official evaluation code
(crowdposetools, and xtcocotools after it) splits at 0.2 and 0.8; pass
``crowd_index_thresholds=(0.2, 0.8)`` to compare with numbers produced by those tools.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kpose.data.cocofile import load_annotations
from kpose.data.jsonfields import is_number
from kpose.errors import AnnotationError
from kpose.evaluation import pycoco
from kpose.evaluation.pycoco import Metric
from kpose.evaluation.resultsfile import load_results
from kpose.keypoints import KeypointSchema, get_schema

BOX_AREA_FACTOR = 0.53  # person area / box area, when the annotation gives no area

CROWDPOSE_METRICS = (
    Metric("AP"),
    Metric("AP50", iou=0.5),
    Metric("AP75", iou=0.75),
    Metric("AR", recall=True),
    Metric("AR50", recall=True, iou=0.5),
    Metric("AR75", recall=True, iou=0.75),
)
CROWD_LEVELS = ("easy", "medium", "hard")


def split_by_crowd_index(
    dataset: dict[str, Any], name: str, thresholds: tuple[float, float] = (0.1, 0.8)
) -> dict[str, list]:
    """Image ids per crowding level.

    Args:
        dataset: annotation dict whose ``images`` carry ``crowdIndex``.
        name: the file name for error messages.
        thresholds: (low, high): easy is ``crowdIndex < low``, medium ``low <= . < high``,
            hard ``>= high``.

    Returns:
        ``{"easy": [...], "medium": [...], "hard": [...]}`` image ids.
    """
    low, high = thresholds
    levels: dict[str, list] = {level: [] for level in CROWD_LEVELS}
    for i, image in enumerate(dataset["images"]):
        index = image.get("crowdIndex")
        if not is_number(index):
            problem = "is missing" if index is None else f"= {index!r} is not a number"
            raise AnnotationError(f"{name}: images[{i}]: field 'crowdIndex' {problem} (needed for AP_easy/medium/hard)")
        level = "easy" if index < low else "medium" if index < high else "hard"
        levels[level].append(image["id"])
    return levels


def evaluate_crowdpose(
    results: str | Path | list[dict[str, Any]],
    annotations: str | Path | dict[str, Any] | Any,
    schema: KeypointSchema | str = "crowdpose",
    *,
    crowd_index_thresholds: tuple[float, float] = (0.1, 0.8),
) -> dict[str, float]:
    """CrowdPose keypoint evaluation of a results list or file.

    Args:
        results: COCO-format keypoint results: a JSON path or the list itself.
        annotations: the CrowdPose ground truth: a JSON path, its dict, or a ``COCO`` object.
        schema: keypoint schema (or its name / file) giving K and the OKS sigmas.
        crowd_index_thresholds: (low, high) ``crowdIndex`` bounds of the easy / medium / hard
            image sets.

    Returns:
        ``{"AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy", "AP_medium", "AP_hard"}``,
        fractions in [0, 1]; -1 for a level without ground truth.

    Raises:
        AnnotationError: a malformed file (``crowdIndex`` missing included), naming the file
            and the field.
    """
    schema = get_schema(schema)
    dataset, name = load_annotations(annotations, schema, area_from_box=BOX_AREA_FACTOR)
    levels = split_by_crowd_index(dataset, name, crowd_index_thresholds)
    checked = load_results(results, dataset, name, schema)
    gt = pycoco.ground_truth(dataset)
    dt = pycoco.detections(gt, checked)
    area_ranges = {"all": pycoco.ALL_AREAS}

    evaluator = pycoco.run_keypoint_eval(gt, dt, schema.sigmas_array, area_ranges=area_ranges)
    stats = pycoco.summarize(evaluator, CROWDPOSE_METRICS)
    for level, image_ids in levels.items():
        key = f"AP_{level}"
        if not image_ids:
            stats[key] = -1.0
            continue
        evaluator = pycoco.run_keypoint_eval(
            gt, dt, schema.sigmas_array, area_ranges=area_ranges, image_ids=image_ids
        )
        stats[key] = pycoco.summarize(evaluator, (Metric(key),))[key]
    return stats
