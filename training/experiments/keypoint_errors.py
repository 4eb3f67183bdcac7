"""Where a top-down model's errors are: PCK@0.1 and median error (crop pixels) by keypoint
visibility, by person size, and the share of left/right swaps, on ground-truth boxes without
flip test or refinement.

    python training/experiments/keypoint_errors.py --model runs/quickstart/best.keras \
        --config runs/quickstart/config.yaml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def crop_errors(model_path: Path, config_path: Path) -> dict[str, np.ndarray]:
    """Per-keypoint errors on the config's val split: ``error`` and ``mirrored_error`` (N, K)
    crop pixels (to the truth and to the truth of the left/right partner), ``visibility`` (N, K),
    ``area`` (N,) and the crop height ``size``."""
    from kpose.codecs.decoders import decode
    from kpose.data.pipeline import make_topdown_dataset
    from kpose.engine.config import load_config
    from kpose.engine.datasets import read_split
    from kpose.keypoints import get_schema
    from kpose.models import heatmap_output, load_pose_model

    config = load_config(config_path)
    schema = get_schema(config.data.schema)
    samples = read_split(config.data.val, schema, with_boxes=True)
    model = heatmap_output(load_pose_model(model_path))
    height = config.model.input_size[0]
    dataset = make_topdown_dataset(samples, schema, config.model.input_size, config.eval.batch_size, training=False)
    rows: dict[str, list[np.ndarray]] = {"error": [], "mirrored_error": [], "weight": [], "index": []}
    for batch in dataset.as_numpy_iterator():
        heatmaps = np.asarray(model.predict_on_batch(batch["image"].astype(np.float32)))
        points, _ = decode(heatmaps, "argmax")
        points = (points + 0.5) * (height / heatmaps.shape[1]) - 0.5
        truth = batch["keypoints"]
        rows["error"].append(np.linalg.norm(points - truth, axis=-1))
        rows["mirrored_error"].append(np.linalg.norm(points - truth[:, schema.flip_index], axis=-1))
        rows["weight"].append(batch["weights"])
        rows["index"].append(batch["sample_index"])
    out = {name: np.concatenate(values) for name, values in rows.items()}
    out["visibility"] = samples.visibility[out["index"]] * (out["weight"] > 0)
    out["area"] = samples.areas[out["index"]]
    out["size"] = np.float32(height)
    return out


def summarize(errors: dict[str, np.ndarray], threshold: float = 0.1) -> list[dict]:
    """One row per group: keypoints, PCK@threshold (of the crop height), median error, swaps."""
    limit = threshold * float(errors["size"])
    labeled = errors["visibility"] > 0
    area = errors["area"][:, None]
    swapped = (errors["mirrored_error"] < limit) & (errors["error"] >= limit)
    groups = {
        "all labeled": labeled,
        "visible (v=2)": errors["visibility"] == 2,
        "hidden (v=1)": errors["visibility"] == 1,
        "people < 32^2 px": labeled & (area < 32**2),
        "people 32^2..96^2 px": labeled & (area >= 32**2) & (area < 96**2),
        "people >= 96^2 px": labeled & (area >= 96**2),
    }
    rows = []
    for name, mask in groups.items():
        count = int(mask.sum())
        rows.append({
            "keypoints": name,
            "count": count,
            f"PCK@{threshold}": round(float((errors["error"][mask] < limit).mean()), 3) if count else "-",
            "median px": round(float(np.median(errors["error"][mask])), 2) if count else "-",
            "left/right swaps": round(float(swapped[mask].mean()), 3) if count else "-",
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    from kpose.utils.table import format_table

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="trained top-down model (.keras)")
    parser.add_argument("--config", type=Path, required=True, help="its training config (data.val is scored)")
    args = parser.parse_args(argv)
    rows = summarize(crop_errors(args.model, args.config))
    print(format_table(rows, list(rows[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
