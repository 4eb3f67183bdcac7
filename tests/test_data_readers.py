"""Annotation readers: COCO, CrowdPose, MPII, user schemas, detection results."""

import json
import logging
import subprocess
import sys

import numpy as np
import pytest

from kpose.data.coco import read_coco, read_crowdpose, read_detections
from kpose.data.mpii import read_mpii
from kpose.data.readers import read_samples
from kpose.data.synthetic import write_synthetic_coco
from kpose.errors import AnnotationError
from kpose.keypoints import get_schema


def _kps(k, labeled=()):
    """COCO keypoint list with the given (index, x, y) labeled, v=2."""
    out = [0.0] * (3 * k)
    for i, x, y in labeled:
        out[3 * i : 3 * i + 3] = [x, y, 2]
    return out


def _ann(i, image_id, k=17, labeled=((0, 50.0, 60.0),), bbox=(10.0, 20.0, 100.0, 200.0), **extra):
    return {"id": i, "image_id": image_id, "category_id": 1, "bbox": list(bbox), "keypoints": _kps(k, labeled),
            "iscrowd": 0, "area": 5000.0, **extra}


def _coco(tmp_path, annotations, k=17, images=None, name="ann.json", **extra):
    data = {
        "images": images or [{"id": 1, "file_name": "a.jpg", "height": 480, "width": 640},
                             {"id": 2, "file_name": "b.jpg", "height": 480, "width": 640}],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "person", "keypoints": [f"k{i}" for i in range(k)]}],
        **extra,
    }
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_coco_reader_on_the_synthetic_set(tmp_path):
    synthetic = write_synthetic_coco(tmp_path, 4, "coco", seed=2)
    samples = read_coco(synthetic.annotation_file, synthetic.image_dir)
    data = json.loads(synthetic.annotation_file.read_text())
    labeled = [a for a in data["annotations"] if a["num_keypoints"] > 0]
    assert len(samples) == len(labeled) and samples.num_keypoints == 17
    first = labeled[0]
    np.testing.assert_array_equal(samples.ann_ids, [a["id"] for a in labeled])
    np.testing.assert_allclose(samples.keypoints[0], np.reshape(first["keypoints"], (17, 3))[:, :2], rtol=1e-6)
    np.testing.assert_array_equal(samples.visibility[0], first["keypoints"][2::3])
    assert samples.image_paths[0] == str(synthetic.image_dir / f"{first['image_id']:012d}.jpg")
    assert samples.areas[0] == first["area"] and (samples.scores == 1).all()
    assert np.isnan(samples.head_boxes).all()


def test_coco_filtering_follows_the_papers(tmp_path, caplog):
    path = _coco(tmp_path, [
        _ann(1, 1),
        _ann(2, 1, iscrowd=1),
        _ann(3, 1, labeled=()),
        _ann(4, 2, bbox=(700.0, 20.0, 50.0, 50.0)),  # entirely right of the 640-wide image
        _ann(5, 2, category_id=2),
        _ann(6, 2, bbox=(600.0, 400.0, 100.0, 100.0)),  # clipped to 40 x 80
    ])
    with caplog.at_level(logging.INFO, logger="kpose.data"):
        samples = read_coco(path, tmp_path)
    assert list(samples.ann_ids) == [1, 6]
    np.testing.assert_allclose(samples.boxes[1], [600, 400, 40, 80])
    assert "2 persons kept of 6 (dropped: 1 other category, 1 crowd, 1 without keypoints, 1 outside their image's width/height)" in caplog.text
    kept = read_coco(path, tmp_path, drop_crowd=False, drop_unlabeled=False)
    assert list(kept.ann_ids) == [1, 2, 3, 6]


