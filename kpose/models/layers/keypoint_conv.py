"""Per-keypoint (grouped) large-kernel convolution of the SR head, without grouped-conv ops."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kpose")
class KeypointConv2D(keras.layers.Layer):
    """Grouped convolution with one group per keypoint, built from a depthwise convolution.

    Mathematically this is ``Conv2D(K * outputs_per_keypoint, kernel_size, groups=K,
    padding="same")``: keypoint ``j`` owns input channels ``[j*e, (j+1)*e)`` (its embedding) and
    output channels ``[j*n, (j+1)*n)``, with ``n = outputs_per_keypoint``. It is computed as a
    depthwise convolution with depth multiplier ``n`` over the ``e*K`` input channels, reshaped to
    ``(..., K, e, n)`` and summed over ``e``. That costs the same multiply-accumulates as the
    grouped convolution, runs on CPU without XLA, and converts to builtin TFLite / ONNX ops
    (TensorFlow's grouped convolution does neither).

    The kernel is stored in the depthwise layout ``(k, k, e*K, n)``:
    ``depthwise_kernel[:, :, j*e + i, m]`` is the grouped kernel ``[:, :, i, j*n + m]``.

    Input: (B, H, W, e*K). Output: (B, H, W, K*n), channels in [keypoint, n] order.
    """

    def __init__(
        self,
        num_keypoints: int,
        outputs_per_keypoint: int,
        kernel_size: int,
        use_bias: bool = True,
        kernel_initializer: Any = None,
        bias_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_keypoints = int(num_keypoints)
        self.outputs_per_keypoint = int(outputs_per_keypoint)
        self.kernel_size = int(kernel_size)
        self.use_bias = bool(use_bias)
        # The SR head initialises its large-kernel conv with N(0, 0.001).
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or keras.initializers.RandomNormal(0.0, 0.001)
        )
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        channels = input_shape[-1]
        if channels is None or channels % self.num_keypoints:
            raise ValueError(
                f"{self.name}: input channels ({channels}) must be a multiple of the number "
                f"of keypoints ({self.num_keypoints})"
            )
        self.embed = channels // self.num_keypoints
        self.depthwise_kernel = self.add_weight(
            name="depthwise_kernel",
            shape=(self.kernel_size, self.kernel_size, channels, self.outputs_per_keypoint),
            initializer=self.kernel_initializer,
        )
        self.bias = (
            self.add_weight(
                name="bias",
                shape=(self.num_keypoints * self.outputs_per_keypoint,),
                initializer=self.bias_initializer,
            )
            if self.use_bias
            else None
        )

    def call(self, inputs: Any) -> Any:
        x = ops.depthwise_conv(inputs, self.depthwise_kernel, strides=1, padding="same")
        shape = ops.shape(x)
        k, e, n = self.num_keypoints, self.embed, self.outputs_per_keypoint
        x = ops.reshape(x, (-1, shape[1], shape[2], k, e, n))
        x = ops.reshape(ops.sum(x, axis=4), (-1, shape[1], shape[2], k * n))
        if self.bias is not None:
            x = x + self.bias
        return x

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], self.num_keypoints * self.outputs_per_keypoint)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            num_keypoints=self.num_keypoints,
            outputs_per_keypoint=self.outputs_per_keypoint,
            kernel_size=self.kernel_size,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config
