"""kpose: 2D human pose estimation from training to the edge device.

>>> import kpose
>>> pose = kpose.load("pose.tflite")                       # any .keras, .tflite or .onnx file
>>> people = pose.estimate(image_bgr)                       # list[Person], image pixels
>>> kpose.export_model("runs/x/best.keras", "pose.tflite")  # the decoder inside the file

Importing ``kpose`` imports neither TensorFlow nor Keras. ``kpose.load``
(:func:`kpose.api.load`) and the training-side entry points ``kpose.train``,
``kpose.evaluate`` and ``kpose.export_model`` (:mod:`kpose.tasks`) are imported on first use;
a device without TensorFlow uses ``kpose.load`` on exported files alone.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# Attribute -> the module it is imported from on first access.
_LAZY = {"load": "kpose.api", "train": "kpose.tasks", "evaluate": "kpose.tasks", "export_model": "kpose.tasks"}


def __getattr__(name: str) -> Any:
    """The entry points of :data:`_LAZY`, imported from their module on first access."""
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kpose' has no attribute {name!r}")
