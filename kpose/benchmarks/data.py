"""``kpose bench data``: crops per second of the top-down training pipeline, per CPU core.

On a synthetic set of COCO-sized (640x480) JPEGs, each input size is measured for:

* ``decode+tf warp``: the plain way: decode the whole JPEG, warp with TensorFlow's
  ``ImageProjectiveTransformV3`` (same random scale, rotation and flip);
* ``decode+cv2 warp``: the same with the OpenCV warp kpose uses;
* ``kpose``: :func:`kpose.data.pipeline.make_topdown_dataset` in training mode (window
  decode with DCT scaling, the full augmentation, keypoints and weights);
* ``kpose cached``: the same with ``cache=True`` (images decoded once, kept in memory).

Each runs on a private pool of 1 and of N threads with one thread per op (OpenCV limited to
one thread too); "per core" is crops/s divided by threads and "per CPU-s" crops per second
of process CPU time, a per-core figure that does not depend on the thread count. Rates are
the median of ``--repeats`` timed runs after a warm-up. TensorFlow is imported in ``run``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from kpose.data.samples import PersonSamples
from kpose.errors import ConfigError
from kpose.utils.arguments import parse_size

if TYPE_CHECKING:
    import tensorflow as tf

VARIANTS = ("decode+tf warp", "decode+cv2 warp", "kpose", "kpose cached")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes", type=lambda text: [parse_size(s) for s in text.split(",")], default="256x192,384x288",
        help="input sizes HEIGHTxWIDTH, comma separated",
    )
    parser.add_argument(
        "--threads", type=lambda text: [int(t) for t in text.split(",")], default="1,2",
        help="thread counts to measure, comma separated",
    )
    parser.add_argument("--images", type=int, default=200, help="synthetic images to generate")
    parser.add_argument("--data", type=Path, help="use this synthetic set (from `kpose data synth`) instead")
    parser.add_argument("--crops", type=int, default=768, help="crops per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per cell (median reported)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="which pipelines, comma separated")


def _plain_dataset(
    samples: PersonSamples, input_size: tuple[int, int], warp: str, threads: int, batch_size: int
) -> tf.data.Dataset:
    """Decode each whole JPEG and warp it: the baseline, with the same kind of augmentation."""
    import numpy as np
    import tensorflow as tf

    from kpose import geometry
    from kpose.geometry import warp_crop

    height, width = input_size
    rng = np.random.default_rng(0)
    n = len(samples)
    center, scale = geometry.box_to_center_scale(samples.boxes, width / height)
    scale = scale * np.clip(1 + 0.5 * rng.normal(size=(n, 1)), 0.5, 1.5)
    rotation = np.where(rng.random(n) < 0.6, np.clip(40 * rng.normal(size=n), -80, 80), 0.0)
    matrix = geometry.crop_matrix(center, scale, input_size, rotation, rng.random(n) < 0.5)
    inverse = geometry.invert_affine(matrix).reshape(n, 6)
    transforms = np.concatenate([inverse, np.zeros((n, 2))], axis=1).astype(np.float32)

    def load(path, forward, transform):
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        if warp == "tf":
            crop = tf.raw_ops.ImageProjectiveTransformV3(
                images=image[None], transforms=transform[None], output_shape=[height, width],
                fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT",
            )[0]
        else:
            crop = tf.numpy_function(lambda im, m: warp_crop(im, m, input_size), [image, forward], tf.uint8)
        return {"image": tf.ensure_shape(crop, [height, width, 3])}

    columns = (samples.image_paths.astype(str), matrix.astype(np.float32), transforms)
    dataset = tf.data.Dataset.from_tensor_slices(columns).repeat()
    dataset = dataset.map(load, num_parallel_calls=threads).batch(batch_size).prefetch(2)
    options = tf.data.Options()
    options.threading.private_threadpool_size = threads
    options.threading.max_intra_op_parallelism = 1
    return dataset.with_options(options)


def _measure(dataset: tf.data.Dataset, crops: int, repeats: int) -> tuple[float, float]:
    """Median crops per wall second and per process-CPU second over ``repeats`` runs."""
    iterator = iter(dataset)
    for _ in range(3):  # warm-up: tracing, thread start, first files
        next(iterator)
    walls, cpus = [], []
    for _ in range(repeats):
        count = 0
        wall, cpu = time.perf_counter(), time.process_time()
        while count < crops:
            count += int(next(iterator)["image"].shape[0])
        walls.append(count / (time.perf_counter() - wall))
        cpus.append(count / (time.process_time() - cpu))
    return statistics.median(walls), statistics.median(cpus)


def run(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np

    from kpose.data.coco import read_coco
    from kpose.data.pipeline import make_topdown_dataset
    from kpose.data.synthetic import write_synthetic_coco

    cv2.setNumThreads(1)
    variants = [v.strip() for v in args.variants.split(",")]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise ConfigError(f"--variants: unknown {unknown}; choose from {list(VARIANTS)}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.data:
            root = Path(args.data)
            annotation_file = root / "annotations" / "person_keypoints_train.json"
            image_dir = root / "images" / "train"
        else:
            synthetic = write_synthetic_coco(tmp, args.images, seed=0)
            annotation_file, image_dir = synthetic.annotation_file, synthetic.image_dir
        samples = read_coco(annotation_file, image_dir)
        jpeg_kb = np.mean([os.path.getsize(p) for p in set(samples.image_paths)]) / 1024
        results = []
        if not args.json:
            print(_header(), flush=True)
        for size in args.sizes:
            for variant in variants:
                for t in args.threads:
                    if variant.startswith("decode"):
                        warp = "tf" if variant.endswith("tf warp") else "cv2"
                        dataset = _plain_dataset(samples, size, warp, t, args.batch_size)
                    else:
                        dataset = make_topdown_dataset(
                            samples, "coco", size, args.batch_size, training=True, seed=0,
                            cache=variant.endswith("cached"), threads=t, num_parallel_calls=t,
                        ).repeat()
                    wall, cpu = _measure(dataset, args.crops, args.repeats)
                    results.append({
                        "input": f"{size[0]}x{size[1]}", "pipeline": variant, "threads": t,
                        "crops_per_s": round(wall, 1),
                        "per_core": round(wall / t, 1),
                        "per_cpu_s": round(cpu, 1),
                    })
                    if not args.json:
                        print(_row(results[-1]), flush=True)
    load = os.getloadavg()[0]
    summary = {
        "samples": len(samples), "images": len(set(samples.image_paths)), "mean_jpeg_kb": round(jpeg_kb, 1),
        "cpu_count": os.cpu_count(), "load_avg_1min_after": round(load, 2), "results": results,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"\n{summary['samples']} person crops from {summary['images']} synthetic 640x480 JPEGs "
            f"(mean {jpeg_kb:.0f} KB); {os.cpu_count()} CPUs, 1-min load average {load:.2f} at the end"
        )
    return 0


def _header() -> str:
    columns = f"{'input':>8} {'pipeline':<16} {'threads':>7} {'crops/s':>8} {'per core':>8} {'per CPU-s':>9}"
    return columns + "\n" + "-" * len(columns)


def _row(r: dict) -> str:
    return (
        f"{r['input']:>8} {r['pipeline']:<16} {r['threads']:>7} {r['crops_per_s']:>8.0f} "
        f"{r['per_core']:>8.0f} {r['per_cpu_s']:>9.0f}"
    )
