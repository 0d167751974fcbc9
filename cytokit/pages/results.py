"""Chapter 05 on the page: the three models on the held-out images, their verdicts and the model card.

TensorFlow is imported inside the steps that train or predict, so that a page that only reads
results starts without it.
"""

from __future__ import annotations


import pandas as pd

from cytokit import io
from cytokit.book.chapter import Chapter, ChapterData
from cytokit.evaluation import grouping, metrics, statistics, study
from cytokit.pages import words
from cytokit.data import embedded
from cytokit.evaluation.predictions import Evaluation, predict_timed
from cytokit.pages.scores import compare, record_scores


# --------------------------------------------------------------------------- chapter 05


def predict_models(chapter: Chapter, data: ChapterData, paths: dict, eval_split: str, image_size: int,
                   batch_size: int, model_source: str) -> dict[str, Evaluation]:
    """Each model's predictions on the evaluated images, timed; records what was evaluated."""
    from cytokit.models.training import load_model

    split = None if eval_split == "all" else eval_split
    ds = data.batches(split, image_size, batch_size)
    out = {}
    for name, path in paths.items():
        probs, seconds = predict_timed(load_model(path), ds)
        out[name] = Evaluation(data.labels(split), probs, data.class_names, list(data.rows(split)["path"]), seconds)
    chapter.record("model_source", model_source)
    chapter.record("is_synthetic", embedded.is_synthetic(data.root))
    chapter.record("n_test", len(data.labels(split)))
    chapter.record("eval_statement", words.evaluated(len(data.labels(split)), split,
                                                     next(iter(out.values())).classes_present if out else None))
    print({name: chapter.shown(p) for name, p in paths.items()})
    return out


def _validation_of(paths: dict, name: str) -> Evaluation | None:
    """A model's validation predictions, saved by the chapter that trained it (none for the study's models)."""
    val_file = paths[name].parent / "val_predictions.npz"
    return Evaluation.load(val_file) if paths[name].name == "model.keras" and val_file.is_file() else None


def validation_and_test(chapter: Chapter, tested: dict[str, Evaluation], paths: dict) -> pd.DataFrame:
    """Each model's headline metrics with 95 % intervals on validation (when saved) and test; records them."""
    rows = []
    for name, ev in tested.items():
        record_scores(chapter, ev, f"{name}_test_")
        val = _validation_of(paths, name)
        if val is not None:
            record_scores(chapter, val, f"{name}_val_")
        for metric in (*metrics.HEADLINE_KEYS, "macro_f1"):
            t = ev.intervals()[metric]
            v = val.intervals()[metric] if val is not None else statistics.Interval(*[float("nan")] * 3)
            rows.append({"model": name, "metric": metric, "validation": v.estimate, "validation_low": v.low,
                         "validation_high": v.high, "test": t.estimate, "test_low": t.low, "test_high": t.high})
    return pd.DataFrame(rows).set_index(["model", "metric"])


def headline_text(table: pd.DataFrame) -> pd.DataFrame:
    """The validation/test table with each value written beside its interval."""
    out = pd.DataFrame(index=table.index.set_levels(
        [words.METRIC_WORDS.get(m, m) for m in table.index.levels[1]], level="metric"))
    for split in ("validation", "test"):
        out[split] = [words.with_interval(r[split], r[f"{split}_low"], r[f"{split}_high"])
                      if r[split] == r[split] else "–" for _, r in table.iterrows()]
    return out


#: The pairs of models chapter 05 compares, later model first.
PAIRS = (("tuned", "baseline"), ("augmented", "baseline"), ("augmented", "tuned"))
#: The metrics they are compared on; the first decides which model is clearly best.
PAIR_METRICS = ("balanced_accuracy", "accuracy")
#: The model the card describes when none is clearly best: the study's final model.
DEFAULT_CARD_MODEL = "augmented"


def pairwise(chapter: Chapter, tested: dict[str, Evaluation], eval_split: str) -> pd.DataFrame:
    """Every pair of models on the same images, for each metric; records the comparisons and their sentences."""
    images = "test images" if eval_split == "test" else "evaluated images"
    found = []
    for a, b in PAIRS:
        for metric in PAIR_METRICS:
            found.append(compare(chapter, f"{a}_vs_{b}_{metric}", tested[a], tested[b], (a, b), metric, images))
    chapter.keep("comparisons", [c.as_dict() for c in found])
    family(chapter, "comparisons", [c.as_dict() for c in found], "comparisons of this section")
    holm = statistics.holm([c.p_value for c in found])
    return pd.DataFrame([{"a": c.a, "b": c.b, "metric": words.METRIC_WORDS[c.metric] + words.class_set(c),
                          "a − b (points)": words.points(c.difference),
                          "95 % interval": f"{words.points(c.low)} to {words.points(c.high)}",
                          "p-value": f"{words.p_value(c.p_value, c.p_floor, short=True)} ({c.test})",
                          "Holm-adjusted p": words.p_value(h), "verdict": c.verdict} for c, h in zip(found, holm)])


