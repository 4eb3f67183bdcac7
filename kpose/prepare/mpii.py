"""``kpose data prepare mpii``: MPII annotations as kpose's JSON files, with head boxes, checked.

The layout (the one ``training/configs/mpii`` reads under its ``root``)::

    ROOT/
      images/                                 mpii_human_pose_v1.tar.gz
      annotations/
        mpii_human_pose_v1_u12_1.mat          mpii_human_pose_v1_u12_2.zip (also found in ROOT/
                                              or ROOT/mpii_human_pose_v1_u12_2/)
        mpii_train.json, mpii_val.json        written from it

or, to score on MMPose's val set (the papers' 2,958 people), MMPose's files::

      annotations/
        mpii_train.json, mpii_val.json, mpii_gt_val.mat

The source, in this order: MMPose's ``mpii_gt_val.mat`` if present (its head boxes are written
into ``mpii_val.json``, :mod:`~kpose.prepare.mpii_gt_val`); else the official file
(converted to both JSON files, :mod:`~kpose.prepare.mpii_official`); else JSON files that
already have head boxes. Then both splits are read with :func:`kpose.data.mpii.read_mpii`,
val's head boxes checked and every image looked up.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from kpose.data import jsonfields as jf
from kpose.data.mpii import read_mpii, write_mpii
from kpose.prepare.layout import Log, Need, PreparedDataset, check_split, first_existing, require
from kpose.prepare.mpii_gt_val import add_head_boxes
from kpose.prepare.mpii_official import convert_official
from kpose.errors import ConfigError
from kpose.evaluation.mpii import check_head_boxes

URL = (
    "https://www.mpi-inf.mpg.de/departments/computer-vision-and-machine-learning/software-and-datasets/"
    "mpii-human-pose-dataset/download"
)
MMPOSE_URL = "https://mmpose.readthedocs.io/en/latest/dataset_zoo/2d_body_keypoint.html"
IMAGES = "images"
TRAIN_JSON = "annotations/mpii_train.json"
VAL_JSON = "annotations/mpii_val.json"
GT_VAL = "annotations/mpii_gt_val.mat"
OFFICIAL = (
    "annotations/mpii_human_pose_v1_u12_1.mat",
    "mpii_human_pose_v1_u12_2/mpii_human_pose_v1_u12_1.mat",
    "mpii_human_pose_v1_u12_1.mat",
)
OFFICIAL_SOURCE = f"mpii_human_pose_v1_u12_2.zip (annotations) from {URL}"
MMPOSE_SOURCE = f"MMPose's MPII annotations ({MMPOSE_URL})"
EXAMPLE_CONFIG = "training/configs/mpii/srpose_resnet50_256x256.yaml"
VAL_EVERY = 8


def _has_head_boxes(path: Path) -> bool:
    records = jf.load_json(path)
    return isinstance(records, list) and all(isinstance(r, dict) and "head_box" in r for r in records)


def _no_annotations(root: Path, lead: str) -> ConfigError:
    return ConfigError(
        f"--root {root}: {lead}; one of these is needed:\n"
        f"  {OFFICIAL[0]}  <- {OFFICIAL_SOURCE}\n"
        f"  {TRAIN_JSON}, {VAL_JSON} and {GT_VAL}  <- {MMPOSE_SOURCE}"
    )


def write_annotations(root: Path, log: Log, val_every: int = VAL_EVERY) -> str:
    """Write (or complete) ``mpii_train.json`` and ``mpii_val.json`` under ``root``; returns a
    line saying where the val set came from. The order of sources is the module docstring's.

    Raises:
        ConfigError: no source; or the official file would overwrite an ``mpii_val.json``
            without head boxes (MMPose's, whose ``mpii_gt_val.mat`` is missing).
        AnnotationError: a source file is malformed (file and field named).
    """
    official = first_existing(root, OFFICIAL)
    if (root / GT_VAL).is_file():
        require(root, [Need(TRAIN_JSON, MMPOSE_SOURCE), Need(VAL_JSON, MMPOSE_SOURCE)], "MPII")
        log(f"adding head boxes from {GT_VAL} to {VAL_JSON}")
        count = add_head_boxes(root / VAL_JSON, root / IMAGES, root / GT_VAL)
        return f"val: MMPose's {count} people, head boxes from {GT_VAL}"
    if official is not None:
        if (root / VAL_JSON).is_file() and not _has_head_boxes(root / VAL_JSON):
            raise ConfigError(
                f"{root / VAL_JSON} exists without head boxes (MMPose's?) and would be overwritten by the "
                f"conversion of {official}: put MMPose's mpii_gt_val.mat at {root / GT_VAL} to keep MMPose's "
                f"val set, or remove {TRAIN_JSON} and {VAL_JSON}"
            )
        log(f"converting {official}")
        split = convert_official(root / official, val_every)
        write_mpii(split.train, root / TRAIN_JSON)
        write_mpii(split.val, root / VAL_JSON)
        skipped = ", ".join(f"{count} {reason}" for reason, count in sorted(split.skipped.items())) or "none"
        return (
            f"train and val written from {official}: the single people of the training images, those of every "
            f"{val_every}th video to val ({len(split.val)} people; MMPose's val set differs); skipped: {skipped}"
        )
    if not (root / VAL_JSON).is_file():
        raise _no_annotations(root, "no MPII annotations")
    if not _has_head_boxes(root / VAL_JSON):
        raise _no_annotations(root, f"{VAL_JSON} has records without 'head_box', which PCKh needs")
    return f"val: {VAL_JSON} as it is (it has head boxes)"


def prepare_mpii(root: Path, log: Log = print, val_every: int = VAL_EVERY) -> PreparedDataset:
    """Write and check the MPII annotations under ``root``; see the module docstring.

    Args:
        root: the dataset folder.
        log: progress lines.
        val_every: with the official file, every ``val_every``-th video goes to val.

    Raises:
        ConfigError: a file or folder is missing (named, with where it comes from), or images
            the annotations name are missing.
        AnnotationError: an annotation file is malformed (file and field named).
    """
    require(root, [Need(f"{IMAGES}/", f"mpii_human_pose_v1.tar.gz (images) from {URL}, unpacked into the root")], "MPII")
    origin = write_annotations(root, log, val_every)
    read = partial(read_mpii, schema="mpii")
    fix = f"unpack mpii_human_pose_v1.tar.gz from {URL} into {root}"
    splits = {
        "train": check_split(root, TRAIN_JSON, IMAGES, read, fix, log),
        "val": check_split(root, VAL_JSON, IMAGES, read, fix, log, lambda s: check_head_boxes(s.head_boxes, s.source)),
    }
    return PreparedDataset("mpii", "mpii", root, splits, EXAMPLE_CONFIG, notes=[origin])
