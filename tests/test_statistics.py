"""Intervals, paired tests and verdicts, checked against scikit-learn, formulas and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, f1_score, precision_score,
                             recall_score)

from cytokit.evaluation import statistics as S

K = 21


def labels(n=400, accuracy=0.6, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, K - 3, n)          # three classes never occur in y_true
    t[:2] = [19, 19]                        # one class with two images
    p = np.where(rng.random(n) < accuracy, t, rng.integers(0, K, n))
    return t, p


def test_batched_scores_equal_scikit_learns():
    t, p = labels()
    s = {k: float(v[0]) for k, v in S.scores(S.confusions(t, p, K)).items()}
    assert s["accuracy"] == pytest.approx(accuracy_score(t, p))
    assert s["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(t, p))
    assert s["precision"] == pytest.approx(precision_score(t, p, average="weighted", zero_division=0))
    assert s["recall"] == pytest.approx(recall_score(t, p, average="weighted", zero_division=0))
    assert s["f1"] == pytest.approx(f1_score(t, p, average="weighted", zero_division=0))
    assert s["macro_f1"] == pytest.approx(f1_score(t, p, average="macro", zero_division=0))


def test_confusions_of_a_batch_are_each_rows_matrix():
    t, p = labels(50)
    batch = S.confusions(np.stack([t, t]), np.stack([p, t]), K)
    assert batch.shape == (2, K, K)
    assert np.trace(batch[1]) == 50 and batch[0].sum() == 50


def test_wilson_interval_is_the_textbook_formula():
    z = 1.959963984540054
    for k, n in [(3, 10), (0, 12), (45, 50), (1, 1)]:
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        low, high = S.wilson(k, n)
        assert (low, high) == pytest.approx((centre - half, centre + half), abs=1e-9)
    assert all(math.isnan(x) for x in S.wilson(0, 0))


def test_exact_mcnemar_on_hand_counted_discordant_pairs():
    # 1 image only a gets right, 9 only b: p = 2 * P(X <= 1), X ~ Bin(10, 1/2) = 2 * 11 / 1024
    a = np.array([True] * 1 + [False] * 9 + [True] * 20)
    b = np.array([False] * 1 + [True] * 9 + [True] * 20)
    assert S.mcnemar_exact(a, b) == pytest.approx(22 / 1024)
    assert S.mcnemar_exact(a, a) == 1.0


def test_bootstrap_interval_matches_the_normal_approximation_at_large_n():
    rng = np.random.default_rng(1)
    t = rng.integers(0, 4, 4000)
    p = np.where(rng.random(4000) < 0.8, t, (t + 1) % 4)
    iv = S.intervals(t, p, 4, metrics=("accuracy",), resamples=2000)["accuracy"]
    se = math.sqrt(iv.estimate * (1 - iv.estimate) / len(t))
    assert iv.low < iv.estimate < iv.high
    assert (iv.high - iv.low) == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_intervals_are_seeded():
    t, p = labels(120)
    t[-1], p[-1] = 20, 0   # class 20 has one image, always wrong
    a = S.intervals(t, p, K, seed=3)
    assert a == S.intervals(t, p, K, seed=3)
    assert a != S.intervals(t, p, K, seed=4)
    for iv in a.values():
        assert iv.low <= iv.estimate <= iv.high


def test_a_single_image_gives_a_point_interval():
    iv = S.intervals(np.array([3]), np.array([3]), 5)["accuracy"]
    assert (iv.estimate, iv.low, iv.high) == (1.0, 1.0, 1.0)


def test_a_difference_made_by_single_images_of_rare_classes_is_not_taken_as_certain():
    """Two classes of one image each, right for a and wrong for b, move balanced accuracy by 2/21."""
    t = np.concatenate([np.zeros(200, int), np.arange(1, 21)])   # class 0 large, classes 1-20 one image each
    a = t.copy()
    b = t.copy()
    b[[200, 201]] = 0                                              # b misses two of the rare images
    c = S.compare(t, a, b, K, "balanced_accuracy")
    assert c.difference == pytest.approx(2 / 21)
    assert c.low <= 0 and c.verdict == S.UNCLEAR


@pytest.mark.parametrize("low, high, expected", [
    (0.01, 0.2, S.BETTER), (-0.2, -0.01, S.WORSE), (-0.1, 0.1, S.UNCLEAR), (0.0, 0.1, S.UNCLEAR),
    (-0.1, 0.0, S.UNCLEAR)])
def test_the_verdict_follows_the_interval(low, high, expected):
    assert S.verdict(low, high) == expected


@pytest.mark.parametrize("metric", ["accuracy", "balanced_accuracy"])
def test_comparisons_call_better_worse_or_unclear_from_their_interval(metric):
    t, good = labels(500, accuracy=0.8, seed=2)
    _, bad = labels(500, accuracy=0.4, seed=2)
    better = S.compare(t, good, bad, K, metric, ("good", "bad"))
    worse = S.compare(t, bad, good, K, metric, ("bad", "good"))
    same = S.compare(t, good, good, K, metric)
    assert better.verdict == S.BETTER and better.low > 0 and better.p_value < 0.01
    assert worse.verdict == S.WORSE and worse.high < 0
    assert worse.difference == pytest.approx(-better.difference)
    assert same.verdict == S.UNCLEAR and same.difference == 0 and same.p_value == 1.0
    for c in (better, worse, same):
        assert c.verdict == S.verdict(c.low, c.high)
        assert c.low <= c.difference <= c.high
    assert better.as_dict()["ci95"] == [better.low, better.high]


def test_a_small_difference_on_few_images_is_not_called():
    t, a = labels(60, accuracy=0.6, seed=5)
    b = a.copy()
    b[:2] = t[:2] + 1  # two fewer right answers out of 60
    c = S.compare(t, a, b, K, "accuracy")
    assert c.difference > 0 and c.verdict == S.UNCLEAR


def test_per_class_intervals_bracket_each_precision_and_recall():
    t, p = labels(300)
    table = S.per_class_intervals(t, p, [str(i) for i in range(K)])
    seen = table[table["support"] > 0]
    assert (seen["recall_low"] <= seen["recall"]).all() and (seen["recall"] <= seen["recall_high"]).all()
    assert table.loc["20", "support"] == 0 and math.isnan(table.loc["20", "recall_low"])


def test_spread_over_seeds():
    s = S.spread([0.5, 0.6, 0.7])
    assert s == {"mean": pytest.approx(0.6), "sd": pytest.approx(0.1), "min": 0.5, "max": 0.7, "n": 3}
    assert S.spread([0.4])["sd"] == 0.0


def test_mean_interval_over_images_matches_the_standard_error():
    rng = np.random.default_rng(4)
    v = rng.normal(0.3, 0.2, 2000)
    iv = S.mean_interval(v)
    assert iv.estimate == pytest.approx(v.mean())
    assert (iv.high - iv.low) == pytest.approx(2 * 1.96 * v.std() / math.sqrt(len(v)), rel=0.15)
    assert S.mean_interval([0.5]).low == 0.5


def test_paired_mean_difference_calls_a_clear_shift_and_not_noise():
    rng = np.random.default_rng(5)
    a = rng.normal(0.0, 1.0, 300)
    shifted = S.paired_mean_difference(a + 0.5, a + rng.normal(0, 0.2, 300), ("x", "y"))
    noise = S.paired_mean_difference(a + rng.normal(0, 0.2, 300), a, ("x", "y"))
    assert shifted.verdict == S.BETTER and shifted.p_value < 1e-6
    assert noise.verdict == S.UNCLEAR


def test_a_published_proportion_is_placed_against_the_interval():
    from cytokit.book import prose

    assert "inside this interval" in prose.against_published(0.88, 0.82, 0.92, 0.914, "the study")
    assert "above this interval" in prose.against_published(0.70, 0.62, 0.77, 0.914, "the study")
    assert "below this interval" in prose.against_published(0.97, 0.95, 0.99, 0.914, "the study")
    assert prose.against_published(0.88, 0.82, 0.92, 0.914, "the study").startswith("The study's 91.4 %")
