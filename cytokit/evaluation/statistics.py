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
rule). Precision and F1 are biased low on small classes, so their interval is also moved by
the simulated bias, never past the estimate. Two models on the same images are drawn jointly
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

CONFIDENCE = 0.95
#: A test's p-value must fall below this for a verdict.
ALPHA = 0.05
RESAMPLES = 2000
#: The metrics that get intervals: the headline five (weighted precision, recall and F1) and macro F1.
METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "macro_f1")
BETTER, WORSE, UNCLEAR = "better", "worse", "no clear difference"
#: Pseudo-images added to each class's right and wrong outcomes (Agresti and Coull: z²/2 ≈ 2).
PRIOR_OUTCOME = 2.0
#: Pseudo-images added to each joint outcome of two models (Agresti and Min: ½).
PRIOR_PAIRED = 0.5
#: Pseudo-images spread over the classes an error can go to, in all (Perks: one, whatever their number).
PRIOR_DESTINATIONS = 1.0
#: Metrics that only count right calls (where an error went does not matter).
RIGHT_CALLS = {"accuracy", "balanced_accuracy", "recall"}
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


def scores(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, balanced accuracy, weighted precision/recall/F1 and macro F1 of confusion matrices (B, K, K).

    Balanced accuracy and macro F1 average over the classes present in the true labels
    (rows with images); precision and F1 of a class never predicted are 0. Equal to
    scikit-learn's with ``labels`` the classes present (tested).
    """
    cm = np.asarray(cm, dtype=float)
    if cm.ndim < 2 or cm.shape[-1] != cm.shape[-2]:
        raise ValueError(f"cm must be square confusion matrices (…, K, K), got shape {cm.shape}")
    if np.isnan(cm).any() or (cm < 0).any():
        raise ValueError("cm must hold counts (no NaN, none negative)")
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support, predicted = cm.sum(axis=-1), cm.sum(axis=-2)
    n = support.sum(axis=-1)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = support > 0

    def ratio(a, b):  # NaN where nothing was counted (no image at all)
        b = np.broadcast_to(b, np.shape(a)).astype(float)
        return np.divide(a, b, out=np.full(np.shape(a), np.nan), where=b > 0)

    weights = ratio(support, n[..., None])
    classes = present.sum(axis=-1)
    return {
        "accuracy": ratio(tp.sum(axis=-1), n),
        "balanced_accuracy": ratio((recall * present).sum(axis=-1), classes),
        "precision": (precision * weights).sum(axis=-1),
        "recall": (recall * weights).sum(axis=-1),
        "f1": (f1 * weights).sum(axis=-1),
        "macro_f1": ratio((f1 * present).sum(axis=-1), classes),
    }


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


@dataclass
class Outcomes:
    """The images of one split grouped by true class and by what one or two models predicted.

    Labels are re-indexed to the classes present in the truth (``classes``); a prediction
    of any other class becomes one extra label, "elsewhere", which no metric averages over.
    Each class's images fall into *categories* (right or wrong for one model; right by
    both, by one, by neither for two) and, within a category, into *leaves* (the predicted
    labels). Counts are what was observed; ``*_prior`` the pseudo-images of the posterior.
    """

    classes: np.ndarray        # (C,) labels present in y_true
    sizes: np.ndarray          # (C,) images per class
    leaf_class: np.ndarray     # (L,) class index of each leaf
    leaf_category: np.ndarray  # (L,) category index of each leaf
    leaf_pred: np.ndarray      # (M, L) predicted label of each model, 0 … C (C: elsewhere)
    leaf_count: np.ndarray     # (L,)
    leaf_prior: np.ndarray     # (L,)
    category_class: np.ndarray  # (G,)
    category_count: np.ndarray  # (G,)
    category_prior: np.ndarray  # (G,)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def confusions(self, weights: np.ndarray, model: int) -> np.ndarray:
        """Confusion matrices (B, C + 1, C + 1) of ``model`` from per-leaf image counts ``weights`` (B, L); the
        last row and column are "elsewhere" (no image is truly elsewhere, so no average counts it)."""
        c = self.n_classes + 1
        cell = self.leaf_class * c + self.leaf_pred[model]
        return _scatter(np.atleast_2d(weights), cell, c * c).reshape(-1, c, c)

    def observed(self, model: int) -> np.ndarray:
        return self.confusions(self.leaf_count[None], model)

    def by_category(self) -> Outcomes:
        """The same images with one leaf per category (a wrong call goes "elsewhere"): enough for the
        metrics that only count right calls (accuracy, balanced accuracy, weighted recall), and faster."""
        g, m, c = len(self.category_count), self.leaf_pred.shape[0], self.n_classes
        pattern, cls = np.arange(g) % 2 ** m, self.category_class
        pred = np.stack([np.where((pattern >> i) & 1, cls, c) for i in range(m)])
        return Outcomes(self.classes, self.sizes, cls, np.arange(g), pred, self.category_count, np.ones(g), cls,
                        self.category_count, self.category_prior)


def _scatter(weights: np.ndarray, cell: np.ndarray, n_cells: int) -> np.ndarray:
    """Sum of the columns of ``weights`` (B, L) into ``n_cells`` cells, leaf l into ``cell[l]``."""
    order = np.argsort(cell, kind="stable")
    cells, start = np.unique(cell[order], return_index=True)
    out = np.zeros((weights.shape[0], n_cells))
    out[:, cells] = np.add.reduceat(weights[:, order], start, axis=1)
    return out


def outcomes(y_true, preds: list[np.ndarray], n_classes: int) -> Outcomes:
    """Group checked labels into :class:`Outcomes`, with the priors for one model or for a pair."""
    t = np.asarray(y_true)
    classes, t_idx = np.unique(t, return_inverse=True)
    c, m = len(classes), len(preds)
    lookup = np.full(n_classes, c)
    lookup[classes] = np.arange(c)
    p_idx = np.stack([lookup[np.asarray(p)] for p in preds])
    outcome_prior = PRIOR_OUTCOME if m == 1 else PRIOR_PAIRED
    destinations = [j for j in range(c + 1) if j < c or n_classes > c]  # c: "elsewhere"
    share = PRIOR_DESTINATIONS / max(len(destinations) - 1, 1)

    leaves: dict[tuple, list[float]] = {}
    keys, counts = np.unique(np.vstack([t_idx, p_idx]).T, axis=0, return_counts=True)
    for key, count in zip(map(tuple, keys), counts):
        leaves[key] = [float(count), 0.0]
    for k in range(c):
        for pattern in range(2 ** m):  # bit i set: model i right
            right = [(pattern >> i) & 1 for i in range(m)]
            if all(right):
                leaves.setdefault((k, *[k] * m), [0.0, 0.0])[1] = 1.0  # the only leaf of its category
                continue
            for j in destinations:
                if j != k:
                    leaves.setdefault((k, *[k if r else j for r in right]), [0.0, 0.0])[1] += share
    keys = np.array(sorted(leaves))
    leaf_class, leaf_pred = keys[:, 0], keys[:, 1:].T
    pattern = sum((leaf_pred[i] == leaf_class).astype(int) << i for i in range(m))
    leaf_category = leaf_class * 2 ** m + pattern
    leaf_count = np.array([leaves[tuple(k)][0] for k in keys])
    category_count = np.bincount(leaf_category, weights=leaf_count, minlength=c * 2 ** m)
    category_prior = np.full(c * 2 ** m, outcome_prior)
    if len(destinations) < 2:  # one class in all: no model can be wrong
        category_prior[np.arange(c * 2 ** m) % 2 ** m != 2 ** m - 1] = 0.0
    return Outcomes(classes, np.bincount(t_idx, minlength=c), leaf_class, leaf_category, leaf_pred, leaf_count,
                    np.array([leaves[tuple(k)][1] for k in keys]), np.repeat(np.arange(c), 2 ** m), category_count,
                    category_prior)


def _normalised(draws: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    totals = _scatter(draws, group, n_groups)
    return draws / totals[:, group]


def simulated_errors(o: Outcomes, metrics, resamples: int = RESAMPLES, seed: int = 0) -> dict[str, np.ndarray]:
    """Per metric, ``resamples`` draws of (estimate − truth) (for two models: of the difference a − b).

    Each draw takes every class's outcome probabilities from their posterior (categories and,
    within them, leaves each a Dirichlet of counts plus prior) as the truth, simulates a test
    set with the same class sizes from it, and scores both.
    """
    rng = np.random.default_rng(seed)
    b = int(resamples)
    if set(metrics) <= RIGHT_CALLS:
        o = o.by_category()
    category_p = _normalised(rng.gamma(o.category_count + o.category_prior, size=(b, len(o.category_count))),
                             o.category_class, o.n_classes)
    leaf_p = _normalised(rng.gamma(o.leaf_count + o.leaf_prior, size=(b, len(o.leaf_count))), o.leaf_category,
                         len(o.category_count))
    prob = category_p[:, o.leaf_category] * leaf_p
    expected = prob * o.sizes[o.leaf_class]
    simulated = _multinomial(rng, prob, o.leaf_class, o.sizes)
    errors = None
    for model, sign in enumerate((1.0, -1.0)[:o.leaf_pred.shape[0]]):
        truth, estimate = scores(o.confusions(expected, model)), scores(o.confusions(simulated, model))
        part = {m: sign * (estimate[m] - truth[m]) for m in metrics}
        errors = part if errors is None else {m: errors[m] + part[m] for m in metrics}
    return errors


def _multinomial(rng, prob: np.ndarray, leaf_class: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Image counts per leaf (B, L): each class's ``sizes[c]`` images spread over its leaves by ``prob``.

    Within a class the likeliest leaves come first: numpy stops drawing a row once every
    image is placed, so the many unlikely leaves of the prior cost little.
    """
    order = np.lexsort((-prob.mean(axis=0), leaf_class))
    starts = np.searchsorted(leaf_class[order], np.arange(len(sizes)))
    ends = np.searchsorted(leaf_class[order], np.arange(len(sizes)), side="right")
    width = int((ends - starts).max())
    slot = np.arange(len(order)) - starts[leaf_class[order]]
    padded = np.zeros((prob.shape[0], len(sizes), width))
    padded[:, leaf_class[order], slot] = prob[:, order]
    padded /= padded.sum(axis=-1, keepdims=True)
    counts = rng.multinomial(sizes, padded)
    out = np.empty_like(prob)
    out[:, order] = counts[:, leaf_class[order], slot]
    return out


