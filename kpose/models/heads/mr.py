"""SimMRPose heads (Tran et al.): multi-resolution heatmap learning (MRHeatNet1/2) and
multi-resolution feature map learning (MRFeaNet1/2), on the SimpleBaseline deconvolutions.
One output, ``heatmaps`` at 1/4 of the input, trained with a single loss."""

from __future__ import annotations

from typing import Mapping

import keras

from kpose.models.backbones import LEVELS, BackboneSpec
from kpose.models.blocks import batch_norm, deconv, deconv_bn_relu
from kpose.models.heads.simple import DECONV_FILTERS, NUM_DECONVS, deconv_stack, heatmap_conv


def _side_branch(x: keras.KerasTensor, num_keypoints: int, name: str) -> keras.KerasTensor:
    """Low-resolution heatmaps off a deconv output: 1x1 conv to K + BN + ReLU."""
    x = keras.layers.Conv2D(num_keypoints, 1, use_bias=False, name=f"{name}_conv")(x)
    x = batch_norm(f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def _upsample_heatmaps(x: keras.KerasTensor, steps: int, name: str) -> keras.KerasTensor:
    """``steps`` K->K deconvolutions: deconv-BN-ReLU for all but the last, a plain deconv last.

    (B, h, w, K) -> (B, h * 2**steps, w * 2**steps, K).
    """
    channels = x.shape[-1]
    for step in range(1, steps):
        x = deconv_bn_relu(x, channels, f"{name}_up{step}")
    return deconv(x, channels, f"{name}_up{steps}")


def build_mrheatnet(
    features: Mapping[str, keras.KerasTensor],
    backbone: BackboneSpec,
    num_keypoints: int,
    *,
    variant: int,
    deconv_filters: int = DECONV_FILTERS,
) -> dict[str, keras.KerasTensor]:
    """MRHeatNet1 (variant 1) or MRHeatNet2 (variant 2) on F5: {"heatmaps": (B, H/4, W/4, K)}.

    Side branches give heatmaps at 1/16 (off deconv1) and 1/8 (off deconv2). MRHeatNet1
    upsamples the 1/16 ones once, adds the 1/8 ones, and upsamples the sum to 1/4;
    MRHeatNet2 upsamples each branch to 1/4 on its own. The branches are added to the main
    SimpleBaseline prediction.
    """
    d1, d2, d3 = deconv_stack(features["F5"], [deconv_filters] * NUM_DECONVS, "deconv")
    terms = [heatmap_conv(d3, num_keypoints, name="main_heatmaps")]
    b1 = _side_branch(d1, num_keypoints, "branch1")
    b2 = _side_branch(d2, num_keypoints, "branch2")
    if variant == 1:
        b1 = deconv_bn_relu(b1, num_keypoints, "branch1_up1")
        merged = keras.layers.Add(name="branch12_add")([b1, b2])
        terms.append(_upsample_heatmaps(merged, 1, "branch12"))
    else:
        terms.append(_upsample_heatmaps(b1, 2, "branch1"))
        terms.append(_upsample_heatmaps(b2, 1, "branch2"))
    return {"heatmaps": keras.layers.Add(name="heatmaps", dtype="float32")(terms)}


def build_mrfeanet(
    features: Mapping[str, keras.KerasTensor],
    backbone: BackboneSpec,
    num_keypoints: int,
    *,
    variant: int,
) -> dict[str, keras.KerasTensor]:
    """MRFeaNet1 (variant 1) or MRFeaNet2 (variant 2): {"heatmaps": (B, H/4, W/4, K)}.

    F5, F4 and F3 are brought to 1/4 by 3, 2 and 1 deconvolutions and averaged with F2, then a
    1x1 conv gives the heatmaps. MRFeaNet1's deconvolutions are all as wide as F2 (256 on a
    ResNet); MRFeaNet2's are as wide as the backbone level they land on (F5 path 1024 -> 512
    -> 256, F4 path 512 -> 256, F3 path 256), so width halves as resolution doubles.
    """
    f2_channels = backbone.channels_of("F2")
    maps = [features["F2"]]
    for source in range(1, len(LEVELS)):
        level = LEVELS[source]
        widths = [
            f2_channels if variant == 1 else backbone.channels[landing]
            for landing in range(source - 1, -1, -1)
        ]
        maps.append(deconv_stack(features[level], widths, f"{level}_deconv")[-1])
    x = keras.layers.Average(name="multires_average")(maps)
    return {"heatmaps": heatmap_conv(x, num_keypoints)}
