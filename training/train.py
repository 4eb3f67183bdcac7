"""Train from a YAML config: the same entry point as ``kpose train``.

    python training/train.py --config training/configs/coco/srpose_resnet50_256x192.yaml
"""

import sys

from kpose.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
