"""Model factory: names, errors, output contract, training step, .keras round trip, deploy graph."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from kpose.errors import ConfigError  # noqa: E402
from kpose.keypoints import get_schema, schema_from_dict  # noqa: E402
from kpose.models import (  # noqa: E402
    backbone_names,
    create_model,
    get_backbone,
    inference_model,
    list_models,
    parse_model_name,
)
from kpose.models.heads import HEADS  # noqa: E402

# Small, non-square (H != W) inputs: shapes must follow height and width separately.
SMALL = (96, 64)
# The cheapest backbone each head accepts.
CHEAP_BACKBONE = {
    "simplebaseline": "mobilenetv3_small",
    "srhead": "mobilenetv3_small",
    "srpose": "mobilenetv3_small",
    "mrheatnet1": "mobilenetv3_small",
    "mrheatnet2": "mobilenetv3_small",
    "mrfeanet1": "resnet50",
    "mrfeanet2": "resnet50",
}
SRPOSE_OUTPUTS = {"lr_heatmaps", "sr1", "sr2", "sr3", "heatmaps"}


def custom_schema():
    return schema_from_dict(
        {
            "name": "hand5",
            "keypoints": ["wrist", "left_tip", "right_tip", "left_base", "right_base"],
            "flip_pairs": [[1, 2], [3, 4]],
        }
    )


SCHEMAS = {"coco": 17, "mpii": 16, "crowdpose": 14, "custom5": 5}


def resolve_schema(name: str):
    return custom_schema() if name == "custom5" else get_schema(name)


def expected_shapes(model_name: str, input_size: tuple[int, int], k: int, **options) -> dict:
    """Output name -> (H, W, K) from the papers' strides."""
    head = model_name.split("_")[0]
    backbone = get_backbone(model_name.split("_", 1)[1])
    h, w = input_size

    def at(scale: float) -> tuple[int, int, int]:
        return (int(h * scale), int(w * scale), k)

    if head == "srpose":
        final = at(options.get("scale", 1.0))
        supervision = {name: at(0.25) for name in ("sr1", "sr2", "sr3")}
        return {"lr_heatmaps": at(1 / 32), **supervision, "heatmaps": final}
    if head == "srhead":
        return {"heatmaps": at(options.get("scale", backbone.sr_scale))}
    return {"heatmaps": at(0.25)}


def output_shapes(model: keras.Model) -> dict:
    return {name: tuple(t.shape[1:]) for name, t in model.output.items()}


def test_list_models_covers_heads_and_backbones() -> None:
    names = list_models()
    assert len(names) == len(set(names))
    for required in (
        "simplebaseline_resnet50",
        "srhead_resnet50",
        "srpose_resnet50",
        "srpose_hrnet_w32",
        "mrheatnet1_resnet50",
        "mrfeanet2_resnet101",
        "srpose_mobilenetv3_large",
        "srhead_mobilenetv3_small",
    ):
        assert required in names
    assert {parse_model_name(n)[0].name for n in names} == set(HEADS)
    assert {parse_model_name(n)[1].name for n in names} == set(backbone_names())
    assert not [n for n in names if n.startswith("mrfeanet") and "resnet" not in n]


@pytest.mark.parametrize("schema", list(SCHEMAS))
@pytest.mark.parametrize("head", list(CHEAP_BACKBONE))
def test_output_shapes_per_schema(head: str, schema: str) -> None:
    name = f"{head}_{CHEAP_BACKBONE[head]}"
    model = create_model(name, schema=resolve_schema(schema), input_size=SMALL)
    assert model.name == name
    assert tuple(model.input.shape[1:]) == (*SMALL, 3)
    assert output_shapes(model) == expected_shapes(name, SMALL, SCHEMAS[schema])
    if head == "srpose":
        assert set(model.output) == SRPOSE_OUTPUTS


@pytest.mark.parametrize("scale", [0.25, 0.5, 1, 2])
def test_srpose_output_scale(scale: float) -> None:
    model = create_model("srpose_mobilenetv3_small", schema="mpii", input_size=SMALL, scale=scale)
    expected = expected_shapes("srpose_mobilenetv3_small", SMALL, 16, scale=scale)
    assert output_shapes(model) == expected


