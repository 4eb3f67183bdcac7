"""``kpose data prepare``: layout checks, the official MPII file converted, MMPose's val set
completed with head boxes, PCKh on the result, and configs written for a prepared folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from scipy.io import savemat

from kpose.cli.main import main
from kpose.data.mpii import read_mpii, write_mpii
from kpose.prepare import prepare_dataset
from kpose.prepare.config_file import write_dataset_config
from kpose.data.synthetic import write_synthetic_coco
from kpose.engine.config import load_config
from kpose.errors import AnnotationError, ConfigError
from kpose.evaluation import pckh

REPO = Path(__file__).resolve().parents[1]
COCO_CONFIG = REPO / "training/configs/coco/srpose_resnet50_256x192.yaml"
MPII_CONFIG = REPO / "training/configs/mpii/srpose_resnet50_256x256.yaml"
CROWDPOSE_CONFIG = REPO / "training/configs/crowdpose/srpose_hrnet_w32_256x192.yaml"
COCO_DETECTIONS = "person_detection_results/COCO_val2017_detections_AP_H_56_person.json"


# --- COCO -----------------------------------------------------------------------------------


def write_coco_root(root: Path, images: int = 3) -> Path:
    """A COCO-layout folder from kpose's synthetic generator (17 keypoints, real JPEGs)."""
    for split in ("train2017", "val2017"):
        synthetic = write_synthetic_coco(root / "synth", images, "coco", seed=1, image_size=(120, 160), split=split)
        synthetic.image_dir.rename(root / split)
        (root / "annotations").mkdir(exist_ok=True)
        synthetic.annotation_file.rename(root / "annotations" / synthetic.annotation_file.name)
        if split == "val2017":
            (root / COCO_DETECTIONS).parent.mkdir()
            synthetic.detection_file.rename(root / COCO_DETECTIONS)
    shutil.rmtree(root / "synth")
    return root


def test_coco_names_every_missing_item_and_where_it_comes_from(tmp_path):
    with pytest.raises(ConfigError) as info:
        prepare_dataset("coco", tmp_path, log=lambda _: None)
    message = str(info.value)
    for item in ("train2017/", "val2017/", "annotations/person_keypoints_train2017.json",
                 "annotations/person_keypoints_val2017.json", "annotations_trainval2017.zip",
                 "https://cocodataset.org/#download", str(tmp_path)):
        assert item in message

    root = write_coco_root(tmp_path / "coco")
    shutil.rmtree(root / "val2017")
    with pytest.raises(ConfigError) as info:
        prepare_dataset("coco", root, log=lambda _: None)
    assert "val2017/  <- val2017.zip" in str(info.value) and "train2017/" not in str(info.value)


def test_coco_ready_then_the_repository_configs_load_with_root(tmp_path, capsys):
    root = write_coco_root(tmp_path / "coco")
    prepared = prepare_dataset("coco", root, log=lambda _: None)
    assert prepared.standard and prepared.splits["val"].boxes == COCO_DETECTIONS
    assert prepared.splits["train"].images_found == 3 and prepared.splits["train"].persons > 0

    # the printed command is the one to run: the paper config with --root
    assert main(["data", "prepare", "coco", "--root", str(root)]) == 0
    command = capsys.readouterr().out.splitlines()[-1].split()
    assert command[:3] == ["kpose", "train", "--config"] and command[-2:] == ["--root", str(root)]
    config = load_config(REPO / command[3], root=command[-1])  # every path checked
    assert config.data.val.boxes == str(root / COCO_DETECTIONS)


