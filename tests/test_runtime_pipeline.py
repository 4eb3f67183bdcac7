"""The edge runtime end to end: crops -> real interpreter -> image coordinates, tracking,
smoothing, the headless demo on a generated video, and its errors. No TensorFlow at runtime."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from kpose.benchmarks.demo import FirstFrameBoxes, write_people_video
from kpose.metadata import MetadataError
from kpose.runtime import (
    ImageError,
    OneEuroFilter,
    PoseEstimator,
    PosePipeline,
    Tracker,
    VideoSource,
    read_pose_log,
)

pytest.importorskip("tensorflow")  # only to write the test models
runtime_models = pytest.importorskip("runtime_models")

REPO = Path(__file__).resolve().parents[1]
FRAMES = 24


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        "tflite": runtime_models.write_oracle(root / "oracle.tflite", batch_size=None),
        "tflite_b1": runtime_models.write_oracle(root / "oracle_b1.tflite", batch_size=1),
        "onnx": runtime_models.write_oracle(root / "oracle.onnx", batch_size=None),
        "no_metadata": runtime_models.write_tflite(root / "plain.tflite", runtime_models.oracle_function(1), None),
    }


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    # one person close to the camera, as before a webcam; three further away
    return {
        n: write_people_video(root / f"people{n}.mp4", people=n, frames=FRAMES, seed=n, tall=tall)
        for n, tall in ((1, 0.9), (3, 0.62))
    }


def _errors(found: list[np.ndarray], truth: np.ndarray) -> np.ndarray:
    """Pixel errors of the visible true keypoints against the nearest found person."""
    matched = runtime_models.match_people(found, truth)
    return np.concatenate(
        [np.linalg.norm(m - t[:, :2], axis=1)[t[:, 2] == 2] for m, t in zip(matched, truth)]
    )


@pytest.mark.parametrize("model", ["tflite", "tflite_b1", "onnx"])
def test_estimate_maps_keypoints_back_to_the_image(models, videos, model):
    estimator = PoseEstimator(models[model], threads=1)
    truth = videos[3]
    errors = []
    with VideoSource(truth.path) as video:
        for i, frame in enumerate(video):
            people = estimator.estimate(frame, truth.boxes[i])
            assert len(people) == 3 and people[0].keypoints.shape == (17, 2) and people[0].scores.shape == (17,)
            errors.append(_errors([p.keypoints for p in people], truth.keypoints[i]))
    errors = np.concatenate(errors)
    assert i + 1 == FRAMES
    assert np.median(errors) < 2.5 and np.mean(errors < 6) > 0.9, (np.median(errors), np.mean(errors < 6))


def test_tflite_and_onnx_agree(models, videos):
    frame = next(iter(VideoSource(videos[3].path)))
    boxes = videos[3].boxes[0]
    tflite = PoseEstimator(models["tflite"]).estimate(frame, boxes)
    onnx = PoseEstimator(models["onnx"]).estimate(frame, boxes)
    for a, b in zip(tflite, onnx):
        np.testing.assert_allclose(a.keypoints, b.keypoints, atol=1e-3)
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-3, atol=1e-4)


def test_tracking_follows_three_people_from_one_detection(models, videos):
    truth = videos[3]
    detector = FirstFrameBoxes(truth.boxes[0])
    pipeline = PosePipeline(PoseEstimator(models["tflite"]), Tracker(detector, every=1000), draw=False)
    ids = []
    with VideoSource(truth.path) as video:
        for i, frame in enumerate(video):
            result = pipeline(frame, i / truth.fps)
            assert set(result.timings_ms) == {"boxes", "crop", "infer", "map", "smooth", "draw"}
            ids.append(sorted(p.track_id for p in result.people))
            errors = _errors([p.keypoints for p in result.people], truth.keypoints[i])
            assert np.median(errors) < 3.0, (i, np.median(errors))
    assert ids == [[0, 1, 2]] * FRAMES and detector.calls == 1


def test_one_euro_filter_smooths_jitter_and_follows_motion():
    rng = np.random.default_rng(0)
    filt = OneEuroFilter()
    still = [filt(np.array([100.0, 50.0]) + rng.normal(0, 2, 2), t / 30) for t in range(60)]
    assert np.std(np.array(still)[10:], axis=0).max() < 1.0  # jitter of std 2 px damped
    moving = [filt(np.array([100.0 + 10 * t, 50.0]), 2 + t / 30) for t in range(30)]
    assert abs(moving[-1][0] - (100 + 290)) < 25  # 300 px/s: lags less than a tenth of a second


def _run_demo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "examples" / "webcam_demo.py"), *args],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )


def test_headless_demo_writes_every_frame_and_poses_near_the_truth(models, videos, tmp_path):
    truth = videos[1]
    out, poses = tmp_path / "out.mp4", tmp_path / "poses.jsonl"
    result = _run_demo(
        "--model", str(models["tflite"]), "--source", str(truth.path), "--detector", "track",
        "--no-window", "--save", str(out), "--poses", str(poses),
    )
    assert result.returncode == 0, result.stderr
    assert f"{FRAMES} frames" in result.stdout
    with VideoSource(out) as video:
        frames = list(video)
    assert len(frames) == FRAMES and frames[0].shape == (480, 640, 3)
    lines = read_pose_log(poses)
    assert [line["frame"] for line in lines] == list(range(FRAMES))
    np.testing.assert_allclose([line["time_ms"] for line in lines], np.arange(FRAMES) * 1000 / truth.fps, atol=0.01)
    errors = []
    for line, people in zip(lines, truth.keypoints):
        assert len(line["people"]) == 1 and line["people"][0]["track_id"] == 0
        found = np.array(line["people"][0]["keypoints"])[:, :2]
        errors.append(_errors([found], people))
    errors = np.concatenate(errors)
    # smoothing lags a little behind a person moving at up to 200 px/s
    assert np.median(errors) < 6.0 and np.mean(errors < 10) > 0.8, (np.median(errors), np.mean(errors < 10))


def test_a_frame_with_nobody_draws_nothing_and_goes_on(models, tmp_path):
    blank = tmp_path / "blank.mp4"
    writer = cv2.VideoWriter(str(blank), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
    for _ in range(5):
        writer.write(np.full((240, 320, 3), 90, np.uint8))
    writer.release()
    out, poses = tmp_path / "out.mp4", tmp_path / "poses.jsonl"
    result = _run_demo(
        "--model", str(models["tflite"]), "--source", str(blank), "--no-window", "--no-overlay",
        "--save", str(out), "--poses", str(poses),
    )
    assert result.returncode == 0, result.stderr
    assert [line["people"] for line in read_pose_log(poses)] == [[]] * 5
    with VideoSource(out) as video:
        assert all(np.abs(frame.astype(int) - 90).max() < 20 for frame in video)  # codec noise only


def test_bad_inputs_are_one_line_errors(models, tmp_path):
    garbage = tmp_path / "broken.mp4"
    garbage.write_bytes(b"\x00not a video" * 100)
    cases = {
        ("--model", str(models["no_metadata"]), "--source", "0"): "no kpose metadata in this TFLite file",
        ("--model", str(models["tflite"]), "--source", str(garbage)): f"--source {garbage}",
        ("--model", str(models["tflite"]), "--source", str(tmp_path / "none.mp4")): "no such video file",
        ("--model", str(models["tflite"]), "--source", "97"): "--source 97: cannot open this camera",
        ("--model", str(tmp_path / "missing.tflite")): "no such model file",
    }
    for args, message in cases.items():
        result = _run_demo(*args, "--no-window")
        assert result.returncode == 2, (args, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.startswith("kpose demo: error:")]
        assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr, result.stderr


def test_a_window_without_gui_support_says_so(models, videos):
    try:
        cv2.namedWindow("probe")
        cv2.destroyWindow("probe")
        pytest.skip("this OpenCV has a GUI")
    except cv2.error:
        pass
    result = _run_demo("--model", str(models["tflite"]), "--source", str(videos[1].path))
    assert result.returncode == 2 and "pass --no-window" in result.stderr and "Traceback" not in result.stderr


def test_images_of_the_wrong_type_are_clear_errors(models):
    estimator = PoseEstimator(models["tflite"])
    with pytest.raises(ImageError, match="dtype uint8"):
        estimator.estimate(np.zeros((48, 64, 3), np.float32))
    with pytest.raises(ImageError, match=r"\(H, W, 3\).*\(48, 64, 4\)"):
        estimator.estimate(np.zeros((48, 64, 4), np.uint8))
    with pytest.raises(ImageError, match=r"\(N, 4\) boxes"):
        estimator.estimate(np.zeros((48, 64, 3), np.uint8), [[1, 2, 3]])
    assert estimator.estimate(np.zeros((48, 64, 3), np.uint8), np.zeros((0, 4))) == []
    with pytest.raises(MetadataError, match="plain.tflite"):
        PoseEstimator(models["no_metadata"])


def test_runtime_and_demo_import_no_tensorflow(models, videos, tmp_path):
    code = f"""
