"""Heads: what turns backbone features into heatmaps, and which backbones each one accepts."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import keras

from kpose.models.backbones import LEVELS, BackboneSpec
from kpose.models.heads.bottomup import ae_levels, build_ae, build_srhead_ae, srhead_ae_levels
from kpose.models.heads.mr import build_mrfeanet, build_mrheatnet
from kpose.models.heads.simple import build_simple, simple_levels
from kpose.models.heads.sr import build_srhead, sr_levels, sr_head
from kpose.models.heads.srpose import build_srpose

HeadBuilder = Callable[..., dict[str, keras.KerasTensor]]


def _all_levels(backbone: BackboneSpec, **_: object) -> tuple[str, ...]:
    return LEVELS


def _any_backbone(backbone: BackboneSpec) -> str | None:
    return None


def _needs_deconvolutions(backbone: BackboneSpec) -> str | None:
    if backbone.simple_feature == "deconv":
        return None
    return (
        f"MRHeatNet branches off the SimpleBaseline deconvolutions, and {backbone.name} has none "
        f"(its simple head is a 1x1 conv on its stride-4 branch)"
    )


def _needs_bottleneck(backbone: BackboneSpec) -> str | None:
    if backbone.bottleneck:
        return None
    return (
        f"MRFeaNet needs a backbone with ResNet bottleneck channels (256, 512, 1024, 2048); "
        f"{backbone.name} has {backbone.channels}"
    )


@dataclass(frozen=True)
class HeadSpec:
    """A head type.

    Attributes:
        name: the model-name prefix, e.g. ``"srpose"``.
        build: ``build(features, backbone, num_keypoints, **options) -> {output name: tensor}``.
        levels: ``levels(backbone, **options)``: the pyramid levels ``build`` reads.
        unsupported: ``unsupported(backbone)``: why the head cannot sit on it, or None.
        task: ``"topdown"`` (heatmaps of one person's crop) or ``"bottomup"`` (heatmaps and
            associative-embedding tags of a whole image).
    """

    name: str
    build: HeadBuilder
    levels: Callable[..., tuple[str, ...]]
    unsupported: Callable[[BackboneSpec], str | None] = _any_backbone
    task: str = "topdown"

    @property
    def options(self) -> dict[str, Any]:
        """The options ``build`` accepts, with their defaults."""
        function, bound = self.build, {}
        if isinstance(function, partial):
            function, bound = function.func, function.keywords
        return {
            name: param.default
            for name, param in inspect.signature(function).parameters.items()
            if param.kind is param.KEYWORD_ONLY and name not in bound
        }


HEADS: dict[str, HeadSpec] = {
    spec.name: spec
    for spec in (
        HeadSpec("simplebaseline", build_simple, simple_levels),
        HeadSpec("srhead", build_srhead, sr_levels),
        HeadSpec("srpose", build_srpose, _all_levels),
        HeadSpec(
            "mrheatnet1", partial(build_mrheatnet, variant=1), simple_levels, _needs_deconvolutions
        ),
        HeadSpec(
            "mrheatnet2", partial(build_mrheatnet, variant=2), simple_levels, _needs_deconvolutions
        ),
        HeadSpec("mrfeanet1", partial(build_mrfeanet, variant=1), _all_levels, _needs_bottleneck),
        HeadSpec("mrfeanet2", partial(build_mrfeanet, variant=2), _all_levels, _needs_bottleneck),
        HeadSpec("ae", build_ae, ae_levels, task="bottomup"),
        HeadSpec("srhead_ae", build_srhead_ae, srhead_ae_levels, task="bottomup"),
    )
}

__all__ = ["HEADS", "HeadSpec", "sr_head"]
