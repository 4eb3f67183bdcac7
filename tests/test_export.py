"""Export to TFLite and ONNX: the file contract, parity with Keras, metadata, clear errors."""

from __future__ import annotations

import gc

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from kpose.codecs import decoders  # noqa: E402
from kpose.export import ExportError  # noqa: E402
from kpose.tasks import export_model  # noqa: E402
from kpose.export.tflite import operator_names  # noqa: E402
from kpose.keypoints import get_schema  # noqa: E402
from kpose.metadata import read_metadata  # noqa: E402
from kpose.models import create_model, inference_model  # noqa: E402
from kpose.runtime.backends import open_backend  # noqa: E402

INPUT_SIZE = (128, 96)


@pytest.fixture(scope="module")
def model() -> keras.Model:
    keras.utils.set_random_seed(1)
    built = create_model("srhead_mobilenetv3_small", "coco", INPUT_SIZE, feature="F3", scale=1.0)
    # Make the heatmaps peaked, as a trained model's are: the large-kernel conv's N(0, 0.001)
    # init leaves near-ties that float rounding could flip.
    layer = built.get_layer("sr_lkconv")
    layer.depthwise_kernel.assign(layer.depthwise_kernel * 300.0)
    return built


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (2, 16, 12, 3)).astype(np.uint8)
    return np.repeat(np.repeat(base, 8, axis=1), 8, axis=2)  # smooth-ish images, (2, 128, 96, 3)


