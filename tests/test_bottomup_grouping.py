"""The associative-embedding codec (kpose.codecs.associative_embedding) on hand-made heatmaps and tags."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from kpose.codecs.associative_embedding import (
    AssociativeEmbeddingCodec,
    find_candidates,
    flip_merge,
    group_people,
    heatmap_nms,
    log_parabola_offset,
)
from kpose.codecs.gaussian import encode_heatmaps
from kpose.codecs.heatmap import HeatmapCodec
from kpose.errors import KposeError

SIZE = (64, 64)


def render(people: list[dict], size=SIZE, stride: int = 1, sigma: float = 2.0):
    """Heatmaps (h, w, K) = max over people of their Gaussians (peak = the keypoint's score),
    tags (h, w, K) = the tag of the person whose Gaussian is highest there (+ noise)."""
    kps = np.array([p["keypoints"] for p in people], np.float64)  # (P, K, 2)
    maps, _ = encode_heatmaps(kps, np.ones(kps.shape[:2]), size, stride, sigma)  # (P, h, w, K)
    maps *= np.array([p.get("scores", 1.0) * np.ones(kps.shape[1]) for p in people])[:, None, None, :]
    owner = maps.argmax(axis=0)
    rng = np.random.default_rng(0)
    tags = np.array([p["tag"] for p in people], np.float32)[owner]
    tags += rng.uniform(-0.2, 0.2, tags.shape).astype(np.float32)
    return maps.max(axis=0).astype(np.float32), tags


# Person A's keypoints lie nearer person B's than its own (and the other way round): only
# the tags tell them apart.
A = {"keypoints": [(10, 10), (52, 14), (14, 52)], "tag": 0.0}
B = {"keypoints": [(50, 50), (18, 12), (56, 20)], "tag": 3.0}


def as_sets(people: np.ndarray) -> list[np.ndarray]:
    return sorted((p[:, :2] for p in people), key=lambda xy: tuple(xy[0]))


def test_two_people_with_crossed_keypoints_are_split_by_their_tags() -> None:
    heatmaps, tags = render([A, B])
    people, scores = group_people(find_candidates(heatmaps, tags, stride=1, nms_kernel=5))
    assert people.shape == (2, 3, 3)
    found = as_sets(people)
    np.testing.assert_allclose(found[0], A["keypoints"], atol=0.5)
    np.testing.assert_allclose(found[1], B["keypoints"], atol=0.5)
    assert np.all(people[:, :, 2] > 0.9) and np.all(scores > 0.9)


def test_swapping_the_tags_swaps_the_people() -> None:
    crossed = {"keypoints": A["keypoints"][:1] + B["keypoints"][1:], "tag": 0.0}
    other = {"keypoints": B["keypoints"][:1] + A["keypoints"][1:], "tag": 3.0}
    heatmaps, tags = render([crossed, other])
    people, _ = group_people(find_candidates(heatmaps, tags, nms_kernel=5))
    found = as_sets(people)
    np.testing.assert_allclose(found[0], crossed["keypoints"], atol=0.5)
    np.testing.assert_allclose(found[1], other["keypoints"], atol=0.5)


def test_an_empty_image_gives_no_people() -> None:
    heatmaps = np.random.default_rng(1).uniform(0, 0.05, (*SIZE, 3)).astype(np.float32)
    people, scores = group_people(find_candidates(heatmaps, np.zeros_like(heatmaps)))
    assert people.shape == (0, 3, 3) and scores.shape == (0,)


def test_refine_fills_a_keypoint_below_the_detection_threshold() -> None:
    faint = dict(B, scores=np.array([1.0, 1.0, 0.05]))
    heatmaps, tags = render([A, faint])
    candidates = find_candidates(heatmaps, tags, nms_kernel=5)
    plain, _ = group_people(candidates, refine=False)
    refined, _ = group_people(candidates)
    assert len(plain) == len(refined) == 2
    b_plain = [p for p in plain if abs(p[0, 0] - 50) < 1][0]
    b_refined = [p for p in refined if abs(p[0, 0] - 50) < 1][0]
    assert b_plain[2, 2] == 0
    np.testing.assert_allclose(b_refined[2], (56, 20, 0.05), atol=0.01)


def test_a_stray_candidate_ranks_below_the_people_whose_keypoints_refine_lends_it() -> None:
    stray = {"keypoints": [(-50, -50), (-50, -50), (30, 58)], "scores": np.array([0, 0, 0.3]), "tag": -3.0}
    heatmaps, tags = render([A, B, stray])
    people, scores = group_people(find_candidates(heatmaps, tags, nms_kernel=5))
    assert len(people) == 3
    # refined, the stray one holds A's or B's first two keypoints at score ~1: mean ~0.77
    assert people[2, 2, 2] == pytest.approx(0.3, abs=0.02) and people[2, :2, 2].min() > 0.9
    # ranked by its own keypoint as grouped (0.3 / 3), far below the two real people
    np.testing.assert_allclose(scores, [1.0, 1.0, 0.1], atol=0.02)


def test_a_third_person_with_a_distant_tag_is_a_new_person() -> None:
    c = {"keypoints": [(30, 30), (34, 40), (40, 30)], "tag": -3.0}
    heatmaps, tags = render([A, B, c])
    people, _ = group_people(find_candidates(heatmaps, tags, nms_kernel=5))
    assert len(people) == 3
    np.testing.assert_allclose(as_sets(people)[1], c["keypoints"], atol=0.5)


def test_candidates_are_in_input_pixels_at_the_gaussian_peak() -> None:
    # stride 4: keypoint at input (41, 22) is heatmap (9.875, 5.125): peak pixel (10, 5); the
    # log-parabola adjust recovers the sub-pixel centre of the sampled Gaussian
    heatmaps, tags = render([{"keypoints": [(41, 22)], "tag": 1.0}], size=(64, 64), stride=4)
    cands = find_candidates(heatmaps, tags, stride=4, top_k=4)
    assert cands.coords.shape == (1, 4, 2) and cands.tags.shape == (1, 4, 1)
    np.testing.assert_allclose(cands.coords[0, 0], (41.0, 22.0), atol=1e-3)
    assert cands.scores[0, 1] == 0  # NMS leaves one peak


def test_log_parabola_offset_is_bounded_and_zero_without_a_peak() -> None:
    gaussian = np.exp(-((np.arange(-1, 2) - 0.3) ** 2) / 8.0)
    assert log_parabola_offset(*gaussian) == pytest.approx(0.3, abs=1e-6)
    assert log_parabola_offset(1.0, 1.0, 1.0) == 0.0  # flat: no curvature
    assert log_parabola_offset(0.8, 0.5, 0.8) == 0.0  # a dip curves up
    assert log_parabola_offset(0.2, 0.5, 0.8) == 0.5  # a rising slope: at most half a pixel
    assert log_parabola_offset(0.0, 0.5, 0.5) == 0.5  # a neighbour at zero: clipped to half a pixel
    assert log_parabola_offset(0.5, 0.5, 0.0) == -0.5


def test_heatmap_nms_keeps_separate_peaks_only() -> None:
    heatmaps, _ = render([{"keypoints": [(10, 10)], "tag": 0}, {"keypoints": [(30, 10)], "tag": 1}])
    peaks = heatmap_nms(heatmaps, HeatmapCodec(SIZE, 4).peak_window)
    assert np.count_nonzero(peaks) == 2
    assert [HeatmapCodec(SIZE, stride).peak_window for stride in (1, 2, 4)] == [17, 9, 5]


def test_flip_merge_averages_mirrored_heatmaps_and_stacks_tags() -> None:
    heatmaps, tags = render([A, B])
    flip_index = np.array([0, 2, 1])
    mirrored = (heatmaps[:, ::-1][..., flip_index], tags[:, ::-1][..., flip_index])
    merged, both = flip_merge(heatmaps, tags, *mirrored, flip_index)
    np.testing.assert_allclose(merged, heatmaps, atol=1e-6)
    assert both.shape == (*SIZE, 3, 2)
    np.testing.assert_allclose(both[..., 1], tags, atol=1e-6)
    people, _ = group_people(find_candidates(merged, both, nms_kernel=5))
    assert len(people) == 2


def test_bad_shapes_are_named() -> None:
    heatmaps, tags = render([A])
    with pytest.raises(KposeError, match=r"heatmaps must be \(h, w, K\).*tags \(64, 64\)"):
        find_candidates(heatmaps, tags[..., 0])
    with pytest.raises(KposeError, match="top_k must be >= 1"):
        find_candidates(heatmaps, tags, top_k=0)


def test_codec_imports_no_tensorflow() -> None:
    code = "import sys, kpose.codecs.associative_embedding; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("top_k", [1, 5])
def test_top_k_candidates_per_keypoint_type(top_k: int) -> None:
    heatmaps, tags = render([A, B])
    cands = find_candidates(heatmaps, tags, nms_kernel=5, top_k=top_k)
    assert cands.scores.shape == (3, top_k)
    assert np.all((cands.scores > 0.9).sum(axis=1) == min(top_k, 2))
    assert np.all(np.diff(cands.scores, axis=1) <= 0)  # best first


def test_codec_decode_is_candidates_then_grouping() -> None:
    heatmaps, tags = render([A, B], stride=2, sigma=4.0)
    codec = AssociativeEmbeddingCodec(HeatmapCodec((128, 128), 2), top_k=5, refine=False)
    candidates = codec.candidates(heatmaps, tags)
    np.testing.assert_array_equal(candidates.coords, find_candidates(heatmaps, tags, 2, 5, nms_kernel=9).coords)
    people, scores = codec.decode(heatmaps, tags)
    want = group_people(candidates, refine=False)
    np.testing.assert_array_equal(people, want[0])
    np.testing.assert_array_equal(scores, want[1])
    assert len(people) == 2 and codec.nms_kernel == 9 and codec.num_candidates == 5
