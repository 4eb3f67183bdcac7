"""``kpose bench demo``: end-to-end frames per second of the demo pipeline on a video.

Synthetic people (:mod:`kpose.data.figures`) walk across a 640x480 video (1 and 3 people);
each detector mode runs the :class:`~kpose.runtime.PosePipeline` the demo runs over it —
decode, boxes, crops, inference, mapping back, smoothing, drawing and the overlay; writing
the output video is not counted. Per mode: people found per frame (results with at least
:data:`~kpose.runtime.boxes.MIN_KEYPOINTS` (4) keypoints above ``--threshold``, what a
tracker keeps: a box always yields a result, confident or not), frames per second, and the
mean milliseconds per frame of each stage. No TensorFlow: it runs on a device install.

Modes: ``full`` (the whole frame is one box), ``hog`` (OpenCV's HOG detector on every frame;
needs an OpenCV that has it), ``track+full`` / ``track+hog`` (keypoint tracking, the detector
every 30 frames), and ``track+seed``: tracking seeded with the true boxes of the first frame,
which times tracking of every person without depending on a detector's recall.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from kpose.data.figures import Figure, figure_model
from kpose.data.synthetic import _annotate, _paint_figure, joint_colors
from kpose.keypoints import get_schema
from kpose.runtime.boxes import (
    BoxSource,
    DetectorError,
    FullFrame,
    HogDetector,
    Tracker,
    hog_descriptor_class,
    is_confident,
)
from kpose.runtime.drawing import draw_overlay
from kpose.runtime.estimator import PoseEstimator
from kpose.runtime.pipeline import STAGES, PosePipeline
from kpose.runtime.smoothing import KeypointSmoother
from kpose.runtime.video import VideoSource

MODES = ("full", "hog", "track+full", "track+hog", "track+seed")
WARMUP_FRAMES = 5


@dataclasses.dataclass
class VideoTruth:
    """A rendered video and its truth: ``keypoints (F, P, K, 3)`` (x, y, v) as COCO,
    ``boxes (F, P, 4)`` (x, y, w, h) of each figure's visible pixels, image pixels."""

    path: Path
    keypoints: np.ndarray
    boxes: np.ndarray
    fps: float


def _shifted(figure: Figure, offset: np.ndarray) -> Figure:
    parts = [dataclasses.replace(p, points=p.points + offset) for p in figure.parts]
    return dataclasses.replace(figure, keypoints=figure.keypoints + offset, parts=parts)


def write_people_video(
    path: Path,
    people: int = 1,
    frames: int = 30,
    size: tuple[int, int] = (480, 640),
    fps: float = 30.0,
    seed: int = 0,
    tall: float = 0.62,
) -> VideoTruth:
    """An mp4 (mp4v) of ``people`` synthetic COCO figures moving on a plain background.

    Figures keep their pose, side by side, and sway sideways and up and down on a 2-second
    cycle (up to about 200 px/s); ``tall`` is their standing height over the frame height
    (``size`` is (H, W) pixels). Keypoint markers are the synthetic set's coloured discs.
    """
    schema = get_schema("coco")
    model = figure_model(schema)
    colors = joint_colors(schema.num_keypoints)
    height, width = size
    rng = np.random.default_rng(seed)
    slot = width / people
    figures = [model.sample(rng, tall * height, np.array([(i + 0.5) * slot, 0.52 * height])) for i in range(people)]
    background = np.linspace(70, 150, width, dtype=np.float32)[None, :, None].repeat(height, 0).repeat(3, 2)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    stride = schema.num_keypoints + 1
    keypoints, boxes = [], []
    for f in range(frames):
        image = background.astype(np.uint8)
        labels = np.zeros((height, width), np.uint16)
        moved = []
        for i, figure in enumerate(figures):
            phase = 2 * np.pi * f / (2 * fps) + i
            offset = np.array([0.1 * slot * np.sin(phase), 0.04 * height * np.sin(2 * phase)])
            moved.append(_shifted(figure, offset))
            _paint_figure(image, labels, moved[-1], 1 + i * stride, colors, np.random.default_rng(i))
        annotations = [_annotate(fig, labels, 1 + i * stride) for i, fig in enumerate(moved)]
        keypoints.append([np.reshape(a["keypoints"], (-1, 3)) for a in annotations])
        boxes.append([a["bbox"] for a in annotations])
        writer.write(image)
    writer.release()
    return VideoTruth(path, np.array(keypoints, np.float32), np.array(boxes, np.float32), fps)


