"""TFLite conversion of a serving graph: quantization flavours, builtin ops only, metadata.

Flavours (``quantize``):

* ``none``: float32 weights and activations.
* ``fp16``: float16 weights, float32 compute (dequantized at load).
* ``dynamic``: int8 weights, activations quantized on the fly by ops that support it.
* ``int8``: int8 weights and activations, calibrated on real crops; the ``image`` input stays
  uint8 (cast inside the graph). The decoder (ops under
  :data:`~kpose.export.graph.DECODER_SCOPE`) and the ``keypoints`` / ``scores`` outputs are
  kept in float32: it reads the dequantized heatmaps.
* ``int16x8``: int16 activations, int8 weights, calibrated the same way. TFLite's 16x8
  quantizer has no way to keep ops in float, so the decoder's last arithmetic runs in int16
  (a keypoint error below 1e-4 of the crop size).

Every flavour is pinned to TFLite builtin ops: a TensorFlow op without a builtin raises
:class:`~kpose.export.graph.ExportError` naming the op and the Keras layer it came from.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable, Iterator

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import convert as lite_convert
from tensorflow.lite.python import schema_py_generated as schema_fb
from tensorflow.lite.tools import flatbuffer_utils

from kpose.errors import KposeError
from kpose.export.graph import DECODER_SCOPE, ExportError, ServingGraph
from kpose.metadata import METADATA_KEY, ModelMetadata

QUANTIZATIONS = ("none", "fp16", "dynamic", "int8", "int16x8")
# A graph trained with fake quantization (kpose.export.qat): int8 from its own ranges.
QAT = "qat"
CALIBRATED = ("int8", "int16x8")
# A batch of uint8 crops (B, H, W, 3) per step.
Representative = Callable[[], Iterable[np.ndarray]]

_CUSTOM_OPCODE = schema_fb.BuiltinOperator.CUSTOM
_QUANTIZED_TYPES = {"int8": schema_fb.TensorType.INT8, "int16x8": schema_fb.TensorType.INT16}
_BUILTIN_NAMES = {code: name for name, code in vars(schema_fb.BuiltinOperator).items() if not name.startswith("_")}


def _converter(graph: ServingGraph) -> tf.lite.TFLiteConverter:
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [graph.concrete_function()], graph.trackable()
    )
    converter.experimental_enable_resource_variables = False
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter


def _layer_names(model: tf.Module) -> set[str]:
    names = set()
    for layer in getattr(model, "layers", ()):
        names.add(layer.name)
        names |= _layer_names(layer)
    return names


def _explain_conversion_error(error: Exception, graph: ServingGraph) -> ExportError:
    """The converter's error as one line naming the TF op(s) and the Keras layer(s)."""
    # ConverterError carries structured errors whose locations name the Keras scopes.
    text = "\n".join([str(error), *(str(detail) for detail in getattr(error, "errors", ()))])
    ops = sorted(set(re.findall(r"'tf\.(\w+)' op", text)))
    # Locations read like "model_1/layer_1/op/Op@__inference_serve_12": Keras name scopes.
    scopes = set()
    for location in re.findall(r'"([^"\s]+)@__inference', text):
        for part in location.split("/"):
            scopes |= {part, re.sub(r"_\d+$", "", part)}
    layers = sorted(scopes & _layer_names(graph.network))
    if not ops:
        last = text.strip().splitlines()[-1] if text.strip() else type(error).__name__
        return ExportError(f"TFLite conversion of {graph.network.name!r} failed: {last}")
    where = f" (layer {', '.join(layers)})" if layers else ""
    return ExportError(
        f"model {graph.network.name!r}: TensorFlow op {', '.join(ops)}{where} has no TFLite builtin; "
        "kpose exports builtin ops only (no Flex or custom ops)"
    )


def _convert(converter: tf.lite.TFLiteConverter, graph: ServingGraph) -> bytes:
    try:
        return converter.convert()
    except KposeError:  # from the calibration data
        raise
    except Exception as exc:  # the converter raises ConverterError and assorted others
        raise _explain_conversion_error(exc, graph) from exc


def _batches(representative: Representative, batch_size: int | None) -> Iterator[list[np.ndarray]]:
    """The converter's calibration feed: uint8 crops regrouped to the graph's batch size."""
    size = batch_size or 1
    pending: list[np.ndarray] = []
    for batch in representative():
        pending.extend(np.asarray(batch, dtype=np.uint8))
        while len(pending) >= size:
            yield [np.stack(pending[:size])]
            pending = pending[size:]


