"""The synthetic dataset: COCO-format files whose labels can be checked on the pixels."""

import json

import cv2
import numpy as np
import pytest

from kpose.data.figures import body_point_names
from kpose.data.synthetic import joint_colors, write_synthetic_coco
from kpose.keypoints import get_schema, schema_from_dict


@pytest.fixture(scope="module")
def coco_set(tmp_path_factory):
    return write_synthetic_coco(tmp_path_factory.mktemp("coco"), 8, "coco", seed=0)


def _load(synthetic):
    return json.loads(synthetic.annotation_file.read_text()), json.loads(synthetic.detection_file.read_text())


def test_files_are_coco_format(coco_set):
    data, detections = _load(coco_set)
    schema = get_schema("coco")
    assert len(data["images"]) == 8
    for image in data["images"]:
        assert (image["height"], image["width"]) == (480, 640)
        assert cv2.imread(str(coco_set.image_dir / image["file_name"])).shape == (480, 640, 3)
    (category,) = data["categories"]
    assert category["id"] == 1 and category["keypoints"] == list(schema.keypoints)
    assert category["skeleton"] == [[a + 1, b + 1] for a, b in schema.skeleton]
    assert len(data["annotations"]) >= 8
    assert len({a["id"] for a in data["annotations"]}) == len(data["annotations"])
    for ann in data["annotations"]:
        kps = np.array(ann["keypoints"]).reshape(schema.num_keypoints, 3)
        assert set(kps[:, 2]) <= {0, 1, 2}
        assert (kps[kps[:, 2] == 0, :2] == 0).all()
        assert ann["num_keypoints"] == int((kps[:, 2] > 0).sum())
        assert ann["iscrowd"] == 0 and ann["category_id"] == 1 and ann["area"] > 0
        x, y, w, h = ann["bbox"]
        assert -0.5 <= x and -0.5 <= y and x + w <= 639.5 and y + h <= 479.5 and w > 0 and h > 0
    ids = {image["id"] for image in data["images"]}
    assert len(detections) >= len(data["annotations"])
    for det in detections:
        assert det["image_id"] in ids and det["category_id"] == 1 and 0 < det["score"] <= 1
        assert len(det["bbox"]) == 4 and min(det["bbox"][2:]) > 0


def test_visibility_is_honest(coco_set):
    """v=2: the joint's disc is at the keypoint; v=1: inside but not; v=0: outside."""
    data, _ = _load(coco_set)
    palette = joint_colors(17).astype(float)
    images = {im["id"]: cv2.imread(str(coco_set.image_dir / im["file_name"])).astype(float) for im in data["images"]}
    counts = np.zeros(3, int)
    for ann in data["annotations"]:
        image = images[ann["image_id"]]
        for j, (x, y, v) in enumerate(np.array(ann["keypoints"]).reshape(-1, 3)):
            counts[int(v)] += 1
            if v == 0:
                continue
            assert 0 <= round(x) < 640 and 0 <= round(y) < 480
            distance = np.linalg.norm(palette - image[round(y), round(x)], axis=1)
            if v == 2:
                assert distance.argmin() == j and distance[j] < 50, (ann["id"], j, distance[j])
    assert counts[2] > counts[1] > 0 and counts[0] > 0  # visible, occluded and truncated all occur


def test_same_seed_same_files_other_seed_or_split_other_files(coco_set, tmp_path):
    again = write_synthetic_coco(tmp_path / "again", 8, "coco", seed=0)
    assert again.annotation_file.read_text() == coco_set.annotation_file.read_text()
    name = "000000000003.jpg"
    assert (again.image_dir / name).read_bytes() == (coco_set.image_dir / name).read_bytes()
    other = write_synthetic_coco(tmp_path / "other", 2, "coco", seed=1)
    val = write_synthetic_coco(tmp_path / "val", 2, "coco", seed=0, split="val")
    for result in (other, val):
        assert (result.image_dir / "000000000001.jpg").read_bytes() != (coco_set.image_dir / "000000000001.jpg").read_bytes()
    assert val.annotation_file.name == "person_keypoints_val.json"


@pytest.mark.parametrize("name", ["coco", "mpii", "crowdpose"])
def test_builtin_schemas_are_drawn_as_bodies(name, tmp_path):
    schema = get_schema(name)
    assert body_point_names(schema) is not None
    result = write_synthetic_coco(tmp_path, 2, name, seed=0, image_size=(240, 320))
    data, _ = _load(result)
    assert all(len(a["keypoints"]) == 3 * schema.num_keypoints for a in data["annotations"])
    assert cv2.imread(str(result.image_dir / "000000000001.jpg")).shape == (240, 320, 3)


def test_custom_schema_gets_a_graph_figure(tmp_path):
    schema = schema_from_dict({
        "name": "gripper",
        "keypoints": ["base", "joint", "left_tip", "right_tip", "tool"],
        "flip_pairs": [[2, 3]],
        "skeleton": [[0, 1], [1, 2], [1, 3], [1, 4]],
    })
    assert body_point_names(schema) is None
    result = write_synthetic_coco(tmp_path, 4, schema, seed=0)
    data, _ = _load(result)
    palette = joint_colors(5).astype(float)
    visible = 0
    for ann in data["annotations"]:
        image = cv2.imread(str(result.image_dir / f"{ann['image_id']:012d}.jpg")).astype(float)
        for j, (x, y, v) in enumerate(np.array(ann["keypoints"]).reshape(5, 3)):
            if v == 2:
                visible += 1
                assert np.linalg.norm(palette - image[round(y), round(x)], axis=1).argmin() == j
    assert visible > 5


def test_body_point_aliases():
    schema = schema_from_dict({"name": "x", "keypoints": ["L_Shoulder", "shoulder_right", "mid-hip", "Head"]})
    assert body_point_names(schema) == ["left_shoulder", "right_shoulder", "pelvis", "head_top"]
