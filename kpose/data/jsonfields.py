"""Loading annotation JSON and checking its fields, with errors that name file and field."""

from __future__ import annotations

import json
import math
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np

from kpose.errors import AnnotationError

MAX_COORDINATE = 1e6  # pixels: a coordinate, box side or size beyond it is a broken file


def load_json(path: str | Path) -> Any:
    """Parse a JSON file. Raises AnnotationError if it is missing or not valid JSON."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"{path}: annotation file not found")
    try:
        with path.open("rb") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"{path}: not valid JSON: {exc}") from None


def fail(source: str | Path, field: str, message: str) -> AnnotationError:
    """The error for a bad ``field`` of ``source`` (raise it)."""
    return AnnotationError(f"{source}: field '{field}' {message}")


def get(record: Any, key: str, source: str | Path, field: str, default: Any = ...) -> Any:
    """``record[key]``; a missing key is an error unless ``default`` is given."""
    if not isinstance(record, dict):
        raise fail(source, field, f"must be an object, got {type(record).__name__}")
    if key in record:
        return record[key]
    if default is ...:
        raise fail(source, field if field == key else f"{field}.{key}", "is missing")
    return default


def is_number(value: Any) -> bool:
    """A real number (numpy scalars included), not a bool."""
    return isinstance(value, Real) and not isinstance(value, bool)


def integer(value: Any, source: str | Path, field: str, minimum: int | None = None) -> int:
    """``value``, which must be an integer (numpy integers included), not a bool, at least
    ``minimum`` if given."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise fail(source, field, f"must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise fail(source, field, f"must be >= {minimum}, got {value!r}")
    return value


def string(value: Any, source: str | Path, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise fail(source, field, f"must be a non-empty string, got {value!r}")
    return value


def number(value: Any, source: str | Path, field: str, minimum: float | None = None) -> float:
    """``value`` as a float; it must be a finite number, at least ``minimum`` if given."""
    if not is_number(value) or not math.isfinite(value):
        raise fail(source, field, f"must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise fail(source, field, f"must be >= {minimum:g}, got {value!r}")
    return float(value)


def numbers(value: Any, length: int, source: str | Path, field: str, what: str = "") -> np.ndarray:
    """A list of ``length`` finite numbers as float64; ``what`` explains the length."""
    if not isinstance(value, list) or len(value) != length:
        got = f"{len(value)} values" if isinstance(value, list) else type(value).__name__
        raise fail(source, field, f"must be a list of {length} numbers{what}, got {got}")
    for i, item in enumerate(value):
        if not is_number(item) or not math.isfinite(item) or abs(item) > MAX_COORDINATE:
            raise fail(
                source, field, f"must hold only finite numbers within +-{MAX_COORDINATE:g}, got {item!r} at [{i}]"
            )
    return np.asarray(value, np.float64)


def list_field(data: Any, key: str, source: str | Path) -> list:
    """``data[key]``, which must be a list, from a top-level object ``data``."""
    if not isinstance(data, dict):
        got = type(data).__name__
        raise AnnotationError(f"{source}: the top level must be an object with '{key}', got {got}")
    value = get(data, key, source, key)
    if not isinstance(value, list):
        raise fail(source, key, f"must be a list, got {type(value).__name__}")
    return value
