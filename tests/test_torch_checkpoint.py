"""kpose.interop.torch_checkpoint: real torch.save files (zip and legacy), safetensors written by
hand, a pickle that tries to run code, and errors that name the file.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import subprocess
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kpose.errors import ConfigError  # noqa: E402
from kpose.interop.torch_checkpoint import read_state_dict  # noqa: E402


class Meta:
    """A class defined here, as a checkpoint's metadata may hold one from a training library."""

    def __init__(self) -> None:
        self.note = "not to be imported by the reader"


class _Net(torch.nn.Module):
    """Conv, BatchNorm (running stats, num_batches_tracked), ConvTranspose2d, 1x1 head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.deconv = torch.nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1, bias=False)
        self.head = torch.nn.Conv2d(2, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the head's map."""
        return self.head(self.deconv(torch.relu(self.bn(self.conv(x)))))


def _state_dict() -> dict[str, torch.Tensor]:
    """Returns a trained-once model's state dict plus tensors of every kind the reader handles."""
    torch.manual_seed(0)
    net = _Net().train()
    net(torch.randn(2, 3, 8, 8))  # updates the running stats and num_batches_tracked
    state = net.state_dict()
    base = torch.arange(24, dtype=torch.float32)
    state["extra.half"] = torch.randn(3, 2).half()
    state["extra.bfloat16"] = torch.randn(2, 3).bfloat16()
    state["extra.transposed"] = base.view(4, 6).t()  # stride (1, 6)
    state["extra.strided"] = base.view(4, 6)[:, ::2]  # stride (6, 2)
    state["extra.shared_first"] = base[:12].view(3, 4)
    state["extra.shared_second"] = base[6:].view(3, 6)  # storage offset 6
    state["extra.scalar"] = torch.tensor(3.5, dtype=torch.float64)
    state["extra.empty"] = torch.zeros(0, 3)
    state["extra.int32"] = torch.tensor([[-7, 2**30]], dtype=torch.int32)
    state["extra.int8"] = torch.tensor([-128, 127], dtype=torch.int8)
    state["extra.bool"] = torch.tensor([True, False, True])
    state["extra.uint16"] = torch.tensor([0, 1, 65535], dtype=torch.int32).to(torch.uint16)
    return state


def _expected(tensor: torch.Tensor) -> np.ndarray:
    """Returns what the reader must give for ``tensor``: float16 and bfloat16 as float32."""
    if tensor.dtype in (torch.float16, torch.bfloat16):
        tensor = tensor.float()
    return tensor.detach().numpy()


def _assert_equal(arrays: dict[str, np.ndarray], state: dict[str, torch.Tensor]) -> None:
    """Asserts ``arrays`` holds exactly ``state``'s tensors: names, dtypes, values, C order."""
    assert sorted(arrays) == sorted(state)
    for name, tensor in state.items():
        expected = _expected(tensor)
        assert arrays[name].dtype == expected.dtype, name
        assert arrays[name].shape == expected.shape, name
        assert arrays[name].flags.c_contiguous and arrays[name].flags.writeable, name
        np.testing.assert_array_equal(arrays[name], expected, err_msg=name, strict=True)


def _save(obj: object, path: Path, fmt: str) -> Path:
    """Returns ``path`` after torch.save wrote ``obj`` there in the ``zip`` or ``legacy`` format."""
    torch.save(obj, path, _use_new_zipfile_serialization=fmt == "zip")
    return path


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    """Returns :func:`_state_dict`'s tensors, built once for the module."""
    return _state_dict()


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
@pytest.mark.parametrize("layout", ["mmpose", "model", "bare", "dataparallel"])
def test_reads_every_tensor_exactly(tmp_path, state, fmt, layout):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=0.1, momentum=0.9)
    optimizer.param_groups[0]["params"][0].grad = torch.ones(2)
    optimizer.step()  # an optimizer state with tensors of its own, which must not be returned
    meta = {"epoch": 3, "config": "model = dict(type='TopdownPoseEstimator')", "obj": Meta(), "lr": np.float64(0.1)}
    checkpoint = {
        "mmpose": {
            "meta": meta,
            "state_dict": state,
            "optimizer": optimizer.state_dict(),
            "message_hub": {"log_scalars": {"loss": Meta()}},
        },
        "model": {"model": state, "optimizer": optimizer.state_dict(), "iteration": 9},
        "bare": state,
        "dataparallel": OrderedDict((f"module.{name}", tensor) for name, tensor in state.items()),
    }[layout]
    arrays = read_state_dict(_save(checkpoint, tmp_path / f"{layout}.pth", fmt))
    _assert_equal(arrays, state)
    assert arrays["bn.num_batches_tracked"].dtype == np.int64 and arrays["bn.num_batches_tracked"].shape == ()
    assert int(arrays["bn.num_batches_tracked"]) == 1


