"""Small functional building blocks shared by backbones, necks and heads.

Every block takes and returns channels-last Keras tensors ``(B, H, W, C)``. BatchNorm follows
PyTorch numerics (epsilon 1e-5; Keras momentum 0.9 is PyTorch momentum 0.1) so that results and
ported weights line up with the papers' MMPose implementations.
"""

from __future__ import annotations

import keras

BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9


def batch_norm(name: str) -> keras.layers.BatchNormalization:
    """BatchNorm over the channel axis with PyTorch's epsilon and momentum."""
    return keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)


def conv_bn(
    x: keras.KerasTensor,
    filters: int,
    kernel_size: int,
    name: str,
    strides: int = 1,
    relu: bool = True,
) -> keras.KerasTensor:
    """Conv (no bias) -> BN -> optional ReLU.

    Strided convs pad ``kernel_size // 2`` pixels on every side, as PyTorch does, instead of
    TensorFlow's asymmetric "same" padding, so ported weights give the same feature maps.

    Args:
        x: (B, H, W, C_in).
        filters: output channels C_out.
        kernel_size: square kernel size (odd).
        strides: 1 or 2.
        relu: append a ReLU.

    Returns:
        (B, H / strides, W / strides, C_out).
    """
    padding = "same"
    if strides > 1:
        x = keras.layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    x = keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding=padding, use_bias=False, name=f"{name}_conv"
    )(x)
    x = batch_norm(f"{name}_bn")(x)
    if relu:
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return x


def deconv(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
    """Plain ConvTranspose 4x4 stride 2 without bias: (B, H, W, C) -> (B, 2H, 2W, filters)."""
    return keras.layers.Conv2DTranspose(
        filters, 4, strides=2, padding="same", use_bias=False, name=name
    )(x)


def deconv_bn_relu(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
    """SimpleBaseline upsampling step: ConvTranspose 4x4 stride 2 (no bias) -> BN -> ReLU.

    Args:
        x: (B, H, W, C_in).
        filters: output channels C_out.

    Returns:
        (B, 2H, 2W, C_out).
    """
    x = deconv(x, filters, name=f"{name}_deconv")
    x = batch_norm(f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)
