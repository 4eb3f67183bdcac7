import numpy as np
import pytest

from kpose import codecs
from kpose.geometry import heatmap_to_input, input_to_heatmap

tf = pytest.importorskip("tensorflow")
from kpose.codecs import decoders_tf, gaussian_tf  # noqa: E402

KERNELS = [1, 2, 4, 8, 16]


def _heatmap_sets():
    rng = np.random.default_rng(0)
    random = rng.random((3, 64, 48, 5)).astype(np.float32)
    kps = rng.uniform(0, [191, 255], (3, 5, 2))
    peaked, _ = codecs.encode_heatmaps(kps, np.ones((3, 5)), (256, 192), 4)
    ties = rng.integers(0, 3, (3, 64, 48, 5)).astype(np.float32)  # many equal maxima
    flat = np.zeros((2, 64, 48, 5), np.float32)  # every pixel ties
    return {"random": random, "peaked": peaked, "ties": ties, "flat": flat}


@pytest.mark.parametrize("kind", ["random", "peaked", "ties", "flat"])
@pytest.mark.parametrize("kernel", KERNELS)
def test_maxpool_equals_global_argmax(kind, kernel):
    heatmaps = _heatmap_sets()[kind]
    ref_coords, ref_scores = codecs.locate_argmax(heatmaps)
    coords, scores = codecs.locate_maxpool(heatmaps, kernel)
    np.testing.assert_array_equal(coords, ref_coords)
    np.testing.assert_array_equal(scores, ref_scores)
    tf_coords, tf_scores = decoders_tf.locate_maxpool(tf.constant(heatmaps), kernel)
    np.testing.assert_array_equal(tf_coords.numpy(), ref_coords)
    np.testing.assert_array_equal(tf_scores.numpy(), ref_scores)


@pytest.mark.parametrize("kind", ["random", "peaked", "ties", "flat"])
def test_row_decoder_equals_global_argmax_in_numpy_and_tf(kind):
    heatmaps = _heatmap_sets()[kind]
    ref_coords, ref_scores = codecs.locate_argmax(heatmaps)
    coords, scores = codecs.locate_rows(heatmaps)
    np.testing.assert_array_equal(coords, ref_coords)
    np.testing.assert_array_equal(scores, ref_scores)
    tf_coords, tf_scores = decoders_tf.locate_rows(tf.constant(heatmaps), float_scope="decoder")
    np.testing.assert_array_equal(tf_coords.numpy(), ref_coords)
    np.testing.assert_array_equal(tf_scores.numpy(), ref_scores)


def test_argmax_ties_resolve_row_major_like_numpy():
    hm = np.zeros((1, 8, 8, 1), np.float32)
    hm[0, 2, 0, 0] = hm[0, 0, 5, 0] = 1.0  # two maxima in different 4x4 cells
    for kernel in (1, 2, 4, 8):
        coords, _ = codecs.locate_maxpool(hm, kernel)
        np.testing.assert_array_equal(coords[0, 0], [5, 0])
        tf_coords, _ = decoders_tf.locate_maxpool(tf.constant(hm), kernel)
        np.testing.assert_array_equal(tf_coords.numpy()[0, 0], [5, 0])


def test_maxpool_kernel_must_divide_map():
    with pytest.raises(ValueError, match="must divide"):
        codecs.locate_maxpool(np.zeros((1, 64, 48, 1)), 32)


def _round_trip(decoder, stride, n=400, seed=0):
    rng = np.random.default_rng(seed)
    input_size = (256, 192)
    # keep keypoints well inside so refinement windows do not hit the border
    kps = rng.uniform([12, 12], [192 - 13, 256 - 13], (n, 3, 2))
    heatmaps, weights = codecs.encode_heatmaps(kps, np.ones((n, 3)), input_size, stride)
    assert weights.all()
    sigma = codecs.sigma_for_stride(stride)
    coords, scores = codecs.decode(heatmaps, decoder, kernel=1, sigma=sigma)
    truth = input_to_heatmap(kps, stride)
    return coords - truth, scores, heatmaps, sigma


@pytest.mark.parametrize("decoder", codecs.DECODERS)
@pytest.mark.parametrize("stride", [4, 2, 1])
def test_decoders_are_unbiased(decoder, stride):
    err, scores, _, _ = _round_trip(decoder, stride)
    assert np.abs(err.mean(axis=(0, 1))).max() < 0.05, err.mean(axis=(0, 1))
    assert np.abs(err).max() <= 0.5 + 1e-9
    assert (scores > 0.8).all()


def test_full_resolution_argmax_within_half_pixel():
    err, _, _, _ = _round_trip("argmax", 1)
    assert np.abs(err).max() <= 0.5 + 1e-9  # input pixels, since stride 1


def test_dark_at_stride_4_is_subpixel_accurate():
    err, _, _, _ = _round_trip("dark", 4)
    assert np.linalg.norm(err, axis=-1).mean() < 0.1
    argmax_err, _, _, _ = _round_trip("argmax", 4)
    quarter_err, _, _, _ = _round_trip("quarter", 4)
    # each refinement beats the one before it
    assert np.linalg.norm(err, axis=-1).mean() < np.linalg.norm(quarter_err, axis=-1).mean()
    assert np.linalg.norm(quarter_err, axis=-1).mean() < np.linalg.norm(argmax_err, axis=-1).mean()


