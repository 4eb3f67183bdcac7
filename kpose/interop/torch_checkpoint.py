"""Read the tensors of a PyTorch checkpoint with numpy alone: no torch, no arbitrary unpickling.

:func:`read_state_dict` reads three formats: ``torch.save``'s zip archive (the default since
torch 1.6), its legacy single-stream format (``_use_new_zipfile_serialization=False``) and
``.safetensors``. A checkpoint's pickle is read by a restricted unpickler that resolves only
the globals a state dict needs (tensor rebuilders, storage and dtype names,
``collections.OrderedDict``, builtin containers). Every other global, such as an MMEngine
message hub or a numpy scalar in a checkpoint's ``meta``, becomes an inert placeholder that
records its name and ignores its arguments and state: nothing from the file is imported or run.
"""

from __future__ import annotations

import collections
import json
import pickle
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable

import numpy as np

from kpose.errors import ConfigError

# torch dtype name -> numpy dtype of its stored bytes (bfloat16 is read as its raw uint16 bits).
_STORED_DTYPES = {
    "float64": "f8",
    "float32": "f4",
    "float16": "f2",
    "bfloat16": "u2",
    "int64": "i8",
    "int32": "i4",
    "int16": "i2",
    "int8": "i1",
    "uint8": "u1",
    "uint16": "u2",
    "uint32": "u4",
    "uint64": "u8",
    "bool": "?",
}
# torch storage class -> the dtype of its elements.
_STORAGE_DTYPES = {
    "DoubleStorage": "float64",
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "UntypedStorage": "uint8",
}
_SAFETENSORS_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "U16": "uint16",
    "U32": "uint32",
    "U64": "uint64",
    "BOOL": "bool",
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
# Where a checkpoint that is not a bare state dict keeps the model's, in order of preference.
_STATE_DICT_KEYS = ("state_dict", "model", "state_dict_ema")
_NOT_A_CHECKPOINT = "not a PyTorch checkpoint: neither a zip archive, a legacy torch.save file nor safetensors"
# What malformed bytes can make the unpickler, zipfile, struct or numpy raise.
_DECODE_ERRORS = (
    pickle.UnpicklingError,
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    NotImplementedError,
    MemoryError,
    RecursionError,
)


class _Malformed(Exception):
    """What is wrong with the file being read; :func:`read_state_dict` adds the file's name."""


@dataclass(frozen=True, slots=True)
class _DType:
    """A torch dtype, or a storage class standing for its element dtype, by torch's name."""

    name: str


@dataclass(frozen=True, slots=True)
class _StorageRef:
    """A storage the pickle refers to by key: ``count`` elements of ``dtype`` from element ``start``.

    ``count`` is None for a whole storage; legacy files may refer to a view of one instead.
    """

    key: str
    dtype: str
    start: int = 0
    count: int | None = None


@dataclass(frozen=True, slots=True)
class _LazyTensor:
    """A tensor whose bytes are read only once the state dict it belongs to is chosen."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: str


class _Opaque:
    """An object of a global the reader refuses to import; subclasses carry that global's name.

    Calling, instantiating, filling or restoring it runs nothing and keeps nothing.
    """

    qualified_name = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> _Opaque:
        """Returns a new placeholder, ignoring the arguments."""
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Ignores the arguments."""

    def __setstate__(self, state: Any) -> None:
        """Ignores the pickled state."""

    def __setitem__(self, key: Any, value: Any) -> None:
        """Ignores an item (a pickled dict subclass's entries)."""

    def append(self, item: Any) -> None:
        """Ignores an item (a pickled list subclass's entries)."""

    def extend(self, items: Any) -> None:
        """Ignores items (a pickled list subclass's entries)."""

    def __repr__(self) -> str:
        """Returns ``<not loaded: module.name>``."""
        return f"<not loaded: {self.qualified_name}>"


def _ints(values: Any, what: str) -> tuple[int, ...]:
    """Returns ``values`` as a tuple of non-negative ints, or raises :class:`_Malformed`."""
    if not isinstance(values, (tuple, list)) or not all(type(v) is int and v >= 0 for v in values):
        raise _Malformed(f"a tensor's {what} is {values!r}, not a tuple of non-negative ints")
    return tuple(values)


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any, *rest: Any) -> _LazyTensor | _Opaque:
    """torch._utils._rebuild_tensor and _rebuild_tensor_v2: returns the tensor's :class:`_LazyTensor`.

    A tensor whose storage the reader did not load (a placeholder) comes back as a placeholder.
    """
    if not isinstance(storage, _StorageRef):
        return _Opaque()
    return _lazy_tensor(storage, storage_offset, size, stride, storage.dtype)


