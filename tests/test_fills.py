"""The four fills of hidden superpixels: grey, superpixel mean, blur and ROAD's noisy linear imputation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from cytokit.xai import fills
from cytokit.xai.occlusion import GREY, compose

SIZE = 40
BLOCK = 8


def grid_segments(size: int = SIZE, block: int = BLOCK) -> np.ndarray:
    rows, cols = np.indices((size, size)) // block
    return (rows * (size // block) + cols).astype(np.int32)


def random_image(seed: int = 0, size: int = SIZE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3)).astype(np.uint8)


def superpixel_mask(segments: np.ndarray, hidden_ids) -> np.ndarray:
    """Visible (H, W): every pixel outside the ``hidden_ids`` superpixels."""
    return ~np.isin(segments, list(hidden_ids))


def ramp(size: int = SIZE) -> np.ndarray:
    """Each channel linear in x and y, 10 + 2x + 3y plus an offset per channel, all below 256."""
    y, x = np.indices((size, size))
    return np.stack([10 + 2 * x + 3 * y + 5 * c for c in range(3)], axis=-1).astype(np.uint8)


def middle_block(size: int = SIZE) -> np.ndarray:
    visible = np.ones((size, size), bool)
    visible[10:30, 12:28] = False
    return visible


HIDDEN = {0, 3, 7, 12, 13, 18, 24}  # grid superpixels, some on the border, two adjacent pairs


def test_the_fills_are_the_studys_grey_and_three_others():
    assert fills.FILLS[0] == "grey" and set(fills.FILLS) == {"grey", "mean", "blur", "imputed"}
    with pytest.raises(ValueError, match="grey, mean, blur, imputed"):
        fills.check_kind("black")


@pytest.mark.parametrize("kind", fills.FILLS)
def test_every_fill_keeps_visible_pixels_and_returns_the_images_shape_in_uint8(kind):
    image, segments = random_image(1), grid_segments()
    visible = superpixel_mask(segments, HIDDEN)
    out = fills.fill(image, segments, visible, kind, seed=3)
    assert out.dtype == np.uint8 and out.shape == image.shape
    np.testing.assert_array_equal(out[visible], image[visible])
    assert not np.array_equal(out[~visible], image[~visible])


@pytest.mark.parametrize("kind", ["mean", "blur", "imputed"])
def test_a_constant_image_stays_constant(kind):
    image = np.full((SIZE, SIZE, 3), (37, 150, 201), np.uint8)
    visible = superpixel_mask(grid_segments(), HIDDEN)
    out = fills.fill(image, grid_segments(), visible, kind, noise=0)
    np.testing.assert_array_equal(out, image)


def test_grey_paints_hidden_pixels_128_exactly():
    image, segments = random_image(2), grid_segments()
    visible = superpixel_mask(segments, HIDDEN)
    out = fills.fill(image, segments, visible, "grey")
    assert GREY == 128 and (out[~visible] == 128).all()


def test_mean_paints_each_hidden_superpixel_its_own_mean_colour():
    image, segments = random_image(3), grid_segments()
    image[segments == 12] //= 4  # one dark superpixel: its fill must stay dark
    visible = superpixel_mask(segments, HIDDEN)
    out = fills.fill(image, segments, visible, "mean")
    for sp in HIDDEN:
        expected = np.rint(image[segments == sp].astype(float).mean(axis=0))
        assert (out[segments == sp] == expected).all(), f"superpixel {sp}"
    assert out[segments == 12].max() < 64


def test_mean_accepts_any_labels():
    image, segments = random_image(4), grid_segments()
    relabelled = segments * 7 - 20  # sparse, negative labels: same superpixels
    np.testing.assert_array_equal(fills.superpixel_means(image, relabelled), fills.superpixel_means(image, segments))


def test_blur_is_a_gaussian_of_a_twenty_fifth_of_the_side_on_hidden_pixels_only():
    image, segments = random_image(5, size=100), grid_segments(100, 20)
    visible = superpixel_mask(segments, {0, 6, 12, 24})
    out = fills.fill(image, segments, visible, "blur")
    np.testing.assert_array_equal(out[visible], image[visible])
    expected = ndimage.gaussian_filter(image.astype(float), sigma=(100 / 25, 100 / 25, 0), mode="mirror", truncate=3)
    assert np.abs(out[~visible] - expected[~visible]).max() <= 2
    # random pixels are ~74 grey levels apart on average; their blur sits near 127.5
    assert np.abs(out[~visible].astype(int) - image[~visible]).mean() > 40


def test_mask_independent_fills_compose_with_their_source_and_imputation_has_none():
    image, segments = random_image(6), grid_segments()
    visible = superpixel_mask(segments, HIDDEN)
    for kind in ("grey", "mean", "blur"):
        np.testing.assert_array_equal(fills.fill(image, segments, visible, kind),
                                      compose(image, visible, fills.source(image, segments, kind)))
    with pytest.raises(ValueError, match="depends on the mask"):
        fills.source(image, segments, "imputed")


def test_a_filler_is_the_same_as_filling_each_mask():
    image, segments = random_image(7), grid_segments()
    masks = [superpixel_mask(segments, HIDDEN), superpixel_mask(segments, {1, 2, 3})]
    for kind in fills.FILLS:
        make = fills.filler(image, segments, kind, seed=11)
        for visible in masks:
            np.testing.assert_array_equal(make(visible), fills.fill(image, segments, visible, kind, seed=11))


def test_imputation_recovers_a_linear_ramp_exactly():
    image, visible = ramp(), middle_block()
    out = fills.fill(image, grid_segments(), visible, "imputed", noise=0)
    np.testing.assert_array_equal(out, image)
    # the hidden block is 20x16 pixels: solved as one system, not from its rim alone
    assert (~visible).sum() == 320


def test_imputation_uses_roads_weights():
    image = np.zeros((5, 5, 3), np.uint8)
    image[1:4, 1:4] = 60  # diagonal neighbours of the centre
    image[[1, 3, 2, 2], [2, 2, 1, 3]] = 120  # direct neighbours
    visible = np.ones((5, 5), bool)
    visible[2, 2] = False
    out = fills.impute(image, visible, noise=0)
    # 4 * 120 / 6 + 4 * 60 / 12 = 100 (equal weights would give 90)
    assert (out[2, 2] == 100).all()


def test_imputation_renormalises_weights_at_the_border():
    image = np.zeros((4, 4, 3), np.uint8)
    image[0, 1] = image[1, 0] = 120
    image[1, 1] = 60
    visible = np.ones((4, 4), bool)
    visible[0, 0] = False
    out = fills.impute(image, visible, noise=0)
    # (2 * 120 / 6 + 60 / 12) / (2 / 6 + 1 / 12) = 108; without renormalising 45
    assert (out[0, 0] == 108).all()


def dense_imputation(image: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """ROAD's system written out pixel by pixel and solved densely: the reference for a small image."""
    h, w = visible.shape
    hidden = [(r, c) for r in range(h) for c in range(w) if not visible[r, c]]
    index = {p: i for i, p in enumerate(hidden)}
    a = np.zeros((len(hidden), len(hidden)))
    b = np.zeros((len(hidden), image.shape[-1]))
    for i, (r, c) in enumerate(hidden):
        for (dr, dc), weight in fills.NEIGHBOUR_WEIGHTS:
            rr, cc = r + dr, c + dc
            if not (0 <= rr < h and 0 <= cc < w):
                continue
            a[i, i] += weight
            if visible[rr, cc]:
                b[i] += weight * image[rr, cc]
            else:
                a[i, index[(rr, cc)]] -= weight
    out = image.astype(float)
    out[~visible] = np.linalg.solve(a, b)
    return out


