"""``kpose qat``: quantization-aware fine-tuning (tensorflow-model-optimization) to an int8 TFLite file.

    kpose qat MODEL.keras --config FILE.yaml [--root DIR] --epochs N -o OUT.tflite
              [--learning-rate LR] [--batch-size B] [--steps-per-epoch S]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "qat",
        help="quantization-aware fine-tuning to an int8 TFLite file",
        description=(
            "Rebuild the model in tf_keras, check it matches, wrap it with tfmot's quantize_model, "
            "fine-tune on the config's training split and write an int8 TFLite file with the "
            "export contract (uint8 crop in, keypoints and scores out, metadata inside). Runs in a "
            "subprocess: tfmot switches the whole process to the legacy Keras package."
        ),
    )
    parser.add_argument("model", type=Path, help="trained model (.keras)")
    parser.add_argument("--config", type=Path, required=True, help="training config (data.train is used)")
    parser.add_argument(
        "--root", type=Path, metavar="DIR", help="folder the config's data paths are relative to (overrides its root:)"
    )
    parser.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs (default 1)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="int8 .tflite file to write")
    parser.add_argument(
        "--learning-rate", type=float, default=None,
        help="Adam learning rate (default: the rate the config's schedule ends at)",
    )
    parser.add_argument("--batch-size", type=int, default=16, help="batch size (default 16)")
    parser.add_argument("--steps-per-epoch", type=int, help="steps per epoch (default: one pass over data.train)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import tempfile

    from kpose.engine.config import load_config, write_config
    from kpose.export.qat import run_qat

    with tempfile.TemporaryDirectory() as folder:
        config = args.config
        if args.root is not None:  # the subprocess reads a copy whose paths are already absolute
            config = write_config(load_config(args.config, root=args.root), Path(folder) / args.config.name)
        run_qat(
            args.model, config, args.output, epochs=args.epochs, learning_rate=args.learning_rate,
            batch_size=args.batch_size, steps_per_epoch=args.steps_per_epoch,
        )
    return 0
