"""OKS, OKS-NMS, rescoring and the top-down results collector (numpy only)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kpose.evaluation import TopDownResults, oks, oks_nms, rescore
from kpose.keypoints import get_schema

COCO_SIGMAS = get_schema("coco").sigmas_array


def test_oks_by_hand():
    sigmas = [0.05, 0.1]
    reference = np.zeros((2, 2))
    # e = d^2 / (2 * area * (2 sigma)^2): 1 / (2 * 100 * 0.01) = 0.5 and 4 / (2 * 100 * 0.04) = 0.5
    candidates = np.array([[[1.0, 0.0], [0.0, 2.0]], [[3.0, 0.0], [0.0, 0.0]]])
    np.testing.assert_allclose(oks(reference, candidates, sigmas, 100.0), [np.exp(-0.5), (np.exp(-4.5) + 1) / 2])
    # only the visible keypoints count; per-candidate areas
    np.testing.assert_allclose(
        oks(reference, candidates, sigmas, [100.0, 50.0], visible=[1, 0]), [np.exp(-0.5), np.exp(-9.0)]
    )
    # a third column (scores) is ignored; nothing visible gives 0
    with_scores = np.concatenate([candidates, np.ones((2, 2, 1))], axis=-1)
    np.testing.assert_allclose(oks(reference, with_scores, sigmas, 100.0), oks(reference, candidates, sigmas, 100.0))
    np.testing.assert_array_equal(oks(reference, candidates, sigmas, 100.0, visible=[0, 0]), [0.0, 0.0])
    with pytest.raises(ValueError, match="one sigma per keypoint"):
        oks(np.zeros((3, 2)), candidates, sigmas, 100.0)


def _person(rng: np.random.Generator, x: float, y: float, size: float) -> np.ndarray:
    return np.stack([x + rng.uniform(0, size, 17), y + rng.uniform(0, 2 * size, 17)], axis=1)


def test_oks_nms_removes_duplicates_keeps_distinct_people():
    rng = np.random.default_rng(0)
    a, b = _person(rng, 50, 40, 100), _person(rng, 300, 60, 90)
    near_a = a + rng.normal(0, 0.5, a.shape)  # the same person, found twice
    overlapping = a + rng.normal(0, 12, a.shape)  # close, but a different pose (OKS well below 0.9)
    keypoints = np.stack([near_a, b, a, overlapping])
    scores = np.array([0.8, 0.7, 0.9, 0.6])
    areas = np.array([20000.0, 16200.0, 20000.0, 20000.0])
    assert oks(a, overlapping[None], COCO_SIGMAS, 20000.0)[0] < 0.9 < oks(a, near_a[None], COCO_SIGMAS, 20000.0)[0]
    kept = oks_nms(keypoints, scores, areas, COCO_SIGMAS, threshold=0.9)
    np.testing.assert_array_equal(kept, [2, 1, 3])  # best first; near_a suppressed by a
    np.testing.assert_array_equal(oks_nms(keypoints, scores, areas, COCO_SIGMAS, threshold=1.0), [2, 0, 1, 3])
    assert oks_nms(np.zeros((0, 17, 2)), np.zeros(0), np.zeros(0), COCO_SIGMAS).size == 0


def test_rescore():
    keypoint_scores = np.array([[0.9, 0.1, 0.5, 0.2], [0.1, 0.2, 0.15, 0.0]])
    # mean of scores above 0.2 ({0.9, 0.5} -> 0.7) times the box score; none above -> 0
    np.testing.assert_allclose(rescore(keypoint_scores, [0.8, 0.9]), [0.56, 0.0])
    np.testing.assert_allclose(rescore(keypoint_scores, [1.0, 1.0], threshold=0.0), [0.425, 0.15])


def test_collector_rescores_suppresses_and_flattens(tmp_path):
    rng = np.random.default_rng(1)
    a, b = _person(rng, 50, 40, 100), _person(rng, 300, 60, 90)
    collector = TopDownResults("coco")
    collector.add(
        image_ids=[7, 7, 3],
        keypoints=np.stack([a, a + 0.3, b]),
        keypoint_scores=np.stack([np.full(17, 0.8), np.full(17, 0.9), np.linspace(0.0, 1.0, 17)]),
        box_scores=[1.0, 0.5, 0.9],
        box_areas=[20000.0, 20000.0, 16200.0],
    )
    collector.add(7, b, np.full(17, 0.6), 1.0, 16200.0)  # one box, no batch axis
    assert len(collector) == 4
    results = collector.results()
    assert [r["image_id"] for r in results] == [3, 7, 7]
    first = results[0]
    assert first["category_id"] == 1
    assert first["score"] == pytest.approx(0.9 * np.mean(np.linspace(0, 1, 17)[np.linspace(0, 1, 17) > 0.2]))
    flat = np.asarray(first["keypoints"]).reshape(17, 3)
    np.testing.assert_allclose(flat[:, :2], b)
    np.testing.assert_allclose(flat[:, 2], np.linspace(0, 1, 17))
    # image 7: a (0.8) beats its duplicate (0.45), b (0.6) is someone else
    assert [r["score"] for r in results[1:]] == pytest.approx([0.8, 0.6])
    np.testing.assert_allclose(np.asarray(results[1]["keypoints"]).reshape(17, 3)[:, :2], a)

    path = collector.write_results(tmp_path / "results.json")
    assert json.loads(path.read_text()) == results
    with pytest.raises(ValueError, match="K = 17"):
        collector.add([1], np.zeros((1, 14, 2)), np.zeros((1, 14)), [1.0], [1.0])
    assert TopDownResults("crowdpose").results() == []
