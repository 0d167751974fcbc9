"""Classification metrics of one model on one split, defined as scikit-learn defines them.

Labels are integer arrays indexing ``class_names`` (the models' alphabetical output
order); results are fractions in [0, 1]. ``balanced_accuracy`` is the mean recall over
the classes present in ``y_true`` (= ``sklearn.metrics.balanced_accuracy_score``);
precision, recall and F1 are support-weighted with ``zero_division=0``, so a class never
predicted scores 0, as in the study's tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support


#: Keys of :func:`headline` that are fractions (the study reported the same five).
HEADLINE_KEYS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1")


# --------------------------------------------------------------------------- helpers
def _as_labels(y, name: str) -> np.ndarray:
    """A 1-D integer array; floats are accepted only if they hold whole numbers."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.size == 0:
        return arr.astype(np.int64)
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        return arr.astype(np.int64)
    raise TypeError(f"{name} must hold integer class indices, got dtype {arr.dtype}")


def check_labels(y_true, y_pred, class_names=None) -> tuple[np.ndarray, np.ndarray]:
    """Validate a pair of label arrays (same length, labels inside ``class_names``)."""
    t = _as_labels(y_true, "y_true")
    p = _as_labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.size} vs {p.size}")
    if class_names is not None:
        n = len(class_names)
        for name, arr in (("y_true", t), ("y_pred", p)):
            if arr.size and (arr.min() < 0 or arr.max() >= n):
                raise ValueError(
                    f"{name} has labels outside 0..{n - 1} (range {arr.min()}..{arr.max()}) "
                    f"for {n} class names"
                )
    return t, p


# --------------------------------------------------------------------------- metrics
def headline(y_true, y_pred, class_names=None) -> dict:
    """The study's headline numbers for one model on one split.

    Keys: ``accuracy``, ``balanced_accuracy`` (mean recall over classes present in
    ``y_true``, = ``sklearn.metrics.balanced_accuracy_score``), ``precision``, ``recall``,
    ``f1`` (support-weighted, ``zero_division=0``), ``macro_f1`` (unweighted F1 mean over
    the classes present in ``y_true``, as balanced accuracy, so every model scored on the
    same images is averaged over the same classes; a class that exists only as wrong
    predictions lowers the precision of no class in the set) and ``n`` (number of samples).
    ``class_names`` only serves to check that labels are in range.
    """
    t, p = check_labels(y_true, y_pred, class_names)
    if t.size == 0:
        raise ValueError("headline metrics need at least one sample")
    present = np.unique(t)
    recalls = [np.mean(p[t == c] == c) for c in present]
    prec, rec, f1, _ = precision_recall_fscore_support(t, p, average="weighted", zero_division=0)
    _, _, macro_f1, _ = precision_recall_fscore_support(t, p, labels=present, average="macro", zero_division=0)
    return {
        "accuracy": float(np.mean(t == p)),
        "balanced_accuracy": float(np.mean(recalls)),
        "precision": float(prec),
        "recall": float(rec),
        "f1": float(f1),
        "macro_f1": float(macro_f1),
        "n": int(t.size),
    }


def per_class(y_true, y_pred, class_names) -> pd.DataFrame:
    """Precision, recall, F1 and support for every class, one row per code.

    Classes with no samples are kept (support 0, scores 0 by ``zero_division=0``) so the
    table always lines up row for row with the study's 21-class tables.
    """
    t, p = check_labels(y_true, y_pred, class_names)
    labels = np.arange(len(class_names))
    prec, rec, f1, sup = precision_recall_fscore_support(
        t, p, labels=labels, average=None, zero_division=0
    )
    out = pd.DataFrame(
        {"precision": prec, "recall": rec, "f1": f1, "support": sup.astype(np.int64)},
        index=pd.Index(list(class_names), name="code"),
    )
    return out


def confusion(y_true, y_pred, class_names, normalize: bool = False) -> pd.DataFrame:
    """Confusion matrix with rows = true class and columns = predicted class.

    Every class gets a row and a column, even when absent. With ``normalize=True`` each row
    is divided by its total (so a row reads as "where did this class's samples go");
    rows without samples stay all 0 instead of NaN, so the matrix can be plotted as is.
    """
    t, p = check_labels(y_true, y_pred, class_names)
    names = list(class_names)
    cm = confusion_matrix(t, p, labels=np.arange(len(names)))
    if normalize:
        totals = cm.sum(axis=1, keepdims=True)
        cm = np.divide(cm, totals, out=np.zeros(cm.shape, dtype=float), where=totals > 0)
    return pd.DataFrame(
        cm,
        index=pd.Index(names, name="true"),
        columns=pd.Index(names, name="predicted"),
    )


