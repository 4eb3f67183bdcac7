"""``kpose data prepare crowdpose``: check a CrowdPose folder.

Two annotation layouts are accepted (``training/configs/crowdpose`` reads MMPose's)::

    ROOT/                                   ROOT/
      images/                                 images/
      annotations/                            json/
        mmpose_crowdpose_trainval.json          crowdpose_trainval.json
        mmpose_crowdpose_test.json              crowdpose_test.json
        det_for_crowd_test_0.1_0.5.json       (the official files)
      (MMPose's copies; the detections optional)

``images/`` is images.zip and ``json/`` the annotations of the official repository. The
models train on trainval and are scored on test, as in the papers. Both annotation files are
read with :func:`kpose.data.coco.read_crowdpose` and every image they name is looked up.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from kpose.data.coco import read_crowdpose
from kpose.prepare.layout import Log, Need, PreparedDataset, check_boxes, check_split, first_existing, require
from kpose.errors import ConfigError

URL = "https://github.com/Jeff-sjtu/CrowdPose"
MMPOSE_URL = "https://mmpose.readthedocs.io/en/latest/dataset_zoo/2d_body_keypoint.html"
IMAGES = "images"
# layout name -> split -> annotation file; the first is the standard one
LAYOUTS = {
    "MMPose": {"train": "annotations/mmpose_crowdpose_trainval.json", "val": "annotations/mmpose_crowdpose_test.json"},
    "official": {"train": "json/crowdpose_trainval.json", "val": "json/crowdpose_test.json"},
}
LAYOUT_SOURCES = {"MMPose": f"MMPose's copies ({MMPOSE_URL})", "official": f"the annotations of {URL} (links in its README)"}
DETECTIONS = ("annotations/det_for_crowd_test_0.1_0.5.json", "json/det_for_crowd_test_0.1_0.5.json")
DETECTIONS_SOURCE = f"the YOLOv3 person detections on the test set, from MMPose's CrowdPose page ({MMPOSE_URL})"
EXAMPLE_CONFIG = "training/configs/crowdpose/srpose_hrnet_w32_256x192.yaml"


def _layout(root: Path) -> str:
    """The first layout whose annotation files are all there; ConfigError naming both otherwise."""
    for name, files in LAYOUTS.items():
        if all((root / f).is_file() for f in files.values()):
            return name
    options = "\n".join(
        f"  {' and '.join(files.values())}  <- {LAYOUT_SOURCES[name]}" for name, files in LAYOUTS.items()
    )
    raise ConfigError(f"--root {root}: no CrowdPose annotations; one of these pairs is needed:\n{options}")


def prepare_crowdpose(root: Path, log: Log = print) -> PreparedDataset:
    """Check the CrowdPose folder ``root``; see the module docstring.

    Raises:
        ConfigError: a file or folder is missing (named, with where it comes from), or images
            the annotations name are missing.
        AnnotationError: an annotation or detection file is malformed (file and field named).
    """
    require(root, [Need(f"{IMAGES}/", f"images.zip from {URL} (links in its README), unpacked into the root")], "CrowdPose")
    layout = _layout(root)
    read = partial(read_crowdpose, schema="crowdpose")
    fix = f"unpack images.zip from {URL} into {root}"
    splits = {split: check_split(root, ann, IMAGES, read, fix, log) for split, ann in LAYOUTS[layout].items()}
    prepared = PreparedDataset("crowdpose", "crowdpose", root, splits, EXAMPLE_CONFIG, standard=layout == "MMPose")
    detections = first_existing(root, DETECTIONS)
    if detections is None:
        prepared.standard = False
        prepared.notes.append(
            f"no {DETECTIONS[0]}: test is scored on ground-truth boxes (the papers use detected boxes: {DETECTIONS_SOURCE})"
        )
    else:
        splits["val"] = check_boxes(root, splits["val"], detections, "crowdpose", log)
        prepared.standard = prepared.standard and detections == DETECTIONS[0]
    return prepared
