"""Evaluate a Keras pose model on a dataset with the papers' protocol.

COCO / CrowdPose: predictions (flip test, decoder) mapped to the image, rescored by box score
x mean keypoint score, OKS-NMS, then pycocotools. MPII: PCKh@0.5. With ground-truth boxes
the PCK@0.1 of the longer box side is reported too (each prediction belongs to one person).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kpose.data.samples import PersonSamples
from kpose.engine.predict import Predictions, make_predict_step, predict_dataset
from kpose.evaluation import (
    TopDownResults,
    evaluate_coco,
    evaluate_crowdpose,
    pck,
    pckh,
)
from kpose.keypoints import KeypointSchema


def score_predictions(
    predictions: Predictions,
    samples: PersonSamples,
    schema: KeypointSchema,
    protocol: str,
    annotations: str | Path,
    results_file: Path | None = None,
) -> dict[str, float]:
    """Metrics of ``predictions`` for the rows of ``samples`` they were made from. Keypoints
    that are not finite (a model with NaN weights) score NaN: the main metric is NaN, and no
    results file is written.

    Args:
        protocol: ``coco``, ``crowdpose`` or ``mpii``.
        annotations: the ground-truth file (COCO-format for AP).
        results_file: where to write the COCO results JSON (AP protocols), if given.
    """
    metrics: dict[str, float] = {}
    rows = predictions.sample_index
    if samples.visibility[rows].any():  # ground-truth boxes: each prediction is one annotated person
        sizes = samples.boxes[rows, 2:].max(axis=1)
        metrics["PCK@0.1"] = pck(
            predictions.keypoints, samples.keypoints[rows], samples.visibility[rows], sizes, 0.1
        )
    if not np.isfinite(predictions.keypoints).all():
        return {**metrics, main_metric(protocol): math.nan}
    if protocol == "mpii":
        result = pckh(
            predictions.keypoints, samples.keypoints[rows], samples.visibility[rows], samples.head_boxes[rows],
            source=samples.source,
        )
        metrics.update({"PCKh": result.groups["Mean"], "PCKh@0.1": result.groups["Mean@0.1"]})
        return metrics
    collected = TopDownResults(schema)
    collected.add(
        predictions.image_ids, predictions.keypoints, predictions.scores, predictions.box_scores, predictions.areas
    )
    if results_file is not None:
        collected.write_results(results_file)
    evaluate = evaluate_crowdpose if protocol == "crowdpose" else evaluate_coco
    metrics.update(evaluate(collected.results(), annotations, schema))
    return metrics


def evaluate_model(
    model: keras.Model,
    dataset: tf.data.Dataset,
    samples: PersonSamples,
    schema: KeypointSchema,
    protocol: str,
    annotations: str | Path,
    results_file: Path | None = None,
    **step_options: Any,
) -> dict[str, float]:
    """Predict over ``dataset`` (made from ``samples`` with ``training=False``) and score.

    ``step_options`` go to :func:`~kpose.engine.predict.make_predict_step` (``flip_test``,
    ``decoder``, ``kernel``, ``sigma_at_stride_4``).
    """
    step = make_predict_step(model, schema, **step_options)
    predictions = predict_dataset(step, dataset, tuple(model.input.shape[1:3]))
    return score_predictions(predictions, samples, schema, protocol, annotations, results_file)


def main_metric(protocol: str) -> str:
    """The number that picks the best checkpoint: AP, or PCKh for MPII."""
    return "PCKh" if protocol == "mpii" else "AP"
