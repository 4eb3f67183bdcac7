"""Top-down pose: one person's crop in, ``K`` heatmaps out, keypoints decoded per crop.

Training reads person rows (:mod:`kpose.data.readers`), crops them in the tf.data pipeline
(:func:`kpose.data.pipeline.make_topdown_dataset`) and renders each output's Gaussian
targets inside the training step (:class:`kpose.engine.losses.HeatmapLoss`, one per output).
Prediction runs the network, flip test and decoder as one ``tf.function``
(:mod:`kpose.engine.predict`) and maps keypoints back to the image; the exported graph is the
same network with the max-pool decoder inside (:mod:`kpose.export.graph`), and the device runs
it through :class:`kpose.runtime.PoseEstimator`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kpose.data.pipeline import DecodeLog, make_topdown_dataset
from kpose.data.samples import PersonSamples
from kpose.engine import callbacks as cb
from kpose.engine import multiworker, training
from kpose.engine.config import Config, DatasetConfig
from kpose.engine.datasets import fit_inputs, read_split, require_head_boxes
from kpose.engine.evaluate import evaluate_model, main_metric, score_predictions
from kpose.engine.losses import HeatmapLoss
from kpose.engine.predict import predict_dataset
from kpose.export.calibration import calibration_set, resolve_calibration
from kpose.export.graph import (
    ServingGraph,
    float32_network,
    model_metadata,
    serving_graph,
)
from kpose.export.layers import for_interpreters
from kpose.export.tflite import CALIBRATED
from kpose.export.validate import validate_exported
from kpose.export.writer import ExportOptions, convert, resolve_schema, write_validated
from kpose.geometry import keypoints_to_crop_pixels
from kpose.keypoints import KeypointSchema
from kpose.models import heatmap_output
from kpose.runtime.backends import Backend
from kpose.tasks.base import Task


class TopDown(Task):
    """Person crops, one heatmap per keypoint, keypoints decoded in the crop."""

    name = "topdown"
    # SRPose's low-resolution heatmaps are supervised with a tiny weight, 1e-4, as in the
    # SR-head paper's code.
    loss_weights = {"lr_heatmaps": 1e-4}

    def check_config(self, config: Config) -> None:
        """A PCKh validation split must have head boxes (read now, not at the first evaluation)."""
        if config.data.val is not None:
            require_head_boxes(config.data.val, config.data.schema)

    def losses(self, model: keras.Model, config: Config) -> tuple[dict[str, HeatmapLoss], dict[str, float]]:
        """A :class:`HeatmapLoss` per model output, and its weight."""
        outputs = list(model.output)
        loss = HeatmapLoss(config.model.input_size, config.train.sigma)
        weights = training.loss_weights_for(outputs, config.train.loss_weights, self.loss_weights)
        return {name: loss for name in outputs}, weights

    def fit(
        self, config: Config, schema: KeypointSchema, strategy: tf.distribute.Strategy, run_dir: Path
    ) -> tuple[keras.Model, keras.callbacks.History]:
        """Person crops: read, build, compile and ``model.fit`` (on several machines, the loop
        of :func:`kpose.engine.multiworker.fit_epochs`)."""
        train_samples = read_split(config.data.train, schema)
        val_samples = read_split(config.data.val, schema, with_boxes=True) if config.data.val else None
        batch = training.check_batch_size(config, strategy)
        decode_log = DecodeLog(train_samples.source)
        steps_per_epoch = config.train.steps_per_epoch or max(1, len(train_samples) // batch)
        model = self.build_compiled(config, schema, strategy, steps_per_epoch)
        outputs = list(model.output)

        def train_dataset(samples: PersonSamples, batch_size: int, seed: int) -> tf.data.Dataset:
            """Repeated batches of ``(image, {output: keypoints})``, so an epoch is a number of
            steps (the seed still draws anew every pass)."""
            dataset = make_topdown_dataset(
                samples, schema, config.model.input_size, batch_size, training=True, seed=seed,
                cache=config.data.cache, augment=config.data.augment, decode_log=decode_log,
            )
            return dataset.repeat().map(fit_inputs(outputs), num_parallel_calls=tf.data.AUTOTUNE)

        seed = training.stream_seed(config, run_dir)
        evaluation, monitor = [], None
        if val_samples is not None:
            val_ds = make_topdown_dataset(
                val_samples, schema, config.model.input_size, config.eval.batch_size, training=False,
                cache=config.data.cache,
            )
            evaluation = cb.topdown_evaluation(config, run_dir, schema, val_ds, val_samples)
            monitor = f"val_{main_metric(config.data.val.format)}"
        callbacks = cb.training_callbacks(config, run_dir, decode_log, evaluation, monitor)
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            losses, weights = self.losses(model, config)
            history = multiworker.fit_epochs(
                model, multiworker.distributed_dataset(strategy, train_dataset, train_samples, batch, seed), strategy,
                losses, weights, config.train.epochs, steps_per_epoch, callbacks, run_dir, training.fit_verbosity(),
            )
        else:
            history = training.fit_epochs(model, train_dataset(train_samples, batch, seed), config, steps_per_epoch, callbacks)
        return model, history

    def evaluate(
        self,
        model: keras.Model,
        dataset: DatasetConfig,
        schema: KeypointSchema,
        *,
        batch_size: int = 32,
        flip_test: bool = True,
        decoder: str = "argmax",
        results_file: Path | None = None,
    ) -> dict[str, float]:
        """Metrics on one split's ground-truth boxes, or on ``dataset.boxes`` when set."""
        samples = read_split(dataset, schema, with_boxes=True)
        data = make_topdown_dataset(samples, schema, tuple(model.input.shape[1:3]), batch_size, training=False)
        return evaluate_model(
            model, data, samples, schema, dataset.format, dataset.annotations, results_file,
            flip_test=flip_test, decoder=decoder,
        )

    def evaluate_file(
        self,
        backend: Backend,
        dataset: DatasetConfig,
        schema: KeypointSchema,
        *,
        batch_size: int = 32,
        results_file: Path | None = None,
    ) -> dict[str, float]:
        """The file's keypoints on the crops Keras evaluation sees, mapped back and scored by the
        same code (:func:`kpose.engine.predict.predict_dataset`)."""

        def step(images: np.ndarray) -> tuple[tf.Tensor, tf.Tensor]:
            out = backend.run(np.asarray(images, dtype=np.uint8))
            coords = keypoints_to_crop_pixels(out["keypoints"], backend.input_size)
            return tf.constant(coords), tf.constant(out["scores"])

        samples = read_split(dataset, schema, with_boxes=True)
        data = make_topdown_dataset(samples, schema, backend.input_size, batch_size, training=False)
        predictions = predict_dataset(step, data, backend.input_size)
        return score_predictions(predictions, samples, schema, dataset.format, dataset.annotations, results_file)

    def serving_graph(self, model: keras.Model, schema: KeypointSchema, options: ExportOptions) -> ServingGraph:
        """The float32 network (interpreter-friendly layers, :func:`kpose.export.layers.for_interpreters`)
        and the max-pool decoder (:func:`kpose.export.graph.serving_graph`)."""
        network = for_interpreters(float32_network(model), integer=options.quantize in CALIBRATED)
        return serving_graph(
            network, schema, heatmaps=options.heatmaps, flip_test=options.flip_test,
            quarter_shift=options.quarter_shift, batch_size=options.batch_size,
        )

    def export(self, model: keras.Model, output: Path, schema: Any, options: ExportOptions) -> Path:
        """Any quantization; int8 / int16x8 are calibrated on crops of ``options.calibration``,
        whose config also gives the schema when none is named."""
        source = None if options.calibration is None else resolve_calibration(options.calibration)
        num_keypoints = heatmap_output(model).output.shape[-1]
        keypoint_schema = resolve_schema(schema, source.schema if source else None, num_keypoints)
        graph = self.serving_graph(model, keypoint_schema, options)
        metadata = model_metadata(model, graph, keypoint_schema, options.quantize)
        representative = None
        if options.quantize in CALIBRATED:
            crops = calibration_set(source, keypoint_schema, graph.input_size, options.calibration_size)

            def representative():
                return iter(crops)

        return write_validated(convert(graph, metadata, options, representative), output, metadata, validate_exported)
