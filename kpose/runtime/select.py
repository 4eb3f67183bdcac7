"""The estimator an opened model needs, chosen by its metadata (numpy only)."""

from __future__ import annotations

from typing import Any

from kpose.metadata import BOTTOMUP
from kpose.runtime.backends import Backend
from kpose.runtime.bottomup import BottomUpEstimator
from kpose.runtime.estimator import PoseEstimator

Estimator = PoseEstimator | BottomUpEstimator


def estimator_for(backend: Backend, **settings: Any) -> Estimator:
    """:class:`~kpose.runtime.BottomUpEstimator` for a bottom-up model
    (``backend.metadata.task``), else :class:`~kpose.runtime.PoseEstimator`.

    Args:
        backend: the opened model (a ``.tflite`` / ``.onnx`` file, or a ``.keras`` model behind
            :mod:`kpose.tasks.keras_backend`).
        settings: keyword arguments of that estimator's class (top-down: ``padding``;
            bottom-up: ``detection_threshold``, ``tag_threshold``, ``refine``, ``max_people``).
    """
    if backend.metadata.task == BOTTOMUP:
        return BottomUpEstimator(backend, **settings)
    return PoseEstimator(backend, **settings)
