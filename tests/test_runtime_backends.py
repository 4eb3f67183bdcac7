"""Backends run exported files by output name, in chunks of a fixed batch size."""

from __future__ import annotations

import numpy as np
import pytest

from kpose import metadata as md
from kpose.keypoints import get_schema
from kpose.runtime import BackendError, open_backend

tf = pytest.importorskip("tensorflow")
from runtime_models import write_tflite  # noqa: E402


def _write_tflite(path, batch_size):
    """A toy model with the export contract: keypoints = mean colour per crop, scores = 1."""

    @tf.function(input_signature=[tf.TensorSpec([batch_size, 8, 6, 3], tf.uint8, name="image")])
    def serve(image):
        mean = tf.reduce_mean(tf.cast(image, tf.float32), axis=[1, 2]) / 255.0
        keypoints = tf.tile(mean[:, None, :2], [1, 17, 1])
        return {"keypoints": keypoints, "scores": tf.ones([tf.shape(image)[0], 17])}

    meta = md.ModelMetadata(
        model_name="toy", schema=get_schema("coco").to_dict(), input_size=(8, 6),
        heatmap_size=(8, 6), batch_size=batch_size,
    )
    return write_tflite(path, serve, meta)


@pytest.mark.parametrize("batch_size", [1, 2])
def test_any_number_of_crops_runs_through_a_fixed_batch(tmp_path, batch_size):
    backend = open_backend(_write_tflite(tmp_path / "toy.tflite", batch_size), threads=1)
    assert backend.interpreter == "ai_edge_litert.interpreter"
    images = np.stack([np.full((8, 6, 3), 51 * i, np.uint8) for i in range(3)])
    out = backend.run(images)
    assert out["keypoints"].shape == (3, 17, 2) and out["scores"].shape == (3, 17)
    np.testing.assert_allclose(out["keypoints"][:, 0, 0], [0.0, 0.2, 0.4], atol=1e-6)
    assert backend.run(images[:0])["keypoints"].shape == (0, 17, 2)


def test_wrong_crops_are_a_clear_error(tmp_path):
    backend = open_backend(_write_tflite(tmp_path / "toy.tflite", 1))
    with pytest.raises(BackendError, match=r"uint8 crops of shape \(B, 8, 6, 3\)"):
        backend.run(np.zeros((1, 8, 6, 3), np.float32))
    with pytest.raises(BackendError, match="toy.tflite"):
        backend.run(np.zeros((1, 6, 8, 3), np.uint8))
