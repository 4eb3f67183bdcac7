"""``kpose data synth`` (write the synthetic set), ``kpose data show`` (look at crops) and
``kpose data prepare`` (check a downloaded dataset, print the command that trains on it)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from kpose.errors import ConfigError
from kpose.utils.arguments import parse_size

DATASETS = ("coco", "mpii", "crowdpose")  # kpose.prepare.DATASETS, not imported: it loads numpy


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data", help="check a downloaded dataset; write the synthetic dataset; look at training crops"
    )
    commands = parser.add_subparsers(dest="data_command", metavar="COMMAND", required=True)

    synth = commands.add_parser(
        "synth",
        help="write a synthetic COCO-format keypoint dataset",
        description="Draw articulated figures into JPEGs and write COCO keypoint and detection files.",
    )
    synth.add_argument("--out", type=Path, required=True, help="output folder")
    synth.add_argument("--images", type=int, default=200, help="number of images (default 200)")
    synth.add_argument("--schema", default="coco", help="built-in schema name or schema file (default coco)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--size", type=parse_size, default=(480, 640), help="image HEIGHTxWIDTH (default 480x640)")
    synth.add_argument("--split", default="train", help="split name used in file names (default train)")
    synth.set_defaults(func=run_synth)

    show = commands.add_parser(
        "show",
        help="write a PNG grid of augmented crops with keypoints drawn",
        description="Run the training pipeline and draw its crops, keypoints and skeleton into one PNG.",
    )
    show.add_argument(
        "--annotations", type=Path, help="COCO-format or MPII annotation JSON (default: small synthetic set)"
    )
    show.add_argument("--images", type=Path, help="image folder of --annotations")
    show.add_argument("--format", choices=("auto", "coco", "mpii"), default="auto")
    show.add_argument("--schema", default="coco", help="keypoint schema (default coco)")
    show.add_argument(
        "--input-size", type=parse_size, default=(256, 192), help="crop HEIGHTxWIDTH (default 256x192)"
    )
    show.add_argument("--count", type=int, default=16, help="number of crops (default 16)")
    show.add_argument("--columns", type=int, default=8)
    show.add_argument("--seed", type=int, default=0)
    show.add_argument(
        "--no-augment", action="store_true", help="evaluation crops: no augmentation, file order"
    )
    show.add_argument("--out", type=Path, required=True, help="PNG file to write")
    show.set_defaults(func=run_show)

    prepare = commands.add_parser(
        "prepare",
        help="check a downloaded COCO, MPII or CrowdPose folder and print the train command",
        description=(
            "Check that the folder holds the files the configs in training/configs read (naming each "
            "missing one and where it comes from), read every annotation file with kpose's readers and "
            "look up every image they name. MPII: write mpii_train.json / mpii_val.json with head boxes "
            "from the official annotation file, or add head boxes to MMPose's mpii_val.json from its "
            "mpii_gt_val.mat. With --config and -o, write a copy of a config whose data paths point here."
        ),
    )
    prepare.add_argument("dataset", choices=DATASETS)
    prepare.add_argument("--root", type=Path, required=True, help="the dataset folder")
    prepare.add_argument("--config", type=Path, metavar="FILE.yaml", help="a training config to copy (with -o)")
    prepare.add_argument("-o", "--output", type=Path, metavar="OUT.yaml", help="where to write that copy")
    prepare.add_argument(
        "--val-every", type=int, default=8, metavar="N",
        help="MPII from the official file: the training images of every N-th video go to val (default 8)",
    )
    prepare.set_defaults(func=run_prepare)


def run_synth(args: argparse.Namespace) -> int:
    from kpose.data.synthetic import write_synthetic_coco

    if args.images < 1:
        raise ConfigError(f"--images must be >= 1, got {args.images}")
    result = write_synthetic_coco(args.out, args.images, args.schema, args.seed, args.size, args.split)
    print(f"wrote {result.num_images} images to {result.image_dir}")
    print(f"annotations: {result.annotation_file}")
    print(f"detections:  {result.detection_file}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    if (args.annotations is None) != (args.images is None):
        raise ConfigError("--annotations and --images go together (or give neither for a synthetic set)")
    if args.count < 1:
        raise ConfigError(f"--count must be >= 1, got {args.count}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.annotations is None:
            from kpose.data.synthetic import write_synthetic_coco

            synthetic = write_synthetic_coco(tmp, max(4, args.count // 2), args.schema, args.seed)
            annotation_file, image_dir = synthetic.annotation_file, synthetic.image_dir
        else:
            annotation_file, image_dir = args.annotations, args.images
        grid = _crop_grid(annotation_file, image_dir, args)
    import cv2

    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(args.out.with_suffix(".png")), grid):
        raise ConfigError(f"--out: cannot write {args.out}")
    print(f"wrote {args.out.with_suffix('.png')}")
    return 0


def _crop_grid(annotation_file: Path, image_dir: Path, args: argparse.Namespace):
    """``(h, w, 3)`` uint8 BGR grid of ``args.count`` pipeline crops with keypoints drawn."""
    import cv2

    from kpose.data.pipeline import make_topdown_dataset
    from kpose.data.readers import read_samples
    from kpose.keypoints import get_schema
    from kpose.runtime.drawing import draw_keypoints, make_grid

    schema = get_schema(args.schema)
    samples = read_samples(annotation_file, image_dir, schema, args.format)
    dataset = make_topdown_dataset(
        samples, schema, args.input_size, batch_size=args.count, training=not args.no_augment,
        seed=args.seed, drop_remainder=False,
    )
    batch = next(iter(dataset))
    tiles = [
        draw_keypoints(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), keypoints, schema, weights, threshold=0.5)
        for image, keypoints, weights in zip(
            batch["image"].numpy(), batch["keypoints"].numpy(), batch["weights"].numpy()
        )
    ]
    return make_grid(tiles, args.columns)


def run_prepare(args: argparse.Namespace) -> int:
    from kpose.prepare import prepare_dataset
    from kpose.prepare.config_file import write_dataset_config

    if (args.config is None) != (args.output is None):
        raise ConfigError("--config and -o go together: the config to copy and where to write the copy")
    if args.val_every < 2:
        raise ConfigError(f"--val-every must be >= 2, got {args.val_every}")
    prepared = prepare_dataset(args.dataset, args.root, mpii_val_every=args.val_every)
    for note in prepared.notes:
        print(f"note: {note}")
    print(f"{args.dataset} in {prepared.root} is ready.")
    if args.config is not None:
        for note in write_dataset_config(prepared, args.config, args.output):
            print(f"note: {note}")
        print(f"wrote {args.output}; train with:\n  kpose train --config {args.output}")
    elif prepared.standard:
        print(f"Train with (any config of training/configs/{args.dataset}/):")
        print(f"  kpose train --config {prepared.example_config} --root {prepared.root}")
    else:
        print("Its files are not all where training/configs expects them; write a config that points at them:")
        print(f"  kpose data prepare {args.dataset} --root {prepared.root} --config {prepared.example_config} -o {args.dataset}.yaml")
        print(f"  kpose train --config {args.dataset}.yaml")
    return 0
