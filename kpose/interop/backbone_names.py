"""How PyTorch pose checkpoints name the backbones kpose builds.

MMPose (0.x and 1.x), the SR-head paper's code and SimMRPose all use the mmcv / torchvision
ResNet layout and HRNet's reference layout, under the prefix ``backbone.`` (an ImageNet
classification checkpoint has none). Each rule maps a kpose layer name (a regular expression
over the whole name) to the PyTorch module that holds its tensors.
"""

from __future__ import annotations

import re

from kpose.interop.importer import Rule

_BN_INDEX = {"conv": "0", "bn": "1"}  # Sequential(conv, BN[, ReLU]) children


def _resnet_rules() -> list[Rule]:
    """keras.applications' ResNet names (``conv{stage}_block{b}_{i}_{conv|bn}``, stages 2..5,
    blocks from 1) -> ``layer{stage-1}.{b-1}.{conv|bn}{i}``; ``_0_`` is the projection
    shortcut, ``downsample.{0|1}``."""

    def block(m: re.Match[str]) -> str:
        return f"layer{int(m['stage']) - 1}.{int(m['block']) - 1}"

    return [
        (r"conv1_(?P<kind>conv|bn)", lambda m: "conv1" if m["kind"] == "conv" else "bn1"),
        (
            r"conv(?P<stage>[2-5])_block(?P<block>\d+)_0_(?P<kind>conv|bn)",
            lambda m: f"{block(m)}.downsample.{_BN_INDEX[m['kind']]}",
        ),
        (
            r"conv(?P<stage>[2-5])_block(?P<block>\d+)_(?P<i>[123])_(?P<kind>conv|bn)",
            lambda m: f"{block(m)}.{m['kind']}{m['i']}",
        ),
    ]


def _hrnet_rules() -> list[Rule]:
    """kpose's HRNet names (:mod:`kpose.models.backbones.hrnet`) -> HRNet's reference names.

    kpose numbers a transition by the stage it opens (``transition2`` feeds stage 2), the
    reference by the stage it follows (``transition1``). A transition that adapts an existing
    branch is ``Sequential(conv, BN, ReLU)``; one that opens the new branch is wrapped once
    more, ``Sequential(Sequential(conv, BN, ReLU))``.
    """

    def transition(m: re.Match[str]) -> str:
        stage, branch = int(m["stage"]), int(m["branch"])
        opens_branch = branch == stage - 1
        inner = f"0.{_BN_INDEX[m['kind']]}" if opens_branch else _BN_INDEX[m["kind"]]
        return f"transition{stage - 1}.{branch}.{inner}"

    module = r"stage(?P<stage>[234])_module(?P<module>\d+)"

    def in_module(m: re.Match[str]) -> str:
        return f"stage{m['stage']}.{m['module']}"

    return [
        (r"stem(?P<i>[12])_(?P<kind>conv|bn)", lambda m: f"{m['kind']}{m['i']}"),
        (
            r"stage1_block(?P<block>\d)_downsample_(?P<kind>conv|bn)",
            lambda m: f"layer1.{m['block']}.downsample.{_BN_INDEX[m['kind']]}",
        ),
        (
            r"stage1_block(?P<block>\d)_(?P<i>[123])_(?P<kind>conv|bn)",
            lambda m: f"layer1.{m['block']}.{m['kind']}{m['i']}",
        ),
        (r"transition(?P<stage>[234])_(?P<branch>\d)_(?P<kind>conv|bn)", transition),
        (
            module + r"_branch(?P<branch>\d)_block(?P<block>\d)_(?P<i>[12])_(?P<kind>conv|bn)",
            lambda m: f"{in_module(m)}.branches.{m['branch']}.{m['block']}.{m['kind']}{m['i']}",
        ),
        (
            module + r"_fuse(?P<target>\d)_from(?P<source>\d)_down(?P<step>\d)_(?P<kind>conv|bn)",
            lambda m: f"{in_module(m)}.fuse_layers.{m['target']}.{m['source']}.{m['step']}.{_BN_INDEX[m['kind']]}",
        ),
        (
            module + r"_fuse(?P<target>\d)_from(?P<source>\d)_(?P<kind>conv|bn)",
            lambda m: f"{in_module(m)}.fuse_layers.{m['target']}.{m['source']}.{_BN_INDEX[m['kind']]}",
        ),
    ]


BACKBONE_RULES: dict[str, list[Rule]] = {
    **{name: _resnet_rules() for name in ("resnet50", "resnet101", "resnet152")},
    **{name: _hrnet_rules() for name in ("hrnet_w32", "hrnet_w48")},
}
"""Backbone name -> its naming rules; the backbones a checkpoint can be imported into."""

# A tensor every checkpoint of the backbone has, to find the prefix its names carry.
ANCHOR_TENSOR = "conv1.weight"
