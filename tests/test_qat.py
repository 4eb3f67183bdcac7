"""``kpose qat``: tf_keras twin + tfmot QAT in a subprocess, int8 TFLite with the export contract."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

keras = pytest.importorskip("keras")
if importlib.util.find_spec("tensorflow_model_optimization") is None:  # never import it here
    pytest.skip("tensorflow-model-optimization is not installed", allow_module_level=True)

from kpose.cli.main import main  # noqa: E402
from kpose.data.synthetic import write_synthetic_coco  # noqa: E402
from kpose.export.qat import QATError, run_qat  # noqa: E402
from kpose.metadata import read_metadata  # noqa: E402
from kpose.models import create_model  # noqa: E402
from kpose.runtime.backends import open_backend  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("qat")
    data = write_synthetic_coco(root / "data", 4, seed=1, image_size=(240, 320), split="train")
    (root / "config.yaml").write_text(
        "model: {name: srhead_mobilenetv3_small, input_size: [64, 64]}\n"
        f"data:\n  schema: coco\n  train: {{annotations: {data.annotation_file}, images: {data.image_dir}}}\n"
    )
    model = create_model("srhead_mobilenetv3_small", "coco", (64, 64), feature="F3", scale=1.0)
    model.save(root / "model.keras")
    return root


def test_qat_writes_an_int8_file_with_the_export_contract(run_dir, tmp_path):
    out = tmp_path / "qat.tflite"
    code = main([
        "qat", str(run_dir / "model.keras"), "--config", str(run_dir / "config.yaml"),
        "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "4", "-o", str(out),
    ])
    assert code == 0
    meta = read_metadata(out)
    assert meta.quantization == "qat" and meta.model_name == "srhead_mobilenetv3_small"
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(out)).get_signature_runner()
    assert runner.get_input_details()["image"]["dtype"] == np.uint8
    tensors = {d["name"]: d["dtype"] for d in Interpreter(model_path=str(out)).get_tensor_details()}
    assert any(dtype == np.int8 for dtype in tensors.values())  # really quantized
    result = open_backend(out).run(np.full((2, 64, 64, 3), 120, np.uint8))
    assert result["keypoints"].dtype == np.float32 and result["keypoints"].shape == (2, 17, 2)
    # tfmot's switch of tf.keras to tf_keras stayed in the subprocess
    import tensorflow as tf

    assert type(tf.keras.layers.Dense(1)).__module__.startswith("keras.")


def test_qat_errors_name_the_argument_and_write_nothing(run_dir, tmp_path):
    with pytest.raises(QATError, match="QAT writes a .tflite file"):
        run_qat(run_dir / "model.keras", run_dir / "config.yaml", tmp_path / "x.onnx")
    with pytest.raises(QATError, match="not a kpose model"):
        (tmp_path / "bad.keras").write_bytes(b"junk")
        run_qat(tmp_path / "bad.keras", run_dir / "config.yaml", tmp_path / "x.tflite")
    assert not (tmp_path / "x.tflite").exists()
