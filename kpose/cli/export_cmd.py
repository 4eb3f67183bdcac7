"""``kpose export``: a trained model to one validated ``.tflite`` or ``.onnx`` file.

    kpose export MODEL.keras [--format tflite|onnx] [--quantize none|fp16|dynamic|int8|int16x8]
                 [--calibration CONFIG_OR_DIR] [--calibration-size N] [--heatmaps] [--flip-test]
                 [--quarter-shift] [--batch-size N|dynamic] [--opset N] [--schema NAME|FILE] -o OUT
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _batch_size(text: str) -> int | None:
    if text == "dynamic":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'dynamic', got {text!r}") from None


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """The options shared by ``kpose export`` and ``deploy/export.py``."""
    parser.add_argument("model", type=Path, help="trained model (.keras)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="file to write (.tflite or .onnx)")
    parser.add_argument("--format", default=None, help="tflite or onnx (default: from the -o suffix)")
    parser.add_argument("--quantize", default="none", help="TFLite flavour: none, fp16, dynamic, int8, int16x8 (default none)")
    parser.add_argument(
        "--calibration", metavar="CONFIG_OR_DIR",
        help="int8/int16x8: training config (.yaml) or COCO-style dataset folder to take crops from",
    )
    parser.add_argument("--calibration-size", type=int, default=300, help="calibration crops (default 300)")
    parser.add_argument("--heatmaps", action="store_true", help="also output the heatmaps")
    parser.add_argument("--flip-test", action="store_true", help="flip test inside the graph (2x the work)")
    parser.add_argument("--quarter-shift", action="store_true", help="quarter-pixel peak refinement in the graph")
    parser.add_argument(
        "--batch-size", type=_batch_size, default=1, metavar="N|dynamic", help="input batch size (default 1)"
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset, <= 18 (default 17)")
    parser.add_argument("--schema", help="keypoint schema to embed (default: the config's, or by keypoint count)")
    parser.add_argument("--json", action="store_true", help="print the written file's metadata as JSON")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a model to TFLite or ONNX (decoder inside, optional quantization)",
        description=(
            "Export a trained model: uint8 crop in, normalized keypoints and scores out, the "
            "max-pool decoder inside the graph, kpose metadata inside the file. The file is "
            "loaded and run once before it is moved into place."
        ),
    )
    add_export_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kpose.metadata import read_metadata
    from kpose.tasks import export_model

    fmt = args.format or args.output.suffix.lower().lstrip(".") or "tflite"
    path = export_model(
        args.model, args.output, format=fmt, quantize=args.quantize, calibration=args.calibration,
        calibration_size=args.calibration_size, heatmaps=args.heatmaps, flip_test=args.flip_test,
        quarter_shift=args.quarter_shift, batch_size=args.batch_size, opset=args.opset, schema=args.schema,
    )
    metadata = read_metadata(path)
    if args.json:
        print(json.dumps(json.loads(metadata.to_json()), indent=2))
    else:
        size = path.stat().st_size / 1e6
        print(
            f"wrote {path} ({size:.2f} MB): {metadata.model_name}, {fmt} {args.quantize}, input "
            f"{metadata.input_size[0]}x{metadata.input_size[1]} uint8, outputs {', '.join(metadata.outputs)}; "
            "loaded and ran once"
        )
    return 0
