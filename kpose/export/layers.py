"""Export-only twins of kpose layers, in the form interpreters run fastest.

:class:`GroupedKeypointConv2D` computes exactly what :class:`kpose.models.KeypointConv2D`
computes, as one grouped convolution (TFLite ``CONV_2D`` with ``groups = K``), which XNNPACK
runs in float32 and int8. The training layer's depthwise-times-``n`` + sum form is what
TensorFlow can run on a CPU, but XNNPACK's int8 depthwise kernels with a channel multiplier
of ``n = r*r`` are slow: on a 2-core CPU the SR head's 9x9 large-kernel conv (68 -> 1088
channels at 32x24) takes 28 ms in int8 as depthwise + sum and 3.6 ms as a grouped
convolution (float32: 8.1 and 5.4 ms). TensorFlow itself cannot run a grouped convolution on
a CPU without XLA, so this layer exists only inside the exported graphs, which the converters
trace but never run.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kpose.models.layers import KeypointConv2D


@keras.saving.register_keras_serializable(package="kpose_export")
class GroupedKeypointConv2D(keras.layers.Layer):
    """``Conv2D(K * n, kernel_size, groups=K, padding="same")`` as one grouped conv op.

    Kernel layout ``(k, k, e, K*n)``: ``kernel[:, :, i, j*n + m]`` connects input channel
    ``j*e + i`` (keypoint ``j``'s embedding) to output ``j*n + m``.

    Input: (B, H, W, e*K). Output: (B, H, W, K*n), channels in [keypoint, n] order.
    """

    def __init__(self, num_keypoints: int, outputs_per_keypoint: int, kernel_size: int, use_bias: bool = True, **kwargs: Any):
        super().__init__(**kwargs)
        self.num_keypoints = int(num_keypoints)
        self.outputs_per_keypoint = int(outputs_per_keypoint)
        self.kernel_size = int(kernel_size)
        self.use_bias = bool(use_bias)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        embed = input_shape[-1] // self.num_keypoints
        outputs = self.num_keypoints * self.outputs_per_keypoint
        self.kernel = self.add_weight(name="kernel", shape=(self.kernel_size, self.kernel_size, embed, outputs))
        self.bias = self.add_weight(name="bias", shape=(outputs,), initializer="zeros") if self.use_bias else None

    def call(self, inputs: Any) -> Any:
        x = tf.nn.conv2d(inputs, self.kernel, strides=1, padding="SAME")
        return x + self.bias if self.bias is not None else x

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], self.num_keypoints * self.outputs_per_keypoint)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_keypoints": self.num_keypoints,
            "outputs_per_keypoint": self.outputs_per_keypoint,
            "kernel_size": self.kernel_size,
            "use_bias": self.use_bias,
        }

    @classmethod
    def from_layer(cls, layer: KeypointConv2D) -> "GroupedKeypointConv2D":
        """The twin of a built :class:`KeypointConv2D`, with its weights rearranged."""
        twin = cls(
            layer.num_keypoints, layer.outputs_per_keypoint, layer.kernel_size, layer.use_bias,
            name=layer.name, dtype=layer.dtype_policy,
        )
        depthwise = np.asarray(layer.depthwise_kernel)  # (k, k, e*K, n)
        embed = layer.embed
        twin.build((None, None, None, embed * layer.num_keypoints))
        grouped = np.concatenate(
            [depthwise[:, :, j * embed : (j + 1) * embed, :] for j in range(layer.num_keypoints)], axis=-1
        )
        twin.kernel.assign(grouped)
        if layer.bias is not None:
            twin.bias.assign(np.asarray(layer.bias))
        return twin


@keras.saving.register_keras_serializable(package="kpose_export")
class DecomposedHardSwish(keras.layers.Layer):
    """Hard swish ``x * relu6(x + 3) / 6`` as ``(x / 6) * relu6(x + 3)``: MUL, ADD (fused
    ReLU6), MUL.

    Keras' ``hard_swish`` activation becomes the TFLite ``HARD_SWISH`` op, which this
    XNNPACK build runs in float32 but not in int8: in an int8 graph it falls back to the
    reference kernel and splits the delegated graph. The converter fuses the textbook
    ``x * relu6(x + 3) * (1/6)`` back into ``HARD_SWISH``; scaling ``x`` first does not match
    its pattern, and XNNPACK takes all three ops.

    Input and output: any shape.
    """

    def call(self, inputs: Any) -> Any:
        return (inputs * (1.0 / 6.0)) * tf.nn.relu6(inputs + 3.0)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape


HARD_SWISH_NAMES = ("hard_swish", "hard_silu")


def _is_hard_swish(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, keras.layers.Activation) and layer.get_config()["activation"] in HARD_SWISH_NAMES


def for_interpreters(network: keras.Model, integer: bool = False) -> keras.Model:
    """``network`` rewritten for TFLite / ONNX interpreters, same function and weights: every
    :class:`KeypointConv2D` as a grouped convolution and, for integer (int8 / int16x8)
    graphs, every hard-swish activation decomposed. Untouched layers are shared, not copied."""

    def replace(layer: keras.layers.Layer) -> keras.layers.Layer:
        if isinstance(layer, KeypointConv2D):
            return GroupedKeypointConv2D.from_layer(layer)
        if integer and _is_hard_swish(layer):
            return DecomposedHardSwish(name=layer.name, dtype=layer.dtype_policy)
        return layer

    return keras.models.clone_model(network, clone_function=replace, recursive=True)
