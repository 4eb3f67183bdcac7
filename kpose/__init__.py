"""kpose: 2D human pose estimation from training to the edge device.

Importing ``kpose`` imports neither TensorFlow nor Keras; the TensorFlow parts live in
their own modules (``kpose.models``, ``kpose.data``, ``kpose.export`` and the ``*_tf``
modules beside their numpy twins) and are imported only where they are used.

``kpose.load(path)`` (:func:`kpose.api.load`) gives the pose estimator for a ``.keras``,
``.tflite`` or ``.onnx`` model file; it is imported on first use.
"""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``kpose.load``, imported from :mod:`kpose.api` on first access."""
    if name == "load":
        from kpose.api import load

        return load
    raise AttributeError(f"module 'kpose' has no attribute {name!r}")
