"""The kpose metadata of a ``.tflite`` file, read from its flatbuffer with the standard library.

The TFLite ``Model`` table keeps named byte buffers in its ``metadata`` list; the exporter
stores the :class:`~kpose.metadata.contract.ModelMetadata` JSON there under
:data:`~kpose.metadata.contract.METADATA_KEY`.
"""

from __future__ import annotations

import struct
from pathlib import Path

from kpose.metadata.contract import METADATA_KEY, MetadataError, ModelMetadata

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
