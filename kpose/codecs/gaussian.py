"""Gaussian heatmap targets, in numpy (the TensorFlow twin is :mod:`kpose.codecs.gaussian_tf`).

A target is an unnormalized Gaussian (peak 1) centred on the keypoint's sub-pixel position
in heatmap coordinates (see :func:`kpose.geometry.input_to_heatmap`). Sigma is linear in
resolution, as in the SR paper: ``sigma = 2`` at stride 4 is ``sigma = 8`` at stride 1.

Shapes: ``B`` batch, ``K`` keypoints, heatmaps are channels-last ``(B, h, w, K)``.
"""

from __future__ import annotations

import math

import numpy as np

from kpose.errors import ConfigError
from kpose.geometry import input_to_heatmap

SIGMA_AT_STRIDE_4 = 2.0


def sigma_for_stride(stride: float, sigma_at_stride_4: float = SIGMA_AT_STRIDE_4) -> float:
    """Gaussian sigma in heatmap pixels for a heatmap at ``stride`` input pixels per pixel."""
    return sigma_at_stride_4 * 4.0 / stride


def peak_window(sigma: float) -> int:
    """The odd square window, heatmap pixels, that covers a Gaussian target's peak out to one
    ``sigma`` on each side: the max-pool kernel of heatmap NMS (5 at sigma 2, 17 at sigma 8)."""
    return 2 * math.ceil(sigma) + 1


def heatmap_size(input_size: tuple[int, int], stride: int) -> tuple[int, int]:
    """``(h, w)`` of the heatmap of an ``(H, W)`` input at ``stride``; must divide evenly."""
    height, width = input_size
    if height % stride or width % stride:
        raise ConfigError(f"stride {stride} does not divide the input size {height}x{width}")
    return height // stride, width // stride


def target_weights(coords: np.ndarray, visible: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(B, K)`` float32 weights: 1 for labeled keypoints whose heatmap pixel is on the map.

    Args:
        coords: ``(B, K, 2)`` keypoints in heatmap pixels (x, y).
        visible: ``(B, K)`` > 0 where the keypoint is labeled.
        size: heatmap ``(h, w)``.
    """
    h, w = size
    x, y = coords[..., 0], coords[..., 1]
    inside = (x >= -0.5) & (x < w - 0.5) & (y >= -0.5) & (y < h - 0.5)
    return ((np.asarray(visible) > 0) & inside).astype(np.float32)


def encode_heatmaps(
    keypoints: np.ndarray,
    visible: np.ndarray,
    input_size: tuple[int, int],
    stride: int,
    sigma: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Render Gaussian heatmaps for a batch of keypoints.

    Args:
        keypoints: ``(B, K, 2)`` keypoints (x, y) in input (crop) pixels.
        visible: ``(B, K)`` > 0 where the keypoint is labeled.
        input_size: the crop ``(H, W)``.
        stride: input pixels per heatmap pixel (1 = full resolution).
        sigma: Gaussian sigma in heatmap pixels; default :func:`sigma_for_stride`.

    Returns:
        ``heatmaps (B, h, w, K)`` float32 in [0, 1] (zero for weight-0 keypoints) and
        ``weights (B, K)`` float32.
    """
    sigma = sigma_for_stride(stride) if sigma is None else sigma
    h, w = heatmap_size(input_size, stride)
    coords = input_to_heatmap(np.asarray(keypoints, dtype=np.float64), stride)
    weights = target_weights(coords, visible, (h, w))
    gx = np.exp(-((np.arange(w) - coords[..., 0:1]) ** 2) / (2 * sigma**2))  # (B, K, w)
    gy = np.exp(-((np.arange(h) - coords[..., 1:2]) ** 2) / (2 * sigma**2))  # (B, K, h)
    heatmaps = np.einsum("bkh,bkw,bk->bhwk", gy, gx, weights)
    return heatmaps.astype(np.float32), weights
