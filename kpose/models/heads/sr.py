"""SR head (SRPose paper, section 3.1): keypoint encoder, per-keypoint large-kernel conv,
per-keypoint pixel shuffle. Predicts heatmaps at a higher resolution than its input."""

from __future__ import annotations

from typing import Mapping

import keras

from kpose.errors import ConfigError
from kpose.models.backbones import LEVELS, STRIDES, BackboneSpec
from kpose.models.heads.simple import DECONV_FILTERS, simple_features, simple_levels
from kpose.models.layers import KeypointConv2D, KeypointPixelShuffle

EMBED = 4
KERNEL_SIZE = 9


def sr_head(
    x: keras.KerasTensor,
    num_keypoints: int,
    embed: int,
    upscale: int,
    kernel_size: int,
    name: str,
    output_name: str,
) -> keras.KerasTensor:
    """One SR head.

    Args:
        x: features (B, h, w, C).
        num_keypoints: K.
        embed: e, channels of each keypoint's embedding.
        upscale: r, the output is r times the input resolution (1 = no pixel shuffle).
        kernel_size: kernel of the per-keypoint large-kernel conv.
        name: prefix of the head's layer names.
        output_name: name of the last layer (the model output's name).

    Returns:
        Heatmaps (B, h*r, w*r, K), float32 under any mixed-precision policy.
    """
    x = keras.layers.Conv2D(embed * num_keypoints, 1, name=f"{name}_encoder")(x)
    x = keras.layers.ReLU(name=f"{name}_encoder_relu")(x)
    if upscale == 1:
        return KeypointConv2D(
            num_keypoints, 1, kernel_size, name=output_name, dtype="float32"
        )(x)
    x = KeypointConv2D(num_keypoints, upscale * upscale, kernel_size, name=f"{name}_lkconv")(x)
    return KeypointPixelShuffle(num_keypoints, upscale, name=output_name, dtype="float32")(x)


def upscale_factor(stride: int, scale: float, what: str) -> int:
    """r such that features at ``stride`` become heatmaps at ``scale`` x the input size."""
    r = stride * scale
    if scale <= 0 or r < 1 or abs(r - round(r)) > 1e-9:
        raise ConfigError(
            f"{what}: output scale {scale} is not reachable from stride-{stride} features; "
            f"stride x scale must be a whole number >= 1 (e.g. scale in 0.25, 0.5, 1, 2)"
        )
    return int(round(r))


def _feature(feature: str | None, backbone: BackboneSpec) -> str:
    feature = feature or backbone.sr_feature
    valid = ("deconv", *LEVELS)
    if feature not in valid:
        raise ConfigError(f"srhead: feature {feature!r} is not one of {', '.join(valid)}")
    return feature


def sr_input(
    features: Mapping[str, keras.KerasTensor],
    backbone: BackboneSpec,
    feature: str,
    deconv_filters: int,
) -> tuple[keras.KerasTensor, int]:
    """The feature map an SR head reads and its stride (input pixels per feature cell):
    ``"deconv"`` (see :func:`simple_features`, stride 4) or a pyramid level ``"F2"``..``"F5"``."""
    feature = _feature(feature, backbone)
    if feature == "deconv":
        return simple_features(features, backbone, deconv_filters), 4
    return features[feature], STRIDES[feature]


def sr_levels(backbone: BackboneSpec, feature: str | None = None, **_: object) -> tuple[str, ...]:
    """The pyramid level the stand-alone SR head reads."""
    feature = _feature(feature, backbone)
    return simple_levels(backbone) if feature == "deconv" else (feature,)


def build_srhead(
    features: Mapping[str, keras.KerasTensor],
    backbone: BackboneSpec,
    num_keypoints: int,
    *,
    feature: str | None = None,
    scale: float | None = None,
    embed: int = EMBED,
    kernel_size: int = KERNEL_SIZE,
    deconv_filters: int = DECONV_FILTERS,
) -> dict[str, keras.KerasTensor]:
    """A stand-alone SR head: {"heatmaps": (B, H*scale, W*scale, K)}.

    Args:
        feature: what it reads: ``"deconv"`` (SimpleBaseline deconvolutions on F5, stride 4; on
            HRNet, its stride-4 branch) or a pyramid level ``"F2"``..``"F5"``. Default: the
            backbone's (``"deconv"`` for ResNet, ``"F2"`` for HRNet, ``"F5"`` for edge ones).
        scale: output size / input size, k (default: the backbone's; 1 for ResNet and HRNet,
            0.25 for edge ones).
        embed, kernel_size: e and the large kernel (paper: 4 and 9).
        deconv_filters: width of the deconvolutions when ``feature="deconv"``.
    """
    scale = backbone.sr_scale if scale is None else scale
    x, stride = sr_input(features, backbone, feature, deconv_filters)
    r = upscale_factor(stride, scale, "srhead")
    return {"heatmaps": sr_head(x, num_keypoints, embed, r, kernel_size, "sr", "heatmaps")}
