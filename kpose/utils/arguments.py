"""Command-line argument types shared by the CLI and the benchmark scripts."""

from __future__ import annotations

import argparse


def parse_size(text: str) -> tuple[int, int]:
    """``"256x192"`` -> ``(256, 192)`` (height x width); an argparse ``type``."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not HEIGHTxWIDTH, e.g. 256x192") from None
    if min(height, width) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: height and width must be positive")
    return height, width
