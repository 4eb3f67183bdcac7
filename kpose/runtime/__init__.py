"""On-device inference for exported kpose models: no TensorFlow, no Keras.

A device has numpy, OpenCV and one interpreter (ai-edge-litert, tflite-runtime or
onnxruntime); everything here runs on that alone. The pieces, in the order a frame meets them:

* :mod:`~kpose.runtime.video`: cameras, files and streams in; mp4 and JSON-lines out.
* :mod:`~kpose.runtime.boxes`: person boxes (whole frame, HOG detector, keypoint tracking).
* :mod:`~kpose.runtime.estimator`: crops, the model (:mod:`~kpose.runtime.backends`), and
  keypoints mapped back to the image, as :class:`Person` results.
* :mod:`~kpose.runtime.smoothing`: One-Euro filtering per track.
* :mod:`~kpose.runtime.drawing`: skeletons, boxes, fps and latency overlay.
* :mod:`~kpose.runtime.pipeline`: one frame through all of them, each stage timed.
* :mod:`~kpose.runtime.bottomup`: bottom-up models (every person of a frame at once, no
  boxes): candidates grouped by associative embedding
  (:mod:`kpose.codecs.associative_embedding`).
"""

from kpose.runtime.backends import Backend, BackendError, open_backend
from kpose.runtime.bottomup import BottomUpEstimator, BottomUpPipeline
from kpose.runtime.boxes import (
    BoxSource,
    DetectorError,
    FullFrame,
    HogDetector,
    Tracker,
)
from kpose.runtime.drawing import draw_overlay, draw_people
from kpose.runtime.estimator import ImageError, Person, PoseEstimator
from kpose.runtime.pipeline import FrameResult, PosePipeline
from kpose.runtime.smoothing import KeypointSmoother, OneEuroFilter
from kpose.runtime.video import (
    PoseLog,
    VideoError,
    VideoSink,
    VideoSource,
    Window,
    read_pose_log,
)

__all__ = [
    "Backend", "BackendError", "open_backend",
    "BottomUpEstimator", "BottomUpPipeline",
    "BoxSource", "DetectorError", "FullFrame", "HogDetector", "Tracker",
    "draw_overlay", "draw_people",
    "ImageError", "Person", "PoseEstimator",
    "FrameResult", "PosePipeline",
    "KeypointSmoother", "OneEuroFilter",
    "PoseLog", "VideoError", "VideoSink", "VideoSource", "Window", "read_pose_log",
]
