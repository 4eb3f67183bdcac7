"""Keypoint schemas: the names, symmetry, skeleton and OKS sigmas of a keypoint set.

A schema is data. The built-in ones (COCO-17, MPII-16, CrowdPose-14) are YAML files shipped
in ``kpose/keypoints/builtin``; a user's own set loads from a JSON or YAML file through the
same validating loader. Schemas travel through every stage, export metadata included, as the
plain dict of :meth:`KeypointSchema.to_dict`.

This module imports no TensorFlow: the device runtime uses it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import yaml

from kpose.errors import SchemaError

BUILTIN_DIR = Path(__file__).with_name("builtin")

# Drawing colours, BGR (OpenCV order).
LEFT_COLOR = (0, 200, 0)
RIGHT_COLOR = (0, 128, 255)
CENTER_COLOR = (255, 153, 51)

_REQUIRED = ("name", "keypoints")
_KNOWN = frozenset(
    {"name", "keypoints", "flip_pairs", "skeleton", "sigmas", "upper_body", "lower_body", "colors"}
)


def _side(name: str) -> str:
    lowered = name.lower()
    if lowered.startswith(("left", "l_", "l-")):
        return "left"
    if lowered.startswith(("right", "r_", "r-")):
        return "right"
    return "center"


def _side_color(side: str) -> tuple[int, int, int]:
    return {"left": LEFT_COLOR, "right": RIGHT_COLOR}.get(side, CENTER_COLOR)


@dataclass(frozen=True)
class KeypointSchema:
    """One keypoint set.

    Attributes:
        name: short identifier, e.g. ``"coco"``.
        keypoints: keypoint names, in channel order; K = ``len(keypoints)``.
        flip_pairs: (left, right) index pairs swapped by a horizontal flip.
        skeleton: (a, b) index pairs drawn as limbs.
        sigmas: per-keypoint OKS sigmas (COCO convention, e.g. 0.026 for the nose).
        upper_body, lower_body: keypoint indices for half-body augmentation.
        colors: per-keypoint BGR drawing colours.
    """

    name: str
    keypoints: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...] = ()
    skeleton: tuple[tuple[int, int], ...] = ()
    sigmas: tuple[float, ...] = ()
    upper_body: tuple[int, ...] = ()
    lower_body: tuple[int, ...] = ()
    colors: tuple[tuple[int, int, int], ...] = field(default=())

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoints)

    @property
    def flip_index(self) -> np.ndarray:
        """(K,) int array: channel ``i`` of a flipped prediction is keypoint ``flip_index[i]``."""
        index = np.arange(self.num_keypoints)
        for a, b in self.flip_pairs:
            index[a], index[b] = b, a
        return index

    @property
    def sigmas_array(self) -> np.ndarray:
        return np.asarray(self.sigmas, dtype=np.float64)

    def limb_colors(self) -> tuple[tuple[int, int, int], ...]:
        """BGR colour of each skeleton edge: its side's colour, or the centre colour."""
        colors = []
        for a, b in self.skeleton:
            side_a, side_b = _side(self.keypoints[a]), _side(self.keypoints[b])
            colors.append(_side_color(side_a if side_a == side_b else "center"))
        return tuple(colors)

    def index(self, name: str) -> int:
        """Channel index of the keypoint called ``name``."""
        try:
            return self.keypoints.index(name)
        except ValueError:
            raise KeyError(f"schema {self.name!r} has no keypoint {name!r}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict; :func:`schema_from_dict` reads it back."""
        return {
            "name": self.name,
            "keypoints": list(self.keypoints),
            "flip_pairs": [list(p) for p in self.flip_pairs],
            "skeleton": [list(e) for e in self.skeleton],
            "sigmas": list(self.sigmas),
            "upper_body": list(self.upper_body),
            "lower_body": list(self.lower_body),
            "colors": [list(c) for c in self.colors],
        }


def _pairs(raw: Any, field_name: str, k: int, source: str) -> tuple[tuple[int, int], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise SchemaError(f"{source}: field '{field_name}' must be a list of [a, b] pairs")
    pairs = []
    for i, pair in enumerate(raw):
        if (
            not isinstance(pair, Sequence)
            or isinstance(pair, str)
            or len(pair) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
        ):
            raise SchemaError(f"{source}: field '{field_name}'[{i}] = {pair!r} is not a pair of ints")
        a, b = pair
        for v in (a, b):
            if not 0 <= v < k:
                raise SchemaError(
                    f"{source}: field '{field_name}'[{i}] = {list(pair)} points past the "
                    f"{k} keypoints (valid indices are 0..{k - 1})"
                )
        if a == b:
            raise SchemaError(f"{source}: field '{field_name}'[{i}] = {list(pair)} pairs a keypoint with itself")
        pairs.append((a, b))
    return tuple(pairs)


def _indices(raw: Any, field_name: str, k: int, source: str) -> tuple[int, ...]:
    if raw is None:
        return ()
    out = []
    for i, v in enumerate(raw):
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < k:
            raise SchemaError(f"{source}: field '{field_name}'[{i}] = {v!r} is not a keypoint index in 0..{k - 1}")
        out.append(v)
    return tuple(out)


def schema_from_dict(data: Mapping[str, Any], source: str = "<schema>") -> KeypointSchema:
    """Validate a schema dict and build a :class:`KeypointSchema`.

    Args:
        data: mapping with ``name`` and ``keypoints`` and optionally ``flip_pairs``,
            ``skeleton``, ``sigmas``, ``upper_body``, ``lower_body``, ``colors``.
        source: where the dict came from (a file path), used in error messages.

    Raises:
        SchemaError: naming ``source`` and the offending field.
    """
    if not isinstance(data, Mapping):
        raise SchemaError(f"{source}: a schema must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - _KNOWN)
    if unknown:
        raise SchemaError(f"{source}: unknown field(s) {unknown}; known fields are {sorted(_KNOWN)}")
    for key in _REQUIRED:
        if key not in data:
            raise SchemaError(f"{source}: missing required field '{key}'")
    names = data["keypoints"]
    if not isinstance(names, Sequence) or isinstance(names, str) or not names:
        raise SchemaError(f"{source}: field 'keypoints' must be a non-empty list of names")
    if not all(isinstance(n, str) and n for n in names):
        raise SchemaError(f"{source}: field 'keypoints' must hold non-empty strings")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if list(names).count(n) > 1})
        raise SchemaError(f"{source}: field 'keypoints' repeats {dup}")
    k = len(names)

    flip_pairs = _pairs(data.get("flip_pairs"), "flip_pairs", k, source)
    seen: set[int] = set()
    for i, (a, b) in enumerate(flip_pairs):
        if a in seen or b in seen:
            raise SchemaError(f"{source}: field 'flip_pairs'[{i}] = {[a, b]} uses a keypoint already paired")
        seen.update((a, b))
    skeleton = _pairs(data.get("skeleton"), "skeleton", k, source)

    raw_sigmas = data.get("sigmas")
    if raw_sigmas is None:
        sigmas = (0.05,) * k  # a neutral default for sets without measured sigmas
    else:
        if not isinstance(raw_sigmas, Sequence) or len(raw_sigmas) != k:
            got = len(raw_sigmas) if isinstance(raw_sigmas, Sequence) else type(raw_sigmas).__name__
            raise SchemaError(f"{source}: field 'sigmas' must have one value per keypoint ({k}), got {got}")
        try:
            sigmas = tuple(float(s) for s in raw_sigmas)
        except (TypeError, ValueError):
            raise SchemaError(f"{source}: field 'sigmas' must hold numbers") from None
        if not all(s > 0 for s in sigmas):
            raise SchemaError(f"{source}: field 'sigmas' must be positive")

    upper = _indices(data.get("upper_body"), "upper_body", k, source)
    lower = _indices(data.get("lower_body"), "lower_body", k, source)
    if not upper and not lower:
        upper = tuple(range(k))

    raw_colors = data.get("colors")
    if raw_colors:
        if len(raw_colors) != k or not all(len(c) == 3 for c in raw_colors):
            raise SchemaError(f"{source}: field 'colors' must hold one [b, g, r] triple per keypoint ({k})")
        colors = tuple(tuple(int(v) for v in c) for c in raw_colors)
    else:
        colors = tuple(_side_color(_side(n)) for n in names)

    return KeypointSchema(
        name=str(data["name"]),
        keypoints=tuple(names),
        flip_pairs=flip_pairs,
        skeleton=skeleton,
        sigmas=sigmas,
        upper_body=upper,
        lower_body=lower,
        colors=colors,
    )


def load_schema(path: str | Path) -> KeypointSchema:
    """Load and validate a schema from a ``.json``, ``.yaml`` or ``.yml`` file."""
    path = Path(path)
    if not path.is_file():
        raise SchemaError(f"{path}: schema file not found")
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise SchemaError(f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {exc}") from None
    return schema_from_dict(data, source=str(path))


def builtin_schema_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def get_schema(name_or_path: str | Path | KeypointSchema) -> KeypointSchema:
    """A built-in schema by name (``"coco"``, ``"mpii"``, ``"crowdpose"``), or one from a file.

    A :class:`KeypointSchema` passes through unchanged, so callers can accept either.
    """
    if isinstance(name_or_path, KeypointSchema):
        return name_or_path
    text = str(name_or_path)
    builtin = BUILTIN_DIR / f"{text.lower()}.yaml"
    if builtin.is_file():
        return load_schema(builtin)
    if Path(text).suffix.lower() in (".json", ".yaml", ".yml"):
        return load_schema(text)
    raise SchemaError(
        f"unknown schema {text!r}: built-in schemas are {builtin_schema_names()}, "
        "or pass the path of a .json/.yaml schema file"
    )
