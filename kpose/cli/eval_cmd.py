"""``kpose eval``: score keypoint results, or a trained model, against a dataset.

    kpose eval --predictions RESULTS.json --annotations ANN.json
               [--schema coco|mpii|crowdpose|FILE] [--protocol coco|crowdpose] [--json]
    kpose eval --model MODEL.keras (--config FILE.yaml [--root DIR] | --annotations ANN.json --images DIR)
               [--boxes DETS.json] [--decoder NAME] [--no-flip] [--results-out FILE] [--json]
    kpose eval --model EXPORTED.tflite|.onnx (--config ... | --annotations ... --images ...)

The work is split so that other sources of predictions can join: :func:`evaluate_results`
scores a results list or file, :func:`format_stats` renders the numbers, and
:func:`report` prints them as a table or as JSON. A command that first produces results
(from a model, say) adds its options in :func:`register` and calls :func:`report`.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from kpose.errors import ConfigError, KposeError

PROTOCOLS = ("coco", "crowdpose")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate keypoint predictions (COCO AP, CrowdPose AP)",
        description="Score a COCO-format keypoint results file against a COCO-format annotation file.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", metavar="RESULTS.json", help="COCO keypoint results (a JSON list)")
    source.add_argument(
        "--model", metavar="MODEL.keras|.tflite|.onnx", help="a trained or exported model to run on a dataset"
    )
    parser.add_argument(
        "--annotations", metavar="ANN.json", help="ground truth (with --model: default the config's data.val)"
    )
    parser.add_argument("--config", metavar="FILE.yaml", help="training config whose data.val to evaluate on")
    parser.add_argument(
        "--root", metavar="DIR", help="with --config: folder its data paths are relative to (overrides its root:)"
    )
    parser.add_argument("--images", metavar="DIR", help="image folder of --annotations (with --model)")
    parser.add_argument("--boxes", metavar="DETS.json", help="detected person boxes (default: ground-truth boxes)")
    parser.add_argument("--decoder", choices=("argmax", "maxpool", "quarter", "dark"), help="heatmap decoder")
    parser.add_argument("--no-flip", action="store_true", help="turn the flip test off")
    parser.add_argument("--results-out", metavar="RESULTS.json", help="also write the COCO results file")
    parser.add_argument(
        "--schema",
        metavar="coco|mpii|crowdpose|FILE",
        help="keypoint schema giving K and the OKS sigmas (default: the protocol's own, coco or crowdpose)",
    )
    parser.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        help="coco: 10 COCO numbers; crowdpose: AP/AR and AP easy/medium/hard "
        "(default: crowdpose for the crowdpose schema, else coco)",
    )
    parser.add_argument("--json", action="store_true", help="print the numbers as a JSON object")
    parser.set_defaults(func=run)


def resolve_protocol(schema: str | None, protocol: str | None) -> tuple[str, str]:
    """Fill in whichever of schema and protocol is missing: (schema, protocol)."""
    if protocol is None:
        protocol = "crowdpose" if schema == "crowdpose" else "coco"
    return (schema or protocol), protocol


def evaluate_results(
    results: str | Path | list[dict[str, Any]],
    annotations: str | Path | dict[str, Any],
    schema: Any,
    protocol: str,
) -> dict[str, float]:
    """Score COCO-format keypoint results with the named protocol (``coco`` or ``crowdpose``)."""
    from kpose.evaluation import evaluate_coco, evaluate_crowdpose

    evaluate = {"coco": evaluate_coco, "crowdpose": evaluate_crowdpose}[protocol]
    return evaluate(results, annotations, schema)


def format_stats(stats: dict[str, float]) -> str:
    """The numbers as a two-column table; -1 (no ground truth) shows as ``n/a``."""
    from kpose.utils.table import format_table

    rows = [{"metric": name, "value": "n/a" if value == -1 else f"{value:.4f}"} for name, value in stats.items()]
    return format_table(rows, ["metric", "value"])


def report(stats: dict[str, float], *, as_json: bool, title: str) -> None:
    """Print the numbers: JSON alone, or the title and the table."""
    if as_json:
        print(json.dumps(stats, indent=2))
    else:
        print(title)
        print(format_stats(stats))


def run(args: argparse.Namespace) -> int:
    from kpose.keypoints import get_schema

    if args.model:
        return run_model(args)
    if not args.annotations:
        raise ConfigError("--annotations is required with --predictions")
    schema_name, protocol = resolve_protocol(args.schema, args.protocol)
    schema = get_schema(schema_name)
    stats = evaluate_results(args.predictions, args.annotations, schema, protocol)
    title = f"{protocol} keypoint evaluation, schema {schema.name!r} ({schema.num_keypoints} keypoints)"
    report(stats, as_json=args.json, title=title)
    return 0


def _model_dataset(args: argparse.Namespace) -> tuple[Any, str, Any]:
    """The split to evaluate a model on, its schema name and the eval settings (or None)."""
    from kpose.engine.config import DatasetConfig, load_config
    from kpose.engine.datasets import require_head_boxes

    if args.root and not args.config:
        raise ConfigError("--root goes with --config: the folder that config's data paths are relative to")
    config = load_config(args.config, check_paths=False, root=args.root) if args.config else None
    if args.annotations:
        if not args.images:
            raise ConfigError("--images is required with --annotations and --model")
        fmt = args.protocol if args.protocol in ("coco", "crowdpose") else "coco"
        dataset = DatasetConfig(args.annotations, args.images, format=fmt, boxes=args.boxes)
    elif config is not None and config.data.val is not None:
        dataset = config.data.val
        if args.boxes:
            dataset.boxes = args.boxes
    else:
        raise ConfigError("--model needs --config (with data.val) or --annotations and --images")
    schema = args.schema or (config.data.schema if config else "coco")
    require_head_boxes(dataset, schema)
    return dataset, schema, config.eval if config else None


def require_finite(stats: dict[str, float], model: str, annotations: Any) -> None:
    """KposeError naming the model and the metric when an evaluation came out NaN."""
    nan = [name for name, value in stats.items() if math.isnan(value)]
    if nan:
        raise KposeError(
            f"{model}: {nan[0]} is NaN on {annotations}: the model's keypoints are not finite "
            "(NaN weights or outputs); nothing scored"
        )


def run_model(args: argparse.Namespace) -> int:
    """``kpose eval --model``: run a trained or exported model on a dataset split and score it.
    An exported file runs as on a device (its own decoder and flip setting; ``--decoder`` /
    ``--no-flip`` do not apply)."""
    from kpose.keypoints import get_schema
    from kpose.metadata import read_metadata
    from kpose.models import load_pose_model
    from kpose.tasks import evaluate, task_of

    dataset, schema_name, eval_config = _model_dataset(args)
    schema = get_schema(schema_name)
    exported = Path(args.model).suffix.lower() in (".tflite", ".onnx")
    model = read_metadata(args.model) if exported else load_pose_model(args.model)
    flip = not args.no_flip and (eval_config.flip_test if eval_config else True)
    decoder = args.decoder or (eval_config.decoder if eval_config else "quarter")
    stats = evaluate(
        args.model if exported else model, dataset, schema, flip_test=flip, decoder=decoder,
        results_file=Path(args.results_out) if args.results_out else None,
    )
    require_finite(stats, args.model, dataset.annotations)
    boxes = "detected" if dataset.boxes else "ground-truth"
    if exported:
        decoder, flip = f"in-graph decoder {model.decoder.get('name')}", bool(model.decoder.get("flip_test"))
    else:
        decoder = f"decoder {decoder}"
    if task_of(model).name == "bottomup":
        where = "grouped in the runtime" if exported else f"flip test {'on' if flip else 'off'}"
        title = f"{args.model} on {dataset.annotations} (bottom-up: whole images, {where})"
    else:
        title = f"{args.model} on {dataset.annotations} ({boxes} boxes, {decoder}, flip test {'on' if flip else 'off'})"
    report(stats, as_json=args.json, title=title)
    return 0
