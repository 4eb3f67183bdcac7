"""Where person boxes come from: the whole frame, OpenCV's HOG people detector, or tracking.

Every source is a :class:`BoxSource`: :meth:`~BoxSource.boxes` gives the ``(N, 4)`` boxes
``(x, y, w, h)`` (image pixels, pixel centres at integers) to crop in a frame, and
:meth:`~BoxSource.update` receives the poses estimated in those boxes, in the same order, and
returns the people to report (a tracker drops lost ones and assigns track ids).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from kpose.errors import KposeError
from kpose.runtime.estimator import Person

DETECTORS = ("full", "hog", "track")

MIN_KEYPOINTS = 4  # confident keypoints a tracked person needs (Tracker's default)


class DetectorError(KposeError):
    """A person detector is not available in this installation."""


class BoxSource:
    """Person boxes for each frame; subclasses override :meth:`boxes` (and :meth:`update`)."""

    def boxes(self, image: np.ndarray) -> np.ndarray:
        """``(N, 4)`` float32 boxes ``(x, y, w, h)`` for ``image`` ``(H, W, 3)`` uint8 BGR."""
        raise NotImplementedError

    def update(self, people: list[Person]) -> list[Person]:
        """The poses found in this frame's boxes (same order) -> the people to report."""
        return people


def frame_box(image: np.ndarray) -> np.ndarray:
    """``(4,)`` the box whose edges are the image's outer pixel edges."""
    height, width = image.shape[:2]
    return np.array([-0.5, -0.5, width, height], np.float32)


class FullFrame(BoxSource):
    """The whole frame is one person's box (a single person filling the view); track id 0."""

    def boxes(self, image: np.ndarray) -> np.ndarray:
        return frame_box(image)[None]

    def update(self, people: list[Person]) -> list[Person]:
        for person in people:
            person.track_id = 0
        return people


def hog_descriptor_class() -> type:
    """``cv2.HOGDescriptor``, or :class:`DetectorError` saying which OpenCV has it."""
    hog = getattr(cv2, "HOGDescriptor", None)
    if hog is None:
        raise DetectorError(
            f"--detector hog: OpenCV {cv2.__version__} has no HOG people detector (OpenCV 5 moved it "
            "to the contrib modules); pip install 'opencv-python-headless<5' or "
            "opencv-contrib-python-headless, or use --detector full|track"
        )
    return hog


