"""Local-window multi-head self-attention with a relative position bias (HRFormer), written with
reshape, 4-D transpose, matmul, gather and softmax, so that it converts to builtin TFLite ops
and to ONNX."""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops


def relative_position_index(window: int) -> np.ndarray:
    """(window^2, window^2) int32: for query token a and key token b of a window (row-major),
    the row of the (2 window - 1)^2 bias table that holds their offset (dy, dx)."""
    coords = np.stack(np.meshgrid(np.arange(window), np.arange(window), indexing="ij")).reshape(
        2, -1
    )
    offsets = coords[:, :, None] - coords[:, None, :] + window - 1  # (2, N, N), 0..2w-2
    return (offsets[0] * (2 * window - 1) + offsets[1]).astype(np.int32)


def window_padding(size: int, window: int) -> tuple[int, int]:
    """Zeros before and after an axis of ``size`` pixels to reach a multiple of ``window``,
    centred as HRFormer pads (the extra pixel after)."""
    total = -size % window
    return total // 2, total - total // 2


@keras.saving.register_keras_serializable(package="kpose")
class WindowAttention(keras.layers.Layer):
    """HRFormer's local-window self-attention on a feature map.

    The map is zero-padded (centred) to multiples of ``window_size`` and cut into
    non-overlapping ``window_size`` x ``window_size`` windows; in each window, ``num_heads``-head
    self-attention ``softmax(q k^T / sqrt(C / heads) + B) v`` with q, k, v from one (C, 3C)
    projection with bias, and B a learned bias per head and relative offset (a
    ((2 w - 1)^2, heads) table, as Swin's); the heads are concatenated, projected (C, C) with
    bias, the windows put back and the padding removed. Dropout of rate ``dropout`` on the
    attention weights while training.

    Input: (B, H, W, C). Output: (B, H, W, C).
    """

    def __init__(
        self, num_heads: int, window_size: int = 7, dropout: float = 0.0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.window_size = int(window_size)
        self.dropout = float(dropout)
        self._dropout = keras.layers.Dropout(self.dropout)
        self._index = relative_position_index(self.window_size).reshape(-1)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        channels = input_shape[-1]
        if channels % self.num_heads:
            raise ValueError(
                f"{self.name}: channels ({channels}) must be a multiple of the heads "
                f"({self.num_heads})"
            )
        self.channels = channels
        self.qkv_kernel = self.add_weight(
            name="qkv_kernel", shape=(channels, 3 * channels), initializer="glorot_uniform"
        )
        self.qkv_bias = self.add_weight(name="qkv_bias", shape=(3 * channels,), initializer="zeros")
        self.output_kernel = self.add_weight(
            name="output_kernel", shape=(channels, channels), initializer="glorot_uniform"
        )
        self.output_bias = self.add_weight(
            name="output_bias", shape=(channels,), initializer="zeros"
        )
        self.relative_bias = self.add_weight(
            name="relative_bias",
            shape=((2 * self.window_size - 1) ** 2, self.num_heads),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        )

    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        """(H, W) rounded up to multiples of the window."""
        w = self.window_size
        return math.ceil(height / w) * w, math.ceil(width / w) * w

    def _partition(self, x: Any, height: int, width: int) -> Any:
        """(B, H, W, C) with H, W multiples of w -> (B * windows, w * w, C), windows and their
        tokens row-major."""
        w, c = self.window_size, self.channels
        x = ops.reshape(x, (-1, w, width // w, w * c))
        x = ops.transpose(x, (0, 2, 1, 3))
        return ops.reshape(x, (-1, w * w, c))

    def _merge(self, x: Any, height: int, width: int) -> Any:
        """The inverse of :meth:`_partition`: (B * windows, w * w, C) -> (B, H, W, C)."""
        w, c = self.window_size, self.channels
        x = ops.reshape(x, (-1, width // w, w, w * c))
        x = ops.transpose(x, (0, 2, 1, 3))
        return ops.reshape(x, (-1, height, width, c))

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        height, width = inputs.shape[1:3]
        top, bottom = window_padding(height, self.window_size)
        left, right = window_padding(width, self.window_size)
        x = ops.pad(inputs, ((0, 0), (top, bottom), (left, right), (0, 0)))
        padded_h, padded_w = height + top + bottom, width + left + right
        tokens = self.window_size**2
        head_channels = self.channels // self.num_heads
        qkv = ops.matmul(self._partition(x, padded_h, padded_w), self.qkv_kernel) + self.qkv_bias
        qkv = ops.reshape(qkv, (-1, tokens, 3 * self.num_heads, head_channels))
        qkv = ops.transpose(qkv, (0, 2, 1, 3))  # (windows, 3 heads, N, C / heads)
        q = qkv[:, : self.num_heads] * (1.0 / math.sqrt(head_channels))
        k = qkv[:, self.num_heads : 2 * self.num_heads]
        v = qkv[:, 2 * self.num_heads :]
        bias = ops.take(self.relative_bias, self._index, axis=0)  # (N * N, heads)
        bias = ops.reshape(ops.transpose(bias, (1, 0)), (1, self.num_heads, tokens, tokens))
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) + bias
        weights = self._dropout(ops.softmax(scores, axis=-1), training=training)
        out = ops.transpose(ops.matmul(weights, v), (0, 2, 1, 3))
        out = ops.reshape(out, (-1, tokens, self.channels))
        out = ops.matmul(out, self.output_kernel) + self.output_bias
        out = self._merge(out, padded_h, padded_w)
        return out[:, top : top + height, left : left + width, :]

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(num_heads=self.num_heads, window_size=self.window_size, dropout=self.dropout)
        return config
