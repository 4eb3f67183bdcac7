"""Strict construction of (nested) dataclasses from YAML mappings.

Configs are data, never executed Python: a YAML file is parsed with ``yaml.safe_load`` and
checked field by field against the dataclass. An unknown key, a missing required key or a
value of the wrong type is a :class:`~kpose.errors.ConfigError` naming the file and the
dotted key (``config.yaml: train.optimizer.learning_rate: expected a number, got 'fast'``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

from kpose.errors import ConfigError

T = TypeVar("T")


def _describe(value: Any) -> str:
    return f"{value!r}" if isinstance(value, (str, int, float, bool)) or value is None else type(value).__name__


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
