"""``kpose import``: a published PyTorch pose checkpoint to a kpose ``.keras`` model.

    kpose import CHECKPOINT --model NAME -o OUT.keras [--schema NAME|FILE] [--input-size HxW]
                 [--backbone-only] [--channel-order auto|rgb|bgr] [--option KEY=VALUE ...]
                 [--verbose]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from kpose.errors import ConfigError
from kpose.utils.arguments import parse_size


def _option(text: str) -> tuple[str, Any]:
    """``"scale=0.5"`` -> ``("scale", 0.5)``: the value read as YAML (numbers, booleans, names)."""
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE, e.g. scale=0.5")
    return key, yaml.safe_load(value)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "import",
        help="turn a PyTorch checkpoint (MMPose, SRPose, SimMRPose) into a kpose model",
        description=(
            "Read a PyTorch checkpoint without unpickling code, map its tensors onto a kpose "
            "model, check every shape, print what was matched, reshaped and left over, and "
            "save the model. Nothing is written when a tensor is missing or does not fit."
        ),
    )
    parser.add_argument("checkpoint", type=Path, help="PyTorch checkpoint (.pth, .pth.tar, .safetensors)")
    parser.add_argument("--model", required=True, help="kpose model name, e.g. simplebaseline_resnet50")
    parser.add_argument("-o", "--output", type=Path, required=True, help="model file to write (.keras)")
    parser.add_argument("--schema", default="coco", help="keypoint schema of the checkpoint's head (default coco)")
    parser.add_argument(
        "--input-size", type=parse_size, default=(256, 192), help="model input HEIGHTxWIDTH (default 256x192)"
    )
    parser.add_argument(
        "--backbone-only", action="store_true",
        help="load only the backbone (an ImageNet checkpoint); the head starts from its initialization",
    )
    parser.add_argument(
        "--channel-order", choices=("auto", "rgb", "bgr"), default="auto",
        help="colour order the checkpoint's network reads (default auto: BGR for checkpoints "
        "without a 'backbone.' prefix, as SimpleBaseline's and SimMRPose's code; RGB for MMPose)",
    )
    parser.add_argument(
        "--option", type=_option, action="append", default=[], metavar="KEY=VALUE",
        help="head option, as in a config's model.options (repeatable)",
    )
    parser.add_argument("--verbose", action="store_true", help="print every tensor's row")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.output.suffix != ".keras":
        raise ConfigError(f"-o {args.output}: the output must be a .keras file")
    if not args.checkpoint.is_file():
        raise ConfigError(f"checkpoint {args.checkpoint} does not exist")
    from kpose.interop.pose_checkpoint import import_checkpoint

    model, report = import_checkpoint(
        args.checkpoint,
        args.model,
        args.schema,
        args.input_size,
        backbone_only=args.backbone_only,
        channel_order=args.channel_order,
        **dict(args.option),
    )
    if args.verbose:
        print(report.details())
    print(report.summary())
    if report.left_over:
        print(f"left over (not part of {args.model}): {', '.join(report.left_over[:10])}"
              f"{', ...' if len(report.left_over) > 10 else ''}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=args.output.parent, suffix=".keras", delete=False) as tmp:
        partial = Path(tmp.name)
    try:
        model.save(partial)
        os.replace(partial, args.output)
    finally:
        partial.unlink(missing_ok=True)
    print(f"wrote {args.output}")
    return 0