def test_prefers_state_dict_then_model_then_ema_and_keeps_a_partial_module_prefix(tmp_path):
    first, second, ema = torch.ones(2), torch.full((2,), 2.0), torch.zeros(2)
    everything = {"state_dict_ema": {"w": ema}, "model": {"w": second}, "state_dict": {"module.w": first, "b": first}}
    arrays = read_state_dict(str(_save(everything, tmp_path / "c.pt", "zip")))
    assert sorted(arrays) == ["b", "module.w"]
    np.testing.assert_array_equal(arrays["module.w"], first.numpy())
    model = read_state_dict(_save({"state_dict_ema": {"w": ema}, "model": {"w": second}}, tmp_path / "m.pt", "zip"))
    np.testing.assert_array_equal(model["w"], second.numpy())
    ema_only = read_state_dict(_save({"state_dict_ema": {"w": ema}, "epoch": 1}, tmp_path / "e.pt", "legacy"))
    np.testing.assert_array_equal(ema_only["w"], ema.numpy())


def test_zip_top_folder_name_varies(tmp_path, state):
    buffer = io.BytesIO()
    torch.save(state, buffer)  # a buffer's archive folder is "archive", a file's is its stem
    (tmp_path / "from_buffer.pt").write_bytes(buffer.getvalue())
    direct = _save(state, tmp_path / "epoch_210.pth", "zip")
    folders = {zipfile.ZipFile(path).namelist()[0].split("/")[0] for path in (tmp_path / "from_buffer.pt", direct)}
    assert folders == {"archive", "epoch_210"}
    for path in (tmp_path / "from_buffer.pt", direct):
        _assert_equal(read_state_dict(path), state)


def test_reads_without_torch(tmp_path, state):
    path = _save(state, tmp_path / "model.pth", "zip")
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any import of torch now fails
        "from kpose.interop.torch_checkpoint import read_state_dict\n"
        "print(len(read_state_dict(sys.argv[1])))"
    )
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == len(state)


def test_legacy_storage_view(tmp_path):
    """A legacy file written by hand, with a tensor on a view of its storage (elements 2..4)."""

    class _View:
        pass

    view = _View()

    class _Pickler(pickle.Pickler):
        def persistent_id(self, obj: object) -> tuple | None:
            if obj is view:
                return ("storage", torch.FloatStorage, "root", "cpu", 6, ("view", 2, 3))
            return None

    class _Tensor:
        def __reduce__(self) -> tuple:
            return torch._utils._rebuild_tensor_v2, (view, 1, (2,), (1,), False, OrderedDict())

    stream = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(header, stream, protocol=2)
    _Pickler(stream, protocol=2).dump({"w": _Tensor()})
    pickle.dump(["root"], stream, protocol=2)
    stream.write(struct.pack("<q", 6) + np.arange(6, dtype="<f4").tobytes())
    (tmp_path / "view.pt").write_bytes(stream.getvalue())
    arrays = read_state_dict(tmp_path / "view.pt")
    np.testing.assert_array_equal(arrays["w"], np.array([3.0, 4.0], dtype=np.float32), strict=True)


def _write_safetensors(path: Path, entries: dict[str, tuple[str, list[int], bytes]], metadata: dict) -> None:
    """Writes a safetensors file: 8-byte little-endian header size, JSON header, raw data."""
    header: dict = {"__metadata__": metadata}
    data = b""
    for name, (dtype, shape, raw) in entries.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data)


