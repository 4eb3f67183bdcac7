"""Hostile inputs, class by class: each ends in exit code 2, a one-line message naming the
file, the field and the value, and leaves a previous run's good files untouched."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

from kpose.cli.main import main  # noqa: E402
from kpose.data.synthetic import write_synthetic_coco  # noqa: E402
from kpose.engine import callbacks as cb  # noqa: E402

MODEL = "srhead_mobilenetv3_small"
GOOD_FILES = ("best.keras", "last.keras", "log.csv")


def digest(run: Path) -> dict[str, str]:
    """SHA-256 of the run's good files that exist."""
    return {name: hashlib.sha256((run / name).read_bytes()).hexdigest() for name in GOOD_FILES if (run / name).exists()}


def no_scan_data(path: Path) -> None:
    """Cut a JPEG after its headers (no scan data) but keep its end marker: the probe passes,
    the decode inside the pipeline fails."""
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"\xff\xda")] + b"\xff\xd9")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    return {
        "root": root,
        "train": write_synthetic_coco(root, 8, seed=0, image_size=(96, 96), split="train"),
        "val": write_synthetic_coco(root, 4, seed=1, image_size=(96, 96), split="val"),
    }


def config_dict(synth, output_dir: Path, val: bool = False) -> dict:
    data = {
        "schema": "coco",
        "train": {"annotations": str(synth["train"].annotation_file), "images": str(synth["train"].image_dir)},
    }
    if val:
        data["val"] = {"annotations": str(synth["val"].annotation_file), "images": str(synth["val"].image_dir)}
    return {
        "model": {"name": MODEL, "input_size": [64, 64]},
        "data": data,
        "train": {"epochs": 1, "batch_size": 4, "steps_per_epoch": 2, "optimizer": {"warmup_steps": 0, "milestones": []}},
        "eval": {"every": 1, "batch_size": 4},
        "output_dir": str(output_dir),
    }


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def good_run(synth, tmp_path_factory):
    """A finished run: best.keras, last.keras, log.csv, and their hashes."""
    folder = tmp_path_factory.mktemp("good")
    run = folder / "run"
    config = write_yaml(folder / "config.yaml", config_dict(synth, run))
    assert main(["train", "--config", str(config)]) == 0
    return {"run": run, "config": config, "digest": digest(run)}


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """Exit code and stderr of ``kpose ARGV``; the error must be one line."""
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) <= 1 and "Traceback" not in err, err
    return code, errors[0] if errors else ""


@pytest.mark.parametrize(
    "section,key,value,message",
    [
        ("train", "epochs", 0, "train.epochs: must be >= 1, got 0"),
        ("train", "steps_per_epoch", -2, "train.steps_per_epoch: must be >= 1, got -2"),
        ("train", "sigma", 0, "train.sigma: must be > 0, got 0.0"),
        ("eval", "every", 0, "eval.every: must be >= 1, got 0"),
        ("optimizer", "learning_rate", float("nan"), "train.optimizer.learning_rate: expected a finite number, got nan"),
        ("optimizer", "learning_rate", -1, "train.optimizer.learning_rate: must be > 0, got -1"),
        ("model", "input_size", [8, 64], "model.input_size[0]: must be >= 32, got 8"),
    ],
)
def test_config_out_of_range(tmp_path, synth, good_run, capsys, section, key, value, message):
    data = config_dict(synth, good_run["run"])
    target = data["train"]["optimizer"] if section == "optimizer" else data[section]
    target[key] = value
    config = write_yaml(tmp_path / "bad.yaml", data)
    code, error = run_cli(["train", "--config", str(config)], capsys)
    assert code == 2
    assert error.startswith(f"kpose train: error: {config}: {message}")
    assert digest(good_run["run"]) == good_run["digest"]


def test_finished_run_is_not_trained_again(good_run, capsys):
    code, error = run_cli(["train", "--config", str(good_run["config"])], capsys)
    assert code == 2
    assert f"output_dir: {good_run['run']} holds a finished run" in error and "--overwrite" in error
    assert digest(good_run["run"]) == good_run["digest"]


