"""Bottom-up pose estimation with an exported model: every person of a frame, no detector.

An exported bottom-up file (:mod:`kpose.tasks.bottomup`, ``ModelMetadata.task ==
"bottomup"``) takes the whole frame, resized and padded to its input size, and returns
keypoint candidates with their scores and tags; the associative-embedding codec
(:class:`~kpose.codecs.associative_embedding.AssociativeEmbeddingCodec`) groups them into
people here.
:class:`BottomUpPipeline` is :class:`~kpose.runtime.pipeline.PosePipeline`'s counterpart
(same :class:`~kpose.runtime.pipeline.FrameResult`, stages timed), so ``kpose demo`` runs
either. numpy and OpenCV only.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from kpose.codecs.associative_embedding import (
    DETECTION_THRESHOLD,
    TAG_THRESHOLD,
    AssociativeEmbeddingCodec,
    Candidates,
)
from kpose.codecs.heatmap import HeatmapCodec
from kpose.errors import KposeError
from kpose.geometry import warp_crop
from kpose.geometry.affine import (
    box_to_center_scale,
    crop_matrix,
    invert_affine,
    transform_points,
)
from kpose.geometry.crop_coordinates import keypoints_to_crop_pixels
from kpose.keypoints import KeypointSchema
from kpose.metadata import BOTTOMUP
from kpose.runtime.backends import Backend, open_backend
from kpose.runtime.boxes import box_iou
from kpose.runtime.clock import StageClock
from kpose.runtime.drawing import draw_people
from kpose.runtime.estimator import Person, check_image
from kpose.runtime.pipeline import FrameResult
from kpose.runtime.smoothing import KeypointSmoother


class BottomUpEstimator:
    """An exported bottom-up model applied to whole images.

    Args:
        model: a bottom-up ``.tflite`` / ``.onnx`` file written by ``kpose export``, or an
            opened :class:`Backend`.
        threads: interpreter CPU threads (None: the interpreter's default).
        detection_threshold, tag_threshold, refine, max_people: grouping settings
            (:func:`kpose.codecs.associative_embedding.group_people`).

    Raises:
        KposeError: the file is a top-down model.
    """

    def __init__(
        self,
        model: str | Path | Backend,
        threads: int | None = None,
        detection_threshold: float = DETECTION_THRESHOLD,
        tag_threshold: float = TAG_THRESHOLD,
        refine: bool = True,
        max_people: int | None = None,
    ):
        self.backend = model if isinstance(model, Backend) else open_backend(model, threads=threads)
        if self.backend.metadata.task != BOTTOMUP:
            raise KposeError(
                f"{model}: a top-down model (outputs {list(self.backend.metadata.outputs)}); "
                "bottom-up estimation needs a file exported from an ae_* / srhead_ae_* model"
            )
        self.metadata = self.backend.metadata
        self.schema: KeypointSchema = self.metadata.keypoint_schema
        input_h, input_w = self.metadata.input_size
        self.codec = AssociativeEmbeddingCodec(
            HeatmapCodec.for_heatmap((input_h, input_w), self.metadata.heatmap_size[0]),
            top_k=int(self.metadata.decoder["top_k"]), detection_threshold=detection_threshold,
            tag_threshold=tag_threshold, refine=refine, max_people=max_people,
        )

    @property
    def input_size(self) -> tuple[int, int]:
        """(H, W) of the model's input, pixels."""
        return self.backend.input_size

    def prepare(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The frame resized and padded to the input (as in training).

        Returns:
            ``(1, H, W, 3)`` uint8 RGB and the ``(2, 3)`` matrix from frame to input pixels.
        """
        height, width = self.input_size
        frame_h, frame_w = image_bgr.shape[:2]
        whole = np.array([[-0.5, -0.5, frame_w, frame_h]], np.float32)
        center, scale = box_to_center_scale(whole, width / height, 1.0)
        matrix = crop_matrix(center, scale, (height, width))[0]
        rgb = cv2.cvtColor(warp_crop(image_bgr, matrix, (height, width)), cv2.COLOR_BGR2RGB)
        return rgb[None], matrix

    def infer(self, batch: np.ndarray) -> Candidates:
        """Run the model on one ``(1, H, W, 3)`` uint8 RGB input; candidates in input pixels."""
        out = self.backend.run(batch)
        coords = keypoints_to_crop_pixels(out["candidates"][0], self.input_size)
        return Candidates(coords, np.asarray(out["candidate_scores"][0], np.float32),
                          np.asarray(out["candidate_tags"][0], np.float32)[..., None])

    def group(self, candidates: Candidates, matrix: np.ndarray) -> list[Person]:
        """People from candidates, keypoints mapped to frame pixels; each person's box is the
        box of its keypoints."""
        people, _ = self.codec.group(candidates)
        if not len(people):
            return []
        keypoints = transform_points(people[..., :2].astype(np.float64), invert_affine(matrix)).astype(np.float32)
        lo, hi = keypoints.min(axis=1), keypoints.max(axis=1)
        boxes = np.concatenate([lo, np.maximum(hi - lo, 1.0)], axis=1)
        return [Person(k, p[:, 2].copy(), b) for k, p, b in zip(keypoints, people, boxes)]

    def estimate(self, image_bgr: np.ndarray) -> list[Person]:
        """Every person in a ``(H, W, 3)`` uint8 BGR image, best first."""
        batch, matrix = self.prepare(check_image(image_bgr, "image_bgr"))
        return self.group(self.infer(batch), matrix)


class BottomUpPipeline:
    """One frame through a bottom-up model: prepare, infer, group and map, track (for
    smoothing), smooth, draw; stages timed as :data:`kpose.runtime.pipeline.STAGES` names them
    (``boxes`` is the tracker, ``map`` the grouping).

    Args:
        estimator: the model.
        smoother: optional keypoint smoothing over time (needs track ids: each person takes
            the id of the previous frame's person whose box overlaps it most, IoU above
            ``iou_threshold``, greedily; others get new ids).
        threshold: keypoint score above which a keypoint is drawn.
        draw: draw the people on a copy of each frame.
    """

    def __init__(
        self,
        estimator: BottomUpEstimator,
        smoother: KeypointSmoother | None = None,
        threshold: float = 0.3,
        draw: bool = True,
        iou_threshold: float = 0.3,
    ):
        self.estimator = estimator
        self.smoother = smoother
        self.threshold = threshold
        self.draw = draw
        self.iou_threshold = iou_threshold
        self._previous: list[Person] = []
        self._next_id = 0

    def track(self, people: list[Person]) -> list[Person]:
        """Give each person a track id, following the previous frame's people by box IoU."""
        free = list(self._previous)
        if people and free:
            iou = box_iou(np.stack([p.box for p in people]), np.stack([p.box for p in free]))
            for flat in np.argsort(-iou, axis=None, kind="stable"):
                i, j = divmod(int(flat), len(free))
                if iou[i, j] < self.iou_threshold:
                    break
                if people[i].track_id is None and free[j] is not None:
                    people[i].track_id, free[j] = free[j].track_id, None
        for person in people:
            if person.track_id is None:
                person.track_id, self._next_id = self._next_id, self._next_id + 1
        self._previous = people
        return people

    def __call__(self, frame: np.ndarray, time_s: float) -> FrameResult:
        """Run one ``(H, W, 3)`` uint8 BGR frame taken at ``time_s`` seconds."""
        frame = check_image(frame, "frame")
        clock = StageClock()
        batch, matrix = self.estimator.prepare(frame)
        clock.lap("crop")
        candidates = self.estimator.infer(batch)
        clock.lap("infer")
        people = self.estimator.group(candidates, matrix)
        clock.lap("map")
        people = self.track(people)
        clock.lap("boxes")
        if self.smoother is not None:
            people = self.smoother(people, time_s)
        clock.lap("smooth")
        image = None
        if self.draw:
            image = draw_people(frame.copy(), people, self.estimator.schema, self.threshold, False)
        clock.lap("draw")
        return FrameResult(people, image, clock.laps)
