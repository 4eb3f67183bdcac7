"""Bottom-up models (SR head + associative embedding): names, shapes, serialization and the
paper's parameter / MAC counts at 512x512 (SR paper, Table 1 "Bottom-up methods")."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from kpose.cli import models_cmd  # noqa: E402
from kpose.errors import ConfigError  # noqa: E402
from kpose.engine.init_weights import transfer_weights  # noqa: E402
from kpose.models import create_model, get_backbone, list_models, parse_model_name  # noqa: E402
from kpose.models import profile_model  # noqa: E402
from kpose.models.factory import assemble_model, backbone_levels  # noqa: E402

from batchnorm_stats import set_batchnorm_statistics  # noqa: E402

BOTTOMUP_SIZE = (512, 512)


def rel(actual: float, expected: float) -> float:
    return abs(actual - expected) / expected


def test_bottomup_names_parse_and_list() -> None:
    bottomup = list_models("bottomup")
    for name in ("ae_resnet50", "srhead_ae_resnet50", "ae_hrnet_w32", "srhead_ae_hrnet_w32",
                 "ae_mobilenetv3_small", "srhead_ae_mobilenetv3_small"):
        assert name in bottomup and name in list_models()
    assert not set(bottomup) & set(list_models("topdown"))
    head, backbone = parse_model_name("srhead_ae_hrnet_w32")
    assert (head.name, backbone.name, head.task) == ("srhead_ae", "hrnet_w32", "bottomup")
    assert parse_model_name("srhead_resnet50")[0].name == "srhead"
    with pytest.raises(ConfigError, match="srhead_ae_nope.*unknown backbone 'nope'"):
        parse_model_name("srhead_ae_nope")


@pytest.mark.parametrize(
    "name, options, stride",
    [("ae_mobilenetv3_small", {}, 4), ("srhead_ae_mobilenetv3_small", {}, 1),
     ("srhead_ae_mobilenetv3_small", {"scale": 0.5, "deconv_filters": 32}, 2),
     ("srhead_ae_mobilenetv3_large", {"feature": "F3", "scale": 0.5}, 2),
     ("srhead_ae_mobilenetv3_large", {"feature": "F3", "scale": 0.5, "tag_context": "F5"}, 2),
     ("srhead_ae_mobilenetv3_large",
      {"feature": "F3", "scale": 0.5, "tag_context": "F5", "heatmap_context": True}, 2),
     ("ae_mobilenetv3_small", {"deconv_filters": 16, "tag_context": "F4"}, 4)],
)
def test_outputs_heatmaps_and_tags_at_one_resolution(name, options, stride, tmp_path) -> None:
    model = create_model(name, "coco", (64, 64), **options)
    shapes = {k: tuple(v.shape[1:]) for k, v in model.output.items()}
    assert shapes == {"heatmaps": (64 // stride, 64 // stride, 17)} | {"tags": (64 // stride, 64 // stride, 17)}
    x = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    expected, actual = model(x, training=False), loaded(x, training=False)
    for key in ("heatmaps", "tags"):
        np.testing.assert_allclose(np.asarray(actual[key]), np.asarray(expected[key]), atol=1e-6)


def test_srhead_ae_on_a_pyramid_level_has_no_deconvolutions() -> None:
    model = create_model("srhead_ae_mobilenetv3_large", "coco", (64, 64), feature="F3")
    assert not [layer.name for layer in model.layers if "deconv" in layer.name]
    assert model.get_layer("sr_lkconv").output.shape[1:3] == (8, 8)  # F3: stride 8, r = 8
    with pytest.raises(ConfigError, match="srhead: feature 'F9'"):
        create_model("srhead_ae_mobilenetv3_large", "coco", (64, 64), feature="F9")


def test_context_lets_tags_and_heatmaps_see_across_the_image() -> None:
    """F3 of MobileNetV3-Large sees ~100 px (and, through squeeze-excitation, the image's mean
    channels): the maps in one corner of a 256x256 image barely move when the opposite corner
    changes. With F5 context the tags move 10x more and the heatmaps are the same model's as
    without it; with ``heatmap_context`` the heatmaps move 10x more too."""
    image = np.random.default_rng(0).uniform(0, 255, (1, 256, 256, 3)).astype("float32")
    changed = image.copy()
    changed[:, 192:, 192:] = 255.0 - changed[:, 192:, 192:]
    variants = {"none": {}, "tags": {"tag_context": "F5"},
                "both": {"tag_context": "F5", "heatmap_context": True}}
    heatmaps, corner_change, plain = {}, {}, None
    for variant, options in variants.items():
        model = create_model("srhead_ae_mobilenetv3_large", "coco", (256, 256), feature="F3",
                             scale=0.5, kernel_size=5, **options)
        if plain is not None:
            transfer_weights(model, plain)  # the layers all three share start equal
        plain = plain or model
        set_batchnorm_statistics(model, image)
        before, after = model(image, training=False), model(changed, training=False)
        heatmaps[variant] = np.asarray(before["heatmaps"])
        corner_change[variant] = {
            key: float(np.abs(np.asarray(after[key] - before[key]))[0, :32, :32].max())
            for key in ("heatmaps", "tags")
        }
    np.testing.assert_array_equal(heatmaps["tags"], heatmaps["none"])
    assert corner_change["tags"]["tags"] > 5 * corner_change["none"]["tags"] > 0
    assert corner_change["both"]["heatmaps"] > 5 * corner_change["none"]["heatmaps"] > 0
    assert "F5" in backbone_levels("srhead_ae_mobilenetv3_large", feature="F3", tag_context="F5")


def test_tag_context_must_be_a_coarser_level() -> None:
    with pytest.raises(ConfigError, match="tag_context 'F3' \\(stride 8\\) must be coarser .*stride 8"):
        create_model("srhead_ae_mobilenetv3_large", "coco", (64, 64), feature="F3", tag_context="F3")
    with pytest.raises(ConfigError, match="tag_context 'F6' is not one of F2, F3, F4, F5"):
        create_model("ae_mobilenetv3_small", "coco", (64, 64), tag_context="F6")
    with pytest.raises(ConfigError, match="heatmap_context: true needs tag_context"):
        create_model("srhead_ae_mobilenetv3_large", "coco", (64, 64), feature="F3", heatmap_context=True)


def test_srhead_ae_rejects_an_unreachable_scale() -> None:
    with pytest.raises(ConfigError, match="srhead_ae: output scale 0.1"):
        create_model("srhead_ae_mobilenetv3_small", "coco", (64, 64), scale=0.1)


# Table 1 of the SR paper, bottom-up at 512x512: (other params M, GMACs).
@pytest.mark.parametrize(
    "backbone, expected",
    [
        ("resnet50", {"ae": (10.49, 29.20), "srhead_ae": (10.60, 30.86)}),
        ("hrnet_w32", {"ae": (0.00, 41.10), "srhead_ae": (0.09, 42.57)}),
    ],
)
def test_counts_match_the_paper(backbone: str, expected: dict) -> None:
    built = get_backbone(backbone).build(BOTTOMUP_SIZE, ("F5",) if backbone == "resnet50" else ("F2",))
    for head, (other, gmacs) in expected.items():
        profile = profile_model(assemble_model(f"{head}_{backbone}", built))
        assert profile.input_size == BOTTOMUP_SIZE
        assert profile.heatmap_size == ((128, 128) if head == "ae" else BOTTOMUP_SIZE)
        # within 1%, or within the paper's rounding to 0.01M for HRNet's tiny heads
        assert abs(profile.other_params / 1e6 - other) < max(0.01 * other, 0.005), head
        assert rel(profile.gmacs, gmacs) < 0.03, head


def test_kpose_models_lists_bottomup(capsys) -> None:
    parser = __import__("argparse").ArgumentParser()
    models_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["models", "srhead_ae_mobilenetv3_small", "--input-size", "256", "256"])
    assert args.func(args) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert line.split()[:3] == ["srhead_ae_mobilenetv3_small", "256x256", "256x256"]
