"""The uncertainty of every number the book compares: intervals, paired tests, verdicts.

**Metrics of a model on a set of images** (accuracy, balanced accuracy, weighted precision,
recall and F1, macro F1) are averaged over the classes present in the true labels, so every
model scored on the same images is scored over the same class set. Their 95 % interval is
the estimate plus or minus 1.96 standard errors. The standard error is the spread of the
estimate over test sets simulated with the split's class sizes: each draws every class's
outcome probabilities from their posterior given its counts and then the class's images from
them (a parametric bootstrap of the error estimate − truth, averaged over the posterior).
The prior adds two right and two wrong pseudo-images to each class, as Agresti and Coull add
z²/2 ≈ 2 successes and failures to a proportion (Price and Bonett: the same for a sum of
proportions), and spreads one more wrong call over the classes an error can go to (Perks'
rule). F1 is biased low on small classes, so its interval is also moved by the simulated
bias, never past the estimate. Two models on the same images are drawn jointly
(right by both, by one, by neither, per class, with Agresti and Min's ½ per outcome), so the
interval of their difference keeps the pairing.

Why not simpler: resampling a class's own images gives no spread where the class is tiny or
its images are all right or all wrong, and pooling small classes drops them from some
resamples (balanced accuracy covered 0.56-0.72 on the book's splits); percentiles of the
posterior draws themselves pull a one-image class towards one half and miss a class whose
recall is really 0 or 1; per-class bounds combined in quadrature, and quantiles of the
simulated error, are too narrow when several tiny classes err the same way. The interval
here covers on every population of ``bench/coverage.py`` (``bench/RESULTS.md``), always
contains its estimate, and is wide wherever a class has few images, as it must be. The
images are taken as independent: images of one patient are not, and the public release has
no patient identifiers, so the intervals can be too narrow where one patient gave many.

**Verdicts**: a model is "better" or "worse" only when the interval of the difference
excludes 0 *and* the paired test agrees (p < 0.05): McNemar's exact test for accuracy, a
paired permutation test (each image's two predictions swapped at random) for the others.

**Means over images** (chapter 6's per-image quantities): Student's t interval, which the
simulation showed to cover at 6 to 20 images where the percentile and BCa bootstraps do not;
paired differences add a Wilcoxon signed-rank test. Intervals on fewer than
:data:`FEW_IMAGES` images are marked on the pages.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from cytokit.evaluation.simulation import RESAMPLES, outcomes, permutation_p, scores, simulated_errors

CONFIDENCE = 0.95
#: A test's p-value must fall below this for a verdict.
ALPHA = 0.05
#: The metrics that get intervals: the headline five (weighted precision, recall and F1) and macro F1.
METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "macro_f1")
BETTER, WORSE, UNCLEAR = "better", "worse", "no clear difference"
#: Metrics whose interval is moved by their simulated bias: F1 is biased low on small classes (the simulation
#: finds the bias of F1, and overstates that of precision, which is not moved).
BIASED = {"f1", "macro_f1"}
#: Intervals resting on fewer images than this are marked "few images" on the pages.
FEW_IMAGES = 20


# --------------------------------------------------------------------------- checks


def _labels(y, name: str, n_classes: int) -> np.ndarray:
    """``y`` as a 1-D integer array of labels in 0 … n_classes − 1, or a ValueError naming it."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if np.isnan(arr).any():
            raise ValueError(f"{name} contains NaN")
        if not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold integer class labels, got {arr[arr != np.round(arr)][0]!r}")
    elif arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        raise ValueError(f"{name} has labels outside 0 … {n_classes - 1}: {arr.min()} … {arr.max()}")
    return arr


def _n_classes(n_classes) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    return int(n_classes)


def _same_length(**arrays) -> int:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError("lengths differ: " + ", ".join(f"{k} has {v}" for k, v in lengths.items()))
    n = next(iter(lengths.values()))
    if n == 0:
        raise ValueError(f"{' and '.join(lengths)} are empty")
    return n


