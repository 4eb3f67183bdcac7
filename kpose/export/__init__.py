"""Export machinery: serving graphs, TFLite and ONNX conversion, calibration, validation.

The entry point is :func:`kpose.tasks.export_model` (``kpose export``); the task of the model
supplies the serving graph, this package the rest. A top-down file takes ``image`` uint8 ``(B, H, W, 3)`` RGB crops and returns ``keypoints``
``(B, K, 2)`` float32 normalized to the crop, ``scores`` ``(B, K)`` float32 and optionally
``heatmaps``; it carries :class:`kpose.metadata.ModelMetadata` and is loaded and run once
(through :mod:`kpose.runtime.backends`) before it is moved into place. The modules:
:mod:`~kpose.export.graph` (float32 rebuild, serving function), :mod:`~kpose.export.writer`
(options, conversion, validated write), :mod:`~kpose.export.tflite`, :mod:`~kpose.export.onnx`,
:mod:`~kpose.export.calibration`, :mod:`~kpose.export.validate`, :mod:`~kpose.export.layers`
(interpreter-friendly layer swaps), :mod:`~kpose.tasks.keras_backend` (a ``.keras`` model
behind the runtime's backend interface) and :mod:`~kpose.export.qat`
(tensorflow-model-optimization, run in a subprocess).
"""

from kpose.export.graph import ExportError
from kpose.export.tflite import QUANTIZATIONS
from kpose.export.writer import FORMATS, ExportOptions

__all__ = ["FORMATS", "QUANTIZATIONS", "ExportError", "ExportOptions"]