def _rebuild_tensor_v3(
    storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any, hooks: Any, dtype: Any, *rest: Any
) -> _LazyTensor | _Opaque:
    """torch._utils._rebuild_tensor_v3 (a dtype-less storage and the tensor's dtype): returns its
    :class:`_LazyTensor`, or a placeholder where the storage was not loaded.
    """
    if not isinstance(storage, _StorageRef):
        return _Opaque()
    return _lazy_tensor(storage, storage_offset, size, stride, _dtype_name(dtype))


def _lazy_tensor(storage: _StorageRef, storage_offset: Any, size: Any, stride: Any, dtype: str) -> _LazyTensor:
    """Returns the checked :class:`_LazyTensor` of a tensor's rebuild arguments."""
    (offset,) = _ints((storage_offset,), "storage offset")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    if len(size) != len(stride):
        raise _Malformed(f"a tensor's size {size} and stride {stride} differ in length")
    return _LazyTensor(storage, offset, size, stride, dtype)


def _dtype_name(dtype: Any) -> str:
    """Returns a torch dtype's or storage class's element dtype name: the torch name (``float32``)
    where the reader knows it, the qualified name (``torch.float8_e4m3fn``) where it does not.
    """
    if isinstance(dtype, _DType):
        return dtype.name
    if isinstance(dtype, type) and issubclass(dtype, _Opaque):
        return dtype.qualified_name
    raise _Malformed(f"{dtype!r} stands where a torch dtype or storage class should")


def _rebuild_parameter(data: Any, *rest: Any) -> Any:
    """torch._utils._rebuild_parameter(_with_state): returns the parameter's tensor, ``data``."""
    return data


def _bytes_from_latin1(text: Any, encoding: Any) -> bytes:
    """_codecs.encode as protocol-2 pickles use it for bytes: returns ``text`` encoded in latin-1."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Malformed(f"_codecs.encode called with encoding {encoding!r}, not latin1")
    return text.encode("latin-1")


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("_codecs", "encode"): _bytes_from_latin1,
    **{("torch", name): _DType(dtype) for name, dtype in _STORAGE_DTYPES.items()},
    ("torch.storage", "UntypedStorage"): _DType("uint8"),
    **{("torch", dtype): _DType(dtype) for dtype in _STORED_DTYPES},
    **{
        (module, builtin.__name__): builtin
        for module in ("builtins", "__builtin__")
        for builtin in (set, frozenset, bytes, bytearray, complex, slice)
    },
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles resolving only :data:`_ALLOWED_GLOBALS`; storages become :class:`_StorageRef`.

    ``storage_dtypes`` maps each storage key met to its element dtype.
    """

    def __init__(self, file: IO[bytes]) -> None:
        super().__init__(file, encoding="latin1")
        self.storage_dtypes: dict[str, str] = {}

    def find_class(self, module: str, name: str) -> Any:
        """Returns the allowed global ``module.name``, or a placeholder class named after it."""
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is not None:
            return allowed
        return type(name, (_Opaque,), {"qualified_name": f"{module}.{name}"})

    def persistent_load(self, pid: Any) -> _StorageRef | type[_Opaque]:
        """Returns the :class:`_StorageRef` of a ``("storage", type, key, location, numel[, view])``
        id; any other persistent id (a legacy file's pickled module class) is the placeholder class.
        """
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            return _Opaque
        dtype, key = _dtype_name(pid[1]), pid[2]
        if not isinstance(key, str):
            raise _Malformed(f"a storage key is {key!r}, not a string")
        self.storage_dtypes.setdefault(key, dtype)
        view = pid[5] if len(pid) == 6 else None
        if view is None:
            return _StorageRef(key, dtype)
        _view_key, start, count = view
        return _StorageRef(key, dtype, *_ints((start, count), "storage view"))


def _state_dict(obj: Any) -> dict[str, _LazyTensor]:
    """Returns the model's tensors in a checkpoint's unpickled object, by name.

    The object is a bare state dict or a dict holding one under one of :data:`_STATE_DICT_KEYS`
    (the first with tensors wins); entries that are not tensors are dropped.
    """
    candidates = [obj.get(key) for key in _STATE_DICT_KEYS] + [obj] if isinstance(obj, dict) else []
    for candidate in candidates:
        if isinstance(candidate, dict):
            tensors = {k: v for k, v in candidate.items() if isinstance(k, str) and isinstance(v, _LazyTensor)}
            if tensors:
                return tensors
    raise _Malformed(
        f"no tensors found: neither a state dict nor a dict holding one under {', '.join(_STATE_DICT_KEYS)} "
        "(a whole pickled nn.Module is not read: save its state_dict())"
    )


