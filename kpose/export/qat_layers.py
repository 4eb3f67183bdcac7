"""tf_keras twins of kpose's Keras 3 layers, and the tfmot quantize configs QAT gives them.

Imported only by the QAT subprocess (:mod:`kpose.export.qat`), never by the rest of kpose:
importing tensorflow-model-optimization switches TensorFlow's Keras alias to ``tf_keras`` for
the whole process.

The twins of :class:`~kpose.models.layers.ImageNormalization`, :class:`~kpose.models.layers.GELU`
and :class:`~kpose.models.layers.KeypointPixelShuffle` call the functions those layers call
(:func:`~kpose.models.layers.image_normalization.normalize_image`,
:func:`~kpose.models.layers.gelu.gelu`,
:func:`~kpose.models.layers.pixel_shuffle.keypoint_pixel_shuffle`), written with ``keras.ops``,
which run on TensorFlow tensors under the TensorFlow backend. :class:`HardSwish` and
:class:`ScalarOp` stand for Keras 3 built-ins that tfmot cannot quantize.
"""

from __future__ import annotations

from typing import Any, Sequence

import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras

from kpose.export.layers import decomposed_hard_swish
from kpose.models.layers.gelu import gelu
from kpose.models.layers.image_normalization import normalize_image
from kpose.models.layers.pixel_shuffle import keypoint_pixel_shuffle

_quantizers = tfmot.quantization.keras.quantizers


class OutputQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """No weights; the output is quantized (8 bit, asymmetric, moving-average range)."""

    def get_weights_and_quantizers(self, layer: tf_keras.layers.Layer) -> list:
        return []

    def get_activations_and_quantizers(self, layer: tf_keras.layers.Layer) -> list:
        return []

    def set_quantize_weights(self, layer: tf_keras.layers.Layer, quantize_weights: list) -> None:
        pass

    def set_quantize_activations(self, layer: tf_keras.layers.Layer, quantize_activations: list) -> None:
        pass

    def get_output_quantizers(self, layer: tf_keras.layers.Layer) -> list:
        return [_quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False, narrow_range=False)]

    def get_config(self) -> dict[str, Any]:
        return {}


class PassThroughQuantizeConfig(OutputQuantizeConfig):
    """Moves values only (reshape, transpose, depth-to-space): nothing to quantize."""

    def get_output_quantizers(self, layer: tf_keras.layers.Layer) -> list:
        return []


class Normalization(tf_keras.layers.Layer):
    """Twin of :class:`kpose.models.layers.ImageNormalization`: ``(x - mean) / std`` per
    channel, after reversing the channels if ``bgr``.

    Args:
        mean, std: per channel, in 0..255 units.
        bgr: reverse the channels to BGR first.

    Input: (B, H, W, 3) float pixels in 0..255. Output: (B, H, W, 3) normalized.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], bgr: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.mean, self.std, self.bgr = list(mean), list(std), bool(bgr)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return normalize_image(inputs, self.mean, self.std, self.bgr)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mean": self.mean, "std": self.std, "bgr": self.bgr}


class HardSwish(tf_keras.layers.Layer):
    """Keras 3's ``hard_swish`` activation, ``(x / 6) * relu6(x + 3)``
    (:func:`kpose.export.layers.decomposed_hard_swish`; tfmot's Activation
    config does not know it).

    Input and output: any shape.
    """

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return decomposed_hard_swish(inputs)


class Gelu(tf_keras.layers.Layer):
    """Twin of :class:`kpose.models.layers.GELU` (exact, erf).

    Input and output: any shape.
    """

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return gelu(inputs)


class PixelShuffle(tf_keras.layers.Layer):
    """Twin of :class:`kpose.models.layers.KeypointPixelShuffle`.

    Args:
        num_keypoints: K.
        upscale: r.

    Input: (B, H, W, K*r*r), H and W static. Output: (B, H*r, W*r, K).
    """

    def __init__(self, num_keypoints: int, upscale: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.num_keypoints, self.upscale = int(num_keypoints), int(upscale)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return keypoint_pixel_shuffle(inputs, self.num_keypoints, self.upscale)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_keypoints": self.num_keypoints, "upscale": self.upscale}


class ScalarOp(tf_keras.layers.Layer):
    """``x + c`` or ``x * c`` with a constant ``c`` (what ``x + 3.0`` in a Keras 3
    functional graph records as an operation, e.g. in MobileNetV3's hard sigmoid).

    Args:
        kind: ``"Add"`` or ``"Multiply"`` (the Keras 3 operation's class name).
        constant: c.

    Input and output: any shape.
    """

    def __init__(self, kind: str, constant: float, **kwargs: Any):
        super().__init__(**kwargs)
        self.kind, self.constant = kind, float(constant)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return inputs + self.constant if self.kind == "Add" else inputs * self.constant

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kind": self.kind, "constant": self.constant}


# The quantize config of each layer class tfmot's default registry does not cover.
QUANTIZE_CONFIGS: dict[type, type[OutputQuantizeConfig]] = {
    Normalization: OutputQuantizeConfig,
    HardSwish: OutputQuantizeConfig,
    Gelu: OutputQuantizeConfig,
    PixelShuffle: PassThroughQuantizeConfig,
    ScalarOp: OutputQuantizeConfig,
    tf_keras.layers.Multiply: OutputQuantizeConfig,
}

# What ``quantize_apply`` needs in scope to rebuild the annotated model, by class name.
CUSTOM_OBJECTS: dict[str, type] = {
    cls.__name__: cls
    for cls in (OutputQuantizeConfig, PassThroughQuantizeConfig, Normalization, HardSwish, Gelu, PixelShuffle, ScalarOp)
}
