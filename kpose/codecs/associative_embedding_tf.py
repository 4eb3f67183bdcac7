"""TensorFlow twin of :mod:`kpose.codecs.associative_embedding`'s candidate search, for the
graph an exported bottom-up model carries: heatmap NMS (a max-pool: a pixel is kept where it
equals its neighbourhood's maximum), the ``top_k`` peaks of each keypoint type, each moved to
the sub-pixel peak of a Gaussian through it and its neighbours — TFLite builtins only, under
the decoder's name scope (quantizers keep it in float32). Grouping stays on the device, in
numpy.
"""

from __future__ import annotations

import tensorflow as tf

from kpose.codecs.decoders import LOG_EPS
from kpose.codecs.decoders_tf import DECODER_SCOPE


def log_parabola_offset_tf(left: tf.Tensor, centre: tf.Tensor, right: tf.Tensor) -> tf.Tensor:
    """Twin of :func:`kpose.codecs.associative_embedding.log_parabola_offset`."""
    a, c, b = (tf.math.log(tf.maximum(v, LOG_EPS)) for v in (left, centre, right))
    curve = a - 2.0 * c + b
    bends = curve < 0
    offset = tf.where(bends, 0.5 * (a - b) / tf.where(bends, curve, -tf.ones_like(curve)), tf.zeros_like(curve))
    return tf.clip_by_value(offset, -0.5, 0.5)


def find_candidates(
    heatmaps: tf.Tensor, tags: tf.Tensor, top_k: int, nms_kernel: int
) -> dict[str, tf.Tensor]:
    """Twin of :func:`kpose.codecs.associative_embedding.find_candidates` on a batch.

    Args:
        heatmaps, tags: ``(B, h, w, K)`` float32.
        top_k: M, candidates per keypoint type (fewer on a map of fewer pixels).
        nms_kernel: odd max-pool kernel of the heatmap NMS.

    Returns:
        ``candidates (B, K, M, 2)`` (x, y) normalized to the input (``x_norm = (x_px + 0.5) /
        W``), ``candidate_scores (B, K, M)`` and ``candidate_tags (B, K, M)``.
    """
    h, w, k = heatmaps.shape[1:]
    with tf.name_scope(DECODER_SCOPE):
        pooled = tf.nn.max_pool2d(heatmaps, nms_kernel, 1, "SAME")
        peaks = tf.where(tf.equal(pooled, heatmaps), heatmaps, tf.zeros_like(heatmaps))
        flat = tf.reshape(tf.transpose(peaks, [0, 3, 1, 2]), [-1, k, h * w])  # (B, K, h*w)
        scores, index = tf.math.top_k(flat, k=min(top_k, h * w))  # (B, K, M)
        y, x = index // w, index % w
        maps = tf.reshape(tf.transpose(heatmaps, [0, 3, 1, 2]), [-1, k, h * w])

        def at(dy: int, dx: int) -> tf.Tensor:
            yy = tf.clip_by_value(y + dy, 0, h - 1)
            xx = tf.clip_by_value(x + dx, 0, w - 1)
            return tf.gather(maps, yy * w + xx, batch_dims=2)

        centre = at(0, 0)
        dx = log_parabola_offset_tf(at(0, -1), centre, at(0, 1)) * tf.cast((x > 0) & (x < w - 1), tf.float32)
        dy = log_parabola_offset_tf(at(-1, 0), centre, at(1, 0)) * tf.cast((y > 0) & (y < h - 1), tf.float32)
        coords = tf.stack([tf.cast(x, tf.float32) + dx, tf.cast(y, tf.float32) + dy], axis=-1)
        flat_tags = tf.reshape(tf.transpose(tags, [0, 3, 1, 2]), [-1, k, h * w])
        # (u + 0.5) / w as a multiply-add with (2,) constants: tf2onnx's transpose optimizer
        # fails on an Add of a scalar constant here
        return {
            "candidates": coords * tf.constant([1.0 / w, 1.0 / h]) + tf.constant([0.5 / w, 0.5 / h]),
            "candidate_scores": tf.identity(scores),
            "candidate_tags": tf.gather(flat_tags, index, batch_dims=2),
        }
