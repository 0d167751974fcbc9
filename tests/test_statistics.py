"""Intervals, paired tests and verdicts, checked against scikit-learn, formulas and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, f1_score, precision_score,
                             recall_score)

from cytokit.evaluation import simulation
from cytokit.evaluation import statistics as S

K = 21


def labels(n=400, accuracy=0.6, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, K - 3, n)          # three classes never occur in y_true
    t[:2] = [19, 19]                        # one class with two images
    p = np.where(rng.random(n) < accuracy, t, rng.integers(0, K, n))
    return t, p


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_batched_scores_equal_scikit_learns_over_the_classes_in_the_truth():
    t, p = labels()
    present = np.unique(t)
    assert set(p) - set(present), "some predicted classes are absent from the truth"
    s = {k: float(v[0]) for k, v in S.scores(S.confusions(t, p, K)).items()}
    assert s["accuracy"] == pytest.approx(accuracy_score(t, p))
    assert s["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(t, p))
    assert s["precision"] == pytest.approx(precision_score(t, p, average="weighted", zero_division=0))
    assert s["recall"] == pytest.approx(recall_score(t, p, average="weighted", zero_division=0))
    assert s["f1"] == pytest.approx(f1_score(t, p, average="weighted", zero_division=0))
    assert s["macro_f1"] == pytest.approx(f1_score(t, p, labels=present, average="macro", zero_division=0))


def test_macro_f1_is_not_dragged_down_by_classes_that_exist_only_as_wrong_predictions():
    """Eight classes in the folder: macro F1 averages over those eight, whatever else a model predicts."""
    t = np.repeat(np.arange(8), 20)
    p = t.copy()
    p[::10] = 20                                                 # a tenth called a class not in the folder
    assert float(S.scores(S.confusions(t, p, K))["macro_f1"][0]) == pytest.approx(f1_score(t, p, labels=range(8),
                                                                                           average="macro"))
    assert S.intervals(t, p, K, ("macro_f1",))["macro_f1"].estimate > 0.9


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


def test_interval_of_accuracy_matches_the_binomial_standard_error_at_large_n():
    rng = np.random.default_rng(1)
    t = rng.integers(0, 4, 4000)
    p = np.where(rng.random(4000) < 0.8, t, (t + 1) % 4)
    iv = S.intervals(t, p, 4, metrics=("accuracy",), resamples=2000)["accuracy"]
    se = math.sqrt(iv.estimate * (1 - iv.estimate) / len(t))
    assert iv.low < iv.estimate < iv.high and iv.n == 4000
    assert (iv.high - iv.low) == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_intervals_are_seeded_and_contain_their_estimate():
    t, p = labels(120)
    t[-1], p[-1] = 20, 0   # class 20 has one image, always wrong
    a = S.intervals(t, p, K, seed=3)
    assert a == S.intervals(t, p, K, seed=3)
    assert a != S.intervals(t, p, K, seed=4)
    for iv in a.values():
        assert iv.low <= iv.estimate <= iv.high


def test_a_single_image_has_the_uncertainty_of_one_image():
    iv = S.intervals(np.array([3]), np.array([3]), 5)["accuracy"]
    assert iv.estimate == 1.0 and iv.high == 1.0 and iv.low < 0.5


def test_all_images_of_one_class_right_gives_an_interval_like_wilsons():
    """65 of 65 right: not [1, 1] but about Wilson's [0.944, 1]."""
    iv = S.intervals(np.zeros(65, int), np.zeros(65, int), K, ("accuracy", "balanced_accuracy"))
    wilson_low = S.wilson(65, 65)[0]
    for m in ("accuracy", "balanced_accuracy"):
        assert iv[m].high == 1.0 and wilson_low - 0.02 < iv[m].low < 0.99


def test_every_image_called_one_class_still_has_an_interval_of_honest_width():
    """900 validation images of 8 classes, all called class 0: 14.0 % and 12.5 %, each with a spread."""
    t = np.repeat(np.arange(8), [126, 110, 110, 110, 110, 110, 112, 112])
    iv = S.intervals(t, np.zeros(900, int), K, ("accuracy", "balanced_accuracy"))
    assert iv["accuracy"].estimate == pytest.approx(0.14) and iv["balanced_accuracy"].estimate == pytest.approx(0.125)
    for m, value in (("accuracy", 0.14), ("balanced_accuracy", 0.125)):
        assert iv[m].low < value < iv[m].high
        assert iv[m].high - iv[m].low > 0.01


