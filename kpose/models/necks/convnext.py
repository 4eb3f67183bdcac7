"""ConvNeXt-style block used by the SRPose fuse modules (BatchNorm instead of LayerNorm)."""

from __future__ import annotations

import keras

from kpose.models.blocks import batch_norm
from kpose.models.layers import GELU

EXPANSION = 4


def convnext_block(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    """Depthwise 7x7 -> BN -> Linear C->4C -> GELU (exact, erf) -> Linear 4C->C, plus the input.

    The per-pixel linear layers are 1x1 convolutions (same weights and cost as Dense on the
    channel axis; they convert to plain CONV_2D in TFLite).

    Args:
        x: (B, H, W, C).

    Returns:
        (B, H, W, C).
    """
    channels = x.shape[-1]
    y = keras.layers.DepthwiseConv2D(7, padding="same", name=f"{name}_dwconv")(x)
    y = batch_norm(f"{name}_bn")(y)
    y = keras.layers.Conv2D(EXPANSION * channels, 1, name=f"{name}_pwconv1")(y)
    y = GELU(name=f"{name}_gelu")(y)
    y = keras.layers.Conv2D(channels, 1, name=f"{name}_pwconv2")(y)
    return keras.layers.Add(name=f"{name}_add")([x, y])
