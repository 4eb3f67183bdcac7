"""Paper-faithfulness at quickstart scale: one small backbone, trained the same way with the
simple head, the SR head and SRPose, evaluated without post-processing (argmax decoder, no
flip test), on the synthetic set. The papers claim the SR head helps most at strict OKS
thresholds (AP75 and above); this prints what we measure, whichever way it goes.

    python training/experiments/compare_heads.py --out runs/compare_heads
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from kpose.data.synthetic import write_synthetic_coco
from kpose.tasks import evaluate
from kpose.tasks import train
from kpose.quickstart import QuickstartSettings, quickstart_config
from kpose.evaluation.coco import THRESHOLD_METRICS, evaluate_coco
from kpose.keypoints import get_schema
from kpose.models import parse_model_name
from kpose.utils.table import format_table

# name -> (model, head options): the quickstart's backbone for all three
_BACKBONE = parse_model_name(QuickstartSettings.model)[1].name
HEADS = {
    "simple": (f"simplebaseline_{_BACKBONE}", {}),
    "srhead": (QuickstartSettings.model, QuickstartSettings().model_options),
    "srpose": (f"srpose_{_BACKBONE}", {}),
}


def compare(settings: QuickstartSettings, heads: list[str]) -> list[dict]:
    """Train each head with ``settings`` on one synthetic set; one row of metrics per head."""
    schema = get_schema("coco")
    data_dir = settings.out_dir / "data"
    train_set = write_synthetic_coco(data_dir, settings.train_images, seed=settings.seed, split="train")
    val_set = write_synthetic_coco(data_dir, settings.val_images, seed=settings.seed, split="val")
    rows = []
    for name in heads:
        model, options = HEADS[name]
        run = replace(settings, out_dir=settings.out_dir / name, model=model, model_options=options)
        config = quickstart_config(run, train_set, val_set)
        config.eval = replace(config.eval, flip_test=False, decoder="argmax")
        result = train(config)
        results_file = run.out_dir / "results.json"
        pck = evaluate(
            result.best_model, config.data.val, schema, flip_test=False, decoder="argmax", results_file=results_file
        )["PCK@0.1"]
        stats = evaluate_coco(results_file, val_set.annotation_file, schema, THRESHOLD_METRICS)
        rows.append({"head": name, "model": model, **{k: round(v, 4) for k, v in stats.items()}, "PCK@0.1": round(pck, 4)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/compare_heads"))
    parser.add_argument("--heads", nargs="+", choices=list(HEADS), default=list(HEADS))
    parser.add_argument("--epochs", type=int, default=QuickstartSettings.epochs)
    parser.add_argument("--train-images", type=int, default=QuickstartSettings.train_images)
    parser.add_argument("--val-images", type=int, default=QuickstartSettings.val_images)
    parser.add_argument("--batch-size", type=int, default=QuickstartSettings.batch_size)
    parser.add_argument("--input-size", type=int, nargs=2, default=QuickstartSettings.input_size, metavar=("H", "W"))
    args = parser.parse_args(argv)
    settings = QuickstartSettings(
        out_dir=args.out, epochs=args.epochs, train_images=args.train_images, val_images=args.val_images,
        batch_size=args.batch_size, input_size=tuple(args.input_size),
    )
    rows = compare(settings, args.heads)
    (args.out / "compare_heads.json").write_text(json.dumps(rows, indent=2))
    print(format_table(rows, ["head", "model", *(m.name for m in THRESHOLD_METRICS), "PCK@0.1"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