def test_empty_after_filtering_says_why(tmp_path):
    path = _coco(tmp_path, [_ann(1, 1, iscrowd=1), _ann(2, 2, labeled=())])
    with pytest.raises(AnnotationError, match=r"ann.json: no persons left after filtering: 2 read, dropped 1 crowd, 1 without keypoints"):
        read_coco(path, tmp_path)


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d.pop("annotations"), "'annotations' is missing"),
        (lambda d: d.update(images={}), "'images' must be a list"),
        (lambda d: d["images"][1].pop("file_name"), r"'images\[1\].file_name' is missing"),
        (lambda d: d["images"][1].update(id=1), r"'images\[1\].id' repeats image id 1"),
        (lambda d: d["annotations"][1].update(keypoints=[0.0] * 42), r"'annotations\[1\].keypoints' must be a list of 51 numbers \(x, y, v for each of the 17 keypoints of schema 'coco'\), got 42"),
        (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), r"'annotations\[0\].bbox' must be a list of 4 numbers"),
        (lambda d: d["annotations"][0].update(bbox=[1, 2, -3, 4]), "negative width"),
        (lambda d: d["annotations"][1].update(image_id=99), "refers to image 99"),
        (lambda d: d["annotations"][0].update(keypoints=["a"] * 51), "must hold only finite numbers within \\+-1e\\+06, got .a. at \\[0\\]"),
        (lambda d: d["annotations"][0].update(iscrowd=5), "iscrowd"),
        (lambda d: d["categories"][0].update(keypoints=["x"] * 14), r"'categories\[0\].keypoints' has 14 keypoints but schema 'coco' has 17"),
    ],
)
def test_malformed_coco_files_name_the_file_and_field(tmp_path, mutate, field):
    data = json.loads(_coco(tmp_path, [_ann(1, 1), _ann(2, 2)]).read_text())
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(AnnotationError, match=rf"bad.json: .*{field}"):
        read_coco(path, tmp_path)


def test_unreadable_files(tmp_path):
    with pytest.raises(AnnotationError, match="nope.json: annotation file not found"):
        read_coco(tmp_path / "nope.json", tmp_path)
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [')
    with pytest.raises(AnnotationError, match="broken.json: not valid JSON"):
        read_coco(broken, tmp_path)


def test_user_schema(tmp_path):
    schema_file = tmp_path / "hand.yaml"
    schema_file.write_text("name: hand3\nkeypoints: [wrist, thumb, index]\nskeleton: [[0, 1], [0, 2]]\n")
    path = _coco(tmp_path, [_ann(1, 1, k=3, labeled=((2, 5.0, 6.0),))], k=3)
    samples = read_coco(path, tmp_path, schema_file)
    assert samples.keypoints.shape == (1, 3, 2)
    np.testing.assert_array_equal(samples.keypoints[0, 2], [5, 6])
    with pytest.raises(AnnotationError, match=r"categories\[0\].keypoints' has 3 keypoints but schema 'coco' has 17"):
        read_coco(path, tmp_path, "coco")


def test_crowdpose(tmp_path):
    images = [{"id": 7, "file_name": "c.jpg", "height": 300, "width": 400, "crowdIndex": 0.4}]
    path = _coco(tmp_path, [_ann(1, 7, k=14, labeled=((12, 30.0, 40.0), (13, 31.0, 50.0)))], k=14, images=images)
    samples = read_crowdpose(path, tmp_path)
    assert samples.num_keypoints == 14 and list(samples.image_ids) == [7]
    with pytest.raises(AnnotationError, match="schema 'coco'"):
        read_coco(path, tmp_path)


def _mpii_record(image="x.jpg", center=(101.0, 201.0), scale=1.5, **extra):
    joints = [[10.0 + j, 20.0 + j] for j in range(16)]
    vis = [1] * 15 + [0]
    joints[15] = [-1.0, -1.0]
    return {"image": image, "center": list(center), "scale": scale, "joints": joints, "joints_vis": vis, **extra}


def test_mpii_reader(tmp_path):
    records = [
        _mpii_record(head_box=[11, 21, 51, 71]),
        _mpii_record("y.jpg"),
        _mpii_record("x.jpg", center=(-1.0, -1.0)),
        {**_mpii_record("z.jpg"), "joints_vis": [0] * 16},
    ]
    path = tmp_path / "mpii.json"
    path.write_text(json.dumps(records))
    samples = read_mpii(path, tmp_path)
    assert len(samples) == 2 and list(samples.image_ids) == [0, 1]
    side = 200 * 1.5  # the region is 200 * scale px; the centre moves down by 15 * scale
    np.testing.assert_allclose(samples.boxes[0], [100 - side / 2, 200 + 22.5 - side / 2, side, side])
    np.testing.assert_allclose(samples.keypoints[0, 3], [12.0, 22.0])  # 1-based -> 0-based
    np.testing.assert_array_equal(samples.visibility[0], [2] * 15 + [0])
    np.testing.assert_array_equal(samples.keypoints[0, 15], [0, 0])
    np.testing.assert_allclose(samples.head_boxes[0], [10, 20, 50, 70])
    assert np.isnan(samples.head_boxes[1]).all()
    assert read_samples(path, tmp_path, "mpii").boxes.shape == (2, 4)  # format detected from the file


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda r: r.update(joints=r["joints"][:14]), r"'\[0\].joints' must list 16 \[x, y\] joints \(schema 'mpii'\), got 14"),
        (lambda r: r.update(joints_vis=[1] * 3), r"'\[0\].joints_vis' must be a list of 16 numbers"),
        (lambda r: r.pop("scale"), r"'\[0\].scale' is missing"),
        (lambda r: r.update(scale=-2), r"'\[0\].scale' must be positive"),
        (lambda r: r.update(center="middle"), r"'\[0\].center' must be a list of 2 numbers"),
    ],
)
def test_malformed_mpii_files_name_the_record_and_field(tmp_path, mutate, field):
    record = _mpii_record()
    mutate(record)
    path = tmp_path / "bad_mpii.json"
    path.write_text(json.dumps([record]))
    with pytest.raises(AnnotationError, match=rf"bad_mpii.json: field {field}"):
        read_mpii(path, tmp_path)


