"""``kpose bench latency``: what an exported model costs on this CPU, per flavour.

For each exported file (given with ``--files``, or exported here from ``--model`` at
``--input-size`` in every flavour, int8 / int16x8 calibrated on synthetic crops): file
size, median latency of one crop at 1 and 2 threads with ai-edge-litert (XNNPACK, the
default delegate) or onnxruntime, the share of that time spent in the in-graph decoder
(the decoder alone, exported the same way on float heatmaps of the same size and timed in
the same interpreter; for int8 files an upper bound, as their decoder pools and gathers the
int8 maps, a quarter of the bytes), and the ops that XNNPACK does not take (they run in
TFLite's reference kernels; the fewer the better). Medians of ``--repeats`` runs after a warm-up, milliseconds,
timed in round-robin passes over the files so that load from other processes hits all alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np

FLAVOURS = ("none", "fp16", "dynamic", "int8", "int16x8", "onnx")
THREADS = (1, 2)
WARMUP = 5
ROUNDS = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--files", type=Path, nargs="+", help="exported .tflite / .onnx files to measure")
    parser.add_argument(
        "--model", help="model to export and measure (default: the quickstart's edge model, with its head options)"
    )
    parser.add_argument("--keras", type=Path, help="trained .keras file to export instead of random weights")
    parser.add_argument("--input-size", type=int, nargs=2, default=(256, 192), metavar=("H", "W"))
    parser.add_argument("--flavours", nargs="+", default=list(FLAVOURS), choices=FLAVOURS)
    parser.add_argument("--repeats", type=int, default=50, help="timed runs per cell (median reported)")
    parser.add_argument("--keep", type=Path, help="folder to keep the exported files in")


def median_ms(call: Callable[[], Any], repeats: int) -> float:
    """Median wall time of ``call()`` in milliseconds."""
    return interleaved_medians({"call": call}, repeats, rounds=1)["call"]


def ops_outside_xnnpack(path: Path) -> dict[str, int]:
    """TFLite ops left to the reference kernels after XNNPACK took what it supports.

    The interpreter lists every node of the graph, those a DELEGATE node absorbed included;
    a node is delegated if it lies between some DELEGATE node's inputs and outputs.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    ops = interpreter._get_ops_details()  # noqa: SLF001 - the only view of the nodes
    originals = [op for op in ops if op["op_name"] != "DELEGATE"]
    producer = {tensor: op for op in originals for tensor in op["outputs"]}
    delegated: set[int] = set()
    for partition in (op for op in ops if op["op_name"] == "DELEGATE"):
        stop = set(partition["inputs"])
        pending = list(partition["outputs"])
        while pending:
            tensor = pending.pop()
            op = producer.get(tensor)
            if tensor in stop or op is None or op["index"] in delegated:
                continue
            delegated.add(op["index"])
            pending.extend(i for i in op["inputs"] if i >= 0)
    outside = Counter(op["op_name"] for op in originals if op["index"] not in delegated)
    return dict(sorted(outside.items()))


def _crop(input_size: tuple[int, int]) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (1, *input_size, 3)).astype(np.uint8)


