"""A model trained on one kind of cells scored on another: what synthetic training says about real cells.

The network keeps all 21 outputs, so a real cell may be called any class; it is scored
on the classes the real images hold in number (the main classes), by balanced accuracy
with its stratified bootstrap interval (:func:`cytokit.evaluation.statistics.intervals`),
recall per class with Wilson intervals and the confusion matrix. :func:`coverage` checks
the interval by simulation on a population shaped like the images it is computed on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cytokit.evaluation import statistics

#: Fewest usable images for a real class to be scored (the real sample: 8 classes of 69-100 images).
MIN_IMAGES = 20


def main_classes(codes, min_images: int = MIN_IMAGES) -> list[str]:
    """The classes with at least ``min_images`` images among ``codes`` (one code per image), sorted."""
    counts = pd.Series(list(codes)).value_counts()
    return sorted(counts[counts >= min_images].index)


def score(y_true, y_pred, class_names, main: list[str], resamples: int = statistics.RESAMPLES,
          seed: int = 0) -> dict:
    """Balanced accuracy over the ``main`` classes (interval), recall per class (Wilson), confusion matrix.

    ``y_true`` and ``y_pred`` are class indices into ``class_names`` (the model's outputs);
    only images whose true class is in ``main`` are scored; predictions may be any class.
    """
    names = list(class_names)
    t, p = np.asarray(y_true), np.asarray(y_pred)
    keep = np.isin(t, [names.index(c) for c in main])
    t, p = t[keep], p[keep]
    iv = statistics.intervals(t, p, len(names), metrics=("balanced_accuracy", "accuracy"), resamples=resamples,
                              seed=seed)
    per_class = statistics.per_class_intervals(t, p, names).loc[main, ["recall", "recall_low", "recall_high",
                                                                       "support"]]
    cm = statistics.confusions(t, p, len(names))[0][[names.index(c) for c in main]]
    used = [i for i, c in enumerate(names) if c in main or cm[:, i].any()]
    return {"n_images": int(len(t)), "classes": list(main), "chance": 1 / len(main),
            "balanced_accuracy": _interval(iv["balanced_accuracy"]), "accuracy": _interval(iv["accuracy"]),
            "recall": {c: {k: float(v) for k, v in row.items()} for c, row in per_class.iterrows()},
            "confusion": {"true": list(main), "predicted": [names[i] for i in used],
                          "counts": cm[:, used].astype(int).tolist()}}


def _interval(iv: statistics.Interval) -> dict:
    return {"estimate": iv.estimate, "low": iv.low, "high": iv.high}


def coverage(recalls, sizes, replicates: int = 200, resamples: int = 1000, seed: int = 0) -> float:
    """Share of balanced-accuracy intervals that hold the true value, on simulated predictions.

    Class ``i`` has ``sizes[i]`` images, each classified correctly with probability
    ``recalls[i]`` (a wrong answer goes to another class); the truth is the mean recall.
    """
    rng = np.random.default_rng(seed)
    p, n = np.asarray(recalls, float), np.asarray(sizes, int)
    k = len(n)
    truth = float(p.mean())
    y_true = np.repeat(np.arange(k), n)
    hits = 0
    for r in range(int(replicates)):
        right = rng.uniform(size=len(y_true)) < p[y_true]
        y_pred = np.where(right, y_true, (y_true + 1) % k)
        iv = statistics.intervals(y_true, y_pred, k, metrics=("balanced_accuracy",), resamples=resamples,
                                  seed=r)["balanced_accuracy"]
        hits += iv.low <= truth <= iv.high
    return hits / int(replicates)
