"""kpose: 2D human pose estimation from training to the edge device.

Importing ``kpose`` imports neither TensorFlow nor Keras; the TensorFlow parts live in
their own modules (``kpose.models``, ``kpose.data``, ``kpose.export`` and the ``*_tf``
modules beside their numpy twins) and are imported only where they are used.
"""

__version__ = "0.1.0"
