"""``kpose data prepare``: check a downloaded COCO, MPII or CrowdPose folder and make it
ready for the configs in ``training/configs``.

One module per dataset (:mod:`~kpose.prepare.coco`, :mod:`~kpose.prepare.mpii`,
:mod:`~kpose.prepare.crowdpose`) states its layout and the URLs its files come from;
:mod:`~kpose.prepare.layout` holds the shared checks and :mod:`~kpose.prepare.config_file`
writes a config whose data paths point at a prepared folder. No TensorFlow.
"""

from __future__ import annotations

import os
from pathlib import Path

from kpose.prepare.coco import prepare_coco
from kpose.prepare.crowdpose import prepare_crowdpose
from kpose.prepare.layout import Log, PreparedDataset, PreparedSplit
from kpose.prepare.mpii import VAL_EVERY, prepare_mpii
from kpose.errors import ConfigError

DATASETS = ("coco", "mpii", "crowdpose")


def prepare_dataset(name: str, root: str | Path, log: Log = print, *, mpii_val_every: int = VAL_EVERY) -> PreparedDataset:
    """Check (MPII: also convert) the ``name`` dataset in ``root``.

    Args:
        name: one of :data:`DATASETS`.
        root: the dataset folder; relative to the working directory.
        log: progress lines.
        mpii_val_every: MPII from the official file: every N-th video goes to val.

    Raises:
        ConfigError: an unknown name, a missing file or folder (named, with its URL), or
            missing images.
        AnnotationError: a malformed annotation file (file and field named).
    """
    root = Path(os.path.abspath(root))
    if name == "mpii":
        return prepare_mpii(root, log, mpii_val_every)
    if name == "coco":
        return prepare_coco(root, log)
    if name == "crowdpose":
        return prepare_crowdpose(root, log)
    raise ConfigError(f"dataset must be one of {DATASETS}, got {name!r}")


__all__ = ["DATASETS", "PreparedDataset", "PreparedSplit", "prepare_dataset"]
