"""How far each fill takes an image from the data, measured with the model itself.

A fill that leaves the images the network was trained on changes what an occlusion test
answers (Hooker et al., 2019; Rong et al., 2022; Blücher et al., 2024, whose R-OMS score
asks the same of the model's output). Two measures, both read by the model:

- **feature distance**: the penultimate layer's features (the input of the last Dense
  layer) of a filled image, its distance to the nearest *other* real image of the sample,
  as a share of the mean distance between the class centroids of the real images. A real
  image's own distance to its nearest other real image is the level a filled image would
  show if it looked like data; the difference, image by image, is the fill's excess.
- **absorption**: the share of filled images the network calls one of the classes that
  take occluded images (the study saw ART and NIF), beside that share on real images.

Each is read with a random ``share`` of every image's superpixels hidden (seeded per
image; 1.0 hides everything, the fully filled image).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
    """Visible mask (H, W) with a random ``share`` of the superpixels hidden (at least one), seeded by ``seed`` and the share."""
    ids = np.unique(segments)
    k = max(1, int(round(share * len(ids))))
    hidden = np.random.default_rng([int(seed), int(round(share * 1000))]).choice(ids, k, replace=False)
    return ~np.isin(segments, hidden)


def between_class_distance(feats: np.ndarray, y: np.ndarray) -> float:
    """Mean Euclidean distance between the centroids of the classes with :data:`MIN_CENTROID` or more images."""
    classes = [c for c in np.unique(y) if np.sum(y == c) >= MIN_CENTROID]
    if len(classes) < 2:
        raise ValueError("the between-class distance needs two classes with at least two images each")
    centroids = np.stack([feats[y == c].mean(axis=0) for c in classes])
    d = np.linalg.norm(centroids[:, None] - centroids[None], axis=-1)
    return float(d[np.triu_indices(len(classes), 1)].mean())


def nearest_other(queries: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per query i, the distance to the nearest row of ``reference`` other than row i (same length)."""
    d = cdist(queries, reference)
    np.fill_diagonal(d, np.inf)
    return d.min(axis=1)


@dataclass(frozen=True)
class FillDistance:
    """Per fill and hidden share: feature distance and excess over real images, absorption; with intervals."""

    table: pd.DataFrame  # rows (fill, share)
    excess: dict  # (fill, share) -> statistics.Comparison (filled - real, per image)
    real: dict  # the real images' own level: distance (value, ci95) and absorption (value, ci95)
    between_class: float
    absorbers: tuple

    def closest(self, share: float = 1.0) -> list[str]:
        """The fills from the closest to the data to the farthest at one hidden share."""
        rows = self.table.xs(share, level="share")
        return rows.sort_values("distance").index.tolist()

    def facts(self) -> dict:
        """metrics.json's ``fill_distance`` entry."""
        out = {}
        for (fill, share), r in self.table.iterrows():
            out.setdefault(fill, {})[f"{share:g}"] = {
                "distance": {"value": r.distance, "ci95": [r.distance_low, r.distance_high]},
                "excess_over_real": self.excess[(fill, share)].as_dict(),
                "absorbed": {"value": r.absorbed, "ci95": [r.absorbed_low, r.absorbed_high]},
                "images": int(r.images)}
        shares = sorted({s for _, s in self.table.index})
        return to_jsonable({"by_fill": out, "real": self.real, "between_class_distance": self.between_class,
                            "absorbers": list(self.absorbers), "closest_first": {f"{s:g}": self.closest(s) for s in shares},
                            "measure": "distance of the penultimate features to the nearest other real image, as a "
                                       "share of the mean distance between class centroids"})


def _rate(hits) -> tuple[float, float, float]:
    hits = np.asarray(hits, bool)
    low, high = statistics.wilson(int(hits.sum()), len(hits))
    return float(hits.mean()), low, high


def fill_distance(model, images: Sequence[np.ndarray], segments_list: Sequence[np.ndarray], y_true,
                  class_names: Sequence[str], kinds=fills.FILLS, shares=SHARES, absorbers=ABSORBERS, seed: int = 0,
                  resamples: int = statistics.RESAMPLES, progress: bool = True) -> FillDistance:
    """Feature distance and absorption of every fill at every hidden share, beside the real images' own.

    The hidden superpixels of image ``i`` at a share are the same for every fill (seeded
    from ``seed``, ``i`` and the share), so the fills are compared on the same masks.
    """
    y = np.asarray(y_true)
    extractor = feature_model(model)
    real = features(extractor, images)
    scale = between_class_distance(real, y)
    absorbing = [list(class_names).index(c) for c in absorbers if c in class_names]
    last = model.layers[-1]

    def absorbed(feats):
        return np.isin(np.asarray(last(feats.astype(np.float32))).argmax(axis=1), absorbing)

    real_distance = nearest_other(real, real) / scale
    iv = statistics.mean_interval(real_distance, resamples, seed)
    real_rate = _rate(absorbed(real))
    rows, excess = [], {}
    for kind in progress_bar(kinds, enabled=progress, desc="fill distance", leave=False):
        for share in shares:
            filled = [fills.fill(im, seg, hidden_mask(seg, share, image_seed(seed, i)), kind,
                                 seed=image_seed(seed, i))
                      for i, (im, seg) in enumerate(zip(images, segments_list))]
            feats = features(extractor, filled)
            distance = nearest_other(feats, real) / scale
            div = statistics.mean_interval(distance, resamples, seed)
            rate = _rate(absorbed(feats))
            excess[(kind, share)] = statistics.paired_mean_difference(distance, real_distance, (kind, "real"),
                                                                      "feature distance", resamples, seed)
            rows.append({"fill": kind, "share": share, "distance": div.estimate, "distance_low": div.low,
                         "distance_high": div.high, "absorbed": rate[0], "absorbed_low": rate[1],
                         "absorbed_high": rate[2], "images": len(filled)})
    return FillDistance(pd.DataFrame(rows).set_index(["fill", "share"]), excess,
                        {"distance": {"value": iv.estimate, "ci95": iv.as_list()},
                         "absorbed": {"value": real_rate[0], "ci95": list(real_rate[1:])}},
                        scale, tuple(c for c in absorbers if c in class_names))
