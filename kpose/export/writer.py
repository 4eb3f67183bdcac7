"""From a serving graph to one validated ``.tflite`` or ``.onnx`` file, for either task.

The steps every export shares: :class:`ExportOptions` checked before any work, the model
loaded (:func:`load_model`) and its schema resolved (:func:`resolve_schema`), the graph
converted with its metadata (:func:`convert`), and the bytes written under a temporary name,
run once by the device runtime and only then moved into place (:func:`write_validated`). A
task (:mod:`kpose.tasks`) supplies the serving graph and the output contract in between.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import keras

from kpose.export.graph import ExportError, ServingGraph
from kpose.export.tflite import CALIBRATED, QUANTIZATIONS
from kpose.keypoints import KeypointSchema, builtin_schema_names, get_schema
from kpose.metadata import ModelMetadata
from kpose.models import load_pose_model

FORMATS = {"tflite": ".tflite", "onnx": ".onnx"}


def load_model(model: str | Path | keras.Model) -> keras.Model:
    """A keras.Model, or a ``.keras`` file loaded as a kpose model; ExportError otherwise."""
    if isinstance(model, keras.Model):
        return model
    path = Path(model)
    if path.suffix != ".keras":
        raise ExportError(f"{path}: expected a Keras model file (.keras)")
    if not path.is_file():
        raise ExportError(f"{path}: model file not found")
    try:
        return load_pose_model(path)
    except Exception as exc:  # Keras raises assorted errors for foreign or broken files
        raise ExportError(f"{path}: not a kpose model ({type(exc).__name__}: {exc})") from exc


def resolve_schema(schema: Any, fallback: KeypointSchema | None, num_keypoints: int) -> KeypointSchema:
    """The schema to embed: the one given, else the calibration config's, else the built-in
    schema with ``num_keypoints`` keypoints."""
    if schema is not None:
        return get_schema(schema)
    if fallback is not None:
        return fallback
    for name in builtin_schema_names():
        candidate = get_schema(name)
        if candidate.num_keypoints == num_keypoints:
            return candidate
    raise ExportError(
        f"the model predicts {num_keypoints} keypoints and no built-in schema has that many: "
        "pass --schema FILE (or a --calibration config naming it)"
    )


def write_validated(
    data: bytes, output: Path, metadata: ModelMetadata, validate: Callable[[Path, ModelMetadata], Any]
) -> Path:
    """Write ``data`` to a temporary file beside ``output``, load and run it (``validate(path,
    metadata)`` raises if the file breaks its contract), then move it into place; nothing is
    left behind if validation fails."""
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.stem}.{os.getpid()}.partial{output.suffix}")
    try:
        temporary.write_bytes(data)
        validate(temporary, metadata)
        os.replace(temporary, output)
    finally:
        temporary.unlink(missing_ok=True)
    return output


@dataclass(frozen=True)
class ExportOptions:
    """How to export a model (``kpose export``'s options).

    Attributes:
        format: ``tflite`` or ``onnx``.
        quantize: ``none``, ``fp16``, ``dynamic``, ``int8`` or ``int16x8`` (TFLite only).
        calibration: for int8 / int16x8: a training config YAML or a COCO-style dataset folder.
        calibration_size: crops to calibrate on.
        heatmaps: also output the heatmaps ``(B, h, w, K)``.
        flip_test: average with the mirrored crop's heatmaps inside the graph.
        quarter_shift: quarter-pixel refinement of each peak inside the graph.
        batch_size: fixed batch size of ``image``, or None for a dynamic one.
        opset: ONNX opset (13..18).
    """

    format: str = "tflite"
    quantize: str = "none"
    calibration: str | Path | None = None
    calibration_size: int = 300
    heatmaps: bool = False
    flip_test: bool = False
    quarter_shift: bool = False
    batch_size: int | None = 1
    opset: int = 17

    def check(self, output: Path) -> None:
        """ExportError naming the option that cannot apply (before any work is done)."""
        if output.is_dir():
            raise ExportError(f"-o {output}: is a folder; name the file to write (e.g. -o {output / 'model.tflite'})")
        if self.format not in FORMATS:
            raise ExportError(f"unknown --format {self.format!r}; choose one of {', '.join(FORMATS)}")
        if self.quantize not in QUANTIZATIONS:
            raise ExportError(f"unknown --quantize {self.quantize!r}; choose one of {', '.join(QUANTIZATIONS)}")
        if self.format == "onnx" and self.quantize != "none":
            raise ExportError(f"--quantize {self.quantize} is TFLite only; ONNX files are float32")
        if self.quantize in CALIBRATED and self.calibration is None:
            raise ExportError(
                f"--quantize {self.quantize} needs calibration crops: pass --calibration CONFIG.yaml or a dataset folder"
            )
        if output.suffix.lower() != FORMATS[self.format]:
            raise ExportError(f"-o {output}: a {self.format} file must end in {FORMATS[self.format]}")


def convert(
    graph: ServingGraph,
    metadata: ModelMetadata,
    options: ExportOptions,
    representative: Callable[[], Iterator[Any]] | None = None,
) -> bytes:
    """The bytes of the ``options.format`` file of ``graph``, ``metadata`` inside
    (``representative``: calibration inputs of an int8 / int16x8 TFLite file)."""
    if options.format == "onnx":
        from kpose.export.onnx import convert_onnx

        return convert_onnx(graph, metadata, options.opset)
    from kpose.export.tflite import convert_tflite, with_metadata

    return with_metadata(convert_tflite(graph, options.quantize, representative), metadata)
