"""Entry point of the ``kpose`` console script.

Each command lives in its own module under ``kpose.cli`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable taking the
parsed arguments and returning an exit code. Command modules import TensorFlow only inside
their ``func``, so ``kpose --help`` stays fast and works on a device install.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from kpose import __version__
from kpose.errors import KposeError

# Command modules, in the order ``kpose --help`` lists them.
COMMAND_MODULES = (
    "kpose.cli.train_cmd",
    "kpose.cli.models_cmd",
    "kpose.cli.data_cmd",
    "kpose.cli.eval_cmd",
    "kpose.cli.bench_cmd",
    "kpose.cli.demo_cmd",
    "kpose.cli.export_cmd",
    "kpose.cli.qat_cmd",
    "kpose.cli.import_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kpose",
        description="Train 2D human pose models and ship them to edge devices.",
    )
    parser.add_argument("--version", action="version", version=f"kpose {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ info and warnings
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (KposeError, FileNotFoundError) as exc:
        print(f"kpose {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
