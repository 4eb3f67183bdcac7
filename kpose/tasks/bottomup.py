"""Bottom-up pose: the whole image in, heatmaps and associative-embedding tags out, people grouped.

Training reads whole images with every person (:mod:`kpose.data.bottomup`) and fits the
masked multi-person heatmap loss and the push/pull tag loss (:mod:`kpose.engine.bottomup_loss`)
on the ``heatmaps`` and ``tags`` outputs. Prediction runs the model on whole images
(optionally with the flip test) and decodes each image with the
:class:`~kpose.codecs.associative_embedding.AssociativeEmbeddingCodec`; evaluation is the same
pycocotools evaluator as top-down, with no person boxes. The exported graph computes the
codec's candidates in TensorFlow (``candidates`` ``(B, K, M, 2)`` normalized to the input,
``candidate_scores`` and ``candidate_tags`` ``(B, K, M)``; metadata decoder
``{"name": "bottomup", "top_k", "nms_kernel"}``) and the device groups them in numpy
(:class:`kpose.runtime.BottomUpEstimator`), with the codec's defaults, so a Keras model and
its exported file are grouped alike.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kpose.codecs.associative_embedding import AssociativeEmbeddingCodec, flip_merge
from kpose.codecs.heatmap import HeatmapCodec
from kpose.data.bottomup import (
    MAX_PEOPLE,
    MultiPersonImages,
    make_bottomup_dataset,
    read_multiperson,
)
from kpose.data.pipeline import DecodeLog
from kpose.engine import callbacks as cb
from kpose.engine import training
from kpose.engine.bottomup_loss import (
    AssociativeEmbeddingLoss,
    MultiPersonHeatmapLoss,
    pack_targets,
)
from kpose.engine.config import Config, DatasetConfig
from kpose.errors import ConfigError
from kpose.evaluation import evaluate_coco
from kpose.evaluation.coco import COCO_METRICS
from kpose.export.graph import (
    ExportError,
    ServingGraph,
    float32_config_network,
    model_metadata,
)
from kpose.export.validate import validate_exported
from kpose.export.writer import ExportOptions, convert, resolve_schema, write_validated
from kpose.geometry import invert_affine, transform_points
from kpose.keypoints import KeypointSchema
from kpose.models import inference_model
from kpose.runtime.backends import Backend
from kpose.runtime.bottomup import BottomUpEstimator
from kpose.tasks.base import Task

OUTPUTS = ("candidates", "candidate_scores", "candidate_tags")
# Options that apply to top-down files only.
TOPDOWN_OPTIONS = ("calibration", "heatmaps", "flip_test", "quarter_shift")


def codec_of(model: keras.Model, **settings: Any) -> AssociativeEmbeddingCodec:
    """The codec of a bottom-up model's ``heatmaps`` output (default sigma, the runtime's
    grouping settings unless ``settings`` say otherwise)."""
    input_size = tuple(model.input.shape[1:3])
    return AssociativeEmbeddingCodec(HeatmapCodec.for_heatmap(input_size, model.output["heatmaps"].shape[1]), **settings)


def read_images(dataset: DatasetConfig, schema: KeypointSchema, max_people: int) -> MultiPersonImages:
    """The images of a configured split (COCO-format annotations)."""
    if dataset.format == "mpii":
        raise ConfigError("data.*.format: bottom-up models need COCO-format annotations, not mpii")
    return read_multiperson(dataset.annotations, dataset.images, schema, max_people)


def coco_results(people: np.ndarray, scores: np.ndarray, matrix: np.ndarray, image_id: int) -> list[dict]:
    """COCO keypoint results of one image's people: input pixels mapped to the image by the
    inverse of ``matrix`` (image -> input, ``(2, 3)``)."""
    inverse = invert_affine(np.asarray(matrix, np.float64))
    results = []
    for person, score in zip(people, scores):
        xy = transform_points(person[:, :2].astype(np.float64), inverse)
        flat = np.concatenate([xy, person[:, 2:3]], axis=1).reshape(-1)
        results.append({
            "image_id": image_id, "category_id": 1,
            "keypoints": [round(float(v), 2) for v in flat], "score": float(score),
        })
    return results


def predict_people(
    model: keras.Model,
    dataset: tf.data.Dataset,
    schema: KeypointSchema,
    flip_test: bool = False,
    codec: AssociativeEmbeddingCodec | None = None,
) -> list[dict]:
    """COCO keypoint results (image pixels) of every image of an unaugmented dataset.

    Returns:
        ``[{"image_id", "category_id": 1, "keypoints": [x, y, score] * K, "score"}]``.
    """
    codec = codec or codec_of(model)
    results = []
    for batch in dataset.as_numpy_iterator():
        images = batch["image"].astype(np.float32)
        out = model.predict_on_batch(images)
        heatmaps, tags = np.asarray(out["heatmaps"]), np.asarray(out["tags"])
        if flip_test:
            flipped = model.predict_on_batch(images[:, :, ::-1])
        for i in range(len(images)):
            maps, tag = heatmaps[i], tags[i]
            if flip_test:
                maps, tag = flip_merge(
                    maps, tag, np.asarray(flipped["heatmaps"][i]), np.asarray(flipped["tags"][i]),
                    schema.flip_index,
                )
            people, scores = codec.decode(maps, tag)
            results += coco_results(people, scores, batch["matrix"][i], int(batch["image_id"][i]))
    return results


def score_results(
    results: list[dict], dataset: DatasetConfig, schema: KeypointSchema, results_file: Path | None = None
) -> dict[str, float]:
    """pycocotools keypoint metrics of ``results`` on ``dataset`` (0 on every metric when
    nobody was found); the results are written to ``results_file`` first if given."""
    if results_file is not None:
        Path(results_file).write_text(json.dumps(results))
    if not results:
        return {metric.name: 0.0 for metric in COCO_METRICS}
    return evaluate_coco(results, dataset.annotations, schema)


def fit_targets(batch: dict[str, tf.Tensor]) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """A pipeline batch as ``(float image, {"heatmaps": packed, "tags": packed})``."""
    packed = pack_targets(batch["keypoints"], batch["weights"], batch["mask"])
    return tf.cast(batch["image"], tf.float32), {"heatmaps": packed, "tags": packed}


class BottomUpEvaluate(keras.callbacks.Callback):
    """Every ``eval.every`` epochs (and after the last) add ``val_<metric>`` to the logs
    (NaN on the other epochs, as the top-down callback)."""

    def __init__(self, config: Config, schema: KeypointSchema, images: MultiPersonImages):
        super().__init__()
        self.config, self.schema, self.images = config, schema, images
        self.names = [f"val_{m.name}" for m in COCO_METRICS]

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        if (epoch + 1) % self.config.eval.every and epoch + 1 != self.config.train.epochs:
            logs.update({name: math.nan for name in self.names})
            return
        dataset = make_bottomup_dataset(
            self.images, self.schema, tuple(self.model.input.shape[1:3]), self.config.eval.batch_size, training=False
        )
        results = predict_people(self.model, dataset, self.schema, self.config.eval.flip_test)
        metrics = score_results(results, self.config.data.val, self.schema)
        logs.update({f"val_{k}": v for k, v in metrics.items()})
        print(f"Epoch {epoch + 1}: " + ", ".join(f"val_{k}={v:.4f}" for k, v in metrics.items()), flush=True)


class BottomUp(Task):
    """Whole images, heatmaps and tags, people grouped by associative embedding."""

    name = "bottomup"
    # Both AE terms weigh 1e-3 against the heatmap MSE, as in MMPose's AELoss.
    loss_weights = {"heatmaps": 1.0, "tags": 1e-3}

    def check_config(self, config: Config) -> None:
        if config.train.distribution == "multi_worker":
            raise ConfigError(f"train.distribution: multi_worker trains top-down models; {config.model.name} is bottom-up")

    def losses(self, model: keras.Model, config: Config) -> tuple[dict[str, keras.losses.Loss], dict[str, float]]:
        """Masked heatmap MSE on ``heatmaps``, push/pull on ``tags``, and their weights."""
        weights = training.loss_weights_for(list(model.output), config.train.loss_weights, self.loss_weights)
        shape = (config.model.input_size, config.data.max_people, model.output["heatmaps"].shape[-1])
        losses = {
            "heatmaps": MultiPersonHeatmapLoss(*shape, sigma_at_stride_4=config.train.sigma),
            "tags": AssociativeEmbeddingLoss(*shape),
        }
        return losses, weights

    def fit(
        self, config: Config, schema: KeypointSchema, strategy: tf.distribute.Strategy, run_dir: Path
    ) -> tuple[keras.Model, keras.callbacks.History]:
        """Whole images: read, build, compile and ``model.fit``; the best model is chosen by
        ``val_AP`` when a validation split is configured."""
        train_images = read_images(config.data.train, schema, config.data.max_people)
        val_images = read_images(config.data.val, schema, config.data.max_people) if config.data.val else None
        batch = training.check_batch_size(config, strategy)
        decode_log = DecodeLog(train_images.source)
        train_ds = make_bottomup_dataset(
            train_images, schema, config.model.input_size, batch, training=True,
            seed=training.stream_seed(config, run_dir), augment=config.data.augment, decode_log=decode_log,
        ).repeat()
        steps_per_epoch = config.train.steps_per_epoch or max(1, len(train_images) // batch)
        model = self.build_compiled(config, schema, strategy, steps_per_epoch)
        evaluation, monitor = [], None
        if val_images is not None:
            evaluation, monitor = [BottomUpEvaluate(config, schema, val_images)], "val_AP"
        callbacks = cb.training_callbacks(config, run_dir, decode_log, evaluation, monitor)
        history = training.fit_epochs(
            model, train_ds.map(fit_targets, num_parallel_calls=tf.data.AUTOTUNE), config, steps_per_epoch, callbacks
        )
        return model, history

    def evaluate(
        self,
        model: keras.Model,
        dataset: DatasetConfig,
        schema: KeypointSchema,
        *,
        batch_size: int = 8,
        flip_test: bool = False,
        decoder: str = "",
        results_file: Path | None = None,
    ) -> dict[str, float]:
        """COCO keypoint AP/AR on whole images (no person boxes); ``decoder`` does not apply."""
        images = read_images(dataset, schema, MAX_PEOPLE)
        data = make_bottomup_dataset(images, schema, tuple(model.input.shape[1:3]), batch_size, training=False)
        return score_results(predict_people(model, data, schema, flip_test), dataset, schema, results_file)

    def evaluate_file(
        self,
        backend: Backend,
        dataset: DatasetConfig,
        schema: KeypointSchema,
        *,
        batch_size: int = 8,
        results_file: Path | None = None,
    ) -> dict[str, float]:
        """The images Keras evaluation sees, candidates from the file, grouped by
        :class:`~kpose.runtime.BottomUpEstimator`."""
        estimator = BottomUpEstimator(backend)
        images = read_images(dataset, schema, MAX_PEOPLE)
        data = make_bottomup_dataset(images, schema, backend.input_size, batch_size, training=False)
        results = []
        for batch in data.as_numpy_iterator():
            for image, matrix, image_id in zip(batch["image"], batch["matrix"], batch["image_id"]):
                candidates = estimator.infer(np.asarray(image, np.uint8)[None])
                people, scores = estimator.codec.group(candidates)
                results += coco_results(people, scores, matrix, int(image_id))
        return score_results(results, dataset, schema, results_file)

    def serving_graph(self, model: keras.Model, schema: KeypointSchema, options: ExportOptions) -> ServingGraph:
        """The float32 network, then the codec's candidates (:meth:`AssociativeEmbeddingCodec.candidates_tf`)."""
        if options.batch_size is not None and options.batch_size < 1:
            raise ExportError(f"batch_size must be >= 1 or None (dynamic), got {options.batch_size}")
        network = float32_config_network(inference_model(model))
        _, height, width, _ = network.input.shape
        _, map_h, map_w, num_keypoints = network.output["heatmaps"].shape
        if num_keypoints != schema.num_keypoints:
            raise ExportError(
                f"model {network.name!r} predicts {num_keypoints} keypoints but schema "
                f"{schema.name!r} has {schema.num_keypoints}"
            )
        codec = codec_of(network)
        signature = [tf.TensorSpec([options.batch_size, height, width, 3], tf.uint8, name="image")]

        @tf.function(input_signature=signature)
        def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
            out = network(tf.cast(image, tf.float32), training=False)
            return codec.candidates_tf(tf.cast(out["heatmaps"], tf.float32), tf.cast(out["tags"], tf.float32))

        decoder = {"name": "bottomup", "top_k": codec.num_candidates, "nms_kernel": codec.nms_kernel}
        return ServingGraph(serve, network, (height, width), (map_h, map_w), options.batch_size, OUTPUTS, decoder)

    def export(self, model: keras.Model, output: Path, schema: Any, options: ExportOptions) -> Path:
        """float32 or fp16 files only: calibrating int8 on whole images is not implemented, and
        the crop options (heatmaps, flip test, quarter shift) do not apply."""
        used = sorted(name for name in TOPDOWN_OPTIONS if getattr(options, name))
        if used:
            raise ExportError(f"option(s) {', '.join(used)} apply to top-down models only, not to bottom-up ones")
        if options.quantize not in ("none", "fp16"):
            raise ExportError(f"--quantize {options.quantize}: bottom-up models export as float32 or fp16 only")
        keypoint_schema = resolve_schema(schema, None, model.output["heatmaps"].shape[-1])
        graph = self.serving_graph(model, keypoint_schema, options)
        metadata = model_metadata(model, graph, keypoint_schema, options.quantize)
        return write_validated(convert(graph, metadata, options), output, metadata, validate_exported)
