"""How far each fill takes an image from the data, measured with the model itself.

A fill that leaves the images the network was trained on changes what an occlusion test
answers (Hooker et al., 2019; Rong et al., 2022; Blücher et al., 2024, who measure how far
occluded samples fall outside the model's scope). All four measures read the model's
penultimate features (the input of its last Dense layer), distances as a share of the
mean distance between the real images' class centroids:

- **distance to the data**: from a filled image to the nearest *other* real image of the
  sample (a nearest-neighbour out-of-distribution score, Sun et al., 2022); a real image's distance to its
  nearest other real image is the level of data, and the difference image by image is
  the fill's excess. A fill can score low here by collapsing every image onto one spot
  where some real images lie (grey images onto artefacts), so the next two say more:
- **shift**: from a filled image to its own original: how much the fill changes what the
  model sees, for the same hidden superpixels;
- **spread**: the mean distance between filled images over that between their originals:
  1 when filled images stay as varied as the data, near 0 when the model sees them all alike;
- **absorption**: the share called one of the classes that take occluded images (the
  study saw ART and NIF), beside that share on the real images.

Each is read with a random ``share`` of every image's superpixels hidden, the same
superpixels for every fill (1.0 hides everything: the fully filled image).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist

from cytokit.evaluation import statistics
from cytokit.io import to_jsonable
from cytokit.progress import bar as progress_bar
from cytokit.xai import fills
from cytokit.xai.explain import image_seed

#: The classes that took most occluded images in the study.
ABSORBERS = ("ART", "NIF")
#: Shares of superpixels hidden: half of them, and all of them.
SHARES = (0.5, 1.0)
#: Classes with fewer real images than this have no centroid in the between-class distance.
MIN_CENTROID = 2
#: Measures with an interval over images, as the table names them.
MEASURES = ("distance", "shift", "spread", "absorbed")


def feature_model(model):
    """A model image -> penultimate features (the input of the last layer), sharing ``model``'s weights."""
    import keras

    if isinstance(model, keras.Sequential):
        inputs = keras.Input(shape=model.input_shape[1:])
        x = inputs
        for layer in model.layers[:-1]:
            x = layer(x)
        return keras.Model(inputs, x)
    return keras.Model(model.inputs, model.layers[-1].input)


def features(extractor, images, batch_size: int = 128) -> np.ndarray:
    """(N, F) features of uint8 images, ``batch_size`` at a time."""
    images = np.asarray(images)
    return np.concatenate([np.asarray(extractor.predict_on_batch(images[i:i + batch_size]), np.float64)
                           for i in range(0, len(images), batch_size)])


