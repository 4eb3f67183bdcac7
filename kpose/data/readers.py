"""One entry point for every annotation format: :func:`read_samples`."""

from __future__ import annotations

from pathlib import Path

from kpose.data.coco import read_coco
from kpose.data.mpii import read_mpii
from kpose.data.samples import PersonSamples
from kpose.errors import AnnotationError, ConfigError
from kpose.keypoints import KeypointSchema

FORMATS = ("auto", "coco", "mpii")


def read_samples(
    annotation_file: str | Path,
    image_dir: str | Path,
    schema: str | Path | KeypointSchema,
    format: str = "auto",
) -> PersonSamples:
    """Person rows of a COCO-format (COCO, CrowdPose, user schema) or MPII JSON file.

    Args:
        annotation_file: the annotation JSON.
        image_dir: folder holding its images.
        schema: keypoint schema of the file.
        format: ``coco``, ``mpii``, or ``auto``: MPII if the file's top level is a list.
    """
    if format not in FORMATS:
        raise ConfigError(f"format must be one of {FORMATS}, got {format!r}")
    if format == "auto":
        format = "mpii" if _first_char(annotation_file) == "[" else "coco"
    reader = read_mpii if format == "mpii" else read_coco
    return reader(annotation_file, image_dir, schema)


def _first_char(path: str | Path) -> str:
    """The first non-blank character of a file (the readers report other problems)."""
    try:
        with open(path, "rb") as f:
            return f.read(4096).lstrip()[:1].decode("latin-1")
    except FileNotFoundError:
        raise AnnotationError(f"{path}: annotation file not found") from None
