"""Read and validate a COCO-format keypoint annotation file (COCO, CrowdPose, a user schema).

One validation for the data readers (:mod:`kpose.data.coco`) and the evaluator
(:mod:`kpose.evaluation`): the whole file is checked before anything reads it, and a wrong
type, a missing field, or a keypoint count that does not match the schema raises
:class:`~kpose.errors.AnnotationError` naming the file and the field (e.g.
``annotations[12].keypoints``). pycocotools would meet such a file with a bare ``assert`` or
``KeyError`` deep inside its index or evaluation loop.

The caller's data is never modified; annotations come back as copies, with the fields the COCO
format lets files omit filled in: ``iscrowd`` (0), ``num_keypoints`` (keypoints with
``v > 0``), ``id`` (1..N, when no annotation has one) and, on request, ``area`` from the box.

This module imports numpy only (no TensorFlow, no pycocotools).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from kpose.data import jsonfields as jf
from kpose.keypoints import KeypointSchema

PERSON = 1  # the COCO person category
VISIBILITY = (0, 1, 2)  # COCO's v: not labeled, labeled but hidden, visible


def _read(source: str | Path | Mapping | Any) -> tuple[dict[str, Any], str]:
    """(dataset, name): the parsed file, dict or ``COCO`` object, and its name for errors."""
    if isinstance(source, (str, Path)):
        return jf.load_json(source), str(source)
    if isinstance(source, Mapping):
        return dict(source), "<annotations>"
    if isinstance(getattr(source, "dataset", None), Mapping):  # a pycocotools COCO object
        return dict(source.dataset), "<COCO object>"
    raise TypeError(f"annotations must be a path, a dict or a COCO object, got {type(source).__name__}")


def _ids(entries: list, key: str, what: str, source: str) -> set[int]:
    """The ``id`` of every entry of ``images`` or ``categories`` (``key``): integers, unique."""
    ids: set[int] = set()
    for i, entry in enumerate(entries):
        field = f"{key}[{i}].id"
        entry_id = jf.integer(jf.get(entry, "id", source, f"{key}[{i}]"), source, field)
        if entry_id in ids:
            raise jf.fail(source, field, f"repeats {what} id {entry_id}")
        ids.add(entry_id)
    return ids


def _check_images(images: list, source: str) -> set[int]:
    """Validate ``images`` (``id``, ``file_name``, optional ``height`` / ``width``); their ids."""
    image_ids = _ids(images, "images", "image", source)
    for i, image in enumerate(images):
        field = f"images[{i}]"
        jf.string(jf.get(image, "file_name", source, field), source, f"{field}.file_name")
        for key in ("height", "width"):
            if key in image:
                jf.integer(image[key], source, f"{field}.{key}", minimum=1)
    return image_ids


def _check_categories(categories: list, schema: KeypointSchema, category_id: int, source: str) -> None:
    """Unique integer ids; the keypoint names of category ``category_id``, if given, must
    match the schema's count."""
    _ids(categories, "categories", "category", source)
    for j, category in enumerate(categories):
        names = category.get("keypoints")
        if category["id"] != category_id or names is None:
            continue
        if not isinstance(names, list) or len(names) != schema.num_keypoints:
            got = len(names) if isinstance(names, list) else type(names).__name__
            raise jf.fail(
                source,
                f"categories[{j}].keypoints",
                f"has {got} keypoints but schema {schema.name!r} has {schema.num_keypoints}",
            )


def _check_annotation(
    entry: Any,
    field: str,
    image_ids: set[int],
    schema: KeypointSchema,
    area_from_box: float | None,
    source: str,
) -> dict[str, Any]:
    """A validated copy of one annotation (``field`` names it), defaults filled in."""
    image_id = jf.integer(jf.get(entry, "image_id", source, field), source, f"{field}.image_id")
    if image_id not in image_ids:
        raise jf.fail(source, f"{field}.image_id", f"refers to image {image_id}, which 'images' does not list")
    ann = dict(entry)
    jf.integer(jf.get(ann, "category_id", source, field), source, f"{field}.category_id")
    box = jf.numbers(jf.get(ann, "bbox", source, field), 4, source, f"{field}.bbox", " (x, y, w, h)")
    if box[2] < 0 or box[3] < 0:
        raise jf.fail(source, f"{field}.bbox", f"has a negative width or height: {box.tolist()}")
    k = schema.num_keypoints
    keypoints = jf.numbers(
        jf.get(ann, "keypoints", source, field), 3 * k, source, f"{field}.keypoints",
        f" (x, y, v for each of the {k} keypoints of schema {schema.name!r})",
    )
    _check_visibility(keypoints[2::3], schema, source, f"{field}.keypoints")
    if ann.get("segmentation") is not None:
        _check_segmentation(ann["segmentation"], source, f"{field}.segmentation")
    if ann.setdefault("iscrowd", 0) not in (0, 1, True, False):
        raise jf.fail(source, f"{field}.iscrowd", f"must be 0 or 1, got {ann['iscrowd']!r}")
    if "area" not in ann:
        if area_from_box is None:
            raise jf.fail(source, f"{field}.area", "is missing (the OKS scale, in square pixels)")
        ann["area"] = float(area_from_box * box[2] * box[3])
    jf.number(ann["area"], source, f"{field}.area", minimum=0)
    ann.setdefault("num_keypoints", int(np.count_nonzero(keypoints[2::3] > 0)))
    return ann


