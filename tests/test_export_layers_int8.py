"""Export-only layer swaps for integer interpreters (kpose.export.layers): the wide stem
(space-to-depth, stride-1 conv, depth-to-space) computes exactly what the normalized stem
conv computes, in the whole quickstart network too, and its int8 TFLite file keeps those ops
inside XNNPACK."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from kpose.export.layers import (
    GroupedKeypointConv2D,
    RawPixelConv2D,
    SpaceToDepthRawPixelConv2D,
    for_interpreters,
)
from kpose.models.layers import KeypointPixelShuffle


def _randomize(network: keras.Model, seed: int = 0) -> None:
    """Weights large enough that the heatmaps are far from zero (the SR head starts at
    N(0, 0.001)), batch-norm statistics included."""
    rng = np.random.default_rng(seed)
    for variable in network.weights:
        shape = tuple(variable.shape)
        if "variance" in variable.path:
            variable.assign(rng.uniform(0.5, 1.5, shape).astype(np.float32))
        else:
            variable.assign(rng.normal(0.0, 0.2, shape).astype(np.float32))


@pytest.mark.parametrize("integer", [False, True])
def test_quickstart_network_for_interpreters_equals_the_original(integer):
    from kpose.export.graph import float32_network
    from kpose.models import create_model
    from kpose.quickstart import MODEL_NAME, QuickstartSettings

    keras.utils.set_random_seed(0)
    model = create_model(MODEL_NAME, "coco", (64, 32), **QuickstartSettings().model_options)
    network = float32_network(model)
    _randomize(network)
    default = for_interpreters(network, integer=integer)
    assert isinstance(default.get_layer("heatmaps"), KeypointPixelShuffle)
    stem = type(default.get_layer("backbone").get_layer("conv"))
    assert stem is (SpaceToDepthRawPixelConv2D if integer else RawPixelConv2D)
    assert isinstance(default.get_layer("sr_lkconv"), GroupedKeypointConv2D)
    pixels = np.random.default_rng(1).integers(0, 256, (2, 64, 32, 3)).astype(np.float32)
    want = np.asarray(network(pixels))
    assert np.abs(want).max() > 1.0
    got = np.asarray(default(pixels))
    assert got.shape == want.shape == (2, 64, 32, 17)
    np.testing.assert_allclose(got, want, atol=1e-5 * np.abs(want).max())


def _stem_network(size, bgr, strides, padding, kernel, activation="linear"):
    from kpose.models.layers import ImageNormalization

    image = keras.Input((*size, 3))
    x = ImageNormalization([120.0, 110.0, 100.0], [50.0, 60.0, 70.0], bgr=bgr, name="normalize")(image)
    inner = keras.Input(x.shape[1:])
    y = keras.layers.Conv2D(8, kernel, strides=strides, padding=padding, activation=activation, name="stem")(inner)
    y = keras.layers.Conv2D(4, 1)(y)
    network = keras.Model(image, keras.Model(inner, y, name="backbone")(x))
    _randomize(network)
    return network


@pytest.mark.parametrize(
    "size, bgr, padding, kernel, activation",
    [
        ((32, 24), False, "same", 3, "linear"),
        ((32, 24), True, "same", 3, "relu"),
        ((33, 29), False, "valid", 3, "linear"),
        ((28, 20), False, "same", 5, "linear"),
        ((29, 25), True, "valid", 7, "linear"),
        ((256, 192), False, "same", 3, "linear"),
    ],
)
def test_wide_stem_equals_the_normalized_conv(size, bgr, padding, kernel, activation):
    network = _stem_network(size, bgr, 2, padding, kernel, activation)
    narrow = for_interpreters(network, integer=True, wide_stem=False)
    assert type(narrow.get_layer("backbone").get_layer("stem")) is RawPixelConv2D
    wide = for_interpreters(network, integer=True)
    stem = wide.get_layer("backbone").get_layer("stem")
    assert isinstance(stem, SpaceToDepthRawPixelConv2D)
    assert type(for_interpreters(network).get_layer("backbone").get_layer("stem")) is RawPixelConv2D
    pixels = np.random.default_rng(4).integers(0, 256, (2, *size, 3)).astype(np.float32)
    want = np.asarray(network(pixels))
    got = np.asarray(wide(pixels))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5 * np.abs(want).max())
    assert stem.compute_output_shape((2, *size, 3)) == (2, *want.shape[1:3], 8)


@pytest.mark.parametrize("size, strides, padding, kernel", [((30, 24), 2, "same", 3), ((32, 24), 1, "same", 3), ((32, 24), 2, "same", 2)])
def test_wide_stem_only_where_it_applies(size, strides, padding, kernel):
    """Odd output sizes, stride 1 and even kernels keep the plain folded stem."""
    network = _stem_network(size, False, strides, padding, kernel)
    wide = for_interpreters(network, integer=True)
    assert type(wide.get_layer("backbone").get_layer("stem")) is RawPixelConv2D
    pixels = np.random.default_rng(5).integers(0, 256, (1, *size, 3)).astype(np.float32)
    want = np.asarray(network(pixels))
    np.testing.assert_allclose(np.asarray(wide(pixels)), want, atol=1e-5 * np.abs(want).max())


def test_wide_stem_int8_runs_inside_xnnpack(tmp_path):
    from kpose.benchmarks.latency import ops_outside_xnnpack
    from kpose.export.tflite import operator_names

    wide = for_interpreters(_stem_network((64, 48), False, 2, "same", 3), integer=True)
    spec = tf.TensorSpec((1, 64, 48, 3), tf.uint8)
    function = tf.function(lambda x: wide(tf.cast(x, tf.float32)), input_signature=[spec])
    module = tf.Module()
    module.function = function
    module.weights = [v.value if isinstance(v, keras.Variable) else v for v in wide.variables]
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], module)
    converter.experimental_enable_resource_variables = False
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(6)
    converter.representative_dataset = lambda: ([rng.integers(0, 256, (1, 64, 48, 3)).astype(np.uint8)] for _ in range(4))
    converter.inference_output_type = tf.int8
    path = tmp_path / "stem.tflite"
    path.write_bytes(converter.convert())
    ops = operator_names(path.read_bytes())
    assert {"SPACE_TO_DEPTH", "DEPTH_TO_SPACE", "CONV_2D"} <= set(ops)
    assert set(ops_outside_xnnpack(path)) <= {"CAST"}
