"""The top-down tf.data pipeline, checked on the pixels of synthetic images."""

import dataclasses
import logging
import os
import shutil

import cv2
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from kpose import geometry  # noqa: E402
from kpose.data.augment import AugmentConfig  # noqa: E402
from kpose.data.coco import read_coco  # noqa: E402
from kpose.data.images import JPEG, OTHER  # noqa: E402
from kpose.data.pipeline import _decode, _decode_plan, make_topdown_dataset  # noqa: E402
from kpose.data.synthetic import joint_colors, write_synthetic_coco  # noqa: E402
from kpose.geometry import warp_crop  # noqa: E402
from kpose.errors import ConfigError, KposeError  # noqa: E402
from kpose.keypoints import get_schema  # noqa: E402

SIZE = (128, 96)
COCO = get_schema("coco")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return write_synthetic_coco(tmp_path_factory.mktemp("synth"), 10, "coco", seed=3)


@pytest.fixture(scope="module")
def samples(synthetic):
    return read_coco(synthetic.annotation_file, synthetic.image_dir)


def _all(dataset):
    """Concatenate every batch of a dataset into numpy arrays."""
    batches = list(dataset.as_numpy_iterator())
    return {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}


def _augment(**overrides):
    return AugmentConfig(**{**dict(flip_prob=0.0, half_body_prob=0.0, shift_prob=0.0), **overrides})


def test_eval_elements_follow_the_samples(samples):
    data = _all(make_topdown_dataset(samples, COCO, SIZE, batch_size=7, training=False))
    n, k = len(samples), COCO.num_keypoints
    assert data["image"].shape == (n, *SIZE, 3) and data["image"].dtype == np.uint8
    assert data["keypoints"].shape == (n, k, 2) and data["keypoints"].dtype == np.float32
    assert data["weights"].shape == (n, k) and set(np.unique(data["weights"])) <= {0.0, 1.0}
    np.testing.assert_array_equal(data["sample_index"], np.arange(n))  # file order, last batch kept
    np.testing.assert_array_equal(data["image_id"], samples.image_ids)
    np.testing.assert_array_equal(data["box_score"], samples.scores)
    np.testing.assert_array_equal(data["area"], samples.areas)
    center, scale = geometry.box_to_center_scale(samples.boxes, SIZE[1] / SIZE[0])
    np.testing.assert_allclose(data["center"], center, rtol=1e-5)
    np.testing.assert_allclose(data["scale"], scale, rtol=1e-5)
    # Mapping the crop keypoints back with center/scale gives the annotation.
    inverse = geometry.invert_affine(geometry.crop_matrix(center, scale, SIZE))
    labeled = data["weights"] > 0
    back = geometry.transform_points(data["keypoints"], inverse)
    np.testing.assert_allclose(back[labeled], samples.keypoints[labeled], atol=1e-2)


def _color_at(image, point):
    """Bilinear colour of ``image`` at sub-pixel ``point`` (x, y)."""
    return cv2.getRectSubPix(image.astype(np.float32), (1, 1), tuple(map(float, point)))[0, 0]


@pytest.mark.parametrize("flip", [0.0, 1.0])
def test_visible_keypoints_land_on_their_discs(samples, flip):
    """After scale, rotation and flip, each visible keypoint shows its joint's colour.

    Every keypoint is drawn as a disc of its own colour, so in a flipped crop the left
    keypoints must sit on the discs drawn for the right ones and vice versa.
    """
    config = _augment(flip_prob=flip, rotation_prob=1.0, shift_prob=1.0)
    tf.random.set_seed(0)  # the pipeline's shuffle also depends on the global seed other tests set
    data = _all(make_topdown_dataset(samples, COCO, (256, 192), 16, training=True, seed=5, augment=config))
    palette = joint_colors(COCO.num_keypoints)[:, ::-1].astype(float)  # RGB, as decoded
    source = COCO.flip_index if flip else np.arange(COCO.num_keypoints)
    originals = {p: cv2.imread(p)[..., ::-1] for p in set(samples.image_paths)}
    differences, own_colour = [], []
    for image, keypoints, weights, scale, row in zip(
        data["image"], data["keypoints"], data["weights"], data["scale"], data["sample_index"]
    ):
        if 192 / scale[0] < 0.5:  # a disc shrunk this much blends with its surroundings
            continue
        for i, point in enumerate(keypoints):
            j = source[i]
            if weights[i] == 0 or samples.visibility[row, j] != 2:
                continue
            color = _color_at(image, point)
            own_colour.append(np.linalg.norm(palette - color, axis=1).argmin() == j)  # of all K colours
            drawn = _color_at(originals[samples.image_paths[row]], samples.keypoints[row, j])
            differences.append(np.linalg.norm(color - drawn))
    assert len(differences) > 100
    # A swap of left and right would put nearly every keypoint on another joint's colour; a
    # disc whose edge meets an occluder after rotation may blend (a few in a hundred).
    assert np.mean(own_colour) > 0.97, np.mean(own_colour)
    assert np.percentile(differences, 90) < 40  # the same pixels as at the annotated joint


