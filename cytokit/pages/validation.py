"""Chapters 02-04's validation results: a model's scores with intervals, paired verdicts, the study's claims.

A step returns a frozen result carrying its facts (``KEYS``) and sentence
(:mod:`cytokit.pages.training_words`); the notebook records it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from cytokit.book.chapter import MODEL_CHAPTERS, Chapter, ChapterData, MissingArtifact
from cytokit.data import embedded
from cytokit.evaluation import metrics, statistics
from cytokit.evaluation.predictions import Evaluation
from cytokit.models import colour_control as control
from cytokit.pages import training_words as say
from cytokit.pages import words
from cytokit.pages.training import SeedDifference


@dataclass(frozen=True)
class Scores:
    """A model's headline metrics on some images, each with its 95 % interval and as text for the prose."""

    evaluation: Evaluation
    KEYS: ClassVar[tuple[str, ...]] = (*(f"{m}{end}" for m in (*metrics.HEADLINE_KEYS, "macro_f1")
                                         for end in ("", "_ci95", "_text")), "classes")

    def facts(self) -> dict:
        out = {}
        for name, iv in self.evaluation.intervals().items():
            if name in metrics.HEADLINE_KEYS or name == "macro_f1":
                out.update({name: iv.estimate, f"{name}_ci95": iv.as_list(),
                            f"{name}_text": words.with_interval(iv.estimate, iv.low, iv.high)})
        return {**out, "classes": self.evaluation.classes_present}


def scored(ev: Evaluation) -> Scores:
    """An evaluation's headline metrics with their intervals."""
    return Scores(ev)


def colour_control(data: ChapterData, image_size: int, seed: int = 0) -> Evaluation:
    """A logistic regression on colour histograms alone, on the validation images."""
    hx_train, hy_train = control.dataset_histograms(data.batches("train", image_size, 256))
    hx_val, hy_val = control.dataset_histograms(data.batches("val", image_size, 256))
    return Evaluation.from_labels(hy_val, control.fit_predict(hx_train, hy_train, hx_val, seed=seed),
                                  data.class_names, data.rows("val")["path"])


@dataclass(frozen=True)
class Confusions:
    """The pairs of classes a model mixed up most often."""

    table: pd.DataFrame
    KEYS: ClassVar[tuple[str, ...]] = ("top_confusion",)

    def shown(self):
        """The table as the page shows it: rates with two decimals."""
        return self.table.style.format(precision=2).hide(axis="index")

    def facts(self) -> dict:
        first = self.table.iloc[0] if len(self.table) else None
        return {"top_confusion": "none" if first is None else f"{first['class_a']}↔{first['class_b']}"}


def top_confusions(ev: Evaluation, k: int = 8) -> Confusions:
    """The ``k`` pairs of classes most often mixed up, in either direction."""
    return Confusions(metrics.top_pair_confusions(ev.y_true, ev.y_pred, ev.class_names, k=k))


@dataclass(frozen=True)
class Improvements:
    """Per-class precision, recall and F1 of two models, their differences, and which classes' F1 rose."""

    table: pd.DataFrame
    KEYS: ClassVar[tuple[str, ...]] = ("classes_improved", "improved_sentence")

    def facts(self) -> dict:
        n = int(self.table["improved"].sum())
        return {"classes_improved": n, "improved_sentence": say.improved(n)}

    def shown(self):
        """The table as the page shows it: two decimals, "yes" where the F1 rose."""
        table = self.table.assign(improved=self.table["improved"].map({True: "yes", False: ""}))
        if not self.table["improved"].any():
            table = table.drop(columns="improved")  # the sentence says no class improved
        return table.style.format(precision=2)


def improvements(before: Evaluation, after: Evaluation, names: tuple[str, str]) -> Improvements:
    """Per-class scores of two models side by side, and the classes whose F1 rose."""
    table = metrics.difference(before.per_class(), after.per_class(), columns=["precision", "recall", "f1"],
                               suffixes=names)
    table["improved"] = metrics.improved(before.per_class(), after.per_class(), "f1")
    return Improvements(table)


def against_latest(earlier: EarlierModels, after: Evaluation, name: str) -> Improvements:
    """:func:`improvements` over the latest earlier model that ran (tuned, else baseline)."""
    latest = earlier.latest()
    return improvements(earlier.get(latest), after, (latest, name))


# --------------------------------------------------------------------------- comparisons


