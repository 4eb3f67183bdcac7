"""The device install: fresh virtual environments with only what a device has (no
TensorFlow) run an exported int8 model and get the keypoints the main environment gets.

* ``pip install kpose[edge]``: numpy 2, OpenCV, ai-edge-litert;
* numpy < 2 with tflite-runtime 2.14 (its last release; Python <= 3.11) and OpenCV 4, which
  also has the HOG people detector.

Slow (each environment is a pip install, about a minute from the local mirror).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from kpose.benchmarks.demo import write_people_video
from kpose.runtime import PoseEstimator, VideoSource

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]

# Run inside the device environment: estimate on the image, print keypoints and facts as JSON.
PROBE = """
import json, sys
import cv2, numpy as np
from kpose.runtime import PoseEstimator, HogDetector
model, image, boxes = sys.argv[1], cv2.imread(sys.argv[2]), np.load(sys.argv[3])
estimator = PoseEstimator(model, threads=1)
people = estimator.estimate(image, boxes)
np.save(sys.argv[4], estimator.backend.run(estimator.crop(image, boxes)[0])["heatmaps"])
try:
    hog = HogDetector().boxes(image).tolist()
except Exception as exc:
    hog = str(exc)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
try:
    import tensorflow
    tf_installed = True
except ImportError:
    tf_installed = False
print(json.dumps({
    "interpreter": estimator.backend.interpreter, "numpy": np.__version__, "opencv": cv2.__version__,
    "keypoints": [p.keypoints.tolist() for p in people], "scores": [p.scores.tolist() for p in people],
    "hog": hog, "heavy": heavy, "tf_installed": tf_installed,
}))
"""


def _venv(root: Path, *requirements: str) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=300)
    python = root / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", *requirements], check=True, timeout=900, capture_output=True
    )
    return python


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """An exported int8 model of the quickstart's architecture (untrained), a frame with three
    people and their boxes, and the main environment's result."""
    pytest.importorskip("tensorflow")
    from kpose.data.synthetic import write_synthetic_coco
    from kpose.tasks import export_model
    from kpose.keypoints import get_schema
    from kpose.models import create_model

    import keras

    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("edge")
    data = write_synthetic_coco(root / "data", 16, split="val")
    model = create_model("srhead_mobilenetv3_small", get_schema("coco"), (128, 96), feature="F3", scale=1.0)
    path = export_model(
        model, root / "int8.tflite", quantize="int8", calibration=data.root, calibration_size=32, heatmaps=True
    )
    truth = write_people_video(root / "video.mp4", people=3, frames=1)
    with VideoSource(truth.path) as video:
        frame = video.read()
    cv2.imwrite(str(root / "frame.png"), frame)
    np.save(root / "boxes.npy", truth.boxes[0])
    estimator = PoseEstimator(path, threads=1)
    people = estimator.estimate(frame, truth.boxes[0])
    return {
        "heatmaps": estimator.backend.run(estimator.crop(frame, truth.boxes[0])[0])["heatmaps"],
        "args": [str(path), str(root / "frame.png"), str(root / "boxes.npy")],
        "keypoints": np.array([p.keypoints for p in people]),
        "scores": np.array([p.scores for p in people]),
        "frame": frame,
        "boxes": truth.boxes[0],
        "root": root,
    }


def _probe(python: Path, case: dict, name: str) -> dict:
    heatmaps = case["root"] / f"heatmaps-{name}.npy"
    result = subprocess.run(
        [str(python), "-c", PROBE, *case["args"], str(heatmaps)], capture_output=True, text=True, timeout=300, cwd="/"
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    out["heatmaps"] = np.load(heatmaps)
    return out


def _agreement(out: dict, case: dict) -> tuple[float, float, float]:
    """Against the main environment: (fraction of keypoints within 1 px, max score difference,
    max heatmap difference over the heatmaps' range)."""
    assert out["heavy"] == [] and not out["tf_installed"]
    keypoints, scores = np.array(out["keypoints"]), np.array(out["scores"])
    assert keypoints.shape == case["keypoints"].shape == (3, 17, 2)
    distance = np.linalg.norm(keypoints - case["keypoints"], axis=-1)
    heatmap_range = float(np.ptp(case["heatmaps"]))
    heatmap_diff = float(np.abs(out["heatmaps"] - case["heatmaps"]).max()) / heatmap_range
    return float(np.mean(distance <= 1.0)), float(np.abs(scores - case["scores"]).max()), heatmap_diff


def test_edge_extra_runs_int8_model_without_tensorflow(case, tmp_path_factory):
    python = _venv(tmp_path_factory.mktemp("venv-edge"), f"{REPO}[edge]")
    out = _probe(python, case, "edge")
    assert out["interpreter"] == "ai_edge_litert.interpreter" and out["numpy"].startswith("2.")
    assert _agreement(out, case) == (1.0, 0.0, 0.0)  # the same interpreter: bit for bit


def test_tflite_runtime_with_numpy_1_runs_int8_model(case, tmp_path_factory):
    python = _venv(
        tmp_path_factory.mktemp("venv-tflite-runtime"),
        "numpy<2", "opencv-python-headless<5", "tflite-runtime==2.14.0", str(REPO),
    )
    out = _probe(python, case, "tflite-runtime")
    assert out["interpreter"] == "tflite_runtime.interpreter" and out["numpy"].startswith("1.")
    # An older int8 kernel library rounds differently: heatmaps agree to a few quantization
    # steps and scores (peak values) exactly, but the untrained model's int8 heatmaps are
    # nearly flat with many exactly tied maxima, which the two break differently; a trained
    # model has one clear peak per keypoint.
    agree, score_diff, heatmap_diff = _agreement(out, case)
    print(
        f"tflite-runtime vs ai-edge-litert: {agree:.0%} of keypoints within 1 px, "
        f"scores within {score_diff:.3f}, heatmaps within {heatmap_diff:.1%} of their range"
    )
    assert heatmap_diff < 0.05 and score_diff < 0.05 and agree >= 0.5
    # OpenCV 4 still ships the HOG people detector: each of the three people is found
    hog = np.array(out["hog"], np.float32).reshape(-1, 4)
    from kpose.runtime.boxes import box_iou

    assert (box_iou(case["boxes"], hog).max(axis=1) > 0.3).all(), (hog, case["boxes"])
