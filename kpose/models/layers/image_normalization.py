"""Input normalization inside the model, so every consumer feeds plain pixels."""

from __future__ import annotations

from typing import Any, Sequence

import keras
from keras import ops


def normalize_image(x: Any, mean: Sequence[float], std: Sequence[float], bgr: bool = False) -> Any:
    """``(x - mean) / std`` per channel, after reversing the channels if ``bgr``.

    Args:
        x: (..., C) pixels in 0..255, floating point (a Keras 3 backend tensor, or a TensorFlow
            tensor under the TensorFlow backend).
        mean, std: C values each, in 0..255 units, in the channel order the backbone reads.
        bgr: reverse the channels first.

    Returns:
        (..., C) normalized values, ``x``'s dtype.
    """
    if bgr:
        x = ops.flip(x, axis=-1)
    offset = ops.convert_to_tensor(mean, x.dtype)
    scale = ops.convert_to_tensor([1.0 / s for s in std], x.dtype)
    return (x - offset) * scale


@keras.saving.register_keras_serializable(package="kpose")
class ImageNormalization(keras.layers.Layer):
    """RGB pixels in 0..255 to what the backbone expects: ``(x - mean) / std`` per channel.

    Training, evaluation, export and the device runtime all feed the model RGB crops with
    values 0..255 (uint8 cast to float); the normalization of the backbone's ImageNet weights
    lives here, in the graph, and travels with the ``.keras`` file.

    Args:
        mean, std: per channel, in 0..255 units, in the channel order the backbone reads.
        bgr: reverse the channels to BGR first (Caffe-style ResNet weights).

    Input and output: ``(B, H, W, 3)``.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], bgr: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)
        self.bgr = bool(bgr)

    def call(self, inputs: Any) -> Any:
        return normalize_image(ops.cast(inputs, self.compute_dtype), self.mean, self.std, self.bgr)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mean": list(self.mean), "std": list(self.std), "bgr": self.bgr}
