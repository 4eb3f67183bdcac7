"""Datasets of a run: reading a configured split, and batches shaped for ``model.fit``."""

from __future__ import annotations

import tensorflow as tf

from kpose.data.readers import read_samples
from kpose.data.samples import PersonSamples
from kpose.engine.config import DatasetConfig
from kpose.keypoints import KeypointSchema


def read_split(dataset: DatasetConfig, schema: KeypointSchema, with_boxes: bool = False) -> PersonSamples:
    """Person rows of one split; detected boxes instead of ground truth when configured."""
    if with_boxes and dataset.boxes:
        from kpose.data.coco import read_detections

        return read_detections(
            dataset.boxes, dataset.annotations, dataset.images, schema, score_threshold=dataset.box_score_threshold
        )
    return read_samples(dataset.annotations, dataset.images, schema, format="mpii" if dataset.format == "mpii" else "coco")


def require_head_boxes(dataset: DatasetConfig, schema: KeypointSchema | str) -> None:
    """An MPII split is scored by PCKh, which needs every person's head box: read it now and
    fail naming the file and the ``head_box`` field, before a model is built or trained."""
    if dataset.format != "mpii":
        return
    from kpose.data.mpii import read_mpii
    from kpose.evaluation.mpii import check_head_boxes

    check_head_boxes(read_mpii(dataset.annotations, dataset.images, schema).head_boxes, dataset.annotations)


def fit_inputs(output_names: list[str]):
    """Map a pipeline batch to ``(float image, {output: (B, K, 3) keypoints + weight})``."""

    def to_inputs(batch: dict[str, tf.Tensor]) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        target = tf.concat([batch["keypoints"], batch["weights"][..., None]], axis=-1)
        return tf.cast(batch["image"], tf.float32), {name: target for name in output_names}

    return to_inputs
