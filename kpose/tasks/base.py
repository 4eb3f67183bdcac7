"""The task seam: what a pose task supplies to training, evaluation, export and the runtime.

kpose has two tasks. A top-down model sees one person's crop and predicts ``K`` heatmaps; a
bottom-up model sees the whole image and predicts heatmaps and associative-embedding tags,
grouped into people afterwards. Everything else (the config, the strategy, the run
directory, checkpoints, conversion, validation, the device backends) is shared, and takes
what differs from a :class:`Task`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Mapping

import keras
import tensorflow as tf

from kpose.engine import training
from kpose.engine.config import Config, DatasetConfig
from kpose.export.graph import ServingGraph
from kpose.export.writer import ExportOptions
from kpose.keypoints import KeypointSchema
from kpose.runtime.backends import Backend


class Task(ABC):
    """One pose task: its data, loss, prediction and export graph.

    The device estimator of an exported file is chosen by the runtime itself, from the file's
    metadata (:func:`kpose.runtime.select.estimator_for` on ``ModelMetadata.task``): the
    runtime runs without TensorFlow, so it cannot import a task.

    Attributes:
        name: ``"topdown"`` or ``"bottomup"`` (the models' ``HeadSpec.task`` and the
            exported files' ``ModelMetadata.task``).
        loss_weights: default loss weight of each model output (``train.loss_weights``
            overrides them; an output not named weighs 1).
    """

    name: ClassVar[str]
    loss_weights: ClassVar[Mapping[str, float]] = {}

    def check_config(self, config: Config) -> None:
        """ConfigError for settings this task cannot train with (checked before a strategy
        or run directory is made)."""

    @abstractmethod
    def losses(self, model: keras.Model, config: Config) -> tuple[dict[str, keras.losses.Loss], dict[str, float]]:
        """A loss per model output, and its weight (:func:`kpose.engine.training.loss_weights_for`)."""

    def build_compiled(
        self, config: Config, schema: KeypointSchema, strategy: tf.distribute.Strategy, steps_per_epoch: int
    ) -> keras.Model:
        """``config.model`` built under ``strategy`` (:func:`kpose.engine.training.build_model`)
        and compiled with this task's losses and the configured optimizer."""
        with strategy.scope():
            model = training.build_model(config, schema)
            losses, weights = self.losses(model, config)
            model.compile(
                optimizer=training.make_optimizer(config, steps_per_epoch), loss=losses, loss_weights=weights,
                jit_compile=config.train.jit_compile,
            )
        return model

    @abstractmethod
    def fit(
        self, config: Config, schema: KeypointSchema, strategy: tf.distribute.Strategy, run_dir: Path
    ) -> tuple[keras.Model, keras.callbacks.History]:
        """Read the splits, build and compile the model under ``strategy``, fit it with the
        run's callbacks (:func:`kpose.engine.callbacks.training_callbacks`); the trained model
        and its history (:func:`kpose.engine.training.run_training` saves them)."""

    @abstractmethod
    def evaluate(
        self,
        model: keras.Model,
        dataset: DatasetConfig,
        schema: KeypointSchema,
        *,
        batch_size: int,
        flip_test: bool,
        decoder: str,
        results_file: Path | None,
    ) -> dict[str, float]:
        """Metrics of a Keras model on one split, the papers' protocol; the COCO results are
        written to ``results_file`` if given."""

    @abstractmethod
    def evaluate_file(
        self,
        backend: Backend,
        dataset: DatasetConfig,
        schema: KeypointSchema,
        *,
        batch_size: int,
        results_file: Path | None,
    ) -> dict[str, float]:
        """Metrics of an exported file, run by the device runtime as on a device (its decoder
        and flip setting are the ones inside it)."""

    @abstractmethod
    def serving_graph(self, model: keras.Model, schema: KeypointSchema, options: ExportOptions) -> ServingGraph:
        """The graph an exported file carries: uint8 ``image`` in, this task's outputs out,
        float32 network, decoder inside."""

    @abstractmethod
    def export(self, model: keras.Model, output: Path, schema: Any, options: ExportOptions) -> Path:
        """Export ``model`` to one validated file (``schema``: given by the user, or None)."""
