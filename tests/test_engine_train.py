"""Training end to end on a tiny synthetic set: config errors, fit, resume, precision, distribution."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

from kpose.data.synthetic import write_synthetic_coco  # noqa: E402
from kpose.engine.config import load_config  # noqa: E402
from kpose.errors import ConfigError  # noqa: E402

MODEL = "srhead_mobilenetv3_small"


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    return {
        "train": write_synthetic_coco(root, 12, seed=0, split="train"),
        "val": write_synthetic_coco(root, 4, seed=0, split="val"),
    }


def write_config(path: Path, synth, **overrides) -> Path:
    config = {
        "model": {"name": MODEL, "input_size": [64, 64]},
        "data": {
            "schema": "coco",
            "train": {"annotations": str(synth["train"].annotation_file), "images": str(synth["train"].image_dir)},
            "val": {"annotations": str(synth["val"].annotation_file), "images": str(synth["val"].image_dir)},
        },
        "train": {"epochs": 1, "batch_size": 4, "steps_per_epoch": 2, "optimizer": {"warmup_steps": 0, "milestones": []}},
        "eval": {"every": 1, "batch_size": 8},
        "output_dir": str(path.parent / "run"),
    }
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        if name:
            config[section][name] = value
        else:
            config[section] = value
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    "override,message",
    [
        ({"train.epochz": 3}, "unknown key train.epochz"),
        ({"data.train": {"annotations": "/nope.json", "images": "/"}}, r"data.train.annotations: /nope.json does not exist"),
        ({"train.precision": "float8"}, "train.precision: expected one of"),
    ],
)
def test_bad_configs_fail_before_building(tmp_path, synth, override, message):
    path = write_config(tmp_path / "c.yaml", synth, **override)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_fit_evaluates_and_saves(tmp_path, synth, capsys):
    from kpose.cli.main import main
    from kpose.tasks import train

    config_path = write_config(tmp_path / "c.yaml", synth)
    config = load_config(config_path)
    result = train(config)
    assert np.isfinite(result.history["loss"]).all()
    assert {"val_AP", "val_PCK@0.1", "learning_rate"} <= set(result.history)
    model = keras.saving.load_model(result.best_model, safe_mode=True)
    image = np.random.default_rng(0).integers(0, 255, (1, 64, 64, 3)).astype("float32")
    out = model(image)
    assert out["heatmaps"].dtype == "float32" and out["heatmaps"].shape[-1] == 17
    assert (result.run_dir / "log.csv").exists() and (result.run_dir / "config.yaml").exists()
    assert not (result.run_dir / "backup").exists()  # removed after a finished run

    # the saved model evaluates through the CLI, on the config's val split, with detected boxes too
    capsys.readouterr()
    assert main(["eval", "--model", str(result.best_model), "--config", str(config_path), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"AP", "AP50", "PCK@0.1"} <= set(metrics) and 0.0 <= metrics["AP"] <= 1.0
    results = tmp_path / "results.json"
    args = ["eval", "--model", str(result.best_model), "--annotations", str(synth["val"].annotation_file),
            "--images", str(synth["val"].image_dir), "--boxes", str(synth["val"].detection_file),
            "--decoder", "dark", "--no-flip", "--results-out", str(results), "--json"]
    assert main(args) == 0
    with_boxes = json.loads(capsys.readouterr().out)
    assert "PCK@0.1" not in with_boxes and "AP" in with_boxes  # detected boxes: no per-person PCK
    assert main(["eval", "--predictions", str(results), "--annotations", str(synth["val"].annotation_file), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["AP"] == pytest.approx(with_boxes["AP"])


def test_srpose_loss_weights_reach_every_output(tmp_path, synth):
    from kpose.engine.training import build_model
    from kpose.keypoints import get_schema
    from kpose.tasks import TopDown

    config = load_config(write_config(tmp_path / "c.yaml", synth, model={"name": "srpose_mobilenetv3_small", "input_size": [64, 64]}))
    model = build_model(config, get_schema("coco"))
    losses, weights = TopDown().losses(model, config)
    model.compile(optimizer="adam", loss=losses, loss_weights=weights)
    names = ["lr_heatmaps", "sr1", "sr2", "sr3", "heatmaps"]
    assert set(model.output) == set(names)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (2, 64, 64, 3)).astype("float32")
    target = np.concatenate([rng.uniform(0, 63, (2, 17, 2)), np.ones((2, 17, 1))], -1).astype("float32")
    logs = model.evaluate(images, {n: target for n in names}, verbose=0, return_dict=True)
    weights = {"lr_heatmaps": 1e-4, "sr1": 1.0, "sr2": 1.0, "sr3": 1.0, "heatmaps": 1.0}
    assert all(logs[f"{n}_loss"] > 0 for n in names)
    assert logs["loss"] == pytest.approx(sum(w * logs[f"{n}_loss"] for n, w in weights.items()), rel=1e-4)
    with pytest.raises(ConfigError, match="unknown output"):
        config.train.loss_weights = {"sr9": 1.0}
        TopDown().losses(model, config)


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_steps_keep_float32_outputs(tmp_path, synth, precision):
    from kpose.tasks import train

    config = load_config(write_config(tmp_path / "c.yaml", synth, **{"train.precision": precision, "data.val": None}))
    result = train(config)
    assert np.isfinite(result.history["loss"]).all()
    assert keras.mixed_precision.dtype_policy().name == "float32"  # restored after training
    model = keras.saving.load_model(result.last_model, safe_mode=True)
    assert any(layer.dtype_policy.name == precision for layer in model.layers)
    out = model(np.zeros((1, 64, 64, 3), "float32"))
    assert out["heatmaps"].dtype == "float32"


def _train_in_subprocess(config: Path, *extra: str, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "kpose.cli.main", "train", "--config", str(config), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def test_killed_run_resumes_from_its_backup(tmp_path, synth):
    """kill -9 in the middle of epoch 2, start again: it goes on from the backup."""
    path = write_config(
        tmp_path / "c.yaml", synth,
        **{"train.epochs": 3, "train.steps_per_epoch": 6, "train.backup_every": 2, "data.val": None},
    )
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "kpose.cli.main", "train", "--config", str(path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    backup = run / "backup"

    def backed_up_epochs() -> list[int]:
        """Epochs of both backup generations (a kill may corrupt the one being written)."""
        try:
            return [json.loads((backup / name).read_text())["epoch"]
                    for name in ("training_metadata.json", "training_metadata.json.bkp")]
        except (OSError, json.JSONDecodeError, KeyError):
            return []

    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        epochs = backed_up_epochs()
        if epochs and min(epochs) >= 1:  # both generations are past epoch 1
            break
        time.sleep(0.1)
    assert proc.poll() is None, proc.stdout.read()
    os.kill(proc.pid, signal.SIGKILL)  # in the middle of epoch 2 or 3
    proc.wait()

    resumed = _train_in_subprocess(path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    out = resumed.stdout + resumed.stderr
    assert "Epoch 1/3" not in out and "Epoch 3/3" in out
    assert "resuming at epoch" in out and "training stream seed" in out
    assert (run / "last.keras").exists() and not (run / "backup").exists()


def test_a_resumed_run_draws_a_stream_of_its_own(tmp_path, synth):
    """The epoch comes from Keras' backup (the older generation if the newer is unreadable);
    the seed follows from (train.seed, epoch): fresh runs keep train.seed."""
    from kpose.engine.training import stream_seed

    config = load_config(write_config(tmp_path / "c.yaml", synth, **{"train.seed": 7}))
    run = config.run_dir
    assert stream_seed(config, run) == 7
    backup = run / "backup"
    backup.mkdir(parents=True)
    (backup / "training_metadata.json").write_text('{"epoch": 3, "batch": 0}')
    at_3 = stream_seed(config, run)
    (backup / "training_metadata.json").write_text('{"epo')  # killed while writing it
    (backup / "training_metadata.json.bkp").write_text('{"epoch": 2, "batch": 0}')
    at_2 = stream_seed(config, run)
    assert len({7, at_3, at_2}) == 3
    (backup / "training_metadata.json").write_text('{"epoch": 3, "batch": 0}')
    assert stream_seed(config, run) == at_3  # deterministic


MIRRORED_SCRIPT = r"""
import json, sys
import tensorflow as tf
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)
from kpose.engine.config import load_config
from kpose.tasks import train
config = load_config(sys.argv[1])
config.train.distribution = sys.argv[2]
config.output_dir = sys.argv[3]
result = train(config)
print("RESULT" + json.dumps({"loss": result.history["loss"], "replicas": result.replicas}))
"""


def test_mirrored_strategy_matches_single_device(tmp_path, synth):
    """Two logical CPU devices, same data and seed: the epoch's loss matches one device."""
    path = write_config(
        tmp_path / "c.yaml", synth,
        **{"train.epochs": 1, "train.steps_per_epoch": 3, "train.batch_size": 8, "data.val": None,
           "train.optimizer": {"learning_rate": 1e-4, "warmup_steps": 0, "milestones": []}},
    )
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT)
    losses = {}
    for kind in ("default", "mirrored"):
        proc = subprocess.run(
            [sys.executable, str(script), str(path), kind, str(tmp_path / kind)],
            capture_output=True, text=True, timeout=300,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT"))
        result = json.loads(line[6:])
        assert result["replicas"] == (2 if kind == "mirrored" else 1)
        losses[kind] = result["loss"][0]
    # BatchNorm statistics are per replica (4 crops instead of 8), so the match is close, not exact
    assert losses["mirrored"] == pytest.approx(losses["default"], rel=0.1)


def test_best_checkpoint_keeps_the_best_evaluated_epoch(tmp_path):
    from kpose.engine.callbacks import BestCheckpoint

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    checkpoint = BestCheckpoint(tmp_path, "val_AP")
    checkpoint.set_model(model)
    # NaN: not evaluated this epoch (a first epoch without evaluation once froze the best at NaN)
    for epoch, ap in enumerate([float("nan"), 0.1, float("nan"), 0.3, float("nan"), 0.2]):
        model.layers[0].kernel.assign(np.full((2, 1), epoch, np.float32))
        checkpoint.on_epoch_end(epoch, {"val_AP": ap})
    best = keras.saving.load_model(tmp_path / "best.keras")
    np.testing.assert_array_equal(np.asarray(best.layers[0].kernel), np.full((2, 1), 3.0))
    # resumed at epoch 2 (its backup): it must beat the best logged before that epoch, 0.3;
    # epoch 2's row (0.9) is trained again and does not count
    (tmp_path / "log.csv").write_text("epoch,val_AP\n0,nan\n1,0.3\n2,0.9\n")
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "training_metadata.json").write_text('{"epoch": 2}')
    resumed = BestCheckpoint(tmp_path, "val_AP")
    resumed.set_model(model)
    resumed.on_train_begin()
    resumed.on_epoch_end(6, {"val_AP": 0.25})
    best = keras.saving.load_model(tmp_path / "best.keras")
    np.testing.assert_array_equal(np.asarray(best.layers[0].kernel), np.full((2, 1), 3.0))
    model.layers[0].kernel.assign(np.full((2, 1), 7.0, np.float32))
    resumed.on_epoch_end(7, {"val_AP": 0.35})
    best = keras.saving.load_model(tmp_path / "best.keras")
    np.testing.assert_array_equal(np.asarray(best.layers[0].kernel), np.full((2, 1), 7.0))
