"""Check a written file the way a device will use it: open it with the runtime, run it once."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kpose.export.graph import ExportError
from kpose.metadata import MetadataError, ModelMetadata
from kpose.runtime.backends import open_backend


def run_exported(path: str | Path, expected: ModelMetadata) -> tuple[dict[str, np.ndarray], int]:
    """Open ``path`` with :func:`kpose.runtime.backends.open_backend`, check that its metadata
    reads back as written, and run one batch of mid-grey crops.

    Returns:
        The outputs of that run by name, and the batch size it ran.

    Raises:
        ExportError: the file does not load or run, or its metadata differs.
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
    return outputs, batch


def check_contract(
    path: str | Path, outputs: dict[str, np.ndarray], contract: dict[str, tuple[int, ...]], finite: str
) -> None:
    """Outputs named and shaped as ``contract``, all float32, and ``outputs[finite]`` finite."""
    shapes = {name: value.shape for name, value in outputs.items()}
    if shapes != contract or any(value.dtype != np.float32 for value in outputs.values()):
        raise ExportError(
            f"{path}: outputs {shapes} ({[str(v.dtype) for v in outputs.values()]}) do not match "
            f"the contract {contract} float32"
        )
    if not np.isfinite(outputs[finite]).all():
        raise ExportError(f"{path}: the exported model returns non-finite {finite}")


def validate_exported(path: str | Path, expected: ModelMetadata) -> dict[str, np.ndarray]:
    """Run ``path`` once (:func:`run_exported`) and check its outputs against the contract its
    metadata states (:meth:`~kpose.metadata.ModelMetadata.output_shapes`: top-down ``keypoints``
    (B, K, 2), ``scores`` (B, K), optional ``heatmaps``; bottom-up ``candidates`` (B, K, M, 2),
    ``candidate_scores`` and ``candidate_tags`` (B, K, M)), all float32, the first output
    finite.

    Returns:
        The outputs of that run, by name.

    Raises:
        ExportError: the file does not load or run, or breaks the contract.
    """
    outputs, batch = run_exported(path, expected)
    check_contract(path, outputs, expected.output_shapes(batch), expected.outputs[0])
    return outputs
