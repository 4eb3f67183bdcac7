"""The top-down ``tf.data`` pipeline: person samples in, batches of augmented crops out.

Per sample, one affine warp takes the person's region of the image to the model's input
size. The work is split in two stages:

* planning, vectorized over a block of samples: augmentation (:mod:`kpose.data.augment`),
  the crop matrix, keypoints in crop pixels and their weights, and what part of the image
  the crop needs: the region's bounding box, clipped to the image, and a JPEG DCT scaling
  ``ratio`` (1, 2, 4, 8) when the region is at least that many times larger than the crop;
* loading, per sample and in parallel: read the file, decode only that window of the JPEG
  at that ratio (``decode_and_crop_jpeg``; PNG and others are decoded whole) and warp it
  with OpenCV (:func:`kpose.geometry.warp.warp_crop`, the warp a device runtime uses too).

Images are probed once before anything is built (:func:`kpose.data.images.probe_samples`):
missing and corrupt files are dropped and counted in the log. A file that still fails to
decode inside the pipeline (a JPEG without scan data, a file changed since) is skipped: the
decode step returns a flag, a filter drops the sample, and a :class:`DecodeLog` names the
file in the log (once per file) and counts it, so training can tell an epoch of skipped
images from an epoch of data (:class:`kpose.engine.callbacks.DecodeCheck`).

Elements (batched): ``image`` (H, W, 3) uint8 RGB crop; ``keypoints`` (K, 2) float32 crop
pixels (flipped samples have left and right swapped); ``weights`` (K,) float32, 1 where the
keypoint is labeled and inside the crop; ``center``, ``scale`` (2,) float32 image pixels of
the region cropped (after half-body, shift and scale augmentation; rotation and flip are
not included); ``image_id`` int64; ``box_score``, ``area`` float32; ``sample_index`` int64,
the row of ``samples``. No normalization and no heatmaps: those belong to the model.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
from typing import Callable

import numpy as np
import tensorflow as tf

from kpose import geometry
from kpose.data.augment import AugmentConfig, sample_regions
from kpose.data.images import JPEG, probe_samples
from kpose.data.samples import PersonSamples
from kpose.geometry import warp_crop
from kpose.errors import ConfigError, KposeError
from kpose.geometry import affine_tf
from kpose.keypoints import KeypointSchema, get_schema

log = logging.getLogger("kpose.data")

JPEG_RATIOS = (1, 2, 4, 8)
PLAN_BLOCK = 64  # samples planned together
CACHE_MEMORY_FRACTION = 0.25  # of physical memory, at most, for cache=True
PASSED_THROUGH = ("image_id", "box_score", "area", "sample_index")  # table columns in elements
# What an element carries besides ``image``.
ELEMENT_KEYS = ("keypoints", "weights", "center", "scale", *PASSED_THROUGH)
DECODED = "decoded"  # a loaded element's flag: its image decoded (else it is dropped)


class DecodeLog:
    """Images decoded and skipped inside a pipeline: counts, and the files that failed.

    Attributes:
        source: the annotation file the samples come from (for messages).
        decoded: decodes that succeeded, in total.
        failed: decodes that failed, in total.
        files: every file that failed, with its first error.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.decoded = 0
        self.failed = 0
        self.files: dict[str, str] = {}
        self._lock = threading.Lock()

    def record(self, path: str, error: str | None) -> None:
        """Count one decode of ``path``; ``error`` if it failed (logged the first time)."""
        with self._lock:
            if error is None:
                self.decoded += 1
                return
            self.failed += 1
            first = path not in self.files
            self.files.setdefault(path, error)
        if first:
            log.warning("%s: cannot decode, skipped (%s)", path, error)

    def summary(self, limit: int = 3) -> str:
        """``"F of N decodes failed (a.jpg, b.jpg, +2 more)"``."""
        names = list(self.files)
        shown = ", ".join(names[:limit]) + (f", +{len(names) - limit} more" if len(names) > limit else "")
        return f"{self.failed} of {self.decoded + self.failed} decodes failed ({shown or 'no file'})"


def _op_error(exc: tf.errors.OpError) -> str:
    """The gist of a TensorFlow op error: its first line without the function and op names."""
    lines = (exc.message or type(exc).__name__).splitlines()
    return re.sub(r"\{\{[^}]*\}\}\s*|\s*\[Op:\w+\]", "", lines[0]).strip()


