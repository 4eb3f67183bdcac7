"""Backbones: feature pyramids F2..F5 (strides 4, 8, 16, 32) with known channel counts."""

from __future__ import annotations

from kpose.errors import ConfigError
from kpose.models.backbones.base import (
    BACKBONE_LAYER_NAME,
    LEVELS,
    STRIDES,
    BackboneSpec,
    InputNormalization,
    KerasApplication,
)
from kpose.models.backbones.hrformer import HRFORMERS
from kpose.models.backbones.hrnet import HRNETS
from kpose.models.backbones.mobile import MOBILE_BACKBONES
from kpose.models.backbones.resnet import RESNETS
from kpose.models.backbones.transpose import TRANSPOSE_BACKBONES

BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (*RESNETS, *HRNETS, *MOBILE_BACKBONES, *TRANSPOSE_BACKBONES, *HRFORMERS)
}


def backbone_names() -> list[str]:
    """Registered backbone names, in registry order."""
    return list(BACKBONES)


def get_backbone(name: str) -> BackboneSpec:
    """The spec of backbone ``name``; ConfigError listing the valid names if unknown."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise ConfigError(
            f"unknown backbone {name!r}; valid backbones: {', '.join(BACKBONES)}"
        ) from None


__all__ = [
    "BACKBONES",
    "BACKBONE_LAYER_NAME",
    "LEVELS",
    "STRIDES",
    "BackboneSpec",
    "InputNormalization",
    "KerasApplication",
    "backbone_names",
    "get_backbone",
]
