"""COCO and CrowdPose keypoint AP against pycocotools, input validation and ``kpose eval``."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pycocotools")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402

from kpose.cli import main as cli_main  # noqa: E402
from kpose.errors import AnnotationError  # noqa: E402
from kpose.evaluation import (  # noqa: E402
    TopDownResults,
    evaluate_coco,
    evaluate_crowdpose,
    load_annotations,
    oks,
)
from kpose.keypoints import KeypointSchema, get_schema  # noqa: E402

COCO_KEYS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


# ---------------------------------------------------------------- synthetic data


def make_dataset(
    rng: np.random.Generator,
    num_keypoints: int,
    *,
    num_images: int = 6,
    with_area: bool = True,
    crowd_indices: tuple[float, ...] | None = None,
) -> dict:
    """A COCO keypoint annotation dict: 640x480 images with 1-4 people each.

    People stand in boxes 40-220 px wide and twice as tall (medium and large COCO sizes),
    keypoints scattered in the box, about 15% unlabelled (``v = 0``, at 0, 0) and 15% occluded
    (``v = 1``). Image 1 also holds a crowd region and a person without labelled keypoints.
    """
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        image = {"id": image_id, "file_name": f"{image_id:06d}.jpg", "width": 640, "height": 480}
        if crowd_indices is not None:
            image["crowdIndex"] = crowd_indices[image_id - 1]
        images.append(image)
        for _ in range(int(rng.integers(1, 5))):
            w = float(rng.uniform(40, 220))
            h = 2 * w
            x, y = float(rng.uniform(0, 640 - w)), float(rng.uniform(0, max(1.0, 480 - h)))
            xy = np.stack([x + rng.uniform(0, w, num_keypoints), y + rng.uniform(0, h, num_keypoints)], axis=1)
            v = rng.choice([0, 1, 2], size=num_keypoints, p=[0.15, 0.15, 0.7]).astype(float)
            v[0] = 2  # at least one labelled keypoint
            xy[v == 0] = 0
            ann = {
                "image_id": image_id,
                "category_id": 1,
                "bbox": [x, y, w, h],
                "keypoints": np.concatenate([xy, v[:, None]], axis=1).ravel().tolist(),
                "num_keypoints": int(np.count_nonzero(v)),
                "iscrowd": 0,
            }
            if with_area:
                ann["area"] = 0.55 * w * h
            annotations.append(ann)
    empty = [0.0] * (3 * num_keypoints)
    for extra in (
        {"bbox": [5.0, 5.0, 200.0, 120.0], "keypoints": empty, "num_keypoints": 0, "iscrowd": 1},
        {"bbox": [400.0, 20.0, 60.0, 120.0], "keypoints": empty, "num_keypoints": 0, "iscrowd": 0},
    ):
        w, h = extra["bbox"][2:]
        annotations.append({"image_id": 1, "category_id": 1, **extra, **({"area": 0.5 * w * h} if with_area else {})})
    for ann_id, ann in enumerate(annotations, start=1):
        ann["id"] = ann_id
    return {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "person", "supercategory": "person"}],
    }


def people(dataset: dict) -> list[dict]:
    """The annotations of people with labelled keypoints (those COCOeval does not ignore)."""
    return [a for a in dataset["annotations"] if a["num_keypoints"] > 0 and not a["iscrowd"]]


def as_result(ann: dict, xy: np.ndarray, keypoint_scores: np.ndarray, score: float) -> dict:
    flat = np.concatenate([xy, keypoint_scores[:, None]], axis=1).ravel().tolist()
    return {"image_id": ann["image_id"], "category_id": 1, "keypoints": flat, "score": score}


def perfect_results(dataset: dict) -> list[dict]:
    """The ground truth of every person, as results with score 1."""
    results = []
    for ann in people(dataset):
        xy = np.asarray(ann["keypoints"], dtype=float).reshape(-1, 3)[:, :2]
        results.append(as_result(ann, xy, np.ones(len(xy)), 1.0))
    return results


def perturbed_results(dataset: dict, rng: np.random.Generator) -> list[dict]:
    """Noisy predictions: jitter growing with person size, random scores, misses and false alarms."""
    results = []
    for ann in people(dataset):
        if rng.uniform() < 0.1:
            continue  # a missed person
        xy = np.asarray(ann["keypoints"], dtype=float).reshape(-1, 3)[:, :2]
        scale = np.sqrt(ann["bbox"][2] * ann["bbox"][3])
        xy += rng.normal(0.0, rng.uniform(0.01, 0.12) * scale, size=xy.shape)
        results.append(as_result(ann, xy, rng.uniform(0.1, 1.0, len(xy)), float(rng.uniform(0.2, 1.0))))
    k = len(dataset["annotations"][0]["keypoints"]) // 3
    for image in dataset["images"][:3]:  # false alarms
        xy = rng.uniform([0, 0], [640, 480], size=(k, 2))
        results.append(as_result({"image_id": image["id"]}, xy, np.full(k, 0.3), float(rng.uniform(0.1, 0.6))))
    return results


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def pycocotools_eval(
    ann_path: Path, res_path: Path, sigmas, area_ranges: dict | None = None, image_ids=None
) -> np.ndarray:
    """pycocotools used directly, the way its README shows; returns ``COCOeval.stats``."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_path))
        dt = gt.loadRes(str(res_path))
        evaluator = COCOeval(gt, dt, "keypoints")
        evaluator.params.kpt_oks_sigmas = np.asarray(sigmas)
        if area_ranges is not None:
            evaluator.params.areaRngLbl = list(area_ranges)
            evaluator.params.areaRng = [list(r) for r in area_ranges.values()]
        if image_ids is not None:
            evaluator.params.imgIds = list(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats


def custom_schema(tmp_path: Path, sigmas: list[float], name: str) -> KeypointSchema:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"name: {name}\n"
        "keypoints: [head, left_hand, right_hand, left_foot, right_foot]\n"
        "flip_pairs: [[1, 2], [3, 4]]\n"
        "skeleton: [[0, 1], [0, 2], [0, 3], [0, 4]]\n"
        f"sigmas: {sigmas}\n"
    )
    return get_schema(path)