def _label_sets(y_true, preds: dict, n_classes) -> tuple[np.ndarray, list[np.ndarray], int]:
    k = _n_classes(n_classes)
    t = _labels(y_true, "y_true", k)
    ps = [_labels(p, name, k) for name, p in preds.items()]
    _same_length(y_true=t, **dict(zip(preds, ps)))
    return t, ps, k


def _values(x, name: str) -> np.ndarray:
    """Per-image values as floats, or a ValueError naming them (NaN included: drop undefined images first)."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold numbers, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    arr = arr.astype(float)
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN: drop the images without a value first")
    return arr


# --------------------------------------------------------------------------- metrics in batches


def confusions(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion matrices (B, K, K), rows true, of label arrays shaped (n,) or (B, n)."""
    k = _n_classes(n_classes)
    t, p = np.atleast_2d(y_true), np.atleast_2d(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"lengths differ: y_true has shape {t.shape}, y_pred has {p.shape}")
    t = _labels(t.ravel(), "y_true", k).reshape(t.shape)
    p = _labels(p.ravel(), "y_pred", k).reshape(p.shape)
    batch = np.arange(t.shape[0])[:, None] * k * k
    flat = (batch + t * k + p).ravel()
    return np.bincount(flat, minlength=t.shape[0] * k * k).reshape(-1, k, k)


# --------------------------------------------------------------------------- intervals


@dataclass(frozen=True)
class Interval:
    """A point estimate and its 95 % interval, and the images it rests on (0: not counted)."""

    estimate: float
    low: float
    high: float
    n: int = 0

    def as_list(self) -> list[float]:
        return [float(self.low), float(self.high)]

    @property
    def few_images(self) -> bool:
        """True when the interval rests on fewer than :data:`FEW_IMAGES` images."""
        return 0 < self.n < FEW_IMAGES


def _z(confidence: float) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2))


def _bounds(value: float, errors: np.ndarray, metric: str, confidence: float, limits: tuple) -> tuple[float, float]:
    """``value`` ± z standard errors of ``errors``; for F1, which is biased low on small classes, moved by the
    errors' mean (never so far that ``value`` leaves its interval), then cut to ``limits``."""
    half = _z(confidence) * float(np.std(errors))
    shift = float(np.clip(np.mean(errors), -half, half)) if metric in BIASED else 0.0
    return max(value - shift - half, limits[0]), min(value - shift + half, limits[1])


def intervals(y_true, y_pred, n_classes: int, metrics=METRICS, resamples: int = RESAMPLES,
              seed: int = 0, confidence: float = CONFIDENCE) -> dict[str, Interval]:
    """Each metric of one model on one set of images with its 95 % interval (module docstring)."""
    t, (p,), k = _label_sets(y_true, {"y_pred": y_pred}, n_classes)
    names = _metric_names(metrics)
    o = outcomes(t, [p], k)  # each class's images: right or wrong, and where the wrong calls went
    estimate = scores(o.observed(0))
    errors = simulated_errors(o, names, resamples, seed)  # estimate - truth on simulated test sets
    return {m: Interval(float(estimate[m][0]), *_bounds(float(estimate[m][0]), errors[m], m, confidence, (0.0, 1.0)),
                        len(t)) for m in names}


def _metric_names(metrics) -> list[str]:
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise ValueError(f"metrics must be among {', '.join(METRICS)}; got {unknown or names!r}")
    return names