def decode_and_warp(
    path: tf.Tensor,
    args: list[tf.Tensor],
    decode: Callable[..., tf.Tensor],
    matrix: tf.Tensor,
    output_size: tuple[int, int],
    decode_log: DecodeLog,
) -> tuple[tf.Tensor, tf.Tensor]:
    """``decode(file_bytes, *args)`` warped by ``matrix`` (:func:`warp_crop`), in one
    ``tf.numpy_function``: the decode runs eagerly, so that a failure is caught, not raised,
    and the decoded image never leaves the function (one hop, no copy into the graph).

    Returns:
        ``(H, W, 3)`` uint8 crop at ``output_size`` (black where the decode failed) and a
        bool scalar, True where it decoded; each decode is recorded in ``decode_log``.
    """
    height, width = output_size

    def run(path_bytes: bytes, warp: np.ndarray, *values: np.ndarray) -> tuple[np.ndarray, bool]:
        name = path_bytes.decode()
        try:
            image = decode(tf.io.read_file(name), *map(tf.constant, values)).numpy()
        except tf.errors.OpError as exc:
            decode_log.record(name, _op_error(exc))
            return np.zeros((height, width, 3), np.uint8), np.bool_(False)
        decode_log.record(name, None)
        return warp_crop(image, warp, output_size), np.bool_(True)

    crop, ok = tf.numpy_function(run, [path, matrix, *args], [tf.uint8, tf.bool], stateful=True)
    return tf.ensure_shape(crop, [height, width, 3]), tf.ensure_shape(ok, [])


