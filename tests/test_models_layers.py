"""kpose's custom layers: grouped-conv equivalence, joint separation, exact GELU,
serialization, and conversion to builtin TFLite ops and to valid ONNX."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from kpose.models.layers import GELU, KeypointConv2D, KeypointPixelShuffle  # noqa: E402

K, EMBED, UPSCALE, KERNEL = 3, 2, 2, 5


def _grouped_to_depthwise(kernel: np.ndarray, num_keypoints: int) -> np.ndarray:
    """Conv2D(groups=K) kernel (k, k, e, K*n) -> KeypointConv2D kernel (k, k, e*K, n)."""
    k, _, embed, out = kernel.shape
    n = out // num_keypoints
    grouped = kernel.reshape(k, k, embed, num_keypoints, n)
    return grouped.transpose(0, 1, 3, 2, 4).reshape(k, k, num_keypoints * embed, n)


def test_keypoint_conv_equals_grouped_conv() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 7, 6, EMBED * K)).astype("float32")
    grouped = keras.layers.Conv2D(K * UPSCALE**2, KERNEL, groups=K, padding="same")
    grouped.build(x.shape)
    kernel = rng.normal(size=grouped.kernel.shape).astype("float32")
    bias = rng.normal(size=grouped.bias.shape).astype("float32")
    grouped.set_weights([kernel, bias])
    layer = KeypointConv2D(K, UPSCALE**2, KERNEL)
    layer.build(x.shape)
    layer.set_weights([_grouped_to_depthwise(kernel, K), bias])
    np.testing.assert_allclose(layer(x), grouped(x), rtol=1e-5, atol=1e-5)


def test_keypoint_conv_init_is_small_normal() -> None:
    layer = KeypointConv2D(17, 16, 9)
    layer.build((None, 8, 6, 4 * 17))
    kernel = np.asarray(layer.depthwise_kernel)
    assert kernel.shape == (9, 9, 68, 16)
    assert abs(kernel.std() - 0.001) < 1e-4 and abs(kernel.mean()) < 1e-4
    assert not np.asarray(layer.bias).any()


def test_pixel_shuffle_places_each_channel() -> None:
    """Channel j*r*r + dy*r + dx of pixel (y, x) lands at (y*r + dy, x*r + dx) of map j."""
    h, w = 3, 4
    x = np.arange(h * w * K * UPSCALE**2, dtype="float32").reshape(1, h, w, K * UPSCALE**2)
    out = np.asarray(KeypointPixelShuffle(K, UPSCALE)(x))
    assert out.shape == (1, h * UPSCALE, w * UPSCALE, K)
    for j in range(K):
        for dy in range(UPSCALE):
            for dx in range(UPSCALE):
                channel = j * UPSCALE**2 + dy * UPSCALE + dx
                phase = out[0, dy::UPSCALE, dx::UPSCALE, j]
                np.testing.assert_array_equal(phase, x[0, :, :, channel])


@pytest.mark.parametrize("joint", [0, K - 1])
def test_sr_head_keeps_joints_apart(joint: int) -> None:
    """Only keypoint j's large-kernel filters non-zero -> only heatmap j non-zero."""
    from kpose.models.heads import sr_head

    inputs = keras.Input((4, 5, 8))
    model = keras.Model(inputs, sr_head(inputs, K, EMBED, UPSCALE, KERNEL, "sr", "heatmaps"))
    lkconv = model.get_layer("sr_lkconv")
    kernel = np.zeros(lkconv.depthwise_kernel.shape, "float32")
    kernel[:, :, joint * EMBED : (joint + 1) * EMBED, :] = 1.0
    lkconv.set_weights([kernel, np.zeros(lkconv.bias.shape, "float32")])
    encoder = model.get_layer("sr_encoder")
    encoder.set_weights([np.abs(w) for w in encoder.get_weights()])
    x = np.random.default_rng(1).uniform(0.1, 1.0, size=(1, 4, 5, 8)).astype("float32")
    heatmaps = np.asarray(model(x))
    assert heatmaps.shape == (1, 4 * UPSCALE, 5 * UPSCALE, K)
    nonzero = [j for j in range(K) if np.any(heatmaps[..., j] != 0)]
    assert nonzero == [joint]
    assert np.all(heatmaps[..., joint] > 0)


@pytest.mark.parametrize(
    "layer",
    [
        KeypointConv2D(5, 4, 7, use_bias=False, name="lk"),
        KeypointPixelShuffle(5, 4, name="ps"),
        GELU(name="g"),
    ],
    ids=["keypoint_conv", "pixel_shuffle", "gelu"],
)
def test_layer_config_round_trip(layer: keras.layers.Layer) -> None:
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer), safe_mode=True
    )
    assert type(restored) is type(layer) and restored.get_config() == config


def test_pixel_shuffle_rejects_upscale_one() -> None:
    with pytest.raises(ValueError, match="upscale"):
        KeypointPixelShuffle(3, 1)


def test_gelu_is_exact_gelu() -> None:
    x = np.linspace(-6, 6, 101, dtype="float32")
    expected = keras.activations.gelu(x, approximate=False)
    np.testing.assert_allclose(GELU()(x), expected, rtol=1e-6, atol=1e-6)


@pytest.fixture(scope="module")
def export_probe() -> keras.Model:
    """A tiny graph with every custom layer: ConvNeXt block (GELU) and SR head."""
    from kpose.models.heads import sr_head
    from kpose.models.necks import convnext_block

    inputs = keras.Input((4, 3, 8), batch_size=1)
    x = convnext_block(inputs, "block")
    model = keras.Model(inputs, sr_head(x, K, EMBED, UPSCALE, KERNEL, "sr", "heatmaps"))
    lkconv = model.get_layer("sr_lkconv")
    lkconv.set_weights([w * 100 for w in lkconv.get_weights()])
    return model


PROBE_INPUT = np.random.default_rng(2).normal(size=(1, 4, 3, 8)).astype("float32")


def test_custom_layers_convert_to_builtin_tflite_ops(export_probe: keras.Model) -> None:
    """No grouped-conv / Flex ops: TFLite builtins only, same outputs."""
    tf = pytest.importorskip("tensorflow")
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    converter = tf.lite.TFLiteConverter.from_keras_model(export_probe)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = litert.Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], PROBE_INPUT)
    interpreter.invoke()
    result = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(result, export_probe(PROBE_INPUT), rtol=1e-4, atol=1e-6)


def test_custom_layers_convert_to_valid_onnx(export_probe: keras.Model) -> None:
    tf = pytest.importorskip("tensorflow")
    tf2onnx = pytest.importorskip("tf2onnx")
    ort = pytest.importorskip("onnxruntime")
    proto, _ = tf2onnx.convert.from_function(
        tf.function(lambda x: export_probe(x)),
        input_signature=(tf.TensorSpec(PROBE_INPUT.shape, tf.float32),),
        opset=17,
    )
    session = ort.InferenceSession(proto.SerializeToString())
    result = session.run(None, {session.get_inputs()[0].name: PROBE_INPUT})[0]
    np.testing.assert_allclose(result, export_probe(PROBE_INPUT), rtol=1e-4, atol=1e-6)
