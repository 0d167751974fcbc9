"""Each class's images grouped by what one or two models called them, redrawn from their posterior and
simulated again: the standard errors and the permutation test of :mod:`cytokit.evaluation.statistics`.

Everything works on counts (how many images of a class got each call), never image by
image, so thousands of simulated test sets of any size cost milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000
#: Pseudo-images added to each class's right and wrong outcomes (Agresti and Coull: z²/2 ≈ 2).
PRIOR_OUTCOME = 2.0
#: Pseudo-images added to each joint outcome of two models (Agresti and Min: ½).
PRIOR_PAIRED = 0.5
#: Pseudo-images spread over the classes an error can go to, in all (Perks: one, whatever their number).
PRIOR_DESTINATIONS = 1.0
#: Metrics that only count right calls (where an error went does not matter).
RIGHT_CALLS = {"accuracy", "balanced_accuracy", "recall"}


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
    if set(metrics) <= RIGHT_CALLS:
        o = o.by_category()
    prob = _posterior_draws(rng, o, int(resamples))  # (draws, leaves): each draw is one possible truth
    truth = prob * o.sizes[o.leaf_class]  # its expected image counts
    simulated = _multinomial(rng, prob, o.leaf_class, o.sizes)  # a test set of the same class sizes drawn from it
    return _errors(o, truth, simulated, metrics)


def _posterior_draws(rng, o: Outcomes, draws: int) -> np.ndarray:
    """``draws`` × leaves: the probability of each leaf within its class, categories and then leaves within a
    category drawn from a Dirichlet of their counts plus prior."""
    category_p = _normalised(rng.gamma(o.category_count + o.category_prior, size=(draws, len(o.category_count))),
                             o.category_class, o.n_classes)
    leaf_p = _normalised(rng.gamma(o.leaf_count + o.leaf_prior, size=(draws, len(o.leaf_count))), o.leaf_category,
                         len(o.category_count))
    return category_p[:, o.leaf_category] * leaf_p


def _errors(o: Outcomes, truth: np.ndarray, simulated: np.ndarray, metrics) -> dict[str, np.ndarray]:
    """Per metric, each draw's score of the simulated counts minus that of the truth (two models: a − b)."""
    errors = {m: 0.0 for m in metrics}
    for model, sign in enumerate((1.0, -1.0)[:o.leaf_pred.shape[0]]):
        true_scores, estimates = scores(o.confusions(truth, model)), scores(o.confusions(simulated, model))
        errors = {m: errors[m] + sign * (estimates[m] - true_scores[m]) for m in metrics}
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
