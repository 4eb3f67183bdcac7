"""``kpose.load`` and ``kpose predict`` on small real models: a top-down model as ``.keras``,
``.tflite`` and ``.onnx``, a bottom-up one as ``.keras`` and ``.tflite``, run on synthetic
JPEGs, a folder with a corrupt image and a short video."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

import kpose  # noqa: E402
from kpose.benchmarks.demo import write_people_video  # noqa: E402
from kpose.cli.main import main  # noqa: E402
from kpose.data.synthetic import render_image  # noqa: E402
from kpose.errors import KposeError  # noqa: E402
from kpose.keypoints import get_schema  # noqa: E402
from kpose.models import create_model  # noqa: E402
from kpose.runtime import BottomUpEstimator, HogDetector, PoseEstimator  # noqa: E402
from kpose.tasks import export_model  # noqa: E402

from batchnorm_stats import set_batchnorm_statistics  # noqa: E402
from runtime_models import oracle_function, write_tflite  # noqa: E402

SIZE = (64, 64)
K = 17
IMAGE_SIZE = (240, 320)  # (H, W) of the test images


def _model(name: str) -> keras.Model:
    """Random weights with BatchNorm statistics from one batch, so the heatmaps have distinct peaks."""
    keras.utils.set_random_seed(0)
    images = np.random.default_rng(0).uniform(0, 255, (4, *SIZE, 3)).astype(np.float32)
    return set_batchnorm_statistics(create_model(name, "coco", SIZE), images)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """``topdown.keras|tflite|onnx`` and ``bottomup.keras|tflite`` by file name."""
    root = tmp_path_factory.mktemp("predict_models")
    topdown, bottomup = _model("simplebaseline_mobilenetv3_small"), _model("ae_mobilenetv3_small")
    topdown.save(root / "topdown.keras")
    bottomup.save(root / "bottomup.keras")
    export_model(topdown, root / "topdown.tflite")
    export_model(topdown, root / "topdown.onnx", format="onnx")
    export_model(bottomup, root / "bottomup.tflite")
    return {path.name: path for path in root.iterdir()}


class _Loaded(dict):
    """file name -> ``kpose.load`` of that file, loaded on first use."""

    def __init__(self, models: dict[str, Path]):
        super().__init__()
        self.models = models

    def __missing__(self, name: str):
        self[name] = kpose.load(self.models[name])
        return self[name]


@pytest.fixture(scope="module")
def loaded(models) -> _Loaded:
    return _Loaded(models)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """``(240, 320, 3)`` uint8 BGR synthetic people, as decoded from a JPEG."""
    rendered, _ = render_image(np.random.default_rng(3), get_schema("coco"), IMAGE_SIZE)
    return cv2.imdecode(cv2.imencode(".jpg", rendered)[1], cv2.IMREAD_COLOR)


@pytest.fixture(scope="module")
def jpeg(image, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("predict_image") / "people.jpg"
    assert cv2.imwrite(str(path), image)
    return path


def run_predict(capsys, *argv) -> tuple[int, list[str], list[str]]:
    """``kpose predict ARGV``: exit code, stdout lines, stderr lines."""
    code = main(["predict", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def check_people(line: dict) -> None:
    for person in line["people"]:
        assert len(person["keypoints"]) == K and all(len(row) == 3 for row in person["keypoints"])
        assert len(person["box"]) == 4 and 0.0 <= person["score"] <= 1.0


@pytest.mark.parametrize(
    "name, cls",
    [("topdown.keras", PoseEstimator), ("topdown.tflite", PoseEstimator), ("topdown.onnx", PoseEstimator),
     ("bottomup.keras", BottomUpEstimator), ("bottomup.tflite", BottomUpEstimator)],
)
def test_load_gives_the_estimator_of_each_file(loaded, image, name, cls) -> None:
    estimator = loaded[name]
    assert type(estimator) is cls
    assert estimator.input_size == SIZE and estimator.schema.num_keypoints == K
    for person in estimator.estimate(image):
        assert person.keypoints.shape == (K, 2) and person.scores.shape == (K,)


def test_keras_and_its_tflite_give_the_same_keypoints(loaded, image) -> None:
    boxes = np.array([[-0.5, -0.5, IMAGE_SIZE[1], IMAGE_SIZE[0]], [40, 20, 120, 180]], np.float32)
    keras_people, tflite_people = (loaded[n].estimate(image, boxes) for n in ("topdown.keras", "topdown.tflite"))
    assert len(keras_people) == len(tflite_people) == 2
    for a, b in zip(keras_people, tflite_people):
        np.testing.assert_allclose(a.keypoints, b.keypoints, atol=0.01)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
    keras_people, tflite_people = (loaded[n].estimate(image) for n in ("bottomup.keras", "bottomup.tflite"))
    assert len(keras_people) == len(tflite_people) > 0
    for a, b in zip(keras_people, tflite_people):
        np.testing.assert_allclose(a.keypoints, b.keypoints, atol=0.01)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)


def test_exported_files_load_and_run_without_tensorflow(models, jpeg) -> None:
    script = (
        "import sys, cv2, kpose\n"
        "image = cv2.imread(sys.argv[1])\n"
        "for path in sys.argv[2:]:\n"
        "    estimator = kpose.load(path, threads=1)\n"
        "    print(type(estimator).__name__, len(estimator.estimate(image)) >= 0)\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    names = ("topdown.tflite", "topdown.onnx", "bottomup.tflite")
    out = subprocess.run(
        [sys.executable, "-c", script, str(jpeg), *(str(models[n]) for n in names)],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    assert out == ["PoseEstimator True", "PoseEstimator True", "BottomUpEstimator True", "False False"]


@pytest.mark.parametrize(
    "name, message",
    [("model.pt", "not a kpose model file"), ("missing.tflite", "not found"), ("garbage.tflite", "cannot read"),
     ("garbage.onnx", "cannot read"), ("plain.tflite", "no kpose metadata")],
)
def test_load_names_the_file_it_cannot_use(tmp_path, name, message) -> None:
    path = tmp_path / name
    if name == "plain.tflite":  # a real model, without kpose metadata
        write_tflite(path, oracle_function(1, (16, 16)), None)
    elif name != "missing.tflite":
        path.write_bytes(b"not a model at all")
    with pytest.raises(KposeError, match=message) as error:
        kpose.load(path)
    assert str(path) in str(error.value)


def test_predict_image_json_and_drawing(models, jpeg, tmp_path, capsys) -> None:
    code, out, err = run_predict(capsys, jpeg, "--model", models["topdown.tflite"], "--json", "--save", tmp_path / "drawn.jpg")
    assert code == 0
    assert len(out) == 1
    line = json.loads(out[0])
    assert line["source"] == str(jpeg) and "frame" not in line and len(line["people"]) == 1
    check_people(line)
    assert line["people"][0]["box"] == [-0.5, -0.5, IMAGE_SIZE[1], IMAGE_SIZE[0]]
    # the JSON's keypoints are the estimator's, rounded
    person = kpose.load(models["topdown.tflite"]).estimate(cv2.imread(str(jpeg)))[0]
    np.testing.assert_allclose(np.array(line["people"][0]["keypoints"])[:, :2], person.keypoints, atol=0.006)
    assert err[-1].startswith("kpose predict: 1 image, 1 person")
    drawn = cv2.imread(str(tmp_path / "drawn.jpg"))
    assert drawn is not None and drawn.shape == (*IMAGE_SIZE, 3)


def test_predict_text_summary_with_hog_boxes(models, jpeg, image, tmp_path, capsys) -> None:
    code, out, err = run_predict(capsys, jpeg, "--model", models["topdown.onnx"], "--boxes", "hog", "--save", tmp_path)
    assert code == 0 and not err
    found = len(HogDetector().boxes(image))
    assert out[0].startswith(f"{jpeg}: {found} {'person' if found == 1 else 'people'}")
    assert out[-1].startswith("kpose predict: 1 image")
    assert cv2.imread(str(tmp_path / jpeg.name)).shape == (*IMAGE_SIZE, 3)


def test_predict_folder_skips_and_counts_a_corrupt_image(models, image, tmp_path, capsys) -> None:
    folder, drawn = tmp_path / "images", tmp_path / "drawn"
    folder.mkdir()
    cv2.imwrite(str(folder / "b.png"), image)
    cv2.imwrite(str(folder / "a.jpg"), image[:, ::-1])
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (folder / "notes.txt").write_text("not an image")
    code, out, err = run_predict(capsys, folder, "--model", models["bottomup.keras"], "--json", "--save", drawn)
    assert code == 0
    lines = [json.loads(text) for text in out]
    assert [line["source"] for line in lines] == [str(folder / "a.jpg"), str(folder / "b.png")]
    for line in lines:
        assert line["people"]
        check_people(line)
    assert any("skipped" in text and "broken.jpg" in text for text in err)
    assert "2 images" in err[-1] and "1 skipped" in err[-1]
    assert sorted(p.name for p in drawn.iterdir()) == ["a.jpg", "b.png"]
    assert all(cv2.imread(str(p)).shape == (*IMAGE_SIZE, 3) for p in drawn.iterdir())


def test_predict_video_json_and_drawn_video(models, tmp_path, capsys) -> None:
    video = tmp_path / "people.mp4"
    write_people_video(video, people=2, frames=4, size=IMAGE_SIZE)
    code, out, err = run_predict(
        capsys, video, "--model", models["topdown.tflite"], "--json", "--save", tmp_path / "drawn.mp4"
    )
    assert code == 0
    lines = [json.loads(text) for text in out]
    assert [(line["source"], line["frame"]) for line in lines] == [(str(video), i) for i in range(4)]
    for line in lines:
        assert len(line["people"]) == 1
        check_people(line)
    assert err[-1].startswith("kpose predict: 4 frames, 4 people")
    capture = cv2.VideoCapture(str(tmp_path / "drawn.mp4"))
    frames = []
    while (frame := capture.read()[1]) is not None:
        frames.append(frame)
    capture.release()
    assert len(frames) == 4 and frames[0].shape == (*IMAGE_SIZE, 3)


@pytest.mark.parametrize("model", ["missing.tflite", "model.h5"])
def test_predict_bad_model_is_one_line_exit_2(jpeg, tmp_path, capsys, model) -> None:
    code, out, err = run_predict(capsys, jpeg, "--model", tmp_path / model)
    assert code == 2 and not out
    assert len(err) == 1 and err[0].startswith("kpose predict: error:") and str(tmp_path / model) in err[0]
