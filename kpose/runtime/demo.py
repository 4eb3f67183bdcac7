"""The video loop behind ``kpose demo`` and ``examples/webcam_demo.py``.

Frames from a camera, file or stream go through a :class:`PosePipeline`; the drawn frames go
to a window and/or an mp4 file, the poses to a JSON-lines file (one line per frame). q, Esc
or Ctrl-C stop it; the files are finished either way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kpose.errors import KposeError
from kpose.runtime.backends import open_backend
from kpose.runtime.bottomup import BottomUpEstimator, BottomUpPipeline
from kpose.runtime.boxes import DETECTORS, BoxSource, FullFrame, HogDetector, Tracker
from kpose.runtime.drawing import draw_overlay
from kpose.runtime.estimator import PoseEstimator
from kpose.runtime.select import estimator_for
from kpose.runtime.pipeline import PosePipeline
from kpose.runtime.smoothing import KeypointSmoother
from kpose.runtime.video import PoseLog, VideoSink, VideoSource, Window

REDETECTORS = ("hog", "full")


def make_box_source(
    detector: str, redetect: str = "full", every: int = 30, threshold: float = 0.3, max_people: int | None = None
) -> BoxSource:
    """The box source a ``--detector`` name stands for.

    Args:
        detector: ``full`` (the whole frame is one person), ``hog`` (OpenCV's HOG people
            detector on every frame) or ``track`` (boxes from the previous frame's keypoints).
        redetect: for ``track``, where new people come from: ``hog`` or ``full``.
        every: for ``track``, frames between detector runs.
        threshold: for ``track``, keypoint score that keeps a track alive.
        max_people: for ``track``, most people tracked at once.
    """
    if detector == "full":
        return FullFrame()
    if detector == "hog":
        return HogDetector()
    if detector == "track":
        if redetect not in REDETECTORS:
            raise KposeError(f"--redetect must be one of {REDETECTORS}, got {redetect!r}")
        base = HogDetector() if redetect == "hog" else FullFrame()
        return Tracker(base, every=every, threshold=threshold, max_people=max_people)
    raise KposeError(f"--detector must be one of {DETECTORS}, got {detector!r}")


def make_pipeline(
    estimator: PoseEstimator | BottomUpEstimator,
    detector: str = "full",
    redetect: str = "full",
    every: int = 30,
    threshold: float = 0.3,
    smooth: bool = True,
    draw: bool = True,
) -> PosePipeline | BottomUpPipeline:
    """The frame pipeline for ``estimator``.

    A bottom-up estimator finds every person itself (the box settings do not apply); a
    top-down one takes its boxes from :func:`make_box_source` (``detector``, ``redetect``,
    ``every``, ``threshold``) and draws them unless they are the whole frame.

    Args:
        threshold: keypoint score drawn (and, for ``track``, kept alive).
        smooth: One-Euro keypoint smoothing over time.
        draw: draw the people on a copy of each frame (:attr:`FrameResult.image`).
    """
    smoother = KeypointSmoother() if smooth else None
    if isinstance(estimator, BottomUpEstimator):
        return BottomUpPipeline(estimator, smoother, threshold=threshold, draw=draw)
    return PosePipeline(
        estimator,
        make_box_source(detector, redetect, every, threshold),
        smoother,
        threshold=threshold,
        draw=draw,
        draw_boxes=detector != "full",
    )


@dataclass
class DemoSettings:
    """What ``kpose demo`` was asked to do (see its ``--help``)."""

    model: Path
    source: str | int = 0
    detector: str = "track"
    redetect: str = "full"
    every: int = 30
    threads: int | None = None
    threshold: float = 0.3
    smooth: bool = True
    save: Path | None = None
    poses: Path | None = None
    window: bool = True
    overlay: bool = True
    max_frames: int | None = None


@dataclass
class DemoSummary:
    frames: int
    seconds: float
    interrupted: bool

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def run_demo(settings: DemoSettings, log: Callable[[str], None] = print) -> DemoSummary:
    """Run the demo loop until the source ends, ``max_frames``, q/Esc or Ctrl-C.

    Raises:
        KposeError: (subclasses) naming the model, source or output that cannot be used.
    """
    estimator = estimator_for(open_backend(settings.model, threads=settings.threads))
    pipeline = make_pipeline(
        estimator, settings.detector, settings.redetect, settings.every, settings.threshold, settings.smooth
    )
    detector = "none (bottom-up model)" if isinstance(pipeline, BottomUpPipeline) else settings.detector
    closers = []
    start = time.perf_counter()
    frames, interrupted = 0, False
    try:
        source = VideoSource(settings.source)
        closers.append(source)
        live = source.frame_count is None
        sink = VideoSink(settings.save, source.fps) if settings.save else None
        pose_log = PoseLog(settings.poses) if settings.poses else None
        window = Window() if settings.window else None
        closers += [c for c in (sink, pose_log, window) if c is not None]
        log(
            f"kpose demo: {settings.model} ({estimator.backend.interpreter}, input "
            f"{estimator.input_size[0]}x{estimator.input_size[1]}), source {settings.source}, "
            f"detector {detector}" + (" (q or Esc to quit)" if window else " (Ctrl-C to stop)")
        )
        fps, last = 0.0, time.perf_counter()
        while settings.max_frames is None or frames < settings.max_frames:
            frame = source.read()
            if frame is None:
                break
            decode_ms = (time.perf_counter() - last) * 1e3
            time_s = (time.perf_counter() - start) if live else frames / source.fps
            result = pipeline(frame, time_s)
            if pose_log:
                pose_log.write(frames, time_s * 1e3, result.people)
            if settings.overlay:
                draw_overlay(result.image, fps, {"decode": decode_ms, **result.timings_ms})
            if sink:
                sink.write(result.image)
            frames += 1
            if window and not window.show(result.image):
                break
            now = time.perf_counter()
            instant = 1.0 / max(now - last, 1e-6)
            fps, last = (instant if fps == 0 else 0.9 * fps + 0.1 * instant), now
    except KeyboardInterrupt:
        interrupted = True
    finally:
        for closer in reversed(closers):
            closer.close()
    summary = DemoSummary(frames, time.perf_counter() - start, interrupted)
    log(
        f"kpose demo: {summary.frames} frames in {summary.seconds:.1f} s ({summary.fps:.1f} fps)"
        + (f", video {settings.save}" if settings.save else "")
        + (f", poses {settings.poses}" if settings.poses else "")
    )
    return summary
