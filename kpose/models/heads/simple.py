"""SimpleBaseline head (Xiao et al., 2018): deconvolutions to 1/4 resolution, 1x1 conv to K."""

from __future__ import annotations

from typing import Mapping, Sequence

import keras

from kpose.models.backbones import BackboneSpec
from kpose.models.blocks import deconv_bn_relu

NUM_DECONVS = 3
DECONV_FILTERS = 256


def deconv_stack(
    x: keras.KerasTensor, filters: Sequence[int], name: str
) -> list[keras.KerasTensor]:
    """Deconv-BN-ReLU steps, each doubling the resolution.

    Args:
        x: (B, H, W, C).
        filters: output channels of each step.

    Returns:
        The output of every step; step ``i`` is (B, H * 2**(i+1), W * 2**(i+1), filters[i]).
    """
    outputs = []
    for i, width in enumerate(filters, start=1):
        x = deconv_bn_relu(x, width, f"{name}{i}")
        outputs.append(x)
    return outputs


def simple_features(
    features: Mapping[str, keras.KerasTensor], backbone: BackboneSpec, deconv_filters: int
) -> keras.KerasTensor:
    """The stride-4 feature a SimpleBaseline-style head predicts from: three deconvolutions on
    F5 (B, H/4, W/4, deconv_filters), or for HRNet its stride-4 branch F2 as is."""
    if backbone.simple_feature == "deconv":
        return deconv_stack(features["F5"], [deconv_filters] * NUM_DECONVS, "deconv")[-1]
    return features[backbone.simple_feature]


def heatmap_conv(
    x: keras.KerasTensor, num_keypoints: int, name: str = "heatmaps"
) -> keras.KerasTensor:
    """Final 1x1 conv to K heatmaps, computed in float32 under any mixed-precision policy.

    Initialised N(0, 0.001) with zero bias, as SimpleBaseline's reference code: the maps start
    near zero (max ~0.05 in the first training steps). With Keras' Glorot default they started
    near 5, and the head sank to the all-zero maps and stayed there (docs/bottomup.md, "The
    simple head's init")."""
    return keras.layers.Conv2D(
        num_keypoints, 1, name=name, dtype="float32", kernel_initializer=keras.initializers.RandomNormal(0.0, 0.001)
    )(x)


def simple_levels(backbone: BackboneSpec, **_: object) -> tuple[str, ...]:
    """The pyramid level a SimpleBaseline-style head reads."""
    return ("F5",) if backbone.simple_feature == "deconv" else (backbone.simple_feature,)


def build_simple(
    features: Mapping[str, keras.KerasTensor],
    backbone: BackboneSpec,
    num_keypoints: int,
    *,
    deconv_filters: int = DECONV_FILTERS,
) -> dict[str, keras.KerasTensor]:
    """SimpleBaseline: {"heatmaps": (B, H/4, W/4, K)}. On HRNet this is HRNet's own head, a
    1x1 conv on the stride-4 branch (no deconvolutions)."""
    x = simple_features(features, backbone, deconv_filters)
    return {"heatmaps": heatmap_conv(x, num_keypoints)}
