"""Head boxes for MMPose's ``mpii_val.json`` from MMPose's ``mpii_gt_val.mat``.

MMPose (and HRNet before it) ship the MPII val set as ``mpii_val.json`` without head boxes
and score PCKh against ``mpii_gt_val.mat``, which holds, for the same people in the same
order (N = 2,958)::

    headboxes_src  (2, 2, N)   [[x1, y1], [x2, y2]] of each head box, pixels (1-based)
    pos_gt_src     (16, 2, N)  the joints
    jnt_missing    (16, N)     1 where a joint is not annotated

:func:`add_head_boxes` checks that the two files list the same people (the annotated joints
agree) and writes each box into its record as ``head_box``, so kpose's reader and evaluator
score MMPose's exact val set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kpose.data import jsonfields as jf
from kpose.data.mpii import read_mpii, write_mpii
from kpose.prepare.layout import load_matlab
from kpose.errors import AnnotationError

FIELDS = {"headboxes_src": (2, 2), "pos_gt_src": (16, 2), "jnt_missing": (16,)}  # shape before N
TOLERANCE = 2.0  # pixels between a joint of the JSON and of the .mat


def _load_gt(gt_file: Path) -> dict[str, np.ndarray]:
    """The three arrays of ``mpii_gt_val.mat``, shapes checked (one N for all)."""
    data = load_matlab(gt_file)
    arrays = {}
    for name, shape in FIELDS.items():
        if name not in data:
            raise AnnotationError(f"{gt_file}: field '{name}' is missing")
        array = np.asarray(data[name], np.float64)
        if array.shape[:-1] != shape:
            raise jf.fail(gt_file, name, f"must have shape {shape + ('N',)}, got {array.shape}")
        arrays[name] = array
    counts = {name: array.shape[-1] for name, array in arrays.items()}
    if len(set(counts.values())) != 1:
        raise AnnotationError(f"{gt_file}: the fields list different numbers of people: {counts}")
    return arrays


def add_head_boxes(val_file: str | Path, image_dir: str | Path, gt_file: str | Path) -> int:
    """Write ``head_box`` into every record of ``val_file`` from ``gt_file``; returns how many.

    Args:
        val_file: MMPose's ``mpii_val.json`` (rewritten in place, only ``head_box`` added).
        image_dir: its image folder (the reader needs it; images are not opened).
        gt_file: MMPose's ``mpii_gt_val.mat``.

    Raises:
        AnnotationError: a malformed file, or the two files do not list the same people in the
            same order (counts differ, or a record's joints are more than 2 px from the .mat's).
    """
    val_file, gt_file = Path(val_file), Path(gt_file)
    gt = _load_gt(gt_file)
    records = jf.load_json(val_file)
    samples = read_mpii(val_file, image_dir, "mpii", drop_unlabeled=False)  # validates; row i = record i
    n = gt["headboxes_src"].shape[-1]
    if len(records) != n:
        raise AnnotationError(
            f"{val_file} has {len(records)} records but {gt_file} has {n} people: they must be the same val "
            "split, in the same order"
        )
    joints = np.moveaxis(gt["pos_gt_src"], -1, 0) - 1.0  # (N, 16, 2), 0-based as the reader's
    both = (samples.visibility > 0) & (np.moveaxis(gt["jnt_missing"], -1, 0) == 0)
    error = np.where(both, np.linalg.norm(samples.keypoints - joints, axis=-1), 0.0).max(axis=1)
    if (error > TOLERANCE).any():
        i = int(np.argmax(error > TOLERANCE))
        raise jf.fail(
            val_file, f"[{i}].joints",
            f"is {error[i]:.1f} px from person {i + 1} of {gt_file} (pos_gt_src): the files do not list the "
            "same people in the same order",
        )
    boxes = gt["headboxes_src"]  # (2, 2, N): corner, (x, y), person
    for i, record in enumerate(records):
        record["head_box"] = [float(boxes[0, 0, i]), float(boxes[0, 1, i]), float(boxes[1, 0, i]), float(boxes[1, 1, i])]
    write_mpii(records, val_file)
    return n
