"""Tests of cytokit.evaluation.metrics (with grouping, study and io.to_jsonable) against scikit-learn
and hand-computed values."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    precision_recall_fscore_support,
)

from cytokit.data.taxonomy import CODES
from cytokit.evaluation import grouping, metrics, study
from cytokit.io import to_jsonable

# Four classes; "D" never occurs in y_true and is never predicted, "C" is never predicted.
NAMES = ["A", "B", "C", "D"]
Y_TRUE = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 0])
Y_PRED = np.array([0, 0, 1, 1, 1, 1, 0, 1, 0, 0])
# Hand counts (rows true, cols predicted):
#   A: 3 A, 2 B        B: 1 A, 2 B        C: 1 A, 1 B        D: -
CM = np.array([[3, 2, 0, 0], [1, 2, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]])


# --------------------------------------------------------------------------- headline
def test_headline_matches_sklearn_and_hand_values():
    h = metrics.headline(Y_TRUE, Y_PRED, NAMES)
    assert h["n"] == 10
    assert h["accuracy"] == pytest.approx(0.5)
    assert h["accuracy"] == pytest.approx(accuracy_score(Y_TRUE, Y_PRED))
    # mean recall over present classes A, B, C: (3/5 + 2/3 + 0/2) / 3
    assert h["balanced_accuracy"] == pytest.approx((0.6 + 2 / 3 + 0) / 3)
    assert h["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(Y_TRUE, Y_PRED))
    p, r, f, _ = precision_recall_fscore_support(Y_TRUE, Y_PRED, average="weighted", zero_division=0)
    assert (h["precision"], h["recall"], h["f1"]) == pytest.approx((p, r, f))
    # weighted precision by hand: A 3/5, B 2/5, C 0 weighted by support 5, 3, 2
    assert h["precision"] == pytest.approx((5 * 0.6 + 3 * 0.4 + 2 * 0) / 10)
    assert all(isinstance(h[k], float) for k in metrics.HEADLINE_KEYS)


def test_headline_balanced_accuracy_ignores_absent_predicted_class():
    # class 2 is predicted but never true: sklearn averages over true classes only.
    yt = np.array([0, 0, 1, 1])
    yp = np.array([0, 2, 1, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns that class 2 is not in y_true
        expected = balanced_accuracy_score(yt, yp)
    h = metrics.headline(yt, yp, ["A", "B", "C"])
    assert h["balanced_accuracy"] == pytest.approx(0.75)
    assert h["balanced_accuracy"] == pytest.approx(expected)


def test_headline_perfect_and_errors():
    h = metrics.headline([1, 0, 2], [1, 0, 2], NAMES)
    assert h["accuracy"] == 1.0 and h["balanced_accuracy"] == 1.0 and h["f1"] == 1.0
    with pytest.raises(ValueError, match="length"):
        metrics.headline([0, 1], [0], NAMES)
    with pytest.raises(ValueError, match="outside"):
        metrics.headline([0, 4], [0, 1], NAMES)
    with pytest.raises(ValueError, match="at least one"):
        metrics.headline([], [], NAMES)
    with pytest.raises(TypeError):
        metrics.headline([0.5, 1.0], [0, 1], NAMES)


# --------------------------------------------------------------------------- per class
def test_per_class_keeps_all_classes_with_zero_division_zero():
    t = metrics.per_class(Y_TRUE, Y_PRED, NAMES)
    assert list(t.index) == NAMES
    assert list(t.columns) == ["precision", "recall", "f1", "support"]
    assert t["support"].tolist() == [5, 3, 2, 0]
    assert t.loc["A", "precision"] == pytest.approx(3 / 5)
    assert t.loc["A", "recall"] == pytest.approx(3 / 5)
    assert t.loc["B", "precision"] == pytest.approx(2 / 5)
    assert t.loc["B", "recall"] == pytest.approx(2 / 3)
    assert t.loc["B", "f1"] == pytest.approx(2 * 0.4 * (2 / 3) / (0.4 + 2 / 3))
    assert t.loc["C"].tolist()[:3] == [0.0, 0.0, 0.0]
    assert t.loc["D"].tolist() == [0.0, 0.0, 0.0, 0]
    p, r, f, s = precision_recall_fscore_support(
        Y_TRUE, Y_PRED, labels=[0, 1, 2, 3], zero_division=0
    )
    np.testing.assert_allclose(t["precision"], p)
    np.testing.assert_allclose(t["recall"], r)
    np.testing.assert_allclose(t["f1"], f)


# --------------------------------------------------------------------------- confusion
def test_confusion_counts_and_row_normalisation():
    cm = metrics.confusion(Y_TRUE, Y_PRED, NAMES)
    np.testing.assert_array_equal(cm.to_numpy(), CM)
    assert list(cm.index) == NAMES and list(cm.columns) == NAMES
    assert cm.index.name == "true" and cm.columns.name == "predicted"
    assert cm.loc["A", "B"] == 2  # A mistaken for B twice

    cmn = metrics.confusion(Y_TRUE, Y_PRED, NAMES, normalize=True)
    assert not cmn.isna().any().any()
    np.testing.assert_allclose(cmn.loc["A"], [0.6, 0.4, 0, 0])
    np.testing.assert_allclose(cmn.loc["C"], [0.5, 0.5, 0, 0])
    np.testing.assert_allclose(cmn.loc["D"], [0, 0, 0, 0])  # empty row stays 0
    np.testing.assert_allclose(cmn.sum(axis=1), [1, 1, 1, 0])


# --------------------------------------------------------------------------- grouping
def test_group_classes_merges_consistently_and_keeps_totals():
    names = ["X", "P", "Q", "Y", "R"]
    yt = np.array([0, 1, 2, 4, 3, 1, 2])
    yp = np.array([0, 2, 1, 4, 4, 1, 0])
    gt, gp, gnames = grouping.group_classes(yt, yp, names, {"G": ["P", "R", "Q"]})
    # G takes the place of its earliest member (P, position 1); others keep their order
    assert gnames == ["X", "G", "Y"]
    assert gt.tolist() == [0, 1, 1, 1, 2, 1, 1]
    assert gp.tolist() == [0, 1, 1, 1, 1, 1, 0]
    # totals kept
    assert len(gt) == len(yt)
    assert metrics.confusion(gt, gp, gnames).to_numpy().sum() == 7
    # P->Q and Q->P (inside the group) become correct; Y->R and Q->X stay wrong
    before = metrics.headline(yt, yp, names)["accuracy"]
    after = metrics.headline(gt, gp, gnames)["accuracy"]
    assert before == pytest.approx(3 / 7)
    assert after == pytest.approx(5 / 7)
    assert after >= before
    # per-class supports add up inside the group
    assert metrics.per_class(gt, gp, gnames).loc["G", "support"] == 5


def test_group_classes_neutrophil_series():
    codes = list(CODES)
    i = {c: k for k, c in enumerate(codes)}
    yt = np.array([i["PMO"], i["NGB"], i["NGS"], i["BLA"], i["MMZ"]])
    yp = np.array([i["MYB"], i["NGS"], i["NGS"], i["PMO"], i["BLA"]])
    gt, gp, gnames = grouping.group_classes(yt, yp, codes, grouping.NEU_GROUP)
    assert len(gnames) == 17
    assert "NEU" in gnames and not set(grouping.NEU_GROUP["NEU"]) & set(gnames)
    # NEU sits where MMZ (first series member in alphabetical order) was
    assert gnames.index("NEU") == codes.index("MMZ")
    assert metrics.headline(yt, yp, codes)["accuracy"] == pytest.approx(1 / 5)
    assert metrics.headline(gt, gp, gnames)["accuracy"] == pytest.approx(3 / 5)
    cm = metrics.confusion(gt, gp, gnames)
    assert cm.to_numpy().sum() == 5
    assert cm.loc["NEU", "NEU"] == 3
    assert cm.loc["BLA", "NEU"] == 1 and cm.loc["NEU", "BLA"] == 1


def test_group_classes_errors():
    y = np.array([0, 1, 2])
    with pytest.raises(ValueError, match="unknown"):
        grouping.group_classes(y, y, ["A", "B", "C"], {"G": ["A", "Z"]})
    with pytest.raises(ValueError, match="two groups"):
        grouping.group_classes(y, y, ["A", "B", "C"], {"G": ["A", "B"], "H": ["B", "C"]})
    with pytest.raises(ValueError, match="no members"):
        grouping.group_classes(y, y, ["A", "B", "C"], {"G": []})
    with pytest.raises(ValueError, match="clashes"):
        grouping.group_classes(y, y, ["A", "B", "C"], {"C": ["A", "B"]})
    # naming a group after one of its own members is fine
    _, _, names = grouping.group_classes(y, y, ["A", "B", "C"], {"B": ["A", "B"]})
    assert names == ["B", "C"]


# --------------------------------------------------------------------------- difference
def test_difference_sign_is_second_minus_first():
    val = pd.DataFrame({"f1": [0.5, 0.8], "support": [10, 20]}, index=["A", "B"])
    test = pd.DataFrame({"f1": [0.7, 0.6], "support": [12, 20]}, index=["A", "B"])
    d = metrics.difference(val, test, suffixes=("validation", "test"))
    assert list(d.columns) == [
        "f1_validation", "f1_test", "f1_diff",
        "support_validation", "support_test", "support_diff",
    ]
    assert d.loc["A", "f1_diff"] == pytest.approx(0.2)
    assert d.loc["B", "f1_diff"] == pytest.approx(-0.2)
    assert d["support_diff"].tolist() == [2, 0]
    d2 = metrics.difference(val, test, columns=["f1"])
    assert list(d2.columns) == ["f1_a", "f1_b", "f1_diff"]


def test_difference_aligns_rows_and_rejects_bad_input():
    a = pd.DataFrame({"f1": [0.5, 0.8]}, index=["A", "B"])
    b = pd.DataFrame({"f1": [0.9, 0.6]}, index=["B", "C"])
    d = metrics.difference(a, b)
    assert list(d.index) == ["A", "B", "C"]
    assert d.loc["B", "f1_diff"] == pytest.approx(0.1)
    assert math.isnan(d.loc["A", "f1_diff"]) and math.isnan(d.loc["C", "f1_diff"])
    with pytest.raises(KeyError):
        metrics.difference(a, b, columns=["recall"])
    with pytest.raises(ValueError):
        metrics.difference(a, b, suffixes=("x", "x"))


def test_headline_table_rows_are_models():
    res = {
        "baseline": metrics.headline(Y_TRUE, Y_PRED, NAMES),
        "perfect": metrics.headline(Y_TRUE, Y_TRUE, NAMES),
    }
    t = metrics.headline_table(res)
    assert list(t.index) == ["baseline", "perfect"]
    assert t.index.name == "model"
    assert t.loc["baseline", "accuracy"] == pytest.approx(0.5)
    assert t.loc["perfect", "accuracy"] == 1.0
    assert t.loc["perfect", "n"] == 10


# --------------------------------------------------------------------------- confusions
def test_top_confusions_order_and_rates():
    tc = metrics.top_confusions(Y_TRUE, Y_PRED, NAMES, k=10)
    assert list(tc.columns) == ["true", "predicted", "count", "rate"]
    # A->B (2) first; then the count-1 ties in class order B->A, C->A, C->B
    assert list(zip(tc["true"], tc["predicted"])) == [("A", "B"), ("B", "A"), ("C", "A"), ("C", "B")]
    assert tc["count"].tolist() == [2, 1, 1, 1]
    np.testing.assert_allclose(tc["rate"], [2 / 5, 1 / 3, 1 / 2, 1 / 2])
    assert len(metrics.top_confusions(Y_TRUE, Y_PRED, NAMES, k=2)) == 2
    assert metrics.top_confusions(Y_TRUE, Y_TRUE, NAMES).empty


def test_top_pair_confusions_sums_both_directions():
    pc = metrics.top_pair_confusions(Y_TRUE, Y_PRED, NAMES, k=None)
    first = pc.iloc[0]
    assert (first["class_a"], first["class_b"]) == ("A", "B")
    assert (first["a_as_b"], first["b_as_a"], first["count"]) == (2, 1, 3)
    assert first["rate"] == pytest.approx(3 / 8)
    assert pc["count"].tolist() == [3, 1, 1]
    assert pc["count"].sum() == CM.sum() - np.trace(CM)


def test_improved_marks_only_strict_gains():
    a = pd.DataFrame({"f1": [0.5, 0.8, 0.3]}, index=["A", "B", "C"])
    b = pd.DataFrame({"f1": [0.6, 0.8, 0.2]}, index=["A", "B", "C"])
    assert metrics.improved(a, b).tolist() == [True, False, False]
    assert metrics.improved(b, a).tolist() == [False, False, True]
    assert metrics.improved(a, b, tol=0.2).tolist() == [False, False, False]


# --------------------------------------------------------------------------- study tables
def test_study_tables_load_as_fractions():
    h = study.study_headline("baseline", "validation")
    assert h["accuracy"] == pytest.approx(0.74)
    assert h["balanced_accuracy"] == pytest.approx(0.44)
    assert study.study_headline("augmented", "test")["accuracy"] == pytest.approx(0.783)

    t = study.study_per_class("baseline", "validation")
    assert len(t) == 21 and list(t.index) == list(CODES)
    assert list(t.columns) == ["precision", "recall", "f1", "support"]
    assert t.loc["ART", "precision"] == pytest.approx(0.72)
    assert t.loc["ART", "support"] == 2747
    assert t["support"].sum() == 23973  # validation images in the study
    assert ((t[["precision", "recall", "f1"]] >= 0) & (t[["precision", "recall", "f1"]] <= 1)).all().all()
    # test split has no supports in the study
    assert study.study_per_class("augmented", "test")["support"].isna().all()
    with pytest.raises(KeyError, match="available"):
        study.study_per_class("nope", "validation")


def test_study_improvements_augmented_over_baseline():
    base = study.study_per_class("baseline", "validation")
    aug = study.study_per_class("augmented", "validation")
    imp = metrics.improved(base, aug)
    assert bool(imp["ART"]) is True  # 0.77 -> 0.82
    assert bool(imp["ABE"]) is False  # 0 -> 0


# --------------------------------------------------------------------------- json
def test_to_jsonable_round_trips_through_json():
    obj = {
        "h": metrics.headline(Y_TRUE, Y_PRED, NAMES),
        "per_class": metrics.per_class(Y_TRUE, Y_PRED, NAMES),
        "cm": metrics.confusion(Y_TRUE, Y_PRED, NAMES),
        "arr": np.array([1, 2]),
        "scalars": (np.int64(3), np.float32(0.5), np.bool_(True), float("nan"), pd.NA),
        "series": pd.Series([1.5, 2.5], index=["x", "y"]),
        np.int64(7): "key",
    }
    out = to_jsonable(obj)
    text = json.dumps(out, allow_nan=False)
    back = json.loads(text)
    assert back["per_class"]["B"]["support"] == 3
    assert isinstance(back["per_class"]["B"]["support"], int)
    assert back["cm"]["A"]["B"] == 2
    assert back["arr"] == [1, 2]
    assert back["scalars"] == [3, 0.5, True, None, None]
    assert back["series"] == {"x": 1.5, "y": 2.5}
    assert back["7"] == "key"
    assert back["h"]["n"] == 10
    printed = to_jsonable(study.study_per_class("augmented", "test"))
    assert printed["ABE"]["support"] is None
    with pytest.raises(TypeError):
        to_jsonable(object())
