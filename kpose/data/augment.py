"""Top-down augmentation: where each training crop comes from, drawn for a batch at once.

The recipe is MMPose's for top-down heatmap models (the SR-head paper trains with MMPose's
settings; these are the defaults of its COCO configs: ``TopDownRandomFlip``,
``TopDownHalfBodyTransform``, ``TopDownGetRandomScaleRotation`` and
``TopDownRandomShiftBboxCenter``). Everything is folded into one affine warp per sample:

1. half body, with probability ``half_body_prob`` if more than ``half_body_min_keypoints``
   keypoints are labeled: the region becomes the box of the labeled upper-body (or
   lower-body) keypoints, aspect fixed, padded by ``half_body_padding``;
2. centre shift, with probability ``shift_prob``: by ``U(-1, 1) * shift_factor`` of the
   region size, in x and y;
3. scale: the region size times ``clip(1 + scale_factor * N(0, 1), 1 - f, 1 + f)``;
4. rotation, with probability ``rotation_prob``: ``clip(rotation_factor * N(0, 1), -2 f, 2 f)``
   degrees;
5. horizontal flip with probability ``flip_prob`` (keypoints swap left and right).

Random numbers come from stateless ops keyed by a per-batch seed, so a seed fixes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from kpose.geometry import affine_tf
from kpose.keypoints import KeypointSchema
from kpose.utils.dataclass_yaml import at_least, between, check_ranges, positive


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation settings (see the module docstring); defaults are MMPose's COCO ones."""

    flip_prob: float = field(default=0.5, metadata=between(0, 1))
    half_body_prob: float = field(default=0.3, metadata=between(0, 1))
    # None: K // 2 (8 for COCO and MPII)
    half_body_min_keypoints: int | None = field(default=None, metadata=at_least(0))
    half_body_padding: float = field(default=1.5, metadata=positive())
    scale_factor: float = field(default=0.5, metadata=between(0, 1, open_high=True))
    rotation_factor: float = field(default=40.0, metadata=at_least(0))
    rotation_prob: float = field(default=0.6, metadata=between(0, 1))
    shift_factor: float = field(default=0.16, metadata=at_least(0))
    shift_prob: float = field(default=0.3, metadata=between(0, 1))

    def __post_init__(self) -> None:
        check_ranges(self, "AugmentConfig", "augment")


def _body_masks(schema: KeypointSchema) -> tuple[np.ndarray, np.ndarray]:
    """(K,) bool upper- and lower-body masks; lower defaults to the rest of the keypoints."""
    upper = np.zeros(schema.num_keypoints, bool)
    upper[list(schema.upper_body)] = True
    lower = np.zeros(schema.num_keypoints, bool)
    lower[list(schema.lower_body)] = True
    return upper, lower if lower.any() else ~upper


def sample_regions(
    seed: tf.Tensor,
    center: tf.Tensor,
    scale: tf.Tensor,
    keypoints: tf.Tensor,
    visibility: tf.Tensor,
    schema: KeypointSchema,
    config: AugmentConfig,
    aspect_ratio: float,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Draw the augmented crop region of each sample of a batch.

    Args:
        seed: ``(2,)`` int seed of the stateless random ops.
        center, scale: ``(B, 2)`` the unaugmented region (image pixels, crop aspect).
        keypoints: ``(B, K, 2)`` image pixels; ``visibility``: ``(B, K)`` COCO flags.
        schema: gives the upper/lower body keypoints.
        config: the augmentation settings.
        aspect_ratio: crop width / height.

    Returns:
        ``center (B, 2)``, ``scale (B, 2)`` image pixels, ``rotation (B,)`` degrees,
        ``flip (B,)`` bool.
    """
    batch = tf.shape(center)[0]
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 8))

    def uniform(i: int, shape: tf.Tensor | list) -> tf.Tensor:
        return tf.random.stateless_uniform(shape, seeds[i])

    def normal(i: int, shape: tf.Tensor | list) -> tf.Tensor:
        return tf.random.stateless_normal(shape, seeds[i])

    # 1. half body
    labeled = visibility > 0
    upper_mask, lower_mask = _body_masks(schema)
    upper, lower = labeled & upper_mask, labeled & lower_mask
    count = lambda m: tf.reduce_sum(tf.cast(m, tf.int32), axis=1)  # noqa: E731
    pick_upper = ((uniform(0, [batch]) < 0.5) & (count(upper) > 2)) | (count(lower) <= 2)
    chosen = tf.where(pick_upper[:, None], upper, lower)
    min_count = config.half_body_min_keypoints or schema.num_keypoints // 2
    apply = (uniform(1, [batch]) < config.half_body_prob) & (count(labeled) > min_count)
    apply &= count(chosen) >= 2
    lo = tf.reduce_min(tf.where(chosen[..., None], keypoints, np.inf), axis=1)
    hi = tf.reduce_max(tf.where(chosen[..., None], keypoints, -np.inf), axis=1)
    half_center, half_scale = affine_tf.box_to_center_scale(
        tf.concat([lo, hi - lo], axis=1), aspect_ratio, config.half_body_padding
    )
    center = tf.where(apply[:, None], half_center, center)
    scale = tf.where(apply[:, None], half_scale, scale)
    # 2. centre shift
    shift = (2.0 * uniform(2, [batch, 2]) - 1.0) * config.shift_factor * scale
    center += tf.where((uniform(3, [batch]) < config.shift_prob)[:, None], shift, 0.0)
    # 3. scale
    f = config.scale_factor
    scale *= tf.clip_by_value(1.0 + f * normal(4, [batch, 1]), 1.0 - f, 1.0 + f)
    # 4. rotation
    r = config.rotation_factor
    angle = tf.clip_by_value(r * normal(5, [batch]), -2.0 * r, 2.0 * r)
    rotation = tf.where(uniform(6, [batch]) < config.rotation_prob, angle, 0.0)
    # 5. flip
    flip = uniform(7, [batch]) < config.flip_prob
    return center, scale, rotation, flip
