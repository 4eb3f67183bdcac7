"""``kpose data prepare coco``: check a COCO 2017 keypoints folder.

The layout (the one ``training/configs/coco`` reads under its ``root``)::

    ROOT/
      train2017/                      train2017.zip
      val2017/                        val2017.zip
      annotations/
        person_keypoints_train2017.json   annotations_trainval2017.zip
        person_keypoints_val2017.json
      person_detection_results/
        COCO_val2017_detections_AP_H_56_person.json   (optional: detected boxes for val)

Both annotation files are read with :func:`kpose.data.coco.read_coco` (every field checked),
every image they name is looked up, and the detections are read against val2017.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from kpose.data.coco import read_coco
from kpose.prepare.layout import Log, Need, PreparedDataset, check_boxes, check_split, require

URL = "https://cocodataset.org/#download"
DETECTIONS = "person_detection_results/COCO_val2017_detections_AP_H_56_person.json"
DETECTIONS_SOURCE = (
    "the person detections (AP 56.4) SimpleBaseline, HRNet and MMPose evaluate with: the "
    "person_detection_results folder of HRNet's data (https://github.com/leoxiaobin/deep-high-resolution-net.pytorch) "
    "or MMPose's COCO page (https://mmpose.readthedocs.io/en/latest/dataset_zoo/2d_body_keypoint.html)"
)
# split -> (annotation file, image folder, archive the images come in)
SPLITS = {
    "train": ("annotations/person_keypoints_train2017.json", "train2017", "train2017.zip"),
    "val": ("annotations/person_keypoints_val2017.json", "val2017", "val2017.zip"),
}
EXAMPLE_CONFIG = "training/configs/coco/srpose_resnet50_256x192.yaml"


def needs() -> list[Need]:
    """The files and folders a COCO root must hold."""
    folders = [Need(f"{images}/", f"{archive} from {URL}, unpacked into the root") for _, images, archive in SPLITS.values()]
    files = [Need(ann, f"annotations_trainval2017.zip from {URL}, unpacked into the root") for ann, _, _ in SPLITS.values()]
    return folders + files


def prepare_coco(root: Path, log: Log = print) -> PreparedDataset:
    """Check the COCO folder ``root``; see the module docstring.

    Raises:
        ConfigError: a file or folder is missing (all of them named, with their URL), or
            images the annotations name are missing.
        AnnotationError: an annotation or detection file is malformed (file and field named).
    """
    require(root, needs(), "COCO")
    read = partial(read_coco, schema="coco")
    splits = {
        split: check_split(root, ann, images, read, f"unpack {archive} from {URL} into {root}", log)
        for split, (ann, images, archive) in SPLITS.items()
    }
    prepared = PreparedDataset("coco", "coco", root, splits, EXAMPLE_CONFIG)
    if Need(DETECTIONS, DETECTIONS_SOURCE).exists(root):
        splits["val"] = check_boxes(root, splits["val"], DETECTIONS, "coco", log)
    else:
        prepared.standard = False
        prepared.notes.append(
            f"no {DETECTIONS}: val is scored on ground-truth boxes (the papers use detected boxes; "
            f"it comes from {DETECTIONS_SOURCE})"
        )
    return prepared
