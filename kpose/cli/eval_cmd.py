"""``kpose eval``: score COCO-format keypoint results against an annotation file.

    kpose eval --predictions RESULTS.json --annotations ANN.json
               [--schema coco|mpii|crowdpose|FILE] [--protocol coco|crowdpose] [--json]

The work is split so that other sources of predictions can join: :func:`evaluate_results`
scores a results list or file, :func:`format_stats` renders the numbers, and
:func:`report` prints them as a table or as JSON. A command that first produces results
(from a model, say) adds its options in :func:`register` and calls :func:`report`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

PROTOCOLS = ("coco", "crowdpose")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate keypoint predictions (COCO AP, CrowdPose AP)",
        description="Score a COCO-format keypoint results file against a COCO-format annotation file.",
    )
    parser.add_argument(
        "--predictions", required=True, metavar="RESULTS.json", help="COCO keypoint results (a JSON list)"
    )
    parser.add_argument("--annotations", required=True, metavar="ANN.json", help="COCO-format ground truth")
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

    schema_name, protocol = resolve_protocol(args.schema, args.protocol)
    schema = get_schema(schema_name)
    stats = evaluate_results(args.predictions, args.annotations, schema, protocol)
    title = f"{protocol} keypoint evaluation, schema {schema.name!r} ({schema.num_keypoints} keypoints)"
    report(stats, as_json=args.json, title=title)
    return 0
