"""The exported-model metadata format: round trip, TFLite flatbuffer reading, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kpose import metadata as md
from kpose.geometry.crop_coordinates import crop_pixels_to_keypoints, keypoints_to_crop_pixels
from kpose.keypoints import get_schema


def _metadata() -> md.ModelMetadata:
    return md.ModelMetadata(
        model_name="srhead_mobilenetv3_small",
        schema=get_schema("coco").to_dict(),
        input_size=(128, 96),
        heatmap_size=(128, 96),
        decoder={"name": "maxpool", "kernel": 4, "flip_test": False},
        kpose_version="0.1.0",
    )


def test_json_round_trip_keeps_every_field():
    meta = _metadata()
    again = md.ModelMetadata.from_json(meta.to_json())
    assert again == meta
    assert again.keypoint_schema == get_schema("coco")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"input_size": [128]}, "input_size"),
        ({"format_version": 99}, "format_version"),
        ({"colour": 1}, "colour"),
    ],
)
def test_malformed_metadata_names_the_field(change, message):
    data = json.loads(_metadata().to_json())
    data.update(change)
    with pytest.raises(md.MetadataError, match=message):
        md.ModelMetadata.from_json(json.dumps(data), source="m.tflite")


def test_missing_field_is_named():
    data = json.loads(_metadata().to_json())
    del data["schema"]
    with pytest.raises(md.MetadataError, match="'schema'"):
        md.ModelMetadata.from_json(json.dumps(data), source="m.tflite")


def test_normalized_keypoints_convention():
    # The crop's outer edges are 0 and 1; pixel centres sit at integers.
    points = np.array([[-0.5, -0.5], [95.5, 127.5], [47.5, 63.5]])
    norm = crop_pixels_to_keypoints(points, (128, 96))
    np.testing.assert_allclose(norm, [[0, 0], [1, 1], [0.5, 0.5]])
    np.testing.assert_allclose(keypoints_to_crop_pixels(norm, (128, 96)), points, atol=1e-5)


def _tiny_tflite(path, metadata):
    """A one-op TFLite file carrying ``metadata`` (None: no kpose entry)."""
    tf = pytest.importorskip("tensorflow")
    from runtime_models import write_tflite

    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])
    def double(x):
        return {"y": x * 2.0}

    return write_tflite(path, double, metadata)


def test_tflite_metadata_is_read_without_tensorflow(tmp_path):
    meta = _metadata()
    path = _tiny_tflite(tmp_path / "m.tflite", meta)
    assert md.read_metadata(path) == meta
    # The converter's own entries are read too: the parser walks the whole list.
    assert "min_runtime_version" in md.tflite_metadata_entries(path.read_bytes())
    # The file still runs: the metadata does not disturb the graph.
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.ones((1, 4), np.float32))
    interpreter.invoke()
    out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(out, 2.0)


def test_tflite_without_kpose_metadata_is_a_clear_error(tmp_path):
    path = _tiny_tflite(tmp_path / "plain.tflite", None)
    with pytest.raises(md.MetadataError, match="no kpose metadata"):
        md.read_metadata(path)


def test_not_a_model_is_a_clear_error(tmp_path):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(md.MetadataError, match="junk.tflite"):
        md.read_metadata(junk)
    keras_file = tmp_path / "x.keras"
    keras_file.write_bytes(b"PK")
    with pytest.raises(md.MetadataError, match="expected a .tflite or .onnx"):
        md.read_metadata(keras_file)
    with pytest.raises(md.MetadataError, match="no such model file"):
        md.read_metadata(tmp_path / "missing.onnx")


def test_onnx_metadata_props(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {md.METADATA_KEY: _metadata().to_json()})
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    assert md.read_metadata(path) == _metadata()
