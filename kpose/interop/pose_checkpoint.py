"""Turn a published PyTorch pose checkpoint into a kpose model.

Supported: MMPose 0.x / 1.x SimpleBaseline on ResNet-50/101/152 and HRNet-W32/W48, the
SR-head paper's SRPose (and SR head) checkpoints (MMPose 0.x names), SimMRPose's MRHeatNet1/2
and MRFeaNet1/2, and, with ``backbone_only``, ImageNet classification checkpoints of those
backbones (torchvision's ResNet, HRNet's own) as a starting point for training.

Where a checkpoint's names start: MMPose and the SR-head code put the backbone under
``backbone.`` and the head under ``keypoint_head.`` (1.x: ``head.``); SimMRPose and
SimpleBaseline's original code have no prefixes (a ``module.`` prefix from DataParallel is
removed when reading). What the network expects: MMPose feeds RGB normalized with ImageNet's
mean and std; SimpleBaseline's original code and SimMRPose feed OpenCV's BGR image normalized
with the same RGB-ordered statistics. The imported model's ``normalize`` layer does the same,
so it takes plain RGB pixels like every kpose model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import keras
import numpy as np

from kpose.errors import ConfigError
from kpose.interop.backbone_names import ANCHOR_TENSOR, BACKBONE_RULES
from kpose.interop.head_names import HEAD_RULES
from kpose.interop.importer import ImportReport, NameMap, import_state_dict
from kpose.interop.torch_checkpoint import read_state_dict
from kpose.keypoints import KeypointSchema
from kpose.models.backbones import BACKBONE_LAYER_NAME, InputNormalization
from kpose.models.backbones.base import TORCH
from kpose.models.factory import create_model, parse_model_name

ChannelOrder = Literal["auto", "rgb", "bgr"]
HEAD_PREFIXES = ("keypoint_head.", "head.")
# Tensors some checkpoints carry that are not part of the network.
NOT_NETWORK_PREFIXES = ("data_preprocessor.",)


@dataclass(frozen=True)
class CheckpointLayout:
    """Where a checkpoint's backbone and head names start, and the channel order it reads."""

    backbone_prefix: str
    head_prefix: str | None  # None: the checkpoint has no head tensors
    channel_order: Literal["rgb", "bgr"]


def checkpoint_layout(
    state_dict: Mapping[str, np.ndarray], source: str, channel_order: ChannelOrder = "auto"
) -> CheckpointLayout:
    """Find the prefixes of a checkpoint's names (see the module docstring).

    ``channel_order="auto"``: BGR for a checkpoint with a head and no ``backbone.`` prefix
    (SimpleBaseline's original code, SimMRPose), RGB otherwise.
    """
    stems = [key for key in state_dict if key == ANCHOR_TENSOR or key.endswith("." + ANCHOR_TENSOR)]
    if not stems:
        raise ConfigError(
            f"{source}: no tensor {ANCHOR_TENSOR!r} (the first conv of a ResNet or HRNet): not a "
            "checkpoint of a backbone kpose can import"
        )
    backbone_prefix = min(stems, key=len)[: -len(ANCHOR_TENSOR)]
    head_prefix = next(
        (prefix for prefix in HEAD_PREFIXES if any(key.startswith(prefix) for key in state_dict)), None
    )
    if head_prefix is None and backbone_prefix == "" and any(
        key.startswith("final_layer.") for key in state_dict
    ):
        head_prefix = ""  # heads at the top level, beside the backbone
    if channel_order == "auto":
        channel_order = "bgr" if backbone_prefix == "" and head_prefix == "" else "rgb"
    return CheckpointLayout(backbone_prefix, head_prefix, channel_order)


def _supported(model_name: str, backbone_only: bool) -> tuple[str, str]:
    head, backbone = parse_model_name(model_name)
    if backbone.name not in BACKBONE_RULES:
        raise ConfigError(
            f"--model {model_name}: checkpoints can be imported into the backbones "
            f"{', '.join(BACKBONE_RULES)}, not {backbone.name}"
        )
    if not backbone_only and head.name not in HEAD_RULES:
        raise ConfigError(
            f"--model {model_name}: checkpoints can be imported into the heads "
            f"{', '.join(HEAD_RULES)}, not {head.name} (or import the backbone alone with --backbone-only)"
        )
    return head.name, backbone.name


def import_checkpoint(
    path: str | Path,
    model_name: str,
    schema: str | KeypointSchema = "coco",
    input_size: Sequence[int] = (256, 192),
    *,
    backbone_only: bool = False,
    channel_order: ChannelOrder = "auto",
    **options: Any,
) -> tuple[keras.Model, ImportReport]:
    """Build kpose model ``model_name`` and load a PyTorch checkpoint into it.

    Args:
        path: the checkpoint (``.pth`` / ``.pth.tar`` in PyTorch's zip or legacy format, or
            ``.safetensors``); read without unpickling anything but tensors.
        model_name: e.g. ``"srpose_resnet50"``; the checkpoint must be of that network.
        schema: the keypoints of the checkpoint's head (K must match its last layer).
        input_size: (height, width) of the kpose model; the weights do not depend on it.
        backbone_only: load the backbone alone (an ImageNet checkpoint); the head keeps its
            initialization and the checkpoint's other tensors are reported as left over.
        channel_order: the order the checkpoint's network reads (see
            :func:`checkpoint_layout`); the kpose model takes RGB either way.
        options: head options, as :func:`kpose.models.create_model` takes them.

    Returns:
        The model (its input normalization set to the checkpoint's) and the import report.

    Raises:
        ConfigError: unsupported model, a checkpoint of another architecture, a missing
            tensor, a wrong shape, or tensors no kpose layer takes (without
            ``backbone_only``), naming the tensor.
    """
    source = Path(path).name
    head_name, backbone_name = _supported(model_name, backbone_only)
    state_dict = {
        key: value
        for key, value in read_state_dict(path).items()
        if not key.startswith(NOT_NETWORK_PREFIXES)
    }
    layout = checkpoint_layout(state_dict, source, channel_order)
    if layout.head_prefix is None and not backbone_only:
        raise ConfigError(
            f"{source}: the checkpoint has no head tensors (none under {' or '.join(HEAD_PREFIXES)}); "
            "for a backbone checkpoint use --backbone-only"
        )
    normalization = InputNormalization(TORCH.mean, TORCH.std, bgr=layout.channel_order == "bgr")
    model = create_model(model_name, schema, input_size, normalization=normalization, **options)
    backbone = model.get_layer(BACKBONE_LAYER_NAME)
    sections: list[tuple[keras.layers.Layer, NameMap]] = [
        (backbone, NameMap(BACKBONE_RULES[backbone_name], layout.backbone_prefix))
    ]
    if not backbone_only:
        head = NameMap(HEAD_RULES[head_name], layout.head_prefix or "")
        sections += [(layer, head) for layer in model.layers if layer is not backbone]
    report = import_state_dict(sections, state_dict, source=source)
    if report.left_over and not backbone_only:
        shown = ", ".join(report.left_over[:5])
        raise ConfigError(
            f"{source}: {len(report.left_over)} checkpoint tensor(s) fit no layer of {model_name} "
            f"({shown}{', ...' if len(report.left_over) > 5 else ''}): is it a checkpoint of another "
            "model or head option?"
        )
    return model, report