def family(chapter: Chapter, key: str, comparisons: list[dict], what: str) -> str:
    """Records the sentence on what α means for a page's family of comparisons (``<key>_family``)."""
    return chapter.record(f"{key}_family", words.family(comparisons, what))


def page_family(chapter: Chapter, keys, what: str = "comparisons on this page") -> str:
    """:func:`family` over the comparisons this chapter kept under ``keys`` (those that ran)."""
    return family(chapter, "page", [chapter.metrics[k] for k in keys if k in chapter.metrics], what)


def choose_card_model(chapter: Chapter, tested: dict[str, Evaluation]) -> str:
    """The clearly best model if the comparisons name one, else the stated default; records which and why."""
    comparisons = chapter.metrics["comparisons"]
    winners = [m for m in tested if all(
        (c["verdict"] == "better" and c["a"] == m) or (c["verdict"] == "worse" and c["b"] == m)
        for c in comparisons if c["metric"] == PAIR_METRICS[0] and m in (c["a"], c["b"]))]
    best = winners[0] if len(winners) == 1 else None
    card = best or DEFAULT_CARD_MODEL
    chapter.record("clearly_best_model", best)
    chapter.record("card_model", card)
    chapter.record("card_test_accuracy", tested[card].scores["accuracy"])
    chapter.record("card_test_balanced_accuracy", tested[card].scores["balanced_accuracy"])
    chapter.record("best_model_statement", words.best_model(best, card, PAIR_METRICS[0]))
    return card


def per_class_tables(chapter: Chapter, tested: dict[str, Evaluation], paths: dict) -> pd.DataFrame:
    """Per class and model, test scores beside validation (where saved) with test - validation."""
    tables = {}
    for name, ev in tested.items():
        after = ev.per_class()
        chapter.keep(f"{name}_test_per_class", after)
        val = _validation_of(paths, name)
        if val is not None:
            before = val.per_class()
            tables[name] = metrics.difference(before, after, columns=["precision", "recall", "f1"],
                                              suffixes=("validation", "test"))
        else:
            tables[name] = after
    return pd.concat(tables, names=["model"])


def neutrophil_lineage(chapter: Chapter, ev: Evaluation) -> pd.DataFrame:
    """The neutrophil series scored as one class, NEU; records its recall and the grouped accuracy."""
    gy, gp, names = grouping.group_classes(ev.y_true, ev.y_pred, ev.class_names, grouping.NEU_GROUP)
    neu = statistics.per_class_intervals(gy, gp, names).loc["NEU"]
    recall, low, high = float(neu["recall"]), float(neu["recall_low"]), float(neu["recall_high"])
    chapter.record_all({"neu_recall": recall, "neu_recall_ci95": [low, high], "neu_support": int(neu["support"]),
                        "neu_recall_text": words.with_interval(recall, low, high)})
    acc = statistics.intervals(gy, gp, len(names), metrics=("accuracy",))["accuracy"]
    chapter.record_all({"grouped_accuracy": acc.estimate, "grouped_accuracy_ci95": acc.as_list(),
                        "grouped_accuracy_text": words.with_interval(acc.estimate, acc.low, acc.high)})
    chapter.record("neu_against_study", words.against_published(recall, low, high, study.neu_recall() / 100,
                                                                "the study's best model"))
    return metrics.confusion(gy, gp, names, normalize=True)


def literature(chapter: Chapter, ev: Evaluation, name: str):
    """Per-class F1 beside published systems, the best of each row marked, styled for the page."""
    lit = study.literature_comparison(ev.per_class()["f1"], label=f"this run ({name})")
    lit["best"] = study.best_per_class(lit)
    chapter.keep("literature", lit)
    return lit.style.format(precision=2, na_rep="–").highlight_max(axis=1, subset=lit.columns[:-1],
                                                                  props="font-weight:bold")


def model_card(chapter: Chapter, ev: Evaluation, name: str, path) -> pd.DataFrame:
    """The best model's card; records its inference speed."""
    from cytokit.evaluation.model_card import model_card as card_of
    from cytokit.models.training import load_model

    history = path.parent / "history.json"
    train_seconds = io.read_json(history).get("seconds") if history.exists() else None
    card = card_of(name, path, load_model(path), len(ev.y_true), ev.seconds, train_seconds, ev.scores)
    chapter.record("best_images_per_second", float(card["inference speed (images/s, this machine)"]))
    chapter.keep("model_card", card.to_dict())
    return card.to_frame("value")

