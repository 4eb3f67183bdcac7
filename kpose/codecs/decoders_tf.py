"""TensorFlow twin of :mod:`kpose.codecs.decoders`, for graphs and exported models.

Only ops that are TFLite builtins are used (so the exported graph converts without select ops): ``tf.math.argmax``
(ARG_MAX), ``tf.nn.max_pool2d``, gathers, transposes and reshapes; no MaxPoolWithArgmax and
no ``keras.ops.argmax`` (which lowers to Bitcast/BitwiseAnd). Shapes as in the numpy module;
the batch size may be dynamic, the heatmap size must be static.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kpose.codecs.decoders import LOG_EPS, _check_kernel, decode_with, smoothing_matrix
from kpose.codecs.gaussian import SIGMA_AT_STRIDE_4

# Name scope of an exported graph's decoder ops: quantizers keep the ops under it in float32.
DECODER_SCOPE = "kpose_decoder"


def _argmax(values: tf.Tensor) -> tf.Tensor:
    return tf.math.argmax(values, axis=-1, output_type=tf.int32)


def _per_keypoint(heatmaps: tf.Tensor) -> tf.Tensor:
    """``(B, h, w, K)`` -> ``(B, K, h, w)``."""
    return tf.transpose(heatmaps, [0, 3, 1, 2])


def _take(values: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """``values (B, K, N)``, ``index (B, K)`` -> ``(B, K)``."""
    return tf.gather(values, index[..., None], batch_dims=2)[..., 0]


def locate_argmax(heatmaps: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Integer ``coords (B, K, 2)`` (int32) and ``scores (B, K)`` of each channel's maximum."""
    h, w, k = heatmaps.shape[1:]
    flat = tf.reshape(_per_keypoint(heatmaps), [-1, k, h * w])
    index = _argmax(flat)
    return tf.stack([index % w, index // w], axis=-1), _take(flat, index)


def locate_maxpool(heatmaps: tf.Tensor, kernel: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Same result as :func:`locate_argmax`, found through a ``kernel`` max-pool."""
    h, w, k = heatmaps.shape[1:]
    _check_kernel((h, w), kernel)
    if kernel == 1:
        pooled = heatmaps
    else:
        pooled = tf.nn.max_pool2d(heatmaps, kernel, kernel, "VALID")
    cells = tf.reshape(_per_keypoint(pooled), [-1, k, (h // kernel) * (w // kernel)])
    cell_row = _argmax(cells) // (w // kernel)  # (B, K)
    strips = tf.reshape(_per_keypoint(heatmaps), [-1, k, h // kernel, kernel * w])
    strip = tf.gather(strips, cell_row[..., None], batch_dims=2)[:, :, 0]  # (B, K, s*w)
    index = _argmax(strip)
    coords = tf.stack([index % w, cell_row * kernel + index // w], axis=-1)
    return coords, _take(strip, index)


def locate_rows(heatmaps: tf.Tensor, float_scope: str | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    """The max-pool decoder with a ``1 x w`` window: integer ``coords (B, K, 2)`` (x, y) and
    ``scores (B, K)`` of each channel's maximum, exactly :func:`locate_argmax`'s (first in
    row-major order on ties), for the price of one pooling pass over the map.

    Max-pool each row (a reduce-max over the row axis: the same values, and in ONNX no
    transpose to NCHW; the first row holding the maximum is the argmax's row), gather that
    row per keypoint (``w*K`` values, not the whole map), keep the keypoint's own channel
    (``w`` values), take its first maximum. It never transposes or reshapes the full map: in
    TFLite either copies it, which costs more than the pooling itself at full resolution
    (17x256x192 on a 2-core CPU: 0.21 ms in all against 0.50 with a reshape of the map). The
    pooling and the gathers only move values, so a quantizer may run them on int8 maps; the
    maximum and its position, which must stay in float, are built under the name scope
    ``float_scope`` when one is given.
    """
    h, w, k = heatmaps.shape[1:]
    row_max = tf.reduce_max(heatmaps, axis=2)  # (B, h, K): the 1 x w max-pool, layout-free
    rows = tf.math.argmax(row_max, axis=1, output_type=tf.int32)  # (B, K)
    lines = tf.gather(heatmaps, rows, axis=1, batch_dims=1)  # (B, K, w, K): [b, j] = row rows[b, j]
    # lines[b, j, x, j], keypoint j's own channel, at j*w*K + x*K + j of the flattened lines.
    own_index = (np.arange(k)[:, None] * (w * k + 1) + np.arange(w)[None, :] * k).ravel()
    own = tf.reshape(tf.gather(tf.reshape(lines, [-1, k * w * k]), own_index, axis=1), [-1, k, w])
    with tf.name_scope(float_scope or "locate_rows"):
        return tf.stack([_argmax(own), rows], axis=-1), tf.reduce_max(own, axis=-1)


def _neighbourhood(heatmaps: tf.Tensor, coords: tf.Tensor, radius: int) -> tf.Tensor:
    """``(B, K, 2r+1, 2r+1)`` windows centred on integer ``coords``, zero outside the map."""
    pad = [[0, 0], [0, 0], [radius, radius], [radius, radius]]
    padded = tf.pad(_per_keypoint(heatmaps), pad)
    offsets = tf.range(2 * radius + 1, dtype=tf.int32)
    rows = coords[..., 1, None] + offsets  # (B, K, P)
    cols = coords[..., 0, None] + offsets
    band = tf.gather(padded, rows, batch_dims=2)  # (B, K, P, w + 2r)
    cols = cols[:, :, None, :] + tf.zeros_like(rows)[..., None]  # (B, K, P, P)
    return tf.gather(band, cols, batch_dims=3)  # (B, K, P, P)


def refine_quarter(heatmaps: tf.Tensor, coords: tf.Tensor) -> tf.Tensor:
    """Shift integer ``coords`` a quarter pixel toward the higher neighbour on each axis."""
    h, w = heatmaps.shape[1:3]
    win = _neighbourhood(heatmaps, coords, 1)
    x, y = coords[..., 0], coords[..., 1]
    dx = tf.sign(win[..., 1, 2] - win[..., 1, 0]) * tf.cast((x > 0) & (x < w - 1), win.dtype)
    dy = tf.sign(win[..., 2, 1] - win[..., 0, 1]) * tf.cast((y > 0) & (y < h - 1), win.dtype)
    return tf.cast(coords, win.dtype) + 0.25 * tf.stack([dx, dy], axis=-1)


def _taylor_offsets(c: tf.Tensor) -> tf.Tensor:
    """TensorFlow version of :func:`kpose.codecs.decoders.taylor_offsets`."""
    gx = 0.5 * (c[..., 1, 2] - c[..., 1, 0])
    gy = 0.5 * (c[..., 2, 1] - c[..., 0, 1])
    hxx = c[..., 1, 2] - 2 * c[..., 1, 1] + c[..., 1, 0]
    hyy = c[..., 2, 1] - 2 * c[..., 1, 1] + c[..., 0, 1]
    hxy = 0.25 * (c[..., 2, 2] - c[..., 0, 2] - c[..., 2, 0] + c[..., 0, 0])
    det = hxx * hyy - hxy * hxy
    valid = (det > 0) & (hxx < 0)
    safe_det = tf.where(valid, det, tf.ones_like(det))
    dx = -(hyy * gx - hxy * gy) / safe_det
    dy = -(hxx * gy - hxy * gx) / safe_det
    offsets = tf.stack([dx, dy], axis=-1) * tf.cast(valid, c.dtype)[..., None]
    return tf.clip_by_value(offsets, -1.0, 1.0)


def refine_dark(heatmaps: tf.Tensor, coords: tf.Tensor, sigma: float) -> tf.Tensor:
    """DARK refinement of integer ``coords``; ``sigma`` is the target's, in heatmap pixels."""
    smooth = tf.constant(smoothing_matrix(sigma), heatmaps.dtype)
    radius = (smooth.shape[1] - 1) // 2
    win = _neighbourhood(heatmaps, coords, radius)
    blurred = tf.einsum("ip,bkpq,jq->bkij", smooth, win, smooth)
    log_win = tf.math.log(tf.maximum(blurred, LOG_EPS))
    return tf.cast(coords, heatmaps.dtype) + _taylor_offsets(log_win)


TF_OPS = {
    "locate_argmax": locate_argmax,
    "locate_maxpool": locate_maxpool,
    "refine_quarter": refine_quarter,
    "refine_dark": refine_dark,
}


def decode(
    heatmaps: tf.Tensor,
    decoder: str = "argmax",
    kernel: int = 1,
    sigma: float = SIGMA_AT_STRIDE_4,
) -> tuple[tf.Tensor, tf.Tensor]:
    """``(B, h, w, K)`` heatmaps -> ``coords (B, K, 2)`` float32 heatmap pixels, ``scores (B, K)``."""
    coords, scores = decode_with(TF_OPS, tf.cast(heatmaps, tf.float32), decoder, kernel, sigma)
    return tf.cast(coords, tf.float32), scores


def flip_back(heatmaps: tf.Tensor, flip_index, shift: bool = False) -> tf.Tensor:
    """Undo a horizontal input flip on ``(B, h, w, K)`` heatmaps (see the numpy twin)."""
    flipped = tf.gather(tf.reverse(heatmaps, axis=[2]), list(flip_index), axis=3)
    if shift:
        flipped = tf.concat([flipped[:, :, :1], flipped[:, :, :-1]], axis=2)
    return flipped


def flip_average(heatmaps: tf.Tensor, flipped_heatmaps: tf.Tensor, flip_index, shift: bool = False) -> tf.Tensor:
    """Flip test: mean of the plain and the un-flipped prediction of the flipped input."""
    return 0.5 * (heatmaps + flip_back(flipped_heatmaps, flip_index, shift))
