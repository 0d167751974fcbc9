"""The uncertainty of every number the book compares: bootstrap and Wilson intervals, paired tests, verdicts.

Intervals are 95 % percentile intervals of a seeded bootstrap (``scipy.stats.bootstrap``)
that resamples images *within each true class*, so a resample keeps the split's class
sizes, as the stratified split itself does. A class of fewer than :data:`MIN_STRATUM`
images cannot be resampled within itself (one image can only be repeated, which would
take its verdict as certain), so such classes are pooled into one stratum whose images
are resampled together. A comparison of two models on the same images resamples the same images for both
and reads the interval of the difference: "better" or "worse" only when it excludes 0.
Metrics are computed from batches of confusion matrices, so thousands of resamples cost
milliseconds; they equal scikit-learn's definitions (tested).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 2000
#: The metrics that get intervals: the headline five (weighted precision, recall and F1) and macro F1.
METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "macro_f1")
BETTER, WORSE, UNCLEAR = "better", "worse", "no clear difference"
#: Classes with fewer images than this are resampled together, as one stratum.
MIN_STRATUM = 5


# --------------------------------------------------------------------------- metrics in batches


def confusions(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion matrices (B, K, K), rows true, of label arrays shaped (B, n)."""
    t, p = np.atleast_2d(y_true), np.atleast_2d(y_pred)
    batch = np.arange(t.shape[0])[:, None] * n_classes * n_classes
    flat = (batch + t * n_classes + p).ravel()
    return np.bincount(flat, minlength=t.shape[0] * n_classes * n_classes).reshape(-1, n_classes, n_classes)


