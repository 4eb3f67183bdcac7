"""TransPose-R-A4: its layers, pyramid, size against the SRPose paper (Table 1, COCO 256x192),
and float TFLite / ONNX exports that give the Keras model's keypoints."""

from __future__ import annotations

import math

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import kpose  # noqa: E402
from kpose.models import create_model, get_backbone, profile_model  # noqa: E402
from kpose.models.backbones.transpose import D_MODEL  # noqa: E402
from kpose.models.complexity import count_params  # noqa: E402
from kpose.models.factory import assemble_model, backbone_levels  # noqa: E402
from kpose.models.layers import MultiHeadSelfAttention, SinePositionEmbedding  # noqa: E402
from kpose.models.layers.sine_position_embedding import sine_position_table  # noqa: E402
from kpose.runtime.backends import open_backend  # noqa: E402
from kpose.tasks import export_model  # noqa: E402

SMALL = (128, 96)
PAPER_SIZE = (256, 192)
# PyTorch parameter count of TransPose-R-A4 without its head (ResNet-50 conv1..layer2, the 1x1
# reduce conv, 4 encoder layers, the 32x24x256 sine embedding), and Keras ResNet's conv biases.
TORCH_TRANSPOSE_R_A4 = 4_931_648
KERAS_RESNET_BIASES = 5_056
UPSAMPLE_PARAMS = 256 * 256 * 16 + 2 * 256  # ConvTranspose 4x4 (no bias) + BN


def rel(actual: float, expected: float) -> float:
    return abs(actual - expected) / expected