def wilson(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a proportion (NaN for no trials)."""
    k, n = (_count(successes, "successes"), _count(trials, "trials"))
    if k > n:
        raise ValueError(f"successes ({k}) exceed trials ({n})")
    if n == 0:
        return float("nan"), float("nan")
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def _count(x, name: str) -> int:
    """A whole, non-negative count, or a ValueError naming it (2.7 is not a count)."""
    value = float(x) if isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) else None
    if value is None or np.isnan(value) or value < 0 or value != int(value):
        raise ValueError(f"{name} must be a whole number of images ≥ 0, got {x!r}")
    return int(value)


def per_class_intervals(y_true, y_pred, class_names) -> pd.DataFrame:
    """Per class: precision and recall with Wilson intervals, and the support."""
    t, (p,), k = _label_sets(y_true, {"y_pred": y_pred}, len(class_names))
    cm = confusions(t, p, k)[0]
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


def verdict(low: float, high: float, p_value: float, alpha: float = ALPHA) -> str:
    """"better" only when the interval of a difference lies above 0 *and* the test gives p < ``alpha``, "worse"
    only when it lies below 0 and p < ``alpha``; otherwise no clear difference."""
    low, high, p_value = _verdict_inputs(low, high, p_value)
    interval_says = BETTER if low > 0 else WORSE if high < 0 else UNCLEAR
    test_agrees = p_value < alpha
    return interval_says if test_agrees else UNCLEAR


def _verdict_inputs(low, high, p_value) -> tuple[float, float, float]:
    """The bounds and p-value as floats, or a ValueError (NaN, or bounds the wrong way round)."""
    low, high, p_value = (float(x) for x in (low, high, p_value))
    if any(np.isnan(x) for x in (low, high, p_value)):
        raise ValueError(f"verdict needs numbers, got low={low}, high={high}, p_value={p_value}")
    if low > high:
        raise ValueError(f"low ({low}) is above high ({high})")
    return low, high, p_value


@dataclass(frozen=True)
class Comparison:
    """Model ``a`` against model ``b`` on the same images for one metric: a - b, its interval, a test.

    ``p_floor`` is the smallest p-value the test can give (1 / (permutations + 1) for a
    permutation test, 0 for an exact one); ``n`` the images and ``classes`` the classes the
    metric averages over (0 where it averages over none).
    """

    a: str
    b: str
    metric: str
    difference: float
    low: float
    high: float
    p_value: float
    test: str
    p_floor: float = 0.0
    n: int = 0
    classes: int = 0

    @property
    def verdict(self) -> str:
        return verdict(self.low, self.high, self.p_value)

    @property
    def few_images(self) -> bool:
        return 0 < self.n < FEW_IMAGES

    def as_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "metric": self.metric, "difference": self.difference,
                "ci95": [self.low, self.high], "p_value": self.p_value, "test": self.test, "p_floor": self.p_floor,
                "n": self.n, "classes": self.classes, "verdict": self.verdict}

    @classmethod
    def from_dict(cls, d: dict) -> Comparison:
        """The comparison :meth:`as_dict` wrote (``metrics.json``)."""
        fields = ("a", "b", "metric", "difference", "p_value", "test", "p_floor", "n", "classes")
        return cls(**{k: d[k] for k in fields if k in d}, low=d["ci95"][0], high=d["ci95"][1])


def mcnemar_exact(correct_a, correct_b) -> float:
    """Exact McNemar p-value: a binomial test on the images exactly one of the two models gets right."""
    a, b = (_booleans(x, name) for x, name in ((correct_a, "correct_a"), (correct_b, "correct_b")))
    _same_length(correct_a=a, correct_b=b)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    if only_a + only_b == 0:
        return 1.0
    return float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def _booleans(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    if arr.dtype.kind not in "biuf" or not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} must hold True/False per image")
    return arr.astype(bool)


def compare(y_true, pred_a, pred_b, n_classes: int, metric: str, names=("a", "b"), resamples: int = RESAMPLES,
            seed: int = 0, confidence: float = CONFIDENCE) -> Comparison:
    """Paired comparison of two models' predictions of the same images for one metric.

    The interval is the difference plus or minus z standard errors of the difference, both
    models' outcomes drawn jointly per class (module docstring); the p-value is McNemar's
    exact test for accuracy and a paired permutation test for any other metric.
    """
    t, (a, b), k = _label_sets(y_true, {"pred_a": pred_a, "pred_b": pred_b}, n_classes)
    (name,) = _metric_names([metric])
    o = outcomes(t, [a, b], k)  # each class's images: right by both models, by one, by neither
    difference = float(scores(o.observed(0))[name][0] - scores(o.observed(1))[name][0])
    errors = simulated_errors(o, [name], resamples, seed)[name]  # both models' calls simulated together
    low, high = _bounds(difference, errors, name, confidence, (-1.0, 1.0))
    p_value, test, floor = _paired_test(o, a == t, b == t, name, resamples, seed)
    return Comparison(names[0], names[1], name, difference, low, high, p_value, test, floor, len(t), o.n_classes)


def _paired_test(o, right_a, right_b, metric: str, resamples: int, seed: int) -> tuple[float, str, float]:
    """p-value, test and its floor: McNemar's exact test for accuracy, a paired permutation test for any other
    metric (never below 1 / (permutations + 1))."""
    if metric == "accuracy":
        return mcnemar_exact(right_a, right_b), "exact McNemar", 0.0
    return permutation_p(o, metric, resamples, seed), "paired permutation", 1 / (int(resamples) + 1)


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (each adjusted p compared with α keeps the
    family's chance of any false verdict at most α)."""
    p = _values(p_values, "p_values")
    if ((p < 0) | (p > 1)).any():
        raise ValueError("p_values must lie in [0, 1]")
    order = np.argsort(p, kind="stable")
    m = len(p)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order]).clip(max=1.0)
    out = np.empty(m)
    out[order] = adjusted
    return out


