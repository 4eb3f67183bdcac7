"""What every backbone declares, and the helper that turns a keras.applications model into a
feature pyramid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import keras

from kpose.models.blocks import BN_MOMENTUM

# Pyramid levels and their strides (pixels of input per feature pixel).
LEVELS = ("F2", "F3", "F4", "F5")
STRIDES = {"F2": 4, "F3": 8, "F4": 16, "F5": 32}

# Name of the backbone sub-model inside every kpose model.
BACKBONE_LAYER_NAME = "backbone"


@dataclass(frozen=True)
class InputNormalization:
    """How images must be normalized before the model, in 0..255 pixel units.

    ``normalized = (pixel - mean) / std`` per channel, with channels in RGB order, or in BGR
    order (mean and std then listed in BGR order too) when ``bgr`` is True.
    """

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    bgr: bool = False


# The conventions of keras.applications' ``preprocess_input`` modes.
CAFFE = InputNormalization((103.939, 116.779, 123.68), (1.0, 1.0, 1.0), bgr=True)
TF = InputNormalization((127.5, 127.5, 127.5), (127.5, 127.5, 127.5))
TORCH = InputNormalization((123.675, 116.28, 103.53), (58.395, 57.12, 57.375))

# Builds the backbone sub-model: (input_size (H, W), levels, weights) -> keras.Model.
BackboneBuilder = Callable[[tuple[int, int], Sequence[str], Any], keras.Model]


@dataclass(frozen=True)
class BackboneSpec:
    """A backbone and the facts heads need about it.

    Attributes:
        name: registry name, e.g. ``"resnet50"``.
        builder: builds the sub-model; its outputs are a dict ``{level: (B, H/s, W/s, C)}``
            holding the requested levels only.
        channels: channels of F2, F3, F4, F5.
        bottleneck: ResNet bottleneck pyramid (channels 256, 512, 1024, 2048), which
            MRFeaNet's deconvolution widths are defined on.
        normalization: the input normalization its ImageNet weights expect (and the one to
            use from scratch, for consistency).
        simple_feature: where single-output heads attach by default: ``"deconv"`` (the
            SimpleBaseline deconvolutions on F5) or a level (HRNet: ``"F2"``).
        sr_feature, sr_scale: default input and output scale k of a stand-alone SR head.
    """

    name: str
    builder: BackboneBuilder
    channels: tuple[int, int, int, int]
    bottleneck: bool
    normalization: InputNormalization
    simple_feature: str = "deconv"
    sr_feature: str = "deconv"
    sr_scale: float = 1.0

    def channels_of(self, level: str) -> int:
        return self.channels[LEVELS.index(level)]

    def build(
        self, input_size: tuple[int, int], levels: Sequence[str] = LEVELS, weights: Any = None
    ) -> keras.Model:
        """The backbone sub-model named ``"backbone"`` with outputs ``{level: tensor}``."""
        return self.builder(input_size, levels, weights)


def application_pyramid(
    constructor: Callable[..., keras.Model],
    layer_names: Mapping[str, str | None],
    input_size: tuple[int, int],
    levels: Sequence[str],
    weights: Any,
    reconfigure: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    **kwargs: Any,
) -> keras.Model:
    """A keras.applications model cut into a feature pyramid.

    Args:
        constructor: e.g. ``keras.applications.ResNet50``; built without its classifier.
        layer_names: level -> name of the layer whose output is that level, or None for the
            application's own output.
        input_size: (H, W).
        levels: the levels to output.
        weights: None (random init) or what keras.applications accepts (``"imagenet"``, a path).
        reconfigure: optional edit of each layer's config (it must keep every weight's shape);
            the application is then rebuilt from the edited configs and its weights copied.
        kwargs: passed to the constructor.

    Returns:
        keras.Model named ``"backbone"``: (B, H, W, 3) -> {level: (B, H/s, W/s, C)}.

    The application's BatchNorm momentum is set to 0.9 (PyTorch's 0.1), like kpose's own
    layers; its epsilon stays as its ImageNet weights were trained.
    """
    app = constructor(
        include_top=False, weights=weights, input_shape=(*input_size, 3), **kwargs
    )
    if reconfigure is not None:
        edited = keras.models.clone_model(
            app,
            clone_function=lambda layer: layer.__class__.from_config(
                reconfigure(layer.get_config())
            ),
        )
        edited.set_weights(app.get_weights())
        app = edited
    for layer in app.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = BN_MOMENTUM
    outputs = {
        level: (
            app.output
            if layer_names[level] is None
            else app.get_layer(layer_names[level]).output
        )
        for level in levels
    }
    return keras.Model(app.input, outputs, name=BACKBONE_LAYER_NAME)
