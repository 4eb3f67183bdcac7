"""Training configuration: YAML files in ``training/configs/`` map onto these dataclasses.

Every key is checked (:mod:`kpose.utils.dataclass_yaml`): an unknown key, a wrong type or a
missing dataset path fails before any model is built, naming the file and the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kpose.data.augment import AugmentConfig
from kpose.errors import ConfigError
from kpose.utils import dataclass_yaml

Precision = Literal["float32", "mixed_float16", "mixed_bfloat16"]
Strategy = Literal["default", "mirrored", "multi_worker"]
DatasetFormat = Literal["coco", "crowdpose", "mpii"]


@dataclass
class ModelConfig:
    """``name`` as :func:`kpose.models.create_model` takes it; ``options`` are head options.

    ``weights`` are keras.applications backbone weights (``"imagenet"``); ``init_from`` a kpose
    ``.keras`` model whose layers of the same name and shapes start this one
    (:mod:`kpose.engine.init_weights`). A resumed run restores its own state over both.
    """

    name: str
    input_size: tuple[int, int] = (256, 192)
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
    box_score_threshold: float = 0.0


@dataclass
class DataConfig:
    schema: str = "coco"
    train: DatasetConfig | None = None
    val: DatasetConfig | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    cache: bool = False
    max_people: int = 30  # bottom-up models: people per image carried to the loss


@dataclass
class OptimizerConfig:
    name: Literal["adam", "adamw"] = "adam"
    learning_rate: float = 5e-4
    weight_decay: float = 0.0
    warmup_steps: int = 500
    milestones: tuple[int, ...] = (170, 200)
    gamma: float = 0.1
    clipnorm: float | None = None


@dataclass
class TrainConfig:
    """``batch_size`` is global: with N replicas each one sees ``batch_size / N`` samples."""

    epochs: int = 210
    batch_size: int = 64
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    loss_weights: dict[str, float] = field(default_factory=dict)
    sigma: float = 2.0
    precision: Precision = "float32"
    jit_compile: bool | Literal["auto"] = "auto"
    distribution: Strategy = "default"
    steps_per_epoch: int | None = None
    backup_every: int | None = None  # optimizer steps between backups; None: every epoch
    seed: int = 0


@dataclass
class EvalConfig:
    every: int = 10
    flip_test: bool = True
    decoder: Literal["argmax", "maxpool", "quarter", "dark"] = "quarter"
    batch_size: int = 64


@dataclass
class Config:
    model: ModelConfig
    data: DataConfig
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    output_dir: str = "runs/{model}"

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir.format(model=self.model.name))


def _check_paths(config: Config, source: str) -> None:
    for split in ("train", "val"):
        dataset = getattr(config.data, split)
        if dataset is None:
            continue
        for key in ("annotations", "images", "boxes"):
            value = getattr(dataset, key)
            if value is not None and not Path(value).exists():
                raise ConfigError(f"{source}: data.{split}.{key}: {value} does not exist")
    if config.model.init_from is not None and not Path(config.model.init_from).is_file():
        raise ConfigError(f"{source}: model.init_from: {config.model.init_from} does not exist")


def load_config(path: str | Path, check_paths: bool = True) -> Config:
    """Read and validate a training config.

    Relative dataset paths are relative to the working directory, as in MMPose. With
    ``check_paths``, a dataset file or folder that does not exist is a ConfigError naming
    the key.
    """
    path = Path(path)
    config = dataclass_yaml.load(Config, path)
    if check_paths:
        _check_paths(config, str(path))
    return config
