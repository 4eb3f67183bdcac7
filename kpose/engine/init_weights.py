"""``model.init_from``: start a model from the layers it shares with another kpose model.

Layers are matched by name, through nested sub-models (``backbone/expanded_conv_project``),
and copied when every weight has the same shape. Typical uses: a bottom-up model started from a
top-down model's backbone (same backbone, the heads differ in shape and are left as built), or a
custom keypoint set fine-tuned from a COCO model (everything but the K-channel outputs copies).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import keras

from kpose.errors import ConfigError
from kpose.models import load_pose_model, parse_model_name


@dataclass
class WeightTransfer:
    """What :func:`init_from_model` copied: layer paths, and the parameters they hold."""

    copied: list[str] = field(default_factory=list)
    shape_mismatch: list[str] = field(default_factory=list)  # same name, other shapes: left as built
    not_in_source: list[str] = field(default_factory=list)
    parameters: int = 0

    def summary(self, source: Path) -> str:
        text = f"model.init_from {source}: copied {len(self.copied)} layers ({self.parameters:,} values)"
        if self.shape_mismatch:
            shown = ", ".join(self.shape_mismatch[:4]) + (", ..." if len(self.shape_mismatch) > 4 else "")
            text += f"; {len(self.shape_mismatch)} differ in shape and keep their init ({shown})"
        if self.not_in_source:
            text += f"; {len(self.not_in_source)} not in the source"
        return text


def weighted_layers(model: keras.Model, prefix: str = "") -> Iterator[tuple[str, keras.layers.Layer]]:
    """``(path, layer)`` for every layer holding weights, nested models walked into
    (``"backbone/conv"``); the nested models themselves are not listed."""
    for layer in model.layers:
        path = f"{prefix}{layer.name}"
        if isinstance(layer, keras.Model):
            yield from weighted_layers(layer, f"{path}/")
        elif layer.weights:
            yield path, layer


def transfer_weights(target: keras.Model, source: keras.Model) -> WeightTransfer:
    """Copy into ``target`` every layer of ``source`` with the same path and weight shapes."""
    sources = dict(weighted_layers(source))
    transfer = WeightTransfer()
    for path, layer in weighted_layers(target):
        match = sources.get(path)
        if match is None:
            transfer.not_in_source.append(path)
            continue
        values = match.get_weights()
        if [tuple(w.shape) for w in layer.weights] != [v.shape for v in values]:
            transfer.shape_mismatch.append(path)
            continue
        layer.set_weights(values)
        transfer.copied.append(path)
        transfer.parameters += sum(v.size for v in values)
    return transfer


def init_from_model(target: keras.Model, source_file: str | Path, source: keras.Model | None = None) -> WeightTransfer:
    """Copy the matching layers of the kpose ``.keras`` model ``source_file`` into ``target``.

    ``source``: that file's model when the caller has loaded it already.

    Raises:
        FileNotFoundError: no such file.
        ConfigError: the source has another backbone (layers of the same name in two backbones
            are not the same layers, even where a shape happens to agree).
    """
    source_file = Path(source_file)
    source = source if source is not None else load_pose_model(source_file)
    source_backbone = parse_model_name(source.name)[1].name
    target_backbone = parse_model_name(target.name)[1].name
    if source_backbone != target_backbone:
        raise ConfigError(
            f"model.init_from: {source_file} is {source.name}, on backbone {source_backbone}; "
            f"{target.name} needs a {target_backbone} model"
        )
    return transfer_weights(target, source)
