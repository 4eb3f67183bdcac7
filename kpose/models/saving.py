"""Loading saved kpose models."""

from __future__ import annotations

from pathlib import Path

import keras

from kpose.errors import KposeError
from kpose.models import layers  # noqa: F401  (registers kpose's layers with Keras)


def load_pose_model(path: str | Path) -> keras.Model:
    """A kpose ``.keras`` model, loaded in safe mode (kpose's layers are registered on import)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file not found")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except (ValueError, TypeError, OSError, KeyError) as exc:  # what Keras raises for foreign or unsafe files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise KposeError(f"{path}: not a kpose model Keras can load in safe mode ({reason})") from None
