"""Training on several machines: ``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``, and the
training loop that runs under it.

Keras 3's ``model.fit`` cannot run under ``MultiWorkerMirroredStrategy``: before the first
step it reduces the first input batch across workers eagerly (``_maybe_symbolic_build``),
which fails with ``ValueError: Attempt to convert a value (PerReplica:{...}) with an
unsupported type`` on the chief while the other workers wait forever
(keras-team/keras#20585). :func:`fit_epochs` is the loop ``fit`` would run: the model's own
optimizer (with its schedule, clipping and mixed-precision loss scaling), the run's
:class:`~kpose.engine.losses.HeatmapLoss` per output with its weight, scaled per replica as
Keras scales it, and the run's callbacks driven through a ``keras.callbacks.CallbackList``.

Every worker runs the same callbacks (evaluation, best checkpoint, backup, CSV log,
TensorBoard), so all of them take part in every collective; the chief writes into the run
directory, worker ``i`` into ``RUN/worker-i`` (:func:`worker_run_dir`), where its own backup
lets it rejoin after a restart.

Each worker reads its own shard of the sample table (row ``i``, ``i + N``, ...; N workers),
shuffled and augmented with a seed of its own (:func:`worker_seed`); ``train.batch_size``
stays the global batch, split evenly over all replicas of all workers.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from kpose.data.samples import PersonSamples
from kpose.engine import callbacks as cb
from kpose.errors import ConfigError, TrainingError

TF_CONFIG = "TF_CONFIG"
DOCS = "docs/multiworker.md"


@dataclass(frozen=True)
class WorkerRole:
    """This process's place in the cluster of ``TF_CONFIG``."""

    num_workers: int
    index: int  # 0 .. num_workers - 1, the chief first
    is_chief: bool


def _fail(problem: str) -> ConfigError:
    return ConfigError(f"train.distribution: multi_worker: environment variable {TF_CONFIG} {problem} (see {DOCS})")


def read_tf_config(environ: dict[str, str] | None = None) -> WorkerRole:
    """The role ``TF_CONFIG`` gives this process: ``{"cluster": {"worker": ["host:port", ...]
    [, "chief": ["host:port"]]}, "task": {"type": "worker" | "chief", "index": i}}``. The chief
    is the ``chief`` task, else worker 0.

    Raises:
        ConfigError: ``TF_CONFIG`` is missing, not JSON, or its cluster or task is malformed.
    """
    raw = (os.environ if environ is None else environ).get(TF_CONFIG)
    if not raw:
        raise _fail('is not set: every worker needs {"cluster": {"worker": [...]}, "task": {...}}')
    try:
        spec = json.loads(raw)
    except ValueError as exc:
        raise _fail(f"is not JSON ({exc}): {raw[:200]!r}") from None
    cluster = spec.get("cluster") if isinstance(spec, dict) else None
    task = spec.get("task") if isinstance(spec, dict) else None
    if not isinstance(cluster, dict) or not isinstance(cluster.get("worker", []), list):
        raise _fail(f'has no "cluster" with a "worker" list of host:port addresses: {raw[:200]!r}')
    chiefs, workers = cluster.get("chief", []), cluster.get("worker", [])
    if not isinstance(chiefs, list) or len(chiefs) > 1 or not chiefs + workers:
        raise _fail(f'cluster: expected at most one "chief" and at least one task: {cluster}')
    if not isinstance(task, dict) or task.get("type") not in ("worker", "chief"):
        raise _fail(f'needs a "task" of type "worker" or "chief": {task}')
    members = chiefs if task["type"] == "chief" else workers
    index = task.get("index")
    if not isinstance(index, int) or not 0 <= index < len(members):
        raise _fail(f'task index {index!r} is not one of the {len(members)} {task["type"]} addresses')
    global_index = index if task["type"] == "chief" else len(chiefs) + index
    return WorkerRole(len(chiefs) + len(workers), global_index, global_index == 0)


def make_strategy() -> tuple[tf.distribute.MultiWorkerMirroredStrategy, WorkerRole]:
    """The strategy of ``TF_CONFIG``'s cluster (it waits for every worker to connect); it
    must be made before TensorFlow runs anything else in the process."""
    role = read_tf_config()
    return tf.distribute.MultiWorkerMirroredStrategy(), role


def worker_run_dir(run_dir: Path, role: WorkerRole) -> Path:
    """Where a worker writes: the run directory for the chief, ``RUN/worker-i`` for the others."""
    return run_dir if role.is_chief else run_dir / f"worker-{role.index}"


def worker_seed(seed: int, index: int) -> int:
    """The data seed of worker ``index``: ``seed`` for the chief (one worker reads the stream a
    single machine reads), a stream of its own from (seed, index) for the others."""
    if index == 0:
        return seed
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def shard(samples: PersonSamples, index: int, count: int) -> PersonSamples:
    """Rows ``index, index + count, ...`` of the table: worker ``index`` of ``count``."""
    return samples.select(np.arange(index, len(samples), count))


