"""A copy of a training config whose data paths point at a prepared dataset.

The copy keeps every key of the original as written (the leading comment lines too) and sets
``root`` to the prepared folder, absolute, and ``data.train`` / ``data.val`` to the files
:func:`~kpose.prepare.prepare_dataset` found, relative to it. A val split configured with
detected ``boxes`` keeps them when the dataset has them and falls back to ground-truth boxes
otherwise; a split configured without keeps ground-truth boxes. The copy is loaded back with
:func:`kpose.engine.config.load_config`, so every path in it is known to exist.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from kpose.prepare.layout import PreparedDataset
from kpose.errors import ConfigError


def _leading_comments(text: str) -> str:
    lines = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            break
        lines.append(line)
    return "".join(lines)


def write_dataset_config(prepared: PreparedDataset, config_file: str | Path, output: str | Path) -> list[str]:
    """Write ``config_file`` with its data paths set to ``prepared`` to ``output``.

    Args:
        prepared: the checked dataset.
        config_file: a training config of the same keypoint schema.
        output: the YAML file to write (its folder is created).

    Returns:
        Notes on what changed besides the paths (a dropped ``boxes``), one line each.

    Raises:
        ConfigError: ``config_file`` is not a valid config, has neither ``data.train`` nor
            ``data.val``, or its ``data.schema`` is not the dataset's; ``output`` is then
            left as it was.
    """
    from kpose.engine.config import IMAGENET, load_config

    config_file, output = Path(config_file), Path(output)
    config = load_config(config_file, check_paths=False)  # every key checked, errors name the file
    if config.data.schema != prepared.schema:
        raise ConfigError(
            f"--config {config_file}: data.schema is {config.data.schema!r}, but {prepared.name} has "
            f"{prepared.schema!r} keypoints; pick a config from training/configs/{prepared.name}/"
        )
    if config.data.train is None and config.data.val is None:
        raise ConfigError(f"--config {config_file}: neither data.train nor data.val is set")
    text = config_file.read_text()
    raw = yaml.safe_load(text)
    notes = []
    for split, paths in prepared.splits.items():
        entry = raw["data"].get(split)
        if entry is None:
            continue
        entry.update(annotations=paths.annotations, images=paths.images)
        if "boxes" in entry and paths.boxes is None:
            del entry["boxes"]
            notes.append(f"data.{split}.boxes dropped: {prepared.name} has no detections here, so {split} is scored on ground-truth boxes")
        elif "boxes" in entry:
            entry["boxes"] = paths.boxes
    # paths relative to the original's folder, made absolute so that they hold in the copy's
    model = raw.get("model", {})
    for key in ("init_from", "weights"):
        if model.get(key) not in (None, IMAGENET):
            model[key] = getattr(config.model, key)
    if "schema" in raw["data"]:
        raw["data"]["schema"] = config.data.schema
    raw = {"root": str(prepared.root), **{key: value for key, value in raw.items() if key != "root"}}
    header = (
        f"{_leading_comments(text)}# Data paths: `kpose data prepare {prepared.name} --root {prepared.root}`, "
        f"from {config_file}. They are relative to root.\n"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    draft = output.with_name(output.name + ".partial.yaml")  # checked before it replaces output
    try:
        draft.write_text(header + yaml.safe_dump(raw, sort_keys=False))
        load_config(draft)
        os.replace(draft, output)
    finally:
        draft.unlink(missing_ok=True)
    return notes