def hidden_mask(segments: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Visible mask (H, W) with a random ``share`` of the superpixels hidden (at least one), seeded by ``seed``
    and the share."""
    ids = np.unique(segments)
    k = max(1, int(round(share * len(ids))))
    hidden = np.random.default_rng([int(seed), int(round(share * 1000))]).choice(ids, k, replace=False)
    return ~np.isin(segments, hidden)


def between_class_distance(feats: np.ndarray, y: np.ndarray) -> float:
    """Mean Euclidean distance between the centroids of the classes with :data:`MIN_CENTROID` or more images
    (of every class, when fewer than two have that many: a toy sample)."""
    classes = [c for c in np.unique(y) if np.sum(y == c) >= MIN_CENTROID]
    if len(classes) < 2:
        classes = list(np.unique(y))
    if len(classes) < 2:
        raise ValueError("the between-class distance needs images of two classes")
    centroids = np.stack([feats[y == c].mean(axis=0) for c in classes])
    d = cdist(centroids, centroids)
    return float(d[np.triu_indices(len(classes), 1)].mean())


def nearest_other(queries: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per query i, the distance to the nearest row of ``reference`` other than row i (same length)."""
    d = cdist(queries, reference)
    np.fill_diagonal(d, np.inf)
    return d.min(axis=1)


def spread_interval(filled: np.ndarray, real: np.ndarray, resamples: int = statistics.RESAMPLES,
                    seed: int = 0) -> statistics.Interval:
    """Mean pairwise distance among filled images over that among their originals, images resampled together
    (undefined, NaN, for fewer than two images).

    A percentile bootstrap drawn here rather than by ``scipy.stats.bootstrap``: a resample that
    draws one image only has no pairs, so its ratio is undefined and is left out (on a handful of
    images one resample in a few dozen is such; scipy would turn the whole interval into NaN).
    """
    if len(filled) < 2:
        return statistics.Interval(float("nan"), float("nan"), float("nan"))
    df, dr = cdist(filled, filled), cdist(real, real)

    def ratio(idx):  # with c the times each image is drawn, the sum over pairs is c' D c (D's diagonal is 0)
        idx = np.atleast_2d(idx)
        c = np.zeros(idx.shape)
        np.add.at(c, (np.arange(len(idx))[:, None], idx), 1)
        top, bottom = np.einsum("bi,ij,bj->b", c, df, c), np.einsum("bi,ij,bj->b", c, dr, c)
        return np.divide(top, bottom, out=np.full(len(idx), np.nan), where=bottom > 0)

    draws = ratio(np.random.default_rng(seed).integers(0, len(filled), (int(resamples), len(filled))))
    alpha = (1 - statistics.CONFIDENCE) / 2
    low, high = np.nanquantile(draws, [alpha, 1 - alpha])
    return statistics.Interval(float(ratio(np.arange(len(filled)))[0]), float(low), float(high))


@dataclass(frozen=True)
class FillDistance:
    """Per fill and hidden share: distance to the data, shift, spread and absorption with intervals."""

    table: pd.DataFrame  # rows (fill, share); a value, low and high per measure, and images
    excess: dict  # (fill, share) -> statistics.Comparison: distance to the data, filled - real, per image
    real: dict  # the real images' own level: distance and absorption (value, ci95)
    between_class: float
    absorbers: tuple
    per_image: dict = field(default_factory=dict)  # (fill, share) -> {"distance": (N,), "shift": (N,)}

    def paired(self, a: str, b: str, share: float = 0.5, measure: str = "shift") -> statistics.Comparison:
        """Fill ``a`` minus fill ``b`` in ``measure`` (distance or shift) over the same images and hidden
        superpixels: negative when ``a`` stays closer."""
        x, y = self.per_image[(a, share)][measure], self.per_image[(b, share)][measure]
        return statistics.paired_mean_difference(x, y, (a, b), measure)

    def closest(self, share: float = 0.5, measure: str = "shift") -> list[str]:
        """The fills from the least to the most changed by ``measure`` at one hidden share (spread: largest first)."""
        rows = self.table.xs(share, level="share")
        return rows.sort_values(measure, ascending=measure != "spread").index.tolist()

    def facts(self) -> dict:
        """metrics.json's ``fill_distance`` entry."""
        out = {}
        for (fill, share), r in self.table.iterrows():
            entry = {m: {"value": r[m], "ci95": [r[f"{m}_low"], r[f"{m}_high"]]} for m in MEASURES}
            entry.update({"excess_over_real": self.excess[(fill, share)].as_dict(), "images": int(r["images"])})
            out.setdefault(fill, {})[f"{share:g}"] = entry
        shares = sorted({s for _, s in self.table.index})
        return to_jsonable({"by_fill": out, "real": self.real, "between_class_distance": self.between_class,
                            "absorbers": list(self.absorbers),
                            "least_shift_first": {f"{s:g}": self.closest(s, "shift") for s in shares},
                            "units": "penultimate-feature distances as a share of the mean distance between the real "
                                     "images' class centroids; spread as a ratio; absorbed as a share of images"})


def _rate(hits) -> tuple[float, float, float]:
    hits = np.asarray(hits, bool)
    low, high = statistics.wilson(int(hits.sum()), len(hits))
    return float(hits.mean()), low, high


def fill_distance(model, images: Sequence[np.ndarray], segments_list: Sequence[np.ndarray], y_true,
                  class_names: Sequence[str], kinds=fills.FILLS, shares=SHARES, absorbers=ABSORBERS, seed: int = 0,
                  resamples: int = statistics.RESAMPLES, workers: int = 1, progress: bool = True) -> FillDistance:
    """Every measure of every fill at every hidden share, beside the real images' own level.

    The hidden superpixels of image ``i`` at a share are the same for every fill (seeded
    ``image_seed(seed, i)`` and the share), so the fills are compared on the same masks.
    With ``workers`` > 1 the imputations are solved in that many processes.
    """
    pool = fills.processes(workers) if workers > 1 and set(kinds) & fills.MASK_DEPENDENT else None
    try:
        return _fill_distance(model, images, segments_list, y_true, class_names, kinds, shares, absorbers, seed,
                              resamples, pool, progress)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def _filled(images, segments_list, kind: str, share: float, seed: int, pool) -> list[np.ndarray]:
    """Every image under ``kind`` with its seeded ``share`` of superpixels hidden (imputations in ``pool``)."""
    masks = [hidden_mask(seg, share, image_seed(seed, i)) for i, seg in enumerate(segments_list)]
    if pool is None or kind not in fills.MASK_DEPENDENT:
        return [fills.fill(im, seg, m, kind, seed=image_seed(seed, i))
                for i, (im, seg, m) in enumerate(zip(images, segments_list, masks))]
    futures = [fills.submit_imputations(im, [m], image_seed(seed, i), fills.NOISE, pool)[0]
               for i, (im, m) in enumerate(zip(images, masks))]
    return [f.result() for f in futures]


def _fill_distance(model, images, segments_list, y_true, class_names, kinds, shares, absorbers, seed, resamples, pool,
                   progress) -> FillDistance:
    y = np.asarray(y_true)
    extractor = feature_model(model)
    real = features(extractor, images)
    scale = between_class_distance(real, y)
    absorbing = [list(class_names).index(c) for c in absorbers if c in class_names]
    last = model.layers[-1]

    def absorbed(feats):
        return np.isin(np.asarray(last(feats.astype(np.float32))).argmax(axis=1), absorbing)

    real_distance = nearest_other(real, real) / scale
    iv = statistics.mean_interval(real_distance)
    real_rate = _rate(absorbed(real))
    rows, excess, per_image = [], {}, {}
    for kind in progress_bar(kinds, enabled=progress, desc="fill distance", leave=False):
        for share in shares:
            feats = features(extractor, _filled(images, segments_list, kind, share, seed, pool))
            distance = nearest_other(feats, real) / scale
            shift = np.linalg.norm(feats - real, axis=1) / scale
            found = {"distance": statistics.mean_interval(distance),
                     "shift": statistics.mean_interval(shift),
                     "spread": spread_interval(feats, real, resamples, seed),
                     "absorbed": statistics.Interval(*_rate(absorbed(feats)))}
            excess[(kind, share)] = statistics.paired_mean_difference(distance, real_distance, (kind, "real"),
                                                                      "distance to the data")
            per_image[(kind, share)] = {"distance": distance, "shift": shift}
            row = {"fill": kind, "share": share, "images": len(feats)}
            for m, v in found.items():
                row.update({m: v.estimate, f"{m}_low": v.low, f"{m}_high": v.high})
            rows.append(row)
    return FillDistance(pd.DataFrame(rows).set_index(["fill", "share"]), excess,
                        {"distance": {"value": iv.estimate, "ci95": iv.as_list()},
                         "absorbed": {"value": real_rate[0], "ci95": list(real_rate[1:])}},
                        scale, tuple(c for c in absorbers if c in class_names), per_image)