def _check_visibility(visibility: np.ndarray, schema: KeypointSchema, source: str, field: str) -> None:
    """Each keypoint's ``v`` is 0 (not labeled), 1 (labeled, hidden) or 2 (visible)."""
    bad = np.flatnonzero(~np.isin(visibility, VISIBILITY))
    if bad.size:
        j = int(bad[0])
        raise jf.fail(
            source, field,
            f"visibility of keypoint {j} ({schema.keypoints[j]}) must be 0, 1 or 2, got {visibility[j]:g}",
        )


def _check_segmentation(segmentation: Any, source: str, field: str) -> None:
    """COCO's two forms: a list of polygons ``[x1, y1, x2, y2, ...]`` (at least three points
    each), or a run-length mask ``{"counts": str | list, "size": [height, width]}``."""
    if isinstance(segmentation, dict):
        size = jf.get(segmentation, "size", source, field)
        jf.numbers(size, 2, source, f"{field}.size", " (height, width)")
        if not isinstance(jf.get(segmentation, "counts", source, field), (str, list)):
            raise jf.fail(source, f"{field}.counts", "must be a run-length string or a list of run lengths")
        return
    if not isinstance(segmentation, list):
        raise jf.fail(source, field, f"must be a list of polygons or an RLE object, got {type(segmentation).__name__}")
    for i, polygon in enumerate(segmentation):
        length = len(polygon) if isinstance(polygon, list) else 0
        if length < 6 or length % 2:
            raise jf.fail(source, f"{field}[{i}]", "must be a polygon: a list of x, y pairs, at least three points")
        jf.numbers(polygon, length, source, f"{field}[{i}]")


def _annotation_ids(annotations: list[dict], source: str) -> None:
    """Give annotations ids 1..N when the file has none; else they must be unique non-zero integers.

    pycocotools marks "no match" with id 0, so a ground-truth annotation with id 0 would never
    count as found.
    """
    if not any("id" in ann for ann in annotations):
        for number, ann in enumerate(annotations, start=1):
            ann["id"] = number
        return
    seen: set[int] = set()
    for i, ann in enumerate(annotations):
        field = f"annotations[{i}].id"
        if "id" not in ann:
            raise jf.fail(source, field, "is missing (give every annotation an id, or none)")
        ann_id = jf.integer(ann["id"], source, field)
        if ann_id == 0:
            raise jf.fail(source, field, "must not be 0 (pycocotools reserves 0 for 'no match')")
        if ann_id in seen:
            raise jf.fail(source, field, f"repeats annotation id {ann_id}")
        seen.add(ann_id)


def load_annotations(
    source: str | Path | Mapping | Any,
    schema: KeypointSchema,
    *,
    area_from_box: float | None = None,
    category_id: int = PERSON,
) -> tuple[dict[str, Any], str]:
    """Load and validate a COCO keypoint annotation file.

    Args:
        source: path of the JSON file, its parsed dict, or a ``pycocotools.coco.COCO`` object.
        schema: the keypoint schema the file must follow (K keypoints, ``3 * K`` values each).
        area_from_box: when given, an annotation without ``area`` gets
            ``area_from_box * bbox_w * bbox_h`` (CrowdPose evaluation uses 0.53); when None,
            ``area`` is required (the COCO protocol).
        category_id: the category whose ``keypoints`` names, if given, must number K.

    Returns:
        (dataset, name): a validated copy of the dataset dict (``images``, ``categories``,
        ``annotations``, each annotation a copy with ``keypoints`` of length ``3 * K``), and
        the name that error messages use for it (the path, ``<annotations>`` or
        ``<COCO object>``).

    Raises:
        AnnotationError: naming the file and the field at fault.
    """
    dataset, name = _read(source)
    images = jf.list_field(dataset, "images", name)
    image_ids = _check_images(images, name)
    categories = jf.list_field(dataset, "categories", name)
    _check_categories(categories, schema, category_id, name)
    annotations = [
        _check_annotation(entry, f"annotations[{i}]", image_ids, schema, area_from_box, name)
        for i, entry in enumerate(jf.list_field(dataset, "annotations", name))
    ]
    _annotation_ids(annotations, name)
    dataset.update(images=list(images), categories=[dict(c) for c in categories], annotations=annotations)
    return dataset, name
