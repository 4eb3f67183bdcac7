"""Bottom-up data pipeline, losses and the evaluation chain on synthetic multi-person images."""

from __future__ import annotations

import json

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from kpose.codecs.associative_embedding import AssociativeEmbeddingCodec  # noqa: E402
from kpose.codecs.gaussian import encode_heatmaps  # noqa: E402
from kpose.codecs.heatmap import HeatmapCodec  # noqa: E402
from kpose.data.augment import AugmentConfig  # noqa: E402
from kpose.data.bottomup import make_bottomup_dataset, read_multiperson  # noqa: E402
from kpose.data.regions import annotation_outlines, draw_mask  # noqa: E402
from kpose.data.synthetic import write_synthetic_coco  # noqa: E402
from kpose.engine.bottomup_loss import (  # noqa: E402
    AssociativeEmbeddingLoss,
    MultiPersonHeatmapLoss,
    pack_targets,
)
from kpose.errors import AnnotationError, ConfigError, KposeError  # noqa: E402
from kpose.evaluation import evaluate_coco  # noqa: E402
from kpose.geometry import transform_points  # noqa: E402
from kpose.keypoints import get_schema  # noqa: E402
from kpose.tasks.bottomup import coco_results, fit_targets  # noqa: E402

SIZE = (128, 128)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return write_synthetic_coco(tmp_path_factory.mktemp("bu"), 6, seed=3, split="val")


def decode(heatmaps: np.ndarray, tags: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """People and scores of one image's maps at ``stride`` with the codec's defaults."""
    return AssociativeEmbeddingCodec(HeatmapCodec(SIZE, stride)).decode(heatmaps, tags)


def test_reader_keeps_every_person_and_masks_the_rest(synthetic, tmp_path) -> None:
    images = read_multiperson(synthetic.annotation_file, synthetic.image_dir, "coco", max_people=2)
    anns = json.loads(synthetic.annotation_file.read_text())["annotations"]
    labeled = [a for a in anns if a["num_keypoints"] > 0]
    per_image = {i: sum(a["image_id"] == i for a in labeled) for i in images.image_ids}
    kept = (images.visibility > 0).any(axis=2).sum(axis=1)
    assert list(kept) == [min(2, per_image[i]) for i in images.image_ids]
    masked = [len(outlines) for outlines in images.ignore_regions]  # no segmentations: one box each
    unlabeled = {i: sum(a["image_id"] == i and a["num_keypoints"] == 0 for a in anns) for i in images.image_ids}
    assert list(masked) == [max(0, per_image[i] - 2) + unlabeled[i] for i in images.image_ids]
    with pytest.raises(ConfigError, match="max_people"):
        read_multiperson(synthetic.annotation_file, synthetic.image_dir, "coco", max_people=0)
    with pytest.raises(KposeError, match="none of the images exists"):
        read_multiperson(synthetic.annotation_file, tmp_path, "coco")


def test_whole_images_are_fitted_and_keypoints_follow(synthetic) -> None:
    images = read_multiperson(synthetic.annotation_file, synthetic.image_dir, "coco", max_people=8)
    batch = next(make_bottomup_dataset(images, "coco", SIZE, 6, training=False).as_numpy_iterator())
    assert batch["image"].shape == (6, *SIZE, 3) and batch["mask"].shape == (6, *SIZE)
    # 640x480 image into 128x128: scale 0.2, padded 16 rows top and bottom
    np.testing.assert_allclose(batch["matrix"][0][:, :2], [[0.2, 0], [0, 0.2]], atol=1e-6)
    expected = transform_points(images.keypoints[0].astype(np.float64), batch["matrix"][0])
    np.testing.assert_allclose(batch["keypoints"][0], expected, atol=1e-3)
    np.testing.assert_array_equal(batch["weights"][0], (images.visibility[0] > 0).astype(np.float32))
    assert batch["image"][0, :14].max() == 0 and batch["image"][0, 20:100].max() > 0


def test_augmented_flip_swaps_left_and_right(synthetic) -> None:
    images = read_multiperson(synthetic.annotation_file, synthetic.image_dir, "coco", max_people=8)
    flip_only = AugmentConfig(flip_prob=1.0, half_body_prob=0, scale_factor=0, rotation_prob=0, shift_prob=0)
    plain = next(make_bottomup_dataset(images, "coco", SIZE, 6, training=False).as_numpy_iterator())
    flipped = next(make_bottomup_dataset(images, "coco", SIZE, 6, training=True, seed=0, augment=flip_only)
                   .as_numpy_iterator())
    i = int(np.flatnonzero(plain["image_id"] == flipped["image_id"][0])[0])
    flip_index = get_schema("coco").flip_index
    mirrored = plain["keypoints"][i][:, flip_index]
    mirrored[..., 0] = SIZE[1] - 1 - mirrored[..., 0]
    w = flipped["weights"][0] > 0
    np.testing.assert_allclose(flipped["keypoints"][0][w], mirrored[w], atol=1e-3)


def test_mask_covers_warped_boxes() -> None:
    matrix = np.array([[0.5, 0, 0], [0, 0.5, 0]])
    outlines = annotation_outlines({"bbox": [20, 40, 40, 20]}, 480, 640)
    assert annotation_outlines({"bbox": [20, 40, 0, 0], "segmentation": []}, 480, 640) == []
    mask = draw_mask(outlines, matrix, (64, 64))
    assert mask[25, 15] == 0 and mask[5, 5] == 1 and mask.sum() == 64 * 64 - 21 * 11


def test_mask_follows_polygons_and_crowd_rle_not_boxes() -> None:
    from pycocotools import mask as mask_utils

    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    triangle = {"bbox": [10, 10, 40, 40], "segmentation": [[10, 10, 50, 10, 10, 50]]}
    mask = draw_mask(annotation_outlines(triangle, 64, 64), identity, (64, 64))
    assert mask[12, 12] == 0 and mask[45, 45] == 1  # inside the box, outside the triangle
    crowd = np.zeros((64, 64), np.uint8)
    crowd[5:20, 30:60] = 1
    crowd[40:60, 2:12] = 1  # two blobs: one RLE region
    compressed = mask_utils.encode(np.asfortranarray(crowd))
    compressed["counts"] = compressed["counts"].decode()  # as read from JSON
    runs, value, previous = [], 0, 0
    for i, pixel in enumerate(crowd.T.ravel()):  # uncompressed RLE: column-major run lengths
        if pixel != value:
            runs, value, previous = runs + [i - previous], pixel, i
    uncompressed = {"counts": runs + [crowd.size - previous], "size": [64, 64]}
    for rle in (compressed, uncompressed):
        ann = {"bbox": [2, 5, 58, 55], "segmentation": rle, "iscrowd": 1}
        mask = draw_mask(annotation_outlines(ann, 64, 64), identity, (64, 64))
        np.testing.assert_array_equal(mask, 1 - crowd)


def test_malformed_segmentation_names_the_field(synthetic, tmp_path) -> None:
    data = json.loads(synthetic.annotation_file.read_text())
    for bad, message in [
        ([[1, 2, 3, 4]], r"annotations\[0\]\.segmentation\[0\]' must be a polygon"),
        ({"counts": 5, "size": [4, 4]}, r"annotations\[0\]\.segmentation\.counts"),
        ("x", r"annotations\[0\]\.segmentation' must be a list of polygons or an RLE object"),
    ]:
        data["annotations"][0]["segmentation"] = bad
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(data))
        with pytest.raises(AnnotationError, match=message):
            read_multiperson(path, synthetic.image_dir, "coco")


