"""The bottom-up (multi-person) ``tf.data`` pipeline: whole images in, every person's
keypoints and an ignore mask out.

Each image is resized and padded to the model's input size by one affine warp (the image's
longer side fits the input; its centre at the input's centre), with the training
augmentation folded into the same warp: scale, rotation, shift and horizontal flip, drawn by
:func:`kpose.data.augment.sample_regions` (its half-body step never applies to whole images).

Reading (:func:`read_multiperson`): per image, up to ``max_people`` annotated people (largest
first) are kept; crowd regions, people without labeled keypoints and people beyond
``max_people`` become ignore regions: the loss ignores their pixels, traced by their
segmentation polygons or RLE masks (their boxes when they have none; :mod:`kpose.data.regions`).

Elements (batched): ``image`` (H, W, 3) uint8 RGB; ``keypoints`` (P, K, 2) float32 input
pixels (flipped images have left and right swapped); ``weights`` (P, K) float32, 1 where the
keypoint is labeled and inside the input; ``mask`` (H, W) uint8, 0 on ignored regions;
``matrix`` (2, 3) float32 image -> input; ``image_id`` int64. No heatmaps: the loss renders
them in the training step.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from kpose.data.augment import AugmentConfig, sample_regions
from kpose.data.cocofile import load_annotations
from kpose.data.pipeline import DECODED, DecodeLog, decode_and_warp, decode_whole, planned_dataset
from kpose.data.regions import annotation_outlines, draw_mask
from kpose.errors import ConfigError, KposeError
from kpose.geometry import affine_tf
from kpose.keypoints import KeypointSchema, get_schema

log = logging.getLogger("kpose.data")

MAX_PEOPLE = 30


@dataclass(frozen=True)
class MultiPersonImages:
    """Images with all their people, column-wise. N images, P people slots.

    Attributes:
        image_paths: ``(N,)`` str.
        image_ids: ``(N,)`` int64.
        sizes: ``(N, 2)`` int32 image (height, width).
        keypoints: ``(N, P, K, 2)`` float32 image pixels; ``visibility`` ``(N, P, K)`` COCO
            flags (0 in empty slots).
        ignore_regions: per image, the outlines of the regions to ignore (image pixels, each
            ``(V, 2)`` float32; :mod:`kpose.data.regions`).
        source: the annotation file.
    """

    image_paths: np.ndarray
    image_ids: np.ndarray
    sizes: np.ndarray
    keypoints: np.ndarray
    visibility: np.ndarray
    ignore_regions: tuple[list[np.ndarray], ...]
    source: str = ""

    def __len__(self) -> int:
        return len(self.image_paths)


def read_multiperson(
    annotation_file: str | Path,
    image_dir: str | Path,
    schema: str | KeypointSchema = "coco",
    max_people: int = MAX_PEOPLE,
) -> MultiPersonImages:
    """Every image of a COCO keypoint file with its people and ignore regions.

    Images whose file is missing are dropped with a warning.

    Raises:
        AnnotationError: a malformed file (naming the field).
        ConfigError: ``max_people`` < 1.
        KposeError: no image file of the set exists.
    """
    if max_people < 1:
        raise ConfigError(f"max_people must be >= 1, got {max_people}")
    schema = get_schema(schema)
    dataset, name = load_annotations(annotation_file, schema, area_from_box=1.0)
    k = schema.num_keypoints
    by_image: dict[int, list[dict]] = {}
    for ann in dataset["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    rows, missing = [], []
    for image in sorted(dataset["images"], key=lambda im: im["id"]):
        path = Path(image_dir) / image["file_name"]
        if not path.exists():
            missing.append(str(path))
            continue
        anns = sorted(by_image.get(image["id"], []), key=lambda a: -a["area"])
        people = [a for a in anns if not a["iscrowd"] and a["num_keypoints"] > 0]
        ignored = [a for a in anns if a["iscrowd"] or a["num_keypoints"] == 0] + people[max_people:]
        rows.append((str(path), image, people[:max_people], ignored))
    if missing:
        log.warning("%s: %d image files missing, dropped (first: %s)", name, len(missing), missing[0])
    if not rows:
        raise KposeError(f"{name}: none of the images exists under {image_dir}")
    keypoints = np.zeros((len(rows), max_people, k, 3), np.float32)
    for i, (_, _, people, _) in enumerate(rows):
        for p, ann in enumerate(people):
            keypoints[i, p] = np.reshape(ann["keypoints"], (k, 3))
    ignore_regions = tuple(
        [o for ann in ignored for o in annotation_outlines(ann, image["height"], image["width"])]
        for _, image, _, ignored in rows
    )
    return MultiPersonImages(
        image_paths=np.array([r[0] for r in rows]),
        image_ids=np.array([r[1]["id"] for r in rows], np.int64),
        sizes=np.array([(r[1]["height"], r[1]["width"]) for r in rows], np.int32),
        keypoints=keypoints[..., :2],
        visibility=keypoints[..., 2],
        ignore_regions=ignore_regions,
        source=name,
    )


def whole_image_region(sizes: tf.Tensor, input_size: tuple[int, int]) -> tuple[tf.Tensor, tf.Tensor]:
    """``center (B, 2)`` and ``scale (B, 2)`` (image pixels, the input's aspect) of the
    smallest region holding the whole image: the image fits the input, padded."""
    out_h, out_w = input_size
    size_xy = tf.cast(tf.reverse(sizes, axis=[-1]), tf.float32)
    center = (size_xy - 1.0) / 2.0
    width = tf.maximum(size_xy[..., 0], size_xy[..., 1] * out_w / out_h)
    return center, tf.stack([width, width * out_h / out_w], axis=-1)


def _plan(
    s: dict[str, tf.Tensor],
    seed: tf.Tensor,
    schema: KeypointSchema,
    augment: AugmentConfig | None,
    input_size: tuple[int, int],
) -> dict[str, tf.Tensor]:
    """Warp matrix, keypoints and weights of a block of images ``(B, ...)``."""
    out_h, out_w = input_size
    center, scale = whole_image_region(s["size"], input_size)
    if augment is not None:
        batch = tf.shape(center)[0]
        no_keypoints = tf.zeros([batch, schema.num_keypoints, 2])  # whole images: no half body
        center, scale, rotation, flip = sample_regions(
            seed, center, scale, no_keypoints, no_keypoints[..., 0], schema, augment, out_w / out_h
        )
    else:
        rotation = tf.zeros_like(center[:, 0])
        flip = tf.zeros_like(rotation, tf.bool)
    matrix = affine_tf.crop_matrix(center, scale, input_size, rotation, flip)  # (B, 2, 3)
    keypoints = affine_tf.transform_points(s["keypoints"], matrix[:, None])  # (B, P, K, 2)
    visibility = s["visibility"]
    flip_index = tf.constant(schema.flip_index, tf.int32)
    keypoints = tf.where(flip[:, None, None, None], tf.gather(keypoints, flip_index, axis=2), keypoints)
    visibility = tf.where(flip[:, None, None], tf.gather(visibility, flip_index, axis=2), visibility)
    inside = tf.reduce_all((keypoints >= -0.5) & (keypoints <= [out_w - 0.5, out_h - 0.5]), axis=-1)
    return {
        "path": s["path"],
        "index": s["index"],
        "image_id": s["image_id"],
        "matrix": matrix,
        "keypoints": keypoints,
        "weights": tf.cast((visibility > 0) & inside, tf.float32),
    }


def _load(
    plan: dict[str, tf.Tensor],
    input_size: tuple[int, int],
    ignore_regions: tuple[list[np.ndarray], ...],
    decode_log: DecodeLog,
) -> dict[str, tf.Tensor]:
    """Decode and warp one planned image and draw its mask (``ignore_regions[index]``), with
    the :data:`~kpose.data.pipeline.DECODED` flag."""
    crop, decoded = decode_and_warp(plan["path"], [], decode_whole, plan["matrix"], input_size, decode_log)
    mask = tf.numpy_function(
        lambda index, matrix: draw_mask(ignore_regions[index], matrix, input_size),
        [plan["index"], plan["matrix"]], tf.uint8, stateful=False,
    )
    return {
        "image": tf.ensure_shape(crop, [*input_size, 3]),
        "mask": tf.ensure_shape(mask, input_size),
        **{key: plan[key] for key in ("keypoints", "weights", "matrix", "image_id")},
        DECODED: decoded,
    }


def make_bottomup_dataset(
    images: MultiPersonImages,
    schema: str | KeypointSchema,
    input_size: tuple[int, int] = (512, 512),
    batch_size: int = 16,
    training: bool = True,
    seed: int | None = None,
    augment: AugmentConfig | None = None,
    num_parallel_calls: int = tf.data.AUTOTUNE,
    drop_remainder: bool | None = None,
    decode_log: DecodeLog | None = None,
) -> tf.data.Dataset:
    """Batches of whole images with every person's keypoints (see the module docstring).

    Args:
        images: from :func:`read_multiperson`.
        schema: keypoint schema (its flip pairs swap left and right in flipped images).
        input_size: model input ``(height, width)``.
        batch_size: images per batch.
        training: shuffle and augment (``augment``, default :class:`AugmentConfig`); else
            keep the order, no augmentation, keep the last partial batch.
        seed: fixes shuffling and augmentation (every epoch still draws anew).
        drop_remainder: default ``training``.
        decode_log: counts the images that fail to decode (they are skipped).

    Raises:
        ConfigError: bad sizes, or a schema that does not match the images.
        KposeError: fewer images than one batch with ``drop_remainder``.
    """
    schema = get_schema(schema)
    input_size = (int(input_size[0]), int(input_size[1]))
    if min(input_size) < 1 or batch_size < 1:
        raise ConfigError(f"input_size {input_size} and batch_size {batch_size} must be positive")
    if images.keypoints.shape[2] != schema.num_keypoints:
        raise ConfigError(
            f"schema {schema.name!r} has {schema.num_keypoints} keypoints but the images from "
            f"{images.source} have {images.keypoints.shape[2]}"
        )
    drop_remainder = training if drop_remainder is None else drop_remainder
    n = len(images)
    if drop_remainder and n < batch_size:
        raise KposeError(f"{images.source}: {n} images, fewer than one batch of {batch_size}")
    table = {
        "path": tf.constant(images.image_paths.astype(str)),
        "size": tf.constant(images.sizes),
        "keypoints": tf.constant(images.keypoints),
        "visibility": tf.constant(images.visibility),
        "index": tf.range(n),
        "image_id": tf.constant(images.image_ids),
    }
    plan = functools.partial(
        _plan, schema=schema, augment=(augment or AugmentConfig()) if training else None, input_size=input_size
    )

    load = functools.partial(
        _load, input_size=input_size, ignore_regions=images.ignore_regions,
        decode_log=decode_log or DecodeLog(images.source),
    )
    return planned_dataset(
        table, plan, load, training=training, seed=seed,
        batch_size=batch_size, drop_remainder=drop_remainder, num_parallel_calls=num_parallel_calls,
    )
