"""HRNet-W32 / HRNet-W48 (Sun et al., 2019), written for kpose, with outputs at strides 4..32.

Layout as in the reference PyTorch implementation used by MMPose: a stem of two stride-2 3x3
convs (64 channels), stage 1 of four bottleneck blocks (256 channels), then stages 2, 3, 4 with
1, 4 and 3 multi-resolution modules of four basic blocks per branch, and a fuse at the end of
every module. F2..F5 are the four branches of the last module (widths W, 2W, 4W, 8W).

The last module computes the fused output of a branch only when that level is requested, so
an HRNet used through its stride-4 branch alone (SimpleBaseline / SR head) has exactly the
parameters of the original (28.54M for W32), and one used as a full pyramid (SRPose) adds the
fuse layers of the three coarser outputs (29.30M).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Sequence

import keras

from kpose.errors import ConfigError
from kpose.models.backbones.base import BACKBONE_LAYER_NAME, LEVELS, TORCH, BackboneSpec
from kpose.models.blocks import conv_bn

# Modules per stage (stages 2, 3, 4); each branch of a module has four basic blocks.
_STAGE_MODULES = (1, 4, 3)
_BLOCKS_PER_BRANCH = 4


def _basic_block(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    """Two 3x3 conv-BN with an identity shortcut: (B, H, W, C) -> (B, H, W, C)."""
    channels = x.shape[-1]
    y = conv_bn(x, channels, 3, f"{name}_1")
    y = conv_bn(y, channels, 3, f"{name}_2", relu=False)
    y = keras.layers.Add(name=f"{name}_add")([x, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def _bottleneck(x: keras.KerasTensor, planes: int, name: str) -> keras.KerasTensor:
    """1x1 -> 3x3 -> 1x1 (x4 expansion) with a projected shortcut where channels change:
    (B, H, W, C) -> (B, H, W, 4 * planes)."""
    shortcut = x
    if x.shape[-1] != 4 * planes:
        shortcut = conv_bn(x, 4 * planes, 1, f"{name}_downsample", relu=False)
    y = conv_bn(x, planes, 1, f"{name}_1")
    y = conv_bn(y, planes, 3, f"{name}_2")
    y = conv_bn(y, 4 * planes, 1, f"{name}_3", relu=False)
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


# ``downsample(x, filters, name, relu)``: one stride-2 step of a fuse, (B, H, W, C) -> (B, H/2, W/2, filters).
Downsample = Callable[[keras.KerasTensor, int, str, bool], keras.KerasTensor]


def _conv_downsample(x: keras.KerasTensor, filters: int, name: str, relu: bool) -> keras.KerasTensor:
    """HRNet's fuse step: a stride-2 3x3 conv-BN (optional ReLU)."""
    return conv_bn(x, filters, 3, name, strides=2, relu=relu)


def fuse_into(
    branches: Sequence[keras.KerasTensor], target: int, name: str, downsample: Downsample = _conv_downsample
) -> keras.KerasTensor:
    """The fuse for one output branch: the sum of every branch resampled to ``target``, then
    ReLU. Coarser branches: 1x1 conv-BN to the target width, nearest upsampling. Finer
    branches: one ``downsample`` per halving (ReLU on all but the last), the last to the
    target width.
    """
    channels = branches[target].shape[-1]
    terms = []
    for source, x in enumerate(branches):
        prefix = f"{name}_from{source}"
        if source > target:
            x = conv_bn(x, channels, 1, prefix, relu=False)
            factor = 2 ** (source - target)
            x = keras.layers.UpSampling2D(factor, interpolation="nearest", name=f"{prefix}_up")(x)
        steps = target - source
        for step in range(steps):
            last = step == steps - 1
            x = downsample(x, channels if last else x.shape[-1], f"{prefix}_down{step}", not last)
        terms.append(x)
    x = keras.layers.Add(name=f"{name}_sum")(terms)
    return keras.layers.ReLU(name=f"{name}_out")(x)


