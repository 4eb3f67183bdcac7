"""The official MPII Human Pose annotation (``mpii_human_pose_v1_u12_1.mat``) as kpose's MPII records.

The MATLAB file holds one struct, ``RELEASE``::

    RELEASE.annolist(i).image.name              the image file
    RELEASE.annolist(i).vididx                  the video the frame comes from (may be empty)
    RELEASE.annolist(i).annorect(j)             person j of image i:
        .x1 .y1 .x2 .y2                         head box, pixels (1-based)
        .objpos.x .objpos.y                     rough person centre
        .scale                                  person height / 200 pixels
        .annopoints.point(p).id .x .y           joint id 0-15 (the ``mpii`` schema's order)
        .annopoints.point(p).is_visible         seen or hidden (not used: an annotated joint counts)
    RELEASE.img_train(i)                        1 for a training image, 0 for a test image
    RELEASE.single_person{i}                    indices j of the sufficiently separated people

As HRNet's and MMPose's ``mpii_train.json`` / ``mpii_val.json`` were made: the single people
of the training images that have joints, a head box, a centre and a scale. Test images carry
no joints and are skipped. MMPose's val set is a fixed list of 2,958 of these people; this
module splits by video instead, so that frames of one video never fall on both sides: the
training images' videos (``annolist(i).vididx``; an image without one is a video of its own),
in order of first appearance, go to val every ``val_every``-th, the first one included.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kpose.prepare.layout import load_matlab
from kpose.errors import AnnotationError

NUM_JOINTS = 16
MISSING_JOINT = [-1.0, -1.0]


@dataclass(frozen=True)
class OfficialSplit:
    """People of the official file, as MPII JSON records (:mod:`kpose.data.mpii`).

    Attributes:
        train, val: the records of each split.
        skipped: single people left out, by reason (``"no joints"``, ...).
    """

    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    skipped: dict[str, int]


class _Mat:
    """Typed access to the fields of a ``scipy.io.loadmat`` struct (``struct_as_record=False``,
    not squeezed: every value an array), with errors naming the file and the MATLAB path."""

    def __init__(self, source: Path):
        self.source = source

    def fail(self, where: str, message: str) -> AnnotationError:
        return AnnotationError(f"{self.source}: field '{where}' {message}")

    @staticmethod
    def field(struct: Any, name: str) -> Any:
        """``struct.name``, or None when the struct lacks it or holds an empty array."""
        value = getattr(struct, name, None) if name in getattr(struct, "_fieldnames", ()) else None
        return None if value is None or np.size(value) == 0 else value

    def structs(self, value: Any, where: str) -> list[Any]:
        """The structs of a struct array (none for an empty array)."""
        if value is None:
            return []
        items = list(np.ravel(value)) if isinstance(value, np.ndarray) else [value]
        if not all(hasattr(item, "_fieldnames") for item in items):
            raise self.fail(where, "must be a struct")
        return items

    def number(self, value: Any, where: str) -> float:
        """The single finite number of a 1x1 array."""
        if value is None:
            raise self.fail(where, "is missing")
        array = np.ravel(np.asarray(value))
        if array.size != 1 or array.dtype.kind not in "uif" or not np.isfinite(array[0]):
            raise self.fail(where, f"must be one finite number, got {value!r}")
        return float(array[0])

    def text(self, value: Any, where: str) -> str:
        array = np.ravel(np.asarray(value))
        if array.size != 1 or array.dtype.kind != "U" or not array[0]:
            raise self.fail(where, f"must be a file name, got {value!r}")
        return str(array[0])


def _person(mat: _Mat, rect: Any, where: str) -> tuple[dict[str, Any] | None, str]:
    """One annotated person as a record, or (None, why it is skipped)."""
    annopoints = mat.structs(mat.field(rect, "annopoints"), f"{where}.annopoints")
    points = mat.structs(mat.field(annopoints[0], "point"), f"{where}.annopoints.point") if annopoints else []
    if not points:
        return None, "no joints"
    objpos, scale = mat.field(rect, "objpos"), mat.field(rect, "scale")
    if objpos is None or scale is None:
        return None, "no centre or scale"
    head = [mat.field(rect, key) for key in ("x1", "y1", "x2", "y2")]
    if any(v is None for v in head):
        return None, "no head box"
    joints = np.array([MISSING_JOINT] * NUM_JOINTS)
    visible = np.zeros(NUM_JOINTS, int)
    for p, point in enumerate(points):
        at = f"{where}.annopoints.point({p + 1})"
        joint = mat.number(mat.field(point, "id"), f"{at}.id")
        if joint != int(joint) or not 0 <= joint < NUM_JOINTS:
            raise mat.fail(f"{at}.id", f"must be a joint id 0-{NUM_JOINTS - 1}, got {joint:g}")
        joints[int(joint)] = [mat.number(mat.field(point, k), f"{at}.{k}") for k in ("x", "y")]
        visible[int(joint)] = 1
    centre = mat.structs(objpos, f"{where}.objpos")[0]
    record = {
        "center": [mat.number(mat.field(centre, k), f"{where}.objpos.{k}") for k in ("x", "y")],
        "scale": mat.number(scale, f"{where}.scale"),
        "joints": joints.tolist(),
        "joints_vis": visible.tolist(),
        "head_box": [mat.number(v, f"{where}.{k}") for v, k in zip(head, ("x1", "y1", "x2", "y2"))],
    }
    return record, ""


def _indices(mat: _Mat, value: Any, where: str) -> list[int]:
    """0-based indices from a MATLAB list of 1-based ones (an empty array: none)."""
    if value is None or np.size(value) == 0:
        return []
    return [int(mat.number(v, where)) - 1 for v in np.ravel(value)]


def convert_official(mat_file: str | Path, val_every: int = 8) -> OfficialSplit:
    """Train and val records of the official annotation file; see the module docstring.

    Args:
        mat_file: ``mpii_human_pose_v1_u12_1.mat``.
        val_every: every ``val_every``-th video of the training images goes to val (>= 2).

    Raises:
        AnnotationError: the file is not a MATLAB file with the ``RELEASE`` struct, or a field
            is malformed (named by its MATLAB path, e.g. ``RELEASE.annolist(7).annorect(2).scale``).
    """
    if val_every < 2:
        raise ValueError(f"val_every must be >= 2, got {val_every}")
    source = Path(mat_file)
    mat = _Mat(source)
    try:
        release = load_matlab(source, struct_as_record=False)["RELEASE"]
    except KeyError:
        raise AnnotationError(f"{source}: no variable 'RELEASE' (the official MPII annotation struct)") from None
    release = mat.structs(release, "RELEASE")[0]
    annolist = mat.structs(mat.field(release, "annolist"), "RELEASE.annolist")
    fields = {name: mat.field(release, name) for name in ("img_train", "single_person")}
    for name, value in fields.items():
        if value is None or np.size(value) != len(annolist):
            got = 0 if value is None else np.size(value)
            raise mat.fail(f"RELEASE.{name}", f"must have one entry per annolist image ({len(annolist)}), got {got}")
    img_train, single_person = np.ravel(fields["img_train"]), np.ravel(fields["single_person"])
    train, val, skipped = [], [], Counter()
    videos: dict[object, int] = {}  # video -> its order of first appearance
    for i, image in enumerate(annolist):
        where = f"RELEASE.annolist({i + 1})"
        if not mat.number(img_train[i], f"RELEASE.img_train({i + 1})"):
            continue
        name_struct = mat.structs(mat.field(image, "image"), f"{where}.image")
        if not name_struct:
            raise mat.fail(f"{where}.image", "is missing")
        name = mat.text(mat.field(name_struct[0], "name"), f"{where}.image.name")
        rects = mat.structs(mat.field(image, "annorect"), f"{where}.annorect")
        vididx = mat.field(image, "vididx")
        video = mat.number(vididx, f"{where}.vididx") if vididx is not None else ("image", i)
        split = val if videos.setdefault(video, len(videos)) % val_every == 0 else train
        for j in _indices(mat, single_person[i], f"RELEASE.single_person{{{i + 1}}}"):
            if j not in range(len(rects)):
                raise mat.fail(f"RELEASE.single_person{{{i + 1}}}", f"names person {j + 1}, but the image has {len(rects)}")
            record, reason = _person(mat, rects[j], f"{where}.annorect({j + 1})")
            if record is None:
                skipped[reason] += 1
            else:
                split.append({"image": name, **record})
    return OfficialSplit(train, val, dict(skipped))