def test_flip_mirrors_the_crop_and_swaps_left_and_right(samples):
    def run(flip):
        config = _augment(flip_prob=flip, rotation_prob=1.0, half_body_prob=0.5)
        return _all(make_topdown_dataset(samples, COCO, SIZE, 8, training=True, seed=9, augment=config))

    plain, flipped = run(0.0), run(1.0)
    np.testing.assert_array_equal(plain["sample_index"], flipped["sample_index"])
    mirrored = plain["image"][:, :, ::-1].astype(int)
    assert np.abs(flipped["image"].astype(int) - mirrored).mean() < 1.0
    swapped = plain["keypoints"][:, COCO.flip_index]
    np.testing.assert_allclose(flipped["keypoints"][..., 0], SIZE[1] - 1 - swapped[..., 0], atol=1e-3)
    np.testing.assert_allclose(flipped["keypoints"][..., 1], swapped[..., 1], atol=1e-3)
    np.testing.assert_array_equal(flipped["weights"], plain["weights"][:, COCO.flip_index])


def test_same_seed_same_batches_other_seed_other_batches(samples):
    def first_batches(seed):
        dataset = make_topdown_dataset(samples, COCO, SIZE, 8, training=True, seed=seed)
        return [b for _, b in zip(range(2), dataset.as_numpy_iterator())]

    a, b, c = first_batches(1), first_batches(1), first_batches(2)
    for x, y in zip(a, b):
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])
    assert not np.array_equal(a[0]["image"], c[0]["image"])


