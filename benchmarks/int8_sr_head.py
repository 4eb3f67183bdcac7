"""int8 against float32 on this CPU, whole files and per segment, one thread.

Two tables, medians of ``--repeats`` runs timed in interleaved rounds (a shared CPU's load
hits every variant alike); compare numbers within one run only:

1. ``files``: the exported .tflite files (uint8 crop in, decoder inside, timed through the
   runtime's backend) of ``--model`` at each ``--sizes``: float32 (its stem is the narrow
   one in any case) and int8 with the plain folded stem (``narrow stem``:
   ``for_interpreters(..., wide_stem=False)``) and with the wide one (``wide stem``:
   :class:`kpose.export.layers.SpaceToDepthRawPixelConv2D`, the default for integer graphs).
2. ``segments`` (``--segments``): the interpreter network cut after the backbone, after the
   SR head's encoder, after its large-kernel conv and at the heatmaps, each converted alone
   (float32, and int8 with an int8 output, so no DEQUANTIZE at the cut); the differences
   between consecutive cuts are what each segment costs. The per-op profiler of the TFLite
   benchmark tool is not in ai-edge-litert's wheel; cut sub-graphs are what works here.

    python benchmarks/int8_sr_head.py --sizes 256x192 128x96 --repeats 300 --segments
"""

from __future__ import annotations

import argparse
import functools
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from kpose.tasks import TopDown


def _model(name: str | None, size: tuple[int, int], keras_file: Path | None) -> Any:
    import keras

    from kpose.models import create_model
    from kpose.quickstart import MODEL_NAME, QuickstartSettings

    if keras_file:
        return keras_file
    keras.utils.set_random_seed(0)
    name = name or MODEL_NAME
    options = QuickstartSettings().model_options if name == MODEL_NAME else {}
    return create_model(name, "coco", size, **options)


class NarrowStemTopDown(TopDown):
    """The top-down task with the plain folded stem in integer graphs too (the export before
    :class:`~kpose.export.layers.SpaceToDepthRawPixelConv2D`)."""

    def serving_graph(self, model: Any, schema: Any, options: Any) -> Any:
        from kpose.export.graph import float32_network, serving_graph
        from kpose.export.layers import for_interpreters
        from kpose.export.tflite import CALIBRATED

        network = for_interpreters(float32_network(model), integer=options.quantize in CALIBRATED, wide_stem=False)
        return serving_graph(network, schema, batch_size=options.batch_size)


def export_files(args: argparse.Namespace, folder: Path) -> dict[tuple[str, str, str], Path]:
    """(size, flavour, variant) -> exported file."""
    from kpose.data.synthetic import write_synthetic_coco
    from kpose.export.writer import ExportOptions, load_model

    calibration = args.calibration or write_synthetic_coco(folder / "calibration", 40, seed=0, split="train").root
    files = {}
    for size in args.sizes:
        model = load_model(_model(args.model, size, args.keras))
        tag = f"{size[0]}x{size[1]}"
        variants = [("narrow stem", NarrowStemTopDown(), "none"), ("narrow stem", NarrowStemTopDown(), "int8"),
                    ("wide stem", TopDown(), "int8")]
        for variant, task, flavour in variants:
            path = folder / f"{tag}_{flavour}_{variant.replace(' ', '_')}.tflite"
            options = ExportOptions(quantize=flavour, calibration=calibration, calibration_size=100)
            files[(tag, flavour, variant)] = task.export(model, path, None, options)
    return files


def median_and_p10(calls: dict[Any, Any], repeats: int) -> dict[Any, tuple[float, float]]:
    """(median, 10th percentile) ms of each call (:func:`kpose.benchmarks.latency.interleaved_times`).
    The 10th percentile is the time with little interference from other processes on a shared
    CPU; the median is what a run there costs."""
    from kpose.benchmarks.latency import interleaved_times

    times = interleaved_times(calls, repeats, rounds=10)
    return {key: (float(np.median(v)), float(np.percentile(v, 10))) for key, v in times.items()}


def time_files(files: dict[Any, Path], repeats: int) -> dict[Any, tuple[float, float]]:
    from kpose.runtime.backends import open_backend

    calls = {}
    for key, path in files.items():
        backend = open_backend(path, threads=1)
        crop = np.random.default_rng(0).integers(0, 256, (1, *backend.input_size, 3)).astype(np.uint8)
        calls[key] = functools.partial(backend.run, crop)
    return median_and_p10(calls, repeats)


