"""Heatmap decoders in numpy (the TensorFlow twin is :mod:`kpose.codecs.decoders_tf`).

Every decoder takes channels-last heatmaps ``(B, h, w, K)`` and returns ``coords
(B, K, 2)`` float (x, y) in heatmap pixels and ``scores (B, K)`` (the heatmap maximum).
Convert to input pixels with :func:`kpose.geometry.heatmap_to_input`.

* ``argmax``: the best pixel (first in row-major order on ties).
* ``maxpool``: the SR paper's decoder. Max-pool with kernel = stride = ``kernel``, take the
  best cell, then the best pixel of that cell's row of cells. Searching the cell's whole
  row (``kernel x w`` pixels instead of ``kernel x kernel``) makes it return exactly the
  argmax, ties included, for the price of one pooling pass and one short strip.
  :func:`locate_rows` is its ``1 x w`` form, the one exported graphs run.
* ``quarter``: argmax moved a quarter pixel toward the higher neighbour on each axis.
* ``dark``: argmax refined by a second-order Taylor expansion of the log of the
  Gaussian-smoothed heatmap (Zhang et al., "Distribution-Aware Coordinate Representation").
  Only a small window around each peak is smoothed, which equals smoothing the whole map
  (zero padding outside it).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import numpy as np

from kpose.codecs.gaussian import SIGMA_AT_STRIDE_4
from kpose.errors import ConfigError

DECODERS = ("argmax", "maxpool", "quarter", "dark")
LOG_EPS = 1e-10


def _check_kernel(size: tuple[int, int], kernel: int) -> None:
    h, w = size
    if kernel < 1 or h % kernel or w % kernel:
        raise ConfigError(f"max-pool kernel {kernel} must divide the heatmap size {h}x{w}")


def locate_argmax(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer ``coords (B, K, 2)`` and ``scores (B, K)`` of each channel's maximum."""
    b, h, w, k = heatmaps.shape
    flat = heatmaps.transpose(0, 3, 1, 2).reshape(b, k, h * w)
    index = flat.argmax(axis=-1)
    scores = np.take_along_axis(flat, index[..., None], axis=-1)[..., 0]
    return np.stack([index % w, index // w], axis=-1), scores


def locate_maxpool(heatmaps: np.ndarray, kernel: int) -> tuple[np.ndarray, np.ndarray]:
    """Same result as :func:`locate_argmax`, found through a ``kernel`` max-pool."""
    b, h, w, k = heatmaps.shape
    _check_kernel((h, w), kernel)
    per_k = heatmaps.transpose(0, 3, 1, 2)  # (B, K, h, w)
    pooled = per_k.reshape(b, k, h // kernel, kernel, w // kernel, kernel).max(axis=(3, 5))
    cell_row = pooled.reshape(b, k, -1).argmax(axis=-1) // (w // kernel)  # (B, K)
    strips = per_k.reshape(b, k, h // kernel, kernel * w)
    strip = np.take_along_axis(strips, cell_row[..., None, None], axis=2)[:, :, 0]  # (B, K, s*w)
    index = strip.argmax(axis=-1)
    scores = np.take_along_axis(strip, index[..., None], axis=-1)[..., 0]
    return np.stack([index % w, cell_row * kernel + index // w], axis=-1), scores


def locate_rows(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Same result as :func:`locate_argmax`, found the way the exported graph does: max-pool
    each row with a ``1 x w`` window, take the first row holding the channel's maximum, then
    the first maximum along that row. ``coords (B, K, 2)`` int, ``scores (B, K)``."""
    row_max = heatmaps.max(axis=2)  # (B, h, K)
    rows = row_max.argmax(axis=1)  # (B, K)
    lines = np.take_along_axis(heatmaps, rows[:, None, None, :], axis=1)[:, 0]  # (B, w, K)
    cols = lines.argmax(axis=1)
    scores = np.take_along_axis(lines, cols[:, None, :], axis=1)[:, 0]
    return np.stack([cols, rows], axis=-1), scores


def _neighbourhood(heatmaps: np.ndarray, coords: np.ndarray, radius: int) -> np.ndarray:
    """``(B, K, 2r+1, 2r+1)`` windows centred on integer ``coords``, zero outside the map."""
    padded = np.pad(heatmaps.transpose(0, 3, 1, 2), ((0, 0), (0, 0), (radius, radius), (radius, radius)))
    offsets = np.arange(2 * radius + 1)
    rows = coords[..., 1, None] + offsets  # (B, K, P) in padded coordinates
    cols = coords[..., 0, None] + offsets
    b_idx = np.arange(padded.shape[0])[:, None, None, None]
    k_idx = np.arange(padded.shape[1])[None, :, None, None]
    return padded[b_idx, k_idx, rows[..., :, None], cols[..., None, :]]


def refine_quarter(heatmaps: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Shift integer ``coords`` a quarter pixel toward the higher neighbour on each axis."""
    win = _neighbourhood(heatmaps, coords, 1)
    h, w = heatmaps.shape[1:3]
    x, y = coords[..., 0], coords[..., 1]
    dx = np.sign(win[..., 1, 2] - win[..., 1, 0]) * ((x > 0) & (x < w - 1))
    dy = np.sign(win[..., 2, 1] - win[..., 0, 1]) * ((y > 0) & (y < h - 1))
    return coords + 0.25 * np.stack([dx, dy], axis=-1)


def gaussian_window(sigma: float) -> np.ndarray:
    """Normalized 1-D Gaussian of radius ``ceil(3 sigma)``."""
    radius = int(math.ceil(3 * sigma))
    taps = np.exp(-(np.arange(-radius, radius + 1) ** 2) / (2 * sigma**2))
    return taps / taps.sum()


def smoothing_matrix(sigma: float) -> np.ndarray:
    """``(3, 2r+3)`` rows: the Gaussian taps placed to smooth the 3 centre pixels of a window."""
    taps = gaussian_window(sigma)
    matrix = np.zeros((3, taps.size + 2))
    for i in range(3):
        matrix[i, i : i + taps.size] = taps
    return matrix


def taylor_offsets(log_window: np.ndarray) -> np.ndarray:
    """Newton step ``-H^-1 g`` from ``(..., 3, 3)`` log values around a peak, (dx, dy).

    Zero where the Hessian is not negative definite; clipped to one pixel.
    """
    c = log_window
    gx = 0.5 * (c[..., 1, 2] - c[..., 1, 0])
    gy = 0.5 * (c[..., 2, 1] - c[..., 0, 1])
    hxx = c[..., 1, 2] - 2 * c[..., 1, 1] + c[..., 1, 0]
    hyy = c[..., 2, 1] - 2 * c[..., 1, 1] + c[..., 0, 1]
    hxy = 0.25 * (c[..., 2, 2] - c[..., 0, 2] - c[..., 2, 0] + c[..., 0, 0])
    det = hxx * hyy - hxy * hxy
    valid = (det > 0) & (hxx < 0)
    safe_det = np.where(valid, det, 1.0)
    dx = -(hyy * gx - hxy * gy) / safe_det
    dy = -(hxx * gy - hxy * gx) / safe_det
    return np.clip(np.stack([dx, dy], axis=-1) * valid[..., None], -1.0, 1.0)


def refine_dark(heatmaps: np.ndarray, coords: np.ndarray, sigma: float) -> np.ndarray:
    """DARK refinement of integer ``coords``; ``sigma`` is the target's, in heatmap pixels."""
    smooth = smoothing_matrix(sigma)
    radius = (smooth.shape[1] - 1) // 2
    win = _neighbourhood(heatmaps.astype(np.float64), coords, radius)
    blurred = np.einsum("ip,bkpq,jq->bkij", smooth, win, smooth)
    return coords + taylor_offsets(np.log(np.maximum(blurred, LOG_EPS)))


def decode_with(
    ops: Mapping[str, Callable], heatmaps: Any, decoder: str, kernel: int, sigma: float
) -> tuple[Any, Any]:
    """The decoding recipe both twins share: locate the maximum, then refine it.

    Args:
        ops: ``locate_argmax``, ``locate_maxpool``, ``refine_quarter`` and ``refine_dark`` of
            one implementation (this module's, or :mod:`kpose.codecs.decoders_tf`'s).
        heatmaps, decoder, kernel, sigma: as :func:`decode` takes them.

    Returns:
        ``coords`` (integer for ``argmax`` / ``maxpool``) and ``scores``.
    """
    if decoder not in DECODERS:
        raise ConfigError(f"unknown decoder {decoder!r}; choose one of {list(DECODERS)}")
    if decoder == "maxpool":
        coords, scores = ops["locate_maxpool"](heatmaps, kernel)
    else:
        coords, scores = ops["locate_argmax"](heatmaps)
    if decoder == "quarter":
        coords = ops["refine_quarter"](heatmaps, coords)
    elif decoder == "dark":
        coords = ops["refine_dark"](heatmaps, coords, sigma)
    return coords, scores


NUMPY_OPS = {
    "locate_argmax": locate_argmax,
    "locate_maxpool": locate_maxpool,
    "refine_quarter": refine_quarter,
    "refine_dark": refine_dark,
}


def decode(
    heatmaps: np.ndarray,
    decoder: str = "argmax",
    kernel: int = 1,
    sigma: float = SIGMA_AT_STRIDE_4,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``(B, h, w, K)`` heatmaps to ``coords (B, K, 2)`` heatmap pixels and ``scores (B, K)``.

    Args:
        decoder: one of :data:`DECODERS`.
        kernel: max-pool kernel of the ``maxpool`` decoder (1 is a plain argmax).
        sigma: the targets' Gaussian sigma in heatmap pixels (``dark`` only).
    """
    coords, scores = decode_with(NUMPY_OPS, np.asarray(heatmaps), decoder, kernel, sigma)
    return coords.astype(np.float64), scores


def flip_back(heatmaps: np.ndarray, flip_index: np.ndarray, shift: bool = False) -> np.ndarray:
    """Undo a horizontal flip of the input on ``(B, h, w, K)`` heatmaps.

    Mirrors the maps and swaps left/right channels (``flip_index`` from the schema). With
    kpose's pixel-centre geometry a mirrored crop maps heatmap ``u`` to ``w - 1 - u``
    exactly, so ``shift`` (move the mirrored maps one pixel right, as some codebases
    do to fix a misaligned flip) is off by default.
    """
    flipped = heatmaps[:, :, ::-1, :][..., np.asarray(flip_index)]
    if shift:
        flipped = np.concatenate([flipped[:, :, :1], flipped[:, :, :-1]], axis=2)
    return flipped


def flip_average(heatmaps: np.ndarray, flipped_heatmaps: np.ndarray, flip_index: np.ndarray, shift: bool = False) -> np.ndarray:
    """Flip test: mean of the plain prediction and the un-flipped prediction of the flipped input."""
    return 0.5 * (heatmaps + flip_back(flipped_heatmaps, flip_index, shift))
