"""The fixed 2-D sine position embedding of DETR and TransPose, added to a token sequence."""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops


def sine_position_table(
    height: int, width: int, channels: int, temperature: float = 10000.0
) -> np.ndarray:
    """The 2-D sine embedding of a ``height`` x ``width`` grid: (height * width, channels),
    float32, tokens in row-major order (token ``i * width + j`` is row i, column j).

    The first half of the channels encodes the row, the second half the column. A position p
    (1-based row or column, scaled to (0, 2 pi]) gives, for channel k of its half (F = channels
    / 2 of them), ``sin(p / t_k)`` for even k and ``cos(p / t_k)`` for odd k, with
    ``t_k = temperature ** (2 * (k // 2) / F)``.
    """
    if channels % 4:
        raise ValueError(f"sine position embedding: channels ({channels}) must be a multiple of 4")
    half = channels // 2
    eps = 1e-6
    rows = np.arange(1, height + 1, dtype=np.float64) / (height + eps) * 2 * math.pi
    cols = np.arange(1, width + 1, dtype=np.float64) / (width + eps) * 2 * math.pi
    k = np.arange(half)
    periods = temperature ** (2 * (k // 2) / half)

    def encode(positions: np.ndarray) -> np.ndarray:  # (n,) -> (n, half)
        angles = positions[:, None] / periods
        return np.where(k % 2 == 0, np.sin(angles), np.cos(angles))

    row_code = np.broadcast_to(encode(rows)[:, None, :], (height, width, half))
    col_code = np.broadcast_to(encode(cols)[None, :, :], (height, width, half))
    return (
        np.concatenate([row_code, col_code], axis=-1)
        .reshape(height * width, channels)
        .astype(np.float32)
    )


@keras.saving.register_keras_serializable(package="kpose")
class SinePositionEmbedding(keras.layers.Layer):
    """Adds the fixed 2-D sine position embedding (:func:`sine_position_table`) to the tokens
    of a ``height`` x ``width`` feature map.

    The table is a frozen (non-trainable) weight of shape (height * width, channels), as in
    TransPose, where it is a parameter without gradient: it counts among the model's
    parameters and fixes the input size the model was built for.

    Input: tokens (B, height * width, channels), row-major. Output: same shape.
    """

    def __init__(
        self, height: int, width: int, temperature: float = 10000.0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.height = int(height)
        self.width = int(width)
        self.temperature = float(temperature)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        tokens, channels = input_shape[-2:]
        if tokens != self.height * self.width:
            raise ValueError(f"{self.name}: {tokens} tokens, expected {self.height} x {self.width}")
        table = sine_position_table(self.height, self.width, channels, self.temperature)
        self.embedding = self.add_weight(
            name="embedding",
            shape=table.shape,
            initializer=lambda shape, dtype=None: ops.convert_to_tensor(table, dtype=dtype),
            trainable=False,
        )

    def call(self, inputs: Any) -> Any:
        return inputs + ops.cast(self.embedding, inputs.dtype)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(height=self.height, width=self.width, temperature=self.temperature)
        return config
