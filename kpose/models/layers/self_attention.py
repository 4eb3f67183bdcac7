"""Multi-head self-attention written with matmul, softmax, reshape and transpose, so that it
converts to builtin TFLite ops and to ONNX."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kpose")
class MultiHeadSelfAttention(keras.layers.Layer):
    """PyTorch's ``nn.MultiheadAttention(d, heads)`` as the DETR / TransPose encoder calls it:
    queries and keys from one tensor (the tokens plus their position embedding), values from
    another (the tokens alone).

    ``q = qk Wq + bq``, ``k = qk Wk + bk``, ``v = x Wv + bv``, split into ``num_heads`` heads of
    ``d / num_heads`` channels; per head ``softmax(q k^T / sqrt(d / num_heads)) v``; the heads
    concatenated and projected, ``Wo``, ``bo``. Dropout of rate ``dropout`` on the attention
    weights while training.

    Weights: ``{query,key,value,output}_kernel`` (d, d) and ``_bias`` (d,): 4 d (d + 1)
    parameters, PyTorch's ``in_proj_weight`` split in three, and ``out_proj``.

    Inputs: ``[qk, x]``, each (B, N, d). Output: (B, N, d).
    """

    def __init__(self, num_heads: int, dropout: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.dropout = float(dropout)
        self._dropout = keras.layers.Dropout(self.dropout)

    def build(self, input_shape: list[tuple[int | None, ...]]) -> None:
        channels = input_shape[0][-1]
        if channels % self.num_heads:
            raise ValueError(
                f"{self.name}: channels ({channels}) must be a multiple of the heads "
                f"({self.num_heads})"
            )
        self.channels = channels
        for name in ("query", "key", "value", "output"):
            kernel = self.add_weight(
                name=f"{name}_kernel", shape=(channels, channels), initializer="glorot_uniform"
            )
            bias = self.add_weight(name=f"{name}_bias", shape=(channels,), initializer="zeros")
            setattr(self, f"{name}_kernel", kernel)
            setattr(self, f"{name}_bias", bias)

    def _heads(self, x: Any, tokens: int) -> Any:
        """(B, N, d) -> (B, heads, N, d / heads)."""
        x = ops.reshape(x, (-1, tokens, self.num_heads, self.channels // self.num_heads))
        return ops.transpose(x, (0, 2, 1, 3))

    def call(self, inputs: list[Any], training: bool | None = None) -> Any:
        qk, x = inputs
        tokens = qk.shape[1]
        scale = 1.0 / math.sqrt(self.channels // self.num_heads)
        q = self._heads((ops.matmul(qk, self.query_kernel) + self.query_bias) * scale, tokens)
        k = self._heads(ops.matmul(qk, self.key_kernel) + self.key_bias, tokens)
        v = self._heads(ops.matmul(x, self.value_kernel) + self.value_bias, tokens)
        weights = ops.softmax(ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))), axis=-1)
        weights = self._dropout(weights, training=training)
        out = ops.transpose(ops.matmul(weights, v), (0, 2, 1, 3))
        out = ops.reshape(out, (-1, tokens, self.channels))
        return ops.matmul(out, self.output_kernel) + self.output_bias

    def compute_output_shape(
        self, input_shape: list[tuple[int | None, ...]]
    ) -> tuple[int | None, ...]:
        return tuple(input_shape[1])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(num_heads=self.num_heads, dropout=self.dropout)
        return config