def test_an_interval_never_excludes_its_own_estimate_with_one_image_classes():
    """8 classes of 100 at recall 0.9 and six 1-image classes all wrong: the estimate 0.514 lies inside."""
    rng = np.random.default_rng(0)
    t = np.concatenate([np.repeat(np.arange(8), 100), np.arange(8, 14)])
    p = np.where(rng.random(len(t)) < 0.9, t, (t + 1) % 8)
    p[800:] = 0
    iv = S.intervals(t, p, 14, ("balanced_accuracy", "macro_f1"))
    for value in iv.values():
        assert value.low <= value.estimate <= value.high
    assert iv["balanced_accuracy"].high - iv["balanced_accuracy"].low > 0.15  # six classes of one image each


def test_one_image_of_a_tiny_class_decides_nothing():
    """B differs from A only in the single image of class 3: no clear difference, not "better"."""
    t = np.array([0] * 100 + [1] * 50 + [2] * 20 + [3])
    b = t.copy()
    b[-1] = 0
    c = S.compare(t, t, b, 4, "balanced_accuracy")
    assert c.difference == pytest.approx(0.25)
    assert c.low < 0 < c.high and c.verdict == S.UNCLEAR


def test_a_difference_made_by_single_images_of_rare_classes_is_not_taken_as_certain():
    """Two classes of one image each, right for a and wrong for b, move balanced accuracy by 2/21."""
    t = np.concatenate([np.zeros(200, int), np.arange(1, 21)])   # class 0 large, classes 1-20 one image each
    a = t.copy()
    b = t.copy()
    b[[200, 201]] = 0                                              # b misses two of the rare images
    c = S.compare(t, a, b, K, "balanced_accuracy")
    assert c.difference == pytest.approx(2 / 21) and c.classes == 21
    assert c.low <= 0 and c.verdict == S.UNCLEAR


@pytest.mark.parametrize("low, high, p, expected", [
    (0.01, 0.2, 0.01, S.BETTER), (-0.2, -0.01, 0.01, S.WORSE), (-0.1, 0.1, 0.01, S.UNCLEAR),
    (0.0, 0.1, 0.01, S.UNCLEAR), (-0.1, 0.0, 0.01, S.UNCLEAR),
    (0.01, 0.2, 0.05, S.UNCLEAR), (-0.2, -0.01, 0.055, S.UNCLEAR)])
def test_the_verdict_needs_the_interval_and_the_test(low, high, p, expected):
    assert S.verdict(low, high, p) == expected


def test_a_comparison_whose_test_disagrees_with_its_interval_is_no_verdict():
    """The demo's "−2.8 (−5.4 to −0.1), p = 0.055 (exact McNemar): worse" becomes no clear difference, and the
    sentence says why; so does a significant test beside an interval that includes zero."""
    from cytokit.book import prose

    c = S.Comparison("tuned", "baseline", "accuracy", -0.028, -0.054, -0.001, 0.055, "exact McNemar")
    assert c.verdict == S.UNCLEAR and c.as_dict()["verdict"] == S.UNCLEAR
    assert S.Comparison.from_dict(c.as_dict()) == c
    assert "cannot tell" in prose.comparison(c, 0.5, 0.528) and "excludes zero but the test" in prose.comparison(
        c, 0.5, 0.528)
    wide = S.Comparison("a", "b", "balanced_accuracy", 0.108, -0.074, 0.289, 0.0005, "paired permutation", 0.0005,
                        775, 14)
    assert wide.verdict == S.UNCLEAR and "interval" in prose.why_unclear(wide) and "14 classes" in prose.comparison(
        wide, 0.55, 0.44)


@pytest.mark.parametrize("metric", ["accuracy", "balanced_accuracy", "macro_f1"])
def test_comparisons_call_better_worse_or_unclear(metric):
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
        assert c.verdict == S.verdict(c.low, c.high, c.p_value)
        assert c.low <= c.difference <= c.high
    assert better.as_dict()["ci95"] == [better.low, better.high]


def test_a_small_difference_on_few_images_is_not_called():
    t, a = labels(60, accuracy=0.6, seed=5)
    b = a.copy()
    b[:2] = t[:2] + 1  # two fewer right answers out of 60
    c = S.compare(t, a, b, K, "accuracy")
    assert c.difference > 0 and c.verdict == S.UNCLEAR


