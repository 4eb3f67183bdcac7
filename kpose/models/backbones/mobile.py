"""Edge backbones from keras.applications as F2..F5 pyramids: MobileNetV3-Large/Small and
EfficientNetV2-B0, all built without their input-rescaling layers (kpose normalizes outside
the model)."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import keras

from kpose.models.backbones.base import TF, TORCH, BackboneSpec, KerasApplication


def _spec(
    name: str,
    constructor: Callable[..., keras.Model],
    layer_names: Mapping[str, str | None],
    channels: tuple[int, int, int, int],
    normalization: Any,
) -> BackboneSpec:
    # Edge default for a stand-alone SR head: straight on F5 (no deconvolutions), up to 1/4 of
    # the input size (r = 8), which keeps the head a small fraction of the backbone's cost.
    return BackboneSpec(
        name=name,
        builder=KerasApplication(
            name, constructor, layer_names, options={"include_preprocessing": False}
        ),
        channels=channels,
        bottleneck=False,
        normalization=normalization,
        sr_feature="F5",
        sr_scale=0.25,
    )


# F2..F4: the last block output at each stride; F5: the application's output (last 1x1 conv).
MOBILE_BACKBONES = (
    _spec(
        "mobilenetv3_large",
        keras.applications.MobileNetV3Large,
        {
            "F2": "expanded_conv_2_add",
            "F3": "expanded_conv_5_add",
            "F4": "expanded_conv_11_add",
            "F5": None,
        },
        (24, 40, 112, 960),
        TF,
    ),
    _spec(
        "mobilenetv3_small",
        keras.applications.MobileNetV3Small,
        {
            "F2": "expanded_conv_project_bn",
            "F3": "expanded_conv_2_add",
            "F4": "expanded_conv_7_add",
            "F5": None,
        },
        (16, 24, 48, 576),
        TF,
    ),
    _spec(
        "efficientnetv2_b0",
        keras.applications.EfficientNetV2B0,
        {"F2": "block2b_add", "F3": "block3b_add", "F4": "block5e_add", "F5": None},
        (32, 48, 112, 1280),
        TORCH,
    ),
)