def test_weights_drop_unlabeled_and_outside_keypoints():
    kps = np.array([[[10.0, 10.0], [-5.0, 10.0], [10.0, 300.0], [50.0, 60.0]]])
    visible = np.array([[1, 1, 1, 0]])
    heatmaps, weights = codecs.encode_heatmaps(kps, visible, (256, 192), 4)
    np.testing.assert_array_equal(weights, [[1, 0, 0, 0]])
    assert heatmaps[..., 1:].max() == 0.0
    peak = np.unravel_index(heatmaps[0, ..., 0].argmax(), (64, 48))
    assert peak == (2, 2) and heatmaps[0, 2, 2, 0] > 0.9


@pytest.mark.parametrize("stride", [4, 1])
def test_tensorflow_encoder_matches_numpy(stride):
    rng = np.random.default_rng(3)
    kps = rng.uniform(-10, 260, (4, 17, 2))
    visible = rng.integers(0, 3, (4, 17))
    ref_h, ref_w = codecs.encode_heatmaps(kps, visible, (256, 192), stride)
    h, w = gaussian_tf.encode_heatmaps(tf.constant(kps), tf.constant(visible), (256, 192), stride)
    np.testing.assert_allclose(h.numpy(), ref_h, atol=1e-5)
    np.testing.assert_array_equal(w.numpy(), ref_w)


@pytest.mark.parametrize("decoder", codecs.DECODERS)
def test_tensorflow_decoders_match_numpy(decoder):
    rng = np.random.default_rng(4)
    kps = rng.uniform(0, [191, 255], (4, 17, 2))
    heatmaps, _ = codecs.encode_heatmaps(kps, np.ones((4, 17)), (256, 192), 4)
    heatmaps = heatmaps + 0.05 * rng.random(heatmaps.shape).astype(np.float32)
    ref_c, ref_s = codecs.decode(heatmaps, decoder, kernel=4)
    c, s = decoders_tf.decode(tf.constant(heatmaps), decoder, kernel=4)
    np.testing.assert_allclose(c.numpy(), ref_c, atol=1e-3)
    np.testing.assert_allclose(s.numpy(), ref_s, rtol=1e-6)


def test_flip_back_undoes_a_mirrored_input():
    from kpose.keypoints import get_schema

    schema = get_schema("coco")
    rng = np.random.default_rng(5)
    kps = rng.uniform(0, [191, 255], (2, 17, 2))
    # the same person seen in a mirrored crop: x -> W - 1 - x and left/right swapped
    mirrored = kps[:, schema.flip_index].copy()
    mirrored[..., 0] = 191 - mirrored[..., 0]
    plain, _ = codecs.encode_heatmaps(kps, np.ones((2, 17)), (256, 192), 4)
    flipped, _ = codecs.encode_heatmaps(mirrored, np.ones((2, 17)), (256, 192), 4)
    np.testing.assert_allclose(codecs.flip_back(flipped, schema.flip_index), plain, atol=1e-6)
    np.testing.assert_allclose(codecs.flip_average(plain, flipped, schema.flip_index), plain, atol=1e-6)
    tf_back = decoders_tf.flip_back(tf.constant(flipped), schema.flip_index)
    np.testing.assert_allclose(tf_back.numpy(), plain, atol=1e-6)
    shifted = codecs.flip_back(flipped, schema.flip_index, shift=True)
    np.testing.assert_allclose(shifted[:, :, 1:], plain[:, :, :-1], atol=1e-6)
    np.testing.assert_allclose(decoders_tf.flip_back(tf.constant(flipped), schema.flip_index, shift=True).numpy(), shifted)


def test_heatmap_to_input_round_trip_through_codec():
    kps = np.array([[[100.3, 37.8]]])
    heatmaps, _ = codecs.encode_heatmaps(kps, np.ones((1, 1)), (256, 192), 4)
    coords, _ = codecs.decode(heatmaps, "dark")
    np.testing.assert_allclose(heatmap_to_input(coords, 4), kps, atol=0.1)


def test_maxpool_decoder_uses_only_builtin_tflite_ops(tmp_path):
    """The in-graph decoder converts to TFLite without Flex ops and runs in LiteRT."""
    interpreter_mod = pytest.importorskip("ai_edge_litert.interpreter")

    @tf.function(input_signature=[tf.TensorSpec([1, 64, 48, 17], tf.float32)])
    def decode_fn(heatmaps):
        coords, scores = decoders_tf.locate_maxpool(heatmaps, 4)
        return {"coords": tf.cast(coords, tf.float32), "scores": scores}

    module = tf.Module()
    module.decode = decode_fn
    converter = tf.lite.TFLiteConverter.from_concrete_functions([decode_fn.get_concrete_function()], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    model = converter.convert()
    interpreter = interpreter_mod.Interpreter(model_content=model)
    runner = interpreter.get_signature_runner()
    rng = np.random.default_rng(6)
    heatmaps = rng.random((1, 64, 48, 17)).astype(np.float32)
    out = runner(heatmaps=heatmaps)
    ref_c, ref_s = codecs.locate_argmax(heatmaps)
    np.testing.assert_array_equal(out["coords"], ref_c)
    np.testing.assert_array_equal(out["scores"], ref_s)
