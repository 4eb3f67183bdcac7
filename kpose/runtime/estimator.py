"""Top-down pose estimation on whole images with an exported model; numpy and OpenCV only.

:class:`PoseEstimator` opens a ``.tflite`` / ``.onnx`` file (:func:`open_backend`), and
:meth:`PoseEstimator.estimate` turns a BGR image and person boxes into :class:`Person`
results in image pixels. The three stages (:meth:`~PoseEstimator.crop`,
:meth:`~PoseEstimator.infer`, :meth:`~PoseEstimator.to_image`) are public so a pipeline can
time each of them with the code that :meth:`~PoseEstimator.estimate` runs.

Coordinates: image pixels, pixel centres at integers (see :mod:`kpose.geometry.affine`);
boxes ``(x, y, w, h)`` in the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from kpose.errors import KposeError
from kpose.geometry import warp_crop
from kpose.geometry.affine import (
    DEFAULT_PADDING,
    box_to_center_scale,
    crop_matrix,
    invert_affine,
    transform_points,
)
from kpose.geometry.crop_coordinates import keypoints_to_crop_pixels
from kpose.keypoints import KeypointSchema
from kpose.runtime.backends import Backend, open_backend

MAX_PYRAMID_LEVEL = 3


def _upsample_matrix(level: int) -> np.ndarray:
    """``(3, 3)`` map from pixels of pyramid level ``level`` to pixels of the image."""
    factor = 2.0**level
    return np.array([[factor, 0, (factor - 1) / 2], [0, factor, (factor - 1) / 2], [0, 0, 1]])


class ImageError(KposeError):
    """An image or box array handed to the runtime has the wrong type or shape."""


@dataclass
class Person:
    """One person's pose in an image.

    Attributes:
        keypoints: ``(K, 2)`` float32 (x, y), image pixels.
        scores: ``(K,)`` float32 keypoint confidences from the model.
        box: ``(4,)`` float32 ``(x, y, w, h)`` image pixels: the box the crop was cut from.
        track_id: identity across frames when a tracker assigned one, else None.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    box: np.ndarray
    track_id: int | None = None

    @property
    def score(self) -> float:
        """Mean keypoint score."""
        return float(np.mean(self.scores)) if len(self.scores) else 0.0

    def to_json(self) -> dict:
        """``{"box": [x, y, w, h], "keypoints": [[x, y, score], ...], "track_id": id}``."""
        rows = np.concatenate([self.keypoints, self.scores[:, None]], axis=1)
        return {
            "box": [round(float(v), 2) for v in self.box],
            "keypoints": [[round(float(x), 2), round(float(y), 2), round(float(s), 4)] for x, y, s in rows],
            "track_id": self.track_id,
        }


def check_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """``image`` as a ``(H, W, 3)`` uint8 array, or :class:`ImageError` naming ``name``."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"{name}: expected a numpy array (H, W, 3) uint8 BGR, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ImageError(f"{name}: expected dtype uint8 (BGR, 0..255), got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        raise ImageError(f"{name}: expected shape (H, W, 3) (BGR, 3 channels), got {image.shape}")
    return image


def check_boxes(boxes: np.ndarray | list, name: str = "boxes") -> np.ndarray:
    """``boxes`` as ``(N, 4)`` float32 ``(x, y, w, h)`` with positive sizes, or :class:`ImageError`."""
    boxes = np.asarray(boxes, dtype=np.float32)
    if boxes.size == 0:
        return np.zeros((0, 4), np.float32)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ImageError(f"{name}: expected (N, 4) boxes (x, y, w, h) in pixels, got shape {boxes.shape}")
    if not np.isfinite(boxes).all() or (boxes[:, 2:] <= 0).any():
        raise ImageError(f"{name}: boxes need finite values and positive width and height")
    return boxes


class PoseEstimator:
    """An exported pose model applied to person boxes in whole images.

    Args:
        model: a ``.tflite`` or ``.onnx`` file written by ``kpose export``, or an opened
            :class:`Backend`.
        threads: interpreter CPU threads (None: the interpreter's default).
        padding: factor around each box, after fixing its aspect ratio to the crop's (as in
            training).
    """

    def __init__(self, model: str | Path | Backend, threads: int | None = None, padding: float = DEFAULT_PADDING):
        self.backend = model if isinstance(model, Backend) else open_backend(model, threads=threads)
        self.metadata = self.backend.metadata
        self.schema: KeypointSchema = self.metadata.keypoint_schema
        self.padding = padding

    @property
    def input_size(self) -> tuple[int, int]:
        """(H, W) of the model's crop, pixels."""
        return self.backend.input_size

    def crop(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cut one RGB crop per box, anti-aliased.

        A crop that shrinks the image by 2x or more is warped from a level of the image's
        Gaussian pyramid (``cv2.pyrDown``) instead, so thin limbs and small details do not
        alias away as they do with a plain bilinear warp.

        Args:
            image: ``(H, W, 3)`` uint8 BGR.
            boxes: ``(N, 4)`` ``(x, y, w, h)`` image pixels.

        Returns:
            ``crops (N, h, w, 3)`` uint8 RGB at :attr:`input_size`, and ``matrices (N, 2, 3)``
            mapping image pixels to crop pixels.
        """
        height, width = self.input_size
        center, scale = box_to_center_scale(boxes, width / height, self.padding)
        matrices = crop_matrix(center, scale, (height, width))
        levels = np.clip(np.floor(np.log2(scale[:, 0] / width)), 0, MAX_PYRAMID_LEVEL).astype(int)
        pyramid = [image]
        crops = np.empty((len(boxes), height, width, 3), np.uint8)
        for i, (matrix, level) in enumerate(zip(matrices, levels)):
            while len(pyramid) <= level:
                pyramid.append(cv2.pyrDown(pyramid[-1]))
            crop = warp_crop(pyramid[level], matrix @ _upsample_matrix(level), (height, width))
            crops[i] = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
        return crops, matrices

    def infer(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the model on ``(N, h, w, 3)`` uint8 RGB crops, batched as the file allows.

        Returns:
            ``keypoints (N, K, 2)`` crop pixels and ``scores (N, K)``.
        """
        out = self.backend.run(crops)
        return keypoints_to_crop_pixels(out["keypoints"], self.input_size), np.asarray(out["scores"], np.float32)

    @staticmethod
    def to_image(keypoints: np.ndarray, matrices: np.ndarray) -> np.ndarray:
        """``(N, K, 2)`` crop pixels -> image pixels through the inverse crop matrices."""
        if len(keypoints) == 0:
            return np.zeros(keypoints.shape, np.float32)
        return transform_points(keypoints, invert_affine(matrices)).astype(np.float32)

    def estimate(self, image_bgr: np.ndarray, boxes: np.ndarray | list | None = None) -> list[Person]:
        """Poses of the people in ``boxes``.

        Args:
            image_bgr: ``(H, W, 3)`` uint8 BGR (OpenCV's order).
            boxes: ``(N, 4)`` ``(x, y, w, h)`` image pixels; None takes the whole image as
                one person's box.

        Returns:
            One :class:`Person` per box, in order; keypoints in image pixels.
        """
        image = check_image(image_bgr, "image_bgr")
        if boxes is None:
            boxes = np.array([[-0.5, -0.5, image.shape[1], image.shape[0]]], np.float32)
        boxes = check_boxes(boxes)
        if len(boxes) == 0:
            return []
        crops, matrices = self.crop(image, boxes)
        keypoints, scores = self.infer(crops)
        keypoints = self.to_image(keypoints, matrices)
        return [Person(k, s, b) for k, s, b in zip(keypoints, scores, boxes)]
