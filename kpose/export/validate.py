"""Check a written file the way a device will use it: open it with the runtime, run it once."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kpose.export.graph import ExportError
from kpose.metadata import MetadataError, ModelMetadata
from kpose.runtime.backends import open_backend


def validate_exported(path: str | Path, expected: ModelMetadata) -> dict[str, np.ndarray]:
    """Open ``path`` with :func:`kpose.runtime.backends.open_backend`, run one batch of
    mid-grey crops and check the outputs against the contract (names, shapes, float32).

    Returns:
        The outputs of that run, by name.

    Raises:
        ExportError: the file does not load or run, or breaks the contract.
    """
    path = Path(path)
    try:
        backend = open_backend(path, threads=1)
        if backend.metadata != expected:
            raise ExportError(f"{path}: the metadata read back differs from the metadata written")
        height, width = expected.input_size
        batch = expected.batch_size or 2
        outputs = backend.run(np.full((batch, height, width, 3), 128, np.uint8))
    except MetadataError as exc:
        raise ExportError(f"the exported file does not load or run: {exc}") from exc
    except (RuntimeError, ValueError) as exc:
        raise ExportError(f"{path}: the exported file fails to run ({exc})") from exc
    k = expected.keypoint_schema.num_keypoints
    expected_shapes = {"keypoints": (batch, k, 2), "scores": (batch, k)}
    if "heatmaps" in expected.outputs:
        expected_shapes["heatmaps"] = (batch, *expected.heatmap_size, k)
    shapes = {name: value.shape for name, value in outputs.items()}
    if shapes != expected_shapes or any(value.dtype != np.float32 for value in outputs.values()):
        raise ExportError(
            f"{path}: outputs {shapes} ({[str(v.dtype) for v in outputs.values()]}) do not match "
            f"the contract {expected_shapes} float32"
        )
    if not np.isfinite(outputs["keypoints"]).all():
        raise ExportError(f"{path}: the exported model returns non-finite keypoints")
    return outputs
