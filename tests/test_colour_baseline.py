import numpy as np

from cytokit.models import colour_control


def test_histograms_count_colours_and_sum_to_one():
    img = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    img[0, :2] = 255  # half white, half black
    h = colour_control.histograms(img, bins=2)
    assert h.shape == (2, 8)
    np.testing.assert_allclose(h.sum(axis=1), 1.0)
    assert h[0, 0] == 0.5 and h[0, 7] == 0.5 and h[1, 0] == 1.0
    np.testing.assert_allclose(colour_control.histograms(img / 255.0, bins=2), h)


def test_colour_separable_classes_are_learned_and_colour_blind_ones_are_not():
    rng = np.random.default_rng(0)
    n = 60
    red = np.zeros((n, 8, 8, 3)); red[..., 0] = rng.uniform(0.6, 1, (n, 1, 1))
    blue = np.zeros((n, 8, 8, 3)); blue[..., 2] = rng.uniform(0.6, 1, (n, 1, 1))
    x = colour_control.histograms(np.concatenate([red, blue]))
    y = np.repeat([0, 1], n)
    pred = colour_control.fit_predict(x[::2], y[::2], x[1::2])
    assert (pred == y[1::2]).mean() == 1.0
    # same colours, different arrangement: colour alone cannot tell them apart
    a = np.zeros((n, 8, 8, 3)); a[:, :4] = 1.0
    b = np.zeros((n, 8, 8, 3)); b[:, :, :4] = 1.0
    x2 = colour_control.histograms(np.concatenate([a, b]))
    pred2 = colour_control.fit_predict(x2[::2], y[::2], x2[1::2])
    assert (pred2 == y[1::2]).mean() <= 0.6
