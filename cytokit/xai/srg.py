"""One faithfulness score per ranking and fill: the symmetric relevance gain (Blücher et al., TMLR 2024).

Removing superpixels most relevant first (MIF) should make the explained class's
probability fall fast; removing them least relevant first (LIF) should keep it up. Each
order alone depends on the fill: a fill far from the data drags every curve down, which
flatters MIF and hurts LIF. Blücher et al. combine the two into the area between the
curves, SRG = AUC(LIF) - AUC(MIF), and show that it ranks methods consistently across
fills where either order alone does not. Here the curves are the explained class's
probability over the *fraction* of superpixels removed (0 to 1), so SRG lies in [-1, 1]:
1 when the ranking's first superpixel carries the whole prediction, about 0 for a random
ranking (whose two orders are alike), below 0 for a ranking that has it backwards.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from cytokit.evaluation import statistics
from cytokit.io import to_jsonable
from cytokit.progress import bar as progress_bar
from cytokit.xai import fills
from cytokit.xai.deletion import auc, curve_points
from cytokit.xai.explain import image_seed
from cytokit.xai.occlusion import batch_size_of, classifier, predict_stream, rank_map
from cytokit.xai.sufficiency import full_probabilities

ORDERS = ("MIF", "LIF")
#: Images whose imputations are queued ahead of the one being predicted.
LOOKAHEAD = 2


def removal_curves(model, images, segments_list, rankings_by_method: dict, labels, fill: str = "grey",
                   steps: int = 10, seed: int = 0, full_probs=None, batch_size: int | None = None,
                   workers: int = 1, progress: bool = True) -> pd.DataFrame:
    """Both removal orders of every ranking under one fill, in one predict stream: a long table.

    Columns: ``image``, ``method``, ``order`` (MIF/LIF), ``removed`` (superpixels),
    ``fraction`` and ``prob`` (the probability of ``labels[i]``). The end points are shared by
    every method: nothing removed is the full image, everything removed the fully filled one.
    Image ``i``'s fill is seeded ``image_seed(seed, i)`` (the imputation's noise); with
    ``workers`` > 1 the imputations run in that many processes, :data:`LOOKAHEAD` images queued
    ahead so that the processes solve while the model predicts (solving and predicting by turns
    left each idle half the time).
    """
    fills.check_kind(fill)
    predict = classifier(model, batch_size or 256)
    bs = batch_size_of(predict, batch_size)
    labels = np.asarray(labels, dtype=np.int64)
    full = full_probabilities(predict, images, full_probs, bs)
    counts = [len(np.unique(s)) for s in segments_list]
    pool = fills.processes(workers) if workers > 1 and fill in fills.MASK_DEPENDENT else None

    def masks_of(i):
        keys, masks = [(i, None, None, counts[i])], [np.zeros(np.shape(segments_list[i]), bool)]
        for method, rankings in rankings_by_method.items():
            ranks = rank_map(segments_list[i], rankings[i])
            for m in curve_points(counts[i], steps)[1:-1]:
                keys += [(i, method, "MIF", m), (i, method, "LIF", m)]
                masks += [ranks >= m, ranks < counts[i] - m]
        return keys, masks

    def items():
        order = progress_bar(range(len(images)), enabled=progress, desc=f"SRG ({fill})", leave=False)
        if pool is None:
            for i in order:
                keys, masks = masks_of(i)
                yield from zip(keys, fills.fill_many(images[i], segments_list[i], masks, fill, image_seed(seed, i)))
            return
        ahead = deque()  # images whose imputations are queued: the processes work while the caller predicts
        for i in order:
            keys, masks = masks_of(i)
            ahead.append((keys, fills.submit_imputations(images[i], masks, image_seed(seed, i), fills.NOISE, pool)))
            if len(ahead) > LOOKAHEAD:
                keys, futures = ahead.popleft()
                yield from zip(keys, (f.result() for f in futures))
        while ahead:
            keys, futures = ahead.popleft()
            yield from zip(keys, (f.result() for f in futures))

    try:
        probs = predict_stream(predict, items(), bs)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    rows = []
    for i, s in enumerate(counts):
        for method in rankings_by_method:
            for order in ORDERS:
                for m in curve_points(s, steps):
                    p = full[i] if m == 0 else probs[(i, None, None, s) if m == s else (i, method, order, m)]
                    rows.append((i, method, order, int(m), m / s, float(p[labels[i]])))
    return pd.DataFrame(rows, columns=["image", "method", "order", "removed", "fraction", "prob"])


def per_image(curves: pd.DataFrame) -> pd.DataFrame:
    """Per image and method: the area under each order's curve and SRG = AUC(LIF) - AUC(MIF)."""
    areas = (curves.groupby(["image", "method", "order"], sort=False)
             .apply(lambda d: auc(d["fraction"], d["prob"]), include_groups=False).unstack("order"))
    areas = areas.rename(columns={"MIF": "mif_auc", "LIF": "lif_auc"})
    areas["srg"] = areas["lif_auc"] - areas["mif_auc"]
    return areas.reset_index()


