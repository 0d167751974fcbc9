"""The smallest sufficient n under three criteria, and whether one ranking suffices with fewer superpixels.

The study's rule reads weighted precision: explanation images that collapse into one
class (most called ART) keep a high weighted precision while their accuracy falls. So
the smallest sufficient n is read under accuracy and balanced accuracy too
(:data:`cytokit.xai.sufficiency.CRITERIA`), each against two thirds of its own
full-image score. When no tested n reaches the threshold, the sufficient n is the full
image (``"all"``): at the largest superpixel count every image is whole, and a whole
image always passes. Two rankings of the same images are compared under each criterion by
its curve's mean over the tested n (:func:`compare`: a bootstrap interval over images and
a paired permutation test that swaps the two rankings' explanation images per image); the
difference of their smallest sufficient n is given beside it, with its interval
(:func:`n_saved`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from cytokit.evaluation import statistics
from cytokit.io import to_jsonable
from cytokit.xai.sufficiency import CRITERIA, THRESHOLD, SufficiencyResult

#: Names of the criteria as the tables print them.
CRITERION_NAMES = {"precision_weighted": "weighted precision (the study's)", "accuracy": "accuracy",
                   "balanced_accuracy": "balanced accuracy"}
#: The names ``statistics.scores`` gives the criteria.
_SCORE_KEY = {"precision_weighted": "precision", "accuracy": "accuracy", "balanced_accuracy": "balanced_accuracy"}


def prediction_rows(result: SufficiencyResult) -> np.ndarray:
    """(R, N) predicted classes: one row per tested numeric n (-1 where an image is left out), then the full image."""
    return np.stack([result.predictions(n) for n in result.numeric_ns()] + [result.full_pred])


def grid(result: SufficiencyResult) -> np.ndarray:
    """The n of each row of :func:`prediction_rows`; the full image counts as the largest superpixel count."""
    return np.array(result.numeric_ns() + [int(np.max(result.n_superpixels))], dtype=float)


def _row_scores(rows: np.ndarray, truth: np.ndarray, idx: np.ndarray, n_classes: int, metric: str) -> np.ndarray:
    """(R, B) score of every row for each row of image indices ``idx`` (B, N); left-out images do not count."""
    out = []
    t = truth[idx]
    for row in rows:
        p = row[idx]
        used = p >= 0
        cm = statistics.confusions(np.where(used, t, n_classes), np.where(used, p, n_classes), n_classes + 1)
        out.append(statistics.scores(cm[:, :n_classes, :n_classes])[_SCORE_KEY[metric]])
    return np.stack(out)


def positions(rows: np.ndarray, truth: np.ndarray, idx: np.ndarray, n_classes: int, metric: str,
              threshold: float = THRESHOLD) -> np.ndarray:
    """(B,) index of the first row whose ``metric`` reaches ``threshold`` x the full image's (the last row)."""
    scores = _row_scores(rows, truth, np.atleast_2d(idx), n_classes, metric)
    ok = scores[:-1] >= threshold * scores[-1]
    return np.where(ok.any(axis=0), ok.argmax(axis=0), len(rows) - 1)


def _check_metric(metric: str) -> str:
    if metric not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}; got {metric!r}")
    return metric


@dataclass(frozen=True)
class SufficientN:
    """A smallest sufficient n with its 95 % interval over images; ``"all"`` when only the full image suffices."""

    value: int | str
    low: int | str
    high: int | str

    def as_dict(self) -> dict:
        return {"value": self.value, "ci95": [self.low, self.high]}


def _shown(ns: np.ndarray, position: int):
    return "all" if position >= len(ns) - 1 else int(ns[position])


def sufficient_n(result: SufficiencyResult, metric: str = "precision_weighted", threshold: float = THRESHOLD,
                 resamples: int = statistics.RESAMPLES, seed: int = 0) -> SufficientN:
    """The smallest sufficient n under ``metric`` with its bootstrap interval (images resampled)."""
    rows, ns, k = prediction_rows(result), grid(result), len(result.class_names)
    n_img = len(result.y_true)
    point = int(positions(rows, result.y_true, np.arange(n_img), k, _check_metric(metric), threshold)[0])
    low, high = statistics.bootstrap_images(
        lambda idx: positions(rows, result.y_true, idx, k, metric, threshold).astype(float), n_img, resamples, seed)
    return SufficientN(_shown(ns, point), _shown(ns, int(np.floor(low))), _shown(ns, int(np.ceil(high))))


def _paired(a: SufficiencyResult, b: SufficiencyResult):
    """Both results' prediction rows side by side (image i of ``b`` is column N + i), their truth and n grid."""
    if not (np.array_equal(a.y_true, b.y_true) and np.array_equal(a.full_pred, b.full_pred) and a.ns == b.ns):
        raise ValueError("the two results must be of the same images, full-image predictions and n")
    rows = np.concatenate([prediction_rows(a), prediction_rows(b)], axis=1)
    return rows, np.concatenate([a.y_true, a.y_true]), np.maximum(grid(a), grid(b))


def _batched(fn, n_img):
    """``fn(x, y)`` on index arrays (B, N) as ``scipy.stats`` calls a vectorised statistic (any batch shape)."""
    def statistic(x, y, axis=-1):
        x, y = np.moveaxis(np.asarray(x), axis, -1), np.moveaxis(np.asarray(y), axis, -1)
        return fn(x.reshape(-1, n_img), y.reshape(-1, n_img)).reshape(x.shape[:-1])
    return statistic