def _convert(values: np.ndarray, dtype: str) -> np.ndarray:
    """Returns a C-contiguous, native-byte-order copy of ``values`` (stored as torch ``dtype``);
    float16 and bfloat16 become float32.
    """
    if dtype == "bfloat16":
        return (values.astype(np.uint32, order="C") << 16).view(np.float32)
    if dtype == "float16":
        return values.astype(np.float32, order="C")
    return values.astype(values.dtype.newbyteorder("="), order="C")


def _materialize(
    tensors: dict[str, _LazyTensor], read_storage: Callable[[str], bytes], byteorder: str
) -> dict[str, np.ndarray]:
    """Returns each tensor as a numpy array, reading each storage once through ``read_storage``.

    ``byteorder`` is ``"<"`` or ``">"``, the order of the storages' bytes.
    """
    storages: dict[str, bytes] = {}
    arrays = {}
    for name, tensor in tensors.items():
        if tensor.dtype not in _STORED_DTYPES:
            raise _Malformed(f"tensor {name!r}: dtype {tensor.dtype} is not supported")
        ref = tensor.storage
        if ref.key not in storages:
            storages[ref.key] = read_storage(ref.key)
        dtype = np.dtype(_STORED_DTYPES[tensor.dtype]).newbyteorder(byteorder)
        raw = storages[ref.key]
        if len(raw) % dtype.itemsize:
            raise _Malformed(f"tensor {name!r}: its storage's {len(raw)} bytes are not whole {tensor.dtype} elements")
        data = np.frombuffer(raw, dtype=dtype)
        data = data[ref.start : None if ref.count is None else ref.start + ref.count]
        if 0 in tensor.size:
            arrays[name] = _convert(np.zeros(tensor.size, dtype), tensor.dtype)
            continue
        end = tensor.offset + sum((n - 1) * s for n, s in zip(tensor.size, tensor.stride)) + 1
        if end > data.size:
            raise _Malformed(f"tensor {name!r} reaches element {end} of a storage of {data.size}")
        view = np.lib.stride_tricks.as_strided(
            data[tensor.offset :],
            shape=tensor.size,
            strides=[s * dtype.itemsize for s in tensor.stride],
            writeable=False,
        )
        arrays[name] = _convert(view, tensor.dtype)
    return arrays


def _read_zip(file: IO[bytes]) -> dict[str, np.ndarray]:
    """Returns the model's tensors in a zip-format checkpoint (``<folder>/data.pkl``, ``<folder>/data/<key>``)."""
    try:
        with zipfile.ZipFile(file) as archive:
            names = archive.namelist()
            pickles = [name for name in names if name.endswith("/data.pkl") and name.count("/") == 1]
            if len(pickles) != 1:
                raise _Malformed("a zip archive without one <folder>/data.pkl: not a torch.save checkpoint")
            prefix = pickles[0][: -len("data.pkl")]
            if prefix + "constants.pkl" in names:
                raise _Malformed("a TorchScript archive (torch.jit.save), not a torch.save checkpoint of a state dict")
            byteorder = archive.read(prefix + "byteorder") if prefix + "byteorder" in names else b"little"
            with archive.open(pickles[0]) as pickled:
                tensors = _state_dict(_RestrictedUnpickler(pickled).load())

            def read_storage(key: str) -> bytes:
                """Returns the bytes of storage ``key``."""
                if f"{prefix}data/{key}" not in names:
                    raise _Malformed(f"storage record {prefix}data/{key} is missing")
                return archive.read(f"{prefix}data/{key}")

            return _materialize(tensors, read_storage, "<" if byteorder == b"little" else ">")
    except zipfile.BadZipFile as error:
        raise _Malformed(f"truncated or corrupt zip archive ({error})") from error


