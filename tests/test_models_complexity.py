"""Parameter and MAC counts against the papers (ResNet-50 / HRNet-W32 at 256x192, COCO), the
counting rules, and ``kpose models``."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from kpose.cli import models_cmd  # noqa: E402
from kpose.models import count_macs, count_params, get_backbone, profile_model  # noqa: E402
from kpose.models.complexity import profile_models  # noqa: E402
from kpose.models.factory import assemble_model, backbone_levels  # noqa: E402

INPUT_SIZE = (256, 192)
# PyTorch (torchvision / MMPose) parameter counts of the papers' backbones.
TORCH_RESNET50 = 23_508_032
TORCH_HRNET_W32 = 28_535_552  # 28,536,113 for the pose model, minus its 1x1 head (561)


def rel(actual: float, expected: float) -> float:
    return abs(actual - expected) / expected


@pytest.fixture(scope="module")
def resnet50() -> keras.Model:
    return get_backbone("resnet50").build(INPUT_SIZE)


@pytest.fixture(scope="module")
def hrnet_w32() -> dict[str, keras.Model]:
    """HRNet-W32 as SRPose reads it (all four outputs) and as the 1x1 / SR heads do (F2)."""
    spec = get_backbone("hrnet_w32")
    return {
        name: spec.build(INPUT_SIZE, backbone_levels(name))
        for name in ("srpose_hrnet_w32", "simplebaseline_hrnet_w32")
    }


# Table 1 of the SRPose paper: (other params M, GMACs); backbone 23.51M.
@pytest.mark.parametrize(
    "name, other, gmacs",
    [
        ("simplebaseline_resnet50", 10.49, 5.46),
        ("srhead_resnet50", 10.59, 5.77),
        ("srpose_resnet50", 1.29, 4.61),
    ],
)
def test_resnet50_matches_paper(
    resnet50: keras.Model, name: str, other: float, gmacs: float
) -> None:
    profile = profile_model(assemble_model(name, resnet50))
    assert rel(profile.other_params / 1e6, other) < 0.01
    assert rel(profile.gmacs, gmacs) < 0.03
    assert rel(profile.backbone_params / 1e6, 23.51) < 0.01


# Table 3 of the SRPose paper: total parameters of the inference graph for output scale k.
@pytest.mark.parametrize("scale, total", [(0.25, 24.71), (0.5, 24.73), (1, 24.80), (2, 25.06)])
def test_srpose_total_params_by_scale(resnet50: keras.Model, scale: float, total: float) -> None:
    profile = profile_model(assemble_model("srpose_resnet50", resnet50, scale=scale))
    assert rel(profile.total_params / 1e6, total) < 0.01
    assert profile.heatmap_size == (int(256 * scale), int(192 * scale))


def test_hrnet_w32_matches_paper(hrnet_w32) -> None:
    srpose = profile_model(assemble_model("srpose_hrnet_w32", hrnet_w32["srpose_hrnet_w32"]))
    assert rel(srpose.other_params / 1e6, 0.65) < 0.01
    assert rel(srpose.backbone_params / 1e6, 29.30) < 0.01
    assert rel(srpose.gmacs, 8.28) < 0.03
    stride4 = hrnet_w32["simplebaseline_hrnet_w32"]
    simple = profile_model(assemble_model("simplebaseline_hrnet_w32", stride4))
    assert simple.backbone_params == TORCH_HRNET_W32
    assert rel(simple.gmacs, 7.70) < 0.03
    srhead = profile_model(assemble_model("srhead_hrnet_w32", stride4))
    assert rel(srhead.other_params / 1e6, 0.09) < 0.05 and rel(srhead.gmacs, 7.98) < 0.03


def test_keras_resnet50_differs_from_pytorch_by_its_conv_biases(resnet50: keras.Model) -> None:
    biases = sum(
        int(np.prod(layer.bias.shape))
        for layer in resnet50.layers
        if isinstance(layer, keras.layers.Conv2D) and layer.use_bias
    )
    assert biases == 26_560
    assert count_params(resnet50) == TORCH_RESNET50 + biases


def test_resnet_downsamples_in_the_3x3_conv(resnet50: keras.Model) -> None:
    for stage in (3, 4, 5):
        assert resnet50.get_layer(f"conv{stage}_block1_1_conv").strides == (1, 1)
        assert resnet50.get_layer(f"conv{stage}_block1_2_conv").strides == (2, 2)
        assert resnet50.get_layer(f"conv{stage}_block1_0_conv").strides == (2, 2)


def test_counting_rules() -> None:
    x = keras.Input((8, 6, 4))
    y = keras.layers.Conv2D(5, 3, padding="same", use_bias=False)(x)  # 48 * 5 * 36 = 8640
    y = keras.layers.BatchNormalization()(y)  # 2 * 240 = 480; 10 params (not 20)
    y = keras.layers.ReLU()(y)  # 240
    y = keras.layers.Conv2DTranspose(2, 4, strides=2, padding="same")(y)  # 48*16*5*2 + 384 = 8064
    y = keras.layers.DepthwiseConv2D(3, padding="same")(y)  # 384 * 9 + 384 = 3840
    y = keras.layers.Conv2D(4, 1, groups=2)(y)  # 768 * 1 + 768 = 1536
    model = keras.Model(x, y)
    assert count_macs(model) == 8640 + 480 + 240 + 8064 + 3840 + 1536
    assert count_params(model) == 180 + 10 + (160 + 2) + (18 + 2) + (4 + 4)


def run_cli(argv: list[str], capsys) -> str:
    parser = argparse.ArgumentParser()
    models_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["models", *argv])
    assert args.func(args) == 0
    return capsys.readouterr().out


def test_cli_json_and_table(capsys) -> None:
    names = ["srhead_mobilenetv3_small", "srpose_mobilenetv3_small"]
    rows = json.loads(run_cli([*names, "--json"], capsys))
    assert [row["name"] for row in rows] == names
    for row in rows:
        assert set(row) == {
            "name", "input_size", "heatmap_size", "backbone_params", "other_params", "gmacs"
        }
        assert row["input_size"] == [256, 192] and row["backbone_params"] > 0 and row["gmacs"] > 0
    assert rows[1]["heatmap_size"] == [256, 192]
    table = run_cli([names[1], "--input-size", "128", "96"], capsys).splitlines()
    assert table[0].split() == ["model", "input", "heatmap", "backbone", "other", "total", "GMACs"]
    assert table[1].split()[:3] == [names[1], "128x96", "128x96"]


@pytest.mark.slow
def test_full_model_table() -> None:
    profiles = {p.name: p for p in profile_models()}
    paper = {
        "simplebaseline_resnet50": (10.49, 5.46),
        "srhead_resnet50": (10.59, 5.77),
        "srpose_resnet50": (1.29, 4.61),
        "srpose_hrnet_w32": (0.65, 8.28),
    }
    for name, (other, gmacs) in paper.items():
        assert rel(profiles[name].other_params / 1e6, other) < 0.01, name
        assert rel(profiles[name].gmacs, gmacs) < 0.03, name
    for profile in profiles.values():
        assert profile.backbone_params > 0 and profile.other_params > 0 and profile.gmacs > 0
