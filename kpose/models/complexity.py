"""Parameter counts and multiply-accumulates, counted the way the papers count them.

The papers report mmcv's ``get_model_complexity_info`` figures ("GFLOPs" that are in fact
multiply-accumulates, MACs), measured on the inference graph with batch 1. The same rules,
applied to Keras layers:

- convolutions (grouped, depthwise and kpose's :class:`KeypointConv2D` included): output
  elements x (kernel area x input channels per group), plus one per output element for a bias;
- transposed convolutions: input pixels x kernel area x C_in x C_out, plus the bias;
- dense: input elements x units, plus the bias;
- BatchNorm (kept at inference) and LayerNorm: 2 per element (scale and shift);
- kpose's :class:`MultiHeadSelfAttention` over N tokens of d channels: 4 N d^2 for the
  projections, 2 N^2 d for the two attention products, and heads x N^2 for the softmax;
  :class:`WindowAttention` the same in each window of its zero-padded map (N = 49 tokens);
- activation layers: 1 per output element; pooling: 1 per input element; upsampling:
  1 per output element;
- element-wise sums, concatenation, reshapes, padding, pixel shuffle: 0.

Parameters are the learnable weights (trainable or frozen), without BatchNorm's moving
statistics, which PyTorch keeps as buffers rather than parameters.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from math import prod
from typing import Any, Callable, Iterator, Sequence

import keras

from kpose.keypoints import KeypointSchema
from kpose.models.backbones import BACKBONE_LAYER_NAME
from kpose.models.factory import (
    DEFAULT_INPUT_SIZE,
    assemble_model,
    backbone_levels,
    check_input_size,
    inference_model,
    list_models,
    parse_model_name,
)
from kpose.models.layers import GELU, KeypointConv2D, MultiHeadSelfAttention, WindowAttention


def leaf_layers(layer: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
    """Every non-model layer inside ``layer``, descending into nested models."""
    if isinstance(layer, keras.Model):
        for inner in layer.layers:
            yield from leaf_layers(inner)
    else:
        yield layer


def _layer_params(layer: keras.layers.Layer) -> int:
    if isinstance(layer, keras.layers.BatchNormalization):
        weights = [w for w in (layer.gamma, layer.beta) if w is not None]
    else:
        weights = layer.weights
    return sum(prod(w.shape) for w in weights)


def count_params(layer: keras.layers.Layer) -> int:
    """Learnable parameters of a layer or model (BatchNorm moving statistics excluded)."""
    return sum(_layer_params(leaf) for leaf in leaf_layers(layer))


def _elements(shape: tuple[int | None, ...]) -> int:
    """Elements per sample of a (None, ...) shape."""
    return prod(shape[1:])


def _bias(layer: keras.layers.Layer, output_shape: tuple[int | None, ...]) -> int:
    return _elements(output_shape) if getattr(layer, "use_bias", False) else 0


def _conv(layer: Any, input_shape: tuple, output_shape: tuple) -> int:
    per_output = prod(layer.kernel_size) * input_shape[-1] // layer.groups
    return _elements(output_shape) * per_output + _bias(layer, output_shape)


def _depthwise(layer: Any, input_shape: tuple, output_shape: tuple) -> int:
    return _elements(output_shape) * prod(layer.kernel_size) + _bias(layer, output_shape)


def _keypoint_conv(layer: KeypointConv2D, input_shape: tuple, output_shape: tuple) -> int:
    per_output = layer.kernel_size**2 * layer.embed
    return _elements(output_shape) * per_output + _bias(layer, output_shape)


def _transpose_conv(layer: Any, input_shape: tuple, output_shape: tuple) -> int:
    per_input_pixel = prod(layer.kernel_size) * input_shape[-1] * layer.filters
    return _elements(input_shape[:-1]) * per_input_pixel + _bias(layer, output_shape)


def _dense(layer: Any, input_shape: tuple, output_shape: tuple) -> int:
    return _elements(input_shape) * layer.units + (layer.units if layer.use_bias else 0)


def _batch_norm(layer: Any, input_shape: tuple, output_shape: tuple) -> int:
    return _elements(input_shape) * (int(layer.scale) + int(layer.center))


def _self_attention(layer: MultiHeadSelfAttention, input_shape: tuple, output_shape: tuple) -> int:
    """Four d x d projections per token, q k^T and (weights) v (N x N x d each), and one per
    attention weight for the softmax; the bias additions are not counted."""
    _, tokens, channels = output_shape
    projections = 4 * tokens * channels * channels
    return projections + 2 * tokens * tokens * channels + layer.num_heads * tokens * tokens


def _window_attention(layer: WindowAttention, input_shape: tuple, output_shape: tuple) -> int:
    """:func:`_self_attention` in every window of the zero-padded map (N = window^2 tokens)."""
    padded_h, padded_w = layer.padded_size(*input_shape[1:3])
    windows = padded_h * padded_w // layer.window_size**2
    tokens, channels = layer.window_size**2, input_shape[-1]
    per_window = 4 * tokens * channels * channels + 2 * tokens * tokens * channels
    return windows * (per_window + layer.num_heads * tokens * tokens)


def _per_output(layer: Any, input_shape: tuple, output_shape: tuple) -> int:
    return _elements(output_shape)


def _per_input(layer: Any, input_shape: tuple, output_shape: tuple) -> int:
    return _elements(input_shape)


# Most specific classes first: the first isinstance match counts.
_RULES: tuple[tuple[type | tuple[type, ...], Callable[..., int]], ...] = (
    (KeypointConv2D, _keypoint_conv),
    (keras.layers.DepthwiseConv2D, _depthwise),
    ((keras.layers.Conv2DTranspose, keras.layers.Conv1DTranspose), _transpose_conv),
    ((keras.layers.Conv2D, keras.layers.Conv1D), _conv),
    (keras.layers.Dense, _dense),
    (MultiHeadSelfAttention, _self_attention),
    (WindowAttention, _window_attention),
    ((keras.layers.BatchNormalization, keras.layers.LayerNormalization), _batch_norm),
    (
        (
            keras.layers.ReLU,
            keras.layers.Activation,
            keras.layers.LeakyReLU,
            keras.layers.PReLU,
            keras.layers.ELU,
            keras.layers.Softmax,
            GELU,
        ),
        _per_output,
    ),
    (
        (
            keras.layers.MaxPooling2D,
            keras.layers.AveragePooling2D,
            keras.layers.GlobalAveragePooling2D,
            keras.layers.GlobalMaxPooling2D,
        ),
        _per_input,
    ),
    (keras.layers.UpSampling2D, _per_output),
)


def _layer_macs(layer: keras.layers.Layer) -> int:
    for classes, rule in _RULES:
        if isinstance(layer, classes):
            first_input = keras.tree.flatten(layer.input)[0]
            return rule(layer, tuple(first_input.shape), tuple(layer.output.shape))
    return 0


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one forward pass of one sample (every output of ``model``)."""
    return sum(_layer_macs(leaf) for leaf in leaf_layers(model))