def test_output_dir_that_is_a_file(tmp_path, synth, capsys):
    target = tmp_path / "taken"
    target.write_text("not a folder")
    config = write_yaml(tmp_path / "c.yaml", config_dict(synth, target))
    code, error = run_cli(["train", "--config", str(config)], capsys)
    assert code == 2 and f"output_dir: {target} is a file, not a folder" in error
    assert target.read_text() == "not a folder"


def _visibility_3(data: dict) -> None:
    data["annotations"][0]["keypoints"][2] = 3


def _string_coordinate(data: dict) -> None:
    data["annotations"][0]["keypoints"][0] = "12"


def _huge_coordinate(data: dict) -> None:
    data["annotations"][0]["keypoints"][0] = 1e30


def _negative_area(data: dict) -> None:
    data["annotations"][0]["area"] = -5


def _no_annotations(data: dict) -> None:
    data["annotations"] = []


def train_on_edited_annotations(tmp_path, synth, edit, capsys) -> tuple[int, str, Path]:
    """``kpose train`` on the synthetic train set's annotations after ``edit(data)``:
    (exit code, stderr, the edited annotation file)."""
    data = json.loads(Path(synth["train"].annotation_file).read_text())
    edit(data)
    annotations = tmp_path / "bad.json"
    annotations.write_text(json.dumps(data))
    config_data = config_dict(synth, tmp_path / "run")
    config_data["data"]["train"]["annotations"] = str(annotations)
    config = write_yaml(tmp_path / "c.yaml", config_data)
    code, error = run_cli(["train", "--config", str(config)], capsys)
    return code, error, annotations


@pytest.mark.parametrize(
    "mutate,message",
    [
        (_visibility_3, "field 'annotations[0].keypoints' visibility of keypoint 0 (nose) must be 0, 1 or 2, got 3"),
        (_string_coordinate, "field 'annotations[0].keypoints' must hold only finite numbers within +-1e+06, got '12' at [0]"),
        (_huge_coordinate, "field 'annotations[0].keypoints' must hold only finite numbers within +-1e+06, got 1e+30 at [0]"),
        (_negative_area, "field 'annotations[0].area' must be >= 0, got -5"),
        (_no_annotations, "field 'annotations' is empty: no person to read"),
    ],
)
def test_bad_annotation_values(tmp_path, synth, good_run, capsys, mutate, message):
    code, error, annotations = train_on_edited_annotations(tmp_path, synth, mutate, capsys)
    assert code == 2 and f"{annotations}: {message}" in error
    assert not (tmp_path / "run" / "best.keras").exists()


def test_declared_image_size_that_disagrees_is_named(tmp_path, synth, capsys, caplog):
    def declare_1x1(data: dict) -> None:
        for image in data["images"]:
            image.update(width=1, height=1)

    code, error, annotations = train_on_edited_annotations(tmp_path, synth, declare_1x1, capsys)
    assert code == 2 and f"{annotations}: 1 usable samples, fewer than one batch of 4" in error
    assert f"{annotations}: 22 person boxes lie outside their image's declared width/height" in caplog.text
    assert "('000000000001.jpg', declared 1x1): check images[].width/height" in caplog.text


@pytest.fixture(scope="module")
def undecodable(synth, tmp_path_factory):
    """A copy of the training set whose JPEGs all lack scan data."""
    root = tmp_path_factory.mktemp("undecodable")
    images = root / "images"
    shutil.copytree(synth["train"].image_dir, images)
    for path in images.iterdir():
        no_scan_data(path)
    return {"annotations": synth["train"].annotation_file, "images": images}


def test_training_on_undecodable_images_fails_and_keeps_best(tmp_path, synth, good_run, undecodable, capsys):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(good_run["run"] / "best.keras", run / "best.keras")  # a previous best of this run
    data = config_dict(synth, run)
    data["data"]["train"] = {"annotations": str(undecodable["annotations"]), "images": str(undecodable["images"])}
    config = write_yaml(tmp_path / "c.yaml", data)
    code, error = run_cli(["train", "--config", str(config)], capsys)
    assert code == 2
    assert "epoch 1: " in error and "images failed to decode" in error and str(undecodable["images"]) in error
    assert digest(run)["best.keras"] == good_run["digest"]["best.keras"] and not (run / "last.keras").exists()


