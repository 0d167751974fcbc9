"""Occluded explanations fed back to the model: the study's sufficiency test and its controls.

Chapter 06 asks whether the top-n LIME superpixels alone let the model keep its
prediction (the study's Ch. 6.2-6.3, after Shah and Sheppard). Everything here works on
uint8 images at the model's size, grey 128 standing for "occluded" (the study's
occlusion value), and feeds the model through one streaming batcher so tens of
thousands of occluded images go through in a few large predict calls.

Definitions, as implemented:

* **images per n** -- an image with fewer than ``n`` superpixels is left out of that
  ``n`` (the study's Table 6.2.1); ``"all"`` keeps every image and is the full image.
* **sufficient** -- ``n`` is sufficient when the explanations' precision at ``n`` is at
  least 2/3 of the precision on the full images ("all superpixels active", all images),
  the study's rule (Ch. 6.2, Figure 6.3.1). The global curve uses support-weighted
  precision by default (the "average" precision the study reports everywhere else, e.g.
  80 % beside 78.3 % accuracy); ``metric="precision_macro"`` or ``"accuracy"`` apply the
  same rule to another curve. Per class, class ``c`` is sufficient at ``n`` when its
  precision at ``n`` is >= 2/3 of its full-image precision (only classes the model
  predicts correctly at least once on full images can be judged).
* **deletion / insertion** (Petsiuk et al., RISE, 2018) -- the probability of the
  explained class as superpixels are greyed out (deletion) or revealed on grey
  (insertion) in ranking order. The x axis is the *fraction of superpixels* (0..1), so
  the trapezoid area under the curve is a mean probability in [0, 1]: lower is better
  for deletion, higher for insertion.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import precision_score

from cytokit import metrics
from cytokit.classes import CODES

#: The study's numbers of active superpixels (Table 6.2.1), then the full image.
STUDY_NS = (1, 5, 15, 25, 30, 35, 40, 45, "all")
#: The study's occlusion value on the 0-255 scale.
GREY = 128
#: Shah and Sheppard's sufficiency threshold, as a fraction of the full-image score.
THRESHOLD = 2 / 3
#: Curves :class:`SufficiencyResult` can judge against the threshold.
METRICS = ("precision_weighted", "precision_macro", "accuracy", "agreement")


# --------------------------------------------------------------------------- predicting
def classifier(model, batch_size: int = 256) -> Callable[[np.ndarray], np.ndarray]:
    """A function uint8 images -> probabilities that feeds the model pixel/255 in big batches.

    A Keras model is called through ``predict_on_batch`` (its compiled predict step,
    no per-call overhead) on chunks of ``batch_size``, with the input bit for bit the
    pipeline's ``pixel / 255`` in float32; any other callable is returned
    unchanged and must itself take a uint8 batch (N, H, W, 3).
    """
    if not hasattr(model, "predict_on_batch"):
        if not callable(model):
            raise TypeError(f"expected a Keras model or a callable, got {type(model).__name__}")
        return model

    def predict(images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        out = [np.asarray(model.predict_on_batch(np.divide(images[i:i + batch_size], np.float32(255),
                                                            dtype=np.float32)))
               for i in range(0, len(images), batch_size)]
        return np.concatenate(out, axis=0) if out else np.zeros((0, 0), np.float32)

    predict.batch_size = batch_size
    return predict


def predict_stream(predict: Callable, items: Iterable[tuple[object, np.ndarray]],
                   batch_size: int = 256) -> dict:
    """Probabilities for ``(key, image)`` pairs, predicted ``batch_size`` images at a time.

    Keeps at most one batch of occluded images in memory, so the full study (65k
    occluded images at 250 px) never needs 12 GB at once.
    """
    out, keys, batch = {}, [], []

    def flush():
        if batch:
            probs = np.asarray(predict(np.stack(batch)))
            out.update(zip(keys, probs))
            keys.clear()
            batch.clear()

    for key, image in items:
        keys.append(key)
        batch.append(image)
        if len(batch) >= batch_size:
            flush()
    flush()
    return out


def _batch_size(predict, batch_size):
    return int(batch_size or getattr(predict, "batch_size", 256))


# --------------------------------------------------------------------------- occlusion
def ranking_of(item) -> np.ndarray:
    """The superpixel order of an explanation object (``.ranking``) or of a plain sequence."""
    return np.asarray(getattr(item, "ranking", item))


def rank_map(segments: np.ndarray, ranking) -> np.ndarray:
    """Per pixel, the rank of its superpixel (0 = most important), to occlude by comparison."""
    ranking = ranking_of(ranking)
    segments = np.asarray(segments)
    ids = np.unique(segments)
    if len(ranking) != len(ids) or not np.array_equal(np.sort(ranking), ids):
        raise ValueError(f"ranking must order all {len(ids)} superpixel ids of the segments exactly once")
    pos = np.empty(int(ids.max()) + 1, dtype=np.int32)
    pos[ranking] = np.arange(len(ranking), dtype=np.int32)
    return pos[segments]


def keep_top(image_uint8: np.ndarray, segments: np.ndarray, ranking, n: int, grey: int = GREY) -> np.ndarray:
    """The explanation image: the top-``n`` superpixels as they are, ``grey`` everywhere else."""
    return _keep(image_uint8, rank_map(segments, ranking) < int(n), grey)


def grey_top(image_uint8: np.ndarray, segments: np.ndarray, ranking, n: int, grey: int = GREY) -> np.ndarray:
    """The deletion image: the top-``n`` superpixels greyed out, the rest as they are."""
    return _keep(image_uint8, rank_map(segments, ranking) >= int(n), grey)


def _keep(image, visible, fill):
    """``image`` where ``visible`` (H, W) or (B, H, W), ``fill`` (a value or an image) elsewhere.

    The mask is repeated over the channels first: numpy's ``where`` is ~4x slower when
    it has to broadcast a mask over a last axis of 3.
    """
    image = np.asarray(image)
    fill = np.asarray(fill, dtype=image.dtype)
    return np.where(np.repeat(visible[..., None], image.shape[-1], axis=-1), image, fill)


# --------------------------------------------------------------------------- sufficiency
def _n_key(n) -> str:
    return str(n)


def _check_ns(ns) -> list:
    out = []
    for n in ns:
        if n == "all" or (isinstance(n, (int, np.integer)) and n >= 1):
            out.append("all" if n == "all" else int(n))
        else:
            raise ValueError(f"each n must be a positive integer or 'all'; got {n!r}")
    return out


def sufficiency(model, images: Sequence[np.ndarray], segments_list: Sequence[np.ndarray], rankings,
                y_true, ns=STUDY_NS, class_names=CODES, full_probs=None, batch_size: int | None = None,
                grey: int = GREY, progress: bool = True) -> SufficiencyResult:
    """Predict every top-n explanation image and score it against the true labels.

    ``rankings`` are superpixel orders (or explanations with ``.ranking``); ``full_probs``
    (N, C), e.g. from the explanations, saves predicting the full images again. Images
    with fewer than ``n`` superpixels are left out of that ``n``; ``"all"`` is the full
    image for every image.
    """
    predict = classifier(model, batch_size or 256)
    bs = _batch_size(predict, batch_size)
    ns = _check_ns(ns)
    counts = np.array([len(np.unique(s)) for s in segments_list])
    y_true = np.asarray(y_true, dtype=np.int64)
    if not len(images) == len(segments_list) == len(rankings) == len(y_true):
        raise ValueError("images, segments_list, rankings and y_true must have the same length")
    full = _full_probs(predict, images, full_probs, bs)

    def items():
        for i in _progress(range(len(images)), progress, "sufficiency"):
            ranks = rank_map(segments_list[i], rankings[i])
            for n in ns:
                if n != "all" and n < counts[i]:  # n == count is the full image
                    yield (i, n), _keep(images[i], ranks < n, grey)

    probs = predict_stream(predict, items(), bs)
    by_n = {}
    for n in ns:
        p = np.full((len(images), full.shape[1]), np.nan, dtype=np.float32)
        for i in range(len(images)):
            if n == "all" or n <= counts[i]:
                p[i] = full[i] if n == "all" or n == counts[i] else probs[(i, n)]
        by_n[n] = p
    return SufficiencyResult(ns, y_true, full, by_n, counts, list(class_names))


def _full_probs(predict, images, full_probs, batch_size) -> np.ndarray:
    """Full-image probabilities: given ones (checked), or predicted once."""
    if full_probs is None:
        return _predict_all(predict, images, batch_size)
    full = np.asarray(full_probs, dtype=np.float32)
    if full.ndim != 2 or len(full) != len(images):
        raise ValueError(f"full_probs must be (N, C) for {len(images)} images; got shape {full.shape}")
    return full


def _predict_all(predict, images, batch_size) -> np.ndarray:
    probs = predict_stream(predict, enumerate(images), batch_size)
    return np.stack([probs[i] for i in range(len(images))]).astype(np.float32)


def plain(obj):
    """Python numbers, lists and dicts only, NaN as None: safe for strict JSON (metrics.json)."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [plain(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if np.isnan(obj) else float(obj)
    return obj


