"""Callbacks of a training run: evaluation with the real metric, best checkpoint, backup and
restore, logs, TensorBoard images, a stop on NaN, and a check that the epoch had data."""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path
from typing import Sequence

import h5py
import keras
import numpy as np
import tensorflow as tf

from kpose.data.pipeline import DecodeLog
from kpose.data.samples import PersonSamples
from kpose.engine.config import Config
from kpose.engine.evaluate import score_predictions
from kpose.engine.predict import make_predict_step, predict_dataset
from kpose.errors import TrainingError
from kpose.keypoints import KeypointSchema
from kpose.runtime.drawing import draw_keypoints, make_grid

log = logging.getLogger("kpose.train")

BACKUP_DIR = "backup"  # RUN/backup: BackupAndRestore's two generations
LOG_FILE = "log.csv"
WEIGHTS = "latest.weights.h5"  # BackupAndRestore's newer generation (".bkp": the older)
MAX_SKIPPED_FRACTION = 0.5  # of an epoch's decodes: more failing stops the run


def finite_loss(logs: dict | None) -> bool:
    """The epoch's (or batch's) loss is a finite number (True when there is none yet)."""
    value = (logs or {}).get("loss")
    return value is None or math.isfinite(float(value))


class DecodeCheck(keras.callbacks.Callback):
    """After every epoch: the images that failed to decode in it are named and counted in the
    log; a :class:`~kpose.errors.TrainingError` stops the run when none decoded or more than
    :data:`MAX_SKIPPED_FRACTION` failed (a run must not train, and save, on nothing)."""

    def __init__(self, decode_log: DecodeLog):
        super().__init__()
        self.decode_log = decode_log
        self.seen = (0, 0)  # (decoded, failed) at the end of the previous epoch

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        decode_log = self.decode_log
        decoded, failed = decode_log.decoded - self.seen[0], decode_log.failed - self.seen[1]
        self.seen = (decode_log.decoded, decode_log.failed)
        if not failed:
            return
        message = f"epoch {epoch + 1}: {decode_log.source}: {failed} of {decoded + failed} images failed to decode"
        if failed > MAX_SKIPPED_FRACTION * (decoded + failed):
            raise TrainingError(
                f"{message}, more than {MAX_SKIPPED_FRACTION:.0%}: stopped, nothing saved; fix or remove "
                f"these files ({decode_log.summary()})"
            )
        log.warning("%s, skipped (%s)", message, decode_log.summary())


class EvaluateCallback(keras.callbacks.Callback):
    """Every ``every`` epochs (and after the last), evaluate and add ``val_<metric>`` to the logs.

    On other epochs the metrics are NaN in the logs, so the CSV log has one column per
    metric from the first epoch on and the best checkpoint only moves on evaluated epochs.
    """

    def __init__(self, config: Config, schema: KeypointSchema, dataset: tf.data.Dataset, samples: PersonSamples):
        super().__init__()
        self.config = config
        self.schema = schema
        self.dataset = dataset
        self.samples = samples
        self.names: list[str] = []
        self.step = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        # one compiled step for the whole run: the weights change, the graph does not
        self.step = make_predict_step(
            self.model, self.schema, flip_test=self.config.eval.flip_test, decoder=self.config.eval.decoder,
            sigma_at_stride_4=self.config.train.sigma,
        )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        every = self.config.eval.every
        scheduled = not (epoch + 1) % every or epoch + 1 == self.config.train.epochs
        if not scheduled or not finite_loss(logs):  # a diverged model is not evaluated
            logs.update({name: math.nan for name in self.names})
            return
        val = self.config.data.val
        predictions = predict_dataset(self.step, self.dataset, tuple(self.model.input.shape[1:3]))
        metrics = score_predictions(predictions, self.samples, self.schema, val.format, val.annotations)
        self.names = [f"val_{name}" for name in metrics]
        logs.update({f"val_{name}": value for name, value in metrics.items()})
        print(f"Epoch {epoch + 1}: " + ", ".join(f"val_{k}={v:.4f}" for k, v in metrics.items()), flush=True)


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the optimizer's current learning rate to the logs as ``learning_rate``."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class StopOnNaN(keras.callbacks.TerminateOnNaN):
    """Keras' TerminateOnNaN, plus a message that says what to try. :func:`kpose.engine.training.run_training`
    then fails the run and keeps the files of the last good epoch."""

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.model.stop_training:
            return
        super().on_batch_end(batch, logs)
        if self.model.stop_training:
            log.error(
                "training stopped: the loss became NaN or infinite at batch %d; lower "
                "train.optimizer.learning_rate, set train.optimizer.clipnorm, or use float32 precision", batch
            )


class PredictionImages(keras.callbacks.Callback):
    """Writes predicted keypoints drawn on validation crops, and their heatmaps, to TensorBoard."""

    def __init__(self, log_dir: Path, images: np.ndarray, schema: KeypointSchema, every: int):
        super().__init__()
        self.writer = tf.summary.create_file_writer(str(log_dir / "images"))
        self.images = images
        self.schema = schema
        self.every = every
        self.step = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.step = make_predict_step(self.model, self.schema, flip_test=False)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if (epoch + 1) % self.every:
            return
        coords, scores = (t.numpy() for t in self.step(self.images))
        drawn = [draw_keypoints(img[..., ::-1], c, self.schema, s, 0.2) for img, c, s in zip(self.images, coords, scores)]
        heatmaps = self.model(tf.cast(self.images, tf.float32), training=False)["heatmaps"]
        summed = tf.reduce_max(heatmaps, axis=-1, keepdims=True)
        with self.writer.as_default(step=epoch + 1):
            tf.summary.image("keypoints", make_grid(drawn, columns=4)[None, ..., ::-1], max_outputs=1)
            tf.summary.image("heatmaps", tf.clip_by_value(summed, 0.0, 1.0), max_outputs=len(self.images))


