"""``kpose quickstart``: synthetic data, a small edge model trained on the CPU, its scores.

Everything lands in one folder (``runs/quickstart`` by default)::

    data/            the synthetic COCO-format train and val sets
    config.yaml      the training config, reusable with ``kpose train --config``
    best.keras       the trained model, where ``kpose export`` and ``kpose demo`` look first
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from kpose.api import QUICKSTART_DIR
from kpose.data.augment import AugmentConfig
from kpose.data.synthetic import SyntheticSet, write_synthetic_coco
from kpose.engine.config import (
    Config,
    DataConfig,
    DatasetConfig,
    EvalConfig,
    ModelConfig,
    OptimizerConfig,
    TrainConfig,
)

DEFAULT_DIR = QUICKSTART_DIR
MODEL_NAME = "srhead_mobilenetv3_large"


@dataclass
class QuickstartSettings:
    """The knobs of a quickstart; the defaults train in 12 to 22 minutes on a 2-core CPU."""

    out_dir: Path = DEFAULT_DIR
    model: str = MODEL_NAME
    input_size: tuple[int, int] = (128, 96)
    # SR head on the stride-8 features, full-resolution heatmaps: learns fastest on a CPU.
    # MobileNetV3-Large's F3 is six blocks deep (Small's is three): the context that places
    # hidden keypoints, AP 0.57 against Small's 0.33 after 10 epochs, for 1.7x the step time.
    # r = 8 takes a small kernel, as SRPose's r = 8 head does (kernel 3); 5 trains ~3x faster
    # on a CPU than the stand-alone head's 9 at no cost in accuracy here.
    model_options: dict | None = field(
        default_factory=lambda: {"feature": "F3", "scale": 1.0, "kernel_size": 5}
    )
    # Gaussian sigma at stride 4 (6 px on the full-resolution maps). Wider than the papers'
    # (2 at 256x192, i.e. 4 px at 128x96): the hidden keypoints (30% of the labels) are
    # guesses, and a wider target places them better (20 epochs: PCK 0.885 -> 0.893).
    sigma: float = 1.5
    train_images: int = 600
    val_images: int = 100
    epochs: int = 28
    batch_size: int = 32
    learning_rate: float = 2e-3
    seed: int = 0


def quickstart_config(settings: QuickstartSettings, train: SyntheticSet, val: SyntheticSet) -> Config:
    epochs = settings.epochs
    return Config(
        model=ModelConfig(settings.model, settings.input_size, options=dict(settings.model_options or {})),
        data=DataConfig(
            schema="coco",
            # absolute, so the run's config.yaml reads the same data from any folder
            train=DatasetConfig(str(train.annotation_file.absolute()), str(train.image_dir.absolute())),
            val=DatasetConfig(str(val.annotation_file.absolute()), str(val.image_dir.absolute())),
            # The synthetic markers carry the side in their colour (left wrist and right wrist
            # differ), so a mirrored crop contradicts its own labels: no flip, no flip test.
            # Milder than MMPose's COCO settings (rotation 40, scale 0.5, half body 0.3): a
            # 15-minute run learns the val distribution sooner (20 epochs: AP 0.635 -> 0.667).
            augment=AugmentConfig(flip_prob=0.0, rotation_factor=20.0, scale_factor=0.35, half_body_prob=0.1),
            cache=True,
        ),
        train=TrainConfig(
            epochs=epochs,
            batch_size=settings.batch_size,
            optimizer=OptimizerConfig(
                learning_rate=settings.learning_rate,
                warmup_steps=50,
                milestones=(int(epochs * 0.7), int(epochs * 0.9)),
            ),
            sigma=settings.sigma,
            seed=settings.seed,
        ),
        eval=EvalConfig(every=max(1, epochs // 2), flip_test=False, decoder="argmax"),
        output_dir=str(settings.out_dir),
    )


def run_quickstart(settings: QuickstartSettings) -> tuple[Config, dict[str, float], float]:
    """Generate the data, train, evaluate the best model; returns the config, the metrics on
    the synthetic val set (ground-truth boxes) and the wall time in seconds."""
    from kpose.tasks import evaluate, train

    start = time.perf_counter()
    data_dir = settings.out_dir / "data"
    train_set = write_synthetic_coco(data_dir, settings.train_images, seed=settings.seed, split="train")
    val_set = write_synthetic_coco(data_dir, settings.val_images, seed=settings.seed, split="val")
    config = quickstart_config(settings, train_set, val_set)
    result = train(config, overwrite=True)  # the data was just written anew: so is the run
    metrics = evaluate(
        result.best_model, config.data.val, "coco", decoder=config.eval.decoder,
        flip_test=config.eval.flip_test,
    )
    return config, metrics, time.perf_counter() - start
