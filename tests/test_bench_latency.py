"""``kpose bench latency`` on small exported files: the row fields and the XNNPACK op report."""

from __future__ import annotations

import json

import pytest

keras = pytest.importorskip("keras")

from kpose.cli.main import main  # noqa: E402
from kpose.tasks import export_model  # noqa: E402
from kpose.models import create_model  # noqa: E402


def test_latency_rows_for_tflite_and_onnx(tmp_path, capsys):
    model = create_model("simplebaseline_mobilenetv3_small", "coco", (64, 64))
    tflite = export_model(model, tmp_path / "m.tflite")
    onnx = export_model(model, tmp_path / "m.onnx", format="onnx")
    code = main(["bench", "latency", "--files", str(tflite), str(onnx), "--repeats", "3", "--json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["runtime"] for row in rows] == ["ai_edge_litert", "onnxruntime"]
    for row in rows:
        assert row["model"] == "simplebaseline_mobilenetv3_small"
        assert row["ms_1t"] > 0 and row["ms_2t"] > 0 and 0 < row["decoder_share"] < 1
    # the float network runs in XNNPACK; what stays outside is the decoder's integer bookkeeping
    outside = rows[0]["outside_xnnpack"]
    assert "CONV_2D" not in outside and "DEPTHWISE_CONV_2D" not in outside
    assert "ARG_MAX" in outside
