"""What every backbone declares, and the builder that turns a keras.applications model (with
its ImageNet weights or a local weights file) into a feature pyramid."""

from __future__ import annotations

import os
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import keras

from kpose.errors import ConfigError
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

    @property
    def keras_application(self) -> KerasApplication | None:
        """The keras.applications model it is cut from (which has ImageNet weights), or None
        for kpose's own backbones."""
        return self.builder if isinstance(self.builder, KerasApplication) else None

    def build(
        self, input_size: tuple[int, int], levels: Sequence[str] = LEVELS, weights: Any = None
    ) -> keras.Model:
        """The backbone sub-model named ``"backbone"``: (B, H, W, 3) -> {level: (B, H/s, W/s, C)}.

        ``weights``: None (random init), ``"imagenet"`` or a weights file of the
        keras.applications model (:meth:`KerasApplication.application`).
        """
        return self.builder(input_size, levels, weights)


# The weight files keras.applications' ``weights=`` argument loads (it calls
# ``Model.load_weights``): Keras 3 ``save_weights`` files, ``.keras`` model files, and legacy
# HDF5 files such as the Keras-hosted ``resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5``.
WEIGHTS_SUFFIXES = (".weights.h5", ".keras", ".h5", ".hdf5")
IMAGENET = "imagenet"  # the weights= value that names keras.applications' weights, not a file


@dataclass(frozen=True, eq=False)
class KerasApplication:
    """A :data:`BackboneBuilder` that cuts a keras.applications model into a feature pyramid.

    Attributes:
        backbone: the kpose backbone name, for error messages.
        constructor: e.g. ``keras.applications.ResNet50``; built without its classifier.
        layer_names: level -> name of the layer whose output is that level, or None for the
            application's own output.
        options: further constructor arguments, e.g. ``include_preprocessing=False``.
        reconfigure: optional edit of each layer's config (it must keep every weight's shape);
            the application is then rebuilt from the edited configs and its weights copied.
        call: optional ``call(layer, *args, **kwargs) -> outputs`` that calls each layer of
            the rebuilt application (to put a layer in front of it); with ``reconfigure``.
    """

    backbone: str
    constructor: Callable[..., keras.Model]
    layer_names: Mapping[str, str | None]
    options: Mapping[str, Any] = field(default_factory=dict)
    reconfigure: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    call: Callable[..., Any] | None = None

    def application(self, input_size: tuple[int, int], weights: Any = None) -> keras.Model:
        """The keras.applications model without its classifier, as Keras builds it (before
        ``reconfigure``): (B, H, W, 3) -> (B, H/32, W/32, C).

        ``weights``: None (random init), ``"imagenet"`` (downloaded by keras.applications) or
        the path of a weights file of this application (:data:`WEIGHTS_SUFFIXES`), with or
        without its classifier; ConfigError naming the file and the backbone if it is missing
        or holds another architecture.
        """
        path = self._weights_path(weights)
        app = self.constructor(
            include_top=False,
            weights=IMAGENET if weights == IMAGENET else None,
            input_shape=(*input_size, 3),
            **self.options,
        )
        if path is not None:
            self._load(app, path)
        return app

    def __call__(
        self, input_size: tuple[int, int], levels: Sequence[str], weights: Any
    ) -> keras.Model:
        """The pyramid: keras.Model named ``"backbone"``,
        (B, H, W, 3) -> {level: (B, H/s, W/s, C)} for ``levels``.

        The application's BatchNorm momentum is set to 0.9 (PyTorch's 0.1), like kpose's own
        layers; its epsilon stays as its ImageNet weights were trained.
        """
        app = self.application(input_size, weights)
        if self.reconfigure is not None:
            reconfigure = self.reconfigure
            edited = keras.models.clone_model(
                app,
                clone_function=lambda layer: layer.__class__.from_config(
                    reconfigure(layer.get_config())
                ),
                call_function=self.call,
            )
            edited.set_weights(app.get_weights())
            app = edited
        for layer in app.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = BN_MOMENTUM
        outputs = {
            level: (
                app.output
                if self.layer_names[level] is None
                else app.get_layer(self.layer_names[level]).output
            )
            for level in levels
        }
        return keras.Model(app.input, outputs, name=BACKBONE_LAYER_NAME)

    @property
    def source(self) -> str:
        """The constructor as users call it, e.g. ``"keras.applications.ResNet50"``."""
        return f"keras.applications.{self.constructor.__name__}"

    def _weights_path(self, weights: Any) -> Path | None:
        """The weights file to load, None for random init or ImageNet; ConfigError naming the
        file and the backbone when it cannot be one."""
        if weights is None or weights == IMAGENET:
            return None
        if not isinstance(weights, (str, os.PathLike)):
            raise ConfigError(
                f"backbone {self.backbone}: weights must be None, {IMAGENET!r} or the path of "
                f"a weights file, got {weights!r}"
            )
        path = Path(weights)
        if path.is_dir():
            raise ConfigError(f"backbone {self.backbone}: weights {path} is a folder, not a file")
        if not path.is_file():
            raise ConfigError(f"backbone {self.backbone}: weights file {path} does not exist")
        if not path.name.endswith(WEIGHTS_SUFFIXES):
            raise ConfigError(
                f"backbone {self.backbone}: weights file {path} is not a Keras weights file "
                f"(accepted: {', '.join(WEIGHTS_SUFFIXES)}) of {self.source}"
            )
        return path

    def _load(self, app: keras.Model, path: Path) -> None:
        """``app.load_weights(path)``, as keras.applications does; Keras' error (another
        architecture, an unreadable file) becomes a ConfigError naming file and backbone, and
        the warnings Keras gives on the way to it (one per layer) are dropped."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                app.load_weights(str(path))
            except (ValueError, OSError, KeyError, zipfile.BadZipFile) as exc:
                lines = str(exc).strip().splitlines()
                reason = lines[0].rstrip(":") if lines else type(exc).__name__
                raise ConfigError(
                    f"backbone {self.backbone}: weights file {path} does not hold the weights "
                    f"of {self.source} ({reason}); expected that model's save_weights "
                    f"(.weights.h5) or save (.keras) file, with or without its classifier, or "
                    f"Keras' hosted no-top .h5 file; a kpose model (.keras) goes in "
                    f"model.init_from instead"
                ) from exc
        for warning in caught:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