def test_detections(tmp_path):
    synthetic = write_synthetic_coco(tmp_path, 4, "coco", seed=2)
    detections = json.loads(synthetic.detection_file.read_text())
    detections.append({"image_id": 1, "category_id": 3, "bbox": [1, 1, 50, 50], "score": 0.99})
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(detections))
    boxes = read_detections(path, synthetic.annotation_file, synthetic.image_dir, score_threshold=0.5)
    expected = [d for d in detections if d["category_id"] == 1 and d["score"] >= 0.5]
    assert len(boxes) == len(expected)
    np.testing.assert_allclose(boxes.scores, [d["score"] for d in expected], rtol=1e-6)
    assert (boxes.visibility == 0).all() and boxes.keypoints.shape == (len(expected), 17, 2)
    assert (boxes.ann_ids == -1).all()
    detections[0]["image_id"] = 12345
    path.write_text(json.dumps(detections))
    with pytest.raises(AnnotationError, match=r"dets.json: field '\[0\].image_id' refers to image 12345"):
        read_detections(path, synthetic.annotation_file, synthetic.image_dir)
    with pytest.raises(AnnotationError, match="no boxes left after filtering"):
        read_detections(synthetic.detection_file, synthetic.annotation_file, synthetic.image_dir, score_threshold=2.0)


def test_schema_sets_k_for_detections(tmp_path):
    path = _coco(tmp_path, [_ann(1, 1, k=14)], k=14)
    dets = tmp_path / "d.json"
    dets.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 40], "score": 0.9}]))
    boxes = read_detections(dets, path, tmp_path, get_schema("crowdpose"))
    assert boxes.keypoints.shape == (1, 14, 2)


def test_readers_synthetic_and_drawing_import_without_tensorflow():
    code = (
        "import sys; import kpose.data, kpose.data.readers, kpose.data.synthetic, "
        "kpose.geometry, kpose.runtime.drawing, kpose.data.images; print('tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
