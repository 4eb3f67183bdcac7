"""Can a bottom-up model fit one fixed batch? A head that cannot leave the all-zero maps on
one batch will not on the whole set either. Builds the config's model (``model.init_from``
included) and its optimizer, takes the first training batch, and fits it again and again;
prints the heatmap and tag losses every 50 steps against the heatmap loss of all-zero maps.

    python training/experiments/overfit_batch.py --config CONFIG.yaml --steps 400
    python training/experiments/overfit_batch.py --config CONFIG.yaml --options '{"feature": "deconv"}'
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

REPORT_EVERY = 50  # steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True, help="a bottom-up training config")
    parser.add_argument("--steps", type=int, default=400, help=f"a multiple of {REPORT_EVERY}")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--options", type=json.loads, default={}, help="JSON: model options to override")
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    from kpose.data.bottomup import make_bottomup_dataset
    from kpose.engine.bottomup_loss import MultiPersonHeatmapLoss
    from kpose.engine.config import load_config
    from kpose.engine.training import build_model, make_optimizer
    from kpose.keypoints import get_schema
    from kpose.tasks.bottomup import BottomUp, fit_targets, read_images

    config = load_config(args.config)
    config.model = replace(config.model, options={**config.model.options, **args.options})
    schema = get_schema(config.data.schema)
    images = read_images(config.data.train, schema, config.data.max_people)
    dataset = make_bottomup_dataset(
        images, schema, config.model.input_size, args.batch_size, training=True, seed=config.train.seed,
        augment=config.data.augment,
    )
    x, y = fit_targets(next(iter(dataset)))
    keras.utils.set_random_seed(config.train.seed)
    model = build_model(config, schema)
    losses, weights = BottomUp().losses(model, config)
    model.compile(
        optimizer=make_optimizer(config, config.train.steps_per_epoch or REPORT_EVERY), loss=losses, loss_weights=weights
    )
    shape = tuple(model.output["heatmaps"].shape[1:])
    heatmap_loss = MultiPersonHeatmapLoss(
        config.model.input_size, config.data.max_people, shape[-1], sigma_at_stride_4=config.train.sigma
    )
    zero = float(heatmap_loss(y["heatmaps"], tf.zeros((args.batch_size, *shape))))
    print(f"{config.model.name} {config.model.options}: maps {shape[0]}x{shape[1]}, all-zero heatmap loss {zero:.6f}")
    one_batch = tf.data.Dataset.from_tensors((x, y)).repeat()
    for step in range(REPORT_EVERY, args.steps + 1, REPORT_EVERY):
        logs = model.fit(one_batch, steps_per_epoch=REPORT_EVERY, epochs=1, verbose=0).history
        print(f"step {step}: heatmaps_loss {logs['heatmaps_loss'][-1]:.6f}"
              f" ({logs['heatmaps_loss'][-1] / zero:.3f} of all-zero), tags_loss {logs['tags_loss'][-1]:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
