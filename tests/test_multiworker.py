"""Training on several machines: TF_CONFIG, and worker processes on 127.0.0.1 started by
training/launch_workers.py (two workers, one worker, a killed worker and a restarted pair:
``-m slow``)."""

import csv
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

LAUNCHER = Path(__file__).resolve().parents[1] / "training" / "launch_workers.py"
TIMEOUT_S = 240


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return write_synthetic_coco(tmp_path_factory.mktemp("synth"), 12, seed=0, split="train")


def write_config(path: Path, synth, distribution: str, **train) -> Path:
    """A tiny top-down run: global batch 8, 3 steps an epoch, no validation."""
    config = {
        "model": {"name": "srhead_mobilenetv3_small", "input_size": [64, 64]},
        "data": {"schema": "coco", "train": {"annotations": str(synth.annotation_file), "images": str(synth.image_dir)}},
        "train": {
            "epochs": 1, "batch_size": 8, "steps_per_epoch": 3, "distribution": distribution,
            "optimizer": {"learning_rate": 1e-4, "warmup_steps": 0, "milestones": []}, **train,
        },
        "output_dir": str(path.parent / "run"),
    }
    path.write_text(yaml.safe_dump(config))
    return path


def logged_losses(run_dir: Path) -> list[float]:
    with (run_dir / "log.csv").open() as f:
        return [float(row["loss"]) for row in csv.DictReader(f)]


def launch(workers: int, config: Path, **popen) -> subprocess.Popen:
    cmd = [sys.executable, str(LAUNCHER), "--workers", str(workers), "--", "--config", str(config)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def run_workers(workers: int, config: Path) -> str:
    proc = launch(workers, config)
    out, _ = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == 0, out[-4000:]
    return out


@pytest.fixture(scope="module")
def one_machine(synth, tmp_path_factory):
    """``model.fit`` on one device: the reference run."""
    from kpose.tasks import train

    return train(load_config(write_config(tmp_path_factory.mktemp("fit") / "c.yaml", synth, "default")))


@pytest.mark.parametrize(
    "value,message",
    [
        (None, "TF_CONFIG is not set"),
        ("{cluster", "TF_CONFIG is not JSON"),
        ('{"cluster": {"worker": "a:1"}, "task": {"type": "worker", "index": 0}}', '"worker" list'),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}', 'type "worker" or "chief"'),
        ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}', "index 2 is not one of the 2"),
    ],
)
def test_tf_config_errors_name_the_variable(value, message):
    from kpose.engine.multiworker import read_tf_config

    with pytest.raises(ConfigError, match=message) as info:
        read_tf_config({} if value is None else {"TF_CONFIG": value})
    assert "train.distribution: multi_worker" in str(info.value)


def test_tf_config_roles_and_worker_data():
    from kpose.engine.multiworker import WorkerRole, read_tf_config, worker_seed

    workers = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    assert read_tf_config({"TF_CONFIG": json.dumps(workers)}) == WorkerRole(2, 1, False)
    chief = {"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}
    assert read_tf_config({"TF_CONFIG": json.dumps(chief)}) == WorkerRole(2, 0, True)
    # worker 0 reads the single-machine stream, the others streams of their own
    assert worker_seed(5, 0) == 5 and len({5, worker_seed(5, 1), worker_seed(5, 2)}) == 3


def test_multi_worker_without_tf_config_is_a_config_error(tmp_path, synth, monkeypatch):
    from kpose.tasks import train

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="TF_CONFIG is not set"):
        train(load_config(write_config(tmp_path / "c.yaml", synth, "multi_worker")))


def test_one_worker_trains_the_model_fit_trains(tmp_path, synth, one_machine):
    """The loop under MultiWorkerMirroredStrategy with one worker: fit's loss and weights."""
    run_workers(1, write_config(tmp_path / "c.yaml", synth, "multi_worker"))
    assert logged_losses(tmp_path / "run") == pytest.approx(one_machine.history["loss"], rel=1e-5)
    ours = keras.saving.load_model(tmp_path / "run" / "last.keras").get_weights()
    fits = keras.saving.load_model(one_machine.last_model).get_weights()
    assert all(np.allclose(a, b, atol=1e-5) for a, b in zip(ours, fits))


