"""Bottom-up losses: masked heatmap MSE and the associative-embedding push/pull loss.

Both are plain ``keras.losses.Loss`` objects compiled per output (``heatmaps`` and ``tags``)
so ``model.fit`` does the rest. Keras hands each output's loss one ``y_true`` tensor, so the
batch's targets are packed into one ``(B, P*K*3 + H*W)`` float tensor by
:func:`pack_targets`: every person's keypoints (x, y in input pixels, weight) and the ignore
mask at input resolution. The heatmap target is rendered in the training step: per keypoint
type, the maximum over people of their Gaussians (as HigherHRNet and MMPose). Summing and
clipping at 1 instead flattens overlapping peaks into plateaus and merges nearby people:
grouped ground-truth targets score AP 0.05 with it against 0.86 with the maximum
(synthetic val, 128x128, full resolution).

Associative embedding (Newell et al., 2017; MMPose's ``AELoss``), per image with ``N`` people
that have labeled keypoints, ``t_pk`` the tag at person p's keypoint k and ``t_p`` their mean:
pull = mean over people of mean over their keypoints of ``(t_pk - t_p)^2``;
push = sum over pairs ``p != q`` of ``exp(-(t_p - t_q)^2)`` / ``(N (N - 1))``.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from kpose.codecs.gaussian import SIGMA_AT_STRIDE_4
from kpose.codecs.heatmap import HeatmapCodec
from kpose.geometry import input_to_heatmap


def pack_targets(keypoints: tf.Tensor, weights: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """``(B, P*K*3 + H*W)`` float32 from keypoints ``(B, P, K, 2)``, weights ``(B, P, K)``
    and mask ``(B, H, W)`` (1 = use, 0 = ignore)."""
    batch = tf.shape(keypoints)[0]
    people = tf.concat([tf.cast(keypoints, tf.float32), tf.cast(weights, tf.float32)[..., None]], -1)
    return tf.concat(
        [tf.reshape(people, [batch, -1]), tf.reshape(tf.cast(mask, tf.float32), [batch, -1])], axis=1
    )


class _PackedTargetLoss(keras.losses.Loss):
    """Unpacks :func:`pack_targets`. Args: ``input_size`` (H, W), ``max_people`` P,
    ``num_keypoints`` K."""

    def __init__(self, input_size, max_people: int, num_keypoints: int, name: str, **kwargs):
        super().__init__(name=name, **kwargs)
        self.input_size = tuple(int(v) for v in input_size)
        self.max_people = int(max_people)
        self.num_keypoints = int(num_keypoints)

    def unpack(self, y_true: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """keypoints ``(B, P, K, 2)``, weights ``(B, P, K)``, mask ``(B, H, W, 1)``."""
        p, k = self.max_people, self.num_keypoints
        people = tf.reshape(y_true[:, : p * k * 3], [-1, p, k, 3])
        mask = tf.reshape(y_true[:, p * k * 3 :], [-1, *self.input_size, 1])
        return people[..., :2], people[..., 2], mask

    def codec_of(self, height: int, sigma_at_stride_4: float = SIGMA_AT_STRIDE_4) -> HeatmapCodec:
        """The heatmap codec of an output ``height`` pixels high."""
        return HeatmapCodec.for_heatmap(self.input_size, height, sigma_at_stride_4)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            input_size=list(self.input_size), max_people=self.max_people, num_keypoints=self.num_keypoints
        )
        return config


@keras.saving.register_keras_serializable(package="kpose")
class MultiPersonHeatmapLoss(_PackedTargetLoss):
    """Masked MSE between ``(B, h, w, K)`` heatmaps and every person's Gaussians.

    ``call(y_true packed, y_pred) -> (B,)``: per image, the mean over pixels and keypoints of
    ``mask * (pred - target)^2``; the mask is the input-resolution mask average-pooled to the
    output's resolution. The targets are the output's :class:`~kpose.codecs.heatmap.HeatmapCodec`'s.
    """

    def __init__(self, input_size, max_people: int, num_keypoints: int,
                 sigma_at_stride_4: float = SIGMA_AT_STRIDE_4, name: str = "multiperson_heatmap_mse", **kwargs):
        super().__init__(input_size, max_people, num_keypoints, name=name, **kwargs)
        self.sigma_at_stride_4 = float(sigma_at_stride_4)

    def render(self, keypoints: tf.Tensor, weights: tf.Tensor, codec: HeatmapCodec) -> tf.Tensor:
        """``(B, h, w, K)`` target of ``codec``: per keypoint type the maximum over people of
        their Gaussians (keypoints ``(B, P, K, 2)`` input pixels, weights ``(B, P, K)``)."""
        target = None
        for p in range(self.max_people):  # a running maximum: no (B, h, w, P, K) tensor
            person, _ = codec.encode_tf(keypoints[:, p], weights[:, p])
            target = person if target is None else tf.maximum(target, person)
        return target

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        y_pred = tf.cast(y_pred, tf.float32)
        keypoints, weights, mask = self.unpack(y_true)
        codec = self.codec_of(y_pred.shape[1], self.sigma_at_stride_4)
        target = self.render(keypoints, weights, codec)
        if codec.stride > 1:
            mask = tf.nn.avg_pool2d(mask, codec.stride, codec.stride, "VALID")
        return tf.reduce_mean(mask * tf.square(y_pred - target), axis=[1, 2, 3])

    def get_config(self) -> dict:
        return {**super().get_config(), "sigma_at_stride_4": self.sigma_at_stride_4}


def tags_at_keypoints(tags: tf.Tensor, keypoints: tf.Tensor, stride: int) -> tf.Tensor:
    """``(B, P, K)``: the tag map ``(B, h, w, K)`` read at each keypoint's nearest pixel
    (keypoints ``(B, P, K, 2)`` in input pixels; clipped to the map)."""
    h, w = tags.shape[1], tags.shape[2]
    coords = tf.round(input_to_heatmap(keypoints, stride))
    x = tf.clip_by_value(tf.cast(coords[..., 0], tf.int32), 0, w - 1)
    y = tf.clip_by_value(tf.cast(coords[..., 1], tf.int32), 0, h - 1)
    k = tf.broadcast_to(tf.range(tf.shape(keypoints)[2]), tf.shape(x))
    per_image = tf.transpose(tags, [0, 3, 1, 2])  # (B, K, h, w)
    index = tf.stack([k, y, x], axis=-1)  # (B, P, K, 3)
    return tf.gather_nd(per_image, index, batch_dims=1)


@keras.saving.register_keras_serializable(package="kpose")
class AssociativeEmbeddingLoss(_PackedTargetLoss):
    """Push + pull loss on ``(B, h, w, K)`` tags (see the module docstring); ``(B,)``.

    Its weight (1e-3 in the papers, for both terms) is the ``tags`` output's loss weight.
    """

    def __init__(self, input_size, max_people: int, num_keypoints: int, name: str = "ae_push_pull", **kwargs):
        super().__init__(input_size, max_people, num_keypoints, name=name, **kwargs)

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        keypoints, weights, _ = self.unpack(y_true)
        tags = tags_at_keypoints(tf.cast(y_pred, tf.float32), keypoints, self.codec_of(y_pred.shape[1]).stride)
        count = tf.reduce_sum(weights, axis=2)  # (B, P)
        present = tf.cast(count > 0, tf.float32)
        mean = tf.reduce_sum(tags * weights, axis=2) / tf.maximum(count, 1.0)  # (B, P)
        spread = tf.reduce_sum(weights * tf.square(tags - mean[..., None]), axis=2) / tf.maximum(count, 1.0)
        people = tf.reduce_sum(present, axis=1)  # (B,)
        pull = tf.reduce_sum(spread * present, axis=1) / tf.maximum(people, 1.0)
        pairs = present[:, :, None] * present[:, None, :] * (1.0 - tf.eye(self.max_people))[None]
        diff = mean[:, :, None] - mean[:, None, :]
        push = tf.reduce_sum(pairs * tf.exp(-tf.square(diff)), axis=[1, 2]) / tf.maximum(
            people * (people - 1.0), 1.0
        )
        return push + pull
