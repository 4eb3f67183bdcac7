"""Readers for COCO-format keypoint files (COCO, CrowdPose, user sets) and detection results.

The whole file is validated before any row is built, by :func:`kpose.data.cocofile.load_annotations`
(the validation the evaluator uses too): a wrong type, a missing field, or a keypoint count that
does not match the schema raises :class:`AnnotationError` naming the file and the field (e.g.
``annotations[12].keypoints``). Indexing goes through pycocotools.

Filtering follows SimpleBaseline / HRNet / MMPose: crowd regions and persons without any
labeled keypoint are dropped, boxes are clipped to the image, and boxes whose clipped width
or height is below ``min_box_side`` pixels are dropped.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO

from kpose.data import jsonfields as jf
from kpose.data.cocofile import PERSON, load_annotations
from kpose.data.samples import PersonSamples, keep_rows
from kpose.keypoints import KeypointSchema, get_schema

log = logging.getLogger("kpose.data")

BOX_AREA = 1.0  # a person without ``area`` counts its whole box


def _load_coco(annotation_file: str | Path, schema: KeypointSchema, category_id: int) -> COCO:
    """Validate a COCO keypoint file (see :mod:`kpose.data.cocofile`) and index it with pycocotools."""
    dataset, _ = load_annotations(annotation_file, schema, area_from_box=BOX_AREA, category_id=category_id)
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco.createIndex()
    return coco


def _clip_boxes(boxes: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Clip ``(N, 4)`` xywh boxes to images of ``(N, 2)`` (height, width); 0 = unknown size."""
    x1, y1 = np.maximum(boxes[:, 0], 0), np.maximum(boxes[:, 1], 0)
    x2, y2 = boxes[:, 0] + boxes[:, 2], boxes[:, 1] + boxes[:, 3]
    height, width = sizes[:, 0], sizes[:, 1]
    x2 = np.where(width > 0, np.minimum(x2, width), x2)
    y2 = np.where(height > 0, np.minimum(y2, height), y2)
    return np.stack([x1, y1, np.maximum(x2 - x1, 0), np.maximum(y2 - y1, 0)], axis=1)


def _locate(
    coco: COCO, image_ids: list[int], image_dir: str | Path, boxes: np.ndarray
) -> tuple[list[str], np.ndarray]:
    """Image paths of ``image_ids``, and their ``(N, 4)`` boxes clipped to those images."""
    images = [coco.imgs[i] for i in image_ids]
    sizes = np.array([(im.get("height", 0), im.get("width", 0)) for im in images], np.int64).reshape(-1, 2)
    return [str(Path(image_dir) / im["file_name"]) for im in images], _clip_boxes(boxes, sizes)


def _outside_image(
    coco: COCO, image_ids: list[int], raw: np.ndarray, clipped: np.ndarray, min_box_side: float, source: Path
) -> np.ndarray:
    """``(N,)`` the boxes of a usable size that do not overlap their image's declared
    ``width``/``height`` at all; a warning names the first (the declared size is likely
    wrong). A box that keeps a sliver at the image's edge is not one: it is a tiny box."""
    outside = (np.minimum(raw[:, 2], raw[:, 3]) >= min_box_side) & (
        np.minimum(clipped[:, 2], clipped[:, 3]) <= 0
    )
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        image = coco.imgs[image_ids[first]]
        log.warning(
            "%s: %d person boxes lie outside their image's declared width/height, dropped; e.g. box %s in "
            "image %s (%r, declared %sx%s): check images[].width/height against the files",
            source, int(outside.sum()), raw[first].tolist(), image_ids[first], image.get("file_name"),
            image.get("width"), image.get("height"),
        )
    return outside


