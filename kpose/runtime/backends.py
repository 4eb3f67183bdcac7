"""Run an exported kpose model with whatever interpreter the device has; no TensorFlow.

:func:`open_backend` opens a ``.tflite`` file with ai-edge-litert (preferred) or tflite-runtime,
or an ``.onnx`` file with onnxruntime, reads the kpose metadata inside it, and returns a
:class:`Backend` whose :meth:`Backend.run` maps a uint8 batch of crops to the named outputs
(``keypoints`` (B, K, 2) normalized to the crop, ``scores`` (B, K), optionally ``heatmaps``).
A file with a fixed batch size is fed in chunks of that size, so callers may pass any number
of crops.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable, Collection, Sequence

import numpy as np

from kpose.metadata import MetadataError, ModelMetadata, read_metadata

# Interpreter modules in order of preference: the maintained LiteRT package, then the
# legacy tflite-runtime wheel (numpy < 2, Python <= 3.11 only).
TFLITE_INTERPRETERS = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter")


class BackendError(MetadataError):
    """The interpreter cannot open or run a model file."""


def _tflite_interpreter_class(prefer: Sequence[str] = TFLITE_INTERPRETERS) -> type:
    for module_name in prefer:
        try:
            return importlib.import_module(module_name).Interpreter
        except ImportError:
            continue
    raise BackendError(
        "running a .tflite file needs a TFLite interpreter: pip install ai-edge-litert "
        "(or tflite-runtime on Python <= 3.11 with numpy < 2)"
    )


class Backend:
    """An opened model: its metadata and a function from uint8 crops to named outputs.

    Attributes:
        path: the model file.
        metadata: the kpose metadata inside it.
        interpreter: which interpreter runs it (module name), for reports.
    """

    def __init__(
        self,
        path: Path,
        metadata: ModelMetadata,
        interpreter: str,
        run_fixed: Callable[[np.ndarray], dict[str, np.ndarray]],
    ):
        self.path = path
        self.metadata = metadata
        self.interpreter = interpreter
        self._run_fixed = run_fixed

    @property
    def input_size(self) -> tuple[int, int]:
        """(H, W) of one crop, pixels."""
        return self.metadata.input_size

    @property
    def batch_size(self) -> int | None:
        """Fixed batch size of the file, or None if it takes any batch."""
        return self.metadata.batch_size

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Run a batch of crops.

        Args:
            images: (B, H, W, 3) uint8 RGB crops at :attr:`input_size`.

        Returns:
            The model's outputs by name, each with leading dimension B.
        """
        images = np.asarray(images)
        height, width = self.input_size
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (height, width, 3):
            raise BackendError(
                f"{self.path.name}: expects uint8 crops of shape (B, {height}, {width}, 3), "
                f"got {images.dtype} {images.shape}"
            )
        fixed = self.batch_size
        if fixed is None or len(images) == fixed:
            return self._run_fixed(images)
        chunks = []
        for start in range(0, len(images), fixed):
            chunk = images[start : start + fixed]
            count = len(chunk)
            if count < fixed:
                pad = np.zeros((fixed - count, *chunk.shape[1:]), np.uint8)
                chunk = np.concatenate([chunk, pad])
            out = self._run_fixed(chunk)
            chunks.append({name: value[:count] for name, value in out.items()})
        if not chunks:
            out = self._run_fixed(np.zeros((fixed, height, width, 3), np.uint8))
            return {name: value[:0] for name, value in out.items()}
        return {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}


def _check_outputs(path: Path, metadata: ModelMetadata, names: Collection[str]) -> None:
    """BackendError unless the file has every output its metadata promises."""
    missing = [name for name in metadata.outputs if name not in names]
    if missing:
        raise BackendError(
            f"{path}: its kpose metadata lists the outputs {list(metadata.outputs)} but the model has no "
            f"{', '.join(repr(name) for name in missing)} output (it has {sorted(names)}); export it with kpose export"
        )


def _open_tflite(path: Path, metadata: ModelMetadata, threads: int | None) -> Backend:
    interpreter_class = _tflite_interpreter_class()
    try:
        interpreter = interpreter_class(model_path=str(path), num_threads=threads)
    except (ValueError, RuntimeError) as exc:
        raise BackendError(f"{path}: the TFLite interpreter cannot load it ({exc})") from exc
    signatures = interpreter.get_signature_list()
    if len(signatures) != 1:
        raise BackendError(
            f"{path}: expected exactly one signature in an exported kpose model, "
            f"found {sorted(signatures)}"
        )
    runner = interpreter.get_signature_runner(next(iter(signatures)))
    input_name = runner.get_input_details()
    if "image" not in input_name:
        raise BackendError(f"{path}: the model's signature has no 'image' input")

    _check_outputs(path, metadata, runner.get_output_details())

    def run_fixed(images: np.ndarray) -> dict[str, np.ndarray]:
        return {name: np.asarray(value) for name, value in runner(image=images).items()}

    return Backend(path, metadata, interpreter_class.__module__, run_fixed)


def _open_onnx(path: Path, metadata: ModelMetadata, threads: int | None) -> Backend:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise BackendError(f"{path}: running an .onnx file needs onnxruntime installed") from exc
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    # onnxruntime's worker threads otherwise spin after each run, taking the cores from
    # whatever runs next (the camera, drawing, another model): a device shares its CPU.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise BackendError(f"{path}: onnxruntime cannot load it ({exc})") from exc
    inputs = [node.name for node in session.get_inputs()]
    if inputs != ["image"]:
        raise BackendError(f"{path}: expected one input named 'image', found {inputs}")
    names = [node.name for node in session.get_outputs()]
    _check_outputs(path, metadata, names)

    def run_fixed(images: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(names, session.run(names, {"image": images})))

    return Backend(path, metadata, "onnxruntime", run_fixed)


def open_backend(path: str | Path, threads: int | None = None) -> Backend:
    """Open an exported kpose model.

    Args:
        path: a ``.tflite`` or ``.onnx`` file written by ``kpose export``.
        threads: CPU threads for the interpreter; None lets it choose.

    Raises:
        MetadataError: the file is missing, not a model, or has no kpose metadata.
        BackendError: no interpreter for it is installed, or it fails to load.
    """
    path = Path(path)
    metadata = read_metadata(path)
    if path.suffix.lower() == ".tflite":
        return _open_tflite(path, metadata, threads)
    return _open_onnx(path, metadata, threads)
