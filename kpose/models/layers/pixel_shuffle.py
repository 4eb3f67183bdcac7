"""Per-keypoint pixel shuffle: the last step of the SR head."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


def keypoint_pixel_shuffle(x: Any, num_keypoints: int, upscale: int) -> Any:
    """Per-keypoint pixel shuffle (see :class:`KeypointPixelShuffle` for the channel order).

    Args:
        x: (B, H, W, K*r*r) with ``K = num_keypoints``, ``r = upscale`` (a Keras 3 backend
            tensor, or a TensorFlow tensor under the TensorFlow backend).

    Returns:
        (B, H*r, W*r, K).
    """
    shape = ops.shape(x)
    k, n = num_keypoints, upscale * upscale
    x = ops.reshape(x, (-1, shape[1], shape[2], k, n))
    x = ops.transpose(x, (0, 1, 2, 4, 3))
    x = ops.reshape(x, (-1, shape[1], shape[2], n * k))
    return ops.depth_to_space(x, upscale)


@keras.saving.register_keras_serializable(package="kpose")
class KeypointPixelShuffle(keras.layers.Layer):
    """Turns ``r*r`` low-resolution maps per keypoint into one map ``r`` times larger.

    The grouped large-kernel conv leaves channels in [keypoint, r*r] order (keypoint ``j``
    owns channels ``[j*r*r, (j+1)*r*r)``), while ``depth_to_space`` reads them in
    [r*r, keypoint] order. The layer reorders (reshape + transpose) before ``depth_to_space``,
    so that every output map is built from its own keypoint's channels only. Sub-pixel
    ``(dy, dx)`` of output pixel ``(y*r + dy, x*r + dx)`` comes from channel ``j*r*r + dy*r + dx``.

    Input: (B, H, W, K*r*r). Output: (B, H*r, W*r, K).
    """

    def __init__(self, num_keypoints: int, upscale: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if upscale < 2:
            raise ValueError(f"{self.name}: upscale must be >= 2, got {upscale}")
        self.num_keypoints = int(num_keypoints)
        self.upscale = int(upscale)

    def call(self, inputs: Any) -> Any:
        return keypoint_pixel_shuffle(inputs, self.num_keypoints, self.upscale)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        batch, height, width, _ = input_shape
        r = self.upscale
        return (
            batch,
            None if height is None else height * r,
            None if width is None else width * r,
            self.num_keypoints,
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(num_keypoints=self.num_keypoints, upscale=self.upscale)
        return config
