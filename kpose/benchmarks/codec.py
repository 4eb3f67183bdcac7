"""``kpose bench codec``: what heatmap quantization costs, and what decoding costs.

(a) The oracle table. Ground-truth keypoints of a COCO-format file are cropped as a top-down
model sees them (box padded 1.25 to the crop's aspect ratio), encoded as Gaussian heatmaps
at each stride, decoded with each decoder, mapped back to the image and scored with
pycocotools. A perfect network would reach exactly this AP, so the table isolates the
quantization error, the SR paper's central claim: at stride 4 it costs AP at strict OKS
thresholds, at stride 1 almost nothing.

(b) Decoder speed. The max-pool decoder at kernels 1..32 against a global argmax, on
17x256x192 (full resolution) and 17x64x48 (stride 4) heatmaps at batch 1 and 32, as a
compiled TensorFlow graph and in numpy. Medians of repeated runs, milliseconds.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from kpose import codecs
from kpose.codecs.heatmap import HeatmapCodec
from kpose.evaluation.coco import THRESHOLD_METRICS, evaluate_coco
from kpose.geometry import box_to_center_scale, crop_matrix, invert_affine, transform_points
from kpose.keypoints import KeypointSchema, get_schema

ORACLE_METRICS = tuple(metric.name for metric in THRESHOLD_METRICS)
SPEED_KERNELS = (1, 2, 4, 8, 16, 32)
SPEED_SIZES = ((256, 192), (64, 48))
SPEED_BATCHES = (1, 32)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--annotations", type=Path, help="COCO-format keypoint file (default: generate a synthetic one)")
    parser.add_argument("--schema", default="coco", help="keypoint schema name or file (default: coco)")
    parser.add_argument("--images", type=int, default=200, help="synthetic images to generate (default: 200)")
    parser.add_argument("--input-size", type=int, nargs=2, default=(256, 192), metavar=("H", "W"))
    parser.add_argument("--strides", type=int, nargs="+", default=(4, 2, 1))
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per speed cell (median reported)")
    parser.add_argument("--skip-oracle", action="store_true", help="only measure decoder speed")
    parser.add_argument("--skip-speed", action="store_true", help="only compute the oracle table")


def _people(annotation_file: Path, schema: KeypointSchema) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``image_ids (N,)``, ``boxes (N, 4)``, ``keypoints (N, K, 3)`` of the evaluable people."""
    from kpose.data.cocofile import load_annotations

    dataset, _ = load_annotations(annotation_file, schema)
    people = [
        a for a in dataset["annotations"] if not a.get("iscrowd", 0) and np.count_nonzero(a["keypoints"][2::3])
    ]
    image_ids = np.array([a["image_id"] for a in people])
    boxes = np.array([a["bbox"] for a in people], dtype=np.float64).reshape(-1, 4)
    keypoints = np.array([a["keypoints"] for a in people], dtype=np.float64).reshape(len(people), -1, 3)
    return image_ids, boxes, keypoints


def oracle_rows(
    annotation_file: Path,
    schema: KeypointSchema,
    input_size: tuple[int, int] = (256, 192),
    strides: tuple[int, ...] = (4, 2, 1),
    chunk: int = 64,
) -> list[dict[str, Any]]:
    """One row per (stride, decoder): AP at several OKS thresholds, and the mean error in
    image pixels of the labeled keypoints that fall inside the crop."""
    image_ids, boxes, keypoints = _people(annotation_file, schema)
    height, width = input_size
    center, scale = box_to_center_scale(boxes, width / height)
    to_crop = crop_matrix(center, scale, input_size)
    to_image = invert_affine(to_crop)
    crop_points = transform_points(keypoints[..., :2], to_crop)
    labeled = keypoints[..., 2] > 0

    rows = []
    for stride in strides:
        codec = HeatmapCodec(input_size, stride)
        decoded = {name: np.zeros_like(keypoints[..., :2]) for name in codecs.DECODERS}
        on_map = np.zeros_like(labeled)
        for start in range(0, len(boxes), chunk):
            part = slice(start, start + chunk)
            heatmaps, weights = codec.encode(crop_points[part], labeled[part])
            on_map[part] = weights > 0
            for name in codecs.DECODERS:
                coords, _ = codec.decode(heatmaps, name, kernel=4)
                decoded[name][part] = transform_points(coords, to_image[part])
        for name, points in decoded.items():
            results = [
                {
                    "image_id": int(image_id),
                    "category_id": 1,
                    "keypoints": np.concatenate([p, np.ones((len(p), 1))], axis=1).ravel().tolist(),
                    "score": 1.0,
                }
                for image_id, p in zip(image_ids, points)
            ]
            stats = evaluate_coco(results, annotation_file, schema, THRESHOLD_METRICS)
            # localization error of the keypoints a heatmap can hold (inside the crop)
            error = np.linalg.norm(points - keypoints[..., :2], axis=-1)[on_map].mean()
            rows.append(
                {
                    "stride": stride,
                    "heatmap": f"{height // stride}x{width // stride}",
                    "decoder": name + (" (k=4)" if name == "maxpool" else ""),
                    **{m: round(stats[m], 4) for m in ORACLE_METRICS},
                    "err_px": round(float(error), 3),
                }
            )
    return rows