def test_crowd_region_is_masked_in_the_batches(synthetic, tmp_path) -> None:
    data = json.loads(synthetic.annotation_file.read_text())
    first = min(image["id"] for image in data["images"])
    data["annotations"].append({
        "id": 10**6, "image_id": first, "category_id": 1, "iscrowd": 1, "bbox": [0, 0, 640, 480], "area": 100.0,
        "keypoints": [0] * 51, "segmentation": [[100, 100, 300, 100, 300, 200, 100, 200]],
    })
    path = tmp_path / "crowd.json"
    path.write_text(json.dumps(data))
    images = read_multiperson(path, synthetic.image_dir, "coco")
    batch = next(make_bottomup_dataset(images, "coco", SIZE, 6, training=False).as_numpy_iterator())
    i = int(np.flatnonzero(batch["image_id"] == first)[0])
    # 640x480 -> 128x128: scale 0.2, 16 rows of padding on top; the polygon is x 20..60, y 36..56
    assert batch["mask"][i, 40:52, 24:56].max() == 0 and batch["mask"][i, 60:, 70:].min() == 1


def _targets(keypoints, weights, mask):
    return pack_targets(tf.constant(keypoints, tf.float32), tf.constant(weights, tf.float32), tf.constant(mask))


def test_heatmap_loss_is_zero_on_the_rendered_target_and_masked() -> None:
    kps = np.array([[[[10.0, 12.0], [40.0, 50.0]], [[50.0, 20.0], [0.0, 0.0]]]])  # (1, P=2, K=2, 2)
    weights = np.array([[[1.0, 1.0], [1.0, 0.0]]])
    mask = np.ones((1, 64, 64), np.uint8)
    maps, _ = encode_heatmaps(kps.reshape(2, 2, 2), weights.reshape(2, 2), (64, 64), 4, 2.0)
    target = maps.max(axis=0, keepdims=True)  # (1, 16, 16, 2): the maximum over people
    loss = MultiPersonHeatmapLoss((64, 64), 2, 2)
    assert float(loss(_targets(kps, weights, mask), target)) < 1e-10
    wrong = target.copy()
    wrong[0, :8] += 1.0  # error only in the top half
    assert float(loss(_targets(kps, weights, mask), wrong)) == pytest.approx(0.5, rel=1e-5)
    top_masked = mask.copy()
    top_masked[:, :32] = 0
    assert float(loss(_targets(kps, weights, top_masked), wrong)) < 1e-10