class FirstFrameBoxes(BoxSource):
    """Known boxes on the first call, nothing after: seeds a tracker without a detector."""

    def __init__(self, boxes: np.ndarray):
        self._boxes, self.calls = np.asarray(boxes, np.float32), 0

    def boxes(self, image: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self._boxes if self.calls == 1 else np.zeros((0, 4), np.float32)


def make_mode(mode: str, first_boxes: np.ndarray, threshold: float = 0.3) -> BoxSource:
    """The box source of a benchmark mode (see the module docstring); ``threshold`` is the
    keypoint score that keeps a track alive."""
    if mode == "full":
        return FullFrame()
    if mode == "hog":
        return HogDetector()
    detector = {"track+full": FullFrame, "track+hog": HogDetector}.get(mode)
    return Tracker(detector() if detector else FirstFrameBoxes(first_boxes), threshold=threshold)


def measure(pipeline: PosePipeline, video: Path, threshold: float) -> dict:
    """Run every frame of ``video`` through ``pipeline`` with the demo's overlay.

    Returns:
        ``{"frames", "people", "fps", "ms": {stage: mean ms}}`` over the frames after a warm-up;
        ``people``: results per frame that are confident (:func:`~kpose.runtime.boxes.is_confident`);
        stages are ``decode``, the pipeline's, and ``overlay``.
    """
    rows, people = [], []
    with VideoSource(video) as source:
        fps, index = 0.0, 0
        while True:
            start = time.perf_counter()
            frame = source.read()
            if frame is None:
                break
            decode = (time.perf_counter() - start) * 1e3
            result = pipeline(frame, index / source.fps)
            mark = time.perf_counter()
            draw_overlay(result.image, fps, {"decode": decode, **result.timings_ms})
            overlay = (time.perf_counter() - mark) * 1e3
            total = (time.perf_counter() - start) * 1e3
            fps = 1e3 / total
            if index >= WARMUP_FRAMES:
                rows.append({"decode": decode, **result.timings_ms, "overlay": overlay, "total": total})
                people.append(sum(is_confident(p.scores, threshold) for p in result.people))
            index += 1
    mean = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
    return {
        "frames": len(rows),
        "people": float(np.mean(people)),
        "fps": 1e3 / mean.pop("total"),
        "ms": mean,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, help="exported .tflite/.onnx (default: the quickstart's, as kpose demo)")
    parser.add_argument("--frames", type=int, default=150, help="frames per video (default 150)")
    parser.add_argument("--people", type=int, nargs="+", default=(1, 3), help="people in the video (default 1 3)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=MODES, help="detector modes (default: all)")
    parser.add_argument("--threads", type=int, help="interpreter threads (default: the interpreter's choice)")
    parser.add_argument("--no-smooth", action="store_true", help="time without One-Euro smoothing")
    parser.add_argument(
        "--threshold", type=float, default=0.3,
        help="keypoint score that keeps a track alive (0 keeps every track: times an untrained model)",
    )


def _header() -> str:
    stages = " ".join(f"{s:>6}" for s in ("decode", *STAGES, "overlay"))
    return f"| people | mode       | found | fps   | {stages} |"


def _row(people: int, mode: str, r: dict) -> str:
    stages = " ".join(f"{r['ms'][s]:6.2f}" for s in ("decode", *STAGES, "overlay"))
    return f"| {people:6d} | {mode:<10} | {r['people']:5.2f} | {r['fps']:5.1f} | {stages} |"


def run(args: argparse.Namespace) -> int:
    from kpose.api import quickstart_model

    model = args.model or quickstart_model()
    estimator = PoseEstimator(model, threads=args.threads)
    try:
        hog_descriptor_class()
        modes = list(args.modes)
    except DetectorError as exc:  # say it once, skip the HOG modes
        modes = [m for m in args.modes if "hog" not in m]
        print(f"(skipping HOG modes: {exc})")
    meta = estimator.metadata
    results = []
    if not args.json:
        print(
            f"kpose bench demo: {model} ({estimator.backend.interpreter}, {meta.quantization}, input "
            f"{meta.input_size[0]}x{meta.input_size[1]}, threads {args.threads or 'default'}), "
            f"640x480 video, {args.frames} frames, mean ms per frame after {WARMUP_FRAMES} warm-up frames"
        )
        print(_header())
        print("|" + "|".join("-" * (len(c)) for c in _header().split("|")[1:-1]) + "|")
    with tempfile.TemporaryDirectory() as tmp:
        for people in args.people:
            truth = write_people_video(Path(tmp) / f"people{people}.mp4", people, args.frames, seed=people)
            for mode in modes:
                pipeline = PosePipeline(
                    estimator,
                    make_mode(mode, truth.boxes[0], args.threshold),
                    None if args.no_smooth else KeypointSmoother(),
                    draw_boxes=mode != "full",
                )
                result = {"people_in_video": people, "mode": mode, **measure(pipeline, truth.path, args.threshold)}
                results.append(result)
                if not args.json:
                    print(_row(people, mode, result), flush=True)
    if args.json:
        print(json.dumps({"model": str(model), "interpreter": estimator.backend.interpreter, "results": results}, indent=2))
    return 0