def _keras_reference(model: keras.Model, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    heatmaps = np.asarray(inference_model(model)(crops.astype(np.float32))["heatmaps"])
    coords, scores = decoders.decode(heatmaps, "argmax")
    return heatmaps, coords, scores


def _clear_peaks(heatmaps: np.ndarray, margin: float) -> np.ndarray:
    """(B, K) True where the maximum beats the runner-up by ``margin`` of the peak."""
    flat = np.sort(heatmaps.transpose(0, 3, 1, 2).reshape(*heatmaps.shape[:1], heatmaps.shape[3], -1), axis=-1)
    return flat[..., -1] - flat[..., -2] > margin * np.abs(flat[..., -1])


@pytest.mark.parametrize("fmt, suffix", [("tflite", ".tflite"), ("onnx", ".onnx")])
def test_float_export_matches_keras(model, crops, tmp_path, fmt, suffix):
    path = export_model(model, tmp_path / f"pose{suffix}", format=fmt, heatmaps=True, batch_size=None)
    backend = open_backend(path)
    out = backend.run(crops)
    heatmaps, coords, scores = _keras_reference(model, crops)
    assert set(out) == {"keypoints", "scores", "heatmaps"}
    assert all(value.dtype == np.float32 for value in out.values())
    np.testing.assert_allclose(out["heatmaps"], heatmaps, atol=1e-4 * np.abs(heatmaps).max())
    # keypoints: normalized to the crop, (u + 0.5) / w; compare in heatmap pixels
    h, w = heatmaps.shape[1:3]
    exported = out["keypoints"] * np.array([w, h]) - 0.5
    clear = _clear_peaks(heatmaps, 1e-3)
    assert clear.mean() > 0.8
    assert np.abs(exported - coords)[clear].max() <= 0.05
    np.testing.assert_allclose(out["scores"], scores, rtol=1e-3, atol=1e-6)
    meta = read_metadata(path)
    assert meta.model_name == "srhead_mobilenetv3_small"
    assert meta.keypoint_schema == get_schema("coco")
    assert meta.input_size == INPUT_SIZE and meta.heatmap_size == (128, 96)
    assert meta.batch_size is None and meta.quantization == "none"
    assert meta.normalization["mean"] == list(model.get_layer("normalize").mean)
    assert meta.decoder == {"name": "maxpool", "pool": [1, 96], "flip_test": False, "quarter_shift": False}


def test_onnx_conversion_frees_the_graph_copies_it_drops(model, tmp_path, monkeypatch):
    # tf2onnx deep-copies the whole graph, weights included, for each optimizer pass; the copies
    # it drops are reference cycles that stayed alive (24 GB for an 80M-parameter model).
    tf2onnx_graph = pytest.importorskip("tf2onnx.graph")
    live = []
    rewrite = tf2onnx_graph.Graph.update_proto

    def counting(graph, external_tensor_storage=None):
        live.append(sum(isinstance(o, tf2onnx_graph.Graph) for o in gc.get_objects()))
        rewrite(graph, external_tensor_storage)

    monkeypatch.setattr(tf2onnx_graph.Graph, "update_proto", counting)
    export_model(model, tmp_path / "m.onnx", format="onnx")
    assert len(live) > 20  # one count per pass
    assert max(live) <= 8  # bounded; without the collection one more copy per pass (18 here)
    assert tf2onnx_graph.Graph.update_proto is counting and gc.get_freeze_count() == 0


def test_fixed_batch_and_in_graph_flip_and_quarter(model, crops, tmp_path):
    path = export_model(model, tmp_path / "flip.tflite", batch_size=2, flip_test=True, quarter_shift=True)
    out = open_backend(path).run(crops)
    network = inference_model(model)
    plain = np.asarray(network(crops.astype(np.float32))["heatmaps"])
    mirrored = np.asarray(network(crops[:, :, ::-1].astype(np.float32))["heatmaps"])
    averaged = decoders.flip_average(plain, mirrored, get_schema("coco").flip_index)
    coords, _ = decoders.decode(averaged, "quarter")
    h, w = averaged.shape[1:3]
    exported = out["keypoints"] * np.array([w, h]) - 0.5
    clear = _clear_peaks(averaged, 1e-3)
    assert np.abs(exported - coords)[clear].max() <= 0.05
    meta = read_metadata(path)
    assert meta.batch_size == 2 and meta.decoder["flip_test"] and meta.decoder["quarter_shift"]


@pytest.mark.parametrize("quantize", ["fp16", "dynamic"])
def test_uncalibrated_flavours_run_with_builtin_ops(model, crops, tmp_path, quantize):
    path = export_model(model, tmp_path / f"{quantize}.tflite", quantize=quantize)
    out = open_backend(path).run(crops)
    assert out["keypoints"].shape == (2, 17, 2) and out["keypoints"].dtype == np.float32
    assert ((out["keypoints"] > 0) & (out["keypoints"] < 1)).all()
    assert read_metadata(path).quantization == quantize
    assert not [op for op in operator_names(path.read_bytes()) if op.startswith("Flex") or op == "CUSTOM"]


@pytest.mark.parametrize("bgr, size, strides, padding", [(False, (17, 12), 2, "same"), (True, (16, 12), 1, "same"), (False, (16, 13), 2, "valid")])
def test_normalization_is_folded_into_the_first_conv_exactly(bgr, size, strides, padding):
    from kpose.export.layers import RawPixelConv2D, for_interpreters
    from kpose.models.layers import ImageNormalization

    image = keras.Input((*size, 3))
    x = ImageNormalization([120.0, 110.0, 100.0], [50.0, 60.0, 70.0], bgr=bgr, name="normalize")(image)
    inner = keras.Input(x.shape[1:])
    y = keras.layers.Conv2D(8, 3, strides=strides, padding=padding, activation="relu", name="stem")(inner)
    y = keras.layers.Conv2D(4, 1)(y)
    network = keras.Model(image, keras.Model(inner, y, name="backbone")(x))
    network.get_layer("backbone").get_layer("stem").bias.assign(np.linspace(-1.0, 1.0, 8))
    rewritten = for_interpreters(network)
    assert isinstance(rewritten.get_layer("backbone").get_layer("stem"), RawPixelConv2D)
    assert not any(isinstance(layer, ImageNormalization) for layer in rewritten.layers)
    pixels = np.random.default_rng(0).integers(0, 256, (2, *size, 3)).astype(np.float32)
    want = np.asarray(network(pixels))
    np.testing.assert_allclose(np.asarray(rewritten(pixels)), want, atol=1e-5 * np.abs(want).max())


def test_mixed_precision_model_is_rebuilt_in_float32(tmp_path, crops):
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        mixed = create_model("simplebaseline_mobilenetv3_small", "coco", INPUT_SIZE)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    path = export_model(mixed, tmp_path / "mixed.tflite", heatmaps=True)
    from kpose.export.tflite import operator_names as ops

    assert "CAST" in ops(path.read_bytes())  # the uint8 input cast only
    out = open_backend(path).run(crops[:1])
    assert np.isfinite(out["heatmaps"]).all()


def test_bad_inputs_are_clear_errors_and_write_nothing(model, tmp_path):
    out = tmp_path / "x.tflite"
    with pytest.raises(ExportError, match="unknown --quantize 'int4'"):
        export_model(model, out, quantize="int4")
    with pytest.raises(ExportError, match="unknown --format 'coreml'"):
        export_model(model, out, format="coreml")
    with pytest.raises(ExportError, match="int8 needs calibration"):
        export_model(model, out, quantize="int8")
    with pytest.raises(ExportError, match="must end in .onnx"):
        export_model(model, out, format="onnx")
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ExportError, match="junk.keras: not a kpose model"):
        export_model(junk, out)
    plain = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Conv2D(17, 1)])
    with pytest.raises(ExportError, match="no 'normalize' layer"):
        export_model(plain, out)
    assert list(tmp_path.iterdir()) == [junk]


def test_an_op_without_a_builtin_names_the_op_and_layer_and_writes_nothing(tmp_path):
    tf = pytest.importorskip("tensorflow")
    from kpose.models.layers import ImageNormalization

    class Bessel(keras.layers.Layer):
        def call(self, x):
            return tf.math.special.bessel_i0e(x)  # no TFLite builtin

    image = keras.Input((64, 64, 3), name="image")
    x = ImageNormalization([0, 0, 0], [1, 1, 1], name="normalize")(image)
    x = Bessel(name="odd_layer")(keras.layers.Conv2D(17, 1)(x))
    model = keras.Model(image, {"heatmaps": x}, name="odd")
    with pytest.raises(ExportError, match=r"op BesselI0e \(layer odd_layer\) has no TFLite builtin"):
        export_model(model, tmp_path / "odd.tflite")
    assert list(tmp_path.iterdir()) == []
