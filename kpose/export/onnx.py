"""ONNX conversion of a serving graph with tf2onnx, metadata in ``metadata_props``.

``tf2onnx.convert.from_keras`` does not work with Keras 3, so the serving ``tf.function``
(input ``image`` uint8) is converted with ``tf2onnx.convert.from_function``, which names the
outputs after the function's dict keys (``keypoints``, ``scores``, ``heatmaps``).
"""

from __future__ import annotations

import onnx

from kpose.export.graph import ExportError, ServingGraph
from kpose.metadata import METADATA_KEY, ModelMetadata

OPSETS = (13, 14, 15, 16, 17, 18)


def convert_onnx(graph: ServingGraph, metadata: ModelMetadata, opset: int = 17) -> bytes:
    """The serialized ONNX model of ``graph`` with ``metadata`` embedded.

    Raises:
        ExportError: unsupported opset, or tf2onnx cannot convert an op (named).
    """
    if opset not in OPSETS:
        raise ExportError(f"--opset {opset} is not supported; choose one of {list(OPSETS)} (tf2onnx <= 18)")
    import tf2onnx

    function = graph.concrete_function()
    try:
        model, _ = tf2onnx.convert.from_function(
            graph.function, input_signature=function.structured_input_signature[0], opset=opset
        )
    except Exception as exc:  # tf2onnx raises assorted errors, naming the op
        raise ExportError(f"ONNX conversion of {graph.network.name!r} failed: {exc}") from exc
    onnx.helper.set_model_props(model, {METADATA_KEY: metadata.to_json()})
    return model.SerializeToString()