def test_the_permutation_test_on_counts_matches_swapping_image_by_image():
    """The same null distribution as scipy's paired permutation test (each image's two calls swapped)."""
    t, a = labels(150, accuracy=0.7, seed=6)
    rng = np.random.default_rng(7)
    b = np.where(rng.random(150) < 0.66, t, rng.integers(0, K, 150))

    def statistic(x, y, axis=-1):
        x, y = np.moveaxis(x, axis, -1), np.moveaxis(y, axis, -1)
        tt = np.broadcast_to(t, x.shape).reshape(-1, len(t))
        ba = S.scores(S.confusions(tt, x.reshape(-1, len(t)), K))["balanced_accuracy"]
        bb = S.scores(S.confusions(tt, y.reshape(-1, len(t)), K))["balanced_accuracy"]
        return (ba - bb).reshape(x.shape[:-1])

    scipy_p = stats.permutation_test((a, b), statistic, vectorized=True, permutation_type="samples",
                                     n_resamples=4000, rng=np.random.default_rng(0)).pvalue
    ours = simulation.permutation_p(simulation.outcomes(t, [a, b], K), "balanced_accuracy", 4000, seed=1)
    assert ours == pytest.approx(scipy_p, abs=0.03)
    assert 0.02 < ours < 0.98


def test_a_p_value_at_the_permutation_floor_says_so():
    t, good = labels(500, accuracy=0.9, seed=2)
    _, bad = labels(500, accuracy=0.3, seed=2)
    c = S.compare(t, good, bad, K, "balanced_accuracy", resamples=999)
    assert c.p_floor == pytest.approx(1 / 1000) and c.p_value == pytest.approx(c.p_floor)
    from cytokit.book import prose

    assert prose.p_value(c.p_value, c.p_floor).startswith("p ≤ 0.001")
    assert prose.p_value(0.0312) == "p = 0.031" and prose.p_value(1e-7) == "p < 0.001"


def test_a_family_of_comparisons_is_named_with_its_chance_of_a_false_verdict_and_holm():
    from cytokit.book import prose

    family = [{"verdict": S.BETTER, "p_value": 0.001}, {"verdict": S.UNCLEAR, "p_value": 0.3},
              {"verdict": S.WORSE, "p_value": 0.03}]
    text = prose.family(family, "comparisons of this section")
    assert "Each of the 3 comparisons of this section" in text and "up to 14 %" in text
    assert "Here 2 are called better or worse" in text and "1 of them still is" in text
    assert prose.family(family[:1]) == ""


def test_holm_adjusts_a_family_by_hand():
    assert S.holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])


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


def test_mean_interval_over_images_is_students_t():
    rng = np.random.default_rng(4)
    v = rng.normal(0.3, 0.2, 12)
    iv = S.mean_interval(v)
    half = stats.t.ppf(0.975, 11) * v.std(ddof=1) / math.sqrt(12)
    assert (iv.estimate, iv.low, iv.high, iv.n) == pytest.approx((v.mean(), v.mean() - half, v.mean() + half, 12))
    assert iv.few_images
    one = S.mean_interval([0.5])
    assert one.estimate == 0.5 and math.isnan(one.low) and math.isnan(one.high)


def test_an_interval_of_a_bounded_quantity_stays_inside_its_range():
    iv = S.mean_interval([1.0, 0.9, 1.0, 0.4], bounds=(0, 1))
    assert iv.estimate == pytest.approx(0.825) and iv.high == 1.0 and 0 <= iv.low < 0.825


def test_paired_mean_difference_calls_a_clear_shift_and_not_noise():
    rng = np.random.default_rng(5)
    a = rng.normal(0.0, 1.0, 300)
    shifted = S.paired_mean_difference(a + 0.5, a + rng.normal(0, 0.2, 300), ("x", "y"))
    noise = S.paired_mean_difference(a + rng.normal(0, 0.2, 300), a, ("x", "y"))
    assert shifted.verdict == S.BETTER and shifted.p_value < 1e-6 and shifted.n == 300
    assert noise.verdict == S.UNCLEAR


def test_three_images_never_decide():
    """Wilcoxon's smallest two-sided p with three images is 0.25: no verdict, however large the difference."""
    c = S.paired_mean_difference([0.9, 0.8, 1.0], [0.1, 0.2, 0.0])
    assert c.low > 0 and c.p_value >= 0.25 and c.verdict == S.UNCLEAR


# --------------------------------------------------------------------------- bad input: a clear error each

T = np.array([0, 1, 2, 1, 0])
P = np.array([0, 1, 1, 1, 2])


