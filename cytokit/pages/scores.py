"""How a page scores a model and compares two: predictions, intervals, paired verdicts, tables.

TensorFlow is imported inside the steps that train or predict, so that a page that only reads
results starts without it.
"""

from __future__ import annotations


import pandas as pd

from cytokit.book.chapter import MODEL_CHAPTERS, Chapter
from cytokit.evaluation import metrics, statistics, study
from cytokit.pages import words
from cytokit.evaluation.predictions import Evaluation


# --------------------------------------------------------------------------- evaluation


def record_scores(chapter: Chapter, ev: Evaluation, prefix: str) -> None:
    """Record each headline metric, its 95 % interval (``<metric>_ci95``) and both as text for the words."""
    for name, iv in ev.intervals().items():
        if name in metrics.HEADLINE_KEYS or name == "macro_f1":
            chapter.record(f"{prefix}{name}", iv.estimate)
            chapter.record(f"{prefix}{name}_ci95", iv.as_list())
            chapter.record(f"{prefix}{name}_text", words.with_interval(iv.estimate, iv.low, iv.high))
    chapter.record(f"{prefix}classes", ev.classes_present)


def compare(chapter: Chapter, key: str, a: Evaluation, b: Evaluation, names: tuple[str, str], metric: str,
            images: str = "validation images") -> statistics.Comparison:
    """Two models on the same images for one metric: keeps the comparison, records its sentence."""
    if not a.same_images(b):
        raise ValueError(f"{names[0]} and {names[1]} were not evaluated on the same images; cannot pair them")
    c = statistics.compare(a.y_true, a.y_pred, b.y_pred, len(a.class_names), metric, names)
    chapter.keep(key, c.as_dict())
    chapter.record(f"{key}_sentence", words.comparison(c, a.scores[metric], b.scores[metric], images))
    return c


def earlier(chapter: Chapter, model: str) -> Evaluation:
    """The validation predictions of an earlier chapter's model (``baseline``, ``tuned``)."""
    return Evaluation.load(chapter.upstream(MODEL_CHAPTERS[model], "val_predictions.npz"))


def scores_table(evaluations: dict, study_model: str | None = None, split: str = "validation") -> pd.DataFrame:
    """Headline metrics per model with their 95 % intervals, then the study's published figures for ``study_model``."""
    rows = {}
    for name, ev in evaluations.items():
        ivs = ev.intervals()
        rows[name] = {m: words.with_interval(ivs[m].estimate, ivs[m].low, ivs[m].high)
                      for m in (*metrics.HEADLINE_KEYS, "macro_f1")}
        rows[name]["images"] = f"{len(ev.y_true):,}"
        rows[name]["classes"] = str(ev.classes_present)
    if study_model:
        published = study.study_headline(study_model, split)
        rows[f"study {study_model} (real data, published)"] = {m: f"{100 * v:.1f} %" for m, v in published.items()}
    table = pd.DataFrame.from_dict(rows, orient="index").fillna("–")
    table.index.name = "model"
    return table


def against_study(chapter: Chapter, ev: Evaluation, model: str, split: str = "validation") -> pd.DataFrame:
    """Per-class scores beside the study's F1 for the same model and split."""
    theirs = study.study_per_class(model, split)[["f1"]].rename(columns={"f1": "study_f1"})
    return ev.per_class().join(theirs)
