"""Input normalization inside the model, so every consumer feeds plain pixels."""

from __future__ import annotations

from typing import Any, Sequence

import keras
from keras import ops


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
        x = ops.cast(inputs, self.compute_dtype)
        if self.bgr:
            x = ops.flip(x, axis=-1)
        mean = ops.convert_to_tensor(self.mean, self.compute_dtype)
        scale = ops.convert_to_tensor([1.0 / s for s in self.std], self.compute_dtype)
        return (x - mean) * scale

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mean": list(self.mean), "std": list(self.std), "bgr": self.bgr}