def distributed_dataset(
    strategy: tf.distribute.Strategy,
    make_dataset: Callable[[PersonSamples, int, int], tf.data.Dataset],
    samples: PersonSamples,
    global_batch: int,
    seed: int,
) -> tf.distribute.DistributedDataset:
    """Each worker's pipeline on its own shard and seed, batched per replica.

    Args:
        make_dataset: ``(samples, per-replica batch, seed) -> repeated dataset`` of
            ``(image (B, H, W, 3) float32, {output: (B, K, 3)})`` batches.
    """

    def worker_dataset(context: tf.distribute.InputContext) -> tf.data.Dataset:
        index, count = context.input_pipeline_id, context.num_input_pipelines
        batch = context.get_per_replica_batch_size(global_batch)
        return make_dataset(shard(samples, index, count), batch, worker_seed(seed, index))

    return strategy.distribute_datasets_from_function(worker_dataset)


def agreed_epoch(strategy: tf.distribute.Strategy, epoch: int) -> int:
    """``epoch`` when every worker resumes at it; TrainingError when the workers' backups are
    of different epochs (a worker killed while the others were writing theirs)."""
    value = tf.constant(epoch, tf.float64)  # whole numbers: sums and squares stay exact

    @tf.function
    def sums() -> tuple[tf.Tensor, tf.Tensor]:
        per_replica = strategy.run(lambda: (value, value * value))
        return tuple(strategy.reduce("SUM", v, axis=None) for v in per_replica)

    total, squares = (float(v) for v in sums())
    replicas = strategy.num_replicas_in_sync
    if total * total != replicas * squares:  # all equal iff (sum x)^2 == n sum x^2
        raise TrainingError(
            f"the workers' backups are of different epochs (this one: {epoch}, mean of all: "
            f"{total / replicas:g}); remove RUN/{cb.BACKUP_DIR} and RUN/worker-*/{cb.BACKUP_DIR} to train "
            "again from scratch"
        )
    return epoch


def make_train_step(
    model: keras.Model,
    strategy: tf.distribute.Strategy,
    losses: dict[str, keras.losses.Loss],
    weights: dict[str, float],
) -> Callable:
    """``step(iterator) -> loss``: one optimizer step on every replica, returning the global
    batch's mean loss (scalar float32).

    Each replica's loss is its batch's mean (``HeatmapLoss`` divides by the global replica
    count under a strategy, as Keras does), so the all-reduced gradients are those of the
    global batch's mean; the model's additional losses are scaled the same way."""

    def replica_step(images: tf.Tensor, targets: dict[str, tf.Tensor]) -> tf.Tensor:
        with tf.GradientTape() as tape:
            predictions = model(images, training=True)
            loss = tf.add_n([weights[name] * losses[name](targets[name], predictions[name]) for name in losses])
            if model.losses:
                loss += tf.add_n(model.losses) / strategy.num_replicas_in_sync
            scaled = model.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, model.trainable_weights)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_weights))
        return loss

    @tf.function
    def step(iterator: tf.distribute.DistributedIterator) -> tf.Tensor:
        images, targets = next(iterator)
        return strategy.reduce("SUM", strategy.run(replica_step, args=(images, targets)), axis=None)

    return step


def fit_epochs(
    model: keras.Model,
    dataset: tf.distribute.DistributedDataset,
    strategy: tf.distribute.Strategy,
    losses: dict[str, keras.losses.Loss],
    weights: dict[str, float],
    epochs: int,
    steps_per_epoch: int,
    callbacks: list[keras.callbacks.Callback],
    run_dir: Path,
    verbose: int,
) -> keras.callbacks.History:
    """``model.fit``'s loop under the strategy: epochs from the backup's on, ``steps_per_epoch``
    steps each, the callbacks called as ``fit`` calls them; the epoch's ``loss`` is the mean
    of its steps' global-batch losses."""
    history = keras.callbacks.History()
    callback_list = keras.callbacks.CallbackList(
        [*callbacks, history], add_progbar=verbose != 0, verbose=verbose, epochs=epochs,
        steps=steps_per_epoch, model=model,
    )
    with strategy.scope():
        model.optimizer.build(model.trainable_weights)  # before the backup restores its state
    initial_epoch = agreed_epoch(strategy, cb.resumed_epoch(run_dir))
    step = make_train_step(model, strategy, losses, weights)
    iterator = iter(dataset)
    model.stop_training = False
    callback_list.on_train_begin()
    logs: dict[str, float] = {}
    for epoch in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        total = 0.0
        for batch in range(steps_per_epoch):
            callback_list.on_train_batch_begin(batch)
            total += float(step(iterator))
            logs = {"loss": total / (batch + 1)}
            callback_list.on_train_batch_end(batch, logs)
            if model.stop_training:
                break
        callback_list.on_epoch_end(epoch, dict(logs))  # the callbacks add their own entries
        if model.stop_training:
            break
    callback_list.on_train_end(logs)
    return history
