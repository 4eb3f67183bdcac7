"""``kpose data synth``, ``kpose data show``, ``kpose bench data`` and the drawing helpers."""

import argparse
import json

import cv2
import numpy as np
import pytest

from kpose.cli import data_cmd
from kpose.runtime.drawing import draw_keypoints, make_grid
from kpose.keypoints import get_schema


def _parse(argv):
    parser = argparse.ArgumentParser(prog="kpose")
    data_cmd.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_synth_command(tmp_path, capsys):
    args = _parse(["data", "synth", "--out", str(tmp_path), "--images", "3", "--schema", "mpii", "--size", "240x320"])
    assert args.func(args) == 0
    assert "wrote 3 images" in capsys.readouterr().out
    data = json.loads((tmp_path / "annotations" / "person_keypoints_train.json").read_text())
    assert len(data["images"]) == 3 and len(data["categories"][0]["keypoints"]) == 16
    assert (tmp_path / "annotations" / "person_detections_train.json").is_file()
    assert cv2.imread(str(tmp_path / "images" / "train" / "000000000001.jpg")).shape == (240, 320, 3)


def test_size_arguments_are_checked():
    with pytest.raises(SystemExit):
        _parse(["data", "synth", "--out", "x", "--size", "480"])


def test_show_command_writes_a_grid(tmp_path):
    pytest.importorskip("tensorflow")
    synth = _parse(["data", "synth", "--out", str(tmp_path / "set"), "--images", "4"])
    synth.func(synth)
    out = tmp_path / "grid.png"
    args = _parse([
        "data", "show", "--annotations", str(tmp_path / "set" / "annotations" / "person_keypoints_train.json"),
        "--images", str(tmp_path / "set" / "images" / "train"), "--input-size", "64x48", "--count", "6",
        "--columns", "3", "--out", str(out),
    ])
    assert args.func(args) == 0
    assert cv2.imread(str(out)).shape == (2 * 64 + 2, 3 * 48 + 4, 3)


def test_bench_data_smoke(capsys):
    pytest.importorskip("tensorflow")
    from kpose.benchmarks import data as bench

    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    bench.add_arguments(parser)
    args = parser.parse_args([
        "--json", "--images", "4", "--sizes", "64x48", "--threads", "1", "--crops", "8", "--repeats", "1",
        "--batch-size", "4", "--variants", "decode+tf warp,kpose",
    ])
    assert bench.run(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["pipeline"] for r in report["results"]] == ["decode+tf warp", "kpose"]
    assert all(r["crops_per_s"] > 0 and r["input"] == "64x48" for r in report["results"])


def test_draw_keypoints_and_grid():
    schema = get_schema("coco")
    image = np.zeros((100, 80, 3), np.uint8)
    keypoints = np.stack([np.linspace(10, 70, 17), np.linspace(10, 90, 17)], axis=1)
    scores = np.ones(17)
    scores[3] = 0.0
    drawn = draw_keypoints(image, keypoints, schema, scores, threshold=0.5, radius=2)
    assert image.max() == 0  # the input is left alone
    x, y = keypoints[5].round().astype(int)
    np.testing.assert_array_equal(drawn[y, x], schema.colors[5])
    x, y = keypoints[3].round().astype(int)
    assert not (drawn[y, x] == schema.colors[3]).all()
    grid = make_grid([drawn] * 5, columns=2, gap=2)
    assert grid.shape == (3 * 100 + 4, 2 * 80 + 2, 3)
