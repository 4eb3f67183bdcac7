"""``kpose bench codec`` on a small generated COCO-format file."""

import json

import pytest

pytest.importorskip("tensorflow")

from kpose.cli.main import main  # noqa: E402
from kpose.data.synthetic import write_synthetic_coco  # noqa: E402


def test_codec_bench_oracle_and_speed(tmp_path, capsys):
    synth = write_synthetic_coco(tmp_path, 6, split="val")
    args = ["bench", "codec", "--annotations", str(synth.annotation_file), "--strides", "4", "1", "--repeats", "1", "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {(r["stride"], r["decoder"].split()[0]): r for r in report["oracle"]}
    for stride in (4, 1):
        argmax, maxpool, dark = rows[(stride, "argmax")], rows[(stride, "maxpool")], rows[(stride, "dark")]
        assert {k: v for k, v in maxpool.items() if k != "decoder"} == {k: v for k, v in argmax.items() if k != "decoder"}
        assert dark["err_px"] < 0.05 < argmax["err_px"]
        assert 0.5 < dark["AP"] <= 1.0 and dark["AP95"] >= argmax["AP95"]
    assert rows[(1, "argmax")]["err_px"] < rows[(4, "argmax")]["err_px"]  # finer maps, smaller error
    decoders = {(r["heatmaps"], r["batch"], r["decoder"]) for r in report["speed"]}
    assert ("17x256x192", 32, "maxpool k=32") in decoders and ("17x64x48", 1, "argmax") in decoders
    assert all(r["tf_graph_ms"] > 0 and r["numpy_ms"] > 0 for r in report["speed"])