def test_nan_loss_fails_and_keeps_best(tmp_path, synth, good_run, capsys):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(good_run["run"] / "best.keras", run / "best.keras")
    data = config_dict(synth, run, val=True)
    data["train"]["optimizer"]["learning_rate"] = 1e30
    config = write_yaml(tmp_path / "c.yaml", data)
    code, error = run_cli(["train", "--config", str(config)], capsys)
    assert code == 2 and "training diverged: the loss is not finite at epoch 1" in error
    assert digest(run)["best.keras"] == good_run["digest"]["best.keras"] and not (run / "last.keras").exists()


def calibration_folder(tmp_path: Path, annotations: Path, images: Path) -> Path:
    """A dataset folder for ``--calibration``: a copy of ``annotations`` and ``images`` in the
    COCO layout."""
    dataset = tmp_path / "calib"
    (dataset / "annotations").mkdir(parents=True)
    shutil.copy(annotations, dataset / "annotations" / "person_keypoints_train.json")
    shutil.copytree(images, dataset / "images" / "train")
    return dataset


def test_int8_export_without_decodable_crops_fails_and_keeps_file(tmp_path, good_run, undecodable, capsys):
    dataset = calibration_folder(tmp_path, undecodable["annotations"], undecodable["images"])
    output = tmp_path / "pose_int8.tflite"
    output.write_bytes(b"a previous export")
    argv = ["export", str(good_run["run"] / "best.keras"), "--quantize", "int8", "--calibration", str(dataset), "-o", str(output)]
    code, error = run_cli(argv, capsys)
    assert code == 2
    assert f"--calibration {dataset / 'annotations' / 'person_keypoints_train.json'}: 0 crops decoded" in error
    assert output.read_bytes() == b"a previous export"
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_int8_export_on_fewer_crops_than_asked_warns_with_both_numbers(tmp_path, synth, good_run, capsys, caplog):
    dataset = calibration_folder(tmp_path, synth["train"].annotation_file, synth["train"].image_dir)
    broken = dataset / "images" / "train" / "000000000001.jpg"
    no_scan_data(broken)
    output = tmp_path / "pose_int8.tflite"
    argv = ["export", str(good_run["run"] / "best.keras"), "--quantize", "int8", "--calibration", str(dataset),
            "--calibration-size", "100", "-o", str(output)]
    code, error = run_cli(argv, capsys)
    assert code == 0 and error == ""
    annotations = dataset / "annotations" / "person_keypoints_train.json"
    assert (
        f"--calibration {annotations}: calibrating on 20 crops, 100 were asked; 4 of 24 decodes failed ({broken})"
    ) in caplog.text
    assert output.stat().st_size > 0


def test_export_to_a_folder(tmp_path, good_run, capsys):
    code, error = run_cli(["export", str(good_run["run"] / "best.keras"), "-o", str(tmp_path)], capsys)
    assert code == 2 and f"-o {tmp_path}: is a folder" in error


@pytest.fixture
def lambda_model(tmp_path) -> Path:
    """A ``.keras`` file with a ``Lambda`` layer, which Keras refuses in safe mode."""
    inputs = keras.Input((64, 64, 3))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2.0)(inputs))
    path = tmp_path / "lambda.keras"
    model.save(path)
    return path


def test_lambda_model_is_refused_in_one_line(synth, lambda_model, capsys):
    argv = ["eval", "--model", str(lambda_model), "--annotations", str(synth["val"].annotation_file),
            "--images", str(synth["val"].image_dir)]
    code, error = run_cli(argv, capsys)
    assert code == 2 and f"kpose eval: error: {lambda_model}: not a kpose model Keras can load in safe mode" in error
    assert "Lambda" in error


def test_lambda_model_as_init_from_is_refused_and_keeps_best(tmp_path, synth, good_run, lambda_model, capsys):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(good_run["run"] / "best.keras", run / "best.keras")
    data = config_dict(synth, run)
    data["model"]["init_from"] = str(lambda_model)
    config = write_yaml(tmp_path / "c.yaml", data)
    code, error = run_cli(["train", "--config", str(config)], capsys)
    assert code == 2
    assert f"kpose train: error: {lambda_model}: not a kpose model Keras can load in safe mode" in error
    assert "Lambda" in error
    assert digest(run) == {"best.keras": good_run["digest"]["best.keras"]}