def _median_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up (and graph tracing)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def speed_rows(repeats: int, num_keypoints: int = 17) -> list[dict[str, Any]]:
    """Median decode time (ms) of the global argmax and the max-pool decoder per kernel."""
    import tensorflow as tf

    from kpose.codecs import decoders_tf

    rng = np.random.default_rng(0)
    rows = []
    for h, w in SPEED_SIZES:
        for batch in SPEED_BATCHES:
            heatmaps = rng.random((batch, h, w, num_keypoints), dtype=np.float32)
            tensor = tf.constant(heatmaps)
            runs = max(3, repeats // 3) if batch * h * w > 1e6 else repeats
            candidates: list[tuple[str, Callable, Callable]] = [
                ("argmax", decoders_tf.locate_argmax, codecs.locate_argmax)
            ]
            for kernel in SPEED_KERNELS:
                if h % kernel or w % kernel:
                    continue
                candidates.append(
                    (
                        f"maxpool k={kernel}",
                        lambda x, k=kernel: decoders_tf.locate_maxpool(x, k),
                        lambda x, k=kernel: codecs.locate_maxpool(x, k),
                    )
                )
            for name, tf_fn, np_fn in candidates:
                graph = tf.function(tf_fn)
                rows.append(
                    {
                        "heatmaps": f"{num_keypoints}x{h}x{w}",
                        "batch": batch,
                        "decoder": name,
                        "tf_graph_ms": round(_median_ms(lambda: [t.numpy() for t in graph(tensor)], runs), 3),
                        "numpy_ms": round(_median_ms(lambda: np_fn(heatmaps), runs), 3),
                    }
                )
    return rows


def _default_annotations(num_images: int, schema: str) -> Path:
    from kpose.data.synthetic import write_synthetic_coco

    out = Path(tempfile.mkdtemp(prefix="kpose-codec-bench-"))
    return write_synthetic_coco(out, num_images=num_images, schema=schema, seed=0, split="val").annotation_file


def run(args: argparse.Namespace) -> int:
    from kpose.utils.table import format_table

    schema = get_schema(args.schema)
    report: dict[str, Any] = {}
    if not args.skip_oracle:
        annotations = args.annotations or _default_annotations(args.images, args.schema)
        report["oracle"] = oracle_rows(annotations, schema, tuple(args.input_size), tuple(args.strides))
        report["annotations"] = str(annotations)
    if not args.skip_speed:
        report["speed"] = speed_rows(args.repeats, schema.num_keypoints)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    if "oracle" in report:
        people = len(_people(Path(report["annotations"]), schema)[0])
        print(f"Oracle AP: ground truth encoded and decoded at {args.input_size[0]}x{args.input_size[1]} "
              f"({people} people, {report['annotations']})")
        print(format_table(report["oracle"], ["heatmap", "decoder", *ORACLE_METRICS, "err_px"]))
    if "speed" in report:
        print("\nDecoder speed (median ms per call)")
        print(format_table(report["speed"], ["heatmaps", "batch", "decoder", "tf_graph_ms", "numpy_ms"]))
    return 0