@pytest.mark.slow  # two more runs: fit and one worker, each under a mixed-precision policy
@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_one_worker_under_mixed_precision_trains_the_model_fit_trains(tmp_path, synth, precision):
    """The loop's loss scaling and float32 outputs under a mixed policy: fit's losses."""
    from kpose.tasks import train

    for folder in ("fit", "mw"):
        (tmp_path / folder).mkdir()
    reference = train(load_config(write_config(tmp_path / "fit" / "c.yaml", synth, "default", precision=precision)))
    run_workers(1, write_config(tmp_path / "mw" / "c.yaml", synth, "multi_worker", precision=precision))
    assert logged_losses(tmp_path / "mw" / "run") == pytest.approx(reference.history["loss"], rel=1e-3)


def test_two_workers_train_like_one_machine(tmp_path, synth, one_machine):
    """Two workers, 4 crops each: the chief writes the run, the loss is one machine's."""
    run_workers(2, write_config(tmp_path / "c.yaml", synth, "multi_worker"))
    run = tmp_path / "run"
    model = keras.saving.load_model(run / "best.keras", safe_mode=True)
    assert model(np.zeros((1, 64, 64, 3), "float32"))["heatmaps"].shape == (1, 16, 16, 17)
    assert (run / "last.keras").exists() and not (run / "backup").exists()
    assert (run / "worker-1" / "last.keras").exists()  # the other worker's copy, in its own folder
    # other shards and seeds, BatchNorm statistics of 4 crops: close, not equal
    assert logged_losses(run) == pytest.approx(one_machine.history["loss"], rel=0.05)


def backup_epochs(run_dir: Path) -> list[int]:
    """The epochs of both backup generations of a run directory (none while one is written)."""
    try:
        return [json.loads((run_dir / "backup" / name).read_text())["epoch"]
                for name in ("training_metadata.json", "training_metadata.json.bkp")]
    except (OSError, json.JSONDecodeError, KeyError):
        return []


@pytest.mark.slow  # about a minute on 2 cores: two pairs of workers, four epochs
def test_a_killed_worker_and_its_restarted_pair_resume_from_the_backup(tmp_path, synth):
    """kill -9 one worker in epoch 3 of 4: the launcher stops the other; started again, both
    restore the backup of epoch 2 and finish."""
    config = write_config(tmp_path / "c.yaml", synth, "multi_worker", epochs=4)
    run = tmp_path / "run"
    proc = launch(2, config)
    pids = {}
    while len(pids) < 2:  # "worker I: pid P", printed as each starts
        words = proc.stdout.readline().split()
        if words[:1] == ["worker"] and words[2:3] == ["pid"]:
            pids[int(words[1].rstrip(":"))] = int(words[3])
    deadline = time.time() + TIMEOUT_S
    while time.time() < deadline and proc.poll() is None:
        # both workers' newer generation is epoch 2's, written in full (the older one is copied first)
        if all(backup_epochs(d)[:1] == [2] for d in (run, run / "worker-1")):
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.stdout.read()[-4000:]
    os.kill(pids[1], signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGKILL, out[-4000:]  # the killed worker's code
    assert "stopping the others" in out

    out = run_workers(2, config)
    epoch = int(out.split("restored the backup of epoch ")[1].split(";")[0])
    assert epoch >= 2 and out.count(f"restored the backup of epoch {epoch}") == 2, out[-4000:]
    assert "Epoch 1/4" not in out and "Epoch 4/4" in out
    assert len(logged_losses(run)) == 4 and np.isfinite(logged_losses(run)).all()
    assert (run / "last.keras").exists() and not (run / "backup").exists()