def _module(branches: list[keras.KerasTensor], name: str) -> list[keras.KerasTensor]:
    """One multi-resolution module: basic blocks per branch, then a fuse into every branch."""
    for b in range(len(branches)):
        for block in range(_BLOCKS_PER_BRANCH):
            branches[b] = _basic_block(branches[b], f"{name}_branch{b}_block{block}")
    return [fuse_into(branches, t, f"{name}_fuse{t}") for t in range(len(branches))]


def _build(
    width: int, input_size: tuple[int, int], levels: Sequence[str], weights: Any
) -> keras.Model:
    """HRNet-W``width``: (B, H, W, 3) -> {level: (B, H/s, W/s, width * 2**i)}."""
    if weights is not None:
        raise ConfigError(
            f"backbone hrnet_w{width} has no keras.applications weights (weights={weights!r}): "
            "build it with weights None and start from a converted checkpoint: "
            "`kpose import CHECKPOINT --model NAME -o OUT.keras` (an ImageNet or COCO HRNet "
            "checkpoint of PyTorch), then model.init_from: OUT.keras"
        )
    return multi_resolution(
        width, input_size, levels, stage1_blocks=4, stage_modules=_STAGE_MODULES,
        run_module=lambda branches, final, name: _module(branches, name),
    )


# ``run_module(branches, final, name)``: one multi-resolution module on the branches; ``final``
# marks the last module of the last stage, whose outputs the model returns.
RunModule = Callable[[list[keras.KerasTensor], bool, str], list[keras.KerasTensor]]


def multi_resolution(
    width: int,
    input_size: tuple[int, int],
    levels: Sequence[str],
    stage1_blocks: int,
    stage_modules: Sequence[int],
    run_module: RunModule,
) -> keras.Model:
    """The HRNet layout: a stride-4 stem of two 3x3 convs, ``stage1_blocks`` bottlenecks
    (64 wide), then stages 2..4, each opening a branch at half the resolution (widths
    ``width * 2**b``) and running ``stage_modules[stage - 2]`` modules of ``run_module``;
    HRNet's modules are residual blocks, HRFormer's window-attention blocks.

    Returns:
        (B, H, W, 3) -> {level: (B, H/s, W/s, width * 2**i)} for the ``levels`` asked.
    """
    inputs = keras.Input((*input_size, 3), name="image")
    x = conv_bn(inputs, 64, 3, "stem1", strides=2)
    x = conv_bn(x, 64, 3, "stem2", strides=2)
    for block in range(stage1_blocks):
        x = _bottleneck(x, 64, f"stage1_block{block}")
    branches = [x]
    for stage, modules in enumerate(stage_modules, start=2):
        # Transition: adapt existing branches to their widths, and open a half-size branch
        # from the coarsest existing one.
        widths = [width * 2**b for b in range(stage)]
        coarsest = branches[-1]
        branches = [
            x if x.shape[-1] == w else conv_bn(x, w, 3, f"transition{stage}_{b}")
            for b, (x, w) in enumerate(zip(branches, widths))
        ]
        branches.append(
            conv_bn(coarsest, widths[-1], 3, f"transition{stage}_{stage - 1}", strides=2)
        )
        for module in range(modules):
            final = stage == len(stage_modules) + 1 and module == modules - 1
            branches = run_module(branches, final, f"stage{stage}_module{module}")
    outputs = {level: branches[LEVELS.index(level)] for level in levels}
    return keras.Model(inputs, outputs, name=BACKBONE_LAYER_NAME)


HRNETS = tuple(
    BackboneSpec(
        name=f"hrnet_w{width}",
        builder=partial(_build, width),
        channels=(width, 2 * width, 4 * width, 8 * width),
        bottleneck=False,
        normalization=TORCH,
        simple_feature="F2",
        sr_feature="F2",
    )
    for width in (32, 48)
)
