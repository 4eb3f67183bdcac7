"""Training configuration: YAML files in ``training/configs/`` map onto these dataclasses.

Every key is checked (:mod:`kpose.utils.dataclass_yaml`): an unknown key, a wrong type, a
value out of its range (declared on the field: ``train.epochs: must be >= 1, got 0``) or a
missing dataset path fails before any model is built, naming the file and the key.

Paths: the data paths (``data.train`` / ``data.val``: ``annotations``, ``images``, ``boxes``)
are relative to the top-level ``root`` when it is set, else to the config file's folder; a
relative ``root`` is itself relative to the config file's folder. ``model.init_from``, a
weights file in ``model.weights`` and a schema file in ``data.schema`` are relative to the
config file's folder. ``output_dir`` is an output and stays relative to the working
directory. :func:`load_config` returns every input path absolute, so the ``config.yaml`` a
run saves works from any folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from kpose.data.augment import AugmentConfig
from kpose.errors import ConfigError
from kpose.keypoints import builtin_schema_names
from kpose.models.backbones.base import IMAGENET
from kpose.utils import dataclass_yaml
from kpose.utils.dataclass_yaml import at_least, between, positive

Precision = Literal["float32", "mixed_float16", "mixed_bfloat16"]
Strategy = Literal["default", "mirrored", "multi_worker"]
DatasetFormat = Literal["coco", "crowdpose", "mpii"]
MIN_INPUT_SIDE = 32  # pixels: the backbones' deepest stride


@dataclass
class ModelConfig:
    """``name`` as :func:`kpose.models.create_model` takes it; ``options`` are head options.

    ``weights`` are the backbone's starting weights: ``"imagenet"`` (keras.applications') or a
    weights file of the backbone; ``init_from`` a kpose ``.keras`` model whose layers of the
    same name and shapes start this one (:mod:`kpose.engine.init_weights`). A resumed run
    restores its own state over both.
    """

    name: str
    input_size: tuple[int, int] = field(default=(256, 192), metadata=at_least(MIN_INPUT_SIDE))
    weights: str | None = None
    init_from: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class DatasetConfig:
    """One split: annotation file, image folder, and optionally detected person boxes."""

    annotations: str
    images: str
    format: DatasetFormat = "coco"
    boxes: str | None = None
    box_score_threshold: float = field(default=0.0, metadata=between(0, 1))


@dataclass
class DataConfig:
    schema: str = "coco"
    train: DatasetConfig | None = None
    val: DatasetConfig | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    cache: bool = False
    max_people: int = field(default=30, metadata=at_least(1))  # bottom-up models: people per image carried to the loss


@dataclass
class OptimizerConfig:
    name: Literal["adam", "adamw"] = "adam"
    learning_rate: float = field(default=5e-4, metadata=positive())
    weight_decay: float = field(default=0.0, metadata=at_least(0))
    warmup_steps: int = field(default=500, metadata=at_least(0))
    milestones: tuple[int, ...] = field(default=(170, 200), metadata=at_least(0))
    gamma: float = field(default=0.1, metadata=positive())
    clipnorm: float | None = field(default=None, metadata=positive())


@dataclass
class TrainConfig:
    """``batch_size`` is global: with N replicas each one sees ``batch_size / N`` samples."""

    epochs: int = field(default=210, metadata=at_least(1))
    batch_size: int = field(default=64, metadata=at_least(1))
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    loss_weights: dict[str, float] = field(default_factory=dict)
    sigma: float = field(default=2.0, metadata=positive())
    precision: Precision = "float32"
    jit_compile: bool | Literal["auto"] = "auto"
    distribution: Strategy = "default"
    steps_per_epoch: int | None = field(default=None, metadata=at_least(1))
    # optimizer steps between backups; None: every epoch
    backup_every: int | None = field(default=None, metadata=at_least(1))
    seed: int = field(default=0, metadata=at_least(0))


@dataclass
class EvalConfig:
    every: int = field(default=10, metadata=at_least(1))
    flip_test: bool = True
    decoder: Literal["argmax", "maxpool", "quarter", "dark"] = "quarter"
    batch_size: int = field(default=64, metadata=at_least(1))


@dataclass
class Config:
    model: ModelConfig
    data: DataConfig
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    output_dir: str = "runs/{model}"  # relative to the working directory
    root: str | None = None  # folder the data paths are relative to (see the module docstring)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir.format(model=self.model.name))


SPLITS = ("train", "val")
DATA_PATH_KEYS = ("annotations", "images", "boxes")
SCHEMA_SUFFIXES = (".json", ".yaml", ".yml")


def _absolute(base: Path, value: str | Path) -> str:
    """``value`` joined to ``base`` (an absolute ``value`` stays as it is), normalised."""
    return os.path.normpath(os.path.join(base, os.path.expanduser(str(value))))


def resolve_paths(config: Config, config_dir: str | Path, root: str | Path | None = None) -> Config:
    """Make ``config``'s input paths absolute, in place, by the rule of the module docstring.

    Args:
        config: a config as read from its file.
        config_dir: the folder of that file.
        root: overrides ``config.root`` (a command line's ``--root``); relative to the
            working directory.

    Returns:
        ``config``, with ``root`` set to the absolute folder the data paths were joined to.
    """
    config_dir = Path(_absolute(Path.cwd(), config_dir))
    if root is not None:
        data_root = _absolute(Path.cwd(), root)
    else:
        data_root = _absolute(config_dir, config.root if config.root is not None else ".")
    for split in SPLITS:
        dataset = getattr(config.data, split)
        for key in DATA_PATH_KEYS if dataset is not None else ():
            value = getattr(dataset, key)
            if value is not None:
                setattr(dataset, key, _absolute(Path(data_root), value))
    if config.model.init_from is not None:
        config.model.init_from = _absolute(config_dir, config.model.init_from)
    if config.model.weights not in (None, IMAGENET):
        config.model.weights = _absolute(config_dir, config.model.weights)
    schema = config.data.schema
    if schema.lower() not in builtin_schema_names() and Path(schema).suffix.lower() in SCHEMA_SUFFIXES:
        config.data.schema = _absolute(config_dir, schema)
    config.root = data_root
    return config


def _check_paths(config: Config, source: str) -> None:
    for split in SPLITS:
        dataset = getattr(config.data, split)
        if dataset is None:
            continue
        for key in DATA_PATH_KEYS:
            value = getattr(dataset, key)
            if value is not None and not Path(value).exists():
                raise ConfigError(
                    f"{source}: data.{split}.{key}: {value} does not exist (the data paths are relative "
                    f"to {config.root}: set the config's root: or pass --root)"
                )
    for key in ("init_from", "weights"):
        value = getattr(config.model, key)
        if value not in (None, IMAGENET) and not Path(value).is_file():
            raise ConfigError(f"{source}: model.{key}: {value} does not exist")


def load_config(path: str | Path, check_paths: bool = True, root: str | Path | None = None) -> Config:
    """Read and validate a training config, its input paths made absolute.

    Args:
        path: the YAML file.
        check_paths: a dataset file or folder (or ``model.init_from``, a ``model.weights``
            file) that does not exist is a ConfigError naming the key.
        root: folder the data paths are relative to, overriding the file's ``root``; a
            relative one is relative to the working directory.
    """
    path = Path(path)
    config = resolve_paths(dataclass_yaml.load(Config, path), path.parent, root)
    if check_paths:
        _check_paths(config, str(path))
    return config


def write_config(config: Config, path: str | Path) -> Path:
    """Write ``config`` as YAML to ``path``; input paths that are relative are made absolute
    against the working directory first (where a config built in Python reads them), so the
    file loads the same from any folder."""
    config = resolve_paths(dataclass_yaml.build(Config, dataclass_yaml.to_dict(config)), Path.cwd())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dataclass_yaml.to_dict(config), sort_keys=False))
    return path
