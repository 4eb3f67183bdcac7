"""HRFormer-S / HRFormer-B (Yuan et al., "HRFormer: High-Resolution Transformer for Dense
Prediction", NeurIPS 2021): HRNet with local-window transformer blocks.

HRNet's layout (:mod:`kpose.models.backbones.hrnet`, whose stem, bottleneck and transitions are
reused): a stem of two stride-2 3x3 convs (64 channels), stage 1 of two bottleneck blocks (256
channels), then stages 2, 3, 4 with 1, 4 and 2 multi-resolution modules of two transformer
blocks per branch (widths W, 2W, 4W, 8W; W = 32 for -S, 78 for -B), and a fuse at the end of
every module. F2..F5 are the four branches of the last module.

A transformer block (pre-norm, LayerNorm epsilon 1e-6):
``x = x + WindowAttention(LN(x))`` with 7x7 windows and 1, 2, 4, 8 heads (-S; -B: 2, 4, 8, 16)
on the four branches (:class:`~kpose.models.layers.WindowAttention`), then
``x = x + FFN(LN(x))``, FFN = 1x1 conv to 4C, depthwise 3x3 conv, 1x1 conv back to C, each with
bias, BatchNorm and GELU. HRFormer's fuse differs from HRNet's in its downsampling path: each
halving is a depthwise 3x3 stride-2 conv, BN, a 1x1 conv, BN (and ReLU but on the last).

As for HRNet, the last module computes the fused output of a branch only when that level is
requested: the simple and SR heads read F2 alone, SRPose all four levels. Stochastic depth
(HRFormer's drop-path rate 0.1 in training) is not applied.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Sequence

import keras

from kpose.errors import ConfigError
from kpose.models.backbones.base import LEVELS, TORCH, BackboneSpec
from kpose.models.backbones.hrnet import fuse_into, multi_resolution
from kpose.models.blocks import batch_norm, conv_bn
from kpose.models.layers import GELU, WindowAttention

# Modules per stage (stages 2, 3, 4); each branch of a module has two transformer blocks.
_STAGE_MODULES = (1, 4, 2)
_BLOCKS_PER_BRANCH = 2
_STAGE1_BLOCKS = 2
WINDOW = 7
MLP_RATIO = 4
LN_EPSILON = 1e-6
# name -> (W, heads of the widest-resolution branch; they double per branch)
VARIANTS = {"hrformer_s": (32, 1), "hrformer_b": (78, 2)}


def _conv_bn_gelu(x: keras.KerasTensor, name: str, filters: int | None = None) -> keras.KerasTensor:
    """1x1 conv to ``filters`` (or a depthwise 3x3 conv when None), with bias, then BN, GELU:
    (B, H, W, C) -> (B, H, W, filters or C)."""
    if filters is None:
        x = keras.layers.DepthwiseConv2D(3, padding="same", name=f"{name}_conv")(x)
    else:
        x = keras.layers.Conv2D(filters, 1, name=f"{name}_conv")(x)
    x = batch_norm(f"{name}_bn")(x)
    return GELU(name=f"{name}_gelu")(x)


def transformer_block(x: keras.KerasTensor, heads: int, name: str) -> keras.KerasTensor:
    """HRFormer block: window attention and the depthwise-conv FFN, each pre-norm and
    residual: (B, H, W, C) -> (B, H, W, C)."""
    channels = x.shape[-1]
    y = keras.layers.LayerNormalization(epsilon=LN_EPSILON, name=f"{name}_norm1")(x)
    y = WindowAttention(heads, WINDOW, name=f"{name}_attn")(y)
    x = keras.layers.Add(name=f"{name}_attn_add")([x, y])
    y = keras.layers.LayerNormalization(epsilon=LN_EPSILON, name=f"{name}_norm2")(x)
    y = _conv_bn_gelu(y, f"{name}_ffn1", MLP_RATIO * channels)
    y = _conv_bn_gelu(y, f"{name}_ffn_dw")
    y = _conv_bn_gelu(y, f"{name}_ffn2", channels)
    return keras.layers.Add(name=f"{name}_ffn_add")([x, y])


def _downsample(x: keras.KerasTensor, filters: int, name: str, relu: bool) -> keras.KerasTensor:
    """Depthwise 3x3 stride 2 (PyTorch padding 1), BN, 1x1 conv, BN, optional ReLU:
    (B, H, W, C) -> (B, H/2, W/2, filters)."""
    x = keras.layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    x = keras.layers.DepthwiseConv2D(3, strides=2, use_bias=False, name=f"{name}_dwconv")(x)
    x = batch_norm(f"{name}_dwbn")(x)
    return conv_bn(x, filters, 1, name, relu=relu)


def _module(
    branches: list[keras.KerasTensor], heads: int, outputs: Sequence[int], name: str
) -> list[keras.KerasTensor | None]:
    """One multi-resolution module: transformer blocks per branch (``heads * 2**b`` heads on
    branch b), then the fuse into the branches listed in ``outputs`` (None for the others)."""
    for b in range(len(branches)):
        for block in range(_BLOCKS_PER_BRANCH):
            branches[b] = transformer_block(
                branches[b], heads * 2**b, f"{name}_branch{b}_block{block}"
            )
    return [
        fuse_into(branches, t, f"{name}_fuse{t}", _downsample) if t in outputs else None
        for t in range(len(branches))
    ]


def _build(
    variant: str, input_size: tuple[int, int], levels: Sequence[str], weights: Any
) -> keras.Model:
    """HRFormer ``variant``: (B, H, W, 3) -> {level: (B, H/s, W/s, W * 2**i)}."""
    width, heads = VARIANTS[variant]
    if weights is not None:
        raise ConfigError(
            f"backbone {variant} has no keras.applications weights (weights={weights!r}): "
            "build it with weights None and start from a converted checkpoint in "
            "model.init_from"
        )
    kept = [LEVELS.index(level) for level in levels]

    def run_module(branches: list[keras.KerasTensor], final: bool, name: str) -> list[keras.KerasTensor | None]:
        return _module(branches, heads, kept if final else range(len(branches)), name)

    return multi_resolution(width, input_size, levels, _STAGE1_BLOCKS, _STAGE_MODULES, run_module)


HRFORMERS = tuple(
    BackboneSpec(
        name=name,
        builder=partial(_build, name),
        channels=(width, 2 * width, 4 * width, 8 * width),
        bottleneck=False,
        normalization=TORCH,
        simple_feature="F2",
        sr_feature="F2",
    )
    for name, (width, _) in VARIANTS.items()
)
