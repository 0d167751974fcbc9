"""Deletion and insertion curves (Petsiuk et al., RISE, 2018) of superpixel rankings.

The probability of the explained class as superpixels are hidden (deletion) or revealed
(insertion) in ranking order, over the *fraction* of superpixels, so the area under a
curve is a mean probability in [0, 1]: lower is better for deletion, higher for insertion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cytokit.io import to_jsonable
from cytokit.progress import bar as progress_bar
from cytokit.xai.occlusion import GREY, batch_size_of, classifier, compose, predict_stream, rank_map
from cytokit.xai.sufficiency import full_probabilities


def curve_points(n_superpixels: int, steps: int = 20) -> np.ndarray:
    """Numbers of superpixels at which a curve is sampled: 0..S in at most ``steps`` equal steps."""
    return np.unique(np.round(np.linspace(0, 1, int(steps) + 1) * int(n_superpixels)).astype(int))


def auc(fractions, probs) -> float:
    """Trapezoid area under a curve over the superpixel fraction 0..1 (a mean probability)."""
    return float(np.trapezoid(np.asarray(probs, float), np.asarray(fractions, float)))


def deletion_insertion(model, images, segments_list, rankings_by_method: dict, labels, steps: int = 20,
                       batch_size: int | None = None, grey: int = GREY, full_probs=None,
                       progress: bool = True) -> CurveResult:
    """Deletion and insertion curves of every image for every ranking method, in one predict stream.

    ``rankings_by_method`` maps a name ("LIME", "Grad-CAM", "random") to one ranking per
    image; ``labels`` is the class whose probability is tracked (normally the explained
    one). The end points are shared: 0 deleted = all inserted = the full image, all
    deleted = none inserted = the all-grey image (one prediction for all images).
    """
    predict = classifier(model, batch_size or 256)
    bs = batch_size_of(predict, batch_size)
    labels = np.asarray(labels, dtype=np.int64)
    full = full_probabilities(predict, images, full_probs, bs)
    grey_probs = np.asarray(predict(np.full((1, *np.shape(images[0])), grey, np.uint8)))[0]

    def items():
        for i in progress_bar(range(len(images)), enabled=progress, desc="deletion/insertion", leave=False):
            s = len(np.unique(segments_list[i]))
            for method, rankings in rankings_by_method.items():
                ranks = rank_map(segments_list[i], rankings[i])
                for m in curve_points(s, steps)[1:-1]:
                    yield (i, method, "deletion", m), compose(images[i], ranks >= m, grey)
                    yield (i, method, "insertion", m), compose(images[i], ranks < m, grey)

    probs = predict_stream(predict, items(), bs)
    rows = []
    for i in range(len(images)):
        s = len(np.unique(segments_list[i]))
        c = labels[i]
        for method in rankings_by_method:
            for kind in ("deletion", "insertion"):
                for m in curve_points(s, steps):
                    if 0 < m < s:
                        p = probs[(i, method, kind, m)][c]
                    else:
                        p = (full[i] if (m == 0) == (kind == "deletion") else grey_probs)[c]
                    rows.append((i, method, kind, int(m), m / s, float(p)))
    table = pd.DataFrame(rows, columns=["image", "method", "kind", "superpixels", "fraction", "prob"])
    return CurveResult(table)


@dataclass
class CurveResult:
    """Long table of curve points (image, method, kind, superpixels, fraction, prob) and its AUCs."""

    points: pd.DataFrame

    def aucs(self) -> pd.DataFrame:
        """One AUC per image, method and kind."""
        g = self.points.groupby(["image", "method", "kind"], sort=False)
        return g.apply(lambda d: auc(d["fraction"], d["prob"]), include_groups=False).rename("auc").reset_index()

    def summary(self) -> pd.DataFrame:
        """Mean AUC (and its standard error) per method and kind."""
        a = self.aucs()
        out = a.groupby(["method", "kind"], sort=False)["auc"].agg(["mean", "sem", "count"])
        return out.unstack("kind")

    def mean_curves(self, grid: int = 21) -> pd.DataFrame:
        """Curves averaged over images on a common fraction grid (linear interpolation), for plotting."""
        xs = np.linspace(0, 1, grid)
        rows = []
        for (method, kind), d in self.points.groupby(["method", "kind"], sort=False):
            ys = [np.interp(xs, g["fraction"], g["prob"]) for _, g in d.groupby("image")]
            for x, y in zip(xs, np.mean(ys, axis=0)):
                rows.append({"method": method, "kind": kind, "fraction": float(x), "prob": float(y)})
        return pd.DataFrame(rows)

    def to_dict(self) -> dict:
        """Mean AUCs as plain numbers for metrics.json: {method: {kind: mean}}."""
        s = self.summary()["mean"]
        return to_jsonable({m: {k: s.loc[m, k] for k in s.columns} for m in s.index})