@pytest.fixture
def coco_files(tmp_path):
    rng = np.random.default_rng(7)
    dataset = make_dataset(rng, 17)
    ann = write_json(tmp_path / "person_keypoints.json", dataset)
    res = write_json(tmp_path / "results.json", perturbed_results(dataset, rng))
    return dataset, ann, res


# ---------------------------------------------------------------- COCO protocol


def test_perfect_predictions_score_one(coco_files):
    dataset, ann, _ = coco_files
    stats = evaluate_coco(perfect_results(dataset), ann, "coco")
    assert list(stats) == list(COCO_KEYS)
    assert stats == {key: 1.0 for key in COCO_KEYS}


def test_stats_equal_pycocotools(coco_files):
    dataset, ann, res = coco_files
    stats = evaluate_coco(res, ann, "coco")
    direct = pycocotools_eval(ann, res, get_schema("coco").sigmas_array)
    np.testing.assert_allclose([stats[k] for k in COCO_KEYS], direct, rtol=0, atol=1e-12)
    assert 0.2 < stats["AP"] < 0.95  # a real, imperfect score
    # the same from in-memory inputs and from a COCO object
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann))
    assert evaluate_coco(json.loads(res.read_text()), gt) == stats
    assert evaluate_coco(res, dataset) == stats


def test_no_results_score_zero(coco_files):
    _, ann, _ = coco_files
    assert evaluate_coco([], ann) == {key: 0.0 for key in COCO_KEYS}


