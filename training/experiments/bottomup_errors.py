"""Where a bottom-up model's AP goes: group the val set with each output swapped for its
ground truth (heatmaps rendered as the loss renders them; tags = the person's index), so the
table shows what perfect heatmaps or perfect tags would give, and the ceiling of both. A
second table splits the heatmaps' misses: of the labeled keypoints, visible (v=2) or occluded
(v=1), by person size (sqrt of the annotation's area in input pixels), the share with a
candidate above the detection threshold within 2 and 8 input pixels.

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


def predict_val(model_path: Path, config_path: Path) -> tuple[object, list[tuple[dict, dict]]]:
    """The config, and ``(batch, {"heatmaps", "tags"})`` for every batch of its val split
    (the model runs once; both tables read these)."""
    from kpose.data.bottomup import make_bottomup_dataset
    from kpose.engine.config import load_config
    from kpose.keypoints import get_schema
    from kpose.models import load_pose_model
    from kpose.tasks.bottomup import read_images

    config = load_config(config_path)
    schema = get_schema(config.data.schema)
    images = read_images(config.data.val, schema, config.data.max_people)
    model = load_pose_model(model_path)
    dataset = make_bottomup_dataset(
        images, schema, tuple(config.model.input_size), config.eval.batch_size, training=False
    )
    predictions = []
    for batch in dataset.as_numpy_iterator():
        out = model.predict_on_batch(batch["image"].astype(np.float32))
        predictions.append((batch, {"heatmaps": np.asarray(out["heatmaps"]), "tags": np.asarray(out["tags"])}))
    return config, predictions


def swapped_output_ap(config, predictions: list[tuple[dict, dict]]) -> dict[str, dict[str, float]]:
    """COCO metrics on the config's val split (:func:`predict_val`) for each row of :data:`SOURCES`."""
    from kpose.codecs.associative_embedding import AssociativeEmbeddingCodec
    from kpose.codecs.gaussian import encode_heatmaps
    from kpose.codecs.heatmap import HeatmapCodec
    from kpose.keypoints import get_schema
    from kpose.tasks.bottomup import coco_results, score_results

    input_size = tuple(config.model.input_size)
    results: dict[str, list[dict]] = {name: [] for name in SOURCES}
    for batch, predicted in predictions:
        stride = input_size[0] // predicted["heatmaps"].shape[1]
        for i in range(len(batch["image"])):
            people_maps, _ = encode_heatmaps(
                batch["keypoints"][i], batch["weights"][i], input_size, stride, config.train.sigma * 4 / stride
            )  # (P, h, w, K)
            true = {"heatmaps": people_maps.max(axis=0), "tags": people_maps.argmax(axis=0).astype(np.float32) * 3.0}
            for name, (maps_from, tags_from) in SOURCES.items():
                maps = predicted["heatmaps"][i] if maps_from == "pred" else true["heatmaps"]
                tags = predicted["tags"][i] if tags_from == "pred" else true["tags"]
                people, scores = AssociativeEmbeddingCodec(HeatmapCodec(input_size, stride)).decode(maps, tags)
                results[name] += coco_results(people, scores, batch["matrix"][i], int(batch["image_id"][i]))
    schema = get_schema(config.data.schema)
    return {name: score_results(rows, config.data.val, schema) for name, rows in results.items()}


SIZES = {"small (< 32 px)": (0, 32), "medium (32-64 px)": (32, 64), "large (>= 64 px)": (64, np.inf)}


def keypoint_recall(config, predictions: list[tuple[dict, dict]]) -> dict[tuple[str, str], tuple[int, float, float]]:
    """``(visibility, size) -> (labeled keypoints, share found within 2 px, within 8 px)``."""
    import json

    from kpose.geometry.affine import transform_points
    from kpose.codecs.associative_embedding import DETECTION_THRESHOLD, find_candidates

    people: dict[int, list[dict]] = {}
    for ann in json.loads(Path(config.data.val.annotations).read_text())["annotations"]:
        people.setdefault(ann["image_id"], []).append(ann)
    rows = []  # (v, size in input px, distance to the nearest candidate in input px)
    for batch, predicted in predictions:
        stride = config.model.input_size[0] / predicted["heatmaps"].shape[1]
        for i in range(len(batch["image"])):
            cands = find_candidates(predicted["heatmaps"][i], predicted["tags"][i], stride)
            matrix = batch["matrix"][i]
            scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
            for ann in people.get(int(batch["image_id"][i]), []):
                keypoints = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
                xy = transform_points(keypoints[:, :2], matrix)
                for joint in np.flatnonzero(keypoints[:, 2] > 0):
                    found = cands.scores[joint] > DETECTION_THRESHOLD
                    dist = np.linalg.norm(cands.coords[joint][found] - xy[joint], axis=-1)
                    rows.append((keypoints[joint, 2], np.sqrt(ann["area"]) * scale, dist.min(initial=np.inf)))
    table = np.asarray(rows)
    recall = {}
    for v, visibility in ((2, "visible"), (1, "occluded")):
        for size, (lo, hi) in SIZES.items():
            dist = table[(table[:, 0] == v) & (table[:, 1] >= lo) & (table[:, 1] < hi), 2]
            recall[visibility, size] = (dist.size, float(np.mean(dist <= 2)), float(np.mean(dist <= 8)))
    return recall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="a bottom-up .keras model")
    parser.add_argument("--config", type=Path, required=True, help="its training config (val split, sigma)")
    args = parser.parse_args(argv)
    config, predictions = predict_val(args.model, args.config)
    print(f"{'outputs':38s}  {'AP':>6s}  {'AP50':>6s}  {'AP75':>6s}  {'AR':>6s}")
    for name, metrics in swapped_output_ap(config, predictions).items():
        print(f"{name:38s}  " + "  ".join(f"{metrics[k]:6.3f}" for k in ("AP", "AP50", "AP75", "AR")))
    print(f"\n{'keypoints':28s}  {'n':>5s}  {'<= 2 px':>7s}  {'<= 8 px':>7s}")
    for (visibility, size), (n, near, found) in keypoint_recall(config, predictions).items():
        print(f"{visibility + ', ' + size:28s}  {n:5d}  {near:7.3f}  {found:7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
