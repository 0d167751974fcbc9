"""The composed warp is exactly the study's chain of transforms, applied in one resampling."""

from __future__ import annotations

import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from cytokit.models import warp  # noqa: E402


def _forward(u, h, w, rotation_deg=180.0, translate=0.25, shear=0.2):
    """The chain written out as 3x3 matrices on pixel coordinates: flip, rotate, shift, shear."""
    c = np.array([[1, 0, (w - 1) / 2], [0, 1, (h - 1) / 2], [0, 0, 1]])
    flip = np.diag([-1 if u[0] < 0.5 else 1, -1 if u[1] < 0.5 else 1, 1])
    t = (2 * u[2] - 1) * math.radians(rotation_deg)
    rot = np.array([[math.cos(t), -math.sin(t), 0], [math.sin(t), math.cos(t), 0], [0, 0, 1]])
    shift = np.array([[1, 0, (2 * u[3] - 1) * translate * w], [0, 1, (2 * u[4] - 1) * translate * h], [0, 0, 1]])
    sh = np.array([[1, (2 * u[5] - 1) * shear, 0], [(2 * u[6] - 1) * shear, 1, 0], [0, 0, 1]])
    return c @ sh @ shift @ rot @ flip @ np.linalg.inv(c)


def _row_to_matrix(row):
    return np.array([row[0:3], row[3:6], [row[6], row[7], 1.0]])


def test_matrices_invert_the_forward_chain():
    u = np.random.default_rng(0).random((50, warp.DRAWS)).astype(np.float32)
    rows = warp.warp_matrices(u, 60, 40).numpy()
    for ui, row in zip(u, rows):
        np.testing.assert_allclose(_row_to_matrix(row) @ _forward(ui, 60, 40), np.eye(3), atol=1e-4)


def test_middle_draws_are_the_identity():
    u = np.full((1, warp.DRAWS), 0.5, np.float32)
    np.testing.assert_allclose(warp.warp_matrices(u, 9, 9).numpy()[0], [1, 0, 0, 0, 1, 0, 0, 0], atol=1e-7)


def _image(h=9, w=9, seed=0):
    return np.random.default_rng(seed).random((1, h, w, 2)).astype(np.float32)


def test_quarter_turn_is_rot90():
    u = np.array([[0.9, 0.9, 0.75, 0.5, 0.5, 0.5, 0.5]], np.float32)  # no flip, +90 degrees
    x = _image()
    y = warp.apply_warp(x, warp.warp_matrices(u, 9, 9)).numpy()
    np.testing.assert_allclose(y[0], np.rot90(x[0], k=-1, axes=(0, 1)), atol=1e-5)


def test_flips_are_exact_mirrors():
    x = _image(7, 11)
    for fx, fy, want in [(0.1, 0.9, x[0, :, ::-1]), (0.9, 0.1, x[0, ::-1]), (0.1, 0.1, x[0, ::-1, ::-1])]:
        u = np.array([[fx, fy, 0.5, 0.5, 0.5, 0.5, 0.5]], np.float32)
        np.testing.assert_array_equal(warp.apply_warp(x, warp.warp_matrices(u, 7, 11)).numpy()[0], want)


def test_largest_shift_moves_a_quarter_of_the_width():
    u = np.array([[0.9, 0.9, 0.5, 1.0, 0.5, 0.5, 0.5]], np.float32)  # +0.25 * 8 = 2 px right
    x = _image(8, 8)
    y = warp.apply_warp(x, warp.warp_matrices(u, 8, 8), fill_mode="constant").numpy()
    np.testing.assert_allclose(y[0, :, 2:], x[0, :, :-2], atol=1e-6)
    assert np.all(y[0, :, :2] == 0)


def test_shear_moves_rows_by_the_factor():
    u = np.array([[0.9, 0.9, 0.5, 0.5, 0.5, 1.0, 0.5]], np.float32)  # x += 0.25 * (y - centre)
    x = _image(9, 9)
    y = warp.apply_warp(x, warp.warp_matrices(u, 9, 9, shear=0.25), fill_mode="constant").numpy()
    np.testing.assert_allclose(y[0, 8, 1:], x[0, 8, :-1], atol=1e-6)  # bottom row: +1 px
    np.testing.assert_allclose(y[0, 0, :-1], x[0, 0, 1:], atol=1e-6)  # top row: -1 px
    np.testing.assert_allclose(y[0, 4], x[0, 4], atol=1e-6)  # centre row stays


def test_layer_is_seeded_reproducible_and_identity_outside_training():
    x = np.random.default_rng(1).random((4, 16, 16, 3)).astype(np.float32)
    a, b = warp.RandomWarp(seed=5), warp.RandomWarp(seed=5)
    first = [a(x, training=True).numpy() for _ in range(2)]
    np.testing.assert_array_equal(first[0], b(x, training=True).numpy())
    assert not np.array_equal(first[0], first[1])
    np.testing.assert_array_equal(a(x, training=False), x)
    again = warp.RandomWarp.from_config(a.get_config())
    assert (again.rotation_deg, again.fill_mode, again.seed) == (180.0, "reflect", 5)


def test_each_image_gets_its_own_transform():
    x = np.repeat(_image(16, 16, 3), 4, axis=0)
    y = warp.RandomWarp(seed=0)(x, training=True).numpy()
    assert len({y[i].tobytes() for i in range(4)}) == 4
