"""Config paths: relative to the config file, or to its ``root:``, or to ``--root``; the same
for every command; a run's saved config.yaml works from any folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from kpose.cli.main import main
from kpose.data.mpii import write_mpii
from kpose.data.synthetic import write_synthetic_coco
from kpose.engine.config import Config, DataConfig, DatasetConfig, ModelConfig, load_config, write_config
from kpose.errors import ConfigError
from kpose.keypoints import get_schema

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "training" / "configs"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A tiny synthetic COCO-format set: data/annotations/*.json, data/images/{train,val}."""
    root = tmp_path_factory.mktemp("project") / "data"
    write_synthetic_coco(root, 2, seed=0, image_size=(96, 96), split="train")
    write_synthetic_coco(root, 2, seed=0, image_size=(96, 96), split="val")
    return root


def write_yaml(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def config_data(prefix: str = "", val: bool = True) -> dict:
    """A config mapping whose data paths start with ``prefix``."""
    split = lambda name: {  # noqa: E731
        "annotations": f"{prefix}annotations/person_keypoints_{name}.json", "images": f"{prefix}images/{name}"
    }
    data = {"schema": "coco", "train": split("train")}
    if val:
        data["val"] = split("val")
    return {"model": {"name": "srhead_mobilenetv3_small", "input_size": [64, 64]}, "data": data}


def test_paths_are_relative_to_the_config_file_from_any_folder(dataset, tmp_path, monkeypatch):
    path = write_yaml(dataset.parent / "configs" / "c.yaml", config_data("../data/"))
    monkeypatch.chdir(tmp_path)
    config = load_config(os.path.relpath(path, tmp_path))  # a relative config path, another folder
    assert config.data.train.annotations == str(dataset / "annotations/person_keypoints_train.json")
    assert config.data.val.images == str(dataset / "images/val")
    assert config.root == str(path.parent)
    assert config.run_dir == Path("runs/srhead_mobilenetv3_small")  # an output: relative to the working folder


def test_root_key_is_relative_to_the_config_file_and_absolute_root_as_is(dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    relative = write_yaml(dataset.parent / "configs" / "deep" / "r.yaml", {"root": "../../data", **config_data()})
    absolute = write_yaml(tmp_path / "a.yaml", {"root": str(dataset), **config_data()})
    for path in (relative, absolute):
        config = load_config(path)
        assert config.root == str(dataset)
        assert config.data.train.annotations == str(dataset / "annotations/person_keypoints_train.json")


def test_root_override_is_relative_to_the_working_folder(dataset, tmp_path, monkeypatch):
    path = write_yaml(tmp_path / "c.yaml", {"root": "/nowhere", **config_data()})
    monkeypatch.chdir(dataset.parent)
    config = load_config(path, root="data")
    assert config.root == str(dataset) and config.data.val.annotations == str(dataset / "annotations/person_keypoints_val.json")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: data.train.annotations: /nowhere/annotations/person_keypoints_train.json does not exist")
    assert "relative to /nowhere: set the config's root: or pass --root" in message


def test_init_from_weights_and_schema_files_are_relative_to_the_config_file(dataset, tmp_path, monkeypatch):
    folder = tmp_path / "configs"
    (folder / "models").mkdir(parents=True)
    for name in ("start.keras", "backbone.weights.h5"):
        (folder / "models" / name).write_bytes(b"")
    shutil.copy(REPO / "kpose/keypoints/builtin/coco.yaml", folder / "my_schema.yaml")
    data = config_data()
    data["model"].update(init_from="models/start.keras", weights="models/backbone.weights.h5")
    data["data"]["schema"] = "my_schema.yaml"
    path = write_yaml(folder / "c.yaml", {"root": str(dataset), **data})
    monkeypatch.chdir(dataset)
    config = load_config(path)
    assert config.model.init_from == str(folder / "models" / "start.keras")
    assert config.model.weights == str(folder / "models" / "backbone.weights.h5")
    assert get_schema(config.data.schema).num_keypoints == 17
    (folder / "models" / "backbone.weights.h5").unlink()
    with pytest.raises(ConfigError, match=r"c.yaml: model.weights: .*configs/models/backbone.weights.h5 does not exist"):
        load_config(path)
    data["model"]["weights"] = "imagenet"  # a name, not a file
    assert load_config(write_yaml(folder / "c.yaml", {"root": str(dataset), **data})).model.weights == "imagenet"


def test_written_config_loads_the_same_from_any_folder(dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(dataset)
    split = DatasetConfig("annotations/person_keypoints_train.json", "images/train")
    config = Config(ModelConfig("srhead_mobilenetv3_small", (64, 64)), DataConfig(train=split))
    path = write_config(config, tmp_path / "out" / "config.yaml")
    monkeypatch.chdir(tmp_path)
    reloaded = load_config(path)
    assert reloaded.data.train.annotations == str(dataset / "annotations/person_keypoints_train.json")
    assert reloaded.root == str(dataset)


def test_eval_root_needs_config(capsys):
    assert main(["eval", "--model", "m.keras", "--annotations", "a.json", "--images", "i", "--root", "d"]) == 2
    assert "--root goes with --config" in capsys.readouterr().err


def test_mpii_training_without_head_boxes_stops_before_building_a_model(tmp_path, capsys):
    record = {"image": "a.jpg", "center": [20, 20], "scale": 0.2, "joints": [[20, 20]] * 16, "joints_vis": [1] * 16}
    write_mpii([record], tmp_path / "data" / "mpii_val.json")
    (tmp_path / "data" / "images").mkdir()
    split = {"annotations": "mpii_val.json", "images": "images", "format": "mpii"}
    config = {"model": {"name": "simplebaseline_resnet50", "input_size": [64, 64]},
              "data": {"schema": "mpii", "train": split, "val": split}, "root": "data"}
    path = write_yaml(tmp_path / "mpii.yaml", config)
    assert main(["train", "--config", str(path)]) == 2
    assert "mpii_val.json: no record has 'head_box'; PCKh needs head boxes" in capsys.readouterr().err


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.rglob("*.yaml")), ids=lambda p: p.relative_to(CONFIG_DIR).as_posix())
def test_repository_configs_read_the_repository_data_folder(path):
    raw = yaml.safe_load(path.read_text())
    config = load_config(path, check_paths=False)
    assert Path(config.root).parent == REPO / "data" and not Path(raw["root"]).is_absolute()
    for split in (config.data.train, config.data.val):
        assert Path(split.annotations).is_relative_to(config.root) and Path(split.images).is_relative_to(config.root)
    if config.model.init_from is not None:
        assert Path(config.model.init_from).is_relative_to(REPO / "runs")
    if Path(config.root).name in ("coco", "mpii", "crowdpose"):  # the papers' settings
        # HRNet and HRFormer have no Keras ImageNet weights: they start from an imported checkpoint
        own_layout = any(name in config.model.name for name in ("hrnet", "hrformer"))
        backbone_from_imagenet = None if own_layout else "imagenet"
        assert config.model.weights == backbone_from_imagenet


def test_train_with_root_saves_a_config_that_works_from_any_folder(dataset, tmp_path, monkeypatch):
    pytest.importorskip("tensorflow")
    from kpose.export.calibration import calibration_crops, resolve_calibration

    data = config_data(val=False)
    data["train"] = {"epochs": 1, "batch_size": 2, "steps_per_epoch": 1, "optimizer": {"warmup_steps": 0, "milestones": []}}
    data["output_dir"] = "runs/paths"
    path = write_yaml(tmp_path / "configs" / "c.yaml", {"root": "/not/here", **data})
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["train", "--config", str(path), "--root", os.path.relpath(dataset, work)]) == 0
    saved_file = work / "runs" / "paths" / "config.yaml"  # output_dir: relative to the working folder
    saved = yaml.safe_load(saved_file.read_text())
    assert saved["root"] == str(dataset)
    assert saved["data"]["train"]["annotations"] == str(dataset / "annotations/person_keypoints_train.json")
    assert saved["data"]["train"]["images"] == str(dataset / "images/train")

    # `kpose export --calibration RUN/config.yaml` from another folder reads the same crops
    monkeypatch.chdir(tmp_path)
    source = resolve_calibration(os.path.relpath(saved_file, tmp_path))
    crops = next(calibration_crops(source, get_schema("coco"), (64, 64), count=2, batch_size=2))
    assert crops.shape == (2, 64, 64, 3) and crops.dtype == "uint8"
