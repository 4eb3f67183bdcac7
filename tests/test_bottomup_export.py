"""Bottom-up export (NMS + top-k in the graph), parity with the Keras model and the numpy
candidates, the runtime estimator and the headless demo on a generated multi-person video."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from kpose.benchmarks.demo import write_people_video  # noqa: E402
from kpose.data.synthetic import render_image  # noqa: E402
from kpose.errors import KposeError  # noqa: E402
from kpose.tasks import export_model  # noqa: E402
from kpose.export.graph import ExportError  # noqa: E402
from kpose.geometry.crop_coordinates import keypoints_to_crop_pixels  # noqa: E402
from kpose.keypoints import get_schema  # noqa: E402
from kpose.models import create_model  # noqa: E402
from kpose.runtime import BottomUpEstimator, open_backend  # noqa: E402
from kpose.runtime.demo import DemoSettings, run_demo  # noqa: E402
from kpose.codecs.associative_embedding import find_candidates  # noqa: E402

from batchnorm_stats import set_batchnorm_statistics  # noqa: E402

SIZE = (128, 128)


@pytest.fixture(scope="module")
def model():
    """Random weights with BatchNorm statistics set from one batch of images, so the heatmaps
    have many distinct peaks; heatmaps and tags both read F5 context."""
    keras.utils.set_random_seed(0)
    model = create_model(
        "srhead_ae_mobilenetv3_small", "coco", SIZE, scale=0.5, deconv_filters=16, tag_context="F5",
        heatmap_context=True,
    )
    images = np.random.default_rng(0).uniform(0, 255, (4, *SIZE, 3)).astype(np.float32)
    return set_batchnorm_statistics(model, images)


class _Exported(dict):
    """format -> exported file, written on first use."""

    def __init__(self, model, root):
        super().__init__()
        self.model, self.root = model, root

    def __missing__(self, fmt: str):
        self[fmt] = export_model(self.model, self.root / f"m.{fmt}", format=fmt)
        return self[fmt]


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    return _Exported(model, tmp_path_factory.mktemp("bu_export"))


def sample_image() -> np.ndarray:
    image, _ = render_image(np.random.default_rng(5), get_schema("coco"), (240, 320))
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_exported_candidates_match_keras_and_numpy(model, exported, fmt) -> None:
    estimator = BottomUpEstimator(exported[fmt])
    batch, _ = estimator.prepare(cv2.cvtColor(sample_image(), cv2.COLOR_RGB2BGR))
    out = open_backend(exported[fmt]).run(batch)
    assert set(out) == {"candidates", "candidate_scores", "candidate_tags"}
    assert out["candidates"].shape == (1, 17, 30, 2) and out["candidate_tags"].shape == (1, 17, 30)
    keras_out = model.predict_on_batch(batch.astype(np.float32))
    expected = find_candidates(np.asarray(keras_out["heatmaps"][0]), np.asarray(keras_out["tags"][0]), stride=2)
    positive = expected.scores > 1e-3  # NMS zeros (and negative peaks) have no defined order
    assert positive.sum() > 17
    np.testing.assert_allclose(out["candidate_scores"][0][positive], expected.scores[positive], atol=1e-4)
    np.testing.assert_allclose(out["candidate_tags"][0][positive], expected.tags[..., 0][positive], atol=1e-4)
    coords = keypoints_to_crop_pixels(out["candidates"][0], SIZE)
    # a hundredth of an input pixel: the log-parabola adjust magnifies float32 rounding on low,
    # flat peaks (one candidate in ~1000 differs by 2e-3 px)
    np.testing.assert_allclose(coords[positive], expected.coords[positive], atol=1e-2)


def test_metadata_says_bottomup(exported) -> None:
    metadata = open_backend(exported["tflite"]).metadata
    assert metadata.decoder == {"name": "bottomup", "top_k": 30, "nms_kernel": 9}
    assert metadata.heatmap_size == (64, 64) and metadata.outputs[0] == "candidates"


def test_estimator_returns_people_in_frame_pixels(exported) -> None:
    frame = cv2.cvtColor(sample_image(), cv2.COLOR_RGB2BGR)
    people = BottomUpEstimator(exported["tflite"], detection_threshold=-1e9).estimate(frame)
    assert people, "every candidate above the threshold makes a person"
    for person in people:
        assert person.keypoints.shape == (17, 2) and person.scores.shape == (17,)
        # the letterbox maps the 128x128 input onto 320x320 frame pixels centred on the frame
        assert np.all(person.keypoints >= -0.5 - 96) and np.all(person.keypoints <= 320)
    with pytest.raises(KposeError, match="image_bgr"):
        BottomUpEstimator(exported["tflite"]).estimate(np.zeros((10, 10), np.uint8))


def test_demo_runs_headless_on_a_multi_person_video(exported, tmp_path) -> None:
    video = write_people_video(tmp_path / "people.mp4", people=3, frames=6, size=(240, 320))
    poses = tmp_path / "poses.jsonl"
    lines = []
    summary = run_demo(
        DemoSettings(model=exported["tflite"], source=str(video.path), window=False, save=tmp_path / "out.mp4",
                     poses=poses, max_frames=6),
        log=lines.append,
    )
    assert summary.frames == 6
    assert "bottom-up" in lines[0]
    records = [json.loads(line) for line in poses.read_text().splitlines()]
    assert len(records) == 6
    assert cv2.VideoCapture(str(tmp_path / "out.mp4")).get(cv2.CAP_PROP_FRAME_COUNT) == 6


def test_bad_export_options_fail_and_write_nothing(model, tmp_path) -> None:
    with pytest.raises(ExportError, match="flip_test apply to top-down models only"):
        export_model(model, tmp_path / "a.tflite", flip_test=True)
    with pytest.raises(ExportError, match="bottom-up models export as float32 or fp16 only"):
        export_model(model, tmp_path / "b.tflite", quantize="dynamic")
    assert not list(tmp_path.iterdir())


def test_a_top_down_file_is_refused(tmp_path) -> None:
    top_down = export_model(create_model("simplebaseline_mobilenetv3_small", "coco", (64, 64)), tmp_path / "t.tflite")
    with pytest.raises(KposeError, match="a top-down model"):
        BottomUpEstimator(top_down)


@pytest.fixture(scope="module")
def confident(model, tmp_path_factory):
    """The random model with its heatmaps scaled so that their peaks reach ~1 (above the
    grouping's detection threshold): saved, and exported as TFLite and ONNX."""
    scaled = keras.models.clone_model(model)
    scaled.set_weights(model.get_weights())
    batch = np.random.default_rng(1).uniform(0, 255, (2, *SIZE, 3)).astype(np.float32)
    peak = float(np.max(scaled.predict_on_batch(batch)["heatmaps"]))
    head = scaled.get_layer("sr_lkconv")
    head.set_weights([w / peak for w in head.get_weights()])
    root = tmp_path_factory.mktemp("bu_confident")
    scaled.save(root / "m.keras")
    return root / "m.keras", _Exported(scaled, root)


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_exported_file_evaluates_as_the_keras_model(confident, fmt, tmp_path) -> None:
    from kpose.data.synthetic import write_synthetic_coco
    from kpose.engine.config import DatasetConfig
    from kpose.tasks import evaluate

    keras_file, exported = confident
    val = write_synthetic_coco(tmp_path / "data", 3, seed=2, split="val", image_size=(160, 160))
    dataset = DatasetConfig(str(val.annotation_file), str(val.image_dir))
    schema = get_schema("coco")
    want = evaluate(keras_file, dataset, schema, flip_test=False, results_file=tmp_path / "keras.json")
    got = evaluate(exported[fmt], dataset, schema, results_file=tmp_path / "file.json")
    keras_people = json.loads((tmp_path / "keras.json").read_text())
    file_people = json.loads((tmp_path / "file.json").read_text())
    assert len(keras_people) > 3  # people on every image, grouped the same way
    assert [p["image_id"] for p in file_people] == [p["image_id"] for p in keras_people]
    np.testing.assert_allclose([p["keypoints"] for p in file_people], [p["keypoints"] for p in keras_people], atol=0.02)
    np.testing.assert_allclose([p["score"] for p in file_people], [p["score"] for p in keras_people], atol=1e-4)
    assert got == pytest.approx(want, abs=1e-3)
