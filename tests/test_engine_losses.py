import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

from kpose import codecs  # noqa: E402
from kpose.engine.losses import HeatmapLoss  # noqa: E402
from kpose.engine.schedules import WarmupMultiStep  # noqa: E402


@pytest.mark.parametrize("stride", [4, 1])
def test_loss_is_zero_on_the_rendered_target_and_ignores_unlabeled(stride):
    rng = np.random.default_rng(0)
    kps = rng.uniform(0, [63, 127], (2, 5, 2))
    vis = np.array([[1, 1, 1, 0, 1], [1, 0, 1, 1, 1]], np.float32)
    target, _ = codecs.encode_heatmaps(kps, vis, (128, 64), stride)
    y_true = np.concatenate([kps, vis[..., None]], axis=-1).astype(np.float32)
    loss = HeatmapLoss((128, 64))
    assert float(loss(y_true, target)) == pytest.approx(0.0, abs=1e-10)
    # garbage in an unlabeled channel costs nothing; in a labeled one it does
    noisy = target.copy()
    noisy[0, ..., 3] = 1.0
    assert float(loss(y_true, noisy)) == pytest.approx(0.0, abs=1e-10)
    noisy[0, ..., 0] = 1.0
    per_sample = loss.call(tf.constant(y_true), tf.constant(noisy)).numpy()
    assert per_sample[0] > 0 and per_sample[1] == pytest.approx(0.0, abs=1e-10)


def test_sigma_scales_with_stride():
    kps = np.array([[[32.0, 64.0]]], np.float32)
    y_true = np.concatenate([kps, np.ones((1, 1, 1), np.float32)], -1)
    loss = HeatmapLoss((128, 64), sigma_at_stride_4=2.0)
    full, _ = codecs.encode_heatmaps(kps, np.ones((1, 1)), (128, 64), 1, sigma=8.0)
    assert float(loss(y_true, full)) == pytest.approx(0.0, abs=1e-10)
    wrong, _ = codecs.encode_heatmaps(kps, np.ones((1, 1)), (128, 64), 1, sigma=2.0)
    assert float(loss(y_true, wrong)) > 1e-4


def test_loss_round_trips_through_config():
    loss = HeatmapLoss((256, 192), sigma_at_stride_4=3.0)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert again.input_size == (256, 192) and again.sigma_at_stride_4 == 3.0


def test_warmup_multistep_schedule():
    sched = WarmupMultiStep(1e-3, steps_per_epoch=10, milestones=[2, 4], gamma=0.1, warmup_steps=5, warmup_ratio=0.0)
    rates = [float(sched(s)) for s in (0, 5, 19, 20, 39, 40)]
    np.testing.assert_allclose(rates, [0.0, 1e-3, 1e-3, 1e-4, 1e-4, 1e-5], rtol=1e-5)
    assert WarmupMultiStep.from_config(sched.get_config()).get_config() == sched.get_config()
