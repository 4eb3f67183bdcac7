"""``kpose demo``: live pose on a camera, video file or stream, with an exported model.

    kpose demo [--model MODEL.tflite|MODEL.onnx] [--source 0|VIDEO|URL] [--detector full|hog|track]
               [--save OUT.mp4] [--poses OUT.jsonl] [--no-window] [--threads N] ...

Runs on a device install (no TensorFlow). Without ``--model`` it takes the model the
quickstart left: ``runs/quickstart/best_int8.tflite``, exported from ``best.keras`` beside it
on first use (int8, calibrated on the quickstart's data through its ``config.yaml``; that one
step needs the TensorFlow install) and reused while it is newer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kpose.api import QUICKSTART_DIR, QUICKSTART_EXPORT, quickstart_model
from kpose.errors import KposeError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", type=Path, metavar="FILE",
        help=f"exported .tflite or .onnx (default: {QUICKSTART_DIR}/{QUICKSTART_EXPORT} from the quickstart)",
    )
    parser.add_argument("--source", default="0", help="camera index, video file or stream URL (default: 0)")
    parser.add_argument(
        "--detector", choices=("full", "hog", "track"), default="track",
        help="person boxes: the whole frame, OpenCV's HOG detector every frame, or tracking "
        "keypoints from frame to frame (default: track)",
    )
    parser.add_argument(
        "--redetect", choices=("full", "hog"), default="full",
        help="with --detector track: what finds new people (default: full, one person)",
    )
    parser.add_argument("--every", type=int, default=30, help="with --detector track: frames between detections")
    parser.add_argument("--save", type=Path, metavar="OUT.mp4", help="write the drawn video")
    parser.add_argument("--poses", type=Path, metavar="OUT.jsonl", help="write the poses, one JSON line per frame")
    parser.add_argument("--no-window", action="store_true", help="do not open a window (headless machines)")
    parser.add_argument("--threads", type=int, help="interpreter CPU threads (default: the interpreter's choice)")
    parser.add_argument("--threshold", type=float, default=0.3, help="keypoint score drawn and tracked (default 0.3)")
    parser.add_argument("--no-smooth", action="store_true", help="turn One-Euro keypoint smoothing off")
    parser.add_argument("--no-overlay", action="store_true", help="no fps / latency text on the frames")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames")


def run(args: argparse.Namespace) -> int:
    from kpose.runtime.demo import DemoSettings, run_demo

    if args.every < 1:
        raise KposeError(f"--every must be >= 1, got {args.every}")
    summary = run_demo(
        DemoSettings(
            model=args.model or quickstart_model(),
            source=args.source,
            detector=args.detector,
            redetect=args.redetect,
            every=args.every,
            threads=args.threads,
            threshold=args.threshold,
            smooth=not args.no_smooth,
            save=args.save,
            poses=args.poses,
            window=not args.no_window,
            overlay=not args.no_overlay,
            max_frames=args.max_frames,
        )
    )
    return 130 if summary.interrupted else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="live pose on a camera, video or stream with an exported model (no TensorFlow needed)",
        description="Top-down pose on every frame: person boxes, crops, the exported model, tracking, drawing.",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    """``examples/webcam_demo.py``: the same command without the ``kpose`` prefix."""
    from kpose.cli.main import main as kpose_main

    return kpose_main(["demo", *(sys.argv[1:] if argv is None else argv)])
