#!/usr/bin/env python
"""Webcam pose demo: ``kpose demo`` as a script; needs no TensorFlow.

    python examples/webcam_demo.py --model pose_int8.tflite              # camera 0, a window
    python examples/webcam_demo.py --source walk.mp4 --no-window --save out.mp4 --poses out.jsonl
    python examples/webcam_demo.py --detector hog --source rtsp://camera/stream

Without ``--model`` it runs the model ``kpose quickstart`` left in ``runs/quickstart``.
q or Esc (in the window) or Ctrl-C stop it; the output files are finished either way.

The loop it runs, in a few lines of the runtime API::

    from kpose.runtime import PoseEstimator, PosePipeline, Tracker, FullFrame, VideoSource
    pipeline = PosePipeline(PoseEstimator("pose_int8.tflite"), Tracker(FullFrame()))
    with VideoSource(0) as video:
        for i, frame in enumerate(video):
            result = pipeline(frame, time_s=i / video.fps)   # result.people, result.image
"""

import sys

from kpose.cli.demo_cmd import main

if __name__ == "__main__":
    sys.exit(main())
