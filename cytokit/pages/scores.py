"""How a page scores a model and compares two: predictions, intervals, paired verdicts, tables.

TensorFlow is imported inside the steps that train or predict, so that a page that only reads
results starts without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import pandas as pd

from cytokit.book.chapter import MODEL_CHAPTERS, Chapter
from cytokit.evaluation import metrics, statistics, study
from cytokit.pages import words
from cytokit.evaluation.predictions import Evaluation


#: The metrics a page scores a model on: the study's headline five and macro F1.
SCORED = (*metrics.HEADLINE_KEYS, "macro_f1")


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Scores:
    """One model's headline metrics on one set of images, each with its 95 % interval (none: not scored)."""

    intervals: dict = field(default_factory=dict)
    classes: int = 0
    KEYS: ClassVar[tuple[str, ...]] = (
        "accuracy", "accuracy_ci95", "accuracy_text", "balanced_accuracy", "balanced_accuracy_ci95",
        "balanced_accuracy_text", "precision", "precision_ci95", "precision_text", "recall", "recall_ci95",
        "recall_text", "f1", "f1_ci95", "f1_text", "macro_f1", "macro_f1_ci95", "macro_f1_text", "classes")

    def text(self, metric: str) -> str:
        """The metric with its interval as prose shows it: "81.8 % (78.0–85.3)"."""
        iv = self.intervals[metric]
        return words.with_interval(iv.estimate, iv.low, iv.high)

    def facts(self) -> dict:
        if not self.intervals:
            return {}
        out = {}
        for name in SCORED:
            iv = self.intervals[name]
            out.update({name: iv.estimate, f"{name}_ci95": iv.as_list(), f"{name}_text": self.text(name)})
        return {**out, "classes": self.classes}


def scores_of(ev: Evaluation | None) -> Scores:
    """The headline metrics of one evaluation with their intervals (no evaluation: nothing to record)."""
    if ev is None:
        return Scores()
    intervals = ev.intervals()
    return Scores({name: intervals[name] for name in SCORED}, ev.classes_present)


@dataclass(frozen=True)
class Verdict:
    """Two models on the same images for one metric: the comparison and the sentence that says what follows."""

    comparison: statistics.Comparison
    value_a: float
    value_b: float
    images: str = "validation images"
    KEYS: ClassVar[tuple[str, ...]] = ("comparison", "sentence")

    def sentence(self) -> str:
        return words.comparison(self.comparison, self.value_a, self.value_b, self.images)

    def facts(self) -> dict:
        return {"comparison": self.comparison.as_dict(), "sentence": self.sentence()}


def compared(a: Evaluation, b: Evaluation, names: tuple[str, str], metric: str,
             images: str = "validation images") -> Verdict:
    """Model ``a`` against ``b`` on the same images for one metric: difference, interval, test and verdict."""
    if not a.same_images(b):
        raise ValueError(f"{names[0]} and {names[1]} were not evaluated on the same images; cannot pair them")
    c = statistics.compare(a.y_true, a.y_pred, b.y_pred, len(a.class_names), metric, names)
    return Verdict(c, a.scores[metric], b.scores[metric], images)


# --------------------------------------------------------------------------- evaluation


def earlier(chapter: Chapter, model: str) -> Evaluation:
    """The validation predictions of an earlier chapter's model (``baseline``, ``tuned``)."""
    return Evaluation.load(chapter.upstream(MODEL_CHAPTERS[model], "val_predictions.npz"))


def scores_table(evaluations: dict, study_model: str | None = None, split: str = "validation") -> pd.DataFrame:
    """Headline metrics per model with their 95 % intervals, then the study's published figures for ``study_model``."""
    rows = {}
    for name, ev in evaluations.items():
        found = scores_of(ev)
        rows[name] = {m: found.text(m) for m in SCORED}
        rows[name]["images"] = f"{len(ev.y_true):,}"
        rows[name]["classes"] = str(ev.classes_present)
    if study_model:
        published = study.study_headline(study_model, split)
        rows[f"study {study_model} (real data, published)"] = {m: f"{100 * v:.1f} %" for m, v in published.items()}
    table = pd.DataFrame.from_dict(rows, orient="index").fillna("–")
    table.index.name = "model"
    return table


def against_study(ev: Evaluation, model: str, split: str = "validation") -> pd.DataFrame:
    """Per-class scores beside the study's F1 for the same model and split."""
    theirs = study.study_per_class(model, split)[["f1"]].rename(columns={"f1": "study_f1"})
    return ev.per_class().join(theirs)