def test_custom_schema_uses_its_own_sigmas(tmp_path):
    rng = np.random.default_rng(3)
    dataset = make_dataset(rng, 5, num_images=8)
    ann = write_json(tmp_path / "five.json", dataset)
    res = write_json(tmp_path / "five_results.json", perturbed_results(dataset, rng))
    tight = custom_schema(tmp_path, [0.03, 0.05, 0.05, 0.07, 0.07], "tight")
    loose = custom_schema(tmp_path, [0.12, 0.15, 0.15, 0.15, 0.15], "loose")
    stats_tight = evaluate_coco(res, ann, tight)
    stats_loose = evaluate_coco(res, ann, str(tmp_path / "loose.yaml"))
    assert stats_loose["AP"] > stats_tight["AP"] + 0.05
    for schema, stats in ((tight, stats_tight), (loose, stats_loose)):
        direct = pycocotools_eval(ann, res, schema.sigmas_array)
        np.testing.assert_allclose([stats[k] for k in COCO_KEYS], direct, rtol=0, atol=1e-12)


def test_oks_matches_pycocotools(coco_files):
    dataset, ann, res = coco_files
    sigmas = get_schema("coco").sigmas_array
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann))
        evaluator = COCOeval(gt, gt.loadRes(str(res)), "keypoints")
        evaluator.evaluate()
    for image_id in gt.getImgIds():
        ious = evaluator.ious[image_id, 1]
        if len(ious) == 0:
            continue
        dts = sorted(evaluator._dts[image_id, 1], key=lambda d: -d["score"])
        candidates = np.asarray([d["keypoints"] for d in dts]).reshape(len(dts), -1, 3)
        for j, gt_ann in enumerate(evaluator._gts[image_id, 1]):
            ref = np.asarray(gt_ann["keypoints"]).reshape(-1, 3)
            if not (ref[:, 2] > 0).any():
                continue  # pycocotools scores those against the box instead
            ours = oks(ref, candidates, sigmas, gt_ann["area"], visible=ref[:, 2] > 0)
            np.testing.assert_allclose(ours, ious[:, j], rtol=1e-12)


def test_collector_results_evaluate(coco_files, tmp_path):
    dataset, ann, _ = coco_files
    persons = people(dataset)
    collector = TopDownResults("coco")
    for start in range(0, len(persons), 4):  # batches of 4 boxes
        batch = persons[start : start + 4]
        xy = np.asarray([a["keypoints"] for a in batch]).reshape(len(batch), 17, 3)[..., :2]
        collector.add(
            image_ids=[a["image_id"] for a in batch],
            keypoints=xy,
            keypoint_scores=np.full((len(batch), 17), 0.9),
            box_scores=np.ones(len(batch)),
            box_areas=[a["bbox"][2] * a["bbox"][3] for a in batch],
        )
    path = collector.write_results(tmp_path / "out" / "results.json")
    written = json.loads(path.read_text())
    assert len(written) == len(persons)
    assert evaluate_coco(path, ann)["AP"] == 1.0


# ---------------------------------------------------------------- CrowdPose protocol

CROWD_INDICES = (0.02, 0.05, 0.15, 0.5, 0.85, 0.95)
ALL_AREAS = {"all": (0.0, 1e10)}


@pytest.fixture
def crowdpose_files(tmp_path):
    rng = np.random.default_rng(11)
    dataset = make_dataset(rng, 14, with_area=False, crowd_indices=CROWD_INDICES)
    ann = write_json(tmp_path / "crowdpose_val.json", dataset)
    res = write_json(tmp_path / "crowdpose_results.json", perturbed_results(dataset, rng))
    # the same ground truth with the CrowdPose area written out, for plain pycocotools
    with_area = json.loads(ann.read_text())
    for a in with_area["annotations"]:
        a["area"] = 0.53 * a["bbox"][2] * a["bbox"][3]
    return dataset, ann, res, write_json(tmp_path / "crowdpose_val_area.json", with_area)


def test_crowdpose_perfect(crowdpose_files):
    dataset, ann, _, _ = crowdpose_files
    stats = evaluate_crowdpose(perfect_results(dataset), ann)
    assert list(stats) == ["AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy", "AP_medium", "AP_hard"]
    assert all(value == 1.0 for value in stats.values())


