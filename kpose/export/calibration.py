"""Calibration data for int8 / int16x8 quantization: real crops from the training pipeline.

The source is a training config (its ``data.train`` split, or ``data.val`` if it has no
train split) or a COCO-style dataset folder (an annotation file under ``annotations/`` or at
the top, images under ``images/<split>/``, ``<split>/``, ``images/`` or the folder itself). Crops
are cut exactly as evaluation cuts them (:func:`kpose.data.pipeline.make_topdown_dataset`
with ``training=False``): uint8 RGB at the model's input size.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from kpose.data.pipeline import DecodeLog
from kpose.engine.config import DatasetConfig
from kpose.export.graph import ExportError
from kpose.keypoints import KeypointSchema, get_schema

log = logging.getLogger("kpose.export")

CONFIG_SUFFIXES = (".yaml", ".yml")
MIN_CROPS = 8  # fewer crops than this (or than asked, if fewer were asked) fail a calibration


@dataclass(frozen=True)
class CalibrationSource:
    """Where calibration crops come from.

    Attributes:
        dataset: the split to crop.
        schema: the schema a config names (None for a folder: the caller's schema applies).
    """

    dataset: DatasetConfig
    schema: KeypointSchema | None


def _annotation_file(root: Path) -> Path:
    files = sorted((root / "annotations").glob("*.json")) + sorted(root.glob("*.json"))
    if not files:
        raise ExportError(
            f"--calibration {root}: no COCO annotation file (*.json) in {root}/annotations or {root}"
        )
    keypoints = [f for f in files if "detection" not in f.stem] or files
    train = [f for f in keypoints if "train" in f.stem]
    return (train or keypoints)[0]


def _image_dir(root: Path, annotation_file: Path) -> Path:
    split = annotation_file.stem.rsplit("_", 1)[-1]
    for candidate in (root / "images" / split, root / split, root / "images", root):
        if candidate.is_dir() and any(p.suffix.lower() in (".jpg", ".jpeg", ".png") for p in candidate.iterdir()):
            return candidate
    raise ExportError(f"--calibration {root}: no image folder found for {annotation_file.name}")


def resolve_calibration(source: str | Path) -> CalibrationSource:
    """The split and schema a ``--calibration`` argument (config YAML or dataset folder) names."""
    path = Path(source)
    if path.suffix.lower() in CONFIG_SUFFIXES:
        from kpose.engine.config import load_config

        if not path.is_file():
            raise ExportError(f"--calibration {path}: config file not found")
        config = load_config(path)
        split = config.data.train or config.data.val
        if split is None:
            raise ExportError(f"--calibration {path}: the config has neither data.train nor data.val")
        return CalibrationSource(split, get_schema(config.data.schema))
    if path.is_dir():
        annotations = _annotation_file(path)
        return CalibrationSource(DatasetConfig(str(annotations), str(_image_dir(path, annotations))), None)
    raise ExportError(f"--calibration {path}: expected a training config (.yaml) or a dataset folder")


def calibration_crops(
    source: CalibrationSource,
    schema: KeypointSchema,
    input_size: tuple[int, int],
    count: int = 300,
    batch_size: int = 16,
    decode_log: DecodeLog | None = None,
) -> Iterator[np.ndarray]:
    """Up to ``count`` uint8 crops ``(B, H, W, 3)`` in batches, in dataset order (images that
    fail to decode are skipped, and counted in ``decode_log``).

    Raises:
        ExportError: ``count`` < 1 or the split has no person to crop.
    """
    from kpose.data.pipeline import make_topdown_dataset
    from kpose.engine.datasets import read_split

    if count < 1:
        raise ExportError(f"--calibration-size must be >= 1, got {count}")
    samples = read_split(source.dataset, schema)
    if len(samples) == 0:
        raise ExportError(f"--calibration {source.dataset.annotations}: no person boxes to crop")
    dataset = make_topdown_dataset(samples, schema, input_size, batch_size, training=False, decode_log=decode_log)
    remaining = count
    for batch in dataset.as_numpy_iterator():
        crops = batch["image"][:remaining]
        remaining -= len(crops)
        yield crops
        if remaining <= 0:
            return


def calibration_set(
    source: CalibrationSource, schema: KeypointSchema, input_size: tuple[int, int], count: int = 300
) -> list[np.ndarray]:
    """The crops of :func:`calibration_crops`, all read before conversion so that a
    calibration on too little is refused: fewer than ``min(count, MIN_CROPS)`` crops is an
    ExportError, fewer than ``count`` a warning with the numbers."""
    decode_log = DecodeLog(str(source.dataset.annotations))
    batches = list(calibration_crops(source, schema, input_size, count, decode_log=decode_log))
    got = sum(len(batch) for batch in batches)
    where = f"--calibration {source.dataset.annotations}"
    skipped = f"; {decode_log.summary()}" if decode_log.failed else ""
    if got < min(count, MIN_CROPS):
        raise ExportError(
            f"{where}: {got} crops decoded, fewer than the {min(count, MIN_CROPS)} a calibration needs "
            f"(asked {count}){skipped}; nothing written"
        )
    if got < count:
        log.warning("%s: calibrating on %d crops, %d were asked%s", where, got, count, skipped)
    return batches