def test_debug_shows_the_traceback(tmp_path, synth, capsys):
    data = config_dict(synth, tmp_path / "run")
    data["train"]["epochs"] = 0
    config = write_yaml(tmp_path / "c.yaml", data)
    capsys.readouterr()
    assert main(["--debug", "train", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "ConfigError" in err and "train.epochs: must be >= 1, got 0" in err


def test_resume_after_a_truncated_backup_names_the_epoch_restored(tmp_path):
    """The newer generation's weights are cut short: Keras restores the older one, and so do
    the log's epoch and the CSV log (no row twice)."""
    run = tmp_path / "run"
    backup = run / cb.BACKUP_DIR
    backup.mkdir(parents=True)
    (backup / cb.WEIGHTS).write_bytes(b"\x89HDF\r\n\x1a\n truncated")
    (backup / f"{cb.WEIGHTS}.bkp").write_bytes(b"")
    (backup / "training_metadata.json").write_text('{"epoch": 3, "batch": 0}')
    (backup / "training_metadata.json.bkp").write_text('{"epoch": 2, "batch": 0}')
    assert cb.resumed_epoch(run) == 2
    log = run / cb.LOG_FILE
    log.write_text("epoch,loss\n0,1.0\n1,0.9\n2,0.8\n")
    cb.trim_log(log, cb.resumed_epoch(run))
    assert log.read_text().splitlines() == ["epoch,loss", "0,1.0", "1,0.9"]
    cb.trim_log(log, 0)  # a fresh run starts a fresh log
    assert not log.exists()


def test_overwrite_trains_a_finished_run_again(tmp_path, synth, good_run, capsys):
    run = tmp_path / "run"
    shutil.copytree(good_run["run"], run)
    data = config_dict(synth, run)
    config = write_yaml(tmp_path / "c.yaml", data)
    assert main(["train", "--config", str(config), "--overwrite"]) == 0
    rows = (run / cb.LOG_FILE).read_text().splitlines()
    assert len(rows) == 2  # the header and this run's one epoch: the old log was cleared


def test_onnx_without_the_keypoints_output_is_refused(tmp_path, synth, good_run, capsys):
    """The file's kpose metadata lists ``keypoints``, its graph no longer has that output."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from kpose.tasks import export_model
    from kpose.metadata import read_metadata

    path = export_model(good_run["run"] / "best.keras", tmp_path / "pose.onnx", format="onnx")
    proto = onnx.load(str(path))
    kept = [output for output in proto.graph.output if output.name != "keypoints"]
    assert len(kept) < len(proto.graph.output)
    del proto.graph.output[:]
    proto.graph.output.extend(kept)
    onnx.save(proto, str(path))
    argv = ["eval", "--model", str(path), "--annotations", str(synth["val"].annotation_file),
            "--images", str(synth["val"].image_dir)]
    code, error = run_cli(argv, capsys)
    listed = list(read_metadata(path).outputs)
    assert code == 2 and error == (
        f"kpose eval: error: {path}: its kpose metadata lists the outputs {listed} but the model has no "
        f"'keypoints' output (it has {sorted(output.name for output in kept)}); export it with kpose export"
    )


def test_eval_of_a_model_with_nan_weights_fails(tmp_path, synth, good_run, capsys):
    model = keras.saving.load_model(good_run["run"] / "best.keras", compile=False)
    kernel = next(weight for weight in reversed(model.weights) if "kernel" in weight.path)
    kernel.assign(keras.ops.full(kernel.shape, float("nan")))
    path = tmp_path / "nan.keras"
    model.save(path)
    annotations = synth["val"].annotation_file
    argv = ["eval", "--model", str(path), "--annotations", str(annotations), "--images", str(synth["val"].image_dir)]
    code, error = run_cli(argv, capsys)
    assert code == 2 and error == (
        f"kpose eval: error: {path}: AP is NaN on {annotations}: the model's keypoints are not finite "
        "(NaN weights or outputs); nothing scored"
    )
