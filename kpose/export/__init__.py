"""Export trained kpose models to TFLite and ONNX, with the decoder inside the graph.

>>> export_model("runs/quickstart/best.keras", "pose.tflite")                 # float32
>>> export_model(model, "pose_int8.tflite", quantize="int8", calibration="config.yaml")
>>> export_model(model, "pose.onnx", format="onnx", batch_size=None)          # dynamic batch

The file takes ``image`` uint8 ``(B, H, W, 3)`` RGB crops and returns ``keypoints``
``(B, K, 2)`` float32 normalized to the crop, ``scores`` ``(B, K)`` float32 and optionally
``heatmaps``; it carries :class:`kpose.metadata.ModelMetadata` and is loaded and run once
(through :mod:`kpose.runtime.backends`) before it is moved into place. The modules:
:mod:`~kpose.export.graph` (float32 rebuild, serving function), :mod:`~kpose.export.tflite`,
:mod:`~kpose.export.onnx`, :mod:`~kpose.export.calibration`, :mod:`~kpose.export.validate`,
:mod:`~kpose.export.qat` (tensorflow-model-optimization, run in a subprocess).
"""

from kpose.export.api import FORMATS, export_model
from kpose.export.graph import ExportError
from kpose.export.tflite import QUANTIZATIONS

__all__ = ["FORMATS", "QUANTIZATIONS", "ExportError", "export_model"]
