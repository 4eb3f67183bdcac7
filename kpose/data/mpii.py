"""Reader for MPII Human Pose in its common JSON conversion (the one HRNet and MMPose use).

The file is a list of person records::

    {"image": "015601864.jpg", "center": [x, y], "scale": s,
     "joints": [[x, y], ... 16], "joints_vis": [0 or 1, ... 16],
     "head_box": [x1, y1, x2, y2]}          # optional, for PCKh

Coordinates are MATLAB's (1-based) and become 0-based here. As in HRNet, the centre moves
down by ``15 * s`` pixels and the person region is ``200 * s`` pixels square; the pipeline's
1.25 padding then gives HRNet's ``1.25 * 200 * s`` crop. ``joints_vis`` is 1 for an annotated
joint (seen or hidden), 0 for a missing one (whose joint is ``[-1, -1]``). PCKh needs
``head_box``: ``kpose data prepare mpii`` writes it (:mod:`kpose.prepare.mpii`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from kpose.data import jsonfields as jf
from kpose.data.samples import PersonSamples, keep_rows
from kpose.keypoints import KeypointSchema, get_schema

PIXELS_PER_SCALE = 200.0


def read_mpii(
    annotation_file: str | Path,
    image_dir: str | Path,
    schema: str | Path | KeypointSchema = "mpii",
    *,
    drop_unlabeled: bool = True,
) -> PersonSamples:
    """Person rows of an MPII JSON file.

    Args:
        annotation_file: the JSON list described in the module docstring.
        image_dir: folder holding the ``image`` files.
        schema: keypoint schema; each record has ``schema.num_keypoints`` joints.
        drop_unlabeled: drop records with no labeled joint (and records whose centre is
            the ``-1`` placeholder).

    Raises:
        AnnotationError: a malformed file (naming the record and field), or no person left.
    """
    schema = get_schema(schema)
    source = Path(annotation_file)
    records = jf.load_json(source)
    if not isinstance(records, list):
        got = type(records).__name__
        raise jf.fail(source, "<top level>", f"must be a list of person records, got {got}")
    n, k = len(records), schema.num_keypoints
    centers, scales = np.zeros((n, 2)), np.zeros(n)
    joints, vis = np.zeros((n, k, 2)), np.zeros((n, k))
    head_boxes = np.full((n, 4), np.nan)
    names, image_ids, first_seen = [], [], {}
    for i, rec in enumerate(records):
        field = f"[{i}]"
        name = jf.string(jf.get(rec, "image", source, field), source, f"{field}.image")
        centers[i] = jf.numbers(jf.get(rec, "center", source, field), 2, source, f"{field}.center", " (x, y)")
        scales[i] = jf.number(jf.get(rec, "scale", source, field), source, f"{field}.scale")
        if scales[i] <= 0:
            raise jf.fail(source, f"{field}.scale", f"must be positive, got {scales[i]}")
        flat = jf.get(rec, "joints", source, field)
        if not isinstance(flat, list) or len(flat) != k:
            got = len(flat) if isinstance(flat, list) else type(flat).__name__
            raise jf.fail(
                source, f"{field}.joints", f"must list {k} [x, y] joints (schema {schema.name!r}), got {got}"
            )
        joints[i] = [jf.numbers(p, 2, source, f"{field}.joints[{j}]") for j, p in enumerate(flat)]
        raw_vis = jf.get(rec, "joints_vis", source, field)
        vis[i] = jf.numbers(raw_vis, k, source, f"{field}.joints_vis", f" (schema {schema.name!r})")
        if "head_box" in rec:
            box = jf.numbers(rec["head_box"], 4, source, f"{field}.head_box", " (x1, y1, x2, y2)")
            head_boxes[i] = box - 1.0
        names.append(str(Path(image_dir) / name))
        image_ids.append(first_seen.setdefault(name, len(first_seen)))
    placeholder = centers[:, 0] == -1
    centers = centers - 1.0
    centers[:, 1] += 15.0 * scales
    side = PIXELS_PER_SCALE * scales
    boxes = np.stack([centers[:, 0] - side / 2, centers[:, 1] - side / 2, side, side], axis=1)
    labeled = vis > 0
    samples = PersonSamples.build(
        image_paths=names,
        image_ids=image_ids,
        boxes=boxes,
        keypoints=np.where(labeled[..., None], joints - 1.0, 0.0),
        visibility=np.where(labeled, 2.0, 0.0),
        head_boxes=head_boxes,
        source=str(source),
    )
    no_joints = ~labeled.any(axis=1)
    return keep_rows(
        samples,
        {
            "placeholder centre": placeholder & drop_unlabeled,
            "without keypoints": no_joints & drop_unlabeled,
        },
        "persons",
    )


def write_mpii(records: list[dict[str, Any]], path: str | Path) -> Path:
    """Write person records (the module docstring's format) as an MPII JSON file.

    The file is written beside ``path`` and then moved over it, so a reader never sees half
    a file and an interrupted write leaves the old one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(records))
    os.replace(partial, path)
    return path
