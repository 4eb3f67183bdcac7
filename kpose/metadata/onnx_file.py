"""The kpose metadata of an ``.onnx`` file, from its ``metadata_props`` (read with onnxruntime,
or with the onnx package where onnxruntime is missing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from kpose.metadata.contract import METADATA_KEY, MetadataError, ModelMetadata


def metadata_from_props(props: Mapping[str, str], source: str) -> ModelMetadata:
    """The kpose metadata from ONNX ``metadata_props`` (as onnxruntime's
    ``get_modelmeta().custom_metadata_map`` gives them)."""
    if METADATA_KEY not in props:
        raise MetadataError(
            f"{source}: no kpose metadata in this ONNX file (was it written by `kpose export`?)"
        )
    return ModelMetadata.from_json(props[METADATA_KEY], source=source)


def read_onnx_metadata(path: str | Path) -> ModelMetadata:
    """The kpose metadata of an ``.onnx`` file (needs onnxruntime, or the onnx package)."""
    path = Path(path)
    try:
        import onnxruntime as ort
    except ImportError:
        try:
            import onnx
        except ImportError as exc:
            raise MetadataError(
                f"{path}: reading ONNX metadata needs onnxruntime or onnx installed"
            ) from exc
        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as exc:  # onnx raises several protobuf error types
            raise MetadataError(f"{path}: cannot read as an ONNX model ({exc})") from exc
        return metadata_from_props({p.key: p.value for p in model.metadata_props}, str(path))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise MetadataError(f"{path}: cannot read as an ONNX model ({exc})") from exc
    return metadata_from_props(session.get_modelmeta().custom_metadata_map, str(path))
