"""Pose models: backbones, necks, heads, the factory and complexity counts.

>>> model = create_model("srpose_resnet50", schema="coco", input_size=(256, 192))
>>> deploy = inference_model(model)   # only the final SR head's ``heatmaps``
"""

from kpose.models.backbones import (
    BackboneSpec,
    InputNormalization,
    backbone_names,
    get_backbone,
)
from kpose.models.complexity import (
    ModelProfile,
    count_macs,
    count_params,
    profile_model,
)
from kpose.models.factory import (
    check_input_size,
    create_model,
    heatmap_output,
    inference_model,
    input_normalization,
    list_models,
    parse_model_name,
)
from kpose.models.layers import KeypointConv2D, KeypointPixelShuffle
from kpose.models.saving import load_pose_model

__all__ = [
    "BackboneSpec",
    "InputNormalization",
    "KeypointConv2D",
    "KeypointPixelShuffle",
    "ModelProfile",
    "backbone_names",
    "check_input_size",
    "count_macs",
    "count_params",
    "create_model",
    "get_backbone",
    "heatmap_output",
    "inference_model",
    "input_normalization",
    "list_models",
    "load_pose_model",
    "parse_model_name",
    "profile_model",
]