class HogDetector(BoxSource):
    """OpenCV's built-in HOG + linear SVM people detector (Dalal-Triggs, 64x128 window).

    Args:
        width: the frame is resized to this width before detection (pixels), trading recall
            of small people for speed; boxes come back in the frame's pixels.
        min_weight: SVM margin below which a detection is dropped.
    """

    def __init__(self, width: int = 480, min_weight: float = 0.3):
        hog = hog_descriptor_class()()
        hog.setSVMDetector(hog.getDefaultPeopleDetector())
        self._hog = hog
        self.width = width
        self.min_weight = min_weight

    def boxes(self, image: np.ndarray) -> np.ndarray:
        factor = min(1.0, self.width / image.shape[1])
        small = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA) if factor < 1 else image
        rects, weights = self._hog.detectMultiScale(small, winStride=(8, 8), padding=(8, 8), scale=1.05)
        if len(rects) == 0:
            return np.zeros((0, 4), np.float32)
        keep = np.asarray(weights, np.float32).reshape(-1) >= self.min_weight
        rects = np.asarray(rects, np.float32).reshape(-1, 4)[keep]
        # a rect covers pixels x..x+w-1 of the small image: outer edges at x - 0.5 there,
        # at x / factor - 0.5 in the frame
        return rects / factor - np.array([0.5, 0.5, 0.0, 0.0], np.float32)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N, M)`` intersection over union of ``(N, 4)`` and ``(M, 4)`` ``(x, y, w, h)`` boxes."""
    a = np.asarray(a, np.float32).reshape(-1, 1, 4)
    b = np.asarray(b, np.float32).reshape(1, -1, 4)
    x1, y1 = np.maximum(a[..., 0], b[..., 0]), np.maximum(a[..., 1], b[..., 1])
    x2 = np.minimum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2])
    y2 = np.minimum(a[..., 1] + a[..., 3], b[..., 1] + b[..., 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    return inter / np.maximum(union, 1e-6)


def is_confident(scores: np.ndarray, threshold: float, min_keypoints: int = MIN_KEYPOINTS) -> bool:
    """Whether a person has at least ``min_keypoints`` of its ``(K,)`` scores above ``threshold``
    (what a track needs to be kept)."""
    return int(np.count_nonzero(scores > threshold)) >= min_keypoints


def keypoint_box(
    keypoints: np.ndarray, scores: np.ndarray, threshold: float, min_keypoints: int, padding: float
) -> np.ndarray | None:
    """The box around a person's confident keypoints, or None if too few are confident.

    Args:
        keypoints: ``(K, 2)`` image pixels.
        scores: ``(K,)``; a keypoint counts if its score exceeds ``threshold``.
        min_keypoints: fewest confident keypoints that make a box.
        padding: factor on the keypoints' extent about its centre (a body reaches beyond its
            joints: head top, hands, feet, limb thickness).

    Returns:
        ``(4,)`` float32 ``(x, y, w, h)`` image pixels.
    """
    if not is_confident(scores, threshold, min_keypoints):
        return None
    confident = keypoints[scores > threshold]
    low, high = confident.min(axis=0), confident.max(axis=0)
    size = np.maximum(high - low, max(0.1 * float((high - low).max()), 1.0)) * padding
    return np.concatenate([(low + high) / 2 - size / 2, size]).astype(np.float32)


def same_keypoints(a: Person, b: Person, threshold: float, distance: float = 0.1) -> bool:
    """Whether two results are one person: most keypoints confident in both coincide.

    Keypoints coincide when closer than ``distance`` times the square root of the smaller
    box area (an OKS-like tolerance); "most" is more than half of those confident in both.
    Unlike box overlap, this keeps two people standing close apart.
    """
    both = (a.scores > threshold) & (b.scores > threshold)
    if not both.any():
        return False
    scale = np.sqrt(min(a.box[2] * a.box[3], b.box[2] * b.box[3]))
    near = np.linalg.norm(a.keypoints[both] - b.keypoints[both], axis=1) < distance * scale
    return bool(near.mean() > 0.5)


def clip_box(box: np.ndarray, frame: np.ndarray) -> np.ndarray | None:
    """``box`` cut to ``frame`` (both ``(x, y, w, h)``), or None if nothing of it is left."""
    low = np.maximum(box[:2], frame[:2])
    high = np.minimum(box[:2] + box[2:], frame[:2] + frame[2:])
    if (high - low < 1.0).any():
        return None
    return np.concatenate([low, high - low]).astype(np.float32)


@dataclass
class _Track:
    track_id: int
    box: np.ndarray


class Tracker(BoxSource):
    """Boxes from the previous frame's keypoints; a detector for new and lost people.

    Each frame, every live track proposes the box of its last confident keypoints. The
    detector runs on the first frame, every ``every`` frames, and on the frame after a track
    was lost; its boxes that overlap no track (IoU below ``iou_threshold``) are tried as new
    people. After estimation, a person with fewer than ``min_keypoints`` keypoints above
    ``threshold`` is dropped (lost track or false detection), and of two results that are
    the same person (:func:`same_keypoints`) the older track is kept.

    Args:
        detector: where new people come from (:class:`HogDetector`, :class:`FullFrame`, ...).
        every: frames between detector runs while no track is lost.
        threshold: keypoint score that counts as confident.
        min_keypoints: confident keypoints a person needs to be kept.
        padding: factor around the confident keypoints' extent (see :func:`keypoint_box`).
        iou_threshold: overlap with a track above which a detection is not a new person.
        max_people: most tracks kept (highest mean score first among new ones), None = any.
    """

    def __init__(
        self,
        detector: BoxSource,
        every: int = 30,
        threshold: float = 0.3,
        min_keypoints: int = MIN_KEYPOINTS,
        padding: float = 1.15,
        iou_threshold: float = 0.5,
        max_people: int | None = None,
    ):
        if every < 1:
            raise KposeError(f"tracker: every must be >= 1 frame, got {every}")
        self.detector = detector
        self.every = every
        self.threshold = threshold
        self.min_keypoints = min_keypoints
        self.padding = padding
        self.iou_threshold = iou_threshold
        self.max_people = max_people
        self._tracks: list[_Track] = []
        self._pending: list[int | None] = []
        self._since_detection = every
        self._lost = False
        self._next_id = 0
        self._frame = np.zeros(4, np.float32)

    def reset(self) -> None:
        """Forget all tracks (e.g. at a cut in the video)."""
        self._tracks, self._pending, self._since_detection, self._lost = [], [], self.every, False

    @property
    def detected_this_frame(self) -> bool:
        """Whether the last :meth:`boxes` call ran the detector."""
        return self._since_detection == 0

    def boxes(self, image: np.ndarray) -> np.ndarray:
        self._frame = frame_box(image)
        boxes = [track.box for track in self._tracks]
        self._pending = [track.track_id for track in self._tracks]
        if not self._tracks or self._lost or self._since_detection >= self.every:
            detections = self.detector.boxes(image)
            if len(detections) and boxes:
                detections = detections[box_iou(detections, np.stack(boxes)).max(axis=1) < self.iou_threshold]
            boxes += list(detections)
            self._pending += [None] * len(detections)
            self._since_detection, self._lost = 0, False
        else:
            self._since_detection += 1
        return np.stack(boxes).astype(np.float32) if boxes else np.zeros((0, 4), np.float32)

    def update(self, people: list[Person]) -> list[Person]:
        candidates = []
        for person, track_id in zip(people, self._pending):
            box = keypoint_box(person.keypoints, person.scores, self.threshold, self.min_keypoints, self.padding)
            if box is not None:
                box = clip_box(box, self._frame)
            if box is None:
                self._lost |= track_id is not None
                continue
            candidates.append((track_id, box, person))
        # existing tracks (oldest first), then new people by confidence
        candidates.sort(key=lambda c: (c[0] is None, c[0] if c[0] is not None else -c[2].score))
        kept: list[tuple[int | None, np.ndarray, Person]] = []
        for track_id, box, person in candidates:
            if any(same_keypoints(person, other, self.threshold) for _, _, other in kept):
                self._lost |= track_id is not None  # two tracks on one person: re-detect
                continue
            if self.max_people is not None and len(kept) >= self.max_people:
                break
            kept.append((track_id, box, person))
        self._tracks = []
        for track_id, box, person in kept:
            if track_id is None:
                track_id, self._next_id = self._next_id, self._next_id + 1
            person.track_id = track_id
            self._tracks.append(_Track(track_id, box))
        return [person for _, _, person in kept]