class BestCheckpoint(keras.callbacks.ModelCheckpoint):
    """``RUN/best.keras``: the model of the evaluated epoch with the highest ``monitor``.

    Epochs without an evaluation log the metric as NaN (or not at all) and are skipped: Keras'
    own checkpoint counts a NaN as an improvement over "no best yet" and nothing beats a NaN
    after it, so a run whose first epoch was not evaluated kept its first epoch's model.
    """

    def __init__(self, run_dir: Path, monitor: str):
        super().__init__(run_dir / "best.keras", monitor=monitor, mode="max", save_best_only=True)
        self.run_dir = run_dir

    def on_train_begin(self, logs: dict | None = None) -> None:
        """A resumed run keeps its best model: the threshold is the best value logged before
        the epoch it resumes at (the rows from there on are trained again)."""
        super().on_train_begin(logs)
        self.best = best_so_far(self.run_dir / LOG_FILE, self.monitor, resumed_epoch(self.run_dir))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is not None and not math.isnan(float(value)) and finite_loss(logs):
            super().on_epoch_end(epoch, logs)


class RunBackup(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore (two generations) for a run directory: says which epoch it
    restored (the older generation's when the newer is unreadable), drops the rows of
    ``log.csv`` from that epoch on (they are trained again), never backs up an epoch whose
    loss is not finite, and keeps the backup of a run that stopped on one."""

    def __init__(self, run_dir: Path, save_freq: int | str):
        super().__init__(run_dir / BACKUP_DIR, save_freq=save_freq, double_checkpoint=True)
        self.run_dir = run_dir
        self.diverged = False

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        epoch = resumed_epoch(self.run_dir)
        if epoch:
            print(f"restored the backup of epoch {epoch}; training goes on at epoch {epoch + 1}", flush=True)
        trim_log(self.run_dir / LOG_FILE, epoch)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.diverged |= not finite_loss(logs)
        if not self.diverged:
            super().on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.diverged |= not finite_loss(logs)
        if not self.diverged:
            super().on_epoch_end(epoch, logs)

    def on_train_end(self, logs: dict | None = None) -> None:
        if not self.diverged:
            super().on_train_end(logs)


def trim_log(csv_path: Path, epoch: int) -> None:
    """Keep the rows of the CSV log of epochs before ``epoch`` (0-based; all of them for a
    resumed run's past, none for a fresh run)."""
    if not csv_path.exists():
        return
    with csv_path.open(newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, [row for row in reader if int(row["epoch"]) < epoch]
    if not rows or not fields:
        csv_path.unlink()
        return
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def best_so_far(csv_path: Path, key: str, before_epoch: int) -> float | None:
    """The best ``key`` in the CSV log's rows of epochs before ``before_epoch`` (0-based), or
    None."""
    if not csv_path.exists():
        return None
    with csv_path.open() as f:
        values = [
            float(row[key]) for row in csv.DictReader(f)
            if int(row["epoch"]) < before_epoch and row.get(key) not in (None, "", "nan", "NA")
        ]
    values = [v for v in values if not math.isnan(v)]
    return max(values) if values else None


def _readable_weights(path: Path) -> bool:
    """``path`` is missing (BackupAndRestore then keeps the model's weights) or opens as HDF5."""
    if not path.exists():
        return True
    try:
        with h5py.File(path, "r"):
            return True
    except OSError:
        return False


def resumed_epoch(run_dir: Path) -> int:
    """The epoch a run starts at: the one ``BackupAndRestore`` restores from ``RUN/backup``
    (its newer generation, else the older: a truncated weights file or metadata), 0 for a
    fresh run."""
    backup = run_dir / BACKUP_DIR
    names = ["training_metadata.json", "training_metadata.json.bkp"]
    if not _readable_weights(backup / WEIGHTS):
        names = names[1:]
    for name in names:
        try:
            return int(json.loads((run_dir / BACKUP_DIR / name).read_text())["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return 0


def topdown_evaluation(
    config: Config, run_dir: Path, schema: KeypointSchema, dataset: tf.data.Dataset, samples: PersonSamples
) -> list[keras.callbacks.Callback]:
    """The validation callbacks of a top-down run: metrics every ``eval.every`` epochs, and
    the first batch's predictions drawn into TensorBoard."""
    sample_images = next(dataset.take(1).as_numpy_iterator())["image"][:8]
    return [
        EvaluateCallback(config, schema, dataset, samples),
        PredictionImages(run_dir / "tensorboard", sample_images, schema, config.eval.every),
    ]


def training_callbacks(
    config: Config,
    run_dir: Path,
    decode_log: DecodeLog,
    evaluation: Sequence[keras.callbacks.Callback] = (),
    monitor: str | None = None,
) -> list[keras.callbacks.Callback]:
    """The callbacks of a run, in the order they must see the logs: the data check first (an
    epoch without data stops the run before anything is evaluated or saved), then the task's
    ``evaluation`` callbacks, which add ``val_*`` metrics, and :class:`BestCheckpoint` on
    ``monitor`` (without one, ``best.keras`` is the last model)."""
    callbacks: list[keras.callbacks.Callback] = [DecodeCheck(decode_log), LearningRateLogger(), *evaluation]
    if monitor is not None:
        callbacks.append(BestCheckpoint(run_dir, monitor))
    callbacks += [
        StopOnNaN(),
        # two generations, so a kill while writing one falls back to the other
        RunBackup(run_dir, save_freq=config.train.backup_every or "epoch"),
        keras.callbacks.CSVLogger(run_dir / LOG_FILE, append=True),
        keras.callbacks.TensorBoard(run_dir / "tensorboard", write_graph=False),
    ]
    return callbacks
