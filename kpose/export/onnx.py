"""ONNX conversion of a serving graph with tf2onnx, metadata in ``metadata_props``.

``tf2onnx.convert.from_keras`` does not work with Keras 3, so the serving ``tf.function``
(input ``image`` uint8) is converted with ``tf2onnx.convert.from_function``, which names the
outputs after the function's dict keys (``keypoints``, ``scores``, ``heatmaps``).
"""

from __future__ import annotations

import contextlib
import gc
from typing import Iterator

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
        with _graph_copies_collected():
            model, _ = tf2onnx.convert.from_function(
                graph.function, input_signature=function.structured_input_signature[0], opset=opset
            )
    except Exception as exc:  # tf2onnx raises assorted errors, naming the op
        raise ExportError(f"ONNX conversion of {graph.network.name!r} failed: {exc}") from exc
    onnx.helper.set_model_props(model, {METADATA_KEY: metadata.to_json()})
    return model.SerializeToString()


@contextlib.contextmanager
def _graph_copies_collected() -> Iterator[None]:
    """Free each graph copy tf2onnx's optimizers drop, as soon as it is dropped.

    Every optimizer pass deep-copies the whole graph (weights included) and drops the old one,
    which is a reference cycle (nodes point at their graph) that only a full garbage collection
    frees, and the protobuf memory behind it is invisible to the collector's thresholds; about 30
    passes kept MRFeaNet2-ResNet-50 (80M parameters, 320 MB) at a 24 GB peak, and 8 GB with this.
    The collection runs when a pass rewrites the graph's protos (``Graph.update_proto``, once a
    pass), over the objects made since the conversion started only (the rest are frozen), so it
    costs milliseconds on small models.
    """
    from tf2onnx.graph import Graph

    rewrite = Graph.update_proto

    def update_proto(graph: Graph, external_tensor_storage: object = None) -> None:
        gc.collect()
        rewrite(graph, external_tensor_storage)

    gc.collect()
    gc.freeze()
    Graph.update_proto = update_proto
    try:
        yield
    finally:
        Graph.update_proto = rewrite
        gc.unfreeze()