@dataclass(frozen=True)
class ModelProfile:
    """Size and cost of a model's inference graph.

    Attributes:
        name: model name.
        input_size, heatmap_size: (height, width) of the input and of ``heatmaps``.
        backbone_params, other_params: parameters of the ``backbone`` sub-model / the rest.
        gmacs: 10^9 multiply-accumulates per sample.
    """

    name: str
    input_size: tuple[int, int]
    heatmap_size: tuple[int, int]
    backbone_params: int
    other_params: int
    gmacs: float

    @property
    def total_params(self) -> int:
        return self.backbone_params + self.other_params

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict: name, input_size, heatmap_size, backbone_params, other_params, gmacs."""
        data = asdict(self)
        data["input_size"] = list(self.input_size)
        data["heatmap_size"] = list(self.heatmap_size)
        return data


def profile_model(model: keras.Model) -> ModelProfile:
    """Profile the inference graph of a kpose model (its training graph may have more heads)."""
    deploy = inference_model(model)
    total = count_params(deploy)
    backbone = count_params(deploy.get_layer(BACKBONE_LAYER_NAME))
    _, height, width, _ = deploy.input.shape
    _, out_height, out_width, _ = deploy.output["heatmaps"].shape
    return ModelProfile(
        name=model.name,
        input_size=(height, width),
        heatmap_size=(out_height, out_width),
        backbone_params=backbone,
        other_params=total - backbone,
        gmacs=count_macs(deploy) / 1e9,
    )


def profile_models(
    names: Sequence[str] | None = None,
    schema: str | KeypointSchema = "coco",
    input_size: Sequence[int] = DEFAULT_INPUT_SIZE,
) -> list[ModelProfile]:
    """Profile registered models (default: all of :func:`list_models`) at one input size.

    Each backbone is built once per set of levels its heads read, and shared by the heads
    assembled on it; the figures are those of :func:`create_model` models.
    """
    names = list_models() if names is None else list(names)
    input_size = check_input_size(input_size)
    profiles = {}
    current, built = None, {}  # built: levels -> sub-model, for the current backbone only
    for name in sorted(names, key=lambda n: parse_model_name(n)[1].name):
        backbone = parse_model_name(name)[1]
        if backbone.name != current:
            current, built = backbone.name, {}
        levels = backbone_levels(name)
        if levels not in built:
            built[levels] = backbone.build(input_size, levels)
        profiles[name] = profile_model(assemble_model(name, built[levels], schema))
    return [profiles[name] for name in names]
