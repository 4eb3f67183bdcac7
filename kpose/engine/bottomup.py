"""Bottom-up training and evaluation: whole images, associative-embedding grouping, COCO AP.

Prediction runs the Keras model on whole images (:mod:`kpose.data.bottomup`, no
augmentation), optionally with the flip test, then groups with the runtime's numpy code
(:mod:`kpose.runtime.grouping`) and maps people back to the image; evaluation is the same
pycocotools evaluator as top-down (:func:`kpose.evaluation.evaluate_coco`), with no person
boxes. Training is ``model.fit`` with :mod:`kpose.engine.bottomup_loss` on the ``heatmaps``
and ``tags`` outputs.
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kpose.data.bottomup import MAX_PEOPLE, MultiPersonImages, make_bottomup_dataset, read_multiperson
from kpose.data.pipeline import DecodeLog
from kpose.engine import callbacks as cb
from kpose.engine.bottomup_loss import AssociativeEmbeddingLoss, MultiPersonHeatmapLoss, pack_targets
from kpose.engine.config import Config, DatasetConfig
from kpose.errors import ConfigError
from kpose.evaluation import evaluate_coco
from kpose.evaluation.coco import COCO_METRICS
from kpose.geometry import invert_affine, transform_points
from kpose.keypoints import KeypointSchema
from kpose.models import parse_model_name
from kpose.runtime.grouping import (
    DETECTION_THRESHOLD,
    TAG_THRESHOLD,
    TOP_K,
    find_candidates,
    flip_merge,
    group_people,
)

# Both AE terms weigh 1e-3 against the heatmap MSE, as in MMPose's AELoss.
DEFAULT_LOSS_WEIGHTS = {"heatmaps": 1.0, "tags": 1e-3}


@dataclass(frozen=True)
class GroupingConfig:
    """Grouping settings of evaluation; the defaults are the runtime's (:mod:`kpose.runtime.grouping`),
    so a Keras model and its exported file are grouped alike."""

    top_k: int = TOP_K
    detection_threshold: float = DETECTION_THRESHOLD
    tag_threshold: float = TAG_THRESHOLD
    refine: bool = True


def read_images(dataset: DatasetConfig, schema: KeypointSchema, max_people: int) -> MultiPersonImages:
    """The images of a configured split (COCO-format annotations)."""
    if dataset.format == "mpii":
        raise ConfigError("data.*.format: bottom-up models need COCO-format annotations, not mpii")
    return read_multiperson(dataset.annotations, dataset.images, schema, max_people)


def group_maps(
    heatmaps: np.ndarray, tags: np.ndarray, stride: float, grouping: GroupingConfig = GroupingConfig()
) -> tuple[np.ndarray, np.ndarray]:
    """People ``(N, K, 3)`` in input pixels and their scores ``(N,)`` from one image's
    ``(h, w, K)`` heatmaps and ``(h, w, K[, D])`` tags (:mod:`kpose.runtime.grouping`)."""
    candidates = find_candidates(heatmaps, tags, stride, grouping.top_k)
    return group_people(candidates, grouping.detection_threshold, grouping.tag_threshold, grouping.refine)


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
    grouping: GroupingConfig = GroupingConfig(),
) -> list[dict]:
    """COCO keypoint results (image pixels) of every image of an unaugmented dataset.

    Returns:
        ``[{"image_id", "category_id": 1, "keypoints": [x, y, score] * K, "score"}]``.
    """
    input_height = model.input.shape[1]
    results = []
    for batch in dataset.as_numpy_iterator():
        images = batch["image"].astype(np.float32)
        out = model.predict_on_batch(images)
        heatmaps, tags = np.asarray(out["heatmaps"]), np.asarray(out["tags"])
        if flip_test:
            flipped = model.predict_on_batch(images[:, :, ::-1])
        stride = input_height / heatmaps.shape[1]
        for i in range(len(images)):
            maps, tag = heatmaps[i], tags[i]
            if flip_test:
                maps, tag = flip_merge(
                    maps, tag, np.asarray(flipped["heatmaps"][i]), np.asarray(flipped["tags"][i]),
                    schema.flip_index,
                )
            people, scores = group_maps(maps, tag, stride, grouping)
            results += coco_results(people, scores, batch["matrix"][i], int(batch["image_id"][i]))
    return results


def score_results(results: list[dict], annotations: str | Path, schema: KeypointSchema) -> dict[str, float]:
    """pycocotools keypoint metrics of ``results``; 0 on every metric when nobody was found."""
    if not results:
        return {metric.name: 0.0 for metric in COCO_METRICS}
    return evaluate_coco(results, annotations, schema)


def evaluate_bottomup(
    model: keras.Model,
    images: MultiPersonImages,
    annotations: str | Path,
    schema: KeypointSchema,
    batch_size: int = 8,
    flip_test: bool = False,
    grouping: GroupingConfig = GroupingConfig(),
) -> dict[str, float]:
    """COCO keypoint AP/AR of ``model`` on whole images (no person boxes)."""
    input_size = tuple(model.input.shape[1:3])
    dataset = make_bottomup_dataset(images, schema, input_size, batch_size, training=False)
    return score_results(predict_people(model, dataset, schema, flip_test, grouping), annotations, schema)


def is_bottomup_model_file(path: str | Path) -> bool:
    """Whether a saved ``.keras`` model is a bottom-up one (by its model name), without
    loading its weights."""
    try:
        with zipfile.ZipFile(path) as archive:
            name = json.loads(archive.read("config.json")).get("config", {}).get("name", "")
        return parse_model_name(name)[0].task == "bottomup"
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return False


def evaluate_bottomup_file(
    model_path: str | Path,
    dataset: DatasetConfig,
    schema: KeypointSchema,
    batch_size: int = 8,
    flip_test: bool = False,
    results_file: Path | None = None,
) -> dict[str, float]:
    """``kpose eval --model`` for a saved bottom-up model: COCO AP on ``dataset``'s whole
    images; the COCO results are written to ``results_file`` if given."""
    from kpose.engine.evaluate import load_pose_model

    model = load_pose_model(model_path)
    if model.output["heatmaps"].shape[-1] != schema.num_keypoints:
        raise ConfigError(
            f"{model_path} predicts {model.output['heatmaps'].shape[-1]} keypoints but schema "
            f"{schema.name!r} has {schema.num_keypoints}"
        )
    images = read_images(dataset, schema, MAX_PEOPLE)
    data = make_bottomup_dataset(images, schema, tuple(model.input.shape[1:3]), batch_size, training=False)
    return save_and_score(predict_people(model, data, schema, flip_test), dataset, schema, results_file)


def save_and_score(
    results: list[dict], dataset: DatasetConfig, schema: KeypointSchema, results_file: Path | None
) -> dict[str, float]:
    """Write COCO results to ``results_file`` (if given) and score them on ``dataset``."""
    if results_file is not None:
        Path(results_file).write_text(json.dumps(results))
    return score_results(results, dataset.annotations, schema)


def compile_bottomup(model: keras.Model, config: Config, optimizer: keras.optimizers.Optimizer) -> None:
    """Masked heatmap MSE on ``heatmaps``, push/pull on ``tags`` (weights: DEFAULT_LOSS_WEIGHTS,
    overridden by ``train.loss_weights``)."""
    outputs = list(model.output)
    unknown = sorted(set(config.train.loss_weights) - set(outputs))
    if unknown:
        raise ConfigError(f"train.loss_weights: unknown output(s) {unknown}; the model's outputs are {outputs}")
    shape = (config.model.input_size, config.data.max_people, model.output["heatmaps"].shape[-1])
    model.compile(
        optimizer=optimizer,
        loss={
            "heatmaps": MultiPersonHeatmapLoss(*shape, sigma_at_stride_4=config.train.sigma),
            "tags": AssociativeEmbeddingLoss(*shape),
        },
        loss_weights={**DEFAULT_LOSS_WEIGHTS, **config.train.loss_weights},
        jit_compile=config.train.jit_compile,
    )


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
        metrics = evaluate_bottomup(
            self.model, self.images, self.config.data.val.annotations, self.schema,
            self.config.eval.batch_size, self.config.eval.flip_test,
        )
        logs.update({f"val_{k}": v for k, v in metrics.items()})
        print(f"Epoch {epoch + 1}: " + ", ".join(f"val_{k}={v:.4f}" for k, v in metrics.items()), flush=True)


def fit_bottomup(
    config: Config, schema: KeypointSchema, strategy: tf.distribute.Strategy, run_dir: Path
) -> tuple[keras.Model, keras.callbacks.History]:
    """Whole images: read, build, compile and ``model.fit`` (called by
    :func:`kpose.engine.fit.train`, which sets up and finishes the run directory). The best
    model is chosen by ``val_AP`` when a validation split is configured."""
    from kpose.engine.fit import build_model, check_batch_size, fit_epochs, make_optimizer, stream_seed

    train_images = read_images(config.data.train, schema, config.data.max_people)
    val_images = read_images(config.data.val, schema, config.data.max_people) if config.data.val else None
    batch = check_batch_size(config, strategy)
    decode_log = DecodeLog(train_images.source)
    train_ds = make_bottomup_dataset(
        train_images, schema, config.model.input_size, batch, training=True, seed=stream_seed(config, run_dir),
        augment=config.data.augment, decode_log=decode_log,
    ).repeat()
    steps_per_epoch = config.train.steps_per_epoch or max(1, len(train_images) // batch)
    with strategy.scope():
        model = build_model(config, schema)
        compile_bottomup(model, config, make_optimizer(config, steps_per_epoch))
    callbacks = cb.training_callbacks(config, run_dir, model, schema, None, None, decode_log)
    if val_images is not None:
        callbacks[1:1] = [
            BottomUpEvaluate(config, schema, val_images),
            cb.BestCheckpoint(run_dir, "val_AP"),
        ]
    history = fit_epochs(
        model, train_ds.map(fit_targets, num_parallel_calls=tf.data.AUTOTUNE), config, steps_per_epoch, callbacks
    )
    return model, history
