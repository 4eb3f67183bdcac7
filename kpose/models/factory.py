"""Model factory: ``create_model("<head>_<backbone>")`` and the deploy graph.

Every model is a Keras functional model with input ``image`` (B, H, W, 3), RGB pixel values
0..255 (a uint8 crop cast to float), channels last; its first layer normalizes them as the
backbone expects (:attr:`BackboneSpec.normalization`). Its outputs are a dict of named
float32 outputs. Single-output models: ``{"heatmaps"}``. SRPose's training graph:
``{"lr_heatmaps", "sr1", "sr2", "sr3", "heatmaps"}``. The backbone is a sub-model named
``"backbone"``. Each output's stride follows from its spatial size versus the input size.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras

from kpose.errors import ConfigError
from kpose.keypoints import KeypointSchema, get_schema
from kpose.models.backbones import (
    BACKBONES,
    BackboneSpec,
    InputNormalization,
    get_backbone,
)
from kpose.models.heads import HEADS, HeadSpec
from kpose.models.layers import ImageNormalization

DEFAULT_INPUT_SIZE = (256, 192)
INPUT_MULTIPLE = 32


def list_models(task: str | None = None) -> list[str]:
    """Registered model names, ``<head>_<backbone>``, for the head/backbone pairs that fit;
    only those of ``task`` (``"topdown"`` or ``"bottomup"``) when given."""
    return [
        f"{head.name}_{backbone.name}"
        for head in HEADS.values()
        for backbone in BACKBONES.values()
        if head.unsupported(backbone) is None and task in (None, head.task)
    ]


def parse_model_name(name: str) -> tuple[HeadSpec, BackboneSpec]:
    """The head and backbone of ``"<head>_<backbone>"`` (the longest head name that prefixes
    it: ``srhead_ae_resnet50`` is head ``srhead_ae``); ConfigError listing valid names."""
    name = str(name)
    prefixes = [head for head in HEADS if name.startswith(f"{head}_")]
    if not prefixes:
        raise ConfigError(f"unknown model {name!r}; valid models: {', '.join(list_models())}")
    head = HEADS[max(prefixes, key=len)]
    backbone_name = name[len(head.name) + 1 :]
    try:
        backbone = get_backbone(backbone_name)
    except ConfigError as exc:
        raise ConfigError(f"model {name!r}: {exc}") from None
    reason = head.unsupported(backbone)
    if reason:
        raise ConfigError(f"model {name!r} is not available: {reason}")
    return head, backbone


def check_input_size(input_size: Sequence[int]) -> tuple[int, int]:
    """(height, width) as ints, both positive multiples of 32; ConfigError otherwise."""
    try:
        height, width = (int(v) for v in input_size)
    except (TypeError, ValueError):
        raise ConfigError(f"input_size must be (height, width), got {input_size!r}") from None
    if height <= 0 or width <= 0 or height % INPUT_MULTIPLE or width % INPUT_MULTIPLE:
        raise ConfigError(
            f"input_size {height}x{width} (height x width) is not divisible by {INPUT_MULTIPLE}: "
            f"the backbones downsample 32 times (e.g. 256x192, 384x288, 256x256, 512x512)"
        )
    return height, width


def _schema(schema: str | KeypointSchema) -> KeypointSchema:
    return schema if isinstance(schema, KeypointSchema) else get_schema(schema)


def _check_options(head: HeadSpec, options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - set(head.options))
    if unknown:
        valid = ", ".join(head.options) or "none"
        raise ConfigError(
            f"{head.name} does not take option(s) {', '.join(unknown)}; valid options: {valid}"
        )


def create_model(
    name: str,
    schema: str | KeypointSchema = "coco",
    input_size: Sequence[int] = DEFAULT_INPUT_SIZE,
    weights: Any = None,
    normalization: InputNormalization | None = None,
    **options: Any,
) -> keras.Model:
    """Build a pose model.

    Args:
        name: ``"<head>_<backbone>"``, e.g. ``"srpose_resnet50"``; see :func:`list_models`.
        schema: keypoint schema (name, file path or :class:`KeypointSchema`); sets K.
        input_size: (height, width), multiples of 32.
        weights: backbone weights: None (random init) or ``"imagenet"`` / a file, passed to
            keras.applications (HRNet has none).
        normalization: the input normalization inside the model (default: the backbone's,
            the one its ImageNet weights expect); an imported checkpoint brings its own.
        options: head options, e.g. ``scale=0.5`` for SRPose and the SR head; an unknown
            option raises ConfigError listing the valid ones.

    Returns:
        keras.Model named ``name``: ``image`` (B, H, W, 3) -> {output name: (B, h, w, K)}.
    """
    levels = backbone_levels(name, **options)
    backbone = parse_model_name(name)[1]
    backbone_model = backbone.build(check_input_size(input_size), levels, weights)
    return assemble_model(name, backbone_model, schema, normalization, **options)


def backbone_levels(name: str, **options: Any) -> tuple[str, ...]:
    """The pyramid levels model ``name`` reads from its backbone, given its head options."""
    head, backbone = parse_model_name(name)
    _check_options(head, options)
    return head.levels(backbone, **options)


def assemble_model(
    name: str,
    backbone_model: keras.Model,
    schema: str | KeypointSchema = "coco",
    normalization: InputNormalization | None = None,
    **options: Any,
) -> keras.Model:
    """Build model ``name``'s head on an already built backbone sub-model.

    The backbone model is used, not copied: several models assembled on it share its weights
    (e.g. to profile every head of one backbone without rebuilding it). It must output at
    least :func:`backbone_levels` of the model; its input size is the model's.
    ``normalization`` defaults to the backbone's.

    Returns:
        keras.Model named ``name``: ``image`` (B, H, W, 3) -> {output name: (B, h, w, K)}.
    """
    head, backbone = parse_model_name(name)
    _check_options(head, options)
    _, height, width, _ = backbone_model.input.shape
    image = keras.Input((height, width, 3), name="image")
    norm = normalization or backbone.normalization
    normalized = ImageNormalization(norm.mean, norm.std, norm.bgr, name="normalize")(image)
    outputs = head.build(backbone_model(normalized), backbone, _schema(schema).num_keypoints, **options)
    return keras.Model(image, outputs, name=name)


def input_normalization(model: keras.Model) -> InputNormalization:
    """The normalization inside a kpose model: its ``normalize`` layer's settings."""
    layer = model.get_layer("normalize")
    return InputNormalization(layer.mean, layer.std, layer.bgr)


