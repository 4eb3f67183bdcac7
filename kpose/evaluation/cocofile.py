"""Read and validate COCO keypoint annotation files and results files.

pycocotools meets a malformed file with a bare ``assert`` or ``KeyError`` deep inside its
evaluation loop. These loaders check everything the keypoint evaluation reads first and
raise :class:`~kpose.errors.AnnotationError` naming the file and the field at fault.

They never modify the caller's data; annotations come back as copies, with the fields the COCO
format lets files omit filled in: ``iscrowd`` (0), ``num_keypoints`` (keypoints with
``v > 0``), ``id`` (1..N, when no annotation has one) and, on request, ``area`` from the box.

This module imports numpy only.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np

from kpose.errors import AnnotationError
from kpose.keypoints import KeypointSchema

# How many offending ids an error message lists.
_SHOWN_IDS = 5


def _read_json(path: str | Path) -> Any:
    path = Path(path)
    with path.open() as f:  # FileNotFoundError speaks for itself
        try:
            return json.load(f)
        except json.JSONDecodeError as exc:
            raise AnnotationError(f"{path}: not valid JSON ({exc})") from None


def is_number(value: Any) -> bool:
    """A real number, not a bool."""
    return isinstance(value, Real) and not isinstance(value, bool)


def _few(ids: set) -> str:
    """A few of ``ids``, smallest first, for an error message."""
    try:
        ordered = sorted(ids)
    except TypeError:  # ids of mixed types
        ordered = sorted(ids, key=str)
    shown = ordered[:_SHOWN_IDS]
    more = f" and {len(ids) - len(shown)} more" if len(ids) > len(shown) else ""
    return ", ".join(str(i) for i in shown) + more


def _keypoint_matrix(entries: list[dict], name: str, what: str, schema: KeypointSchema) -> np.ndarray:
    """(N, 3K) float64 matrix of the entries' ``keypoints``, after checking length and values."""
    expected = 3 * schema.num_keypoints
    for i, entry in enumerate(entries):
        values = entry["keypoints"]
        if not isinstance(values, list) or len(values) != expected:
            got = f"{len(values)} values" if isinstance(values, list) else type(values).__name__
            raise AnnotationError(
                f"{name}: {what}[{i}]: field 'keypoints' has {got}; schema {schema.name!r} has "
                f"{schema.num_keypoints} keypoints, so it needs {schema.num_keypoints} x 3 = {expected} "
                "values [x, y, v, ...]"
            )
    if not entries:
        return np.zeros((0, expected))
    matrix = np.asarray([entry["keypoints"] for entry in entries])
    if matrix.dtype.kind not in "iuf":
        raise AnnotationError(f"{name}: {what}: field 'keypoints' holds values that are not numbers")
    bad_rows = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if bad_rows.size:
        raise AnnotationError(f"{name}: {what}[{bad_rows[0]}]: field 'keypoints' holds NaN or infinity")
    return matrix.astype(np.float64)


def _require(entry: Any, fields: tuple[str, ...], name: str, where: str) -> None:
    if not isinstance(entry, Mapping):
        raise AnnotationError(f"{name}: {where} must be an object, got {type(entry).__name__}")
    for field in fields:
        if field not in entry:
            raise AnnotationError(f"{name}: {where} has no field '{field}'")


def _id_list(dataset: Mapping, key: str, name: str) -> list:
    """The ``id`` of every entry of ``dataset[key]`` (``images`` or ``categories``), checked."""
    entries = dataset.get(key)
    if not isinstance(entries, list):
        problem = "is missing" if entries is None else f"must be a list, got {type(entries).__name__}"
        raise AnnotationError(f"{name}: field '{key}' {problem}")
    ids = []
    for i, entry in enumerate(entries):
        _require(entry, ("id",), name, f"{key}[{i}]")
        ids.append(entry["id"])
    duplicates = {i for i, count in Counter(ids).items() if count > 1}
    if duplicates:
        raise AnnotationError(f"{name}: field '{key}' repeats the id(s) {_few(duplicates)}")
    return ids


def _annotation_ids(annotations: list[dict], name: str) -> None:
    """Give annotations ids 1..N when the file has none; else check they are unique and non-zero.

    pycocotools marks "no match" with id 0, so a ground-truth annotation with id 0 would never
    count as found.
    """
    if not any("id" in ann for ann in annotations):
        for number, ann in enumerate(annotations, start=1):
            ann["id"] = number
        return
    seen: set = set()
    for i, ann in enumerate(annotations):
        ann_id = ann.get("id")
        if not isinstance(ann_id, int) or isinstance(ann_id, bool) or ann_id == 0 or ann_id in seen:
            problem = "is missing" if ann_id is None else f"= {ann_id!r} is not a unique non-zero integer"
            raise AnnotationError(
                f"{name}: annotations[{i}]: field 'id' {problem} (pycocotools reserves 0 for 'no match')"
            )
        seen.add(ann_id)


