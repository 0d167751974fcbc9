"""The study's sufficiency test: do the top-n superpixels alone keep the model's call?

An image with fewer than ``n`` superpixels is left out of that ``n`` (the study's Table
6.2.1); ``"all"`` is the full image. ``n`` *suffices* when the explanation images' weighted
precision at ``n`` reaches 2/3 of the full images' (the study's rule, after Shah and
Sheppard); per class, a class's own precision against its full-image precision.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import precision_score

from cytokit.data.taxonomy import CODES
from cytokit.evaluation import metrics, statistics
from cytokit.io import to_jsonable
from cytokit.progress import bar as progress_bar
from cytokit.xai.occlusion import GREY, batch_size_of, classifier, compose, predict_stream, rank_map


#: The study's numbers of active superpixels (Table 6.2.1), then the full image.
STUDY_NS = (1, 5, 15, 25, 30, 35, 40, 45, "all")


#: Shah and Sheppard's sufficiency threshold, as a fraction of the full-image score.
THRESHOLD = 2 / 3


#: Curves :class:`SufficiencyResult` can judge against the threshold.
METRICS = ("precision_weighted", "precision_macro", "accuracy", "balanced_accuracy", "agreement")

#: The criteria a sufficient n is read under: the study's weighted precision, and two that a
#: collapse of the explanation images into one class cannot keep high.
CRITERIA = ("precision_weighted", "accuracy", "balanced_accuracy")


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


def grey_filler(grey: int = GREY) -> Callable:
    """The study's fill: every hidden pixel grey."""
    return lambda i, image, segments, visible: compose(image, visible, grey)


def sufficiency(model, images: Sequence[np.ndarray], segments_list: Sequence[np.ndarray], rankings,
                y_true, ns=STUDY_NS, class_names=CODES, full_probs=None, batch_size: int | None = None,
                filler: Callable | None = None, progress: bool = True) -> SufficiencyResult:
    """Keep each image's top-n superpixels, fill the rest, predict: the study's test at every n.

    ``rankings`` are superpixel orders (or explanations with ``.ranking``); the top ``n``
    stay visible and ``filler(i, image, segments, visible) -> image`` fills the rest
    (default: grey 128, the study's). ``full_probs`` (N, C), e.g. from the explanations,
    saves predicting the full images again. Images with fewer than ``n`` superpixels are
    left out of that ``n``; ``"all"`` is the full image for every image.
    """
    filler = filler or grey_filler()
    ns, y_true = _check_ns(ns), np.asarray(y_true, dtype=np.int64)
    _check_lengths(images, segments_list, rankings, y_true)
    counts = np.array([len(np.unique(s)) for s in segments_list])
    predict = classifier(model, batch_size or 256)

    def explanation_images():
        for i in progress_bar(range(len(images)), enabled=progress, desc="sufficiency", leave=False):
            ranks = rank_map(segments_list[i], rankings[i])  # 0 for the most relevant superpixel
            for n in ns:
                if n != "all" and n < counts[i]:  # n == count is the full image; n > count leaves it out
                    yield (i, n), filler(i, images[i], segments_list[i], ranks < n)

    bs = batch_size_of(predict, batch_size)
    full = full_probabilities(predict, images, full_probs, bs)
    probs = predict_stream(predict, explanation_images(), bs)
    return SufficiencyResult(ns, y_true, full, _by_n(probs, full, ns, counts), counts, list(class_names))


def _check_lengths(images, segments_list, rankings, y_true) -> None:
    if not len(images) == len(segments_list) == len(rankings) == len(y_true):
        raise ValueError("images, segments_list, rankings and y_true must have the same length")


def _by_n(probs: dict, full: np.ndarray, ns: list, counts: np.ndarray) -> dict:
    """Per n, the (N, C) probabilities of the explanation images: the full image's where n covers every
    superpixel, NaN rows for images left out."""
    by_n = {}
    for n in ns:
        p = np.full((len(full), full.shape[1]), np.nan, dtype=np.float32)
        for i in range(len(full)):
            if n == "all" or n <= counts[i]:
                p[i] = full[i] if n == "all" or n == counts[i] else probs[(i, n)]
        by_n[n] = p
    return by_n


def full_probabilities(predict, images, full_probs, batch_size) -> np.ndarray:
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


def _keep_none(df: pd.DataFrame, column: str) -> pd.DataFrame:
    """Hold an "n or None" column as Python objects, so None stays None (null in JSON), not NaN."""
    values = [None if v is None or (isinstance(v, float) and np.isnan(v)) else int(v) for v in df[column]]
    df[column] = pd.Series(values, index=df.index, dtype=object)
    return df


