"""ResNet-50/101/152 from keras.applications as an F2..F5 pyramid (bottleneck channels).

keras.applications' ResNet is ResNet v1: a stage's first block downsamples in its first 1x1
conv. The papers' backbone (torchvision / MMPose ResNet, "v1.5") downsamples in the 3x3 conv,
which costs 5% more multiply-accumulates and is the network the papers' numbers measure. kpose
builds the keras.applications model, moves each stride-2 from ``convN_block1_1_conv`` to
``convN_block1_2_conv`` (no weight changes shape, so ``weights="imagenet"`` or a weights file of
the keras.applications model loads into it, and is copied over unchanged), pads that 3x3
conv's input by one pixel on every side as PyTorch does, and keeps Keras' conv biases.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import keras

from kpose.models.backbones.base import CAFFE, BackboneSpec, KerasApplication

# Blocks per stage (conv2..conv5); the last block of a stage is that stage's output.
_STAGE_BLOCKS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3), "resnet152": (3, 8, 36, 3)}
_CONSTRUCTORS: dict[str, Callable[..., keras.Model]] = {
    "resnet50": keras.applications.ResNet50,
    "resnet101": keras.applications.ResNet101,
    "resnet152": keras.applications.ResNet152,
}
# Layers of a downsampling block: "conv{3,4,5}_block1_{1,2}_conv" (1: 1x1, 2: 3x3).
_DOWNSAMPLING_CONV = re.compile(r"conv[345]_block1_([12])_conv")


def _stride_in_3x3(config: dict[str, Any]) -> dict[str, Any]:
    """Layer config edit: stride 1 in a downsampling block's 1x1 conv, stride 2 and "valid"
    padding in its 3x3 (:func:`_pad_strided_3x3` pads its input)."""
    match = _DOWNSAMPLING_CONV.fullmatch(config["name"])
    if match and match.group(1) == "1":
        config = {**config, "strides": (1, 1)}
    elif match:
        config = {**config, "strides": (2, 2), "padding": "valid"}
    return config


def _pad_strided_3x3(layer: keras.layers.Layer, *args: Any, **kwargs: Any) -> Any:
    """Calls each layer of the edited ResNet; a downsampling 3x3 conv reads its input padded
    by one pixel on every side, as PyTorch's ``padding=1`` does. (TensorFlow's "same" pads a
    stride-2 3x3 conv on an even input at the bottom and right only, which shifts the features
    by half a pixel against the papers' network and its weights.)"""
    match = _DOWNSAMPLING_CONV.fullmatch(layer.name)
    if match and match.group(1) == "2":
        pad = keras.layers.ZeroPadding2D(1, name=layer.name.removesuffix("_conv") + "_pad")
        return layer(pad(args[0]), *args[1:], **kwargs)
    return layer(*args, **kwargs)


def _application(name: str) -> KerasApplication:
    """ResNet pyramid: F2..F5 are the outputs of stages conv2..conv5 (256..2048 channels)."""
    blocks = _STAGE_BLOCKS[name]
    layer_names = {
        f"F{stage}": f"conv{stage}_block{blocks[stage - 2]}_out" for stage in (2, 3, 4, 5)
    }
    return KerasApplication(
        name, _CONSTRUCTORS[name], layer_names, reconfigure=_stride_in_3x3, call=_pad_strided_3x3
    )


RESNETS = tuple(
    BackboneSpec(
        name=name,
        builder=_application(name),
        channels=(256, 512, 1024, 2048),
        bottleneck=True,
        normalization=CAFFE,
    )
    for name in _STAGE_BLOCKS
)