import runpy, sys
import kpose.runtime, kpose.runtime.demo
runpy.run_path({str(REPO / 'examples' / 'webcam_demo.py')!r})
from kpose.cli.main import main
rc = main(["demo", "--model", {str(models['tflite'])!r}, "--source", {str(videos[1].path)!r},
           "--no-window", "--max-frames", "3", "--poses", {str(tmp_path / 'p.jsonl')!r}])
assert rc == 0, rc
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
assert not heavy, heavy[:5]
print("clean")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0 and "clean" in result.stdout, result.stderr
    assert len(read_pose_log(tmp_path / "p.jsonl")) == 3


def test_bench_demo_times_every_stage_of_each_mode(models, capsys):
    from kpose.cli.main import main

    assert main(["bench", "demo", "--model", str(models["tflite"]), "--frames", "12", "--json"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out[out.index("{"):])
    rows = {(r["people_in_video"], r["mode"]): r for r in report["results"]}
    assert {"full", "track+full", "track+seed"} <= {mode for _, mode in rows}
    assert rows[(1, "track+seed")]["people"] == 1.0 and rows[(3, "track+seed")]["people"] == 3.0
    for row in rows.values():
        assert row["frames"] == 12 - 5 and row["fps"] > 0
        assert set(row["ms"]) == {"decode", "boxes", "crop", "infer", "map", "smooth", "draw", "overlay"}
