import cv2
import numpy as np
import pytest

from kpose import geometry as geo


def test_box_to_center_scale_fixes_aspect_and_pads():
    center, scale = geo.box_to_center_scale(np.array([[10.0, 20.0, 30.0, 100.0], [0, 0, 200, 50]]), 0.75)
    np.testing.assert_allclose(center, [[25, 70], [100, 25]])
    # tall box keeps its height; wide box keeps its width; both padded by 1.25
    np.testing.assert_allclose(scale, [[75 * 1.25, 100 * 1.25], [200 * 1.25, 200 / 0.75 * 1.25]])


def test_crop_matrix_maps_region_to_crop():
    m = geo.crop_matrix(np.array([100.0, 50.0]), np.array([48.0, 64.0]), (256, 192))
    corners = np.array([[76.0, 18.0], [124.0, 82.0], [100.0, 50.0]])
    out = geo.transform_points(corners, m)
    zoom = 192 / 48
    np.testing.assert_allclose(out[2], [95.5, 127.5])
    np.testing.assert_allclose(out[1] - out[0], [48 * zoom, 64 * zoom])


def test_rotation_is_counter_clockwise_on_screen():
    m = geo.crop_matrix(np.array([0.0, 0.0]), np.array([11.0, 11.0]), (11, 11), rotation=90.0)
    # a point to the right of the centre ends up above it (smaller y) after a CCW turn
    out = geo.transform_points(np.array([[1.0, 0.0]]), m)
    np.testing.assert_allclose(out, [[5.0, 4.0]], atol=1e-9)


def test_flip_mirrors_the_crop():
    c, s = np.array([40.0, 60.0]), np.array([30.0, 40.0])
    pts = np.random.default_rng(0).uniform(0, 100, (8, 2))
    plain = geo.transform_points(pts, geo.crop_matrix(c, s, (64, 48), rotation=17.0))
    flipped = geo.transform_points(pts, geo.crop_matrix(c, s, (64, 48), rotation=17.0, flip=True))
    np.testing.assert_allclose(flipped[:, 0], 47 - plain[:, 0])
    np.testing.assert_allclose(flipped[:, 1], plain[:, 1])


def test_inverse_round_trip_batched():
    rng = np.random.default_rng(1)
    m = geo.crop_matrix(
        rng.uniform(0, 500, (5, 2)), rng.uniform(50, 200, (5, 2)), (256, 192),
        rotation=rng.uniform(-40, 40, 5), flip=rng.random(5) > 0.5,
    )
    pts = rng.uniform(0, 500, (5, 7, 2))
    back = geo.transform_points(geo.transform_points(pts, m), geo.invert_affine(m))
    np.testing.assert_allclose(back, pts, atol=1e-9)


def test_warp_moves_pixels_with_points():
    """A bright pixel warped by cv2 lands where transform_points says."""
    img = np.zeros((120, 160), np.float32)
    src = np.array([[37.0, 81.0]])
    img[81, 37] = 1.0
    img = cv2.GaussianBlur(img, (0, 0), 1.5)
    m = geo.crop_matrix(np.array([60.0, 70.0]), np.array([60.0, 80.0]), (64, 48), rotation=25.0, flip=True)
    crop = cv2.warpAffine(img, m, (48, 64), flags=cv2.INTER_LINEAR)
    y, x = np.unravel_index(np.argmax(crop), crop.shape)
    expected = geo.transform_points(src, m)[0]
    assert abs(x - expected[0]) <= 0.5 + 1e-6 and abs(y - expected[1]) <= 0.5 + 1e-6


def test_heatmap_input_mapping_matches_pixel_shuffle():
    # heatmap pixel 0 at stride 4 covers input pixels 0..3, centre 1.5
    assert geo.heatmap_to_input(0.0, 4) == 1.5
    np.testing.assert_allclose(geo.input_to_heatmap(geo.heatmap_to_input(np.arange(5.0), 4), 4), np.arange(5.0))


@pytest.mark.parametrize("flip", [False, True])
def test_tensorflow_twin_matches_numpy(flip):
    tf = pytest.importorskip("tensorflow")
    from kpose.geometry import affine_tf

    rng = np.random.default_rng(2)
    boxes = rng.uniform(10, 200, (6, 4))
    c_np, s_np = geo.box_to_center_scale(boxes, 0.75)
    c_tf, s_tf = affine_tf.box_to_center_scale(tf.constant(boxes, tf.float32), 0.75)
    np.testing.assert_allclose(c_tf.numpy(), c_np, rtol=1e-5)
    np.testing.assert_allclose(s_tf.numpy(), s_np, rtol=1e-5)
    rot = rng.uniform(-45, 45, 6)
    m_np = geo.crop_matrix(c_np, s_np, (256, 192), rotation=rot, flip=flip)
    m_tf = affine_tf.crop_matrix(c_tf, s_tf, (256, 192), rotation=tf.constant(rot, tf.float32), flip=flip)
    np.testing.assert_allclose(m_tf.numpy(), m_np, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(affine_tf.invert_affine(m_tf).numpy(), geo.invert_affine(m_np), rtol=1e-4, atol=1e-3)
    pts = rng.uniform(0, 300, (6, 17, 2))
    np.testing.assert_allclose(
        affine_tf.transform_points(tf.constant(pts, tf.float32), m_tf).numpy(),
        geo.transform_points(pts, m_np), rtol=1e-4, atol=1e-2,
    )