def _read_legacy(file: IO[bytes]) -> dict[str, np.ndarray]:
    """Returns the model's tensors in a legacy-format checkpoint: pickles of the magic number,
    protocol version, system info, the object and its storage keys, then each storage as an
    8-byte little-endian element count and its little-endian bytes.
    """
    file.seek(0)
    try:
        magic = _RestrictedUnpickler(file).load()
    except _DECODE_ERRORS:
        magic = None
    if magic != _LEGACY_MAGIC:
        raise _Malformed(_NOT_A_CHECKPOINT)
    protocol = _RestrictedUnpickler(file).load()
    if protocol != _LEGACY_PROTOCOL:
        raise _Malformed(f"legacy torch.save protocol {protocol!r} is not supported (only {_LEGACY_PROTOCOL})")
    _RestrictedUnpickler(file).load()  # system info: the storages are little-endian whatever it says
    unpickler = _RestrictedUnpickler(file)
    tensors = _state_dict(unpickler.load())
    keys = _RestrictedUnpickler(file).load()
    if not isinstance(keys, list) or not all(key in unpickler.storage_dtypes for key in keys):
        raise _Malformed("the list of storage keys does not match the storages the object refers to")
    position = file.tell()
    file_size = file.seek(0, 2)
    extents = {}
    for key in keys:
        file.seek(position)
        count_bytes = file.read(8)
        count = struct.unpack("<q", count_bytes)[0] if len(count_bytes) == 8 else -1
        dtype = unpickler.storage_dtypes[key]
        if dtype not in _STORED_DTYPES:
            raise _Malformed(f"storage {key}: dtype {dtype} is not supported")
        nbytes = count * np.dtype(_STORED_DTYPES[dtype]).itemsize
        if count < 0 or position + 8 + nbytes > file_size:
            raise _Malformed(f"truncated: storage {key} runs past the end of the file")
        extents[key] = (position + 8, nbytes)
        position += 8 + nbytes

    def read_storage(key: str) -> bytes:
        """Returns the bytes of storage ``key``."""
        if key not in extents:
            raise _Malformed(f"storage {key} is not in the file")
        start, nbytes = extents[key]
        file.seek(start)
        return file.read(nbytes)

    return _materialize(tensors, read_storage, "<")


def _read_safetensors(file: IO[bytes]) -> dict[str, np.ndarray]:
    """Returns the tensors of a safetensors file: an 8-byte little-endian header length, a JSON
    header mapping each name to its ``dtype``, ``shape`` and ``data_offsets`` (begin, end bytes
    after the header), then the little-endian data.
    """
    file_size = file.seek(0, 2)
    file.seek(0)
    if file_size < 8:
        raise _Malformed("shorter than a safetensors header")
    (header_size,) = struct.unpack("<Q", file.read(8))
    if header_size > file_size - 8:
        raise _Malformed(f"safetensors header of {header_size} bytes runs past the end of the file")
    try:
        header = json.loads(file.read(header_size))
    except ValueError as error:
        raise _Malformed(f"safetensors header is not JSON ({error})") from error
    if not isinstance(header, dict):
        raise _Malformed("safetensors header is not a JSON object")
    data_start = 8 + header_size
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict) or entry.get("dtype") not in _SAFETENSORS_DTYPES:
            raise _Malformed(f"safetensors tensor {name!r}: dtype {entry!r} is missing or not supported")
        dtype = _SAFETENSORS_DTYPES[entry["dtype"]]
        shape = _ints(entry.get("shape"), f"{name!r} shape")
        begin, end = _ints(entry.get("data_offsets"), f"{name!r} data_offsets")
        stored = np.dtype(_STORED_DTYPES[dtype]).newbyteorder("<")
        if end - begin != int(np.prod(shape)) * stored.itemsize or data_start + end > file_size:
            raise _Malformed(
                f"safetensors tensor {name!r}: data_offsets [{begin}, {end}] do not hold a {list(shape)} "
                f"{entry['dtype']} tensor within the file"
            )
        file.seek(data_start + begin)
        tensors[name] = _convert(np.frombuffer(file.read(end - begin), dtype=stored).reshape(shape), dtype)
    if not tensors:
        raise _Malformed("the safetensors file holds no tensors")
    return tensors


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Returns the model's tensors in a PyTorch checkpoint, by name, without torch and without
    running anything from the file.

    ``path`` is a ``torch.save`` file (zip or legacy format) or a ``.safetensors`` file. The
    checkpoint is a bare state dict or a dict holding one under ``state_dict`` (MMPose, mmcv),
    ``model`` or ``state_dict_ema``, preferred in that order; its entries that are not tensors
    are dropped, and a ``module.`` prefix (DataParallel) is stripped when every name has it.
    Arrays keep the file's dtype except float16 and bfloat16, which become float32; they are
    C-contiguous copies (a non-contiguous tensor's elements in its logical order).

    Raises:
        ConfigError: naming the file, when it cannot be read, is not a checkpoint, is truncated
            or holds no tensors.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            head = file.read(9)
            if path.suffix == ".safetensors" or head[8:9] == b"{":
                tensors = _read_safetensors(file)
            elif head.startswith(b"PK\x03\x04"):
                tensors = _read_zip(file)
            else:
                tensors = _read_legacy(file)
    except _Malformed as error:
        raise ConfigError(f"{path}: {error}") from None
    except EOFError:
        raise ConfigError(f"{path}: truncated: the file ends inside a pickle") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read ({error.strerror or error})") from error
    except _DECODE_ERRORS as error:
        raise ConfigError(f"{path}: not a readable PyTorch checkpoint ({type(error).__name__}: {error})") from error
    if all(name.startswith("module.") for name in tensors):
        tensors = {name[len("module.") :]: array for name, array in tensors.items()}
    return tensors
