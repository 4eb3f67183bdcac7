"""``kpose.load``: the pose estimator for any kpose model file.

>>> estimator = kpose.load("pose.tflite")        # or .onnx, or a trained .keras file
>>> people = estimator.estimate(image_bgr)       # list[Person], keypoints in image pixels

Exported files (``.tflite``, ``.onnx``) run on the device runtime (:mod:`kpose.runtime`) and
never import TensorFlow; a ``.keras`` file runs the exporter's serving graph in TensorFlow
(:mod:`kpose.export.keras_backend`) through the same estimator classes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kpose.errors import KposeError
from kpose.runtime.backends import open_backend
from kpose.runtime.select import Estimator, estimator_for

SUFFIXES = (".keras", ".tflite", ".onnx")


def load(path: str | Path, *, threads: int | None = None, **settings: Any) -> Estimator:
    """The estimator for a kpose model file.

    Args:
        path: a trained ``.keras`` model, or a ``.tflite`` / ``.onnx`` file written by
            ``kpose export``.
        threads: interpreter CPU threads for ``.tflite`` / ``.onnx`` files (None: the
            interpreter's default); a ``.keras`` model runs on TensorFlow's thread pools.
        settings: the estimator's settings (top-down: ``padding``; bottom-up:
            ``detection_threshold``, ``tag_threshold``, ``refine``, ``max_people``); for a
            ``.keras`` file also ``schema`` (a built-in name, a schema file or a
            :class:`~kpose.keypoints.KeypointSchema`; default: the built-in schema with the
            model's number of keypoints).

    Returns:
        A :class:`~kpose.runtime.PoseEstimator` (top-down: ``estimate(image_bgr, boxes=None)``,
        boxes ``(N, 4)`` (x, y, w, h) pixels, None for the whole image) or a
        :class:`~kpose.runtime.BottomUpEstimator` (``estimate(image_bgr)``); both return
        :class:`~kpose.runtime.Person` results, keypoints ``(K, 2)`` in image pixels.

    Raises:
        KposeError: naming ``path``: a suffix other than ``.keras`` / ``.tflite`` /
            ``.onnx``, a missing file, or a file that is not a kpose model.
    """
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise KposeError(f"{path}: not a kpose model file (expected {', '.join(SUFFIXES)})")
    if not path.is_file():
        raise KposeError(f"{path}: model file not found")
    if path.suffix.lower() == ".keras":
        from kpose.export.keras_backend import open_keras_backend

        backend = open_keras_backend(path, schema=settings.pop("schema", None))
    else:
        backend = open_backend(path, threads=threads)
    return estimator_for(backend, **settings)