def interleaved_times(calls: dict[Any, Callable[[], Any]], repeats: int, rounds: int = ROUNDS) -> dict[Any, list[float]]:
    """The ms of every run of each call, timed in ``rounds`` round-robin passes of
    ``repeats / rounds`` runs each after a warm-up, so that a change in machine load (a
    shared CPU) hits every call alike."""
    for call in calls.values():
        for _ in range(WARMUP):
            call()
    times: dict[Any, list[float]] = {key: [] for key in calls}
    for _ in range(rounds):
        for key, call in calls.items():
            for _ in range(max(1, repeats // rounds)):
                start = time.perf_counter()
                call()
                times[key].append((time.perf_counter() - start) * 1e3)
    return times


def interleaved_medians(calls: dict[Any, Callable[[], Any]], repeats: int, rounds: int = ROUNDS) -> dict[Any, float]:
    """Median ms of each call (:func:`interleaved_times`)."""
    return {key: statistics.median(values) for key, values in interleaved_times(calls, repeats, rounds).items()}


def measure_files(paths: list[Path], repeats: int) -> dict[Path, dict[str, Any]]:
    """Per file: size, runtime, flavour, and median latency of one crop per thread count."""
    from kpose.runtime.backends import open_backend

    rows: dict[Path, dict[str, Any]] = {path: {"file": path.name, "size_mb": round(path.stat().st_size / 1e6, 2)} for path in paths}
    for threads in THREADS:
        calls = {}
        for path in paths:
            backend = open_backend(path, threads=threads)
            rows[path]["flavour"] = backend.metadata.quantization if path.suffix == ".tflite" else "onnx"
            rows[path]["runtime"] = backend.interpreter.split(".")[0]
            crop = _crop(backend.input_size)
            calls[path] = lambda backend=backend, crop=crop: backend.run(crop)
        for path, ms in interleaved_medians(calls, repeats).items():
            rows[path][f"ms_{threads}t"] = round(ms, 2)
    return rows


def decoder_latency(path: Path, repeats: int) -> float:
    """Median ms of the decoder-only file (float heatmaps in), one thread."""
    if path.suffix == ".onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = session.get_inputs()[0]
        maps = np.random.default_rng(0).random(feed.shape, dtype=np.float32)
        return median_ms(lambda: session.run(None, {feed.name: maps}), repeats)
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    (detail,) = interpreter.get_input_details()
    interpreter.set_tensor(detail["index"], np.random.default_rng(0).random(detail["shape"], dtype=np.float32))
    return median_ms(interpreter.invoke, repeats)  # the decoder's work, not the copy of its input


def write_decoder_files(folder: Path, heatmap_size: tuple[int, int], num_keypoints: int) -> dict[str, Path]:
    """The in-graph decoder alone (``heatmaps`` float32 (1, h, w, K) -> keypoints, scores),
    as .tflite and .onnx, built from the same decoder ops as the exported graph."""
    import tensorflow as tf
    import tf2onnx

    from kpose.export.graph import decode_keypoints

    h, w = heatmap_size
    spec = tf.TensorSpec([1, h, w, num_keypoints], tf.float32, name="heatmaps")

    @tf.function(input_signature=[spec])
    def decode(heatmaps: tf.Tensor) -> dict[str, tf.Tensor]:
        return decode_keypoints(heatmaps)

    module = tf.Module()
    module.decode = decode
    converter = tf.lite.TFLiteConverter.from_concrete_functions([decode.get_concrete_function()], module)
    paths = {"tflite": folder / "decoder.tflite", "onnx": folder / "decoder.onnx"}
    paths["tflite"].write_bytes(converter.convert())
    model, _ = tf2onnx.convert.from_function(decode, input_signature=[spec], opset=17)
    paths["onnx"].write_bytes(model.SerializeToString())
    return paths


def export_flavours(args: argparse.Namespace, folder: Path) -> list[Path]:
    """Export ``args.model`` (or ``args.keras``) in each requested flavour into ``folder``."""
    import keras

    from kpose.data.synthetic import write_synthetic_coco
    from kpose.models import create_model
    from kpose.tasks import export_model

    if args.keras:
        model = args.keras
    else:
        keras.utils.set_random_seed(0)
        from kpose.quickstart import MODEL_NAME, QuickstartSettings

        name = args.model or MODEL_NAME
        options = QuickstartSettings().model_options if name == MODEL_NAME else {}
        model = create_model(name, "coco", tuple(args.input_size), **options)
    calibration = None
    if {"int8", "int16x8"} & set(args.flavours):
        calibration = write_synthetic_coco(folder / "calibration", 40, seed=0, split="train").root
    paths = []
    for flavour in args.flavours:
        fmt = "onnx" if flavour == "onnx" else "tflite"
        quantize = "none" if flavour == "onnx" else flavour
        path = folder / f"{flavour}.{fmt}"
        export_model(model, path, format=fmt, quantize=quantize, calibration=calibration, calibration_size=100)
        paths.append(path)
    return paths


def format_rows(rows: list[dict[str, Any]]) -> str:
    from kpose.utils.table import format_table

    shown = []
    for row in rows:
        outside = row.get("outside_xnnpack")
        shown.append({
            **row,
            "decoder_share": f"{100 * row['decoder_share']:.1f}%" if "decoder_share" in row else "-",
            "outside_xnnpack": "-" if outside is None else (", ".join(f"{k} x{v}" for k, v in outside.items()) or "none"),
        })
    columns = ["model", "file", "flavour", "runtime", "size_mb", "ms_1t", "ms_2t", "decoder_share", "outside_xnnpack"]
    return format_table(shown, columns)


def run(args: argparse.Namespace) -> int:
    from kpose.metadata import read_metadata

    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        files = list(args.files) if args.files else export_flavours(args, folder)
        rows = measure_files(files, args.repeats)
        decoders: dict[tuple, dict[str, Path]] = {}
        for path, row in rows.items():
            meta = read_metadata(path)
            key = (meta.heatmap_size, meta.keypoint_schema.num_keypoints)
            if key not in decoders:
                decoders[key] = write_decoder_files(Path(tempfile.mkdtemp(dir=scratch)), *key)
            row["model"] = meta.model_name
            row["decoder_ms"] = round(decoder_latency(decoders[key][path.suffix.lstrip(".")], args.repeats), 3)
            row["decoder_share"] = round(row["decoder_ms"] / row["ms_1t"], 4)
            if path.suffix == ".tflite":
                row["outside_xnnpack"] = ops_outside_xnnpack(path)
        rows = list(rows.values())
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(
            f"latency of one crop, median of {args.repeats} runs in {ROUNDS} interleaved rounds (ms); "
            "decoder share at 1 thread"
        )
        print(format_rows(rows))
    return 0
