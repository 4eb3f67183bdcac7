"""SRPose neck (SRPose paper, Fig. 3): LR heatmaps from F5, then coarse-to-fine fusion with
F4, F3, F2. ``M_i = Fusion(F_i, M_{i+1})``; widths 256, 128, 64, 32."""

from __future__ import annotations

import keras

from kpose.models.blocks import batch_norm, conv_bn
from kpose.models.necks.convnext import convnext_block

WIDTHS = (256, 128, 64, 32)
CONVNEXT_BLOCKS = 2


def lr_fusion(
    f5: keras.KerasTensor, num_keypoints: int, width: int = WIDTHS[0]
) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """LR heatmaps and M5 from F5 (B, H/32, W/32, C).

    ``M_LR = ReLU(conv1x1(F5))`` and ``M5 = ReLU(BN(conv1x1(F5))) + ReLU(conv1x1(M_LR))``.

    Returns:
        M_LR (B, H/32, W/32, K), float32 (it is a model output, ``"lr_heatmaps"``), and
        M5 (B, H/32, W/32, width).
    """
    m_lr = keras.layers.Conv2D(num_keypoints, 1, name="lr_heatmaps_conv")(f5)
    m_lr = keras.layers.ReLU(name="lr_heatmaps", dtype="float32")(m_lr)
    feat = conv_bn(f5, width, 1, "fuse5_feat")
    prior = keras.layers.Conv2D(width, 1, name="fuse5_heatmap_conv")(m_lr)
    prior = keras.layers.ReLU(name="fuse5_heatmap_relu")(prior)
    return m_lr, keras.layers.Add(name="fuse5_add")([feat, prior])


def fuse_module(
    coarse: keras.KerasTensor, lateral: keras.KerasTensor, width: int, name: str
) -> keras.KerasTensor:
    """One fuse module.

    The coarse map goes through depthwise 3x3 + pointwise 1x1 + BN + ReLU at its own
    resolution, then nearest 2x upsampling; the lateral backbone feature through 1x1 conv + BN
    + ReLU. Both are concatenated, mixed by a 1x1 conv (2w -> w, no norm, no activation), and
    refined by two ConvNeXt-style blocks.

    Args:
        coarse: M_{i+1} (B, h, w, C_coarse).
        lateral: F_i (B, 2h, 2w, C_i).
        width: w, output channels.

    Returns:
        M_i (B, 2h, 2w, width).
    """
    x = keras.layers.DepthwiseConv2D(3, padding="same", name=f"{name}_dwconv")(coarse)
    x = keras.layers.Conv2D(width, 1, name=f"{name}_pwconv")(x)
    x = batch_norm(f"{name}_pw_bn")(x)
    x = keras.layers.ReLU(name=f"{name}_pw_relu")(x)
    x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_up")(x)
    lateral = conv_bn(lateral, width, 1, f"{name}_lateral")
    x = keras.layers.Concatenate(name=f"{name}_concat")([x, lateral])
    x = keras.layers.Conv2D(width, 1, name=f"{name}_mix")(x)
    for block in range(CONVNEXT_BLOCKS):
        x = convnext_block(x, f"{name}_convnext{block}")
    return x
