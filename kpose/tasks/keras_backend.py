"""A ``.keras`` model behind the runtime's :class:`~kpose.runtime.backends.Backend` interface.

:func:`open_keras_backend` builds the serving graph the exporter builds for the model's task
(:meth:`kpose.tasks.Task.serving_graph`: float32 network, decoder inside), with a dynamic
batch, and runs it in TensorFlow, so :class:`~kpose.runtime.PoseEstimator` and
:class:`~kpose.runtime.BottomUpEstimator` run a trained model as they run its exported file:
same input (uint8 RGB ``(B, H, W, 3)``), same outputs, same metadata.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from kpose.export.graph import ExportError, model_metadata
from kpose.export.writer import ExportOptions, resolve_schema
from kpose.keypoints import KeypointSchema
from kpose.models import heatmap_output, load_pose_model
from kpose.runtime.backends import Backend
from kpose.tasks.select import task_of

INTERPRETER = "tensorflow"


def open_keras_backend(path: str | Path, schema: KeypointSchema | str | Path | None = None) -> Backend:
    """A ``.keras`` kpose model (top-down or bottom-up) as a :class:`Backend`.

    Args:
        path: the ``.keras`` file.
        schema: the keypoint schema (a built-in name, a schema file or a schema); None takes
            the built-in schema with the model's number of keypoints.

    Returns:
        A backend whose ``run`` maps ``(B, H, W, 3)`` uint8 RGB inputs to the exported file's
        outputs as numpy arrays (top-down: ``keypoints`` (B, K, 2) normalized to the crop and
        ``scores`` (B, K); bottom-up: ``candidates`` (B, K, M, 2), ``candidate_scores`` and
        ``candidate_tags`` (B, K, M)).

    Raises:
        KposeError: the file is not a kpose model, or the schema does not fit it; the message
            names ``path``.
    """
    path = Path(path)
    model = load_pose_model(path)
    try:
        keypoint_schema = resolve_schema(schema, None, heatmap_output(model).output.shape[-1])
        graph = task_of(model).serving_graph(model, keypoint_schema, ExportOptions(batch_size=None))
        metadata = model_metadata(model, graph, keypoint_schema, "none")
    except ExportError as exc:
        raise ExportError(f"{path}: {exc}") from None

    def run_batch(images: np.ndarray) -> dict[str, np.ndarray]:
        outputs = graph.function(tf.constant(images))
        return {name: outputs[name].numpy() for name in graph.outputs}

    return Backend(path, metadata, INTERPRETER, run_batch)
