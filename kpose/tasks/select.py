"""Which task a model name, a Keras model, a model file or an exported file's metadata is."""

from __future__ import annotations

from pathlib import Path

import keras

from kpose.metadata import ModelMetadata, read_metadata
from kpose.models import load_pose_model, parse_model_name
from kpose.runtime.backends import Backend
from kpose.tasks.base import Task
from kpose.tasks.bottomup import BottomUp
from kpose.tasks.topdown import TopDown

TASKS: dict[str, Task] = {task.name: task for task in (TopDown(), BottomUp())}
EXPORTED_SUFFIXES = (".tflite", ".onnx")

TaskSource = str | Path | keras.Model | ModelMetadata | Backend


def task_of(source: TaskSource) -> Task:
    """The task of ``source``.

    Args:
        source: a model name (its head's task, :func:`kpose.models.parse_model_name`); a
            keras.Model or a ``.keras`` file (bottom-up when it has a ``tags`` output); an
            exported ``.tflite`` / ``.onnx`` file, its opened backend or its metadata
            (:attr:`kpose.metadata.ModelMetadata.task`).

    Raises:
        KposeError: an unknown model name, or a file that cannot be read, naming it.
    """
    if isinstance(source, Backend):
        source = source.metadata
    if isinstance(source, ModelMetadata):
        return TASKS[source.task]
    if isinstance(source, keras.Model):
        outputs = source.output
        return TASKS["bottomup" if isinstance(outputs, dict) and "tags" in outputs else "topdown"]
    suffix = Path(source).suffix.lower()
    if suffix in EXPORTED_SUFFIXES:
        return task_of(read_metadata(source))
    if suffix == ".keras":
        return task_of(load_pose_model(source))
    return TASKS[parse_model_name(str(source))[0].task]
