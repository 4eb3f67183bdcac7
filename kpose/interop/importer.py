"""Copy a PyTorch state dict into a kpose model, one Keras layer at a time.

The caller supplies the naming (:class:`NameMap`: kpose layer name -> PyTorch module name);
this module knows the tensor layouts (:mod:`kpose.interop.keras_layouts`), checks every shape
before anything is assigned, and reports what it did: each Keras weight copied as is, reshaped
from PyTorch's layout, set to zero (a Keras conv bias where the PyTorch conv has none) or
folded (a PyTorch conv bias before a BatchNorm, where the kpose conv has none, goes into the
BatchNorm's moving mean), and the checkpoint tensors no layer took.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import keras
import numpy as np

from kpose.errors import ConfigError
from kpose.interop.keras_layouts import (
    conv_kernel,
    depthwise_kernel,
    keypoint_conv_kernel,
    transposed_conv_kernel,
)
from kpose.models.complexity import leaf_layers
from kpose.models.layers import KeypointConv2D

# BatchNorm's update counter: PyTorch bookkeeping with no Keras counterpart.
IGNORED_SUFFIXES = (".num_batches_tracked",)

Rule = tuple[str, Callable[[re.Match[str]], str]]


@dataclass(frozen=True)
class NameMap:
    """Keras layer name -> PyTorch module name, by the first rule whose pattern matches the
    whole layer name; ``prefix`` (e.g. ``"backbone."``) is put before every module name."""

    rules: Sequence[Rule]
    prefix: str = ""

    def module_of(self, layer_name: str) -> str | None:
        for pattern, module in self.rules:
            match = re.fullmatch(pattern, layer_name)
            if match:
                return self.prefix + module(match)
        return None


@dataclass
class ImportReport:
    """What :func:`import_state_dict` did: one row per Keras weight, and the checkpoint
    tensors that no layer took."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)  # (keras weight, torch key, how)
    left_over: list[str] = field(default_factory=list)

    def count(self, how: str) -> int:
        return sum(row[2] == how for row in self.rows)

    def summary(self) -> str:
        """A table of counts: copied, reshaped, folded, zero, left over."""
        lines = ["| tensors | count |", "|---|---|"]
        for how in ("copied", "reshaped", "folded", "zero"):
            lines.append(f"| {how} | {self.count(how)} |")
        lines.append(f"| left over in the checkpoint | {len(self.left_over)} |")
        return "\n".join(lines)

    def details(self) -> str:
        """Every row (Keras weight <- checkpoint tensor: how) and every left-over tensor."""
        lines = [f"{weight} <- {key}: {how}" for weight, key, how in self.rows]
        lines += [f"left over: {key}" for key in self.left_over]
        return "\n".join(lines)


def _module_tensors(state_dict: Mapping[str, np.ndarray], module: str) -> dict[str, np.ndarray]:
    """The tensors of one PyTorch module: ``{"weight": ..., "bias": ...}``."""
    start = module + "."
    return {
        key[len(start) :]: value
        for key, value in state_dict.items()
        if key.startswith(start) and "." not in key[len(start) :]
    }


def _kernel(layer: keras.layers.Layer, weight: np.ndarray) -> np.ndarray:
    """A PyTorch kernel in the Keras layout of ``layer``'s kernel."""
    if isinstance(layer, KeypointConv2D):
        return keypoint_conv_kernel(weight, layer.num_keypoints)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return depthwise_kernel(weight, layer.depth_multiplier)
    if isinstance(layer, keras.layers.Conv2DTranspose):
        return transposed_conv_kernel(weight)
    if isinstance(layer, keras.layers.Dense):
        return weight.T
    if isinstance(layer, keras.layers.Conv2D):
        # A per-pixel nn.Linear (O, I) read as a 1x1 conv.
        return conv_kernel(weight[:, :, None, None] if weight.ndim == 2 else weight)
    raise ConfigError(f"kpose layer {layer.name!r} ({type(layer).__name__}) has no PyTorch counterpart")


def _tensor_names(layer: keras.layers.Layer) -> tuple[str, ...]:
    """The PyTorch tensor behind each of ``layer.weights``, in order."""
    if isinstance(layer, keras.layers.BatchNormalization):
        return ("weight", "bias", "running_mean", "running_var")
    return ("weight", "bias")[: len(layer.weights)]


def _batch_norm_after(layer: keras.layers.Layer, model_layers: Mapping[str, keras.layers.Layer]) -> keras.layers.Layer:
    """The BatchNorm that follows a bias-free conv, by kpose's naming (``<block>_conv`` ->
    ``<block>_bn``, :func:`kpose.models.blocks.conv_bn`)."""
    name = layer.name.removesuffix("_conv") + "_bn"
    bn = model_layers.get(name)
    if not layer.name.endswith("_conv") or not isinstance(bn, keras.layers.BatchNormalization):
        raise ConfigError(f"kpose layer {layer.name!r} has no bias and no BatchNorm to fold the checkpoint's bias into")
    return bn