def compare(a: SufficiencyResult, b: SufficiencyResult, metric: str = "precision_weighted", names=("a", "b"),
            resamples: int = statistics.RESAMPLES, seed: int = 0) -> statistics.Comparison:
    """``metric`` averaged over the tested n, ``a`` minus ``b``, on the same images (positive: ``a``'s explanation
    images keep the model's calls better).

    The smallest sufficient n is a threshold crossing, and a test of it has little power
    (swapping half the images' rankings moves both curves to the threshold); the curve's
    mean over n carries the same ordering without the threshold. Interval: images resampled,
    both rankings read on the same resample. Test: a paired permutation test that swaps,
    image by image, which ranking's explanation images are whose (``scipy.stats.permutation_test``).
    """
    _check_metric(metric)
    rows, truth, _ = _paired(a, b)
    n_img, k = len(a.y_true), len(a.class_names)

    def area(x, y):
        return np.nanmean(_row_scores(rows[:-1], truth, x, k, metric) - _row_scores(rows[:-1], truth, y, k, metric),
                          axis=0)

    own, other = np.arange(n_img), np.arange(n_img) + n_img
    statistic = _batched(area, n_img)
    low, high = statistics.bootstrap_images(lambda idx: area(idx, idx + n_img), n_img, resamples, seed)
    test = stats.permutation_test((own, other), statistic, permutation_type="samples", vectorized=True,
                                  n_resamples=int(resamples), rng=np.random.default_rng(seed))
    return statistics.Comparison(names[0], names[1], f"{CRITERION_NAMES[metric]} over n", float(area(own[None],
                                 other[None])[0]), float(low), float(high), float(test.pvalue), "paired permutation")


def n_saved(a: SufficiencyResult, b: SufficiencyResult, metric: str = "precision_weighted",
            threshold: float = THRESHOLD, resamples: int = statistics.RESAMPLES, seed: int = 0) -> statistics.Interval:
    """n of ``b`` minus n of ``a`` (superpixels ``a`` saves) with its bootstrap interval: a description, not a test."""
    _check_metric(metric)
    rows, truth, ns = _paired(a, b)
    n_img, k = len(a.y_true), len(a.class_names)

    def saved(x, y):
        return ns[positions(rows, truth, y, k, metric, threshold)] - ns[positions(rows, truth, x, k, metric, threshold)]

    own = np.arange(n_img)
    low, high = statistics.bootstrap_images(lambda idx: saved(idx, idx + n_img), n_img, resamples, seed)
    return statistics.Interval(float(saved(own[None], own[None] + n_img)[0]), float(low), float(high))


@dataclass(frozen=True)
class CriterionTable:
    """Smallest sufficient n per criterion and ranking, and each comparison's verdict under each criterion."""

    table: pd.DataFrame  # rows: criterion; columns: full_image, threshold, then one SufficientN per ranking
    comparisons: dict  # (criterion, key) -> statistics.Comparison of the criterion's mean over n
    saved: dict  # (criterion, key) -> statistics.Interval: n of b - n of a
    images_per_n: dict

    def holds(self, key: str) -> dict[str, bool]:
        """Per criterion, whether the comparison ``key`` comes out "better"."""
        return {c: self.comparisons[(c, key)].verdict == statistics.BETTER for c in self.table.index}

    def facts(self) -> dict:
        """metrics.json's ``criterion`` entry: plain numbers, intervals and verdicts."""
        out = {}
        for criterion, row in self.table.iterrows():
            out[criterion] = {"name": CRITERION_NAMES[criterion], "full_image": row["full_image"],
                              "threshold": row["threshold"],
                              "sufficient_n": {r: row[r].as_dict() for r in row.index
                                               if isinstance(row[r], SufficientN)},
                              "comparisons": {key: c.as_dict() for (crit, key), c in self.comparisons.items()
                                              if crit == criterion},
                              "superpixels_saved": {key: {"value": v.estimate, "ci95": v.as_list()}
                                                    for (crit, key), v in self.saved.items() if crit == criterion}}
        return to_jsonable({"criteria": out, "images_per_n": self.images_per_n})


def criterion_table(results: dict[str, SufficiencyResult], pairs=(("predicted", "first"), ("predicted", "random")),
                    criteria=CRITERIA, threshold: float = THRESHOLD, resamples: int = statistics.RESAMPLES,
                    seed: int = 0) -> CriterionTable:
    """Under each criterion: every ranking's smallest sufficient n, and ``a`` against ``b`` for each pair
    (:func:`compare`, :func:`n_saved`)."""
    rows, comparisons, saved = [], {}, {}
    first = next(iter(results.values()))
    for criterion in criteria:
        row = {"criterion": criterion, "full_image": first.reference(criterion),
               "threshold": threshold * first.reference(criterion)}
        row.update({name: sufficient_n(r, criterion, threshold, resamples, seed) for name, r in results.items()})
        rows.append(row)
        for a, b in pairs:
            comparisons[(criterion, f"{a}_vs_{b}")] = compare(results[a], results[b], criterion, (a, b), resamples,
                                                              seed)
            saved[(criterion, f"{a}_vs_{b}")] = n_saved(results[a], results[b], criterion, threshold, resamples, seed)
    images = {name: r.images_per_n()["images"].to_dict() for name, r in results.items()}
    return CriterionTable(pd.DataFrame(rows).set_index("criterion"), comparisons, saved, images)
