"""Strict construction of (nested) dataclasses from YAML mappings.

Configs are data, never executed Python: a YAML file is parsed with ``yaml.safe_load`` and
checked field by field against the dataclass. An unknown key, a missing required key or a
value of the wrong type is a :class:`~kpose.errors.ConfigError` naming the file and the
dotted key (``config.yaml: train.optimizer.learning_rate: expected a number, got 'fast'``).

Ranges are declared on the fields, ``field(default=..., metadata=at_least(1))``, and checked
with the types (``config.yaml: train.epochs: must be >= 1, got 0``); a range on a tuple or
list field applies to each item. A float is never NaN or infinite.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

from kpose.errors import ConfigError

T = TypeVar("T")

RANGE = "range"  # the key of a field's metadata that holds its Range


@dataclasses.dataclass(frozen=True)
class Range:
    """Bounds of a number: ``low`` / ``high`` (None: unbounded), inclusive unless open."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def violation(self, value: float) -> str | None:
        """Why ``value`` is out of range, or None."""
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return f"must be {'>' if self.open_low else '>='} {self.low:g}"
        if self.high is not None and (value >= self.high if self.open_high else value > self.high):
            return f"must be {'<' if self.open_high else '<='} {self.high:g}"
        return None


def at_least(low: float) -> dict[str, Range]:
    """Field metadata: the value is ``>= low``."""
    return {RANGE: Range(low)}


def positive() -> dict[str, Range]:
    """Field metadata: the value is ``> 0``."""
    return {RANGE: Range(0, open_low=True)}


def between(low: float, high: float, open_high: bool = False) -> dict[str, Range]:
    """Field metadata: the value is in ``[low, high]`` (``[low, high)`` with ``open_high``)."""
    return {RANGE: Range(low, high, open_high=open_high)}


def _check_range(value: Any, bounds: Range | None, where: str, source: str) -> None:
    """ConfigError unless ``value`` (or each item of a tuple / list value) is in ``bounds``."""
    if bounds is None or value is None:
        return
    for i, item in enumerate(value) if isinstance(value, (list, tuple)) else [(None, value)]:
        problem = bounds.violation(item)
        if problem:
            key = where if i is None else f"{where}[{i}]"
            raise ConfigError(f"{source}: {key}: {problem}, got {item!r}")


def _describe(value: Any) -> str:
    return f"{value!r}" if isinstance(value, (str, int, float, bool)) or value is None else type(value).__name__


def check_ranges(instance: Any, source: str, where: str = "") -> None:
    """The ranges of a dataclass instance built in Python (what :func:`build` checks while
    reading a file), nested dataclasses included."""
    for field in dataclasses.fields(instance):
        key = f"{where}.{field.name}" if where else field.name
        value = getattr(instance, field.name)
        if dataclasses.is_dataclass(value):
            check_ranges(value, source, key)
        else:
            _check_range(value, field.metadata.get(RANGE), key, source)


def _convert(value: Any, annotation: Any, where: str, source: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(value, option, where, source)
            except ConfigError as exc:
                errors.append(str(exc).rsplit(": ", 1)[-1])
        raise ConfigError(f"{source}: {where}: {'; or '.join(errors)}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{source}: {where}: expected one of {list(args)}, got {_describe(value)}")
        return value
    if dataclasses.is_dataclass(annotation):
        return build(annotation, value, source, where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: {where}: expected a list, got {_describe(value)}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{source}: {where}: expected {len(args)} values, got {len(value)}")
            items = [_convert(v, a, f"{where}[{i}]", source) for i, (v, a) in enumerate(zip(value, args))]
        else:
            item_type = args[0] if args else Any
            items = [_convert(v, item_type, f"{where}[{i}]", source) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{source}: {where}: expected a mapping, got {_describe(value)}")
        value_type = args[1] if args else Any
        return {str(k): _convert(v, value_type, f"{where}.{k}", source) for k, v in value.items()}
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {where}: expected true or false, got {_describe(value)}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: {where}: expected an integer, got {_describe(value)}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: {where}: expected a number, got {_describe(value)}")
        if not math.isfinite(value):
            raise ConfigError(f"{source}: {where}: expected a finite number, got {_describe(value)}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {where}: expected a string, got {_describe(value)}")
        return value
    raise TypeError(f"unsupported config annotation {annotation!r} at {where}")


def build(cls: type[T], data: Any, source: str = "<config>", where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, recursively and strictly.

    Args:
        cls: a dataclass whose fields are annotated with str, int, float, bool, Literal,
            Optional/unions, tuple, list, dict or nested dataclasses.
        data: the parsed mapping.
        source: file name for error messages.
        where: dotted key prefix for error messages.
    """
    label = where or "top level"
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: {label}: expected a mapping, got {_describe(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"{source}: unknown key {prefix}{unknown[0]!s}; valid keys{' under ' + where if where else ''} "
            f"are {sorted(fields)}"
        )
    kwargs = {}
    for name, field in fields.items():
        key = f"{where}.{name}" if where else name
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], key, source)
            _check_range(kwargs[name], field.metadata.get(RANGE), key, source)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{source}: missing required key {key}")
    return cls(**kwargs)


def load(cls: type[T], path: str | Path) -> T:
    """Parse a YAML file and :func:`build` ``cls`` from it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return build(cls, data, str(path))


def to_dict(instance: Any) -> Any:
    """A dataclass instance as plain lists/dicts, ready for ``yaml.safe_dump``."""
    if dataclasses.is_dataclass(instance):
        return {f.name: to_dict(getattr(instance, f.name)) for f in dataclasses.fields(instance)}
    if isinstance(instance, (list, tuple)):
        return [to_dict(v) for v in instance]
    if isinstance(instance, dict):
        return {k: to_dict(v) for k, v in instance.items()}
    return instance
