"""On-device inference for exported kpose models: no TensorFlow, no Keras.

A device has numpy, OpenCV and one interpreter (ai-edge-litert, tflite-runtime or
onnxruntime); everything here runs on that alone.
"""

from kpose.runtime.backends import Backend, BackendError, open_backend

__all__ = ["Backend", "BackendError", "open_backend"]
