"""The top-down pipeline on one frame, stage by stage, each stage timed.

boxes (:mod:`~kpose.runtime.boxes`) -> crops -> backend -> map back to the image ->
smoothing (:mod:`~kpose.runtime.smoothing`) -> drawing (:mod:`~kpose.runtime.drawing`).
``kpose demo`` and ``kpose bench demo`` both run frames through :class:`PosePipeline`, so the
benchmark times the code the demo runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kpose.runtime.boxes import BoxSource
from kpose.runtime.clock import StageClock
from kpose.runtime.drawing import draw_people
from kpose.runtime.estimator import Person, PoseEstimator, check_boxes, check_image
from kpose.runtime.smoothing import KeypointSmoother

STAGES = ("boxes", "crop", "infer", "map", "smooth", "draw")


@dataclass
class FrameResult:
    """What the pipeline made of one frame.

    Attributes:
        people: the people found, keypoints in frame pixels.
        image: the frame with the people drawn (``(H, W, 3)`` uint8 BGR), or None if drawing
            is off.
        timings_ms: stage name (:data:`STAGES`) -> milliseconds spent on this frame.
    """

    people: list[Person]
    image: np.ndarray | None
    timings_ms: dict[str, float] = field(default_factory=dict)


class PosePipeline:
    """Boxes, crops, inference, mapping back, smoothing and drawing for one frame at a time.

    Args:
        estimator: the model.
        box_source: where person boxes come from; it sees the results of its boxes.
        smoother: optional keypoint smoothing over time (needs track ids).
        threshold: keypoint score above which a keypoint is drawn.
        draw: draw the people on a copy of each frame.
        draw_boxes: also draw crop boxes and track ids.
    """

    def __init__(
        self,
        estimator: PoseEstimator,
        box_source: BoxSource,
        smoother: KeypointSmoother | None = None,
        threshold: float = 0.3,
        draw: bool = True,
        draw_boxes: bool = False,
    ):
        self.estimator = estimator
        self.box_source = box_source
        self.smoother = smoother
        self.threshold = threshold
        self.draw = draw
        self.draw_boxes = draw_boxes

    def __call__(self, frame: np.ndarray, time_s: float) -> FrameResult:
        """Run one ``(H, W, 3)`` uint8 BGR frame taken at ``time_s`` seconds."""
        frame = check_image(frame, "frame")
        clock = StageClock()
        boxes = check_boxes(self.box_source.boxes(frame), "person boxes")
        clock.lap("boxes")
        crops, matrices = self.estimator.crop(frame, boxes)
        clock.lap("crop")
        if len(boxes):
            keypoints, scores = self.estimator.infer(crops)
        else:  # nobody: skip the interpreter
            num_keypoints = self.estimator.schema.num_keypoints
            keypoints, scores = np.zeros((0, num_keypoints, 2), np.float32), np.zeros((0, num_keypoints), np.float32)
        clock.lap("infer")
        keypoints = self.estimator.to_image(keypoints, matrices)
        people = self.box_source.update([Person(k, s, b) for k, s, b in zip(keypoints, scores, boxes)])
        clock.lap("map")
        if self.smoother is not None:
            people = self.smoother(people, time_s)
        clock.lap("smooth")
        image = None
        if self.draw:
            image = draw_people(frame.copy(), people, self.estimator.schema, self.threshold, self.draw_boxes)
        clock.lap("draw")
        return FrameResult(people, image, clock.laps)
