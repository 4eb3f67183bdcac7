"""Bottom-up training through ``kpose.tasks.train`` (model.fit) on synthetic
multi-person images, with the grouping-based COCO evaluation as validation."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from kpose.data.synthetic import write_synthetic_coco  # noqa: E402
from kpose.engine.config import (  # noqa: E402
    Config,
    DataConfig,
    DatasetConfig,
    EvalConfig,
    ModelConfig,
    OptimizerConfig,
    TrainConfig,
)
from kpose.tasks import train  # noqa: E402
from kpose.errors import ConfigError  # noqa: E402
from kpose.cli.main import main  # noqa: E402
from kpose.data.augment import AugmentConfig  # noqa: E402


EXPERIMENTS = Path(__file__).resolve().parents[1] / "training" / "experiments"


def config_for(tmp_path, **train_overrides) -> Config:
    data = write_synthetic_coco(tmp_path / "data", 8, seed=1, split="train")
    split = DatasetConfig(str(data.annotation_file), str(data.image_dir))
    return Config(
        model=ModelConfig("ae_mobilenetv3_small", (64, 64), options={"deconv_filters": 16}),
        data=DataConfig(train=split, val=split, max_people=6, augment=AugmentConfig(flip_prob=0.0)),
        train=TrainConfig(
            epochs=2, batch_size=4, steps_per_epoch=2, jit_compile=False,
            optimizer=OptimizerConfig(learning_rate=1e-3, warmup_steps=0, milestones=(1,)),
            **train_overrides,
        ),
        eval=EvalConfig(every=1, flip_test=False, batch_size=4),
        output_dir=str(tmp_path / "run"),
    )


def config_for_data(tmp_path) -> DatasetConfig:
    return DatasetConfig(str(tmp_path / "data/annotations/person_keypoints_train.json"),
                         str(tmp_path / "data/images/train"))


def test_fit_trains_both_outputs_and_evaluates(tmp_path, capsys) -> None:
    result = train(config_for(tmp_path))
    history = result.history
    assert {"heatmaps_loss", "tags_loss", "val_AP"} <= set(history)
    assert all(np.isfinite(history["heatmaps_loss"])) and all(np.isfinite(history["tags_loss"]))
    with (result.run_dir / "log.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(0.0 <= float(r["val_AP"]) <= 1.0 for r in rows)
    model = keras.saving.load_model(result.best_model)
    assert set(model.output) == {"heatmaps", "tags"}
    # kpose eval recognises the bottom-up model and scores it on whole images
    split = config_for_data(tmp_path)
    capsys.readouterr()  # the training's output
    assert main(["eval", "--model", str(result.best_model), "--annotations", split.annotations,
                 "--images", split.images, "--no-flip", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["AP"] == pytest.approx(float(rows[-1]["val_AP"]), abs=1e-6)
    # the error breakdown scores the model as the run did, and ground truth above it (the ceiling
    # is low here: 640x480 images in a 64x64 input, 16x16 maps)
    spec = importlib.util.spec_from_file_location("bottomup_errors", EXPERIMENTS / "bottomup_errors.py")
    errors = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(errors)
    table = errors.swapped_output_ap(*errors.predict_val(result.last_model, result.run_dir / "config.yaml"))
    assert table["predicted heatmaps, predicted tags"]["AP"] == pytest.approx(float(rows[-1]["val_AP"]), abs=1e-6)
    assert table["true heatmaps, true tags"]["AP"] > max(0.05, table["predicted heatmaps, predicted tags"]["AP"])


def test_unknown_loss_weight_names_the_outputs(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"train.loss_weights: unknown output\(s\) \['sr1'\]"):
        train(config_for(tmp_path, loss_weights={"sr1": 1.0}))


def test_overfit_batch_reports_losses_against_all_zero_maps(tmp_path, capsys) -> None:
    import yaml

    from kpose.utils import dataclass_yaml

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(dataclass_yaml.to_dict(config_for(tmp_path)), sort_keys=False))
    spec = importlib.util.spec_from_file_location("overfit_batch", EXPERIMENTS / "overfit_batch.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--config", str(path), "--steps", "100", "--batch-size", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    zero = float(next(line for line in lines if "all-zero heatmap loss" in line).split()[-1])
    steps = [line for line in lines if line.startswith("step ")]
    assert [s.split(":")[0] for s in steps] == ["step 50", "step 100"]
    losses = [float(s.split()[3]) for s in steps]
    shares = [float(s.split("(")[1].split()[0]) for s in steps]
    assert zero > 0 and shares == pytest.approx([loss / zero for loss in losses], abs=2e-3)