def test_crowdpose_equals_pycocotools_with_crowdpose_settings(crowdpose_files):
    _, ann, res, ann_with_area = crowdpose_files
    sigmas = get_schema("crowdpose").sigmas_array
    stats = evaluate_crowdpose(res, ann)
    direct = pycocotools_eval(ann_with_area, res, sigmas, ALL_AREAS)
    ours = [stats[k] for k in ("AP", "AP50", "AP75", "AR", "AR50", "AR75")]
    np.testing.assert_allclose(ours, direct[[0, 1, 2, 5, 6, 7]], rtol=0, atol=1e-12)
    splits = {"easy": [1, 2], "medium": [3, 4], "hard": [5, 6]}  # crowdIndex < 0.1, < 0.8, >= 0.8
    for level, image_ids in splits.items():
        direct = pycocotools_eval(ann_with_area, res, sigmas, ALL_AREAS, image_ids=image_ids)
        assert stats[f"AP_{level}"] == pytest.approx(direct[0], abs=1e-12)


def test_crowdpose_levels_follow_crowd_index(crowdpose_files):
    dataset, ann, _, _ = crowdpose_files
    rng = np.random.default_rng(5)
    results = perfect_results(dataset)
    for result in results:
        if result["image_id"] in (5, 6):  # the crowded images: predictions far off
            xy = np.asarray(result["keypoints"]).reshape(-1, 3)
            xy[:, :2] += rng.normal(0, 40, size=(len(xy), 2))
            result["keypoints"] = xy.ravel().tolist()
    stats = evaluate_crowdpose(results, ann)
    assert stats["AP_easy"] == 1.0 and stats["AP_medium"] == 1.0
    assert stats["AP_hard"] < 0.5
    # thresholds (0.9, 0.99): easy holds images 1-5 (image 5 badly predicted), medium image 6
    shifted = evaluate_crowdpose(results, ann, crowd_index_thresholds=(0.9, 0.99))
    assert shifted["AP_easy"] < 1.0 and shifted["AP_medium"] < 0.5 and shifted["AP_hard"] == -1.0


def test_crowdpose_needs_crowd_index(crowdpose_files, tmp_path):
    dataset, _, res, _ = crowdpose_files
    del dataset["images"][2]["crowdIndex"]
    ann = write_json(tmp_path / "no_index.json", dataset)
    with pytest.raises(AnnotationError, match=r"no_index\.json: images\[2\]: field 'crowdIndex' is missing"):
        evaluate_crowdpose(res, ann)


# ---------------------------------------------------------------- validation


def _break(dataset: dict, how: str) -> dict:
    broken = json.loads(json.dumps(dataset))
    if how == "no keypoints":
        del broken["annotations"][1]["keypoints"]
    elif how == "short keypoints":
        broken["annotations"][1]["keypoints"] = broken["annotations"][1]["keypoints"][:-3]
    elif how == "no images":
        del broken["images"]
    elif how == "no annotations":
        del broken["annotations"]
    elif how == "no area":
        del broken["annotations"][1]["area"]
    return broken


@pytest.mark.parametrize(
    "how, message",
    [
        ("no keypoints", r"field 'annotations\[1\]\.keypoints' is missing"),
        ("short keypoints", r"field 'annotations\[1\]\.keypoints' must be a list of 51 numbers .*schema 'coco'\), got 48 values"),
        ("no images", r"field 'images' is missing"),
        ("no annotations", r"field 'annotations' is missing"),
        ("no area", r"field 'annotations\[1\]\.area' is missing"),
    ],
)
def test_bad_annotation_file(coco_files, tmp_path, how, message):
    dataset, _, res = coco_files
    ann = write_json(tmp_path / "broken_ann.json", _break(dataset, how))
    with pytest.raises(AnnotationError, match=r"broken_ann\.json: .*" + message):
        evaluate_coco(res, ann)


def test_annotation_file_for_another_schema(coco_files):
    _, ann, res = coco_files
    message = r"person_keypoints\.json: field 'annotations\[0\]\.keypoints' must be a list of 42 numbers .*schema 'crowdpose'\), got 51"
    with pytest.raises(AnnotationError, match=message):
        evaluate_coco(res, ann, "crowdpose")


