"""Evaluate an exported ``.tflite`` / ``.onnx`` file with the same protocol as a Keras model.

The file runs in the device runtime (:func:`kpose.runtime.backends.open_backend`, no
TensorFlow in the model path); crops come from the same evaluation pipeline, keypoints are
mapped back to the image by the same :func:`kpose.engine.predict.predict_dataset` and scored
by the same :func:`kpose.engine.evaluate.score_predictions`.

Flip test: an exported file either has it inside its graph (``kpose export --flip-test``,
recorded in its metadata) or not; the file is evaluated as it would run on a device, so the
flip test is whatever the file does. A bottom-up file (candidates and tags) is grouped by the
runtime and scored on whole images, as :func:`kpose.engine.bottomup.evaluate_bottomup_file`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from kpose.engine.config import DatasetConfig
from kpose.engine.datasets import read_split
from kpose.engine.evaluate import score_predictions
from kpose.engine.predict import predict_dataset
from kpose.errors import ConfigError
from kpose.geometry.crop_coordinates import keypoints_to_crop_pixels
from kpose.keypoints import KeypointSchema
from kpose.runtime.backends import Backend, open_backend
from kpose.runtime.bottomup import BottomUpEstimator, is_bottomup_file
from kpose.runtime.grouping import group_people

EXPORTED_SUFFIXES = (".tflite", ".onnx")


def exported_predict_step(backend: Backend):
    """A step like :func:`~kpose.engine.predict.make_predict_step`'s: uint8 crops
    ``(B, H, W, 3)`` -> ``coords (B, K, 2)`` crop pixels, ``scores (B, K)`` (as tensors)."""

    def step(images: np.ndarray) -> tuple[tf.Tensor, tf.Tensor]:
        out = backend.run(np.asarray(images, dtype=np.uint8))
        coords = keypoints_to_crop_pixels(out["keypoints"], backend.input_size)
        return tf.constant(coords), tf.constant(out["scores"])

    return step


def evaluate_exported_file(
    model_path: str | Path,
    dataset: DatasetConfig,
    schema: KeypointSchema,
    batch_size: int = 32,
    results_file: Path | None = None,
    threads: int | None = None,
) -> dict[str, float]:
    """Metrics of an exported file on one dataset split: a top-down file on its ground-truth
    or ``dataset.boxes`` crops, a bottom-up one on whole images."""
    from kpose.data.pipeline import make_topdown_dataset

    backend = open_backend(model_path, threads=threads)
    if backend.metadata.keypoint_schema.num_keypoints != schema.num_keypoints:
        raise ConfigError(
            f"{model_path} predicts {backend.metadata.keypoint_schema.num_keypoints} keypoints but schema "
            f"{schema.name!r} has {schema.num_keypoints}"
        )
    if is_bottomup_file(backend):
        return evaluate_exported_bottomup(backend, dataset, schema, batch_size, results_file)
    samples = read_split(dataset, schema, with_boxes=True)
    data = make_topdown_dataset(samples, schema, backend.input_size, batch_size, training=False)
    predictions = predict_dataset(exported_predict_step(backend), data, backend.input_size)
    return score_predictions(predictions, samples, schema, dataset.format, dataset.annotations, results_file)


def evaluate_exported_bottomup(
    backend: Backend,
    dataset: DatasetConfig,
    schema: KeypointSchema,
    batch_size: int = 32,
    results_file: Path | None = None,
) -> dict[str, float]:
    """COCO AP of an exported bottom-up file on ``dataset``'s whole images: the images Keras
    evaluation sees, candidates from the file, grouped by the runtime's
    :class:`~kpose.runtime.bottomup.BottomUpEstimator` settings."""
    from kpose.data.bottomup import MAX_PEOPLE, make_bottomup_dataset
    from kpose.engine.bottomup import coco_results, read_images, save_and_score

    estimator = BottomUpEstimator(backend)
    images = read_images(dataset, schema, MAX_PEOPLE)
    data = make_bottomup_dataset(images, schema, backend.input_size, batch_size, training=False)
    results = []
    for batch in data.as_numpy_iterator():
        for image, matrix, image_id in zip(batch["image"], batch["matrix"], batch["image_id"]):
            candidates = estimator.infer(np.asarray(image, np.uint8)[None])
            people, scores = group_people(candidates, **estimator.grouping)
            results += coco_results(people, scores, matrix, int(image_id))
    return save_and_score(results, dataset, schema, results_file)