@pytest.mark.parametrize(
    "backbone", [b for b in backbone_names() if b not in ("resnet101", "resnet152", "hrnet_w48")]
)
def test_every_backbone_builds_a_model(backbone: str) -> None:
    name = f"srhead_{backbone}"
    model = create_model(name, schema="crowdpose", input_size=SMALL)
    assert output_shapes(model) == expected_shapes(name, SMALL, 14)


def train_step_and_round_trip(model: keras.Model, tmp_path) -> None:
    """One ``fit`` step on random data (MSE to random targets), then a .keras save and a
    safe-mode load that give identical outputs. Runs eagerly: tracing a graph for one step
    would cost more than the step."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, *model.input.shape[1:])).astype("float32")
    y = {
        name: rng.uniform(size=(2, *t.shape[1:])).astype("float32")
        for name, t in model.output.items()
    }
    model.compile(
        optimizer=keras.optimizers.SGD(0.01), loss={n: "mse" for n in y}, run_eagerly=True
    )
    # The step reaches both ends: the backbone's first weights and the head's last ones.
    # (Not every weight: EfficientNet's stochastic depth can drop a block for a whole batch.)
    ends = [model.trainable_weights[0], model.trainable_weights[-1]]
    before = [np.array(w) for w in ends]
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert all(not np.array_equal(b, np.array(w)) for b, w in zip(before, ends))

    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    expected, actual = model(x, training=False), loaded(x, training=False)
    assert set(actual) == set(expected)
    for name in expected:
        np.testing.assert_allclose(actual[name], expected[name], rtol=1e-5, atol=1e-6)
    deployed = inference_model(loaded)(x, training=False)
    np.testing.assert_allclose(deployed["heatmaps"], expected["heatmaps"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("head", list(CHEAP_BACKBONE))
def test_train_step_and_keras_round_trip(head: str, tmp_path) -> None:
    name = f"{head}_{CHEAP_BACKBONE[head]}"
    model = create_model(name, schema=custom_schema(), input_size=(64, 64))
    train_step_and_round_trip(model, tmp_path)


@pytest.mark.slow
def test_hrnet_train_step_and_round_trip(tmp_path) -> None:
    model = create_model("srpose_hrnet_w32", schema=custom_schema(), input_size=(64, 64))
    train_step_and_round_trip(model, tmp_path)


def test_srpose_inference_graph_keeps_last_head_and_shares_weights() -> None:
    model = create_model("srpose_mobilenetv3_small", schema="coco", input_size=SMALL)
    deploy = inference_model(model)
    assert list(deploy.output) == ["heatmaps"]
    names = {layer.name for layer in deploy.layers}
    # M_LR stays: M5 is computed from it.
    assert {"heatmaps", "lr_heatmaps"} <= names and not names & {"sr1", "sr2", "sr3"}
    deployed = {id(w) for w in deploy.weights}
    assert deployed < {id(w) for w in model.weights}
    for layer in ("sr1_encoder", "sr2_lkconv", "sr3"):
        assert not any(id(w) in deployed for w in model.get_layer(layer).weights)
    x = np.random.default_rng(0).normal(size=(1, *SMALL, 3)).astype("float32")
    np.testing.assert_allclose(
        deploy(x, training=False)["heatmaps"], model(x, training=False)["heatmaps"], rtol=1e-6
    )
    single = create_model("simplebaseline_mobilenetv3_small", input_size=SMALL)
    assert inference_model(single) is single


def test_outputs_are_float32_under_mixed_precision() -> None:
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        for head in ("srpose", "mrheatnet1", "srhead"):
            name = f"{head}_mobilenetv3_small"
            model = create_model(name, input_size=(64, 64))
            assert {t.dtype for t in model.output.values()} == {"float32"}, name
            assert model.get_layer("backbone").layers[-1].compute_dtype == "float16"
    finally:
        keras.config.set_dtype_policy(previous)


def check_pyramid(backbone: str, size: tuple[int, int]) -> None:
    """The backbone sub-model outputs F2..F5 at strides 4..32 with its declared channels."""
    spec = get_backbone(backbone)
    model = spec.build(size)
    assert model.name == "backbone"
    shapes = {level: tuple(t.shape[1:]) for level, t in model.output.items()}
    h, w = size
    assert shapes == {
        f"F{i}": (h // 2**i, w // 2**i, c) for i, c in zip(range(2, 6), spec.channels)
    }


@pytest.mark.parametrize("backbone", ["mobilenetv3_large", "hrnet_w32"])
def test_backbone_pyramid(backbone: str) -> None:
    check_pyramid(backbone, (64, 96))


# --- errors --------------------------------------------------------------------------------


def test_unknown_model_lists_valid_models() -> None:
    with pytest.raises(ConfigError, match="unknown model 'posenet_resnet50'.*srpose_resnet50"):
        create_model("posenet_resnet50")


def test_unknown_backbone_lists_valid_backbones() -> None:
    with pytest.raises(ConfigError, match="unknown backbone 'resnet18'.*resnet50.*hrnet_w32"):
        create_model("srpose_resnet18")


@pytest.mark.parametrize("size", [(250, 192), (256, 200), (0, 192), (256,), "256x192"])
def test_input_size_must_be_multiple_of_32(size) -> None:
    with pytest.raises(ConfigError, match="input_size"):
        create_model("simplebaseline_mobilenetv3_small", input_size=size)


@pytest.mark.parametrize("backbone", ["mobilenetv3_small", "hrnet_w32"])
def test_mrfeanet_needs_bottleneck_channels(backbone: str) -> None:
    with pytest.raises(ConfigError, match="MRFeaNet needs a backbone with ResNet bottleneck"):
        create_model(f"mrfeanet1_{backbone}")


def test_mrheatnet_needs_deconvolutions() -> None:
    with pytest.raises(ConfigError, match="MRHeatNet branches off the SimpleBaseline deconv"):
        create_model("mrheatnet2_hrnet_w32")


def test_unknown_option_lists_valid_options() -> None:
    with pytest.raises(ConfigError, match="srpose does not take.*kernel_size.*options: scale"):
        create_model("srpose_mobilenetv3_small", kernel_size=3)


def test_unreachable_scale_is_rejected() -> None:
    with pytest.raises(ConfigError, match="scale 0.1"):
        create_model("srpose_mobilenetv3_small", input_size=SMALL, scale=0.1)


def test_hrnet_has_no_pretrained_weights() -> None:
    with pytest.raises(ConfigError, match="hrnet_w32 has no keras.applications weights"):
        create_model("srpose_hrnet_w32", weights="imagenet")


# --- the full matrix (slow) ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models("topdown"))
def test_every_model_every_schema(name: str, tmp_path) -> None:
    for schema, k in SCHEMAS.items():
        model = create_model(name, schema=resolve_schema(schema), input_size=(64, 64))
        assert output_shapes(model) == expected_shapes(name, (64, 64), k), schema
    train_step_and_round_trip(model, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("size", [(256, 192), (384, 288), (256, 256), (512, 512)])
@pytest.mark.parametrize("backbone", backbone_names())
def test_every_backbone_every_input_size(backbone: str, size: tuple[int, int]) -> None:
    check_pyramid(backbone, size)


@pytest.mark.parametrize(
    "name", ["simplebaseline_mobilenetv3_small", "srhead_mobilenetv3_small", "ae_mobilenetv3_small",
             "srhead_ae_mobilenetv3_small"]
)
def test_heatmaps_start_near_zero(name: str) -> None:
    """The last heatmap conv starts N(0, 0.001) as in the papers' code: maps near the all-zero
    level, not O(1) (Glorot: the simple head sank into that level and stayed; docs/bottomup.md)."""
    keras.utils.set_random_seed(0)
    model = create_model(name, schema="coco", input_size=(64, 64))
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    # training mode: batch statistics make the features O(1), as in the first steps of a run
    heatmaps = np.asarray(model(images, training=True)["heatmaps"])
    assert np.abs(heatmaps).max() < 0.5, np.abs(heatmaps).max()  # Glorot: ~5