def test_pyramid_levels_strides_and_channels() -> None:
    backbone = get_backbone("transpose_r_a4").build(SMALL, ("F2", "F3", "F4", "F5"))
    for level, stride in (("F2", 4), ("F3", 8), ("F4", 16), ("F5", 32)):
        assert tuple(backbone.output[level].shape) == (None, 128 // stride, 96 // stride, D_MODEL)
    stride4 = get_backbone("transpose_r_a4").build(SMALL, ("F2",))
    names = {layer.name for layer in stride4.layers}
    assert "upsample_deconv" in names and "pool4" not in names and "pool5" not in names


def test_sine_table_follows_the_formula() -> None:
    h, w, d = 4, 3, 8
    table = sine_position_table(h, w, d).reshape(h, w, d)
    row, col = 2, 1
    y, x = (row + 1) / (h + 1e-6) * 2 * math.pi, (col + 1) / (w + 1e-6) * 2 * math.pi
    periods = 10000.0 ** (np.array([0, 0, 2, 2]) / 4)
    expected_y = [np.sin(y / periods[0]), np.cos(y / periods[1]), np.sin(y / periods[2]), np.cos(y / periods[3])]
    expected_x = [np.sin(x / periods[0]), np.cos(x / periods[1]), np.sin(x / periods[2]), np.cos(x / periods[3])]
    np.testing.assert_allclose(table[row, col], expected_y + expected_x, rtol=1e-6, atol=1e-6)


def test_position_embedding_is_a_frozen_weight_added_to_the_tokens() -> None:
    layer = SinePositionEmbedding(2, 3)
    tokens = np.random.default_rng(0).normal(size=(2, 6, 4)).astype(np.float32)
    out = np.asarray(layer(tokens))
    np.testing.assert_allclose(out - tokens, np.broadcast_to(sine_position_table(2, 3, 4), out.shape), atol=1e-6)
    assert not layer.trainable_weights and len(layer.non_trainable_weights) == 1
    assert SinePositionEmbedding.from_config(layer.get_config()).get_config() == layer.get_config()


def test_attention_equals_keras_multi_head_attention() -> None:
    """Same weights in Keras' layout (heads split out of the channel axis), same output."""
    rng = np.random.default_rng(1)
    d, heads, tokens = 16, 4, 10
    qk, x = (rng.normal(size=(2, tokens, d)).astype(np.float32) for _ in range(2))
    ours = MultiHeadSelfAttention(heads)
    ours([qk, x])
    for weight in ours.weights:
        weight.assign(rng.normal(size=weight.shape).astype(np.float32) * 0.3)
    reference = keras.layers.MultiHeadAttention(heads, d // heads)
    reference(qk, x, key=qk)
    split = (heads, d // heads)
    for name in ("query", "key", "value"):
        dense = getattr(reference, f"_{name}_dense")
        dense.kernel.assign(np.reshape(getattr(ours, f"{name}_kernel"), (d, *split)))
        dense.bias.assign(np.reshape(getattr(ours, f"{name}_bias"), split))
    reference._output_dense.kernel.assign(np.reshape(ours.output_kernel, (*split, d)))
    reference._output_dense.bias.assign(ours.output_bias)
    expected = np.asarray(reference(qk, x, key=qk))
    np.testing.assert_allclose(np.asarray(ours([qk, x])), expected, rtol=1e-4, atol=1e-4)
    assert count_params(ours) == 4 * d * (d + 1)
    assert MultiHeadSelfAttention.from_config(ours.get_config()).get_config() == ours.get_config()


@pytest.fixture(scope="module")
def stride4_backbone() -> keras.Model:
    """TransPose-R-A4 at 256x192 as the simple and SR heads read it (F2)."""
    return get_backbone("transpose_r_a4").build(PAPER_SIZE, backbone_levels("srhead_transpose_r_a4"))


def test_backbone_parameters_match_transpose(stride4_backbone: keras.Model) -> None:
    assert count_params(stride4_backbone) == TORCH_TRANSPOSE_R_A4 + KERAS_RESNET_BIASES + UPSAMPLE_PARAMS


# Table 1 of the SRPose paper: backbone + other params (M) and GMACs. The simple head is
# TransPose's upsampling and 1x1 conv, which kpose keeps in the backbone (its F2).
@pytest.mark.parametrize(
    "name, total, gmacs", [("simplebaseline_transpose_r_a4", 4.93 + 1.06, 6.38), ("srhead_transpose_r_a4", 4.93 + 1.16, 6.69)]
)
def test_heads_match_paper(stride4_backbone: keras.Model, name: str, total: float, gmacs: float) -> None:
    profile = profile_model(assemble_model(name, stride4_backbone))
    assert rel(profile.total_params / 1e6, total) < 0.01
    # kpose's count; the paper's is 8.91 / 9.23 (docs/models.md: the convolutions' count differs)
    assert rel(profile.gmacs, gmacs) < 0.01


def test_sr_head_costs_what_the_paper_says_over_the_simple_head(stride4_backbone: keras.Model) -> None:
    simple, sr = (profile_model(assemble_model(n, stride4_backbone)) for n in ("simplebaseline_transpose_r_a4", "srhead_transpose_r_a4"))
    assert rel((sr.total_params - simple.total_params) / 1e6, 1.16 - 1.06) < 0.05
    assert rel(sr.gmacs - simple.gmacs, 9.23 - 8.91) < 0.03
    assert sr.heatmap_size == PAPER_SIZE and simple.heatmap_size == (64, 48)


@pytest.mark.slow
def test_srpose_size() -> None:
    backbone = get_backbone("transpose_r_a4").build(PAPER_SIZE, backbone_levels("srpose_transpose_r_a4"))
    profile = profile_model(assemble_model("srpose_transpose_r_a4", backbone))
    assert profile.backbone_params == TORCH_TRANSPOSE_R_A4 + KERAS_RESNET_BIASES + UPSAMPLE_PARAMS
    assert rel(profile.other_params / 1e6, 0.68) < 0.01 and rel(profile.gmacs, 6.89) < 0.01


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> tuple[keras.Model, object]:
    """srhead_transpose_r_a4 at 128x96 with peaked heatmaps (a trained model's are; the
    large-kernel conv's N(0, 0.001) init leaves near-ties), and its ``.keras`` file."""
    keras.utils.set_random_seed(3)
    model = create_model("srhead_transpose_r_a4", "coco", SMALL)
    layer = model.get_layer("sr_lkconv")
    layer.depthwise_kernel.assign(layer.depthwise_kernel * 300.0)
    path = tmp_path_factory.mktemp("transpose") / "model.keras"
    model.save(path)
    return model, path


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (2, 16, 12, 3)).astype(np.uint8)
    return np.repeat(np.repeat(base, 8, axis=1), 8, axis=2)  # (2, 128, 96, 3)


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_export_gives_the_keras_keypoints(small_model, crops, tmp_path, fmt: str) -> None:
    model, keras_file = small_model
    path = export_model(model, tmp_path / f"transpose.{fmt}", format=fmt, batch_size=None)
    exported = open_backend(path).run(crops)
    reference = kpose.load(keras_file).backend.run(crops)
    h, w = SMALL
    np.testing.assert_allclose(exported["keypoints"] * [w, h], reference["keypoints"] * [w, h], atol=0.05)
    np.testing.assert_allclose(exported["scores"], reference["scores"], rtol=1e-3, atol=1e-5)