def _mean(x) -> float:
    return float(np.mean(x)) if len(x) else float("nan")


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

    def take(self, idx) -> SufficiencyResult:
        """The same result on the images at positions ``idx`` only (a subset explained once, read again)."""
        idx = np.asarray(idx, dtype=np.int64)
        probs = {n: p[idx] for n, p in self.probs.items()}
        return SufficiencyResult(list(self.ns), self.y_true[idx], self.full[idx], probs,
                                 np.asarray(self.n_superpixels)[idx], list(self.class_names))

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
            return {"accuracy": np.nan, "balanced_accuracy": np.nan, "precision_weighted": np.nan,
                    "precision_macro": np.nan}
        present = np.unique(t)
        cm = statistics.confusions(t, p, len(self.class_names))
        return {
            "accuracy": float(np.mean(t == p)),
            "balanced_accuracy": float(statistics.scores(cm)["balanced_accuracy"][0]),
            "precision_weighted": float(precision_score(t, p, average="weighted", zero_division=0)),
            "precision_macro": float(precision_score(t, p, labels=present, average="macro", zero_division=0)),
        }

    # ---- tables
    def images_per_n(self) -> pd.DataFrame:
        """Images used at each n (the study's Table 6.2.1)."""
        return pd.DataFrame({"n": [_n_key(n) for n in self.ns],
                             "images": [int(self.used(n).sum()) for n in self.ns]}).set_index("n")

    def summary(self, metric: str = "precision_weighted", threshold: float = THRESHOLD) -> pd.DataFrame:
        """Per n: images, accuracy, balanced accuracy, weighted and macro precision, agreement with the full-image
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

    # ---- uncertainty (images resampled with replacement)
    def numeric_ns(self) -> list[int]:
        return [n for n in self.ns if n != "all"]

    def per_image_accuracy(self) -> np.ndarray:
        """Per image, the share of the numeric n at which its explanation image is still classified right."""
        hits = np.stack([np.where(self.used(n), self.predictions(n) == self.y_true, np.nan)
                         for n in self.numeric_ns()], axis=1)
        with np.errstate(invalid="ignore"):
            return np.nanmean(hits, axis=1)

    def _batch_scores(self, idx: np.ndarray, n) -> dict:
        """Accuracy, balanced accuracy and weighted precision at ``n`` for each row of image indices (B, N)."""
        k = len(self.class_names)
        pred = (self.full_pred if n == "all" else self.predictions(n))[idx]
        used = pred >= 0
        t = np.where(used, self.y_true[idx], k)
        p = np.where(used, pred, k)
        cm = statistics.confusions(t, p, k + 1)[:, :k, :k]
        s = statistics.scores(cm)
        return {"accuracy": s["accuracy"], "balanced_accuracy": s["balanced_accuracy"],
                "precision_weighted": s["precision"]}

    def curve_intervals(self, resamples: int = statistics.RESAMPLES, seed: int = 0) -> pd.DataFrame:
        """Per n: images used, accuracy and weighted precision of their calls, each with its 95 % interval
        (:func:`cytokit.evaluation.statistics.intervals`, over the classes of the images used)."""
        rows = []
        for n in self.ns:
            used = self.used(n)
            row = {"n": _n_key(n), "images": int(used.sum())}
            if used.any():
                pred = (self.full_pred if n == "all" else self.predictions(n))[used]
                ivs = statistics.intervals(self.y_true[used], pred, len(self.class_names), ("accuracy", "precision"),
                                           resamples, seed)
            else:
                ivs = {m: statistics.Interval(*[float("nan")] * 3) for m in ("accuracy", "precision")}
            for m, key in (("accuracy", "accuracy"), ("precision", "precision_weighted")):
                row.update({key: ivs[m].estimate, f"{key}_low": ivs[m].low, f"{key}_high": ivs[m].high})
            rows.append(row)
        return pd.DataFrame(rows).set_index("n")

    def sufficient_n_interval(self, metric: str = "precision_weighted", threshold: float = THRESHOLD,
                              resamples: int = statistics.RESAMPLES, seed: int = 0) -> tuple:
        """(smallest sufficient n, low, high) over resampled images; None where no tested n suffices."""
        numeric = self.numeric_ns()

        def position(idx):
            ref = self._batch_scores(idx, "all")[metric] * threshold
            ok = np.stack([self._batch_scores(idx, n)[metric] >= ref for n in numeric], axis=-1)
            return np.where(ok.any(axis=-1), ok.argmax(axis=-1), len(numeric)).astype(float)

        n_img = len(self.y_true)
        point = int(position(np.arange(n_img)[None])[0])
        low, high = statistics.bootstrap_images(position, n_img, resamples, seed)

        def as_n(pos):
            return None if pos >= len(numeric) else numeric[pos]
        return as_n(point), as_n(int(np.floor(low))), as_n(int(np.ceil(high)))

    def to_dict(self, metric: str = "precision_weighted", threshold: float = THRESHOLD) -> dict:
        """Plain numbers for metrics.json."""
        pcs = self.per_class_sufficiency(threshold)
        return to_jsonable({
            "metric": metric,
            "threshold_fraction": threshold,
            "full_image": self.reference(metric),
            "sufficient_n": self.sufficient_n(metric, threshold),
            "images_per_n": self.images_per_n()["images"].to_dict(),
            "summary": self.summary(metric, threshold).to_dict(orient="index"),
            "thresholds": self.thresholds(threshold).to_dict(orient="index"),
            "per_class_smallest_sufficient_n": pcs.loc[pcs["judged"], "smallest_sufficient_n"].to_dict(),
        })
