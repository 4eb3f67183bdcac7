"""Exact GELU written with erf, so that it exports everywhere."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops


def gelu(x: Any) -> Any:
    """Exact (erf) GELU of a tensor (Keras 3 backend tensor, or a TensorFlow tensor under the
    TensorFlow backend), same shape and dtype."""
    return 0.5 * x * (1.0 + ops.erf(x * (1.0 / math.sqrt(2.0))))


@keras.saving.register_keras_serializable(package="kpose")
class GELU(keras.layers.Layer):
    """Exact (erf) GELU: ``0.5 * x * (1 + erf(x / sqrt(2)))``, PyTorch's ``nn.GELU()``.

    Same values as ``keras.activations.gelu(x, approximate=False)``, but TensorFlow writes
    that one with ``erfc``, which tf2onnx emits as an op ONNX does not have (an invalid file).
    This form becomes ONNX ``Erf`` and, in TFLite, the builtin ``GELU`` op.

    Input and output: any shape.
    """

    def call(self, inputs: Any) -> Any:
        return gelu(inputs)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape
