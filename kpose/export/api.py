"""``export_model``: a trained model in, one validated ``.tflite`` or ``.onnx`` file out."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import keras

from kpose.export.graph import ExportError, float32_network, model_metadata, normalization_of, serving_graph
from kpose.export.layers import for_interpreters
from kpose.export.tflite import CALIBRATED, QUANTIZATIONS
from kpose.keypoints import KeypointSchema, builtin_schema_names, get_schema
from kpose.metadata import ModelMetadata

FORMATS = {"tflite": ".tflite", "onnx": ".onnx"}


def load_model(model: str | Path | keras.Model) -> keras.Model:
    """A keras.Model, or a ``.keras`` file loaded as a kpose model; ExportError otherwise."""
    if isinstance(model, keras.Model):
        return model
    from kpose.engine.evaluate import load_pose_model

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


def write_validated(data: bytes, output: Path, metadata: ModelMetadata, validate: Any = None) -> Path:
    """Write ``data`` to a temporary file beside ``output``, load and run it (``validate(path,
    metadata)``, default :func:`kpose.export.validate.validate_exported`), then move it into
    place; nothing is left behind if validation fails."""
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.stem}.{os.getpid()}.partial{output.suffix}")
    try:
        temporary.write_bytes(data)
        if validate is None:
            from kpose.export.validate import validate_exported as validate

        validate(temporary, metadata)
        os.replace(temporary, output)
    finally:
        temporary.unlink(missing_ok=True)
    return output


def _check_options(format: str, quantize: str, calibration: Any, output: Path) -> None:
    if output.is_dir():
        raise ExportError(f"-o {output}: is a folder; name the file to write (e.g. -o {output / 'model.tflite'})")
    if format not in FORMATS:
        raise ExportError(f"unknown --format {format!r}; choose one of {', '.join(FORMATS)}")
    if quantize not in QUANTIZATIONS:
        raise ExportError(f"unknown --quantize {quantize!r}; choose one of {', '.join(QUANTIZATIONS)}")
    if format == "onnx" and quantize != "none":
        raise ExportError(f"--quantize {quantize} is TFLite only; ONNX files are float32")
    if quantize in CALIBRATED and calibration is None:
        raise ExportError(
            f"--quantize {quantize} needs calibration crops: pass --calibration CONFIG.yaml or a dataset folder"
        )
    if output.suffix.lower() != FORMATS[format]:
        raise ExportError(f"-o {output}: a {format} file must end in {FORMATS[format]}")


def export_model(
    model: str | Path | keras.Model,
    output: str | Path,
    *,
    format: str = "tflite",
    quantize: str = "none",
    calibration: str | Path | None = None,
    calibration_size: int = 300,
    heatmaps: bool = False,
    flip_test: bool = False,
    quarter_shift: bool = False,
    batch_size: int | None = 1,
    opset: int = 17,
    schema: str | Path | KeypointSchema | None = None,
) -> Path:
    """Export a kpose model to one validated file.

    Args:
        model: a ``.keras`` file or a keras.Model (training or inference graph; a
            mixed-precision model is rebuilt in float32).
        output: the ``.tflite`` / ``.onnx`` file to write.
        format: ``tflite`` or ``onnx``.
        quantize: ``none``, ``fp16``, ``dynamic``, ``int8`` or ``int16x8`` (TFLite only).
        calibration: for int8 / int16x8: a training config YAML or a COCO-style dataset folder.
        calibration_size: crops to calibrate on.
        heatmaps: also output the heatmaps ``(B, h, w, K)``.
        flip_test: average with the mirrored crop's heatmaps inside the graph.
        quarter_shift: quarter-pixel refinement of each peak inside the graph.
        batch_size: fixed batch size of ``image``, or None for a dynamic one.
        opset: ONNX opset (13..18).
        schema: the keypoint schema to embed; default: the calibration config's, else the
            built-in schema with the model's number of keypoints.

    A bottom-up model (with a ``tags`` output) exports its candidates instead of keypoints
    (:mod:`kpose.export.bottomup`): float32 or fp16, no calibration, heatmaps, flip test or
    quarter shift options.

    Returns:
        The written path.

    Raises:
        ExportError: bad model, option or calibration data, or an op that cannot be a
            builtin; no file is written then.
    """
    output = Path(output)
    _check_options(format, quantize, calibration, output)
    keras_model = load_model(model)
    normalization_of(keras_model)  # fails early, with a clear message, for foreign models
    from kpose.export import bottomup

    if bottomup.is_bottomup(keras_model):
        bottomup.export_options_used(calibration=calibration, heatmaps=heatmaps, flip_test=flip_test, quarter_shift=quarter_shift)
        keypoint_schema = resolve_schema(schema, None, keras_model.output["heatmaps"].shape[-1])
        return bottomup.export_bottomup(
            keras_model, output, keypoint_schema, format=format, quantize=quantize, batch_size=batch_size, opset=opset
        )
    network = for_interpreters(float32_network(keras_model), integer=quantize in CALIBRATED)
    source = None
    if calibration is not None:
        from kpose.export.calibration import resolve_calibration

        source = resolve_calibration(calibration)
    keypoint_schema = resolve_schema(schema, source.schema if source else None, network.output.shape[-1])
    graph = serving_graph(
        network, keypoint_schema, heatmaps=heatmaps, flip_test=flip_test,
        quarter_shift=quarter_shift, batch_size=batch_size,
    )
    metadata = model_metadata(keras_model, graph, keypoint_schema, quantize)
    if format == "onnx":
        from kpose.export.onnx import convert_onnx

        data = convert_onnx(graph, metadata, opset)
    else:
        from kpose.export.tflite import convert_tflite, with_metadata

        representative = None
        if quantize in CALIBRATED:
            from kpose.export.calibration import calibration_set

            crops = calibration_set(source, keypoint_schema, graph.input_size, calibration_size)

            def representative():
                return iter(crops)

        data = with_metadata(convert_tflite(graph, quantize, representative), metadata)
    return write_validated(data, output, metadata)