def test_imputation_solves_roads_system_on_any_mask():
    rng = np.random.default_rng(8)
    image = rng.integers(0, 256, (12, 15, 3)).astype(np.uint8)
    visible = rng.random((12, 15)) < 0.35
    visible[0, :] = visible[:, -1] = False  # hidden runs along two borders
    np.testing.assert_allclose(fills.imputed_values(image, visible), dense_imputation(image, visible), atol=1e-9)


def test_imputation_noise_is_seeded():
    image, segments = random_image(9), grid_segments()
    visible = superpixel_mask(segments, HIDDEN)
    once = fills.fill(image, segments, visible, "imputed", seed=1)
    np.testing.assert_array_equal(once, fills.fill(image, segments, visible, "imputed", seed=1))
    assert not np.array_equal(once, fills.fill(image, segments, visible, "imputed", seed=2))


def test_imputation_noise_has_roads_standard_deviation_on_the_0_255_scale():
    image = np.full((100, 100, 3), 100, np.uint8)
    visible = np.ones((100, 100), bool)
    visible[18:82, 18:82] = False
    noise = fills.impute(image, visible, seed=4)[~visible].astype(float) - 100
    assert fills.NOISE == pytest.approx(2.55)
    # rounding adds 1/12 to the variance; 12,288 draws put the estimate within ~1.5 %
    assert np.sqrt(noise.var() - 1 / 12) == pytest.approx(fills.NOISE, rel=0.05)
    assert abs(noise.mean()) < 0.1


def test_imputation_noise_on_a_pixel_does_not_depend_on_the_mask():
    image = np.full((SIZE, SIZE, 3), 100, np.uint8)
    segments = grid_segments()
    small, large = superpixel_mask(segments, {12}), superpixel_mask(segments, HIDDEN)
    make = fills.filler(image, segments, "imputed", seed=5)
    both = ~small & ~large
    np.testing.assert_array_equal(make(small)[both], make(large)[both])


def test_imputation_with_nothing_visible_falls_back_to_the_images_mean_colour():
    image = random_image(10)
    nothing = np.zeros((SIZE, SIZE), bool)
    out = fills.impute(image, nothing, noise=0)
    expected = np.rint(image.reshape(-1, 3).astype(float).mean(axis=0))
    assert (out == expected).all()
    noisy = fills.impute(image, nothing, seed=0)
    assert noisy.dtype == np.uint8 and 1 < np.abs(noisy.astype(float) - expected).mean() < 4


def test_imputation_with_everything_visible_is_the_image():
    image = random_image(11)
    np.testing.assert_array_equal(fills.impute(image, np.ones((SIZE, SIZE), bool)), image)


def test_masks_and_segments_must_match_the_image():
    image = random_image(12)
    with pytest.raises(ValueError, match="does not match"):
        fills.impute(image, np.ones((SIZE, SIZE + 1), bool))
    with pytest.raises(ValueError, match="do not match"):
        fills.superpixel_means(image, grid_segments(SIZE + 8))
    with pytest.raises(TypeError, match="uint8"):
        fills.fill(image.astype(float), grid_segments(), np.ones((SIZE, SIZE), bool), "grey")
