"""Scoring a model on another kind of cells: the main classes, balanced accuracy, recall, confusion, coverage."""

import pytest

from cytokit.data.taxonomy import CODES
from cytokit.evaluation import transfer


def test_main_classes_are_the_classes_with_enough_images():
    codes = ["BLA"] * 30 + ["EOS"] * 20 + ["MYB"] + ["ART"] * 19
    assert transfer.main_classes(codes) == ["BLA", "EOS"]
    assert transfer.main_classes(codes, min_images=1) == ["ART", "BLA", "EOS", "MYB"]


def test_score_counts_only_main_classes_and_any_prediction():
    names = list(CODES)
    i = names.index
    # BLA: 8 of 10 right, 2 called NGS (not a main class); EOS: 5 of 10 right; one MYB image is ignored
    y_true = [i("BLA")] * 10 + [i("EOS")] * 10 + [i("MYB")]
    y_pred = [i("BLA")] * 8 + [i("NGS")] * 2 + [i("EOS")] * 5 + [i("BLA")] * 5 + [i("MYB")]
    out = transfer.score(y_true, y_pred, names, ["BLA", "EOS"], resamples=200)
    assert out["n_images"] == 20 and out["chance"] == 0.5
    assert out["balanced_accuracy"]["estimate"] == pytest.approx((0.8 + 0.5) / 2)
    assert out["balanced_accuracy"]["low"] < 0.65 < out["balanced_accuracy"]["high"]
    assert out["recall"]["BLA"]["recall"] == pytest.approx(0.8) and out["recall"]["EOS"]["support"] == 10
    assert out["recall"]["EOS"]["recall_low"] < 0.5 < out["recall"]["EOS"]["recall_high"]
    assert out["confusion"]["predicted"] == ["BLA", "EOS", "NGS"]
    assert out["confusion"]["counts"] == [[8, 0, 2], [5, 5, 0]]


def test_coverage_is_one_without_spread_and_near_nominal_for_classes_of_fifty(monkeypatch):
    assert transfer.coverage([1.0, 1.0], [10, 10], replicates=20, resamples=100) == 1.0
    got = transfer.coverage([0.2, 0.5, 0.7, 0.4], [50, 50, 50, 34], replicates=200, resamples=500)
    assert 0.88 <= got <= 1.0
    point = transfer.statistics.Interval

    def no_spread(y_true, y_pred, n_classes, metrics, resamples, seed):  # an interval of one point
        value = transfer.statistics.scores(transfer.statistics.confusions(y_true, y_pred, n_classes))
        return {m: point(value[m][0], value[m][0], value[m][0]) for m in metrics}

    monkeypatch.setattr(transfer.statistics, "intervals", no_spread)
    assert transfer.coverage([0.2, 0.5, 0.7, 0.4], [50, 50, 50, 34], replicates=50) < 0.2