def read_coco(
    annotation_file: str | Path,
    image_dir: str | Path,
    schema: str | Path | KeypointSchema = "coco",
    *,
    category_id: int = PERSON,
    drop_crowd: bool = True,
    drop_unlabeled: bool = True,
    min_box_side: float = 1.0,
) -> PersonSamples:
    """Person rows of a COCO-format keypoint file (COCO, CrowdPose or a user schema).

    Args:
        annotation_file: COCO keypoints JSON (``images``, ``annotations``, ``categories``).
        image_dir: folder holding the images' ``file_name``.
        schema: keypoint schema; K = ``schema.num_keypoints`` values per annotation.
        category_id: the person category; other categories are skipped.
        drop_crowd: drop ``iscrowd`` regions.
        drop_unlabeled: drop persons with no labeled keypoint (all ``v == 0``).
        min_box_side: drop boxes whose clipped width or height is below this, pixels.

    Raises:
        AnnotationError: a malformed file (naming the field), or no person left.
    """
    schema = get_schema(schema)
    source = Path(annotation_file)
    coco = _load_coco(source, schema, category_id)
    anns = [ann for image_id in sorted(coco.imgs) for ann in coco.imgToAnns.get(image_id, [])]
    if not anns:
        raise jf.fail(source, "annotations", "is empty: no person to read")
    n, k = len(anns), schema.num_keypoints
    kps = np.array([ann["keypoints"] for ann in anns], np.float32).reshape(n, k, 3)
    raw_boxes = np.array([ann["bbox"] for ann in anns], np.float32).reshape(n, 4)
    image_ids = [ann["image_id"] for ann in anns]
    paths, boxes = _locate(coco, image_ids, image_dir, raw_boxes)
    outside = _outside_image(coco, image_ids, raw_boxes, boxes, min_box_side, source)
    unlabeled = (kps[..., 2] > 0).sum(axis=1) == 0
    samples = PersonSamples.build(
        image_paths=paths,
        image_ids=image_ids,
        boxes=boxes,
        keypoints=kps[..., :2],
        visibility=kps[..., 2],
        areas=np.array([ann["area"] for ann in anns], np.float32),
        ann_ids=np.array([ann["id"] for ann in anns], np.int64),
        source=str(source),
    )
    return keep_rows(
        samples,
        {
            "other category": np.array([ann["category_id"] != category_id for ann in anns], bool),
            "crowd": np.array([bool(ann["iscrowd"]) and drop_crowd for ann in anns], bool),
            "without keypoints": unlabeled & drop_unlabeled,
            "outside their image's width/height": outside,
            "tiny box": np.minimum(boxes[:, 2], boxes[:, 3]) < min_box_side,
        },
        "persons",
    )


def read_crowdpose(
    annotation_file: str | Path,
    image_dir: str | Path,
    schema: str | Path | KeypointSchema = "crowdpose",
    **kwargs: object,
) -> PersonSamples:
    """Person rows of a CrowdPose file (COCO format, 14 keypoints); see :func:`read_coco`."""
    return read_coco(annotation_file, image_dir, schema, **kwargs)


def read_detections(
    detection_file: str | Path,
    annotation_file: str | Path,
    image_dir: str | Path,
    schema: str | Path | KeypointSchema = "coco",
    *,
    score_threshold: float = 0.0,
    category_id: int = PERSON,
    min_box_side: float = 1.0,
) -> PersonSamples:
    """Person boxes from a COCO detection-results file, for evaluation with detected boxes.

    Args:
        detection_file: JSON list of ``{image_id, category_id, bbox, score}``.
        annotation_file: the COCO file of the same images (for file names and sizes).
        image_dir: folder holding the images.
        schema: sets K of the (all zero, unlabeled) keypoint columns.
        score_threshold: drop boxes scoring below this.
        category_id: keep boxes of this category.
        min_box_side: drop boxes whose clipped width or height is below this, pixels.

    Raises:
        AnnotationError: a malformed file (naming the field), or no box left.
    """
    schema = get_schema(schema)
    source = Path(detection_file)
    coco = _load_coco(annotation_file, schema, category_id)
    detections = jf.load_json(source)
    if not isinstance(detections, list):
        raise jf.fail(source, "<top level>", f"must be a list of detections, got {type(detections).__name__}")
    boxes, scores = np.zeros((len(detections), 4)), np.zeros(len(detections))
    categories = np.zeros(len(detections), np.int64)
    for i, det in enumerate(detections):
        field = f"[{i}]"
        image_id = jf.integer(jf.get(det, "image_id", source, field), source, f"{field}.image_id")
        if image_id not in coco.imgs:
            message = f"refers to image {image_id}, which {annotation_file} does not list"
            raise jf.fail(source, f"{field}.image_id", message)
        categories[i] = jf.integer(jf.get(det, "category_id", source, field), source, f"{field}.category_id")
        boxes[i] = jf.numbers(jf.get(det, "bbox", source, field), 4, source, f"{field}.bbox", " (x, y, w, h)")
        scores[i] = jf.number(jf.get(det, "score", source, field), source, f"{field}.score")
    n, k = len(detections), schema.num_keypoints
    image_ids = [det["image_id"] for det in detections]
    paths, boxes = _locate(coco, image_ids, image_dir, boxes)
    samples = PersonSamples.build(
        image_paths=paths,
        image_ids=image_ids,
        boxes=boxes,
        keypoints=np.zeros((n, k, 2)),
        visibility=np.zeros((n, k)),
        scores=scores,
        ann_ids=np.full(n, -1),
        source=str(source),
    )
    return keep_rows(
        samples,
        {
            "other category": categories != category_id,
            "below score threshold": scores < score_threshold,
            "tiny box": np.minimum(boxes[:, 2], boxes[:, 3]) < min_box_side,
        },
        "boxes",
    )
