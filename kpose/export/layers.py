"""Export-only twins of kpose layers, in the form interpreters run fastest.

:class:`RawPixelConv2D` is the backbone's first convolution with the input normalization
folded in: on a 2-core CPU the per-channel ``(x - mean) / std`` over a 256x192x3 crop costs
0.34 ms in float32 and 1.3 ms in int8 (three channels broadcast in the innermost dimension,
a slow case for XNNPACK's elementwise kernels), more than the convolution it feeds.

:class:`GroupedKeypointConv2D` computes exactly what :class:`kpose.models.KeypointConv2D`
computes, as one grouped convolution (TFLite ``CONV_2D`` with ``groups = K``), which XNNPACK
runs in float32 and int8. The training layer's depthwise-times-``n`` + sum form is what
TensorFlow can run on a CPU, but XNNPACK's int8 depthwise kernels with a channel multiplier
of ``n = r*r`` are slow: on a 2-core CPU the SR head's 9x9 large-kernel conv (68 -> 1088
channels at 32x24) takes 28 ms in int8 as depthwise + sum and 3.6 ms as a grouped
convolution (float32: 8.1 and 5.4 ms). TensorFlow itself cannot run a grouped convolution on
a CPU without XLA, so this layer exists only inside the exported graphs, which the converters
trace but never run.

:class:`SpaceToDepthRawPixelConv2D` is that stem for integer graphs, widened so that
XNNPACK's int8 convolution runs it fast (see there).

Where int8 time goes on the 2-core Xeon
(AVX-512 VNNI, AMX; benchmarks/int8_sr_head.py, one thread, the quickstart network at
256x192): the backbone runs 1.25-1.4x *slower* in int8 than in float32 (XNNPACK's int8
depthwise and narrow convolutions: the 3 -> 16 stem conv ~0.85 ms against ~0.25, a 1x1 conv
16 -> 16 at 128x96 4x slower, depthwise 3x3 about 2x slower), while the SR head's grouped
large-kernel conv gains 0.75-0.9x and its pixel shuffle ~0.5x. Every op but the decoder's
ARG_MAX, GATHER, PACK and CAST runs in XNNPACK in both files.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kpose.models.layers import ImageNormalization, KeypointConv2D


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
    def from_layer(cls, layer: KeypointConv2D) -> GroupedKeypointConv2D:
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


def decomposed_hard_swish(x: tf.Tensor) -> tf.Tensor:
    """Hard swish ``x * relu6(x + 3) / 6`` as ``(x / 6) * relu6(x + 3)``: MUL, ADD (fused
    ReLU6), MUL (see :class:`DecomposedHardSwish`); any shape."""
    return (x * (1.0 / 6.0)) * tf.nn.relu6(x + 3.0)


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
        return decomposed_hard_swish(inputs)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape


def _same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's ``"same"`` padding (before, after) of one spatial axis, pixels."""
    span = (kernel - 1) * dilation + 1
    total = max((-(-size // stride) - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


@keras.saving.register_keras_serializable(package="kpose_export")
class RawPixelConv2D(keras.layers.Layer):
    """``Conv2D(ImageNormalization(x))`` computed from the raw pixels ``x`` (0..255), with
    the same result: ``1 / std`` (and the BGR flip) folded into the kernel, ``-mean / std``
    into the bias, and the convolution's zero padding (a normalized zero) done by
    concatenating rows and columns of the per-channel ``mean``, the raw pixel that normalizes
    to zero. Only padding rows and columns are copied, never the whole crop.

    Input: (B, H, W, C) raw pixels, H and W static. Output: the convolution's (B, H', W', F).
    """

    def __init__(
        self,
        filters: int,
        kernel_size: tuple[int, int],
        strides: tuple[int, int],
        dilation_rate: tuple[int, int],
        padding: tuple[int, int, int, int],
        mean: tuple[float, ...],
        activation: str = "linear",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = tuple(int(v) for v in kernel_size)
        self.strides = tuple(int(v) for v in strides)
        self.dilation_rate = tuple(int(v) for v in dilation_rate)
        self.padding = tuple(int(v) for v in padding)  # top, bottom, left, right
        self.mean = tuple(float(v) for v in mean)
        self.activation = keras.activations.get(activation)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.kernel = self.add_weight(name="kernel", shape=(*self.kernel_size, input_shape[-1], self.filters))
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def _mean_pad(self, x: Any) -> Any:
        top, bottom, left, right = self.padding
        mean = tf.constant(self.mean, x.dtype)
        batch = tf.shape(x)[0]
        if left or right:
            column = tf.broadcast_to(mean, [batch, x.shape[1], 1, len(self.mean)])
            x = tf.concat([column] * left + [x] + [column] * right, axis=2)
        if top or bottom:
            row = tf.broadcast_to(mean, [batch, 1, x.shape[2], len(self.mean)])
            x = tf.concat([row] * top + [x] + [row] * bottom, axis=1)
        return x

    def call(self, inputs: Any) -> Any:
        x = tf.nn.conv2d(
            self._mean_pad(inputs), self.kernel, self.strides, "VALID", dilations=self.dilation_rate
        )
        return self.activation(x + self.bias)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        top, bottom, left, right = self.padding
        sizes = [
            (size + before + after - (k - 1) * d - 1) // s + 1
            for size, before, after, k, s, d in zip(
                input_shape[1:3], (top, left), (bottom, right), self.kernel_size, self.strides, self.dilation_rate
            )
        ]
        return (input_shape[0], *sizes, self.filters)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "dilation_rate": self.dilation_rate,
            "padding": self.padding,
            "mean": self.mean,
            "activation": keras.activations.serialize(self.activation),
        }

    @classmethod
    def from_layers(
        cls, normalization: ImageNormalization, conv: keras.layers.Conv2D, input_size: tuple[int, int]
    ) -> RawPixelConv2D:
        """The fold of ``normalization`` into ``conv`` (built, groups 1) for crops of
        ``input_size`` (H, W) pixels."""
        config = conv.get_config()
        pads: tuple[int, ...] = (0, 0, 0, 0)
        if config["padding"] == "same":
            pads = sum(
                (_same_padding(size, k, s, d) for size, k, s, d in zip(input_size, conv.kernel_size, conv.strides, conv.dilation_rate)),
                (),
            )
        # The conv reads channels after the optional flip: channel c of its input is raw channel order[c].
        order = np.arange(len(normalization.mean))[::-1] if normalization.bgr else np.arange(len(normalization.mean))
        mean = np.asarray(normalization.mean)
        inverse = 1.0 / np.asarray(normalization.std)
        kernel = np.asarray(conv.kernel)  # (kh, kw, C, F), C in the conv's channel order
        raw_mean = np.empty_like(mean)
        raw_mean[order] = mean
        folded = np.empty_like(kernel)
        folded[:, :, order, :] = kernel * inverse[None, None, :, None]
        bias = np.asarray(conv.bias) if conv.use_bias else np.zeros(conv.filters, kernel.dtype)
        bias = bias - np.einsum("hwcf,c->f", kernel, mean * inverse)
        layer = cls(
            conv.filters, conv.kernel_size, conv.strides, conv.dilation_rate, pads, tuple(raw_mean),
            config["activation"], name=conv.name, dtype=conv.dtype_policy,
        )
        layer.build((None, *input_size, kernel.shape[2]))
        layer.kernel.assign(folded)
        layer.bias.assign(bias)
        return layer


@keras.saving.register_keras_serializable(package="kpose_export")
class SpaceToDepthRawPixelConv2D(RawPixelConv2D):
    """:class:`RawPixelConv2D` with strides 2 computed as a wide stride-1 convolution, for
    int8 graphs: mean-pad the crop to a multiple of 4, ``SPACE_TO_DEPTH`` by 4 (48 channels),
    a ``ceil((k + 2) / 4)``-square VALID convolution to ``4 * F`` channels (output pixels
    ``(2Y + u, 2X + v)`` of super-pixel ``(Y, X)``, channel ``(u*2 + v)*F + f``), then
    ``DEPTH_TO_SPACE`` by 2. The same sums (zeros where a window misses the kernel), about 7x
    the multiply-accumulates of a 3x3 stem, but in the shape XNNPACK's int8 convolution runs
    fast on an AMX / VNNI Xeon: a 3 -> 16 channel 3x3 stride-2 conv on a 256x192 crop costs
    about 3x float32's time in int8 (~0.9 against ~0.3 ms, one thread), the wide form about
    float32's. In float32 the wide form is slower; :func:`for_interpreters` uses it only for
    integer graphs.

    ``padding`` (top, bottom, left, right) is the mean padding up to the multiple of 4.
    Input: (B, H, W, C) raw pixels, H and W static. Output: (B, H', W', F), as the stem's.
    """

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        taps = [-(-(k + 2) // 4) for k in self.kernel_size]
        self.kernel = self.add_weight(name="kernel", shape=(*taps, 16 * input_shape[-1], 4 * self.filters))
        self.bias = self.add_weight(name="bias", shape=(4 * self.filters,), initializer="zeros")

    def call(self, inputs: Any) -> Any:
        x = tf.nn.space_to_depth(self._mean_pad(inputs), 4)
        x = self.activation(tf.nn.conv2d(x, self.kernel, 1, "VALID") + self.bias)
        return tf.nn.depth_to_space(x, 2)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        top, bottom, left, right = self.padding
        taps = [-(-(k + 2) // 4) for k in self.kernel_size]
        sizes = [2 * ((size + a + b) // 4 - t + 1) for size, a, b, t in zip(input_shape[1:3], (top, left), (bottom, right), taps)]
        return (input_shape[0], *sizes, self.filters)

    @classmethod
    def from_raw(cls, raw: RawPixelConv2D, input_size: tuple[int, int]) -> SpaceToDepthRawPixelConv2D | None:
        """The wide form of a built ``raw`` (strides 2, dilation 1, odd kernel, even output
        size) for crops of ``input_size`` (H, W); None when it does not apply."""
        if raw.strides != (2, 2) or raw.dilation_rate != (1, 1) or any(k % 2 == 0 for k in raw.kernel_size):
            return None
        out = raw.compute_output_shape((None, *input_size, None))[1:3]
        if any(size % 2 for size in out):
            return None
        taps = [-(-(k + 2) // 4) for k in raw.kernel_size]
        # Padded size 4 * (out / 2 + taps - 1): every row / column the stem reads, and more.
        totals = [4 * (size // 2 + t - 1) for size, t in zip(out, taps)]
        top, _, left, _ = raw.padding
        bottom, right = totals[0] - input_size[0] - top, totals[1] - input_size[1] - left
        if bottom < 0 or right < 0:
            return None
        kernel = np.asarray(raw.kernel)  # (k, k, C, F)
        kh, kw, channels, filters = kernel.shape
        wide = np.zeros((taps[0], taps[1], 4, 4, channels, 2, 2, filters), kernel.dtype)
        for ty in range(taps[0]):
            for tx in range(taps[1]):
                for a in range(4):
                    for b in range(4):
                        for u in range(2):
                            for v in range(2):
                                i, j = 4 * ty + a - 2 * u, 4 * tx + b - 2 * v
                                if 0 <= i < kh and 0 <= j < kw:
                                    wide[ty, tx, a, b, :, u, v, :] = kernel[i, j]
        layer = cls(
            raw.filters, raw.kernel_size, raw.strides, raw.dilation_rate, (top, bottom, left, right), raw.mean,
            keras.activations.serialize(raw.activation), name=raw.name, dtype=raw.dtype_policy,
        )
        layer.build((None, *input_size, channels))
        layer.kernel.assign(wide.reshape(taps[0], taps[1], 16 * channels, 4 * filters))
        layer.bias.assign(np.tile(np.asarray(raw.bias), 4))
        return layer


def _readers(model: keras.Model, tensor: keras.KerasTensor) -> list[keras.layers.Layer]:
    """Layers of ``model`` (not nested) with a call that takes ``tensor``."""
    return [
        layer for layer in model.layers for node in layer._inbound_nodes
        if any(t is tensor for t in node.input_tensors)
    ]


def _stem_conv(network: keras.Model) -> tuple[ImageNormalization, keras.layers.Conv2D] | None:
    """The input normalization and the plain ``Conv2D`` that is the only reader of its
    output (directly or as the first layer of a nested backbone model), if there is one."""
    normalization = next((layer for layer in network.layers if isinstance(layer, ImageNormalization)), None)
    if normalization is None or len(normalization._inbound_nodes) != 1:
        return None
    model, tensor = network, normalization.output
    readers = _readers(model, tensor)
    while len(readers) == 1 and isinstance(readers[0], keras.Model):
        model, tensor = readers[0], readers[0].inputs[0]
        readers = _readers(model, tensor)
    if len(readers) != 1 or type(readers[0]) is not keras.layers.Conv2D:
        return None
    conv = readers[0]
    if conv.groups != 1 or len(conv._inbound_nodes) != 1 or conv.get_config()["padding"] not in ("same", "valid"):
        return None
    return normalization, conv


HARD_SWISH_NAMES = ("hard_swish", "hard_silu")


def _is_hard_swish(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, keras.layers.Activation) and layer.get_config()["activation"] in HARD_SWISH_NAMES


def for_interpreters(
    network: keras.Model, integer: bool = False, wide_stem: bool = True
) -> keras.Model:
    """``network`` rewritten for TFLite / ONNX interpreters, same function and weights: the
    input normalization folded into the first convolution (:class:`RawPixelConv2D`; for
    integer graphs with a stride-2 stem, :class:`SpaceToDepthRawPixelConv2D`, unless
    ``wide_stem=False``), every :class:`KeypointConv2D` as a grouped convolution and, for
    integer (int8 / int16x8) graphs, every hard-swish activation decomposed. Untouched layers
    are shared, not copied."""
    stem = _stem_conv(network)
    input_size = tuple(network.input.shape[1:3])
    folded = RawPixelConv2D.from_layers(*stem, input_size) if stem else None
    if folded is not None and integer and wide_stem:
        folded = SpaceToDepthRawPixelConv2D.from_raw(folded, input_size) or folded

    def replace(layer: keras.layers.Layer) -> keras.layers.Layer:
        if stem and layer is stem[0]:
            return keras.layers.Identity(name=layer.name, dtype=layer.dtype_policy)
        if stem and layer is stem[1]:
            return folded
        if isinstance(layer, KeypointConv2D):
            return GroupedKeypointConv2D.from_layer(layer)
        if integer and _is_hard_swish(layer):
            return DecomposedHardSwish(name=layer.name, dtype=layer.dtype_policy)
        return layer

    return keras.models.clone_model(network, clone_function=replace, recursive=True)
