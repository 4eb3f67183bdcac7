"""``kpose train --config FILE.yaml [--root DIR]`` and ``kpose quickstart``."""

from __future__ import annotations

import argparse
from pathlib import Path


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train",
        help="train a model from a YAML config (model.fit on tf.data)",
        description="Train as the config says; a run that was cut short resumes from its backup.",
    )
    train.add_argument("--config", type=Path, required=True, metavar="FILE.yaml")
    train.add_argument(
        "--root", type=Path, metavar="DIR",
        help="folder the config's data paths are relative to (overrides its root:; default: its root:, else its folder)",
    )
    train.add_argument("--epochs", type=positive_int, help="override train.epochs")
    train.add_argument("--output-dir", help="override output_dir")
    train.add_argument(
        "--overwrite", action="store_true",
        help="train a finished run (its output_dir has last.keras) again from scratch, replacing its log and models",
    )
    train.set_defaults(func=run_train)

    quick = subparsers.add_parser(
        "quickstart",
        help="generate synthetic data, train a small edge model on the CPU, evaluate it",
        description="The first thing to run: 12 to 22 minutes on a 2-core CPU (docs/results.md).",
    )
    quick.add_argument("--out", type=Path, default=Path("runs/quickstart"), help="run folder (default runs/quickstart)")
    quick.add_argument("--epochs", type=positive_int, help="training epochs (default: the tuned quickstart value)")
    quick.add_argument("--train-images", type=positive_int, help="synthetic training images")
    quick.add_argument("--json", action="store_true", help="print the metrics as JSON")
    quick.set_defaults(func=run_quickstart)


def run_train(args: argparse.Namespace) -> int:
    from kpose.engine.config import load_config
    from kpose.tasks import train

    config = load_config(args.config, root=args.root)
    if args.epochs is not None:
        config.train.epochs = args.epochs
    if args.output_dir is not None:
        config.output_dir = args.output_dir
    result = train(config, overwrite=args.overwrite)
    print(f"best model: {result.best_model}\nlast model: {result.last_model}")
    return 0


def run_quickstart(args: argparse.Namespace) -> int:
    import json
    from dataclasses import replace

    from kpose.quickstart import QuickstartSettings, run_quickstart
    from kpose.utils.table import format_table

    settings = QuickstartSettings(out_dir=args.out)
    if args.epochs is not None:
        settings = replace(settings, epochs=args.epochs)
    if args.train_images is not None:
        settings = replace(settings, train_images=args.train_images)
    config, metrics, seconds = run_quickstart(settings)
    if args.json:
        print(json.dumps({"metrics": metrics, "seconds": seconds, "run_dir": str(config.run_dir)}, indent=2))
        return 0
    print(f"\nquickstart: {config.model.name} at {config.model.input_size[0]}x{config.model.input_size[1]}, "
          f"{config.train.epochs} epochs, {seconds / 60:.1f} min")
    flip = "on" if config.eval.flip_test else "off"
    print(f"synthetic val set, ground-truth boxes, flip test {flip}:")
    print(format_table([{"metric": k, "value": f"{v:.4f}"} for k, v in metrics.items()], ["metric", "value"]))
    model, config_file = config.run_dir / "best.keras", config.run_dir / "config.yaml"
    print(f"\nmodel: {model}   config: {config_file}")
    print("next:")
    print(f"  kpose export {model} --quantize int8 --calibration {config_file} -o pose_int8.tflite")
    print("  kpose demo --source VIDEO_OR_CAMERA      (uses this model, exported to int8 on first use)")
    return 0
