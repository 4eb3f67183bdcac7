"""Training machinery both tasks share: strategy, model, optimizer, ``fit``, the run directory.

:func:`run_training` is the order of work of ``kpose train``: validate the config, make the
distribution strategy, prepare the run directory, then call the task's ``fit`` (which reads
the data, builds and compiles the model under the strategy and fits it; see
:mod:`kpose.tasks`), check what it trained and save it. A run directory holds everything a
run writes (on several machines, the chief's; worker ``i`` writes to ``RUN/worker-i``)::

    RUN/config.yaml         the resolved config
    RUN/backup/             BackupAndRestore state (a killed run resumes from here)
    RUN/best.keras          best model by validation AP (or last, without validation)
    RUN/last.keras          the model after the last epoch
    RUN/log.csv, RUN/tensorboard/

A run fails (:class:`~kpose.errors.TrainingError`) rather than save what it did not train: an
epoch whose images mostly fail to decode, or a loss or weights that are not finite, stop it
before ``best.keras`` / ``last.keras`` are written, so a previous run's files stay as they
were. A finished run (``last.keras`` and no backup) is not trained again unless asked to
(``overwrite``).
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import keras
import numpy as np
import tensorflow as tf

from kpose.engine import callbacks as cb
from kpose.engine import multiworker
from kpose.engine.config import Config, write_config
from kpose.engine.init_weights import init_from_model
from kpose.engine.schedules import WarmupMultiStep
from kpose.errors import ConfigError, TrainingError
from kpose.keypoints import KeypointSchema, get_schema
from kpose.models import create_model, input_normalization, load_pose_model

# A task's fit: (config, schema, strategy, run_dir) -> the trained model and its history.
FitFunction = Callable[[Config, KeypointSchema, tf.distribute.Strategy, Path], tuple[keras.Model, keras.callbacks.History]]

@dataclass
class TrainResult:
    run_dir: Path
    best_model: Path
    last_model: Path
    history: dict[str, list[float]]
    replicas: int = 1


SINGLE_WORKER = multiworker.WorkerRole(num_workers=1, index=0, is_chief=True)


def make_strategy(kind: str) -> tuple[tf.distribute.Strategy, multiworker.WorkerRole]:
    """The strategy and this process's role: ``default`` (one device), ``mirrored`` (all
    local GPUs, else all logical CPUs) or ``multi_worker`` (the cluster of ``TF_CONFIG``,
    :func:`kpose.engine.multiworker.make_strategy`)."""
    if kind == "default":
        return tf.distribute.get_strategy(), SINGLE_WORKER
    if kind == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices), SINGLE_WORKER
    if kind == "multi_worker":
        return multiworker.make_strategy()
    raise ConfigError(f"train.distribution: unknown strategy {kind!r}")


def loss_weights_for(
    outputs: list[str], configured: Mapping[str, float], defaults: Mapping[str, float]
) -> dict[str, float]:
    """The loss weight of each output: ``train.loss_weights``, else the task's default, else 1.

    Raises:
        ConfigError: ``configured`` names an output the model does not have.
    """
    unknown = sorted(set(configured) - set(outputs))
    if unknown:
        raise ConfigError(f"train.loss_weights: unknown output(s) {unknown}; the model's outputs are {outputs}")
    return {name: configured.get(name, defaults.get(name, 1.0)) for name in outputs}


def build_model(config: Config, schema: KeypointSchema) -> keras.Model:
    """``config.model`` built, and started from ``model.init_from`` where given: its layers,
    and its input normalization (the one its weights were trained with, e.g. an imported
    PyTorch checkpoint's)."""
    spec = config.model
    source = None if spec.init_from is None else load_pose_model(Path(spec.init_from))
    model = create_model(
        spec.name, schema=schema, input_size=spec.input_size, weights=spec.weights,
        normalization=None if source is None else input_normalization(source), **spec.options,
    )
    if source is not None:
        print(init_from_model(model, spec.init_from, source).summary(Path(spec.init_from)))
    return model


def make_optimizer(config: Config, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """Adam(W) with the warmup multi-step schedule of ``train.optimizer``."""
    opt = config.train.optimizer
    schedule = WarmupMultiStep(
        opt.learning_rate, steps_per_epoch, opt.milestones, opt.gamma, opt.warmup_steps
    )
    kwargs: dict[str, Any] = {"learning_rate": schedule}
    if opt.clipnorm:
        kwargs["clipnorm"] = opt.clipnorm
    if opt.name == "adamw":
        return keras.optimizers.AdamW(weight_decay=opt.weight_decay, **kwargs)
    return keras.optimizers.Adam(**kwargs)


def check_batch_size(config: Config, strategy: tf.distribute.Strategy) -> int:
    """The global batch size; ConfigError unless the replicas divide it."""
    batch = config.train.batch_size
    if batch % strategy.num_replicas_in_sync:
        raise ConfigError(
            f"train.batch_size {batch} (global) is not divisible by the {strategy.num_replicas_in_sync} replicas"
        )
    return batch


def stream_seed(config: Config, run_dir: Path) -> int:
    """The seed of the training stream: ``train.seed`` for a fresh run. A run resumed at
    epoch E draws a stream of its own from (seed, E), so it does not see its first epochs'
    batches again (tf.data cannot jump into a seeded stream without reading it)."""
    epoch = cb.resumed_epoch(run_dir)
    if not epoch:
        return config.train.seed
    seed = int(np.random.SeedSequence([config.train.seed, epoch]).generate_state(1)[0])
    print(f"resuming at epoch {epoch + 1}: training stream seed {seed} (from seed {config.train.seed}, epoch {epoch})")
    return seed


def fit_verbosity() -> int:
    """Progress bar in a terminal, a line per epoch in logs."""
    return 1 if sys.stdout.isatty() else 2


def fit_epochs(
    model: keras.Model, dataset: tf.data.Dataset, config: Config, steps_per_epoch: int | None, callbacks: list
) -> keras.callbacks.History:
    """``model.fit`` for ``config.train.epochs`` on a pipeline that shuffles itself (seeded)."""
    return model.fit(
        dataset,
        epochs=config.train.epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        shuffle=False,  # the pipeline shuffles, seeded
        verbose=fit_verbosity(),
    )


def prepare_run_dir(run_dir: Path, overwrite: bool = False) -> Path:
    """Create the run directory; a finished run there is refused, or with ``overwrite`` its
    log is cleared so that it trains again from scratch.

    Raises:
        ConfigError: ``output_dir`` is a file.
        TrainingError: the run there is finished and ``overwrite`` is not set.
    """
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"output_dir: {run_dir} is a file, not a folder")
    finished = (run_dir / "last.keras").exists() and not (run_dir / cb.BACKUP_DIR).exists()
    if finished and not overwrite:
        raise TrainingError(
            f"output_dir: {run_dir} holds a finished run (last.keras, no backup); to train again from "
            "scratch pass --overwrite (its log and models are replaced), or set another output_dir"
        )
    if finished:
        (run_dir / cb.LOG_FILE).unlink(missing_ok=True)
        shutil.rmtree(run_dir / "tensorboard", ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def check_trained(model: keras.Model, history: keras.callbacks.History) -> None:
    """TrainingError unless every epoch's loss and every weight is finite (the run's
    ``best.keras`` / ``last.keras`` are then left as they were)."""
    losses = history.history.get("loss", [])
    bad = next((epoch for epoch, loss in enumerate(losses, 1) if not np.isfinite(loss)), None)
    if bad is None and all(np.isfinite(keras.ops.convert_to_numpy(w)).all() for w in model.weights):
        return
    where = f"the loss is not finite at epoch {bad}" if bad else "the weights are not finite"
    raise TrainingError(
        f"training diverged: {where}; nothing saved (best.keras and last.keras are as they were). "
        "Lower train.optimizer.learning_rate, set train.optimizer.clipnorm, or use float32 precision"
    )


def run_training(config: Config, fit: FitFunction, overwrite: bool = False) -> TrainResult:
    """Train as ``config`` says with a task's ``fit``; resumes from ``RUN/backup`` if a
    previous run was cut short. With ``train.distribution: multi_worker`` this process is one
    worker of ``TF_CONFIG``'s cluster, and every worker runs it.

    Args:
        config: the run.
        fit: the task's fit (:attr:`kpose.tasks.Task.fit`).
        overwrite: train a finished run again from scratch (else that is an error).

    Raises:
        TrainingError: the run is finished (without ``overwrite``), an epoch had (almost) no
            image to train on, or training diverged; nothing is saved then.
    """
    if config.data.train is None:
        raise ConfigError("data.train is required to train")
    # first: several workers' collectives are set up before TensorFlow runs anything else
    strategy, role = make_strategy(config.train.distribution)
    run_dir = prepare_run_dir(multiworker.worker_run_dir(config.run_dir, role), overwrite)
    write_config(config, run_dir / "config.yaml")
    schema = get_schema(config.data.schema)
    keras.utils.set_random_seed(config.train.seed)
    keras.mixed_precision.set_dtype_policy(config.train.precision)
    try:
        model, history = fit(config, schema, strategy, run_dir)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    check_trained(model, history)
    last = run_dir / "last.keras"
    model.save(last)
    best = run_dir / "best.keras"
    if config.data.val is None or not best.exists():  # without validation, best is last
        model.save(best)
    history_lists = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    return TrainResult(run_dir, best, last, history_lists, strategy.num_replicas_in_sync)