def _float_tensor_names(model: bytes) -> list[str]:
    """Output tensor names of the decoder's ops and of the signature (to keep in float)."""
    model_t = flatbuffer_utils.convert_bytearray_to_object(model)
    subgraph = model_t.subgraphs[0]
    names = [tensor.name.decode() for tensor in subgraph.tensors]
    keep = {names[i] for op in subgraph.operators for i in op.outputs if DECODER_SCOPE in names[i]}
    keep |= {names[output.tensorIndex] for output in model_t.signatureDefs[0].outputs}
    return sorted(keep)


def _int8(converter: tf.lite.TFLiteConverter, graph: ServingGraph) -> bytes:
    """Calibrate, then quantize to int8 with the decoder and outputs denylisted (float)."""
    converter._experimental_calibrate_only = True  # noqa: SLF001 - TFLite's documented debugger path
    calibrated = _convert(converter, graph)
    try:
        return lite_convert.mlir_quantize(calibrated, denylisted_nodes=_float_tensor_names(calibrated))
    except Exception as exc:
        raise _explain_conversion_error(exc, graph) from exc


def convert_tflite(
    graph: ServingGraph,
    quantize: str = "none",
    representative: Representative | None = None,
) -> bytes:
    """Convert ``graph`` to a TFLite flatbuffer (no metadata yet).

    Args:
        quantize: one of :data:`QUANTIZATIONS`, or :data:`QAT` for a fake-quantized graph.
        representative: for ``int8`` / ``int16x8``: a callable returning an iterable of uint8
            crop batches ``(B, H, W, 3)`` from the training pipeline.

    Raises:
        ExportError: unknown flavour, missing calibration data, or a non-builtin op.
    """
    if quantize not in (*QUANTIZATIONS, QAT):
        raise ExportError(f"unknown --quantize {quantize!r}; choose one of {', '.join(QUANTIZATIONS)}")
    if quantize in CALIBRATED and representative is None:
        raise ExportError(f"--quantize {quantize} needs calibration data (--calibration CONFIG_OR_DIR)")
    converter = _converter(graph)
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize in CALIBRATED:
        converter.representative_dataset = lambda: _batches(representative, graph.batch_size)
    if quantize == "int8":
        model = _int8(converter, graph)
    else:
        if quantize == "int16x8":
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
                tf.lite.OpsSet.TFLITE_BUILTINS,
            ]
        model = _convert(converter, graph)
    check_builtin_ops(model, graph.network.name)
    check_flavour(model, quantize, graph.network.name)
    return model


def check_flavour(model: bytes, quantize: str, name: str) -> None:
    """ExportError unless a calibrated flavour's file holds tensors of its integer type (a
    converter that quantized nothing must not ship a float file labelled int8)."""
    expected = _QUANTIZED_TYPES.get(quantize)
    if expected is None:
        return
    model_t = flatbuffer_utils.convert_bytearray_to_object(model)
    if not any(t.type == expected for graph in model_t.subgraphs for t in graph.tensors):
        raise ExportError(f"{name}: the converter quantized nothing: a --quantize {quantize} file would be float32")


def operator_names(model: bytes) -> list[str]:
    """The op name of every operator code of a TFLite flatbuffer (custom ops by their code)."""
    model_t = flatbuffer_utils.convert_bytearray_to_object(model)
    names = []
    for code in model_t.operatorCodes:
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        if builtin == _CUSTOM_OPCODE:
            names.append((code.customCode or b"?").decode())
        else:
            names.append(_BUILTIN_NAMES.get(builtin, str(builtin)))
    return names


def check_builtin_ops(model: bytes, model_name: str) -> None:
    """Raise :class:`ExportError` if the flatbuffer uses a custom or Flex op."""
    custom = sorted({name for name in operator_names(model) if name not in _BUILTIN_NAMES.values()})
    if custom:
        raise ExportError(f"model {model_name!r}: the TFLite file would need non-builtin op(s) {', '.join(custom)}")


def with_metadata(model: bytes, metadata: ModelMetadata) -> bytes:
    """``model`` with the kpose metadata JSON appended as the named buffer :data:`METADATA_KEY`."""
    model_t = flatbuffer_utils.convert_bytearray_to_object(model)
    buffer = schema_fb.BufferT()
    buffer.data = np.frombuffer(metadata.to_json().encode("utf-8"), dtype=np.uint8)
    model_t.buffers.append(buffer)
    entry = schema_fb.MetadataT()
    entry.name, entry.buffer = METADATA_KEY, len(model_t.buffers) - 1
    model_t.metadata = [m for m in (model_t.metadata or []) if m.name != METADATA_KEY.encode()] + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model_t))
