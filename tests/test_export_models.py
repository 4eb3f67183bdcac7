"""Every registered model exports to TFLite and ONNX, loads in its runtime and carries metadata."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from kpose.data.synthetic import write_synthetic_coco  # noqa: E402
from kpose.export import QUANTIZATIONS  # noqa: E402
from kpose.tasks import export_model  # noqa: E402
from kpose.metadata import read_metadata  # noqa: E402
from kpose.models import create_model, list_models  # noqa: E402
from kpose.runtime.backends import open_backend  # noqa: E402

SMALL = (64, 64)


def _export_and_run(model: keras.Model, path, **options) -> dict[str, np.ndarray]:
    export_model(model, path, **options)
    out = open_backend(path).run(np.full((1, *model.input.shape[1:3], 3), 100, np.uint8))
    assert read_metadata(path).model_name == model.name
    assert out["keypoints"].shape == (1, 17, 2) and np.isfinite(out["keypoints"]).all()
    return out


def test_srpose_with_gelu_exports_to_both_formats(tmp_path):
    model = create_model("srpose_mobilenetv3_small", "coco", SMALL)
    tflite = _export_and_run(model, tmp_path / "m.tflite")
    onnx = _export_and_run(model, tmp_path / "m.onnx", format="onnx")
    np.testing.assert_allclose(tflite["scores"], onnx["scores"], rtol=1e-3, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models("topdown"))
def test_every_model_exports_float_tflite_and_onnx(name, tmp_path):
    model = create_model(name, "coco", SMALL)
    _export_and_run(model, tmp_path / "m.tflite")
    _export_and_run(model, tmp_path / "m.onnx", format="onnx", opset=18)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["simplebaseline_resnet50", "srpose_hrnet_w32"])
def test_large_models_export_in_every_flavour(name, tmp_path):
    data = write_synthetic_coco(tmp_path / "data", 4, seed=0, split="train")
    model = create_model(name, "coco", (256, 192))
    for quantize in QUANTIZATIONS:
        _export_and_run(model, tmp_path / f"{quantize}.tflite", quantize=quantize, calibration=data.root, calibration_size=8)
    _export_and_run(model, tmp_path / "m.onnx", format="onnx")