# --------------------------------------------------------------------------- means over images


def bootstrap_images(statistic, n_images: int, resamples: int = RESAMPLES, seed: int = 0,
                     confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of ``statistic(indices (B, n))`` when the images are resampled with replacement.

    For a statistic of a sample of images that is not a mean (a smallest sufficient n):
    ``statistic`` returns one value, or a vector, per row of indices.
    """
    if isinstance(n_images, bool) or not isinstance(n_images, (int, np.integer)) or n_images < 1:
        raise ValueError(f"n_images must be a positive integer, got {n_images!r}")

    def on_indices(idx, axis=-1):
        idx = np.moveaxis(np.asarray(idx), axis, -1)
        batch = idx.shape[:-1]
        out = np.asarray(statistic(idx.reshape(-1, n_images)))
        return out.reshape(*out.shape[:-1], *batch) if out.ndim > 1 else out.reshape(batch)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=stats.DegenerateDataWarning)
        res = stats.bootstrap((np.arange(n_images),), on_indices, n_resamples=int(resamples), vectorized=True,
                              method="percentile", confidence_level=confidence, rng=np.random.default_rng(seed))
    return np.asarray(res.confidence_interval.low), np.asarray(res.confidence_interval.high)


def mean_interval(values, confidence: float = CONFIDENCE, bounds: tuple | None = None) -> Interval:
    """The mean of per-image values with its Student-t 95 % interval (NaN bounds for a single image), cut to
    ``bounds``, the range the values can take, when given."""
    v = _values(values, "values")
    if len(v) == 0:
        raise ValueError("values is empty")
    mean = float(v.mean())
    if len(v) < 2:
        return Interval(mean, float("nan"), float("nan"), 1)
    half = float(stats.t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return Interval(mean, low, high, len(v))


def paired_mean_difference(a, b, names=("a", "b"), metric: str = "mean", confidence: float = CONFIDENCE,
                           bounds: tuple | None = None) -> Comparison:
    """Mean of per-image ``a - b`` with its Student-t interval and a Wilcoxon signed-rank p-value.

    ``a`` and ``b`` are the same images' values (drop images without a value from both
    first); ``bounds`` is the range of the differences (see :func:`mean_interval`).
    """
    x, y = _values(a, "a"), _values(b, "b")
    n = _same_length(a=x, b=y)
    d = x - y
    if n < 2:
        raise ValueError(f"a paired difference needs at least two images, got {n}")
    iv = mean_interval(d, confidence, bounds)
    p_value = float(stats.wilcoxon(d).pvalue) if np.any(d != 0) else 1.0
    return Comparison(names[0], names[1], metric, iv.estimate, iv.low, iv.high, p_value, "Wilcoxon signed-rank",
                      0.0, n)


# --------------------------------------------------------------------------- seeds


def spread(values) -> dict:
    """Mean, standard deviation (n - 1), smallest and largest of a metric over seeds."""
    v = _values(list(values), "values")
    if len(v) == 0:
        raise ValueError("values is empty")
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "min": float(v.min()), "max": float(v.max()), "n": int(len(v))}
