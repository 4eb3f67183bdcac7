"""The head-comparison experiment runs end to end at toy scale."""

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

SCRIPT = Path(__file__).resolve().parents[1] / "training" / "experiments" / "compare_heads.py"


def test_compare_heads_trains_each_head_and_reports(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("compare_heads", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = ["--out", str(tmp_path), "--epochs", "1", "--train-images", "4", "--val-images", "2",
            "--batch-size", "4", "--input-size", "64", "64"]
    assert module.main(args) == 0
    rows = json.loads((tmp_path / "compare_heads.json").read_text())
    assert [r["head"] for r in rows] == ["simple", "srhead", "srpose"]
    assert all({"AP", "AP75", "AP95", "PCK@0.1"} <= set(r) for r in rows)
    assert "srhead_mobilenetv3_large" in capsys.readouterr().out
