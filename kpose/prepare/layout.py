"""What a prepared dataset is, and the checks every dataset shares: files present, images found.

A dataset folder (``--root``) holds files at fixed relative paths. :class:`Need` names one of
them and where it comes from; :func:`require` fails listing every missing one at once.
:func:`check_images` looks up every image a split's annotations name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from kpose.data.coco import read_detections
from kpose.data.samples import PersonSamples
from kpose.errors import AnnotationError, ConfigError

Log = Callable[[str], None]
EXAMPLES = 3  # missing images named in an error


@dataclass(frozen=True)
class Need:
    """A file or folder a dataset needs.

    Attributes:
        path: relative to the dataset root; a trailing ``/`` marks a folder.
        source: where it comes from (an archive and its URL).
    """

    path: str
    source: str

    def exists(self, root: Path) -> bool:
        target = root / self.path
        return target.is_dir() if self.path.endswith("/") else target.is_file()


def load_matlab(path: Path, **options: Any) -> dict[str, Any]:
    """``scipy.io.loadmat(path, **options)``; AnnotationError naming the file when it is not
    a MATLAB file scipy reads."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        return loadmat(path, **options)
    except (MatReadError, ValueError, TypeError) as exc:
        raise AnnotationError(f"{path}: not a MATLAB file this reader understands: {exc}") from None


def require(root: Path, needs: Iterable[Need], dataset: str) -> None:
    """ConfigError naming every ``need`` missing under ``root``, each with where it comes from."""
    missing = [need for need in needs if not need.exists(root)]
    if missing:
        lines = "\n".join(f"  {need.path}  <- {need.source}" for need in missing)
        raise ConfigError(f"--root {root}: this {dataset} folder lacks {len(missing)} item(s):\n{lines}")


def first_existing(root: Path, candidates: Sequence[str]) -> str | None:
    """The first of ``candidates`` (paths relative to ``root``) that is a file, or None."""
    return next((c for c in candidates if (root / c).is_file()), None)


@dataclass(frozen=True)
class PreparedSplit:
    """One split of a prepared dataset; paths relative to its root.

    Attributes:
        annotations: the annotation file.
        images: the image folder.
        boxes: the person detections to evaluate with, if the dataset has them.
        persons: annotated people the reader kept.
        images_found: distinct image files the annotations name (all of them exist).
    """

    annotations: str
    images: str
    boxes: str | None = None
    persons: int = 0
    images_found: int = 0


@dataclass
class PreparedDataset:
    """A checked dataset folder, as ``kpose data prepare`` leaves it.

    Attributes:
        name: ``coco``, ``mpii`` or ``crowdpose``.
        schema: its keypoint schema (the configs' ``data.schema``).
        root: absolute folder.
        splits: ``{"train": ..., "val": ...}``, the splits the configs of this dataset read.
        example_config: a repository config for it, relative to the repository root.
        standard: True when the files sit where ``training/configs`` expects them under a
            ``root``, so ``kpose train --config CONFIG --root ROOT`` works as it is.
        notes: what the user should know (a missing optional file, how a split was made).
    """

    name: str
    schema: str
    root: Path
    splits: dict[str, PreparedSplit]
    example_config: str
    standard: bool = True
    notes: list[str] = field(default_factory=list)


def _listing(folder: Path, cache: dict[Path, set[str]]) -> set[str]:
    if folder not in cache:
        cache[folder] = set(os.listdir(folder)) if folder.is_dir() else set()
    return cache[folder]


def check_images(samples: PersonSamples, image_dir: Path, annotations: Path, fix: str) -> int:
    """Every image file the rows of ``samples`` name must exist.

    Each folder is listed once, so a split of 100k images takes a second or two.

    Args:
        samples: the split's people (their ``image_paths``).
        image_dir: the split's image folder (named in the error).
        annotations: the annotation file (named in the error).
        fix: where the images come from, appended to the error.

    Returns:
        How many distinct image files were found.

    Raises:
        ConfigError: some are missing; the message counts them and names a few.
    """
    cache: dict[Path, set[str]] = {}
    paths = sorted({Path(p) for p in samples.image_paths})
    missing = [p for p in paths if p.name not in _listing(p.parent, cache)]
    if missing:
        names = ", ".join(os.path.relpath(p, image_dir) for p in missing[:EXAMPLES])
        raise ConfigError(
            f"{image_dir}: {len(missing)} of the {len(paths)} images that {annotations.name} names are missing "
            f"(e.g. {names}); {fix}"
        )
    return len(paths)


def check_split(
    root: Path,
    annotations: str,
    images: str,
    read: Callable[[Path, Path], PersonSamples],
    fix: str,
    log: Log,
    validate: Callable[[PersonSamples], object] | None = None,
) -> PreparedSplit:
    """Read a split with kpose's reader (which validates every field) and find its images.

    Args:
        root: the dataset folder.
        annotations, images: the split's annotation file and image folder, relative to ``root``.
        read: the reader, ``read(annotation_file, image_dir) -> PersonSamples``.
        fix: where the images come from, for the error.
        log: progress lines.
        validate: a further check of the people read (it raises).

    Raises:
        AnnotationError: the reader's, naming the file and field.
        ConfigError: images are missing.
    """
    log(f"reading {annotations}")
    samples = read(root / annotations, root / images)
    if validate is not None:
        validate(samples)
    found = check_images(samples, root / images, root / annotations, fix)
    log(f"  {len(samples)} people on {found} images, every image found in {images}/")
    return PreparedSplit(annotations, images, persons=len(samples), images_found=found)


def check_boxes(root: Path, split: PreparedSplit, boxes: str, schema: str, log: Log) -> PreparedSplit:
    """``split`` with its person detections ``boxes`` (relative to ``root``), read and checked
    against the split's annotation file."""
    log(f"reading {boxes}")
    detections = read_detections(root / boxes, root / split.annotations, root / split.images, schema)
    log(f"  {len(detections)} person boxes")
    return replace(split, boxes=boxes)