@dataclass(frozen=True)
class CombinedScore:
    """SRG per fill and ranking with intervals over images, and paired verdicts between rankings."""

    scores: pd.DataFrame  # rows (fill, method): srg, low, high, mif_auc, lif_auc, images
    comparisons: dict  # (fill, "a_vs_b") -> statistics.Comparison
    images: dict  # fill -> images the curves rest on

    def order(self, fill: str) -> list[str]:
        """The rankings from the highest SRG to the lowest under ``fill``."""
        return self.scores.loc[fill].sort_values("srg", ascending=False).index.tolist()

    def consistent(self) -> bool:
        """Whether every fill orders the rankings the same way by their mean SRG."""
        return len({tuple(self.order(f)) for f in self.images}) == 1

    def facts(self) -> dict:
        """metrics.json's ``combined_score`` entry."""
        out = {}
        for fill in self.images:
            rows = self.scores.loc[fill]
            out[fill] = {"images": self.images[fill], "order": self.order(fill),
                         "srg": {m: {"value": r.srg, "ci95": [r.low, r.high], "mif_auc": r.mif_auc,
                                     "lif_auc": r.lif_auc} for m, r in rows.iterrows()},
                         "comparisons": {k: c.as_dict() for (f, k), c in self.comparisons.items() if f == fill}}
        return to_jsonable({"by_fill": out, "consistent_across_fills": self.consistent(),
                            "definition": "AUC(least relevant first) - AUC(most relevant first), probability of the "
                                          "explained class over the fraction of superpixels removed"})


def combined_score(tables: dict[str, pd.DataFrame], pairs=None) -> CombinedScore:
    """SRG of every ranking under every fill from :func:`removal_curves`' tables (one per fill).

    ``pairs`` are the (a, b) rankings compared per fill (default: every pair, in the order
    the rankings first appear), each by the paired mean of a's SRG minus b's over images.
    """
    rows, comparisons, images = [], {}, {}
    for fill, curves in tables.items():
        scores = per_image(curves)
        methods = list(dict.fromkeys(curves["method"]))
        wide = scores.pivot(index="image", columns="method", values="srg")
        images[fill] = int(len(wide))
        for method in methods:
            iv = statistics.mean_interval(wide[method].to_numpy())
            mine = scores[scores["method"] == method]
            rows.append({"fill": fill, "method": method, "srg": iv.estimate, "low": iv.low, "high": iv.high,
                         "mif_auc": float(mine["mif_auc"].mean()), "lif_auc": float(mine["lif_auc"].mean()),
                         "images": int(wide[method].notna().sum())})
        for a, b in (pairs or combinations(methods, 2)):
            comparisons[(fill, f"{a}_vs_{b}")] = statistics.paired_mean_difference(
                wide[a].to_numpy(), wide[b].to_numpy(), (a, b), "SRG")
    return CombinedScore(pd.DataFrame(rows).set_index(["fill", "method"]), comparisons, images)