def test_reads_safetensors_written_by_hand(tmp_path):
    weights = np.arange(6, dtype="<f4").reshape(2, 3) / 4
    bfloat16 = np.array([1.5, -2.0, 0.15625], dtype=np.float32)
    entries = {
        "module.conv.weight": ("F32", [2, 3], weights.tobytes()),
        "module.half": ("F16", [2], np.array([0.5, -3.0], dtype="<f2").tobytes()),
        "module.bfloat16": ("BF16", [3], (bfloat16.view("<u4") >> 16).astype("<u2").tobytes()),
        "module.bn.num_batches_tracked": ("I64", [], struct.pack("<q", 42)),
        "module.mask": ("BOOL", [2], bytes([1, 0])),
    }
    _write_safetensors(tmp_path / "model.safetensors", entries, {"format": "pt"})
    arrays = read_state_dict(tmp_path / "model.safetensors")
    np.testing.assert_array_equal(arrays["conv.weight"], weights, strict=True)
    np.testing.assert_array_equal(arrays["half"], np.array([0.5, -3.0], dtype=np.float32), strict=True)
    np.testing.assert_array_equal(arrays["bfloat16"], bfloat16, strict=True)
    np.testing.assert_array_equal(arrays["bn.num_batches_tracked"], np.array(42, dtype=np.int64), strict=True)
    np.testing.assert_array_equal(arrays["mask"], np.array([True, False]), strict=True)


class _RunsCode:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.marker}",)


class _TensorFromCode:
    """Unpickles as a tensor rebuilt from what running code returned."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return torch._utils._rebuild_tensor_v2, (_RunsCode(self.marker), 0, (1,), (1,), False, OrderedDict())


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_a_pickle_that_runs_code_runs_nothing(tmp_path, fmt):
    marker = tmp_path / "marker"
    pickle.loads(pickle.dumps(_RunsCode(marker)))  # the payload works when unpickled for real
    assert marker.exists()
    marker.unlink()
    state = {"w": torch.ones(2)}
    checkpoint = {
        "state_dict": {**state, "evil": _TensorFromCode(marker), "hook": _RunsCode(marker)},
        "meta": _RunsCode(marker),
    }
    arrays = read_state_dict(_save(checkpoint, tmp_path / "evil.pth", fmt))
    assert not marker.exists()
    assert list(arrays) == ["w"]
    only_code = _save({"state_dict": {"evil": _TensorFromCode(marker)}}, tmp_path / "only.pth", fmt)
    with pytest.raises(ConfigError, match="no tensors"):
        read_state_dict(only_code)
    (tmp_path / "plain.pkl").write_bytes(pickle.dumps(_RunsCode(marker)))
    with pytest.raises(ConfigError, match="not a PyTorch checkpoint"):
        read_state_dict(tmp_path / "plain.pkl")
    assert not marker.exists()


def _truncated_zip(tmp_path: Path) -> Path:
    """Returns a zip-format checkpoint cut in half."""
    data = _save({"w": torch.ones(100)}, tmp_path / "full.pt", "zip").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    return tmp_path / "cut.pt"


def _truncated_legacy(tmp_path: Path) -> Path:
    """Returns a legacy-format checkpoint missing its last 40 storage bytes."""
    data = _save({"w": torch.ones(100)}, tmp_path / "full.pt", "legacy").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[:-40])
    return tmp_path / "cut.pt"


def _text(tmp_path: Path) -> Path:
    """Returns a text file named like a checkpoint."""
    (tmp_path / "notes.pth").write_text("model = dict(type='TopdownPoseEstimator')\n")
    return tmp_path / "notes.pth"


def _no_tensors(tmp_path: Path) -> Path:
    """Returns a checkpoint whose state dict is empty."""
    return _save({"meta": {"epoch": 3}, "state_dict": {}}, tmp_path / "empty.pth", "zip")


def _whole_module(tmp_path: Path) -> Path:
    """Returns a legacy checkpoint of a whole pickled nn.Module instead of its state dict."""
    return _save({"model": torch.nn.Linear(2, 2)}, tmp_path / "module.pth", "legacy")


def _bad_safetensors(tmp_path: Path) -> Path:
    """Returns a safetensors file whose 4-float tensor has only 8 bytes."""
    _write_safetensors(tmp_path / "bad.safetensors", {"w": ("F32", [4], b"\0" * 8)}, {})
    return tmp_path / "bad.safetensors"


@pytest.mark.parametrize(
    "make, message",
    [
        (_text, "not a PyTorch checkpoint"),
        (_truncated_zip, "truncated or corrupt zip archive"),
        (_truncated_legacy, "truncated"),
        (_no_tensors, "no tensors found"),
        (_whole_module, "a whole pickled nn.Module is not read"),
        (_bad_safetensors, r"data_offsets \[0, 8\] do not hold a \[4\] F32 tensor"),
        (lambda tmp_path: tmp_path / "missing.pth", "cannot be read"),
    ],
)
def test_errors_name_the_file(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(ConfigError, match=message) as error:
        read_state_dict(path)
    assert str(error.value).startswith(f"{path}: ")