def _keep_none(df: pd.DataFrame, column: str) -> pd.DataFrame:
    """Hold an "n or None" column as Python objects, so None stays None (null in JSON), not NaN."""
    values = [None if v is None or (isinstance(v, float) and np.isnan(v)) else int(v) for v in df[column]]
    df[column] = pd.Series(values, index=df.index, dtype=object)
    return df


def _mean(x) -> float:
    return float(np.mean(x)) if len(x) else float("nan")


def _progress(it, progress: bool, desc: str):
    from cytokit.progress import bar

    return bar(it, enabled=progress, desc=desc, leave=False)


@dataclass
class SufficiencyResult:
    """Predictions on the top-n explanation images for every n, and the study's tables.

    ``probs[n]`` is (N, C) with NaN rows for images left out of ``n``; ``full`` holds the
    full-image probabilities, the reference of every comparison.
    """

    ns: list
    y_true: np.ndarray
    full: np.ndarray
    probs: dict
    n_superpixels: np.ndarray
    class_names: list

    # ---- raw material
    @property
    def full_pred(self) -> np.ndarray:
        return self.full.argmax(axis=1)

    def used(self, n) -> np.ndarray:
        """Boolean mask of the images that have at least ``n`` superpixels."""
        return ~np.isnan(self.probs[n][:, 0])

    def predictions(self, n) -> np.ndarray:
        """Predicted class per image at ``n`` (-1 for images left out)."""
        p = self.probs[n]
        out = np.full(len(p), -1, dtype=np.int64)
        used = self.used(n)
        out[used] = p[used].argmax(axis=1)
        return out

    def _scores(self, t, p) -> dict:
        if len(t) == 0:
            return {"accuracy": np.nan, "precision_weighted": np.nan, "precision_macro": np.nan}
        present = np.unique(t)
        return {
            "accuracy": float(np.mean(t == p)),
            "precision_weighted": float(precision_score(t, p, average="weighted", zero_division=0)),
            "precision_macro": float(precision_score(t, p, labels=present, average="macro", zero_division=0)),
        }

    # ---- tables
    def images_per_n(self) -> pd.DataFrame:
        """Images used at each n (the study's Table 6.2.1)."""
        return pd.DataFrame({"n": [_n_key(n) for n in self.ns],
                             "images": [int(self.used(n).sum()) for n in self.ns]}).set_index("n")

    def summary(self, metric: str = "precision_weighted", threshold: float = THRESHOLD) -> pd.DataFrame:
        """Per n: images, accuracy, weighted and macro precision, agreement with the full-image
        prediction, the full-image accuracy on the same images, and whether ``metric`` passes."""
        ref = self.reference(metric) * threshold
        rows = []
        for n in self.ns:
            used = self.used(n)
            t, p = self.y_true[used], self.predictions(n)[used]
            row = {"n": _n_key(n), "images": int(used.sum()), **self._scores(t, p),
                   "agreement": _mean(p == self.full_pred[used]),
                   "full_accuracy_same_images": _mean(self.full_pred[used] == t)}
            row["sufficient"] = bool(row[metric] >= ref)
            rows.append(row)
        return pd.DataFrame(rows).set_index("n")

    def reference(self, metric: str = "precision_weighted") -> float:
        """The full-image score (all images) that the threshold is a fraction of."""
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}; got {metric!r}")
        if metric == "agreement":
            return 1.0
        return self._scores(self.y_true, self.full_pred)[metric]

    def sufficient_n(self, metric: str = "precision_weighted", threshold: float = THRESHOLD):
        """Smallest numeric n whose ``metric`` reaches ``threshold`` x the full-image score (None if none)."""
        table = self.summary(metric, threshold)
        passing = [n for n in self.ns if n != "all" and table.loc[_n_key(n), "sufficient"]]
        return min(passing) if passing else None

    def thresholds(self, threshold: float = THRESHOLD) -> pd.DataFrame:
        """For every curve: the full-image score, the threshold and the smallest sufficient n."""
        rows = [{"metric": m, "full_image": self.reference(m), "threshold": threshold * self.reference(m),
                 "sufficient_n": self.sufficient_n(m, threshold)} for m in METRICS]
        return _keep_none(pd.DataFrame(rows).set_index("metric"), "sufficient_n")

    def per_class_precision(self) -> pd.DataFrame:
        """Precision of every class (rows) at every n (columns); 0 where a class is never predicted."""
        labels = np.arange(len(self.class_names))
        cols = {}
        for n in self.ns:
            used = self.used(n)
            cols[_n_key(n)] = (precision_score(self.y_true[used], self.predictions(n)[used], labels=labels,
                                               average=None, zero_division=0)
                               if used.any() else np.full(len(labels), np.nan))
        return pd.DataFrame(cols, index=pd.Index(self.class_names, name="code"))

    def per_class_sufficiency(self, threshold: float = THRESHOLD) -> pd.DataFrame:
        """Per class: full-image precision, its 2/3 threshold, every sufficient n and the smallest.

        Classes never predicted correctly on full images (precision 0) are not judged
        (``judged`` False), since any n would trivially reach 0.
        """
        prec = self.per_class_precision()
        full = pd.Series(precision_score(self.y_true, self.full_pred, labels=np.arange(len(self.class_names)),
                                         average=None, zero_division=0), index=prec.index)
        numeric = [n for n in self.ns if n != "all"]
        rows = []
        for code in prec.index:
            judged = bool(full[code] > 0)
            ok = [n for n in numeric if judged and prec.loc[code, _n_key(n)] >= threshold * full[code]]
            rows.append({"code": code, "support": int(np.sum(self.y_true == self.class_names.index(code))),
                         "full_precision": float(full[code]), "threshold": float(threshold * full[code]),
                         "judged": judged, "sufficient_ns": ok, "smallest_sufficient_n": min(ok) if ok else None})
        return _keep_none(pd.DataFrame(rows).set_index("code"), "smallest_sufficient_n")

    def confusion(self, n, normalize: bool = False) -> pd.DataFrame:
        """Confusion matrix (rows true, columns predicted) of the images used at ``n``."""
        used = self.used(n)
        return metrics.confusion(self.y_true[used], self.predictions(n)[used], self.class_names, normalize)

    def absorbing(self) -> pd.DataFrame:
        """How many occluded images each class takes (rows predicted class, columns n)."""
        labels = np.arange(len(self.class_names))
        cols = {}
        for n in self.ns:
            p = self.predictions(n)
            cols[_n_key(n)] = np.bincount(p[p >= 0], minlength=len(labels))
        return pd.DataFrame(cols, index=pd.Index(self.class_names, name="predicted"))

    def top_absorbers(self, k: int = 3) -> pd.DataFrame:
        """Per n, the ``k`` classes that take most predictions and their share of the images used."""
        counts = self.absorbing()
        rows = []
        for col in counts.columns:
            share = counts[col] / max(int(counts[col].sum()), 1)
            for rank, (code, s) in enumerate(share.sort_values(ascending=False).head(k).items(), start=1):
                rows.append({"n": col, "rank": rank, "code": code, "share": float(s)})
        return pd.DataFrame(rows)

    def to_dict(self, metric: str = "precision_weighted", threshold: float = THRESHOLD) -> dict:
        """Plain numbers for metrics.json."""
        pcs = self.per_class_sufficiency(threshold)
        return plain({
            "metric": metric,
            "threshold_fraction": threshold,
            "full_image": self.reference(metric),
            "sufficient_n": self.sufficient_n(metric, threshold),
            "images_per_n": self.images_per_n()["images"].to_dict(),
            "summary": self.summary(metric, threshold).to_dict(orient="index"),
            "thresholds": self.thresholds(threshold).to_dict(orient="index"),
            "per_class_smallest_sufficient_n": pcs.loc[pcs["judged"], "smallest_sufficient_n"].to_dict(),
        })


# --------------------------------------------------------------------------- deletion / insertion
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
    bs = _batch_size(predict, batch_size)
    labels = np.asarray(labels, dtype=np.int64)
    full = _full_probs(predict, images, full_probs, bs)
    grey_probs = np.asarray(predict(np.full((1, *np.shape(images[0])), grey, np.uint8)))[0]

    def items():
        for i in _progress(range(len(images)), progress, "deletion/insertion"):
            s = len(np.unique(segments_list[i]))
            for method, rankings in rankings_by_method.items():
                ranks = rank_map(segments_list[i], rankings[i])
                for m in curve_points(s, steps)[1:-1]:
                    yield (i, method, "deletion", m), _keep(images[i], ranks >= m, grey)
                    yield (i, method, "insertion", m), _keep(images[i], ranks < m, grey)

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
        return plain({m: {k: s.loc[m, k] for k in s.columns} for m in s.index})