DEPLOY_OUTPUTS = ("heatmaps", "tags")


def inference_model(model: keras.Model) -> keras.Model:
    """The deploy graph: only the ``heatmaps`` output (and a bottom-up model's ``tags``),
    sharing the training model's weights.

    For SRPose this drops M_LR and the three supervision SR heads (and the layers only they
    use); a model with deploy outputs only is returned as is.

    Returns:
        keras.Model: ``image`` -> {"heatmaps": (B, h, w, K)[, "tags": (B, h, w, K)]}.
    """
    outputs = model.output
    if not isinstance(outputs, dict) or "heatmaps" not in outputs:
        raise ConfigError(f"model {model.name!r} has no output named 'heatmaps'")
    kept = {name: outputs[name] for name in DEPLOY_OUTPUTS if name in outputs}
    if len(kept) == len(outputs):
        return model
    return keras.Model(model.input, kept, name=model.name)


def heatmap_output(model: keras.Model) -> keras.Model:
    """The sub-graph of ``model`` that computes its final ``heatmaps`` output only, as a
    single-output model ``image -> (B, h, w, K)`` (a model with one plain output is returned
    as is)."""
    outputs = model.output
    if isinstance(outputs, dict) and len(outputs) > 1:
        return keras.Model(model.input, outputs["heatmaps"], name=f"{model.name}_heatmaps")
    if isinstance(outputs, dict):
        return keras.Model(model.input, outputs["heatmaps"], name=model.name)
    return model
