"""Export a trained kpose model for a device (same options as ``kpose export``).

    python deploy/export.py runs/quickstart/best.keras -o pose_int8.tflite \
        --quantize int8 --calibration runs/quickstart/config.yaml
"""

from __future__ import annotations

import argparse
import sys

from kpose.cli.export_cmd import add_export_arguments, run
from kpose.errors import KposeError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deploy/export.py", description=__doc__.splitlines()[0])
    add_export_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (KposeError, FileNotFoundError) as exc:
        print(f"export: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