def load_annotations(
    source: str | Path | Mapping | Any,
    schema: KeypointSchema,
    *,
    area_from_box: float | None = None,
) -> tuple[dict[str, Any], str]:
    """Load and validate a COCO keypoint annotation file.

    Args:
        source: path of the JSON file, its parsed dict, or a ``pycocotools.coco.COCO`` object.
        schema: the keypoint schema the file must follow (K keypoints, ``3 * K`` values each).
        area_from_box: when given, an annotation without ``area`` gets
            ``area_from_box * bbox_w * bbox_h`` (CrowdPose uses 0.53); when None, ``area`` is
            required.

    Returns:
        (dataset, name): a validated copy of the dataset dict, and the name that error
        messages use for it (the path, or ``<annotations>``).

    Raises:
        AnnotationError: naming the file and the field at fault.
    """
    if isinstance(source, (str, Path)):
        name, dataset = str(source), _read_json(source)
    elif isinstance(source, Mapping):
        name, dataset = "<annotations>", source
    elif isinstance(getattr(source, "dataset", None), Mapping):  # a pycocotools COCO object
        name, dataset = "<COCO object>", source.dataset
    else:
        raise TypeError(f"annotations must be a path, a dict or a COCO object, got {type(source).__name__}")
    if not isinstance(dataset, Mapping):
        raise AnnotationError(f"{name}: an annotation file must be a JSON object, got {type(dataset).__name__}")

    image_ids = set(_id_list(dataset, "images", name))
    category_ids = set(_id_list(dataset, "categories", name))
    raw = dataset.get("annotations")
    if not isinstance(raw, list):
        problem = "is missing" if raw is None else f"must be a list, got {type(raw).__name__}"
        raise AnnotationError(f"{name}: field 'annotations' {problem}")

    annotations = []
    for i, entry in enumerate(raw):
        where = f"annotations[{i}]"
        _require(entry, ("image_id", "category_id", "keypoints", "bbox"), name, where)
        ann = dict(entry)
        if ann["image_id"] not in image_ids:
            raise AnnotationError(f"{name}: {where}: field 'image_id' = {ann['image_id']!r} is not in 'images'")
        if ann["category_id"] not in category_ids:
            raise AnnotationError(
                f"{name}: {where}: field 'category_id' = {ann['category_id']!r} is not in 'categories'"
            )
        box = ann["bbox"]
        if not isinstance(box, list) or len(box) != 4 or not all(is_number(v) for v in box):
            raise AnnotationError(f"{name}: {where}: field 'bbox' must be [x, y, width, height], got {box!r}")
        if "area" not in ann and area_from_box is not None:
            ann["area"] = area_from_box * box[2] * box[3]
        if not is_number(ann.get("area")):
            problem = "is missing" if "area" not in ann else f"= {ann['area']!r} is not a number"
            raise AnnotationError(f"{name}: {where}: field 'area' {problem} (the OKS scale, in square pixels)")
        ann.setdefault("iscrowd", 0)
        annotations.append(ann)

    keypoints = _keypoint_matrix(annotations, name, "annotations", schema)
    labelled = np.count_nonzero(keypoints[:, 2::3] > 0, axis=1)
    for ann, count in zip(annotations, labelled):
        ann.setdefault("num_keypoints", int(count))
    _annotation_ids(annotations, name)

    validated = dict(dataset)
    validated["images"] = list(dataset["images"])
    validated["categories"] = [dict(c) for c in dataset["categories"]]
    validated["annotations"] = annotations
    return validated, name


def load_results(
    source: str | Path | list,
    dataset: Mapping[str, Any],
    dataset_name: str,
    schema: KeypointSchema,
) -> list[dict[str, Any]]:
    """Load and validate a COCO keypoint results file against its annotation file.

    Args:
        source: path of the results JSON file, or the results list itself.
        dataset: the validated annotation dict (from :func:`load_annotations`).
        dataset_name: its name in error messages.
        schema: the keypoint schema (``3 * K`` keypoint values per result).

    Returns:
        The results, validated, as a new list (the entries themselves are not copied).

    Raises:
        AnnotationError: naming the file and the field at fault; unknown image ids are listed.
    """
    if isinstance(source, (str, Path)):
        name, raw = str(source), _read_json(source)
    else:
        name, raw = "<results>", source
    if not isinstance(raw, list):
        raise AnnotationError(f"{name}: a results file must be a JSON list of objects, got {type(raw).__name__}")
    for i, entry in enumerate(raw):
        _require(entry, ("image_id", "category_id", "keypoints", "score"), name, f"results[{i}]")
        if not is_number(entry["score"]) or not np.isfinite(entry["score"]):
            raise AnnotationError(f"{name}: results[{i}]: field 'score' = {entry['score']!r} is not a finite number")
    _keypoint_matrix(raw, name, "results", schema)
    results = list(raw)

    unknown = {r["image_id"] for r in results} - {image["id"] for image in dataset["images"]}
    if unknown:
        raise AnnotationError(
            f"{name}: field 'image_id' names {len(unknown)} image(s) that {dataset_name} does not have "
            f"in 'images': {_few(unknown)}"
        )
    unknown = {r["category_id"] for r in results} - {c["id"] for c in dataset["categories"]}
    if unknown:
        raise AnnotationError(
            f"{name}: field 'category_id' names categories that {dataset_name} does not have "
            f"in 'categories': {_few(unknown)}"
        )
    return results