@dataclass(frozen=True)
class Paired:
    """Two models on the same images for one metric (``comparison`` None when the other model is absent)."""

    comparison: statistics.Comparison | None
    values: tuple[float, float] = (float("nan"), float("nan"))
    images: str = "validation images"
    tiny_classes: tuple[int, float] = (0, 0.0)
    absent: str = ""
    KEYS: ClassVar[tuple[str, ...]] = ("sentence",)

    def as_dict(self) -> dict | None:
        return None if self.comparison is None else self.comparison.as_dict()

    def facts(self) -> dict:
        return {"sentence": say.paired(self)}


#: A class with at most this many images moves a class-averaged metric by a whole image's share of it.
TINY_CLASS = 2


def compare(a: Evaluation, b: Evaluation | None, names: tuple[str, str], metric: str,
            images: str = "validation images") -> Paired:
    """Model ``a`` against ``b`` on the same images (a paired interval and test), or why ``b`` is absent."""
    if b is None:
        return Paired(None, absent=names[1])
    if not a.same_images(b):
        raise ValueError(f"{names[0]} and {names[1]} were not evaluated on the same images; cannot pair them")
    c = statistics.compare(a.y_true, a.y_pred, b.y_pred, len(a.class_names), metric, names)
    tiny = _tiny_class_share(a, b) if metric == "balanced_accuracy" else (0, 0.0)
    return Paired(c, (a.scores[metric], b.scores[metric]), images, tiny)


def _tiny_class_share(a: Evaluation, b: Evaluation) -> tuple[int, float]:
    """How many classes present have at most :data:`TINY_CLASS` images, and their part of ``a - b`` in balanced
    accuracy (the mean of the recalls over the classes present)."""
    present, counts = np.unique(a.y_true, return_counts=True)
    recall_a = np.array([np.mean(a.y_pred[a.y_true == c] == c) for c in present])
    recall_b = np.array([np.mean(b.y_pred[b.y_true == c] == c) for c in present])
    tiny = counts <= TINY_CLASS
    return int(tiny.sum()), float(np.sum((recall_a - recall_b)[tiny]) / len(present))


@dataclass(frozen=True)
class Family:
    """What α = 0.05 means for the comparisons a page makes, and which verdicts survive Holm's correction."""

    comparisons: tuple[Paired, ...]
    KEYS: ClassVar[tuple[str, ...]] = ("family",)

    def facts(self) -> dict:
        ran = [p.as_dict() for p in self.comparisons if p.comparison is not None]
        return {"family": words.family(ran, "comparisons on this page")}


def family(comparisons: list[Paired]) -> Family:
    """The page's comparisons read together."""
    return Family(tuple(comparisons))


@dataclass(frozen=True)
class EarlierModels:
    """The validation predictions of the earlier chapters' models that ran."""

    evaluations: dict
    KEYS: ClassVar[tuple[str, ...]] = ("baseline_val_balanced_accuracy", "tuned_val_balanced_accuracy")

    def get(self, name: str) -> Evaluation | None:
        return self.evaluations.get(name)

    def latest(self) -> str:
        """The last earlier model that ran (tuned, else baseline)."""
        return list(self.evaluations)[-1]

    def facts(self) -> dict:
        return {f"{n}_val_balanced_accuracy": ev.scores["balanced_accuracy"] for n, ev in self.evaluations.items()}


def earlier_models(chapter: Chapter, names=("baseline", "tuned")) -> EarlierModels:
    """Earlier models' validation predictions that exist (a missing chapter is named, not fatal)."""
    out = {}
    for name in names:
        try:
            out[name] = Evaluation.load(chapter.upstream(MODEL_CHAPTERS[name], "val_predictions.npz"))
        except MissingArtifact as err:
            print(err)
    return EarlierModels(out)



@dataclass(frozen=True)
class Claim:
    """Whether this run supports one of the study's claims, from a paired verdict and the seeds."""

    text: str
    paired: Paired
    seeds: SeedDifference
    synthetic: bool
    KEYS: ClassVar[tuple[str, ...]] = ("claim",)

    def facts(self) -> dict:
        return {"claim": say.claim(self)}


def claim(text: str, paired: Paired, seeds: SeedDifference, data: ChapterData) -> Claim:
    """The study's claim ``text`` weighed on this run's images and seeds."""
    return Claim(text, paired, seeds, embedded.is_synthetic(data.root))
