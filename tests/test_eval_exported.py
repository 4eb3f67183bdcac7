"""int8 calibration from a dataset folder, and exported files scored by the Keras evaluator's path."""

from __future__ import annotations

import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from kpose.cli.main import main  # noqa: E402
from kpose.data.synthetic import write_synthetic_coco  # noqa: E402
from kpose.engine.config import DatasetConfig  # noqa: E402
from kpose.tasks import evaluate  # noqa: E402
from kpose.export import ExportError  # noqa: E402
from kpose.tasks import export_model  # noqa: E402
from kpose.export.tflite import operator_names  # noqa: E402
from kpose.keypoints import get_schema  # noqa: E402
from kpose.metadata import read_metadata  # noqa: E402
from kpose.models import create_model  # noqa: E402
from kpose.runtime.backends import open_backend  # noqa: E402

INPUT_SIZE = (128, 96)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("exported")
    data = write_synthetic_coco(root / "data", 6, seed=3, image_size=(240, 320), split="val")
    keras.utils.set_random_seed(2)
    model = create_model("srhead_mobilenetv3_small", "coco", INPUT_SIZE, feature="F3", scale=1.0)
    layer = model.get_layer("sr_lkconv")
    layer.depthwise_kernel.assign(layer.depthwise_kernel * 300.0)  # peaked maps, as trained ones
    model.save(root / "model.keras")
    return root, data


def test_int8_from_dataset_folder_keeps_uint8_input_and_float_decoder(workdir, tmp_path):
    root, data = workdir
    path = export_model(
        root / "model.keras", tmp_path / "int8.tflite", quantize="int8", calibration=root / "data",
        calibration_size=8,
    )
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner()
    assert runner.get_input_details()["image"]["dtype"] == np.uint8
    outputs = runner.get_output_details()
    assert outputs["keypoints"]["dtype"] == np.float32 and outputs["scores"]["dtype"] == np.float32
    # the keypoints are exact (u + 0.5) / w grid values: the decoder tail is not quantized
    out = open_backend(path).run(np.full((1, *INPUT_SIZE, 3), 90, np.uint8))
    grid = out["keypoints"] * np.array([96, 128]) - 0.5
    np.testing.assert_allclose(grid, np.round(grid), atol=1e-3)
    ops = set(operator_names(path.read_bytes()))
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "ARG_MAX"} <= ops
    assert read_metadata(path).quantization == "int8"


def test_int8_keypoints_match_float_on_real_crops_and_big_tensors_stay_int8(workdir, tmp_path):
    from kpose.benchmarks.latency import ops_outside_xnnpack
    from kpose.export.calibration import calibration_crops, resolve_calibration

    root, _ = workdir
    model = root / "model.keras"
    float_path = export_model(model, tmp_path / "float.tflite")
    int8_path = export_model(model, tmp_path / "int8.tflite", quantize="int8", calibration=root / "data", calibration_size=8)
    crops = np.concatenate(list(calibration_crops(resolve_calibration(root / "data"), get_schema("coco"), INPUT_SIZE, 8)))
    want = open_backend(float_path).run(crops)["keypoints"] * np.array([96, 128])
    got = open_backend(int8_path).run(crops)["keypoints"] * np.array([96, 128])
    distance = np.linalg.norm(got - want, axis=-1)  # heatmap pixels (full resolution)
    assert np.median(distance) <= 1.0 and (distance <= 2.0).mean() >= 0.75
    # every op on a large tensor runs in int8 inside XNNPACK: only the decoder's integer
    # bookkeeping is left out, and the one DEQUANTIZE reads the gathered rows (K, w*K)
    assert set(ops_outside_xnnpack(int8_path)) <= {"ARG_MAX", "CAST", "GATHER", "PACK"}
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(int8_path))
    interpreter.allocate_tensors()
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()  # noqa: SLF001
    dequantized = [int(np.prod(tensors[op["inputs"][0]]["shape"])) for op in ops if op["op_name"] == "DEQUANTIZE"]
    assert dequantized == [17 * 96]  # one row of its own channel per keypoint: all that leaves int8
    assert not [op for op in ops if op["op_name"] in ("SUB", "MUL") and tensors[op["outputs"][0]]["shape"][1] == 128]


def test_calibration_folder_without_annotations_is_a_clear_error(workdir, tmp_path):
    root, _ = workdir
    with pytest.raises(ExportError, match="no COCO annotation file"):
        export_model(root / "model.keras", tmp_path / "x.tflite", quantize="int16x8", calibration=tmp_path)
    assert not (tmp_path / "x.tflite").exists()


def test_exported_file_is_scored_like_the_keras_model(workdir, tmp_path, capsys):
    root, data = workdir
    dataset = DatasetConfig(str(data.annotation_file), str(data.image_dir))
    schema = get_schema("coco")
    keras_results, file_results = tmp_path / "keras.json", tmp_path / "file.json"
    keras_stats = evaluate(
        root / "model.keras", dataset, schema, results_file=keras_results, flip_test=False, decoder="argmax"
    )
    exported = export_model(root / "model.keras", tmp_path / "pose.onnx", format="onnx", batch_size=None)
    file_stats = evaluate(exported, dataset, schema, results_file=file_results)
    assert file_stats.keys() == keras_stats.keys()
    a, b = json.loads(keras_results.read_text()), json.loads(file_results.read_text())
    assert len(a) == len(b) > 0
    ka = np.array([r["keypoints"] for r in a]).reshape(len(a), -1, 3)
    kb = np.array([r["keypoints"] for r in b]).reshape(len(b), -1, 3)
    # image pixels; one heatmap pixel is ~2 image pixels here: most joints agree exactly
    assert np.mean(np.abs(ka[..., :2] - kb[..., :2]).max(axis=-1) < 0.05) > 0.9
    # through the command line too
    code = main([
        "eval", "--model", str(exported), "--annotations", str(data.annotation_file),
        "--images", str(data.image_dir), "--json",
    ])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == pytest.approx(file_stats)