class _DecodedImages:
    """Every distinct image decoded once and kept in memory (``cache=True``).

    Crops are warped straight from these arrays inside ``tf.numpy_function``, so the
    images are never copied into the graph.
    """

    def __init__(self, paths: np.ndarray, output_size: tuple[int, int]) -> None:
        unique, self.index = np.unique(paths.astype(str), return_inverse=True)
        self.arrays: list[np.ndarray] = []
        self.failed = np.zeros(len(unique), bool)
        self.output_size = output_size
        for i, path in enumerate(unique):
            try:
                image = decode_whole(tf.io.read_file(path))
                self.arrays.append(image.numpy())
            except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as exc:
                log.warning("%s: cannot decode, skipped (%s)", path, exc.message.splitlines()[0])
                self.failed[i] = True
                self.arrays.append(np.zeros((1, 1, 3), np.uint8))

    def crop(self, index: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        """The crop of image ``index`` under the image -> crop ``matrix`` (numpy)."""
        return warp_crop(self.arrays[int(index)], matrix, self.output_size)


def _check_cache_size(sizes: np.ndarray, paths: np.ndarray) -> None:
    _, first = np.unique(paths.astype(str), return_index=True)
    needed = int((sizes[first].astype(np.int64).prod(axis=1) * 3).sum())
    budget = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") * CACHE_MEMORY_FRACTION
    if needed > budget:
        raise ConfigError(
            f"cache=True would hold {needed / 2**30:.1f} GiB of decoded images, more than "
            f"{CACHE_MEMORY_FRACTION:.0%} of this machine's memory; use cache=False for a set this large"
        )


def _decode_plan(
    matrix: tf.Tensor, scale: tf.Tensor, sizes: tf.Tensor, windowed: tf.Tensor, output_size: tuple[int, int]
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """What to decode for each crop, and the warp from the decoded pixels.

    Args:
        matrix: ``(B, 2, 3)`` image -> crop.
        scale: ``(B, 2)`` region size, image pixels.
        sizes: ``(B, 2)`` int32 image (height, width).
        windowed: ``(B,)`` bool, decode a window at a DCT ratio (JPEG files) or not.
        output_size: crop (height, width).

    Returns:
        ``window (B, 4)`` int32 ``[y, x, h, w]`` in pixels of the ratio-scaled image (the
        whole image where not ``windowed``), ``ratio_index (B,)`` int32 into
        :data:`JPEG_RATIOS`, and ``(B, 2, 3)`` the matrix from window pixels to crop pixels.
    """
    out_h, out_w = output_size
    left, top, right, bottom = -0.5, -0.5, out_w - 0.5, out_h - 0.5  # the crop's outer pixel edges
    corners = tf.constant([[left, top], [right, top], [left, bottom], [right, bottom]])
    region = affine_tf.transform_points(corners[None], affine_tf.invert_affine(matrix))
    lo = tf.reduce_min(region, axis=1) - 1.0  # one more pixel for bilinear support
    hi = tf.reduce_max(region, axis=1) + 1.0
    # The largest ratio that still leaves at least one decoded pixel per crop pixel.
    pixels_per_crop_pixel = scale[:, 0] / out_w
    log2_ratio = tf.clip_by_value(tf.floor(tf.math.log(pixels_per_crop_pixel) / np.log(2.0)), 0.0, 3.0)
    ratio_index = tf.where(windowed, tf.cast(log2_ratio, tf.int32), 0)
    ratio = tf.cast(tf.bitwise.left_shift(1, ratio_index), tf.float32)[:, None]
    size_xy = tf.cast(tf.reverse(sizes, axis=[1]), tf.float32)
    scaled_max = tf.math.ceil(size_xy / ratio) - 1.0  # last pixel of the scaled image
    # A decoded pixel u covers image pixels [r u, r u + r), its centre is r u + (r - 1) / 2.
    half = (ratio - 1.0) / 2.0
    start = tf.clip_by_value(tf.floor((lo - half) / ratio), 0.0, scaled_max)
    stop = tf.clip_by_value(tf.math.ceil((hi - half) / ratio), 0.0, scaled_max)
    start = tf.where(windowed[:, None], start, 0.0)
    stop = tf.where(windowed[:, None], stop, size_xy - 1.0)
    extent = stop - start + 1.0
    window = tf.cast(tf.stack([start[:, 1], start[:, 0], extent[:, 1], extent[:, 0]], axis=1), tf.int32)
    linear = matrix[..., :2]
    shift = tf.linalg.matvec(linear, ratio * start + half) + matrix[..., 2]
    return window, ratio_index, tf.concat([linear * ratio[:, None], shift[..., None]], axis=-1)


def decode_whole(data: tf.Tensor) -> tf.Tensor:
    """Any image file's bytes (JPEG, PNG, BMP, GIF's first frame) -> ``(h, w, 3)`` uint8."""
    return tf.io.decode_image(data, channels=3, expand_animations=False)


def _decode(data: tf.Tensor, kind: tf.Tensor, window: tf.Tensor, ratio_index: tf.Tensor) -> tf.Tensor:
    """Decode a JPEG window at a DCT ratio, or any other image whole; ``(h, w, 3)`` uint8."""

    def jpeg() -> tf.Tensor:
        branches = [
            functools.partial(tf.io.decode_and_crop_jpeg, data, window, channels=3, ratio=r)
            for r in JPEG_RATIOS
        ]
        return tf.switch_case(ratio_index, branches)

    return tf.cond(kind == JPEG, jpeg, lambda: decode_whole(data))


def _usable_rows(
    samples: PersonSamples, cache: bool, output_size: tuple[int, int]
) -> tuple[PersonSamples, dict[str, np.ndarray], _DecodedImages | None]:
    """The rows whose images can be read, their per-row image facts, and the decoded cache.

    Returns:
        ``rows``; columns ``sample_index`` (row in ``samples``), ``kind``, ``size`` (h, w)
        and ``image_index`` (into the cache); the cache or None.
    """
    probed = probe_samples(samples)
    rows = probed.samples
    columns = {"sample_index": probed.rows, "kind": probed.kinds, "size": probed.sizes}
    if not cache:
        return rows, {**columns, "image_index": np.zeros(len(rows), np.int64)}, None
    _check_cache_size(probed.sizes, rows.image_paths)
    images = _DecodedImages(rows.image_paths, output_size)
    ok = ~images.failed[images.index]
    if not ok.any():
        raise KposeError(f"{samples.source}: none of the images could be decoded")
    columns = {key: value[ok] for key, value in columns.items()}
    return rows.select(ok), {**columns, "image_index": images.index[ok]}, images


def _plan(
    s: dict[str, tf.Tensor],
    seed: tf.Tensor,
    schema: KeypointSchema,
    augment: AugmentConfig | None,
    output_size: tuple[int, int],
    windowed_jpeg: bool,
) -> dict[str, tf.Tensor]:
    """Plan a block of samples: region, keypoints, weights, what to decode, the warp.

    Args:
        s: the samples' table columns, ``(B, ...)``.
        seed: ``(2,)`` seed of the block's augmentation.
        schema: keypoint schema.
        augment: augmentation settings, or None for none.
        output_size: crop (height, width).
        windowed_jpeg: decode JPEG windows at DCT ratios (False: whole images).
    """
    out_h, out_w = output_size
    center, scale = s["center"], s["scale"]
    if augment is not None:
        center, scale, rotation, flip = sample_regions(
            seed, center, scale, s["keypoints"], s["visibility"], schema, augment, out_w / out_h
        )
    else:
        rotation = tf.zeros_like(center[:, 0])
        flip = tf.zeros_like(rotation, tf.bool)
    matrix = affine_tf.crop_matrix(center, scale, output_size, rotation, flip)
    keypoints = affine_tf.transform_points(s["keypoints"], matrix)
    visibility = s["visibility"]
    flip_index = tf.constant(schema.flip_index, tf.int32)
    keypoints = tf.where(flip[:, None, None], tf.gather(keypoints, flip_index, axis=1), keypoints)
    visibility = tf.where(flip[:, None], tf.gather(visibility, flip_index, axis=1), visibility)
    inside = tf.reduce_all((keypoints >= -0.5) & (keypoints <= [out_w - 0.5, out_h - 0.5]), axis=-1)
    windowed = (s["kind"] == JPEG) & windowed_jpeg
    window, ratio_index, warp = _decode_plan(matrix, scale, s["size"], windowed, output_size)
    return {
        **{key: s[key] for key in ("path", "kind", "image_index", *PASSED_THROUGH)},
        "window": window,
        "ratio_index": ratio_index,
        "warp": warp,
        "keypoints": keypoints,
        "weights": tf.cast((visibility > 0) & inside, tf.float32),
        "center": center,
        "scale": scale,
    }


def _load(
    plan: dict[str, tf.Tensor],
    images: _DecodedImages | None,
    output_size: tuple[int, int],
    decode_log: DecodeLog,
) -> dict[str, tf.Tensor]:
    """Decode (or fetch) and warp one planned sample into an element, with its
    :data:`DECODED` flag."""
    if images is None:
        crop, decoded = decode_and_warp(
            plan["path"], [plan["kind"], plan["window"], plan["ratio_index"]], _decode, plan["warp"],
            output_size, decode_log,
        )
    else:
        crop = tf.numpy_function(images.crop, [plan["image_index"], plan["warp"]], tf.uint8, stateful=False)
        decoded = tf.constant(True)  # the cache dropped what failed
    element = {"image": tf.ensure_shape(crop, [*output_size, 3]), **{key: plan[key] for key in ELEMENT_KEYS}}
    return {**element, DECODED: decoded}


def make_topdown_dataset(
    samples: PersonSamples,
    schema: str | KeypointSchema,
    input_size: tuple[int, int] = (256, 192),
    batch_size: int = 32,
    training: bool = True,
    seed: int | None = None,
    cache: bool = False,
    augment: AugmentConfig | None = None,
    padding: float = geometry.DEFAULT_PADDING,
    num_parallel_calls: int = tf.data.AUTOTUNE,
    threads: int | None = None,
    drop_remainder: bool | None = None,
    decode_log: DecodeLog | None = None,
) -> tf.data.Dataset:
    """Batches of top-down crops (see the module docstring for the elements).

    Args:
        samples: person rows from a reader (:mod:`kpose.data.coco`, :mod:`kpose.data.mpii`).
        schema: keypoint schema (its flip pairs swap left and right in flipped crops).
        input_size: crop ``(height, width)`` in pixels.
        batch_size: crops per batch.
        training: shuffle and augment (``augment``, default :class:`AugmentConfig`); else
            keep the samples' order, no augmentation, and keep the last partial batch.
        seed: fixes shuffling and augmentation: the same seed gives the same batches, and
            every pass over the dataset (epoch) draws anew. None: random.
        cache: decode every image once and keep it in memory (small sets only).
        augment: augmentation settings for training.
        padding: person box -> region padding (1.25 as in the papers).
        num_parallel_calls: parallel loads (read, decode, warp).
        threads: if set, run the pipeline on its own pool of this many threads with one
            thread per op (what ``kpose bench data`` uses to measure per-core throughput).
        drop_remainder: drop a last partial batch; default: ``training``.
        decode_log: counts the images that fail to decode inside the pipeline (they are
            skipped); default: a log of its own, which still names each file.

    Raises:
        ConfigError: bad arguments, or a schema that does not match the samples.
        KposeError: no sample has a readable image, or fewer than a batch with
            ``drop_remainder``.
    """
    schema = get_schema(schema)
    output_size = (int(input_size[0]), int(input_size[1]))
    if min(output_size) < 1 or batch_size < 1:
        raise ConfigError(f"input_size {input_size} and batch_size {batch_size} must be positive")
    if samples.num_keypoints != schema.num_keypoints:
        raise ConfigError(
            f"schema {schema.name!r} has {schema.num_keypoints} keypoints but the samples from "
            f"{samples.source} have {samples.num_keypoints}"
        )
    drop_remainder = training if drop_remainder is None else drop_remainder
    rows, columns, images = _usable_rows(samples, cache, output_size)
    n = len(rows)
    if drop_remainder and n < batch_size:
        raise KposeError(f"{samples.source}: {n} usable samples, fewer than one batch of {batch_size}")
    log.info("%s: %d person samples from %d images", samples.source, n, len(set(rows.image_paths)))

    center, scale = geometry.box_to_center_scale(rows.boxes, output_size[1] / output_size[0], padding)
    table = {
        key: tf.constant(value)
        for key, value in {
            "path": rows.image_paths.astype(str),
            "center": center.astype(np.float32),
            "scale": scale.astype(np.float32),
            "keypoints": rows.keypoints,
            "visibility": rows.visibility,
            "image_id": rows.image_ids,
            "box_score": rows.scores,
            "area": rows.areas,
            **columns,
        }.items()
    }
    plan = functools.partial(
        _plan,
        schema=schema,
        augment=(augment or AugmentConfig()) if training else None,
        output_size=output_size,
        windowed_jpeg=images is None,
    )

    decode_log = decode_log or DecodeLog(samples.source)
    load = functools.partial(_load, images=images, output_size=output_size, decode_log=decode_log)
    return planned_dataset(
        table, plan, load, training=training, seed=seed, batch_size=batch_size,
        drop_remainder=drop_remainder, num_parallel_calls=num_parallel_calls, threads=threads,
    )


def _without_flag(element: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    return {key: value for key, value in element.items() if key != DECODED}


def planned_dataset(
    table: dict[str, tf.Tensor],
    plan: Callable[[dict[str, tf.Tensor], tf.Tensor], dict[str, tf.Tensor]],
    load: Callable[[dict[str, tf.Tensor]], dict[str, tf.Tensor]],
    *,
    training: bool,
    seed: int,
    batch_size: int,
    drop_remainder: bool,
    num_parallel_calls: int,
    threads: int | None = None,
) -> tf.data.Dataset:
    """The deterministic skeleton shared by the top-down and bottom-up pipelines: the rows of
    ``table`` in (seeded, per-pass reshuffled) order, planned ``PLAN_BLOCK`` at a time by
    ``plan(block, seed_pair)`` (vectorized augmentation draws), loaded one by one by ``load``
    (decode + warp, with a :data:`DECODED` flag), those that failed to decode dropped,
    batched and prefetched."""
    n = int(next(iter(table.values())).shape[0])

    def plan_block(index: tf.Tensor, rand: tf.Tensor) -> dict[str, tf.Tensor]:
        block = {key: tf.gather(column, index) for key, column in table.items()}
        return plan(block, tf.stack([rand, tf.constant(0, tf.int64)]))

    order = tf.data.Dataset.range(n)
    if training:
        order = order.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    blocks = tf.data.Dataset.zip(
        order.batch(PLAN_BLOCK), tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    )
    dataset = (
        blocks.map(plan_block)
        .unbatch()
        .map(load, num_parallel_calls=num_parallel_calls, deterministic=True)
        .filter(lambda element: element[DECODED])
        .map(_without_flag)
        .batch(batch_size, drop_remainder=drop_remainder)
        .prefetch(tf.data.AUTOTUNE)
    )
    options = tf.data.Options()
    options.deterministic = True
    if threads:
        options.threading.private_threadpool_size = threads
        options.threading.max_intra_op_parallelism = 1
    return dataset.with_options(options)