def test_each_epoch_draws_new_augmentation(samples):
    dataset = make_topdown_dataset(samples, COCO, SIZE, len(samples) // 2, training=True, seed=4)
    first = _all(dataset)
    second = _all(dataset)
    order = np.argsort(first["sample_index"])
    other = np.argsort(second["sample_index"])
    assert not np.allclose(first["keypoints"][order], second["keypoints"][other])


def test_half_body_crops_one_half(samples):
    config = _augment(half_body_prob=1.0, scale_factor=0.0, rotation_prob=0.0)
    data = _all(make_topdown_dataset(samples, COCO, SIZE, 4, training=True, seed=0, augment=config))
    full_center, full_scale = geometry.box_to_center_scale(samples.boxes, SIZE[1] / SIZE[0])
    rows = data["sample_index"]
    labeled = samples.visibility[rows] > 0
    eligible = labeled.sum(axis=1) > COCO.num_keypoints // 2
    assert eligible.sum() >= 3
    same = np.isclose(data["scale"], full_scale[rows]) & np.isclose(data["center"], full_center[rows])
    changed = ~same.all(axis=1)
    np.testing.assert_array_equal(changed, eligible)
    upper = np.isin(np.arange(COCO.num_keypoints), COCO.upper_body)
    for weights, lab in zip(data["weights"][eligible], labeled[eligible]):
        # the chosen half's labeled keypoints are all inside the crop
        assert (weights[lab & upper] == 1).all() or (weights[lab & ~upper] == 1).all()


def _smooth_image(shape, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (shape[0] // 40, shape[1] // 40, 3)).astype(np.float32)
    return cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("region_width", [40.0, 100.0, 200.0, 400.0, 900.0])  # DCT ratios 1, 1, 2, 4, 8
def test_window_decode_matches_whole_image_warp(tmp_path, region_width):
    """Decoding a window at a DCT ratio and warping gives the crop of the whole image."""
    image = _smooth_image((480, 640))
    path = tmp_path / "image.jpg"
    cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 98])
    whole = tf.io.decode_jpeg(tf.io.read_file(str(path)), channels=3).numpy()
    out = (96, 72)
    center = np.array([[200.0, 260.0], [-30.0, 100.0], [620.0, 470.0]])  # inside, half out, corner
    scale = np.tile([[region_width, region_width * 4 / 3]], (3, 1))
    matrix = geometry.crop_matrix(center, scale, out, rotation=[25.0, -70.0, 180.0], flip=[False, True, False])
    window, ratio_index, warp = _decode_plan(
        tf.constant(matrix, tf.float32), tf.constant(scale, tf.float32),
        tf.constant([[480, 640]] * 3, tf.int32), tf.constant([True] * 3), out,
    )
    expected_ratio = int(np.clip(np.floor(np.log2(region_width / out[1])), 0, 3))
    assert (ratio_index.numpy() == expected_ratio).all()
    data = tf.io.read_file(str(path))
    for i in range(3):
        decoded = _decode(data, tf.constant(JPEG), window[i], ratio_index[i]).numpy()
        crop = warp_crop(decoded, warp[i].numpy(), out)
        reference = warp_crop(whole, matrix[i], out)
        assert np.abs(crop.astype(float) - reference).mean() < 2.5, i
    png = tf.io.encode_png(whole)
    decoded = _decode(png, tf.constant(OTHER), window[0], ratio_index[0]).numpy()
    np.testing.assert_array_equal(decoded, whole)


def test_cached_images_give_the_same_crops(samples):
    plain = _all(make_topdown_dataset(samples, COCO, SIZE, 8, training=False))
    cached = _all(make_topdown_dataset(samples, COCO, SIZE, 8, training=False, cache=True))
    np.testing.assert_array_equal(plain["keypoints"], cached["keypoints"])
    difference = np.abs(plain["image"].astype(float) - cached["image"]).mean(axis=(1, 2, 3))
    full_resolution = plain["scale"][:, 0] < 2 * SIZE[1]  # else decoded at a DCT ratio of 2+
    assert full_resolution.sum() >= 3 and (~full_resolution).sum() >= 3
    assert difference[full_resolution].max() < 0.1
    assert difference[~full_resolution].max() < 6  # DCT scaling is a smoother downsampling


def test_missing_and_corrupt_images_are_skipped_and_counted(synthetic, tmp_path, caplog):
    image_dir = tmp_path / "images"
    shutil.copytree(synthetic.image_dir, image_dir)
    rows = read_coco(synthetic.annotation_file, image_dir)
    paths = sorted(set(rows.image_paths))
    missing, truncated, garbage = paths[:3]
    os.remove(missing)
    data = open(truncated, "rb").read()
    open(truncated, "wb").write(data[: len(data) // 2])
    open(garbage, "wb").write(b"not an image at all")
    with caplog.at_level(logging.WARNING, logger="kpose.data"):
        out = _all(make_topdown_dataset(rows, COCO, SIZE, 8, training=False))
    assert f"skipping 3 of {len(paths)} images (2 corrupt, 1 missing)" in caplog.text
    assert "truncated JPEG" in caplog.text
    good = ~np.isin(rows.image_paths.astype(str), paths[:3])
    np.testing.assert_array_equal(out["sample_index"], np.flatnonzero(good))


def test_an_image_that_fails_to_decode_is_skipped(synthetic, tmp_path):
    """A JPEG whose header and trailer look fine but has no scan: the pipeline skips its rows."""
    image_dir = tmp_path / "images"
    shutil.copytree(synthetic.image_dir, image_dir)
    rows = read_coco(synthetic.annotation_file, image_dir)
    broken = sorted(set(rows.image_paths))[0]
    data = open(broken, "rb").read()
    open(broken, "wb").write(data[: data.index(b"\xff\xda")] + b"\xff\xd9")  # drop the scan
    out = _all(make_topdown_dataset(rows, COCO, SIZE, 8, training=False))
    np.testing.assert_array_equal(out["sample_index"], np.flatnonzero(rows.image_paths != broken))


def test_no_readable_image_is_an_error(samples, tmp_path):
    moved = dataclasses.replace(samples, image_paths=np.array([str(tmp_path / "gone.jpg")] * len(samples), dtype=object))
    with pytest.raises(KposeError, match="none of the 1 images can be read"):
        make_topdown_dataset(moved, COCO, SIZE, 4)


def test_schema_must_match_the_samples(samples):
    with pytest.raises(ConfigError, match="schema 'mpii' has 16 keypoints"):
        make_topdown_dataset(samples, "mpii", SIZE, 4)


def test_augment_config_is_validated():
    with pytest.raises(ConfigError, match="augment.flip_prob"):
        AugmentConfig(flip_prob=1.5)
    with pytest.raises(ConfigError, match="augment.scale_factor"):
        AugmentConfig(scale_factor=1.0)
