"""Bottom-up heads with associative embedding (SR paper, section 3.3 "Bottom up").

Both heads read the stride-4 feature a SimpleBaseline head reads (three deconvolutions on F5,
or HRNet's stride-4 branch; the SR head can read a pyramid level instead, option ``feature``)
and output two maps of the same size:

- ``heatmaps`` (B, h, w, K): one Gaussian peak per person and keypoint type;
- ``tags`` (B, h, w, K): one associative-embedding tag per keypoint type, a 1x1 conv on the
  head's input feature, bilinearly upsampled to the heatmaps' resolution (the paper's Eq. 6).

``ae``: a 1x1 conv to K heatmaps at 1/4 (the simple head). ``srhead_ae``: the SR head
(e=4, r=4, kernel 9 by default) to full resolution.
"""

from __future__ import annotations

from typing import Mapping

import keras

from kpose.models.backbones import BackboneSpec
from kpose.models.heads.simple import DECONV_FILTERS, heatmap_conv, simple_features
from kpose.models.heads.sr import EMBED, KERNEL_SIZE, sr_head, sr_input, sr_levels, upscale_factor


def tag_map(x: keras.KerasTensor, num_keypoints: int, upscale: int) -> keras.KerasTensor:
    """Associative-embedding tags: 1x1 conv (B, h, w, C) -> (B, h, w, K), then bilinear
    upsampling by ``upscale``; output ``tags`` (B, h*upscale, w*upscale, K), float32."""
    if upscale == 1:
        return keras.layers.Conv2D(num_keypoints, 1, name="tags", dtype="float32")(x)
    tags = keras.layers.Conv2D(num_keypoints, 1, name="tag_conv")(x)
    return keras.layers.UpSampling2D(
        upscale, interpolation="bilinear", name="tags", dtype="float32"
    )(tags)


def build_ae(
    features: Mapping[str, keras.KerasTensor],
    backbone: BackboneSpec,
    num_keypoints: int,
    *,
    deconv_filters: int = DECONV_FILTERS,
) -> dict[str, keras.KerasTensor]:
    """Simple head + AE: {"heatmaps", "tags"}, both (B, H/4, W/4, K).

    Args:
        deconv_filters: width of the three deconvolutions (ignored on HRNet).
    """
    x = simple_features(features, backbone, deconv_filters)
    return {"heatmaps": heatmap_conv(x, num_keypoints), "tags": tag_map(x, num_keypoints, 1)}


def build_srhead_ae(
    features: Mapping[str, keras.KerasTensor],
    backbone: BackboneSpec,
    num_keypoints: int,
    *,
    feature: str = "deconv",
    scale: float = 1.0,
    embed: int = EMBED,
    kernel_size: int = KERNEL_SIZE,
    deconv_filters: int = DECONV_FILTERS,
) -> dict[str, keras.KerasTensor]:
    """SR head + AE: {"heatmaps", "tags"}, both (B, H*scale, W*scale, K).

    Args:
        feature: what the head reads: ``"deconv"`` (the paper: the stride-4 feature above) or
            a pyramid level ``"F2"``..``"F5"`` (e.g. ``"F3"``, stride 8, for edge backbones:
            no deconvolutions, and it learns fastest from scratch, as the top-down quickstart).
        scale: output size / input size (1: full resolution; r = stride x scale).
        embed, kernel_size: the SR head's e and large kernel (paper: 4 and 9).
        deconv_filters: width of the three deconvolutions (ignored on HRNet and for a level).
    """
    x, stride = sr_input(features, backbone, feature, deconv_filters)
    r = upscale_factor(stride, scale, "srhead_ae")
    heatmaps = sr_head(x, num_keypoints, embed, r, kernel_size, "sr", "heatmaps")
    return {"heatmaps": heatmaps, "tags": tag_map(x, num_keypoints, r)}


def srhead_ae_levels(
    backbone: BackboneSpec, feature: str = "deconv", **_: object
) -> tuple[str, ...]:
    """The pyramid level ``srhead_ae`` reads (F5 under the deconvolutions by default)."""
    return sr_levels(backbone, feature)