def _cut_tflite(network: Any, cut: str, size: tuple[int, int], integer: bool, crops: list[np.ndarray]) -> bytes:
    """The network from ``image`` to the output of layer ``cut`` (a top-level layer; a
    backbone's dict output gives its deepest level), uint8 in as in the exported files."""
    import keras
    import tensorflow as tf

    image = keras.Input((*size, 3))
    x = image
    for layer in network.layers[1:]:
        x = layer(x)
        if isinstance(x, dict):
            x = x[max(x)]
        if layer.name == cut:
            break
    sub = keras.Model(image, x)

    @tf.function(input_signature=[tf.TensorSpec([1, *size, 3], tf.uint8)])
    def serve(pixels: tf.Tensor) -> tf.Tensor:
        return sub(tf.cast(pixels, tf.float32))

    module = tf.Module()
    module.serve = serve
    module.weights = [v.value if isinstance(v, keras.Variable) else v for v in sub.variables]
    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], module)
    converter.experimental_enable_resource_variables = False
    if integer:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([crop] for crop in crops)
        converter.inference_output_type = tf.int8
    return converter.convert()


def segments(args: argparse.Namespace, folder: Path) -> list[dict[str, Any]]:
    from ai_edge_litert.interpreter import Interpreter

    from kpose.benchmarks.latency import ops_outside_xnnpack
    from kpose.export.graph import float32_network
    from kpose.export.layers import for_interpreters

    rows = []
    for size in args.sizes:
        model = _model(args.model, size, args.keras)
        if isinstance(model, Path):
            from kpose.models.saving import load_pose_model

            model = load_pose_model(model)
        network = for_interpreters(float32_network(model), integer=True)
        names = [layer.name for layer in network.layers]
        cuts = [name for name in ("backbone", "sr_encoder_relu", "sr_lkconv", "heatmaps") if name in names]
        rng = np.random.default_rng(0)
        crops = [rng.integers(0, 256, (1, *size, 3)).astype(np.uint8) for _ in range(8)]
        calls = {}
        for cut in cuts:
            for integer in (False, True):
                path = folder / f"cut_{size[0]}x{size[1]}_{cut}_{int(integer)}.tflite"
                path.write_bytes(_cut_tflite(network, cut, size, integer, crops))
                interpreter = Interpreter(model_path=str(path), num_threads=1)
                interpreter.allocate_tensors()
                interpreter.set_tensor(interpreter.get_input_details()[0]["index"], crops[0])
                calls[(cut, integer)] = interpreter.invoke
                outside = ops_outside_xnnpack(path)
                if set(outside) - {"CAST"}:
                    print(f"{path.name}: outside XNNPACK {outside}")
        ms = {key: median for key, (median, _) in median_and_p10(calls, args.repeats).items()}
        previous = {False: 0.0, True: 0.0}
        for cut in cuts:
            f32, i8 = ms[(cut, False)], ms[(cut, True)]
            seg = {integer: ms[(cut, integer)] - previous[integer] for integer in (False, True)}
            rows.append({
                "size": f"{size[0]}x{size[1]}", "up_to": cut,
                "f32_ms": round(f32, 3), "int8_ms": round(i8, 3), "ratio": round(i8 / f32, 2),
                "segment_f32": round(seg[False], 3), "segment_int8": round(seg[True], 3),
                "segment_ratio": round(seg[True] / seg[False], 2) if seg[False] > 0 else "-",
            })
            previous = {False: f32, True: i8}
    return rows


def main() -> int:
    from kpose.utils.table import format_table

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model name (default: the quickstart's edge model and head options)")
    parser.add_argument("--keras", type=Path, help="trained .keras file instead of random weights (one size)")
    parser.add_argument("--sizes", nargs="+", default=["256x192", "128x96"], help="HxW")
    parser.add_argument("--calibration", help="calibration config or COCO folder (default: 40 synthetic images)")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--segments", action="store_true", help="also time the network cut after each segment")
    parser.add_argument("--no-files", action="store_true", help="skip the whole-file table")
    parser.add_argument("--keep", type=Path, help="folder to keep the files in")
    args = parser.parse_args()
    args.sizes = [tuple(int(v) for v in size.split("x")) for size in args.sizes]

    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        if not args.no_files:
            files = export_files(args, folder)
            ms = time_files(files, args.repeats)
            rows = []
            for (tag, flavour, variant), (median, p10) in ms.items():
                base, base10 = ms[(tag, "none", "narrow stem")]
                rows.append({
                    "size": tag, "flavour": flavour, "variant": variant,
                    "median_ms": round(median, 3), "vs_f32": round(median / base, 2),
                    "p10_ms": round(p10, 3), "p10_vs_f32": round(p10 / base10, 2),
                })
            print(f"exported files, 1 thread, {args.repeats} interleaved runs (ms); ratios against float32")
            print(format_table(rows, list(rows[0])))
        if args.segments:
            rows = segments(args, folder)
            print(f"\nnetwork cut after each segment (no decoder), 1 thread, median of {args.repeats} runs (ms)")
            print(format_table(rows, list(rows[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
