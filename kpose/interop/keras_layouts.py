"""PyTorch tensors in the weight layouts of the Keras layers kpose builds.

Each function takes one PyTorch module's tensors (numpy, PyTorch's layout) and returns the
Keras layer's weights in the order ``layer.weights`` lists them. PyTorch stores a conv kernel
as (out, in, kh, kw), a transposed conv kernel as (in, out, kh, kw) and a grouped conv kernel as
(out, in / groups, kh, kw); Keras stores (kh, kw, in, out), (kh, kw, out, in) and, for
:class:`~kpose.models.layers.KeypointConv2D`, the depthwise layout (kh, kw, in, out / groups).
"""

from __future__ import annotations

import numpy as np


def conv_kernel(weight: np.ndarray) -> np.ndarray:
    """``Conv2d`` (O, I, kh, kw) -> ``Conv2D`` (kh, kw, I, O)."""
    return weight.transpose(2, 3, 1, 0)


def transposed_conv_kernel(weight: np.ndarray) -> np.ndarray:
    """``ConvTranspose2d`` (I, O, kh, kw) -> ``Conv2DTranspose`` (kh, kw, O, I).

    Both frameworks compute the gradient of a convolution with that kernel, so the taps keep
    their positions (no flip): PyTorch's padding 1 for kernel 4 and stride 2 is Keras' "same".
    """
    return weight.transpose(2, 3, 1, 0)


def depthwise_kernel(weight: np.ndarray, multiplier: int = 1) -> np.ndarray:
    """Depthwise ``Conv2d`` (C * m, 1, kh, kw), groups C -> ``DepthwiseConv2D`` (kh, kw, C, m).

    Output channel ``c * m + k`` reads input channel ``c`` in both frameworks."""
    out_channels, _, kh, kw = weight.shape
    return weight.reshape(out_channels // multiplier, multiplier, kh, kw).transpose(2, 3, 0, 1)


def keypoint_conv_kernel(weight: np.ndarray, num_keypoints: int) -> np.ndarray:
    """Grouped ``Conv2d`` (K * n, e, kh, kw), groups K -> ``KeypointConv2D`` (kh, kw, K * e, n).

    Output channel ``j * n + m`` of keypoint ``j`` reads its input channels ``j * e + i``; the
    depthwise layout keeps that kernel at ``[:, :, j * e + i, m]``.
    """
    out_channels, embed, kh, kw = weight.shape
    n = out_channels // num_keypoints
    grouped = weight.reshape(num_keypoints, n, embed, kh, kw)
    return grouped.transpose(3, 4, 0, 2, 1).reshape(kh, kw, num_keypoints * embed, n)
