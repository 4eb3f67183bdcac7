"""The metadata an exported kpose model carries, and how to read it without TensorFlow.

An exported file (``.tflite`` or ``.onnx``) is self-describing: its keypoint schema, input
size, normalization, decoder settings, model name and kpose version travel inside it as one
JSON document under the key :data:`METADATA_KEY` — in the TFLite flatbuffer's ``metadata``
list (a named buffer) and in the ONNX model's ``metadata_props``. The exporter writes it; the
device runtime reads it with this module, which needs only the Python standard library
(``.tflite``) or onnxruntime (``.onnx``).

Coordinate convention of the ``keypoints`` output: normalized to the crop, ``x_norm =
(x_px + 0.5) / W`` and ``y_norm = (y_px + 0.5) / H`` where pixel centres sit at integer
``x_px, y_px``; so 0 and 1 are the crop's outer edges. :func:`keypoints_to_crop_pixels` and
:func:`crop_pixels_to_keypoints` convert.
"""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from kpose.errors import KposeError
from kpose.keypoints import KeypointSchema, schema_from_dict

METADATA_KEY = "kpose"
FORMAT_VERSION = 1


class MetadataError(KposeError):
    """A file is not an exported kpose model, or its metadata is malformed."""


@dataclass(frozen=True)
class ModelMetadata:
    """What a device needs to know to run an exported model.

    Attributes:
        model_name: the kpose model name, e.g. ``"srhead_mobilenetv3_small"``.
        schema: the keypoint schema as :meth:`KeypointSchema.to_dict` gives it.
        input_size: (H, W) of the crop the model takes, pixels.
        input_dtype: dtype of the ``image`` input (``"uint8"``), NHWC, RGB.
        normalization: how the graph normalizes the image inside (informational for devices:
            they feed raw RGB), e.g. ``{"mean": [...], "std": [...], "scale": 255.0}``.
        outputs: output names in the file (``"keypoints"``, ``"scores"``, optionally
            ``"heatmaps"``).
        decoder: decoder settings baked into the graph, e.g. ``{"name": "maxpool",
            "kernel": 4, "flip_test": false, "quarter_shift": false}``.
        heatmap_size: (h, w) of the heatmap the decoder reads.
        batch_size: fixed batch size of the ``image`` input, or None if dynamic.
        quantization: ``"none"``, ``"fp16"``, ``"dynamic"``, ``"int8"``, ``"int16x8"`` or
            ``"qat"``.
        kpose_version: version of kpose that wrote the file.
        format_version: version of this metadata layout.
        extra: anything else the exporter wants to record (free-form, JSON-serializable).
    """

    model_name: str
    schema: Mapping[str, Any]
    input_size: tuple[int, int]
    heatmap_size: tuple[int, int]
    input_dtype: str = "uint8"
    normalization: Mapping[str, Any] = field(default_factory=dict)
    outputs: tuple[str, ...] = ("keypoints", "scores")
    decoder: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int | None = 1
    quantization: str = "none"
    kpose_version: str = ""
    format_version: int = FORMAT_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def keypoint_schema(self) -> KeypointSchema:
        """The schema as a :class:`KeypointSchema`."""
        return schema_from_dict(self.schema, source=f"metadata of {self.model_name}")

    def to_json(self) -> str:
        """The metadata as one JSON document (what the exporter embeds)."""
        data = asdict(self)
        data["input_size"] = list(self.input_size)
        data["heatmap_size"] = list(self.heatmap_size)
        data["outputs"] = list(self.outputs)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "<metadata>") -> "ModelMetadata":
        """Parse and validate an embedded document; errors name ``source`` and the field."""
        try:
            data = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MetadataError(f"{source}: kpose metadata is not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise MetadataError(f"{source}: kpose metadata must be a JSON object")
        version = data.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise MetadataError(
                f"{source}: kpose metadata format_version {version!r} is not supported "
                f"(this kpose reads up to {FORMAT_VERSION}); upgrade kpose"
            )
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise MetadataError(f"{source}: unknown kpose metadata field(s) {unknown}")
        for name in ("model_name", "schema", "input_size", "heatmap_size"):
            if name not in data:
                raise MetadataError(f"{source}: kpose metadata lacks field {name!r}")
        for name in ("input_size", "heatmap_size"):
            size = data[name]
            if (
                not isinstance(size, list)
                or len(size) != 2
                or not all(isinstance(v, int) and v > 0 for v in size)
            ):
                raise MetadataError(f"{source}: metadata field {name!r} must be [H, W], got {size!r}")
            data[name] = tuple(size)
        data["outputs"] = tuple(data.get("outputs", ("keypoints", "scores")))
        metadata = cls(**data)
        metadata.keypoint_schema  # validates the schema, naming the source
        return metadata


def keypoints_to_crop_pixels(keypoints: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """Normalized crop coordinates (..., 2) (x, y) in [0, 1] -> crop pixels (centres at integers)."""
    height, width = input_size
    size = np.array([width, height], dtype=np.float32)
    return np.asarray(keypoints, dtype=np.float32) * size - 0.5


def crop_pixels_to_keypoints(points: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """Crop pixels (..., 2) (x, y) -> normalized crop coordinates; inverse of the above."""
    height, width = input_size
    size = np.array([width, height], dtype=np.float32)
    return (np.asarray(points, dtype=np.float32) + 0.5) / size


# --- TFLite: the flatbuffer's metadata list, read with the standard library -------------------
# Model table fields (tensorflow/compiler/mlir/lite/schema/schema.fbs): 0 version,
# 1 operator_codes, 2 subgraphs, 3 description, 4 buffers, 5 metadata_buffer, 6 metadata,
# 7 signature_defs. Metadata table: 0 name (string), 1 buffer (uint32 index into buffers).
# Buffer table: 0 data ([ubyte]), 1 offset (uint64), 2 size (uint64) — offset/size are used
# instead of data when the model is larger than 2 GB.
_MODEL_BUFFERS, _MODEL_METADATA = 4, 6


class _FlatTable:
    """Minimal read-only view of one flatbuffer table."""

    def __init__(self, buf: bytes, pos: int):
        self.buf, self.pos = buf, pos
        vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vtable = vtable
        self.vtable_size = struct.unpack_from("<H", buf, vtable)[0]

    def _field(self, index: int) -> int | None:
        slot = 4 + 2 * index
        if slot >= self.vtable_size:
            return None
        offset = struct.unpack_from("<H", self.buf, self.vtable + slot)[0]
        return self.pos + offset if offset else None

    def _deref(self, pos: int) -> int:
        return pos + struct.unpack_from("<I", self.buf, pos)[0]

    def scalar(self, index: int, fmt: str, default: int = 0) -> int:
        pos = self._field(index)
        return default if pos is None else struct.unpack_from(fmt, self.buf, pos)[0]

    def vector(self, index: int) -> tuple[int, int] | None:
        """(start, length) of a vector field, or None if absent."""
        pos = self._field(index)
        if pos is None:
            return None
        start = self._deref(pos)
        return start + 4, struct.unpack_from("<I", self.buf, start)[0]

    def tables(self, index: int) -> list["_FlatTable"]:
        vec = self.vector(index)
        if vec is None:
            return []
        start, length = vec
        return [_FlatTable(self.buf, self._deref(start + 4 * i)) for i in range(length)]

    def string(self, index: int) -> str | None:
        vec = self.vector(index)
        if vec is None:
            return None
        start, length = vec
        return self.buf[start : start + length].decode("utf-8")


def tflite_metadata_entries(data: bytes) -> dict[str, bytes]:
    """All named metadata buffers of a TFLite flatbuffer, ``{name: bytes}``."""
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ValueError("not a TFLite flatbuffer (no TFL3 identifier)")
    model = _FlatTable(data, struct.unpack_from("<I", data, 0)[0])
    buffers = model.tables(_MODEL_BUFFERS)
    entries: dict[str, bytes] = {}
    for entry in model.tables(_MODEL_METADATA):
        name = entry.string(0)
        index = entry.scalar(1, "<I")
        if name is None or index >= len(buffers):
            continue
        buffer = buffers[index]
        vec = buffer.vector(0)
        if vec is not None and vec[1] > 0:
            start, length = vec
            entries[name] = bytes(data[start : start + length])
        else:
            offset, size = buffer.scalar(1, "<Q"), buffer.scalar(2, "<Q")
            entries[name] = bytes(data[offset : offset + size]) if offset > 1 else b""
    return entries


def read_tflite_metadata(path: str | Path) -> ModelMetadata:
    """The kpose metadata of a ``.tflite`` file; :class:`MetadataError` if it has none."""
    path = Path(path)
    try:
        entries = tflite_metadata_entries(path.read_bytes())
    except (ValueError, struct.error) as exc:
        raise MetadataError(f"{path}: cannot read as a TFLite model ({exc})") from exc
    if METADATA_KEY not in entries:
        raise MetadataError(
            f"{path}: no kpose metadata in this TFLite file (was it written by `kpose export`?)"
        )
    return ModelMetadata.from_json(entries[METADATA_KEY], source=str(path))


def metadata_from_props(props: Mapping[str, str], source: str) -> ModelMetadata:
    """The kpose metadata from ONNX ``metadata_props`` (as onnxruntime's
    ``get_modelmeta().custom_metadata_map`` gives them)."""
    if METADATA_KEY not in props:
        raise MetadataError(
            f"{source}: no kpose metadata in this ONNX file (was it written by `kpose export`?)"
        )
    return ModelMetadata.from_json(props[METADATA_KEY], source=source)


def read_onnx_metadata(path: str | Path) -> ModelMetadata:
    """The kpose metadata of an ``.onnx`` file (needs onnxruntime, or the onnx package)."""
    path = Path(path)
    try:
        import onnxruntime as ort
    except ImportError:
        try:
            import onnx
        except ImportError as exc:
            raise MetadataError(
                f"{path}: reading ONNX metadata needs onnxruntime or onnx installed"
            ) from exc
        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as exc:  # onnx raises several protobuf error types
            raise MetadataError(f"{path}: cannot read as an ONNX model ({exc})") from exc
        return metadata_from_props({p.key: p.value for p in model.metadata_props}, str(path))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise MetadataError(f"{path}: cannot read as an ONNX model ({exc})") from exc
    return metadata_from_props(session.get_modelmeta().custom_metadata_map, str(path))


def read_metadata(path: str | Path) -> ModelMetadata:
    """The kpose metadata of an exported ``.tflite`` or ``.onnx`` file."""
    path = Path(path)
    if not path.is_file():
        raise MetadataError(f"{path}: no such model file")
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        return read_tflite_metadata(path)
    if suffix == ".onnx":
        return read_onnx_metadata(path)
    raise MetadataError(f"{path}: not an exported model (expected a .tflite or .onnx file)")