def test_coco_missing_images_and_bad_fields_are_named(tmp_path):
    root = write_coco_root(tmp_path / "coco")
    (root / "train2017" / "000000000002.jpg").unlink()
    with pytest.raises(ConfigError, match=r"train2017: 1 of the 3 images that person_keypoints_train2017.json "
                                          r"names are missing \(e.g. 000000000002.jpg\); unpack train2017.zip"):
        prepare_dataset("coco", root, log=lambda _: None)

    root = write_coco_root(tmp_path / "coco2")
    ann = root / "annotations/person_keypoints_val2017.json"
    data = json.loads(ann.read_text())
    data["annotations"][0]["keypoints"] = data["annotations"][0]["keypoints"][:-3]
    ann.write_text(json.dumps(data))
    with pytest.raises(AnnotationError, match=r"person_keypoints_val2017.json: field 'annotations\[0\].keypoints'"):
        prepare_dataset("coco", root, log=lambda _: None)


def test_config_written_for_a_prepared_folder(tmp_path, capsys, monkeypatch):
    root = write_coco_root(tmp_path / "coco")
    out = tmp_path / "configs" / "mine.yaml"
    assert main(["data", "prepare", "coco", "--root", str(root), "--config", str(COCO_CONFIG), "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip().endswith(f"kpose train --config {out}")
    monkeypatch.chdir(tmp_path)  # the copy loads from anywhere
    written, paper = load_config(out), load_config(COCO_CONFIG, check_paths=False)
    assert written.root == str(root) and written.data.train.images == str(root / "train2017")
    assert written.data.val.boxes == str(root / COCO_DETECTIONS)
    assert (written.model, written.train, written.eval) == (paper.model, paper.train, paper.eval)
    assert out.read_text().startswith(COCO_CONFIG.read_text().splitlines()[0])  # the header comment kept

    (root / COCO_DETECTIONS).unlink()  # without detections val falls back to ground-truth boxes
    prepared = prepare_dataset("coco", root, log=lambda _: None)
    assert not prepared.standard and "ground-truth boxes" in prepared.notes[0]
    notes = write_dataset_config(prepared, COCO_CONFIG, out)
    assert notes == ["data.val.boxes dropped: coco has no detections here, so val is scored on ground-truth boxes"]
    assert load_config(out).data.val.boxes is None

    with pytest.raises(ConfigError, match=r"data.schema is 'mpii', but coco has 'coco' keypoints"):
        write_dataset_config(prepared, MPII_CONFIG, out)
    assert load_config(out).data.val.boxes is None  # a refused copy leaves the written one as it was


def test_config_copy_keeps_paths_relative_to_the_original(tmp_path):
    """``model.init_from`` of the original is relative to its folder: the copy, in another
    folder, still finds the same file."""
    root = write_coco_root(tmp_path / "coco")
    original = tmp_path / "paper" / "c.yaml"
    original.parent.mkdir()
    (original.parent / "start.keras").write_bytes(b"")
    config = yaml.safe_load(COCO_CONFIG.read_text())
    config["model"]["init_from"] = "start.keras"
    original.write_text(yaml.safe_dump(config))
    out = tmp_path / "elsewhere" / "mine.yaml"
    write_dataset_config(prepare_dataset("coco", root, log=lambda _: None), original, out)
    assert load_config(out).model.init_from == str(original.parent / "start.keras")


def test_crowdpose_official_layout_needs_a_written_config(tmp_path, capsys):
    root = tmp_path / "crowdpose"
    for split in ("trainval", "test"):
        synthetic = write_synthetic_coco(root, 2, "crowdpose", seed=2, image_size=(120, 160), split=split)
        (root / "json").mkdir(exist_ok=True)
        synthetic.annotation_file.rename(root / "json" / f"crowdpose_{split}.json")
        for image in synthetic.image_dir.iterdir():  # one images/ folder, as images.zip unpacks
            image.rename(root / "images" / f"{split}_{image.name}")
        shutil.rmtree(synthetic.image_dir)
    for split in ("trainval", "test"):  # the file names the images under their new names
        ann = root / "json" / f"crowdpose_{split}.json"
        data = json.loads(ann.read_text())
        for image in data["images"]:
            image["file_name"] = f"{split}_{image['file_name']}"
        ann.write_text(json.dumps(data))

    assert main(["data", "prepare", "crowdpose", "--root", str(root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].strip().endswith(f"--config {CROWDPOSE_CONFIG.relative_to(REPO)} -o crowdpose.yaml")
    out = tmp_path / "crowdpose.yaml"
    assert main(["data", "prepare", "crowdpose", "--root", str(root), "--config", str(CROWDPOSE_CONFIG), "-o", str(out)]) == 0
    config = load_config(out)
    assert config.data.train.annotations == str(root / "json/crowdpose_trainval.json")
    assert config.data.val.annotations == str(root / "json/crowdpose_test.json") and config.data.val.boxes is None

    (root / "json/crowdpose_test.json").unlink()
    with pytest.raises(ConfigError, match=r"no CrowdPose annotations; one of these pairs is needed:\n"
                                          r"  annotations/mmpose_crowdpose_trainval.json and"):
        prepare_dataset("crowdpose", root, log=lambda _: None)


# --- MPII -----------------------------------------------------------------------------------

MISSING = np.zeros((0, 0))  # MATLAB's []


def struct_array(records: list[dict], fields: list[str]) -> np.ndarray:
    """A 1xN MATLAB struct array for savemat; a field a record lacks is []."""
    array = np.zeros((1, len(records)), dtype=[(f, object) for f in fields])
    for j, record in enumerate(records):
        for f in fields:
            array[0, j][f] = record.get(f, MISSING)
    return array


def person(rng: np.random.Generator, image_size: tuple[int, int]) -> dict:
    """One annotated person of the official file: head box, centre, scale and 14 of 16 joints."""
    height, width = image_size
    x, y = rng.uniform(60, width - 60), rng.uniform(60, height - 60)
    ids = sorted(rng.choice(16, size=14, replace=False))
    points = [{"id": int(i), "x": float(x + rng.uniform(-50, 50)), "y": float(y + rng.uniform(-50, 50)),
               "is_visible": 1} for i in ids]
    return {
        "x1": x - 10.0, "y1": y - 60.0, "x2": x + 12.0, "y2": y - 35.0,
        "annopoints": {"point": struct_array(points, ["id", "x", "y", "is_visible"])},
        "scale": float(rng.uniform(0.5, 1.5)),
        "objpos": {"x": x, "y": y},
    }


RECT_FIELDS = ["x1", "y1", "x2", "y2", "annopoints", "scale", "objpos"]


def write_official_mpii(root: Path, seed: int = 0, bad_joint_id: int | None = None) -> dict:
    """An MPII folder with the official annotation file (the RELEASE struct) and real JPEGs.

    Six images: five training images (two people each; the first of image 3 has no joints)
    from videos 5, 5, 6, 6 and none, and one test image. ``bad_joint_id`` replaces the id of
    image 1's first person's third point. Returns {image name: [head box of each single
    person with joints]}.
    """
    rng = np.random.default_rng(seed)
    size = (240, 320)
    (root / "images").mkdir(parents=True)
    annolist, single, train_flags, heads = [], np.empty((6, 1), dtype=object), [], {}
    for i in range(6):
        name = f"{100000 + i:09d}.jpg"
        cv2.imwrite(str(root / "images" / name), rng.integers(0, 255, (*size, 3), dtype=np.uint8))
        is_train = i < 5
        if is_train:
            people = [person(rng, size), person(rng, size)]
            if i == 3:
                people[0]["annopoints"] = MISSING
            if i == 1 and bad_joint_id is not None:
                people[0]["annopoints"]["point"][0, 2]["id"] = bad_joint_id
            heads[name] = [[p["x1"], p["y1"], p["x2"], p["y2"]] for p in people if not isinstance(p["annopoints"], np.ndarray)]
        else:  # a test image: centre and scale only
            people = [{"scale": 1.0, "objpos": {"x": 100.0, "y": 100.0}}]
        video = {0: 5, 1: 5, 2: 6, 3: 6}.get(i, MISSING)
        annolist.append({"image": {"name": name}, "annorect": struct_array(people, RECT_FIELDS), "vididx": video})
        single[i, 0] = np.array([[1], [2]], np.uint8) if is_train else np.array([[1]], np.uint8)
        train_flags.append(int(is_train))
    release = {
        "annolist": struct_array(annolist, ["image", "annorect", "frame_sec", "vididx"]),
        "img_train": np.array([train_flags], np.uint8),
        "single_person": single,
        "version": "12",
    }
    folder = root / "mpii_human_pose_v1_u12_2"  # where mpii_human_pose_v1_u12_2.zip unpacks
    folder.mkdir()
    savemat(folder / "mpii_human_pose_v1_u12_1.mat", {"RELEASE": release})
    return heads


def perfect_pckh(val_file: Path, image_dir: Path) -> float:
    """PCKh@0.5 Mean of predictions equal to the ground truth, by kpose's MPII evaluator."""
    samples = read_mpii(val_file, image_dir)
    result = pckh(samples.keypoints, samples.keypoints, samples.visibility, samples.head_boxes, source=samples.source)
    return result.groups["Mean"]


def test_mpii_official_file_becomes_train_and_val_with_head_boxes(tmp_path, capsys):
    root = tmp_path / "mpii"
    heads = write_official_mpii(root)
    assert main(["data", "prepare", "mpii", "--root", str(root), "--val-every", "2"]) == 0
    out = capsys.readouterr().out
    assert "skipped: 1 no joints" in out
    assert f"kpose train --config {MPII_CONFIG.relative_to(REPO)} --root {root}" in out

    train = json.loads((root / "annotations/mpii_train.json").read_text())
    val = json.loads((root / "annotations/mpii_val.json").read_text())
    # videos 5, 6 and image 4's own, in that order: every 2nd to val, the first included; test image skipped
    assert sorted({r["image"] for r in val}) == ["000100000.jpg", "000100001.jpg", "000100004.jpg"]
    assert sorted({r["image"] for r in train}) == ["000100002.jpg", "000100003.jpg"]
    assert len(val) == 6 and len(train) == 3
    for record in train + val:
        assert record["head_box"] in heads[record["image"]]
        assert sum(record["joints_vis"]) == 14
    assert perfect_pckh(root / "annotations/mpii_val.json", root / "images") == pytest.approx(100.0)
    load_config(MPII_CONFIG, root=root)  # the repository's MPII configs find every file


def without_head_boxes(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "head_box"} for r in records]


def prepared_official_mpii(root: Path) -> list[dict]:
    """The official-format MPII set written to ``root`` and prepared; its val records."""
    write_official_mpii(root)
    prepare_dataset("mpii", root, log=lambda _: None, mpii_val_every=2)
    return json.loads((root / "annotations/mpii_val.json").read_text())


def test_pckh_without_head_boxes_fails_naming_the_field(tmp_path):
    root = tmp_path / "mpii"
    val = prepared_official_mpii(root)
    bare = tmp_path / "mpii_val.json"
    write_mpii(without_head_boxes(val), bare)
    with pytest.raises(AnnotationError, match=r"mpii_val.json: no record has 'head_box'; PCKh needs head boxes: "
                                              r"run `kpose data prepare mpii --root DIR`"):
        perfect_pckh(bare, root / "images")
    write_mpii([val[0]] + without_head_boxes(val[1:]), bare)
    with pytest.raises(AnnotationError, match=r"5 of 6 people have no 'head_box' \(the first is person 1\)"):
        perfect_pckh(bare, root / "images")


def test_mmpose_val_set_gets_head_boxes_from_mpii_gt_val(tmp_path):
    """MMPose's files: mpii_val.json without head boxes, mpii_gt_val.mat with them (same order)."""
    official = tmp_path / "official"
    val = prepared_official_mpii(official)
    root = tmp_path / "mmpose"
    shutil.copytree(official / "images", root / "images")
    write_mpii(without_head_boxes(json.loads((official / "annotations/mpii_train.json").read_text())), root / "annotations/mpii_train.json")
    write_mpii(without_head_boxes(val), root / "annotations/mpii_val.json")

    def write_gt(records):
        boxes = np.array([r["head_box"] for r in records])  # (N, 4)
        savemat(root / "annotations/mpii_gt_val.mat", {
            "headboxes_src": boxes.reshape(-1, 2, 2).transpose(1, 2, 0),  # (2, 2, N)
            "pos_gt_src": np.array([r["joints"] for r in records]).transpose(1, 2, 0),  # (16, 2, N)
            "jnt_missing": 1 - np.array([r["joints_vis"] for r in records]).T,  # (16, N)
        })

    write_gt(val[::-1])  # another order: refused, naming the record
    with pytest.raises(AnnotationError, match=r"mpii_val.json: field '\[0\].joints' is .* px from person 1 of .*"
                                              r"mpii_gt_val.mat \(pos_gt_src\): the files do not list the same people"):
        prepare_dataset("mpii", root, log=lambda _: None)
    write_gt(val[:-1])
    with pytest.raises(AnnotationError, match=r"has 6 records but .*mpii_gt_val.mat has 5 people"):
        prepare_dataset("mpii", root, log=lambda _: None)

    write_gt(val)
    prepared = prepare_dataset("mpii", root, log=lambda _: None)
    assert prepared.notes == ["val: MMPose's 6 people, head boxes from annotations/mpii_gt_val.mat"]
    completed = json.loads((root / "annotations/mpii_val.json").read_text())
    np.testing.assert_allclose([r["head_box"] for r in completed], [r["head_box"] for r in val])
    assert perfect_pckh(root / "annotations/mpii_val.json", root / "images") == pytest.approx(100.0)


def test_mpii_says_which_annotations_it_needs(tmp_path):
    root = tmp_path / "mpii"
    (root / "images").mkdir(parents=True)
    with pytest.raises(ConfigError) as info:
        prepare_dataset("mpii", root, log=lambda _: None)
    message = str(info.value)
    assert "no MPII annotations" in message and "mpii_human_pose_v1_u12_2.zip" in message
    assert "annotations/mpii_gt_val.mat" in message and "mpii-human-pose-dataset/download" in message

    # MMPose's JSON files without their .mat are not overwritten by the official file
    write_official_mpii(tmp_path / "other")
    shutil.move(tmp_path / "other" / "mpii_human_pose_v1_u12_2", root)
    write_mpii([{"image": "a.jpg", "center": [5, 5], "scale": 1.0, "joints": [[1, 1]] * 16, "joints_vis": [1] * 16}],
               root / "annotations/mpii_val.json")
    with pytest.raises(ConfigError, match=r"mpii_val.json exists without head boxes \(MMPose's\?\).*mpii_gt_val.mat"):
        prepare_dataset("mpii", root, log=lambda _: None)


def test_malformed_official_file_names_the_matlab_field(tmp_path):
    root = tmp_path / "mpii"
    write_official_mpii(root, bad_joint_id=16)
    with pytest.raises(AnnotationError, match=r"field 'RELEASE.annolist\(2\).annorect\(1\).annopoints.point\(3\).id' "
                                              r"must be a joint id 0-15, got 16"):
        prepare_dataset("mpii", root, log=lambda _: None)


def test_prepare_arguments_are_checked(tmp_path, capsys):
    assert main(["data", "prepare", "coco", "--root", str(tmp_path), "--config", str(COCO_CONFIG)]) == 2
    assert "--config and -o go together" in capsys.readouterr().err
    assert main(["data", "prepare", "mpii", "--root", str(tmp_path), "--val-every", "1"]) == 2
    assert "--val-every must be >= 2, got 1" in capsys.readouterr().err
