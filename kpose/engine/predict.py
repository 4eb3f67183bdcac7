"""Top-down prediction over a dataset: crops in, keypoints in image pixels out.

The graph part (network, flip test, decoder) runs as one ``tf.function`` with the
TensorFlow codec; the mapping back to the image is numpy geometry. Both are the same code
the exporter and the runtime use, so evaluation measures what ships.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from kpose.codecs import decoders_tf
from kpose.codecs.gaussian import SIGMA_AT_STRIDE_4
from kpose.codecs.heatmap import HeatmapCodec
from kpose.geometry import (
    crop_matrix,
    invert_affine,
    transform_points,
)
from kpose.keypoints import KeypointSchema
from kpose.models import heatmap_output


@dataclass
class Predictions:
    """Per-person predictions, in dataset order.

    Attributes:
        keypoints: ``(N, K, 2)`` image pixels (x, y).
        scores: ``(N, K)`` heatmap maxima.
        image_ids, box_scores, areas, sample_index: ``(N,)`` from the dataset elements.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    image_ids: np.ndarray
    box_scores: np.ndarray
    areas: np.ndarray
    sample_index: np.ndarray


def make_predict_step(
    model: keras.Model,
    schema: KeypointSchema,
    flip_test: bool = True,
    decoder: str = "argmax",
    kernel: int = 1,
    sigma_at_stride_4: float = SIGMA_AT_STRIDE_4,
):
    """A compiled step ``uint8 crops (B, H, W, 3) -> coords (B, K, 2) input px, scores (B, K)``."""
    network = heatmap_output(model)
    codec = HeatmapCodec.for_heatmap(tuple(network.input.shape[1:3]), network.output.shape[1], sigma_at_stride_4)
    flip_index = schema.flip_index.tolist()

    @tf.function(reduce_retracing=True)
    def step(images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        images = tf.cast(images, tf.float32)
        heatmaps = tf.cast(network(images, training=False), tf.float32)
        if flip_test:
            flipped = tf.cast(network(tf.reverse(images, axis=[2]), training=False), tf.float32)
            heatmaps = decoders_tf.flip_average(heatmaps, flipped, flip_index)
        return codec.decode_tf(heatmaps, decoder, kernel)

    return step


def predict_dataset(step, dataset: tf.data.Dataset, input_size: tuple[int, int]) -> Predictions:
    """Run a :func:`make_predict_step` step over an evaluation dataset
    (:func:`kpose.data.pipeline.make_topdown_dataset` with ``training=False``) and map the
    keypoints back to the images; ``input_size`` is the model's ``(H, W)``."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in Predictions.__dataclass_fields__}
    for batch in dataset.as_numpy_iterator():
        coords, scores = step(batch["image"])
        to_image = invert_affine(crop_matrix(batch["center"], batch["scale"], input_size))
        parts["keypoints"].append(transform_points(coords.numpy(), to_image))
        parts["scores"].append(scores.numpy())
        parts["image_ids"].append(batch["image_id"])
        parts["box_scores"].append(batch["box_score"])
        parts["areas"].append(batch["area"])
        parts["sample_index"].append(batch["sample_index"])
    if not parts["keypoints"]:
        raise ValueError("the evaluation dataset is empty")
    return Predictions(**{k: np.concatenate(v) for k, v in parts.items()})
