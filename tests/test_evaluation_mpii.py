"""MPII PCKh on a hand-made case with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from kpose.evaluation import head_sizes_from_boxes, pckh
from kpose.keypoints import get_schema

MPII = get_schema("mpii")

# Two people. Person A: head box 30 x 40 -> diagonal 50 -> head size 30 -> PCKh@0.5 radius 15 px.
# Person B: head box 60 x 80 -> diagonal 100 -> head size 60 -> radius 30 px.
HEAD_BOXES = np.array([[100.0, 50.0, 130.0, 90.0], [0.0, 0.0, 60.0, 80.0]])
# Error of each joint along x, in pixels; None = not visible.
ERRORS = {
    #                 A      B
    "head_top": (10.0, 40.0),  # A right, B wrong
    "right_shoulder": (14.0, 0.0),
    "left_shoulder": (16.0, 0.0),  # A wrong
    "right_elbow": (0.0, None),
    "left_elbow": (0.0, 29.0),
    "right_wrist": (20.0, 0.0),  # A wrong
    "left_wrist": (15.0, 0.0),  # exactly 0.5 head size: counts as right
    "right_hip": (0.0, None),
    "left_hip": (0.0, None),
    "right_knee": (0.0, 0.0),
    "left_knee": (0.0, 0.0),
    "right_ankle": (0.0, 0.0),
    "left_ankle": (30.0, 0.0),  # A wrong
    "pelvis": (100.0, 0.0),  # A wrong, left out of the mean
    "thorax": (100.0, 0.0),  # A wrong, left out of the mean
    "upper_neck": (5.0, None),
}


def make_case():
    rng = np.random.default_rng(0)
    ground_truth = rng.uniform(0, 200, size=(2, 16, 2))
    predictions = ground_truth.copy()
    visibility = np.ones((2, 16))
    for joint, errors in ERRORS.items():
        j = MPII.index(joint)
        for person, error in enumerate(errors):
            if error is None:
                visibility[person, j] = 0
                predictions[person, j] += 500.0  # far off, but not visible: must not count
            else:
                predictions[person, j, 0] += error
    return predictions, ground_truth, visibility


def test_head_sizes():
    np.testing.assert_allclose(head_sizes_from_boxes(HEAD_BOXES), [30.0, 60.0])


def test_pckh_hand_made_case():
    result = pckh(*make_case(), HEAD_BOXES)
    half_right = ("head_top", "left_shoulder", "right_wrist", "left_ankle", "pelvis", "thorax")
    for joint in MPII.keypoints:
        expected = 50.0 if joint in half_right else 100.0
        assert result.per_joint[MPII.index(joint)] == pytest.approx(expected), joint
    assert result.groups == pytest.approx(
        {
            "Head": 50.0,
            "Shoulder": 75.0,
            "Elbow": 100.0,
            "Wrist": 75.0,
            "Hip": 100.0,
            "Knee": 100.0,
            "Ankle": 75.0,
            # 24 visible joints outside pelvis and thorax; A misses 3 of its 14, B 1 of its 10
            "Mean": 100.0 * 20 / 24,
            # within 0.1 head size (3 px for A, 6 px for B): only the exact joints, 7 + 8
            "Mean@0.1": 100.0 * 15 / 24,
        }
    )
    assert result.visible_count[MPII.index("right_hip")] == 1
    assert result.threshold == 0.5


def test_pckh_curve_and_head_sizes():
    predictions, ground_truth, visibility = make_case()
    result = pckh(predictions, ground_truth, visibility, HEAD_BOXES)
    assert result.thresholds.shape == (51,) and result.curve.shape == (51, 16)
    assert result.thresholds[0] == 0.0 and result.thresholds[-1] == 0.5
    np.testing.assert_allclose(result.curve[-1], result.per_joint)
    np.testing.assert_allclose(result.mean_curve[[0, 10, 50]], [100 * 15 / 24, 100 * 15 / 24, 100 * 20 / 24])
    assert np.all(np.diff(result.mean_curve) >= 0)
    same = pckh(predictions, ground_truth, visibility, head_sizes=[30.0, 60.0])
    np.testing.assert_allclose(same.curve, result.curve)
    assert same.groups == result.groups


def test_pckh_never_visible_joint_and_bad_input():
    predictions, ground_truth, visibility = make_case()
    visibility[:, MPII.index("right_knee")] = 0
    result = pckh(predictions, ground_truth, visibility, HEAD_BOXES)
    assert np.isnan(result.per_joint[MPII.index("right_knee")])
    assert result.groups["Mean"] == pytest.approx(100.0 * 18 / 22)
    with pytest.raises(ValueError, match="exactly one of head_boxes"):
        pckh(predictions, ground_truth, visibility)
    with pytest.raises(ValueError, match="K = 16"):
        pckh(predictions[:, :14], ground_truth[:, :14], visibility[:, :14], HEAD_BOXES)
