"""``kpose.load``: the pose estimator for any kpose model file (and the quickstart's model as
an exported file, :func:`quickstart_model`).

>>> estimator = kpose.load("pose.tflite")        # or .onnx, or a trained .keras file
>>> people = estimator.estimate(image_bgr)       # list[Person], keypoints in image pixels

Exported files (``.tflite``, ``.onnx``) run on the device runtime (:mod:`kpose.runtime`) and
never import TensorFlow; a ``.keras`` file runs the exporter's serving graph in TensorFlow
(:mod:`kpose.tasks.keras_backend`) through the same estimator classes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kpose.errors import KposeError
from kpose.runtime.backends import open_backend
from kpose.runtime.select import Estimator, estimator_for

SUFFIXES = (".keras", ".tflite", ".onnx")
# Where ``kpose quickstart`` writes, and the file ``kpose demo`` exports its model to.
QUICKSTART_DIR = Path("runs/quickstart")
QUICKSTART_EXPORT = "best_int8.tflite"


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
        from kpose.tasks.keras_backend import open_keras_backend

        backend = open_keras_backend(path, schema=settings.pop("schema", None))
    else:
        backend = open_backend(path, threads=threads)
    return estimator_for(backend, **settings)


def quickstart_model(run_dir: Path = QUICKSTART_DIR, log=print) -> Path:
    """The quickstart's model as an int8 TFLite file, exporting ``best.keras`` if needed.

    Raises:
        KposeError: no quickstart model, or it needs exporting and TensorFlow is missing.
    """
    keras_file, exported = run_dir / "best.keras", run_dir / QUICKSTART_EXPORT
    if exported.is_file() and (not keras_file.is_file() or exported.stat().st_mtime >= keras_file.stat().st_mtime):
        return exported
    if not keras_file.is_file():
        raise KposeError(
            f"--model not given and no quickstart model at {keras_file}: run `kpose quickstart` "
            "or pass --model FILE.tflite|FILE.onnx"
        )
    try:
        from kpose.tasks import export_model
    except ImportError as exc:
        raise KposeError(
            f"--model not given: {keras_file} must be exported first, which needs TensorFlow ({exc}); "
            f"run `kpose export` where it is installed, or pass --model FILE.tflite|FILE.onnx"
        ) from exc
    log(f"kpose demo: exporting {keras_file} to {exported} (int8, once; reused while newer)")
    calibration = run_dir / "config.yaml"  # the quickstart's training config: its data calibrates
    return Path(export_model(keras_file, exported, format="tflite", quantize="int8", calibration=calibration))