def scores(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, balanced accuracy, weighted precision/recall/F1 and macro F1 of confusion matrices (B, K, K).

    As scikit-learn: balanced accuracy averages recall over the classes present in
    ``y_true``; precision and F1 of a class never predicted are 0; macro F1 averages over
    the classes present in ``y_true`` or ``y_pred``.
    """
    cm = np.asarray(cm, dtype=float)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support, predicted = cm.sum(axis=-1), cm.sum(axis=-2)
    n = support.sum(axis=-1)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = support > 0
    seen = present | (predicted > 0)

    def ratio(a, b):  # NaN where nothing was counted (no image at all)
        b = np.broadcast_to(b, np.shape(a)).astype(float)
        return np.divide(a, b, out=np.full(np.shape(a), np.nan), where=b > 0)

    weights = ratio(support, n[..., None])
    return {
        "accuracy": ratio(tp.sum(axis=-1), n),
        "balanced_accuracy": ratio((recall * present).sum(axis=-1), present.sum(axis=-1)),
        "precision": (precision * weights).sum(axis=-1),
        "recall": (recall * weights).sum(axis=-1),
        "f1": (f1 * weights).sum(axis=-1),
        "macro_f1": ratio((f1 * seen).sum(axis=-1), seen.sum(axis=-1)),
    }


# --------------------------------------------------------------------------- intervals


@dataclass(frozen=True)
class Interval:
    """A point estimate and its 95 % interval."""

    estimate: float
    low: float
    high: float

    def as_list(self) -> list[float]:
        return [float(self.low), float(self.high)]


def _strata(y_true: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Image indices to resample (one stratum per class of :data:`MIN_STRATUM` or more images, the
    smaller classes pooled) and those kept as they are (a pooled stratum of a single image)."""
    groups = [np.flatnonzero(y_true == c) for c in np.unique(y_true)]
    strata = [g for g in groups if len(g) >= MIN_STRATUM]
    small = [g for g in groups if len(g) < MIN_STRATUM]
    pooled = np.concatenate(small) if small else np.array([], dtype=int)
    if len(pooled) >= 2:
        return [*strata, pooled], np.array([], dtype=int)
    return strata, pooled


def stratified_bootstrap(statistic, y_true, resamples: int = RESAMPLES, seed: int = 0,
                         confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of ``statistic(indices (B, n))`` under resampling of images within each true class.

    ``statistic`` takes a batch of index arrays into the images and returns one value, or
    a vector of values, per row. Returns (low, high) with the statistic's shape.
    """
    y_true = np.asarray(y_true)
    strata, fixed = _strata(y_true)
    if not strata:  # a single image: nothing can vary
        value = np.asarray(statistic(np.arange(len(y_true))[None]))[..., 0]
        return value, value

    def on_indices(*parts, axis=-1):
        parts = [np.moveaxis(np.asarray(p), axis, -1) for p in parts]
        batch = parts[0].shape[:-1]
        keep = np.broadcast_to(fixed, (*batch, len(fixed)))
        idx = np.concatenate([*parts, keep], axis=-1).reshape(-1, len(y_true))
        out = np.asarray(statistic(idx))
        return out.reshape(*out.shape[:-1], *batch) if out.ndim > 1 else out.reshape(batch)

    return _percentile_interval(tuple(strata), on_indices, resamples, seed, confidence)


def _percentile_interval(samples: tuple, statistic, resamples: int, seed: int, confidence: float):
    """``scipy.stats.bootstrap``'s percentile interval; a resampling distribution without spread is an
    interval of one point, not a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=stats.DegenerateDataWarning)
        warnings.simplefilter("ignore", category=RuntimeWarning)  # NaN statistics (no image at some n)
        res = stats.bootstrap(samples, statistic, n_resamples=int(resamples), vectorized=True,
                              method="percentile", confidence_level=confidence, rng=np.random.default_rng(seed))
    return np.asarray(res.confidence_interval.low), np.asarray(res.confidence_interval.high)


def intervals(y_true, y_pred, n_classes: int, metrics=METRICS, resamples: int = RESAMPLES,
              seed: int = 0) -> dict[str, Interval]:
    """Each metric of one model on one split with its stratified bootstrap interval."""
    t, p = np.asarray(y_true), np.asarray(y_pred)
    names = list(metrics)

    def statistic(idx):
        s = scores(confusions(t[idx], p[idx], n_classes))
        return np.stack([s[m] for m in names])

    point = scores(confusions(t, p, n_classes))
    low, high = stratified_bootstrap(statistic, t, resamples, seed)
    return {m: Interval(float(point[m][0]), float(low[i]), float(high[i])) for i, m in enumerate(names)}


def wilson(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a proportion (NaN for no trials)."""
    if trials == 0:
        return float("nan"), float("nan")
    ci = stats.binomtest(int(successes), int(trials)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def per_class_intervals(y_true, y_pred, class_names) -> pd.DataFrame:
    """Per class: precision and recall with Wilson intervals, and the support."""
    cm = confusions(np.asarray(y_true), np.asarray(y_pred), len(class_names))[0]
    rows = []
    for i, code in enumerate(class_names):
        tp, support, predicted = int(cm[i, i]), int(cm[i].sum()), int(cm[:, i].sum())
        p_lo, p_hi = wilson(tp, predicted)
        r_lo, r_hi = wilson(tp, support)
        rows.append({"code": code, "precision": tp / predicted if predicted else 0.0, "precision_low": p_lo,
                     "precision_high": p_hi, "recall": tp / support if support else 0.0, "recall_low": r_lo,
                     "recall_high": r_hi, "support": support})
    return pd.DataFrame(rows).set_index("code")


# --------------------------------------------------------------------------- comparisons


def verdict(low: float, high: float) -> str:
    """"better" when the interval of a difference lies above 0, "worse" below, else no clear difference."""
    if low > 0:
        return BETTER
    if high < 0:
        return WORSE
    return UNCLEAR


@dataclass(frozen=True)
class Comparison:
    """Model ``a`` against model ``b`` on the same images for one metric: a - b, its interval, a test."""

    a: str
    b: str
    metric: str
    difference: float
    low: float
    high: float
    p_value: float
    test: str

    @property
    def verdict(self) -> str:
        return verdict(self.low, self.high)

    def as_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "metric": self.metric, "difference": self.difference,
                "ci95": [self.low, self.high], "p_value": self.p_value, "test": self.test,
                "verdict": self.verdict}


def mcnemar_exact(correct_a, correct_b) -> float:
    """Exact McNemar p-value: a binomial test on the images exactly one of the two models gets right."""
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    if only_a + only_b == 0:
        return 1.0
    return float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def paired_permutation(statistic, pred_a, pred_b, resamples: int = RESAMPLES, seed: int = 0) -> float:
    """Two-sided p-value of ``statistic(a, b)`` when each image's two predictions may be swapped."""
    res = stats.permutation_test((np.asarray(pred_a), np.asarray(pred_b)), statistic, vectorized=True,
                                 permutation_type="samples", n_resamples=int(resamples),
                                 rng=np.random.default_rng(seed))
    return float(res.pvalue)


def compare(y_true, pred_a, pred_b, n_classes: int, metric: str, names=("a", "b"), resamples: int = RESAMPLES,
            seed: int = 0) -> Comparison:
    """Paired comparison of two models' predictions of the same images for one metric.

    The interval resamples the same images for both models (stratified by true class);
    the p-value is McNemar's exact test for accuracy, and a paired permutation test
    (swap the two models' predictions of an image) for any other metric.
    """
    t, a, b = np.asarray(y_true), np.asarray(pred_a), np.asarray(pred_b)

    def value(ta, pa, pb):
        return scores(confusions(ta, pa, n_classes))[metric] - scores(confusions(ta, pb, n_classes))[metric]

    low, high = stratified_bootstrap(lambda idx: value(t[idx], a[idx], b[idx]), t, resamples, seed)
    if metric == "accuracy":
        p_value, test = mcnemar_exact(a == t, b == t), "exact McNemar"
    else:
        def permuted(x, y, axis=-1):
            x, y = np.moveaxis(x, axis, -1), np.moveaxis(y, axis, -1)
            tt = np.broadcast_to(t, x.shape)
            return value(tt.reshape(-1, len(t)), x.reshape(-1, len(t)), y.reshape(-1, len(t))).reshape(x.shape[:-1])
        p_value, test = paired_permutation(permuted, a, b, resamples, seed), "paired permutation"
    return Comparison(names[0], names[1], metric, float(value(t, a, b)[0]), float(low), float(high), p_value, test)


# --------------------------------------------------------------------------- means over images


def bootstrap_images(statistic, n_images: int, resamples: int = RESAMPLES, seed: int = 0,
                     confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of ``statistic(indices (B, n))`` when the images are resampled with replacement.

    For quantities of a sample of explained images (a curve point, a smallest sufficient
    n, a mean correlation): ``statistic`` returns one value, or a vector, per row of indices.
    """
    def on_indices(idx, axis=-1):
        idx = np.moveaxis(np.asarray(idx), axis, -1)
        batch = idx.shape[:-1]
        out = np.asarray(statistic(idx.reshape(-1, n_images)))
        return out.reshape(*out.shape[:-1], *batch) if out.ndim > 1 else out.reshape(batch)

    return _percentile_interval((np.arange(n_images),), on_indices, resamples, seed, confidence)


def mean_interval(values, resamples: int = RESAMPLES, seed: int = 0) -> Interval:
    """The mean of per-image values (NaN ignored) with its bootstrap 95 % interval over images."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if len(v) < 2:
        value = float(v.mean()) if len(v) else float("nan")
        return Interval(value, value, value)
    low, high = bootstrap_images(lambda idx: v[idx].mean(axis=-1), len(v), resamples, seed)
    return Interval(float(v.mean()), float(low), float(high))


def paired_mean_difference(a, b, names=("a", "b"), metric: str = "mean", resamples: int = RESAMPLES,
                           seed: int = 0) -> Comparison:
    """Mean of per-image ``a - b`` with its bootstrap interval and a Wilcoxon signed-rank p-value."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    d = d[~np.isnan(d)]
    iv = mean_interval(d, resamples, seed)
    p_value = float(stats.wilcoxon(d).pvalue) if np.any(d != 0) else 1.0
    return Comparison(names[0], names[1], metric, iv.estimate, iv.low, iv.high, p_value, "Wilcoxon signed-rank")


# --------------------------------------------------------------------------- seeds


def spread(values) -> dict:
    """Mean, standard deviation (n - 1), smallest and largest of a metric over seeds."""
    v = np.asarray(list(values), dtype=float)
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "min": float(v.min()), "max": float(v.max()), "n": int(len(v))}