def test_associative_embedding_push_and_pull() -> None:
    kps = np.array([[[[4.0, 4.0], [20.0, 4.0]], [[4.0, 28.0], [20.0, 28.0]]]])  # two people, K=2
    weights = np.ones((1, 2, 2))
    mask = np.ones((1, 32, 32), np.uint8)
    loss = AssociativeEmbeddingLoss((32, 32), 2, 2)
    tags = np.zeros((1, 32, 32, 2), np.float32)
    tags[0, 16:] = 10.0  # person 2's tags far from person 1's
    assert float(loss(_targets(kps, weights, mask), tags)) == pytest.approx(0.0, abs=1e-6)
    same = np.zeros_like(tags)  # everyone has tag 0: push = exp(0) = 1
    assert float(loss(_targets(kps, weights, mask), same)) == pytest.approx(1.0, rel=1e-6)
    spread = tags.copy()
    spread[0, :, 16:, 1] = 2.0  # person 1's second keypoint (x=20) tag 2: pull (1 + 1) / 2 / 2
    spread[0, 16:, 16:, 1] = 10.0
    assert float(loss(_targets(kps, weights, mask), spread)) == pytest.approx(0.5 + np.exp(-81.0) / 1.0, rel=1e-4)


def test_evaluation_chain_scores_ground_truth_maps_near_one(synthetic) -> None:
    """Ground truth rendered as heatmaps and tags, grouped and mapped back, gives AP ~1: the
    geometry from image to input and back and the grouping are consistent."""
    images = read_multiperson(synthetic.annotation_file, synthetic.image_dir, "coco", max_people=8)
    dataset = make_bottomup_dataset(images, "coco", (256, 256), 6, training=False)
    results = []
    for batch in dataset.as_numpy_iterator():
        for i in range(len(batch["image"])):
            kps, w = batch["keypoints"][i], batch["weights"][i]
            maps, _ = encode_heatmaps(kps, w, (256, 256), 2)  # (P, 128, 128, K)
            owner = maps.argmax(axis=0)
            tags = (owner * 3.0).astype(np.float32)
            people, scores = decode(maps.max(axis=0), tags, 2)
            results += coco_results(people, scores, batch["matrix"][i], int(batch["image_id"][i]))
    metrics = evaluate_coco(results, synthetic.annotation_file, "coco")
    assert metrics["AP"] > 0.85


def _nearest_person_tags(keypoints: np.ndarray, weights: np.ndarray, size: int, stride: int) -> np.ndarray:
    """Perfect ``(h, w, K)`` tags: 3 x the index of the person whose keypoint of each type is
    nearest the pixel (keypoints ``(P, K, 2)`` input pixels, weights ``(P, K)``)."""
    centres = (np.arange(size // stride) + 0.5) * stride - 0.5
    dx = centres[None, None, None, :] - keypoints[:, :, 0, None, None]
    dy = centres[None, None, :, None] - keypoints[:, :, 1, None, None]
    d2 = np.where(weights[:, :, None, None] > 0, dx**2 + dy**2, np.inf)  # (P, K, h, w)
    return (np.argmin(d2, axis=0).transpose(1, 2, 0) * 3.0).astype(np.float32)


def test_loss_targets_grouped_with_perfect_tags_score_high(synthetic) -> None:
    """The heatmaps the loss trains toward, at the quickstart's 128x128 and full resolution,
    grouped with perfect tags, score AP ~0.8: the target keeps one peak per person. (Summing
    the people's Gaussians and clipping at 1 made plateaus and merged people: AP 0.02.)"""
    images = read_multiperson(synthetic.annotation_file, synthetic.image_dir, "coco", max_people=8)
    loss = MultiPersonHeatmapLoss(SIZE, 8, 17)
    results = []
    for batch in make_bottomup_dataset(images, "coco", SIZE, 6, training=False).as_numpy_iterator():
        _, packed = fit_targets({key: tf.constant(value) for key, value in batch.items()})
        keypoints, weights, _ = loss.unpack(packed["heatmaps"])
        maps = loss.render(keypoints, weights, loss.codec_of(SIZE[0])).numpy()  # (B, 128, 128, K)
        assert maps.max() <= 1.0
        for i in range(len(maps)):
            tags = _nearest_person_tags(batch["keypoints"][i], batch["weights"][i], SIZE[0], 1)
            people, scores = decode(maps[i], tags, 1)
            results += coco_results(people, scores, batch["matrix"][i], int(batch["image_id"][i]))
    assert evaluate_coco(results, synthetic.annotation_file, "coco")["AP"] > 0.7
