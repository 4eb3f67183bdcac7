"""``kpose models``: every registered model with its parameters, GMACs and heatmap size."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the models with parameters and GMACs",
        description=(
            "List registered models at an input size with backbone / other / total parameters, "
            "GMACs (multiply-accumulates of the inference graph, BatchNorm included, as the "
            "papers count them) and the heatmap resolution."
        ),
    )
    parser.add_argument("names", nargs="*", help="models to list (default: all)")
    parser.add_argument(
        "--json", action="store_true", help="print a JSON list instead of a table"
    )
    parser.add_argument(
        "--schema", default="coco", help="keypoint schema: name or file (default: coco)"
    )
    parser.add_argument(
        "--input-size",
        nargs=2,
        type=int,
        default=(256, 192),
        metavar=("HEIGHT", "WIDTH"),
        help="input size (default: 256 192)",
    )
    parser.set_defaults(func=run)


def _millions(count: int) -> str:
    return f"{count / 1e6:.2f}M"


def format_table(rows: list[dict[str, Any]]) -> str:
    """Fixed-width text table of :meth:`ModelProfile.to_dict` rows."""
    header = ("model", "input", "heatmap", "backbone", "other", "total", "GMACs")
    lines = [header]
    for row in rows:
        lines.append(
            (
                row["name"],
                "x".join(map(str, row["input_size"])),
                "x".join(map(str, row["heatmap_size"])),
                _millions(row["backbone_params"]),
                _millions(row["other_params"]),
                _millions(row["backbone_params"] + row["other_params"]),
                f"{row['gmacs']:.2f}",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths))
        )
        for line in lines
    )


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from kpose.models.complexity import profile_models

    profiles = profile_models(args.names or None, schema=args.schema, input_size=args.input_size)
    rows = [profile.to_dict() for profile in profiles]
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 0