def test_results_for_unknown_images(coco_files, tmp_path):
    _, ann, res = coco_files
    results = json.loads(res.read_text())
    for i, image_id in enumerate((9001, 9002, 9003)):
        results[i]["image_id"] = image_id
    bad = write_json(tmp_path / "bad_results.json", results)
    with pytest.raises(AnnotationError) as info:
        evaluate_coco(bad, ann)
    message = str(info.value)
    assert "bad_results.json" in message and "'image_id'" in message and "person_keypoints.json" in message
    assert "9001, 9002, 9003" in message


def test_results_with_wrong_keypoint_count(coco_files, tmp_path):
    _, ann, res = coco_files
    results = json.loads(res.read_text())
    results[2]["keypoints"] = results[2]["keypoints"][:39]
    bad = write_json(tmp_path / "bad_results.json", results)
    with pytest.raises(AnnotationError, match=r"bad_results\.json: field 'results\[2\]\.keypoints' must be a list of 51 numbers .*got 39 values"):
        evaluate_coco(bad, ann)


def test_results_not_a_list(coco_files, tmp_path):
    _, ann, _ = coco_files
    bad = write_json(tmp_path / "bad_results.json", {"annotations": []})
    with pytest.raises(AnnotationError, match=r"bad_results\.json: a results file must be a JSON list"):
        evaluate_coco(bad, ann)


def test_loader_fills_defaults_without_touching_input(coco_files):
    dataset, _, _ = coco_files
    for ann in dataset["annotations"]:
        del ann["id"], ann["num_keypoints"], ann["iscrowd"]
    before = json.dumps(dataset)
    validated, name = load_annotations(dataset, get_schema("coco"))
    assert json.dumps(dataset) == before and name == "<annotations>"
    first = validated["annotations"][0]
    labelled = int(np.count_nonzero(np.asarray(first["keypoints"])[2::3] > 0))
    assert (first["id"], first["iscrowd"], first["num_keypoints"]) == (1, 0, labelled)


# ---------------------------------------------------------------- kpose eval


def run_cli(monkeypatch, capsys, *argv: str) -> tuple[int, str, str]:
    # only this command, so the test does not depend on the other commands' modules
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", ("kpose.cli.eval_cmd",))
    code = cli_main.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_table_and_json(coco_files, monkeypatch, capsys):
    _, ann, res = coco_files
    expected = evaluate_coco(res, ann)
    code, out, _ = run_cli(monkeypatch, capsys, "eval", "--predictions", str(res), "--annotations", str(ann))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "coco keypoint evaluation, schema 'coco' (17 keypoints)"
    assert lines[1].split() == ["metric", "value"]
    rows = dict(line.split() for line in lines[3:])
    assert list(rows) == list(COCO_KEYS)
    assert rows["AP"] == f"{expected['AP']:.4f}"
    assert len({len(line) for line in lines[1:]}) == 1  # aligned

    code, out, _ = run_cli(monkeypatch, capsys, "eval", "--predictions", str(res), "--annotations", str(ann), "--json")
    assert code == 0 and json.loads(out) == expected


def test_cli_crowdpose(crowdpose_files, monkeypatch, capsys):
    _, ann, res, _ = crowdpose_files
    argv = ["eval", "--predictions", str(res), "--annotations", str(ann), "--protocol", "crowdpose", "--json"]
    code, out, _ = run_cli(monkeypatch, capsys, *argv)
    assert code == 0 and json.loads(out) == evaluate_crowdpose(res, ann)


def test_cli_reports_bad_input(coco_files, monkeypatch, capsys, tmp_path):
    dataset, _, res = coco_files
    ann = write_json(tmp_path / "broken_ann.json", _break(dataset, "no keypoints"))
    code, out, err = run_cli(monkeypatch, capsys, "eval", "--predictions", str(res), "--annotations", str(ann))
    assert code == 2 and out == ""
    assert "broken_ann.json" in err and "'annotations[1].keypoints'" in err and "Traceback" not in err