def _converted(
    layer: keras.layers.Layer,
    variable: keras.Variable,
    state_dict: Mapping[str, np.ndarray],
    key: str,
    source: str,
) -> tuple[np.ndarray, str]:
    """The value of one Keras weight from checkpoint tensor ``key``, and how it was made:
    ``"copied"``, ``"reshaped"`` or ``"zero"`` (a conv bias the checkpoint does not have)."""
    is_kernel = key.endswith(".weight") and not isinstance(layer, keras.layers.BatchNormalization)
    if key not in state_dict:
        if key.endswith(".bias") and not isinstance(layer, keras.layers.BatchNormalization):
            return np.zeros(variable.shape, dtype=np.float32), "zero"
        raise ConfigError(
            f"{source}: the checkpoint has no tensor {key!r} (for kpose layer {layer.name!r}); "
            "is it a checkpoint of this model?"
        )
    original = state_dict[key]
    misfit = ConfigError(
        f"{source}: tensor {key!r} {tuple(original.shape)} does not fit kpose layer "
        f"{layer.name!r} ({variable.path}: {tuple(variable.shape)} in Keras' layout)"
    )
    try:
        value = _kernel(layer, original) if is_kernel else original
    except (ValueError, IndexError):  # a tensor of another rank or size than the layout
        raise misfit from None
    if tuple(value.shape) != tuple(variable.shape):
        raise misfit
    return value, "reshaped" if is_kernel else "copied"


def import_state_dict(
    sections: Sequence[tuple[keras.layers.Layer, NameMap]],
    state_dict: Mapping[str, np.ndarray],
    *,
    source: str = "checkpoint",
) -> ImportReport:
    """Assign the checkpoint's tensors to every weighted layer of each section.

    Every tensor is found and every shape checked first; the weights are assigned only when
    all of them fit, so a failed import leaves the model as it was.

    Args:
        sections: (layer or model, the checkpoint's naming of its layers), e.g. the backbone
            sub-model with the backbone's names under ``backbone.`` and the head's layers with
            the head's names under ``keypoint_head.``; layers without weights are skipped.
        state_dict: PyTorch tensor name -> numpy array, PyTorch's layouts.
        source: the checkpoint's file name, for messages.

    Returns:
        The report; its ``left_over`` lists the checkpoint tensors no layer took (BatchNorm's
        ``num_batches_tracked`` excepted).

    Raises:
        ConfigError: a layer with no rule, a tensor missing from the checkpoint, or a shape
            that does not fit, naming the tensor, the kpose layer and both shapes.
    """
    report = ImportReport()
    naming = {
        leaf.name: (leaf, names)
        for root, names in sections
        for leaf in leaf_layers(root)
        if leaf.weights
    }
    model_layers = {name: layer for name, (layer, _) in naming.items()}
    planned: dict[str, list[np.ndarray]] = {}
    folded: list[tuple[str, str, np.ndarray]] = []  # (BatchNorm layer, bias key, bias)
    for layer, names in naming.values():
        module = names.module_of(layer.name)
        if module is None:
            raise ConfigError(f"{source}: kpose layer {layer.name!r} has no counterpart in the checkpoint's naming")
        values = []
        for variable, tensor_name in zip(layer.weights, _tensor_names(layer)):
            key = f"{module}.{tensor_name}"
            value, how = _converted(layer, variable, state_dict, key, source)
            values.append(value)
            report.rows.append((variable.path, key, how))
        bias_key = f"{module}.bias"
        if bias_key in state_dict and len(layer.weights) == 1:
            folded.append((_batch_norm_after(layer, model_layers).name, bias_key, state_dict[bias_key]))
        planned[layer.name] = values
    for bn_name, bias_key, bias in folded:
        # BN(x + b) with statistics (m, v) is BN(x) with statistics (m - b, v), in training too.
        planned[bn_name][2] = planned[bn_name][2] - bias
        report.rows.append((model_layers[bn_name].moving_mean.path, bias_key, "folded"))
    for name, values in planned.items():
        for variable, value in zip(model_layers[name].weights, values):
            variable.assign(np.asarray(value, dtype=np.float32))
    used = {key for _, key, how in report.rows if how != "zero"}
    report.left_over = sorted(
        key for key in state_dict if key not in used and not key.endswith(IGNORED_SUFFIXES)
    )
    return report
