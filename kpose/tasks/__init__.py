"""Tasks: top-down and bottom-up pose, each one object, and the entry points that pick one.

>>> task_of("srpose_resnet50").name            # a model name, before any model exists
'topdown'
>>> task_of("people.tflite").name               # an exported file, by its metadata
'bottomup'
>>> train(config); evaluate("best.keras", dataset, schema); export_model("best.keras", "pose.tflite")

A :class:`Task` (:mod:`~kpose.tasks.base`) supplies what differs between the two: the
dataset and loss of training, the prediction of evaluation and the serving graph of export
(:mod:`~kpose.tasks.topdown`, :mod:`~kpose.tasks.bottomup`); on a device the runtime picks
the estimator from the same metadata (:func:`kpose.runtime.select.estimator_for`).
:func:`task_of` is the one place that tells which task a model name, a model, an exported
file or its metadata belongs to. The entry points (:mod:`~kpose.tasks.workflows`) are what
the CLI and the Python API call.
"""

from kpose.tasks.base import Task
from kpose.tasks.bottomup import BottomUp
from kpose.tasks.select import TASKS, task_of
from kpose.tasks.topdown import TopDown
from kpose.tasks.workflows import evaluate, export_model, train

__all__ = ["TASKS", "BottomUp", "Task", "TopDown", "evaluate", "export_model", "task_of", "train"]
