"""Heatmap codecs (numpy; no TensorFlow): Gaussian targets, decoders, flip test.

The TensorFlow twins, tested against these, are ``gaussian_tf`` and ``decoders_tf``.
"""

from kpose.codecs.decoders import (
    DECODERS,
    decode,
    flip_average,
    flip_back,
    locate_argmax,
    locate_maxpool,
    locate_rows,
    refine_dark,
    refine_quarter,
)
from kpose.codecs.gaussian import (
    SIGMA_AT_STRIDE_4,
    encode_heatmaps,
    heatmap_size,
    sigma_for_stride,
)

__all__ = [
    "DECODERS",
    "SIGMA_AT_STRIDE_4",
    "decode",
    "encode_heatmaps",
    "flip_average",
    "flip_back",
    "heatmap_size",
    "locate_argmax",
    "locate_maxpool",
    "locate_rows",
    "refine_dark",
    "refine_quarter",
    "sigma_for_stride",
]
