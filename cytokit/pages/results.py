"""Chapter 05 on the page: the three models on the evaluated images, their verdicts and the model card.

Each step returns a frozen result that carries its facts (for ``metrics.json`` and glue) and
its sentences, true for a held-out split of this run's models and for the study's imported
models on a whole folder of real images alike. TensorFlow is imported inside the steps that
predict, so that a page that only reads results starts without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from cytokit import io
from cytokit.book.chapter import MODEL_CHAPTERS, ChapterData
from cytokit.data import embedded
from cytokit.evaluation import grouping, metrics, statistics, study
from cytokit.evaluation.predictions import Evaluation, predict_timed
from cytokit.pages import words
from cytokit.pages.scores import SCORED, Scores, Verdict, compared, scores_of

#: How the page names the images of each value of ``eval_split`` (``None``: every usable image of the folder).
IMAGES = {"test": "test images", None: "images of the folder", "val": "validation images",
          "train": "training images"}
#: What the page calls the evaluated images in a table's column or a figure's legend.
COLUMN = {"test": "test", None: "every image", "val": "validation (again)", "train": "training"}


# --------------------------------------------------------------------------- what was evaluated


@dataclass(frozen=True)
class Evaluated:
    """The three models' predictions of the evaluated images, and where the models and the images came from.

    ``split`` is the evaluated split (``None``: every usable image of the folder); ``source``
    the option that chose the models (``run``: this run's chapters 02-04; ``study``: the
    study's trained models); ``validation`` each model's validation predictions where the
    chapter that trained it saved them (never for the study's models).
    """

    models: dict
    split: str | None
    source: str
    synthetic: bool
    files: dict = field(default_factory=dict)
    validation: dict = field(default_factory=dict)
    KEYS: ClassVar[tuple[str, ...]] = ("model_source", "is_synthetic", "n_test", "eval_statement", "eval_images",
                                       "eval_phrase", "sparse_classes_statement")

    def __getitem__(self, name: str) -> Evaluation:
        return self.models[name]

    @property
    def n(self) -> int:
        return len(next(iter(self.models.values())).y_true)

    @property
    def images(self) -> str:
        """The evaluated images as a sentence names them: "test images", "images of the folder"."""
        return IMAGES[self.split]

    @property
    def column(self) -> str:
        return COLUMN[self.split]

    def support(self) -> pd.Series:
        """Evaluated images per class, every class of the taxonomy included."""
        ev = next(iter(self.models.values()))
        return pd.Series(np.bincount(ev.y_true, minlength=len(ev.class_names)), index=list(ev.class_names))

    def statement(self) -> str:
        """What was evaluated, and how far its figures can be read as test results."""
        n, classes = f"{self.n:,}", next(iter(self.models.values())).classes_present
        over = (f" Balanced accuracy and macro F1 average over the {classes} classes present in them, the same set "
                "for every model.")
        if self.split is None:
            why = ("the study's models may have been trained on some of its images" if self.source == "study" else
                   "it holds the images the models were trained and tuned on")
            return (f"**Every usable image of the folder ({n}) was evaluated, not a held-out test split**: {why}, so "
                    f"these figures are an upper bound, not test results.{over}")
        if self.source == "study":
            return (f"The {n} {self.images} of this book's split were predicted once by each of the study's trained "
                    "models. The study drew its own split, not this one, so its models may have been trained on "
                    f"some of these images and the figures can be too high.{over}")
        if self.split == "test":
            return (f"The {n} test images, set aside in chapter 1 and read by no earlier chapter, were predicted "
                    f"once by each model.{over}")
        seen = "learned from" if self.split == "train" else "chose the hyperparameters and the stopping epoch on"
        return (f"The {n} {self.images} were predicted: the models {seen} these images, so these figures are not "
                f"test results.{over}")

    def phrase(self) -> str:
        """What a later page may say chapter 5 reports, in a few words."""
        if self.split == "test" and self.source == "run":
            return "the held-out test split, looked at once"
        if self.split is None:
            return "every image of the folder, an upper bound rather than a test"
        return f"the {self.images} of this book's split, not a held-out test of these models"

    def sparse_classes(self) -> str:
        """Which classes have too few evaluated images for their figures to be read as measured."""
        support = self.support()
        absent = [c for c, k in support.items() if k == 0]
        few = [f"{c} ({k})" for c, k in support.sort_values(kind="stable").items() if 0 < k < statistics.FEW_IMAGES]
        of = f"of the {len(support)} classes"
        out = []
        if few:
            out.append(f"{len(few)} {of} {'has' if len(few) == 1 else 'have'} fewer than {statistics.FEW_IMAGES} "
                       f"{self.images} ({', '.join(few)}): "
                       f"{'its' if len(few) == 1 else 'their'} per-class figures rest on a handful of images and "
                       "should not be read as measured")
        if absent:
            out.append(f"{len(absent)} {of} {'has' if len(absent) == 1 else 'have'} no image here "
                       f"({', '.join(absent)}), so nothing is measured for {'it' if len(absent) == 1 else 'them'}")
        if not out:
            return (f"Every class has at least {statistics.FEW_IMAGES} {self.images}; the per-class figures still "
                    "carry the uncertainty their intervals show.")
        return "; ".join(out) + "."

    def models_table(self) -> pd.DataFrame:
        """Each model's file, named by its file name and the option that chose it (never by a path)."""
        rows = {name: {"file": self.files.get(name, ""), "option": f"model_source = {self.source}",
                       "from": (f"chapter {MODEL_CHAPTERS[name]} of this run" if self.source == "run" else
                                "the study's trained models"),
                       "validation predictions": "saved" if name in self.validation else "none"}
                for name in self.models}
        table = pd.DataFrame.from_dict(rows, orient="index")
        table.index.name = "model"
        return table

    def facts(self) -> dict:
        return {"model_source": self.source, "is_synthetic": self.synthetic, "n_test": self.n,
                "eval_statement": self.statement(), "eval_images": self.images, "eval_phrase": self.phrase(),
                "sparse_classes_statement": self.sparse_classes()}


def _saved_validation(path: Path) -> Evaluation | None:
    """A model's validation predictions, saved by the chapter that trained it (none for the study's models)."""
    val_file = Path(path).parent / "val_predictions.npz"
    return Evaluation.load(val_file) if Path(path).name == "model.keras" and val_file.is_file() else None


def predict_models(data: ChapterData, paths: dict, eval_split: str, image_size: int, batch_size: int,
                   model_source: str) -> Evaluated:
    """Each model's predictions of the evaluated images, timed, with its saved validation predictions."""
    from cytokit.models.training import load_model

    split = None if eval_split == "all" else eval_split
    ds = data.batches(split, image_size, batch_size)
    out, validation = {}, {}
    for name, path in paths.items():
        probs, seconds = predict_timed(load_model(path), ds)
        out[name] = Evaluation(data.labels(split), probs, data.class_names, list(data.rows(split)["path"]), seconds)
        if (val := _saved_validation(path)) is not None:
            validation[name] = val
    return Evaluated(out, split, model_source, embedded.is_synthetic(data.root),
                     {name: Path(p).name for name, p in paths.items()}, validation)


# --------------------------------------------------------------------------- validation and test


def validation_scores(tested: Evaluated, name: str) -> Scores:
    """A model's scores on the validation split, where its chapter saved them (else nothing to record)."""
    return scores_of(tested.validation.get(name))


@dataclass(frozen=True)
class Headline:
    """Each model's headline metrics with 95 % intervals, on validation (where saved) and the evaluated images."""

    table: pd.DataFrame
    column: str
    images: str
    without_validation: tuple = ()
    KEYS: ClassVar[tuple[str, ...]] = ("validation_statement",)

    def text(self) -> pd.DataFrame:
        """The table as the page shows it: each value beside its interval, a column without data left out."""
        out = pd.DataFrame(index=self.table.index.set_levels(
            [words.METRIC_WORDS.get(m, m) for m in self.table.index.levels[1]], level="metric"))
        for split, label in (("validation", "validation"), ("test", self.column)):
            if self.table[split].notna().any():
                out[label] = [words.with_interval(r[split], r[f"{split}_low"], r[f"{split}_high"])
                              if r[split] == r[split] else "–" for _, r in self.table.iterrows()]
        return out

    def statement(self) -> str:
        models = list(dict.fromkeys(self.table.index.get_level_values(0)))
        if not self.without_validation:
            return (f"Each model's validation figures, from the chapter that trained it, beside its {self.images}; "
                    "the brackets and error bars are 95 % intervals.")
        if len(self.without_validation) == len(models):
            return (f"These models come without validation predictions (the study's trained models were imported, "
                    f"not trained here), so only the {self.images} are scored; the brackets and error bars are "
                    "95 % intervals.")
        return (f"Validation figures are shown for the models whose chapter saved them; "
                f"{words.listed(self.without_validation)} {'has' if len(self.without_validation) == 1 else 'have'} "
                f"none. The brackets and error bars are 95 % intervals.")

    def facts(self) -> dict:
        return {"validation_statement": self.statement()}


def validation_and_test(tested: Evaluated) -> Headline:
    """Each model's headline metrics with 95 % intervals on validation (when saved) and the evaluated images."""
    rows = []
    nothing = statistics.Interval(*[float("nan")] * 3)
    for name, ev in tested.models.items():
        val = tested.validation.get(name)
        for metric in SCORED:
            t = ev.intervals()[metric]
            v = val.intervals()[metric] if val is not None else nothing
            rows.append({"model": name, "metric": metric, "validation": v.estimate, "validation_low": v.low,
                         "validation_high": v.high, "test": t.estimate, "test_low": t.low, "test_high": t.high})
    return Headline(pd.DataFrame(rows).set_index(["model", "metric"]), tested.column, tested.images,
                    tuple(name for name in tested.models if name not in tested.validation))


# --------------------------------------------------------------------------- which model is better


#: The pairs of models chapter 05 compares, later model first.
PAIRS = (("tuned", "baseline"), ("augmented", "baseline"), ("augmented", "tuned"))
#: The metrics they are compared on; the first decides which model is clearly best.
PAIR_METRICS = ("balanced_accuracy", "accuracy")
#: The model the card describes when none is clearly best: the study's final model.
DEFAULT_CARD_MODEL = "augmented"


@dataclass(frozen=True)
class Pairwise:
    """Every pair of models on the same images, for each metric, with Holm's correction over the family."""

    verdicts: tuple[Verdict, ...]
    what: str = "comparisons of this section"
    KEYS: ClassVar[tuple[str, ...]] = (
        "tuned_vs_baseline_balanced_accuracy", "tuned_vs_baseline_balanced_accuracy_sentence",
        "tuned_vs_baseline_accuracy", "tuned_vs_baseline_accuracy_sentence",
        "augmented_vs_baseline_balanced_accuracy", "augmented_vs_baseline_balanced_accuracy_sentence",
        "augmented_vs_baseline_accuracy", "augmented_vs_baseline_accuracy_sentence",
        "augmented_vs_tuned_balanced_accuracy", "augmented_vs_tuned_balanced_accuracy_sentence",
        "augmented_vs_tuned_accuracy", "augmented_vs_tuned_accuracy_sentence",
        "comparisons", "comparisons_family")

    @property
    def comparisons(self) -> list[statistics.Comparison]:
        return [v.comparison for v in self.verdicts]

    def family(self) -> str:
        """What α means for this family of comparisons, and which verdicts survive Holm's correction."""
        return words.family([c.as_dict() for c in self.comparisons], self.what)

    def table(self) -> pd.DataFrame:
        """One row per comparison: difference, interval, test, Holm-adjusted p and verdict."""
        holm = statistics.holm([c.p_value for c in self.comparisons])
        return pd.DataFrame([{"a": c.a, "b": c.b, "metric": words.METRIC_WORDS[c.metric] + words.class_set(c),
                              "a − b (points)": words.points(c.difference),
                              "95 % interval": words.points_interval(c.low, c.high),
                              "p-value": f"{words.p_value(c.p_value, c.p_floor, short=True)} ({c.test})",
                              "Holm-adjusted p": words.adjusted_p(h, c.p_value, c.p_floor), "verdict": c.verdict}
                             for c, h in zip(self.comparisons, holm)])

    def facts(self) -> dict:
        out = {}
        for v in self.verdicts:
            key = f"{v.comparison.a}_vs_{v.comparison.b}_{v.comparison.metric}"
            out.update({key: v.comparison.as_dict(), f"{key}_sentence": v.sentence()})
        return {**out, "comparisons": [c.as_dict() for c in self.comparisons], "comparisons_family": self.family()}


def pairwise(tested: Evaluated) -> Pairwise:
    """Every pair of models of :data:`PAIRS` on the same images, for each metric of :data:`PAIR_METRICS`."""
    return Pairwise(tuple(compared(tested[a], tested[b], (a, b), metric, tested.images)
                          for a, b in PAIRS for metric in PAIR_METRICS))


@dataclass(frozen=True)
class CardChoice:
    """The model the card describes: the clearly best one if the comparisons name one, else the study's final model."""

    best: str | None
    model: str
    scores: dict
    metric: str = PAIR_METRICS[0]
    KEYS: ClassVar[tuple[str, ...]] = ("clearly_best_model", "card_model", "card_test_accuracy",
                                       "card_test_balanced_accuracy", "best_model_statement", "study_choice_statement")

    def statement(self) -> str:
        """Which model the page may call best, and which one the chapter's model card describes."""
        word = words.METRIC_WORDS.get(self.metric, self.metric)
        if self.best:
            return (f"On {word} the **{self.best}** model is better than each of the other two (both intervals of "
                    "the difference exclude zero and both tests agree): it is the best of the three here, and the "
                    "chapter's model card describes it.")
        return (f"No model is clearly best: on {word} at least one of the comparisons with the others is no clear "
                f"difference. The chapter's model card describes the {self.model} model, the study's final model, "
                "by the book's rule for this case, not because it is better.")

    def _repr_markdown_(self) -> str:
        return self.statement()

    @staticmethod
    def study_statement() -> str:
        """What the study itself chose, from its published tables (it gave no intervals)."""
        test, val = study.study_headline("augmented", "test"), study.study_headline("augmented", "validation")
        return (f"The study named its augmented model the best, with {100 * test['accuracy']:.1f} % test accuracy "
                f"({100 * val['accuracy']:.1f} % on validation) and {100 * test['balanced_accuracy']:.1f} % balanced "
                "accuracy on its real test images; it reported no intervals.")

    def facts(self) -> dict:
        return {"clearly_best_model": self.best, "card_model": self.model,
                "card_test_accuracy": self.scores["accuracy"],
                "card_test_balanced_accuracy": self.scores["balanced_accuracy"],
                "best_model_statement": self.statement(), "study_choice_statement": self.study_statement()}


def choose_card_model(pairs: Pairwise, tested: Evaluated) -> CardChoice:
    """The model better than each other one on :data:`PAIR_METRICS`'s first metric, if there is exactly one."""
    decisive = [c for c in pairs.comparisons if c.metric == PAIR_METRICS[0]]
    winners = [m for m in tested.models if all(
        (c.verdict == statistics.BETTER and c.a == m) or (c.verdict == statistics.WORSE and c.b == m)
        for c in decisive if m in (c.a, c.b))]
    best = winners[0] if len(winners) == 1 else None
    card = best or DEFAULT_CARD_MODEL
    return CardChoice(best, card, tested[card].scores)


# --------------------------------------------------------------------------- per class


@dataclass(frozen=True)
class PerClass:
    """Per class and model, scores on the evaluated images beside validation (where saved)."""

    tables: dict
    validation: dict
    images: str
    KEYS: ClassVar[tuple[str, ...]] = ("baseline_test_per_class", "tuned_test_per_class",
                                       "augmented_test_per_class", "per_class_statement")

    def table(self) -> pd.DataFrame:
        """The page's table: classes with no image in either split left out, test − validation where both exist."""
        shown = {}
        for name, after in self.tables.items():
            before = self.validation.get(name)
            if before is None:
                shown[name] = after[after["support"] > 0]
                continue
            both = metrics.difference(before, after, columns=["precision", "recall", "f1"],
                                      suffixes=("validation", "test"))
            shown[name] = both[(before["support"] > 0) | (after["support"] > 0)]
        return pd.concat(shown, names=["model"])

    def statement(self) -> str:
        if len(self.validation) == len(self.tables):
            return (f"For each model, each class's precision, recall and F1 on the {self.images} beside validation, "
                    "and the difference (test − validation); classes with no image in either split are left out.")
        return (f"For each model, each class's precision, recall and F1 on the {self.images}"
                + (", beside validation where the chapter that trained the model saved it"
                   if self.validation else "") + "; classes without an image here are left out.")

    def facts(self) -> dict:
        return {**{f"{name}_test_per_class": io.to_jsonable(t) for name, t in self.tables.items()},
                "per_class_statement": self.statement()}


def per_class_tables(tested: Evaluated) -> PerClass:
    """Each model's per-class scores on the evaluated images, and on validation where its chapter saved them."""
    return PerClass({name: ev.per_class() for name, ev in tested.models.items()},
                    {name: ev.per_class() for name, ev in tested.validation.items()}, tested.images)


# --------------------------------------------------------------------------- the neutrophil lineage


@dataclass(frozen=True)
class Lineage:
    """The neutrophil series scored as one class, NEU: its recall, the grouped accuracy, the grouped confusions."""

    recall: statistics.Interval
    support: int
    accuracy: statistics.Interval
    confusion: pd.DataFrame
    images: str
    synthetic: bool
    KEYS: ClassVar[tuple[str, ...]] = ("neu_recall", "neu_recall_ci95", "neu_support", "neu_recall_text",
                                       "grouped_accuracy", "grouped_accuracy_ci95", "grouped_accuracy_text",
                                       "neu_against_study", "lineage_statement")

    def recall_text(self) -> str:
        return words.with_interval(self.recall.estimate, self.recall.low, self.recall.high)

    def accuracy_text(self) -> str:
        return words.with_interval(self.accuracy.estimate, self.accuracy.low, self.accuracy.high)

    def against_study(self) -> str:
        """The study's published share beside this interval: set against it on real images only."""
        if not self.support:
            return "No neutrophil-lineage image is among these images, so the study's figure has nothing to meet."
        published = study.neu_recall() / 100
        if self.synthetic:
            return (f"The study's best model's {100 * published:.1f} % was measured on real cells; these cells are "
                    "synthetic, so the two are not set against each other.")
        return words.against_published(self.recall.estimate, self.recall.low, self.recall.high, published,
                                       "the study's best model")

    def statement(self) -> str:
        grouped = f"with the lineage merged, overall accuracy is {self.accuracy_text()} (95 % intervals)."
        if not self.support:
            return f"No neutrophil-lineage image is among the {self.images}, so only the grouped accuracy is " \
                   f"measured: {grouped}"
        few = f" ({words.few_images(self.support)})" if words.few_images(self.support) else ""
        return (f"Of the {self.support:,} neutrophil-lineage {self.images}{few}, {self.recall_text()} were predicted "
                f"as some stage of the lineage; {grouped} {self.against_study()}")

    def facts(self) -> dict:
        measured = {"neu_recall": self.recall.estimate, "neu_recall_ci95": self.recall.as_list(),
                    "neu_recall_text": self.recall_text()} if self.support else {}
        return {**measured, "neu_support": self.support, "grouped_accuracy": self.accuracy.estimate,
                "grouped_accuracy_ci95": self.accuracy.as_list(), "grouped_accuracy_text": self.accuracy_text(),
                "neu_against_study": self.against_study(), "lineage_statement": self.statement()}


def neutrophil_lineage(tested: Evaluated, model: str) -> Lineage:
    """One model's predictions with the neutrophil series merged into NEU, as the study scored them."""
    ev = tested[model]
    gy, gp, names = grouping.group_classes(ev.y_true, ev.y_pred, ev.class_names, grouping.NEU_GROUP)
    neu = statistics.per_class_intervals(gy, gp, names).loc["NEU"]
    recall = statistics.Interval(float(neu["recall"]), float(neu["recall_low"]), float(neu["recall_high"]),
                                 int(neu["support"]))
    accuracy = statistics.intervals(gy, gp, len(names), metrics=("accuracy",))["accuracy"]
    return Lineage(recall, int(neu["support"]), accuracy, metrics.confusion(gy, gp, names, normalize=True),
                   tested.images, tested.synthetic)


# --------------------------------------------------------------------------- beside published systems


@dataclass(frozen=True)
class Literature:
    """Per-class F1 beside published systems; a class without an image here has no F1 (not 0)."""

    table: pd.DataFrame
    synthetic: bool
    KEYS: ClassVar[tuple[str, ...]] = ("literature", "comparison_statement")

    def styled(self):
        """The table styled for the page: the best of each row in bold."""
        return self.table.style.format(precision=2, na_rep="–").highlight_max(
            axis=1, subset=self.table.columns[:-1], props="font-weight:bold")

    def statement(self) -> str:
        """How far the comparison with published systems can be read."""
        if self.synthetic:
            return ("**These are synthetic cells**: the comparison above shows the machinery, not a result. "
                    "Published figures were measured on real images; these were not.")
        return ("These figures were measured on real images and can be read beside the published ones, "
                "with the caveats above on splits and class sets.")

    def facts(self) -> dict:
        return {"literature": io.to_jsonable(self.table), "comparison_statement": self.statement()}


def literature(tested: Evaluated, model: str) -> Literature:
    """One model's per-class F1 beside the systems the study collected, the best of each row named."""
    per_class = tested[model].per_class()
    f1 = per_class["f1"].where(per_class["support"] > 0)
    lit = study.literature_comparison(f1, label=f"this run ({model})")
    lit["best"] = study.best_per_class(lit)
    return Literature(lit, tested.synthetic)


def against_study_model(tested: Evaluated, model: str) -> pd.DataFrame:
    """One model's per-class scores beside the study's augmented model's on its test split."""
    per_class = tested[model].per_class()
    ours = per_class[["precision", "recall", "f1"]].where(per_class["support"] > 0)
    return metrics.difference(study.study_per_class("augmented", "test")[["precision", "recall", "f1"]], ours,
                              suffixes=("study", "this_run"))


# --------------------------------------------------------------------------- model card


@dataclass(frozen=True)
class Card:
    """The facts a reader needs before trusting the card's model: size, input, scores, speed."""

    card: pd.Series
    batch_size: int
    source: str
    images: str = "test images"
    KEYS: ClassVar[tuple[str, ...]] = ("best_images_per_second", "model_card", "speed_statement")

    def table(self) -> pd.DataFrame:
        """The card as the page shows it: a value missing for an imported model says why."""
        missing = "not recorded (imported model)" if self.source == "study" else "not recorded"
        shown = self.card.astype(object).where(self.card.notna(), missing).astype(str)
        shown.index = [f"{name[len('test '):]} on the {self.images}" if name.startswith("test ") else name
                       for name in shown.index]
        return shown.to_frame("value")

    def speed_statement(self) -> str:
        return (f"Speed was measured on the machine that built this copy of the book, predicting batches of "
                f"{self.batch_size:,} images.")

    def facts(self) -> dict:
        return {"best_images_per_second": float(self.card["inference speed (images/s, this machine)"]),
                "model_card": io.to_jsonable(self.card.to_dict()), "speed_statement": self.speed_statement()}


def model_card(tested: Evaluated, model: str, path, batch_size: int) -> Card:
    """The card of one model: its file, size, input, scores on the evaluated images and speed."""
    from cytokit.evaluation.model_card import model_card as card_of
    from cytokit.models.training import load_model

    path, ev = Path(path), tested[model]
    history = path.parent / "history.json"
    train_seconds = io.read_json(history).get("seconds") if path.name == "model.keras" and history.exists() else None
    card = card_of(model, path, load_model(path), len(ev.y_true), ev.seconds, train_seconds, ev.scores)
    return Card(card, batch_size, tested.source, tested.images)


# --------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class Summary:
    """What chapter 5 found, and what chapter 6 takes from it."""

    tested: Evaluated
    choice: CardChoice
    lineage: Lineage
    KEYS: ClassVar[tuple[str, ...]] = ("summary",)

    def sentence(self) -> str:
        card = scores_of(self.tested[self.choice.model])
        found = (f"On the {self.tested.n:,} {self.tested.images}, the {self.choice.model} model, the one the model "
                 f"card describes, reached an accuracy of {card.text('accuracy')} and a balanced accuracy of "
                 f"{card.text('balanced_accuracy')} (95 % intervals).")
        best = (f" It is better than each of the other two on {words.METRIC_WORDS[self.choice.metric]}."
                if self.choice.best else
                f" No model is clearly better than both others on {words.METRIC_WORDS[self.choice.metric]}.")
        merged = f" With the neutrophil lineage merged, its accuracy is {self.lineage.accuracy_text()}."
        caveat = ("" if self.tested.split == "test" and self.tested.source == "run" else
                  " These images are not a held-out test of these models, so the figures are an upper bound.")
        synthetic = (" These are synthetic cells: the figures show the method, not a finding about real marrow cells."
                     if self.tested.synthetic else "")
        nxt = (" Chapter 6 takes the augmented model, the study's final model, whichever is best here, and asks "
               "whether LIME's explanations of its predictions justify them.")
        return found + best + merged + caveat + synthetic + nxt

    def facts(self) -> dict:
        return {"summary": self.sentence()}


def summary(tested: Evaluated, choice: CardChoice, lineage: Lineage) -> Summary:
    """The chapter's findings in a paragraph, built from its results."""
    return Summary(tested, choice, lineage)