def difference(
    a: pd.DataFrame,
    b: pd.DataFrame,
    columns: Sequence[str] | None = None,
    suffixes: tuple[str, str] = ("a", "b"),
) -> pd.DataFrame:
    """Put two tables side by side with their difference, e.g. validation vs test.

    For every column ``c`` the result has ``c_<first>``, ``c_<second>`` and ``c_diff``
    where **diff = second - first** (``b - a``), the sign the study uses for
    "Difference = test - validation"; call ``difference(val, test,
    suffixes=("validation", "test"))``. Rows are aligned on the index (``a``'s order, then
    rows only in ``b``); a row missing on one side gives NaN. ``columns`` defaults to the
    columns both tables share, in ``a``'s order.
    """
    if len(suffixes) != 2 or suffixes[0] == suffixes[1] or "diff" in suffixes:
        raise ValueError(f"suffixes must be two distinct labels other than 'diff', got {suffixes!r}")
    if columns is None:
        columns = [c for c in a.columns if c in b.columns]
    else:
        columns = list(columns)
        missing = [c for c in columns if c not in a.columns or c not in b.columns]
        if missing:
            raise KeyError(f"columns not in both tables: {missing}")
    index = a.index.append(b.index.difference(a.index, sort=False))
    aa = a.reindex(index)
    bb = b.reindex(index)
    sa, sb = suffixes
    out = {}
    for c in columns:
        out[f"{c}_{sa}"] = aa[c]
        out[f"{c}_{sb}"] = bb[c]
        out[f"{c}_diff"] = bb[c] - aa[c]
    res = pd.DataFrame(out, index=index)
    res.index.name = a.index.name
    return res


def headline_table(results: Mapping[str, Mapping]) -> pd.DataFrame:
    """One row per model from ``{"baseline": headline(...), "tuned": ...}``, in dict order."""
    if not results:
        raise ValueError("no results to tabulate")
    df = pd.DataFrame.from_dict({k: dict(v) for k, v in results.items()}, orient="index")
    df.index.name = "model"
    return df


# --------------------------------------------------------------------------- confusions
def top_confusions(y_true, y_pred, class_names, k: int | None = 10) -> pd.DataFrame:
    """The ``k`` most frequent mistakes as (true, predicted) pairs.

    Columns ``true``, ``predicted``, ``count`` and ``rate`` = count / support of the true
    class (the share of that class's samples lost to this confusion). Sorted by count,
    ties by class order; pairs that never occur are left out. ``k=None`` keeps all.
    """
    cm = confusion(y_true, y_pred, class_names).to_numpy()
    names = list(class_names)
    support = cm.sum(axis=1)
    rows = [
        (names[i], names[j], int(cm[i, j]), cm[i, j] / support[i])
        for i in range(len(names))
        for j in range(len(names))
        if i != j and cm[i, j] > 0
    ]
    df = pd.DataFrame(rows, columns=["true", "predicted", "count", "rate"])
    df = df.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)
    return df if k is None else df.head(k)


def top_pair_confusions(y_true, y_pred, class_names, k: int | None = 10) -> pd.DataFrame:
    """The ``k`` pairs of classes most often mixed up, in either direction.

    Symmetric view of :func:`top_confusions` (e.g. NGB->NGS plus NGS->NGB), to spot
    classes the model cannot tell apart. Columns ``class_a``, ``class_b`` (in class order),
    ``a_as_b``, ``b_as_a``, ``count`` (their sum) and ``rate`` = count / (support of a +
    support of b).
    """
    cm = confusion(y_true, y_pred, class_names).to_numpy()
    names = list(class_names)
    support = cm.sum(axis=1)
    rows = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            total = int(cm[i, j] + cm[j, i])
            if total > 0:
                rows.append(
                    (names[i], names[j], int(cm[i, j]), int(cm[j, i]), total,
                     total / (support[i] + support[j]))
                )
    df = pd.DataFrame(rows, columns=["class_a", "class_b", "a_as_b", "b_as_a", "count", "rate"])
    df = df.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)
    return df if k is None else df.head(k)


def improved(a: pd.DataFrame, b: pd.DataFrame, column: str = "f1", tol: float = 0.0) -> pd.Series:
    """Per class, whether ``b`` beats ``a`` on ``column`` by more than ``tol``.

    Marks the improvements of one model over another, as the study's Table 4.6.2.5 does.
    Aligned on ``a``'s index; classes missing from ``b`` (or NaN) count as not improved.
    """
    bb = b[column].reindex(a.index)
    res = (bb - a[column]) > tol
    res = res.fillna(False).astype(bool)
    res.name = f"{column}_improved"
    return res


def split_comparison(val: dict, test: dict, keys) -> pd.DataFrame:
    """One model's headline metrics on validation and test, with test - validation."""
    return pd.DataFrame({"validation": [val[k] for k in keys], "test": [test[k] for k in keys]},
                        index=list(keys)).assign(difference=lambda d: d["test"] - d["validation"])
