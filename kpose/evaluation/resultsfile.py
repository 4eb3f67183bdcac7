"""Read and validate a COCO keypoint results file against its annotation file.

The annotation file itself is validated by :func:`kpose.data.cocofile.load_annotations`, the
one validation the data readers use too. Errors are :class:`~kpose.errors.AnnotationError`
naming the file and the field at fault (e.g. ``results[3].keypoints``).

This module imports numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kpose.data import jsonfields as jf
from kpose.errors import AnnotationError
from kpose.keypoints import KeypointSchema

# How many offending ids an error message lists.
_SHOWN_IDS = 5


def _few(ids: set[int]) -> str:
    """A few of ``ids``, smallest first, for an error message."""
    shown = sorted(ids)[:_SHOWN_IDS]
    more = f" and {len(ids) - len(shown)} more" if len(ids) > len(shown) else ""
    return ", ".join(str(i) for i in shown) + more


def load_results(
    source: str | Path | list,
    dataset: Mapping[str, Any],
    dataset_name: str,
    schema: KeypointSchema,
) -> list[dict[str, Any]]:
    """Load and validate a COCO keypoint results file against its annotation file.

    Args:
        source: path of the results JSON file, or the results list itself: entries
            ``{image_id, category_id, keypoints: [x, y, score] * K, score}``.
        dataset: the validated annotation dict (from :func:`~kpose.data.cocofile.load_annotations`).
        dataset_name: its name in error messages.
        schema: the keypoint schema (``3 * K`` keypoint values per result).

    Returns:
        The results, validated, as a new list (the entries themselves are not copied).

    Raises:
        AnnotationError: naming the file and the field at fault; unknown image ids are listed.
    """
    if isinstance(source, (str, Path)):
        name, results = str(source), jf.load_json(source)
    else:
        name, results = "<results>", source
    if not isinstance(results, list):
        raise AnnotationError(f"{name}: a results file must be a JSON list of objects, got {type(results).__name__}")
    k = schema.num_keypoints
    for i, entry in enumerate(results):
        field = f"results[{i}]"
        for key in ("image_id", "category_id"):
            jf.integer(jf.get(entry, key, name, field), name, f"{field}.{key}")
        jf.numbers(
            jf.get(entry, "keypoints", name, field), 3 * k, name, f"{field}.keypoints",
            f" (x, y, score for each of the {k} keypoints of schema {schema.name!r})",
        )
        jf.number(jf.get(entry, "score", name, field), name, f"{field}.score")

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
    return list(results)
