"""Where a bottom-up model's AP goes: group the val set with each output swapped for its
ground truth (heatmaps rendered as the loss renders them; tags = the person's index), so the
table shows what perfect heatmaps or perfect tags would give, and the ceiling of both.

    python training/experiments/bottomup_errors.py --model RUN/last.keras --config RUN/config.yaml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

SOURCES = {
    "predicted heatmaps, predicted tags": ("pred", "pred"),
    "predicted heatmaps, true tags": ("pred", "true"),
    "true heatmaps, predicted tags": ("true", "pred"),
    "true heatmaps, true tags": ("true", "true"),
}


def swapped_output_ap(model_path: Path, config_path: Path) -> dict[str, dict[str, float]]:
    """COCO metrics on the config's val split for each row of :data:`SOURCES`."""
    from kpose.codecs.gaussian import encode_heatmaps
    from kpose.data.bottomup import make_bottomup_dataset
    from kpose.engine.bottomup import coco_results, group_maps, read_images, score_results
    from kpose.engine.evaluate import load_pose_model
    from kpose.engine.config import load_config
    from kpose.keypoints import get_schema

    config = load_config(config_path)
    schema = get_schema(config.data.schema)
    images = read_images(config.data.val, schema, config.data.max_people)
    input_size = tuple(config.model.input_size)
    model = load_pose_model(model_path)
    dataset = make_bottomup_dataset(images, schema, input_size, config.eval.batch_size, training=False)
    results: dict[str, list[dict]] = {name: [] for name in SOURCES}
    for batch in dataset.as_numpy_iterator():
        out = model.predict_on_batch(batch["image"].astype(np.float32))
        predicted = {"heatmaps": np.asarray(out["heatmaps"]), "tags": np.asarray(out["tags"])}
        stride = input_size[0] // predicted["heatmaps"].shape[1]
        for i in range(len(batch["image"])):
            people_maps, _ = encode_heatmaps(
                batch["keypoints"][i], batch["weights"][i], input_size, stride, config.train.sigma * 4 / stride
            )  # (P, h, w, K)
            true = {"heatmaps": people_maps.max(axis=0), "tags": people_maps.argmax(axis=0).astype(np.float32) * 3.0}
            for name, (maps_from, tags_from) in SOURCES.items():
                maps = predicted["heatmaps"][i] if maps_from == "pred" else true["heatmaps"]
                tags = predicted["tags"][i] if tags_from == "pred" else true["tags"]
                people, scores = group_maps(maps, tags, float(stride))
                results[name] += coco_results(people, scores, batch["matrix"][i], int(batch["image_id"][i]))
    return {name: score_results(rows, config.data.val.annotations, schema) for name, rows in results.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="a bottom-up .keras model")
    parser.add_argument("--config", type=Path, required=True, help="its training config (val split, sigma)")
    args = parser.parse_args(argv)
    print(f"{'outputs':38s}  {'AP':>6s}  {'AP50':>6s}  {'AP75':>6s}  {'AR':>6s}")
    for name, metrics in swapped_output_ap(args.model, args.config).items():
        print(f"{name:38s}  " + "  ".join(f"{metrics[k]:6.3f}" for k in ("AP", "AP50", "AP75", "AR")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
