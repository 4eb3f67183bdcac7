"""The heatmap codec: keypoints <-> Gaussian heatmaps at one stride, numpy and TensorFlow.

One :class:`HeatmapCodec` holds what both directions need, the input size, the stride and
the sigma rule (sigma linear in resolution, as in the SR paper: ``sigma = 2`` at stride 4 is
``sigma = 8`` at stride 1), so the losses, the Keras prediction, the exported graph and the
bottom-up peak search all read the same numbers. Each operation has a numpy form
(:mod:`~kpose.codecs.gaussian`, :mod:`~kpose.codecs.decoders`) and a TensorFlow twin
(:mod:`~kpose.codecs.gaussian_tf`, :mod:`~kpose.codecs.decoders_tf`, imported only when a
``*_tf`` method is called, so this module imports no TensorFlow).

Shapes: ``B`` batch, ``K`` keypoints; heatmaps are channels-last ``(B, h, w, K)``; keypoints
are (x, y) with pixel centres at integers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kpose.codecs import decoders, gaussian
from kpose.codecs.gaussian import (
    SIGMA_AT_STRIDE_4,
    heatmap_size,
    peak_window,
    sigma_for_stride,
)
from kpose.errors import ConfigError
from kpose.geometry import heatmap_to_input


@dataclass(frozen=True)
class HeatmapCodec:
    """Gaussian heatmaps of an ``input_size`` crop at ``stride``.

    Attributes:
        input_size: (H, W) of the model input, pixels.
        stride: input pixels per heatmap pixel (1 = full resolution).
        sigma_at_stride_4: the Gaussian sigma of a stride-4 target, heatmap pixels.
    """

    input_size: tuple[int, int]
    stride: int
    sigma_at_stride_4: float = SIGMA_AT_STRIDE_4

    @classmethod
    def for_heatmap(
        cls, input_size: tuple[int, int], heatmap_height: int, sigma_at_stride_4: float = SIGMA_AT_STRIDE_4
    ) -> "HeatmapCodec":
        """The codec of an output ``heatmap_height`` pixels high on an ``input_size`` input.

        Raises:
            ConfigError: the heatmap height does not divide the input height.
        """
        height = int(input_size[0])
        stride = height // int(heatmap_height)
        if stride < 1 or stride * int(heatmap_height) != height:
            raise ConfigError(f"heatmap height {heatmap_height} does not divide input height {height}")
        return cls((height, int(input_size[1])), stride, float(sigma_at_stride_4))

    @property
    def sigma(self) -> float:
        """The Gaussian sigma at this stride, heatmap pixels."""
        return sigma_for_stride(self.stride, self.sigma_at_stride_4)

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """(h, w) of the heatmap, pixels."""
        return heatmap_size(self.input_size, self.stride)

    @property
    def peak_window(self) -> int:
        """The max-pool kernel of heatmap NMS at this stride (:func:`~kpose.codecs.gaussian.peak_window`):
        5 at stride 4, 9 at stride 2, 17 at stride 1 with the default sigma."""
        return peak_window(self.sigma)

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(B, K, 2)`` input pixels and ``(B, K)`` labels -> ``heatmaps (B, h, w, K)`` float32
        in [0, 1] and ``weights (B, K)`` (1 for labeled keypoints on the map)."""
        return gaussian.encode_heatmaps(keypoints, visible, self.input_size, self.stride, self.sigma)

    def encode_tf(self, keypoints: Any, visible: Any, dtype: Any = None) -> tuple[Any, Any]:
        """TensorFlow twin of :meth:`encode`, for targets rendered in the training step."""
        from kpose.codecs import gaussian_tf

        kwargs = {} if dtype is None else {"dtype": dtype}
        return gaussian_tf.encode_heatmaps(keypoints, visible, self.input_size, self.stride, self.sigma, **kwargs)

    def decode(self, heatmaps: np.ndarray, decoder: str = "argmax", kernel: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """``(B, h, w, K)`` heatmaps -> ``coords (B, K, 2)`` input pixels and ``scores (B, K)``,
        with one of :data:`kpose.codecs.DECODERS` (``kernel``: the ``maxpool`` decoder's)."""
        coords, scores = decoders.decode(heatmaps, decoder, kernel=kernel, sigma=self.sigma)
        return heatmap_to_input(coords, self.stride), scores

    def decode_tf(self, heatmaps: Any, decoder: str = "argmax", kernel: int = 1) -> tuple[Any, Any]:
        """TensorFlow twin of :meth:`decode` (float32 coordinates)."""
        from kpose.codecs import decoders_tf

        coords, scores = decoders_tf.decode(heatmaps, decoder, kernel=kernel, sigma=self.sigma)
        return heatmap_to_input(coords, self.stride), scores