def _z(confidence: float) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2))


def _bounds(value: float, errors: np.ndarray, metric: str, confidence: float, limits: tuple) -> tuple[float, float]:
    """``value`` ± z standard errors of ``errors``; for precision and F1, which are biased on small classes, moved
    by the errors' mean (never so far that ``value`` leaves its interval), then cut to ``limits``."""
    half = _z(confidence) * float(np.std(errors))
    shift = 0.0 if metric in RIGHT_CALLS else float(np.clip(np.mean(errors), -half, half))
    return max(value - shift - half, limits[0]), min(value - shift + half, limits[1])


def intervals(y_true, y_pred, n_classes: int, metrics=METRICS, resamples: int = RESAMPLES,
              seed: int = 0, confidence: float = CONFIDENCE) -> dict[str, Interval]:
    """Each metric of one model on one set of images with its 95 % interval (module docstring)."""
    t, (p,), k = _label_sets(y_true, {"y_pred": y_pred}, n_classes)
    names = _metric_names(metrics)
    o = outcomes(t, [p], k)
    point = scores(o.observed(0))
    errors = simulated_errors(o, names, resamples, seed)
    return {m: Interval(float(point[m][0]), *_bounds(float(point[m][0]), errors[m], m, confidence, (0.0, 1.0)),
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
    """"better" when the interval of a difference lies above 0 and the test's p < ``alpha``, "worse" when it
    lies below 0 and p < ``alpha``, else no clear difference."""
    low, high, p_value = (float(x) for x in (low, high, p_value))
    if any(np.isnan(x) for x in (low, high, p_value)):
        raise ValueError(f"verdict needs numbers, got low={low}, high={high}, p_value={p_value}")
    if low > high:
        raise ValueError(f"low ({low}) is above high ({high})")
    if p_value >= alpha:
        return UNCLEAR
    if low > 0:
        return BETTER
    if high < 0:
        return WORSE
    return UNCLEAR


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


def permutation_p(o: Outcomes, metric: str, resamples: int = RESAMPLES, seed: int = 0) -> float:
    """Two-sided p-value of metric(a) − metric(b) when each image's two predictions may be swapped.

    Only images the two models label differently can change; the number of them swapped in
    each group of identical (true, a, b) images is binomial(count, ½), which is the same
    distribution as swapping image by image. The p-value counts the observed difference
    among the permutations, (1 + as extreme) / (resamples + 1), so it is never below
    1 / (resamples + 1).
    """
    rng = np.random.default_rng(seed)
    observed = [scores(o.observed(i))[metric][0] for i in (0, 1)]
    statistic = observed[0] - observed[1]
    moved = np.flatnonzero((o.leaf_pred[0] != o.leaf_pred[1]) & (o.leaf_count > 0))
    if len(moved) == 0:
        return 1.0
    swapped = rng.binomial(o.leaf_count[moved].astype(np.int64), 0.5, size=(int(resamples), len(moved)))
    c = o.n_classes + 1
    cells = [o.leaf_class[moved] * c + o.leaf_pred[i][moved] for i in (0, 1)]
    base = [o.observed(i) for i in (0, 1)]
    delta = (_scatter(swapped, cells[1], c * c) - _scatter(swapped, cells[0], c * c)).reshape(-1, c, c)
    permuted = scores(base[0] + delta)[metric] - scores(base[1] - delta)[metric]
    extreme = np.sum(np.abs(permuted) >= abs(statistic) - 1e-12)
    return float((1 + extreme) / (int(resamples) + 1))


def compare(y_true, pred_a, pred_b, n_classes: int, metric: str, names=("a", "b"), resamples: int = RESAMPLES,
            seed: int = 0, confidence: float = CONFIDENCE) -> Comparison:
    """Paired comparison of two models' predictions of the same images for one metric.

    The interval is the difference plus or minus z standard errors of the difference, both
    models' outcomes drawn jointly per class (module docstring); the p-value is McNemar's
    exact test for accuracy and a paired permutation test for any other metric.
    """
    t, (a, b), k = _label_sets(y_true, {"pred_a": pred_a, "pred_b": pred_b}, n_classes)
    (name,) = _metric_names([metric])
    o = outcomes(t, [a, b], k)
    difference = float(scores(o.observed(0))[name][0] - scores(o.observed(1))[name][0])
    low, high = _bounds(difference, simulated_errors(o, [name], resamples, seed)[name], name, confidence, (-1.0, 1.0))
    if name == "accuracy":
        p_value, test, floor = mcnemar_exact(a == t, b == t), "exact McNemar", 0.0
    else:
        p_value, test = permutation_p(o, name, resamples, seed), "paired permutation"
        floor = 1 / (int(resamples) + 1)
    return Comparison(names[0], names[1], name, difference, low, high, p_value, test, floor, len(t), o.n_classes)


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