@pytest.mark.parametrize("call, named", [
    (lambda: S.confusions(T, P[:4], 3), "y_pred"),
    (lambda: S.intervals(T, P[:4], 3), "y_pred"),
    (lambda: S.compare(T, P, P[:4], 3, "accuracy"), "pred_b"),
    (lambda: S.per_class_intervals(T, P[:4], ["a", "b", "c"]), "y_pred"),
    (lambda: S.mcnemar_exact([True] * 5, [True]), "correct_b"),
    (lambda: S.paired_mean_difference([1, 2, 3], [1]), "b"),
])
def test_lengths_that_differ_are_a_clear_error(call, named):
    with pytest.raises(ValueError, match=f"lengths differ.*{named}"):
        call()


@pytest.mark.parametrize("call, named", [
    (lambda: S.confusions(T, np.array([0, 1, 1, 1, -1]), 3), "y_pred"),
    (lambda: S.intervals(np.array([0, 1, 3, 1, 0]), P, 3), "y_true"),
    (lambda: S.compare(T, P, np.array([0, 1, 1, 1, 5]), 3, "balanced_accuracy"), "pred_b"),
    (lambda: S.per_class_intervals(T, np.array([0, 1, 1, 1, 3]), ["a", "b", "c"]), "y_pred"),
])
def test_labels_outside_the_classes_are_a_clear_error(call, named):
    with pytest.raises(ValueError, match=f"{named} has labels outside 0 … 2"):
        call()


@pytest.mark.parametrize("call, named", [
    (lambda: S.confusions(T, np.array([0, 1, 1.5, 1, 2]), 3), "y_pred"),
    (lambda: S.intervals(np.array([0, 1, 2, 1, 0.5]), P, 3), "y_true"),
    (lambda: S.compare(T, np.array(["0", "1", "1", "1", "2"]), P, 3, "accuracy"), "pred_a"),
    (lambda: S.per_class_intervals(T, np.array([0.2, 1, 1, 1, 2]), ["a", "b", "c"]), "y_pred"),
    (lambda: S.wilson(2.7, 5), "successes"),
    (lambda: S.mcnemar_exact([1, 0, 2], [1, 1, 1]), "correct_a"),
])
def test_labels_and_counts_that_are_not_whole_numbers_are_a_clear_error(call, named):
    with pytest.raises(ValueError, match=named):
        call()


@pytest.mark.parametrize("call, named", [
    (lambda: S.confusions(T, np.array([0, 1, np.nan, 1, 2]), 3), "y_pred contains NaN"),
    (lambda: S.intervals(np.array([0, 1, 2, 1, np.nan]), P, 3), "y_true contains NaN"),
    (lambda: S.compare(T, P, np.array([0, 1, np.nan, 1, 2]), 3, "accuracy"), "pred_b contains NaN"),
    (lambda: S.mcnemar_exact([True, np.nan], [True, False]), "correct_a contains NaN"),
    (lambda: S.mean_interval([0.2, np.nan, 0.4]), "values contains NaN"),
    (lambda: S.paired_mean_difference([0.2, 0.3, 0.4], [0.1, np.nan, 0.2]), "b contains NaN"),
    (lambda: S.holm([0.01, np.nan]), "p_values contains NaN"),
    (lambda: S.spread([0.5, np.nan]), "values contains NaN"),
    (lambda: S.verdict(0.1, 0.2, np.nan), "verdict needs numbers"),
    (lambda: S.wilson(np.nan, 5), "successes"),
    (lambda: S.scores(np.full((2, 2), np.nan)), "cm must hold counts"),
])
def test_nan_is_a_clear_error(call, named):
    with pytest.raises(ValueError, match=named):
        call()


def test_other_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="n_classes"):
        S.intervals(T, P, 0)
    with pytest.raises(ValueError, match="metrics must be among"):
        S.compare(T, P, P, 3, "auc")
    with pytest.raises(ValueError, match="n_images"):
        S.bootstrap_images(lambda idx: idx.mean(axis=-1), 0)
    with pytest.raises(ValueError, match="exceed trials"):
        S.wilson(6, 5)


def test_a_published_proportion_is_placed_against_the_interval():
    from cytokit.book import prose

    assert "inside this interval" in prose.against_published(0.88, 0.82, 0.92, 0.914, "the study")
    assert "above this interval" in prose.against_published(0.70, 0.62, 0.77, 0.914, "the study")
    assert "below this interval" in prose.against_published(0.97, 0.95, 0.99, 0.914, "the study")
    assert prose.against_published(0.88, 0.82, 0.92, 0.914, "the study").startswith("The study's 91.4 %")
