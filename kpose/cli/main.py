"""Entry point of the ``kpose`` console script.

Each command lives in its own module under ``kpose.cli`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable taking the
parsed arguments and returning an exit code. Command modules import TensorFlow only inside
their ``func``, so ``kpose --help`` stays fast and works on a device install.

Errors are one line on stderr, ``kpose COMMAND: error: ...``: bad input (a
:class:`~kpose.errors.KposeError`, a missing or unwritable file) exits with 2, anything else
with 1. ``kpose --debug COMMAND ...`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from kpose import __version__
from kpose.errors import KposeError

BAD_INPUT, FAILED = 2, 1  # exit codes: the input is at fault; something else went wrong
# Bad input: kpose's own errors, and files that are missing, unreadable or in the way.
INPUT_ERRORS = (KposeError, OSError)

# Command modules, in the order ``kpose --help`` lists them.
COMMAND_MODULES = (
    "kpose.cli.train_cmd",
    "kpose.cli.predict_cmd",
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
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
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
    except Exception as exc:
        return report_error(args.command, exc, args.debug)


def report_error(command: str, exc: Exception, debug: bool) -> int:
    """Print ``exc`` as one line (its traceback too with ``debug``); the exit code."""
    if debug:
        traceback.print_exc()
    if isinstance(exc, INPUT_ERRORS):
        print(f"kpose {command}: error: {exc}", file=sys.stderr)
        return BAD_INPUT
    print(
        f"kpose {command}: error: {type(exc).__name__}: {exc} (kpose --debug {command} ... shows the traceback)",
        file=sys.stderr,
    )
    return FAILED


if __name__ == "__main__":
    sys.exit(main())
