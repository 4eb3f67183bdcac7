"""The heatmap loss: targets rendered from keypoints inside the training step.

Each model output gets its own :class:`HeatmapLoss`, compiled per output name with
``model.compile(loss={...}, loss_weights={...})``, so ``fit``, ``evaluate``, distribution
(loss scaling by replica count) and mixed precision (loss scaling, float32 loss) are Keras'
own. ``y_true`` is the batch's keypoints, not a heatmap: ``(B, K, 3)`` = (x, y) in input
(crop) pixels and a weight (0 for unlabeled keypoints). The loss renders the Gaussian target
at the output's own resolution, with sigma linear in resolution (SR paper, section 3.2).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from kpose.codecs.gaussian import SIGMA_AT_STRIDE_4
from kpose.codecs.heatmap import HeatmapCodec


@keras.saving.register_keras_serializable(package="kpose")
class HeatmapLoss(keras.losses.Loss):
    """Target-weighted MSE between predicted heatmaps and Gaussians rendered from keypoints.

    Args:
        input_size: the model's input ``(H, W)``; the stride of an output is ``H / h``.
        sigma_at_stride_4: Gaussian sigma of a stride-4 target, in heatmap pixels.

    ``call(y_true (B, K, 3), y_pred (B, h, w, K)) -> (B,)``: per sample, the mean over
    pixels and keypoints of ``(w_k * (pred - target))^2``, as MMPose's target-weighted MSE.
    """

    def __init__(
        self,
        input_size: tuple[int, int],
        sigma_at_stride_4: float = SIGMA_AT_STRIDE_4,
        name: str = "heatmap_mse",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.input_size = tuple(int(v) for v in input_size)
        self.sigma_at_stride_4 = float(sigma_at_stride_4)

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        y_pred = tf.cast(y_pred, tf.float32)
        codec = HeatmapCodec.for_heatmap(self.input_size, y_pred.shape[1], self.sigma_at_stride_4)
        target, weights = codec.encode_tf(y_true[..., :2], y_true[..., 2])
        diff = (y_pred - target) * weights[:, None, None, :]
        return tf.reduce_mean(tf.square(diff), axis=[1, 2, 3])

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(input_size=list(self.input_size), sigma_at_stride_4=self.sigma_at_stride_4)
        return config
