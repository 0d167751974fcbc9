"""A model's class probabilities on a split, saved beside the chapter that made them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cytokit import io
from cytokit.evaluation import metrics, statistics


def predict(model, ds) -> np.ndarray:
    """Class probabilities for every image of a (non-shuffled) dataset, batched."""
    return np.asarray(model.predict(ds, verbose=0))


def _save_predictions(path, y_true, probs, paths, class_names) -> Path:
    """Labels, probabilities and file paths of one split, for later chapters."""
    with io.atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, y_true=np.asarray(y_true), probs=np.asarray(probs, dtype=np.float32),
                            paths=np.asarray(list(paths)), class_names=np.asarray(list(class_names)))
    return Path(path)


def _load_predictions(path) -> dict:
    """Saved predictions with ``y_pred`` (the argmax) added."""
    with np.load(path, allow_pickle=False) as z:
        out = {k: z[k] for k in z.files}
    out["y_pred"] = out["probs"].argmax(axis=1)
    out["class_names"] = [str(c) for c in out["class_names"]]
    out["paths"] = [str(p) for p in out["paths"]]
    return out


def predict_timed(model, ds) -> tuple[np.ndarray, float]:
    """Probabilities for a batched dataset and the seconds the predictions took."""
    start = time.perf_counter()
    probs = predict(model, ds)
    return probs, time.perf_counter() - start


@dataclass
class Evaluation:
    """One model's predictions on one split, with the scores every chapter reports."""

    y_true: np.ndarray
    probs: np.ndarray
    class_names: list
    paths: list = field(default_factory=list)
    seconds: float | None = None

    @property
    def y_pred(self) -> np.ndarray:
        return self.probs.argmax(axis=1)

    @property
    def scores(self) -> dict:
        """The headline metrics (:func:`cytokit.evaluation.metrics.headline`)."""
        return metrics.headline(self.y_true, self.y_pred, self.class_names)

    @property
    def classes_present(self) -> int:
        """The classes among the true labels: the set balanced accuracy and macro F1 average over."""
        return int(len(np.unique(self.y_true)))

    def intervals(self, seed: int = 0) -> dict[str, statistics.Interval]:
        """Each headline metric with its 95 % interval (:mod:`cytokit.evaluation.statistics`)."""
        key = ("_intervals", seed)
        if key not in self.__dict__:
            self.__dict__[key] = statistics.intervals(self.y_true, self.y_pred, len(self.class_names),
                                                      statistics.METRICS, seed=seed)
        return self.__dict__[key]

    def per_class_intervals(self) -> pd.DataFrame:
        """Per-class precision and recall with Wilson intervals."""
        return statistics.per_class_intervals(self.y_true, self.y_pred, self.class_names)

    def same_images(self, other: Evaluation) -> bool:
        """True when both evaluations predicted the same images in the same order."""
        return np.array_equal(self.y_true, other.y_true) and (not self.paths or not other.paths
                                                              or list(self.paths) == list(other.paths))

    @classmethod
    def from_labels(cls, y_true, y_pred, class_names, paths=()) -> Evaluation:
        """An evaluation of a classifier that gives labels only (its probabilities one-hot)."""
        probs = np.eye(len(class_names), dtype=np.float32)[np.asarray(y_pred)]
        return cls(np.asarray(y_true), probs, list(class_names), list(paths))

    def per_class(self) -> pd.DataFrame:
        return metrics.per_class(self.y_true, self.y_pred, self.class_names)

    def confusion(self, normalize: bool = False) -> pd.DataFrame:
        return metrics.confusion(self.y_true, self.y_pred, self.class_names, normalize)

    def save(self, path) -> Path:
        return _save_predictions(path, self.y_true, self.probs, self.paths, self.class_names)

    @classmethod
    def load(cls, path) -> Evaluation:
        """Predictions saved by :meth:`save` (or :func:`_save_predictions`)."""
        saved = _load_predictions(path)
        return cls(saved["y_true"], saved["probs"], saved["class_names"], saved["paths"])
