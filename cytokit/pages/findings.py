"""The book's first page: what this copy found, with intervals and verdicts, and how it was built.

Everything here is read from the run folder by one typed loader (:func:`load`): each
chapter's ``metrics.json`` becomes a frozen object, a chapter that did not run becomes
``None`` and is named as such, never filled in, and a renamed key is changed in one place.
Every sentence is a method of :class:`Findings`, true for whichever chapters ran, on
synthetic or real images, with trained or imported models, on a split or a whole folder.
"""

from __future__ import annotations

import math
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import ClassVar

import pandas as pd

from cytokit.book import records
from cytokit.data.tree import shown
from cytokit.evaluation.statistics import Comparison, Interval
from cytokit.pages import words, xai_words

CHAPTERS = ("01_data", "02_baseline", "03_tuning", "04_augmentation", "05_test_results", "06_xai")
MODELS = ("baseline", "tuned", "augmented")
#: Packages whose versions decide the numbers, as the page lists them.
PACKAGES = ("tensorflow-cpu", "tensorflow", "keras", "keras-tuner", "numpy", "scipy", "scikit-learn",
            "scikit-image", "lime", "opencv-python-headless", "plotly", "papermill", "jupyter-book")
NOT_RUN = "not run in this copy"
NOT_RECORDED = "not recorded"
#: What chapter 5 evaluates when its run record names no split: the notebook's default.
DEFAULT_EVAL_SPLIT = "test"
EVAL_SPLITS = ("train", "val", "test", "all")
#: Chapter 6's comparisons read under every fill, and what a "better" verdict means.
XAI_MEANINGS = (("predicted_minus_first", "explaining the predicted class beats explaining class 0"),
                ("lime_minus_random", "LIME's ranking beats a random one"),
                ("top_minus_bottom", "LIME's most relevant superpixels beat its least relevant"))


class FindingsError(records.RecordError):
    """A chapter's ``metrics.json`` that the first page cannot read: the message names the file and the key."""


# --------------------------------------------------------------------------- what each chapter found


def _value(i: Interval) -> str:
    return words.with_interval(i.estimate, i.low, i.high)


def _difference(c: Comparison) -> str:
    return f"{words.points(c.difference)} points ({words.points(c.low)} to {words.points(c.high)})"


@dataclass(frozen=True)
class SeedSpread:
    """How a difference moved over training seeds (the split fixed)."""

    n: int
    low: float
    high: float
    mean: float

    def text(self) -> str:
        if self.n == 1:
            return f"{words.points(self.mean)} points, one seed only"
        return (f"{words.points(self.low)} to {words.points(self.high)} points over {self.n} seeds, mean "
                f"{words.points(self.mean)}")

    def verdict(self) -> str:
        if self.n < 2:
            return ""
        return "same sign every seed" if self.low > 0 or self.high < 0 else "sign changes with the seed"


@dataclass(frozen=True)
class DataFound:
    source: str  # chapter 1's own sentence on which images this copy read
    is_synthetic: bool
    n_files: int
    n_usable: int
    n_classes: int


@dataclass(frozen=True)
class BaselineFound:
    accuracy: Interval
    balanced_accuracy: Interval


@dataclass(frozen=True)
class TuningFound:
    tuned_vs_baseline: Comparison


@dataclass(frozen=True)
class AugmentationFound:
    augmented_vs_baseline: Comparison
    seeds: SeedSpread | None


@dataclass(frozen=True)
class TestFound:
    model_source: str  # "run" or "study"
    eval_split: str | None  # "test", "val", "train", "all"; None when the run does not say
    n_images: int
    accuracy: dict[str, Interval]
    balanced_accuracy: dict[str, Interval]
    comparisons: tuple[Comparison, ...]
    neu_recall: Interval

    def images(self) -> str:
        """The images chapter 5 scored, as a table row names them."""
        return {"test": "the test images", "val": "the validation images", "train": "the training images",
                "all": "every image of the folder"}.get(self.eval_split or "", "the images chapter 5 scored")

    def tag(self) -> str:
        """The images chapter 5 scored, as a short table label."""
        return {"test": "test", "val": "validation", "train": "training", "all": "whole folder"}.get(
            self.eval_split or "", "chapter 5's images")

    def scored(self) -> str:
        """The images chapter 5 scored, as a sentence names them."""
        if self.eval_split == "all":
            return f"every usable image of the folder ({self.n_images:,})"
        if self.eval_split is None:
            return f"the {self.n_images:,} images chapter 5 scored"
        return self.images().replace("the ", f"the {self.n_images:,} ", 1)

    def best_on(self, metric: str) -> str | None:
        """The one model better than each other model on ``metric`` (interval and test agreeing), if any."""
        winners = [m for m in MODELS if all(
            (c.verdict == "better" and c.a == m) or (c.verdict == "worse" and c.b == m)
            for c in self.comparisons if c.metric == metric and m in (c.a, c.b))
            and any(c.metric == metric and m in (c.a, c.b) for c in self.comparisons)]
        return winners[0] if len(winners) == 1 else None


@dataclass(frozen=True)
class XaiFound:
    sufficient_n: dict[str, str]  # "predicted", "first", "random": the smallest sufficient n with its interval
    fill_verdicts: dict[str, dict[str, str]]  # comparison -> fill -> verdict
    robust_images: int | None = None  # images the robustness settings explained again (None: not run)
    robust_holds: int | None = None  # settings in which the finding holds
    robust_settings: int | None = None  # settings tried
    closest_fill: str | None = None  # the fill whose images stay closest to the real ones in the model's features

    def robustness_sentence(self) -> str:
        """How often the finding held when LIME's seed, perturbations and superpixels were varied."""
        if self.robust_settings is None:
            return ""
        out = (f"Varied over LIME's seed, its number of perturbations and the superpixels on "
               f"{words.number_of(self.robust_images or 0, 'image')}, the finding (explaining the predicted class "
               f"beats class 0 and LIME's ranking beats a random one, both at once) holds in {self.robust_holds} of "
               f"{words.number_of(self.robust_settings, 'setting')}.")
        if self.closest_fill:
            out += f" Of the fills, {self.closest_fill} leaves the images closest to those the network was trained on."
        return out


@dataclass(frozen=True)
class RunFound:
    """The run's own record: profile, when, where, and each chapter's time (run now or kept from before)."""

    profile: str = NOT_RECORDED
    description: str = ""
    started: str = NOT_RECORDED
    machine: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    kept: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------- the page's sentences


@dataclass(frozen=True)
class Findings:
    """What every chapter of one run found (``None``: the chapter did not run) and the run's record."""

    data: DataFound | None = None
    baseline: BaselineFound | None = None
    tuning: TuningFound | None = None
    augmentation: AugmentationFound | None = None
    test: TestFound | None = None
    xai: XaiFound | None = None
    run: RunFound = field(default_factory=RunFound)

    KEYS: ClassVar[tuple[str, ...]] = ("findings_summary", "measured_statement", "not_run_statement")

    @property
    def is_synthetic(self) -> bool | None:
        """Whether this copy's images are synthetic (None when chapter 1 did not run)."""
        return None if self.data is None else self.data.is_synthetic

    def ran(self, chapter: str) -> bool:
        return getattr(self, {"01_data": "data", "02_baseline": "baseline", "03_tuning": "tuning",
                              "04_augmentation": "augmentation", "05_test_results": "test",
                              "06_xai": "xai"}[chapter]) is not None

    def training_chapters(self) -> list[str]:
        return [c[1] for c in ("02_baseline", "03_tuning", "04_augmentation") if self.ran(c)]

    def _data_sentence(self) -> str:
        return self.data.source if self.data else "Chapter 1 did not run in this copy, so the data are not described."

    def _models_sentence(self) -> str:
        trained = self.training_chapters()
        if self.test and self.test.model_source == "study":
            head = ("Chapters 2–4 did not run: nothing was trained in this copy, and chapter 5 scores" if not trained
                    else "Chapter 5 scores")
            return f"{head} the study's own three trained models, imported from its code repository."
        if not trained:
            return "Chapters 2–4 did not run in this copy, so no model was trained."
        if len(trained) == 3:
            return "Chapters 2–4 trained the study's three models (baseline, tuned, augmented) on this copy's images."
        if len(trained) < 3:
            missing = [n for n in "234" if n not in trained]
            return (f"Chapter{'s' if len(missing) > 1 else ''} {_listed(missing)} did not run in this copy, so "
                    "some of the study's three models were not trained.")
        return ""

    def _best_sentence(self) -> str:
        if not self.test:
            return ""
        best = self.test.best_on("balanced_accuracy")
        images = self.test.scored()
        if best:
            return (f"On {images}, the **{best}** model's balanced accuracy is higher than each other model's (both "
                    "intervals of the difference exclude zero and both paired tests agree).")
        return (f"On {images}, no model's balanced accuracy is clearly higher than both others': at least one of "
                "its comparisons is no clear difference.")

    def _xai_sentence(self) -> str:
        if not self.xai:
            return ""
        out = [xai_words.across_fills(meaning, self.xai.fill_verdicts[key])
               for key, meaning in XAI_MEANINGS if self.xai.fill_verdicts.get(key)]
        return " ".join(["Chapter 6 tests whether LIME's explanations justify the model's predictions, with the "
                         "hidden superpixels filled in several ways.", *out,
                         self.xai.robustness_sentence()]).strip() if out else ""

    def summary(self) -> str:
        """The first paragraphs of the book: the data, what was trained or imported, and the chapters' verdicts."""
        parts = [self._data_sentence(), " ".join(x for x in (self._models_sentence(), self._best_sentence()) if x),
                 self._xai_sentence()]
        return "\n\n".join(p for p in parts if p)

    def measured(self) -> str:
        """Which images each chapter's figures below were measured on, said for this run."""
        out = []
        trained = self.training_chapters()
        if trained:
            who = f"Chapter{'s' if len(trained) > 1 else ''} {_listed(trained)} report{'' if len(trained) > 1 else 's'}"
            chose = "; chapter 3 also chose its hyperparameters on them" if "3" in trained else ""
            out.append(f"{who} figures on the validation images, not on held-out test images{chose}.")
        if self.test:
            out.append(self._test_measured())
        elif trained:
            out.append("Chapter 5 did not run, so this copy has no test results.")
        return " ".join(out) if out else "No chapter that scores a model ran in this copy."

    def _test_measured(self) -> str:
        t = self.test
        models = ("the study's own trained models" if t.model_source == "study" else "this run's three models")
        if t.eval_split == "test":
            return (f"Chapter 5 scores {models} on {t.scored()}, held out from every earlier chapter and predicted "
                    "once by each model.")
        if t.eval_split == "all":
            return (f"Chapter 5 scores {models} on {t.scored()}, not on a held-out split: "
                    + ("the study's models may have been trained on some of these images, so its figures are an "
                       "upper bound, not test results." if t.model_source == "study" and not self.is_synthetic else
                       "its figures are not held-out results."))
        if t.eval_split in ("val", "train"):
            return f"Chapter 5 scores {models} on {t.scored()}, not on the held-out test images."
        return f"Chapter 5 scores {models} on {t.scored()}; this run does not record which split they are."

    def not_run(self) -> str:
        """Which chapters did not run in this copy (the key results have no row for them)."""
        missing = [c[1] for c in CHAPTERS if not self.ran(c)]
        if not missing:
            return "Every chapter ran in this copy."
        return (f"Chapter{'s' if len(missing) > 1 else ''} {_listed(missing)} did not run in this copy, so the table "
                f"has no row for {'them' if len(missing) > 1 else 'it'}.")

    def facts(self) -> dict:
        return {"findings_summary": self.summary(), "measured_statement": self.measured(),
                "not_run_statement": self.not_run()}


def _listed(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


# --------------------------------------------------------------------------- the page's tables


def _row(chapter: str, result: str, value: str, verdict: str = "") -> dict:
    return {"chapter": chapter, "result": result, "value": value, "verdict": verdict}


def key_results(found: Findings):
    """One row per headline result of the chapters that ran: its value with a 95 % interval, and a verdict."""
    rows = []
    if found.baseline:
        rows += [_row("2", "baseline, validation accuracy", _value(found.baseline.accuracy)),
                 _row("2", "baseline, validation balanced accuracy", _value(found.baseline.balanced_accuracy))]
    if found.tuning:
        c = found.tuning.tuned_vs_baseline
        rows.append(_row("3", "tuned − baseline, validation accuracy", _difference(c), c.verdict))
    if found.augmentation:
        c, spread = found.augmentation.augmented_vs_baseline, found.augmentation.seeds
        rows.append(_row("4", "augmented − baseline, validation balanced accuracy", _difference(c), c.verdict))
        if spread:
            rows.append(_row("4", "augmented − baseline over training seeds", spread.text(), spread.verdict()))
    if found.test:
        t = found.test
        for model in MODELS:
            rows.append(_row("5", f"{model}, accuracy ({t.tag()})", _value(t.accuracy[model])))
            rows.append(_row("5", f"{model}, balanced accuracy ({t.tag()})", _value(t.balanced_accuracy[model])))
        rows += [_row("5", f"{c.a} − {c.b}, balanced accuracy ({t.tag()})", _difference(c), c.verdict)
                 for c in t.comparisons if c.metric == "balanced_accuracy"]
        rows.append(_row("5", f"neutrophil-lineage images kept in the lineage ({t.tag()})", _value(t.neu_recall)))
    if found.xai:
        for key, label in (("predicted", "LIME, predicted class"), ("first", "LIME, class index 0 (study's code)"),
                           ("random", "random superpixels")):
            rows.append(_row("6", f"smallest sufficient n, {label}", found.xai.sufficient_n[key]))
    if not rows:
        return None
    return pd.DataFrame(rows).style.hide(axis="index")


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    return f"{minutes // 60} h {minutes % 60} min"


def chapter_times(found: Findings):
    """How long each chapter took in the run that made it; chapters kept from an earlier run or not run say so."""
    rows = []
    for name in CHAPTERS:
        if name in found.run.seconds:
            time = _duration(found.run.seconds[name])
        elif name in found.run.kept:
            time = f"{_duration(found.run.kept[name])} (kept from an earlier run)"
        else:
            time = f"time {NOT_RECORDED}" if found.ran(name) else NOT_RUN
        rows.append({"chapter": name, "time": time})
    return pd.DataFrame(rows).style.hide(axis="index")


def provenance(found: Findings):
    """Profile, data, machine and package versions of this copy."""
    data = found.data
    rows = {"profile": found.run.profile, "profile description": found.run.description or NOT_RECORDED,
            "data": NOT_RUN if data is None else ("synthetic (embedded default)" if data.is_synthetic else
                                                  "real images"),
            "image files": NOT_RUN if data is None else f"{data.n_files:,}",
            "started": found.run.started, "python": platform.python_version(),
            "machine": found.run.machine or platform.platform()}
    for package in PACKAGES:
        try:
            rows[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return pd.DataFrame({"": list(rows), "value": list(rows.values())}).style.hide(axis="index")


# --------------------------------------------------------------------------- the typed loader


class _Metrics:
    """One chapter's ``metrics.json``, read with a size bound; each key checked for its kind as it is taken."""

    def __init__(self, path: Path):
        self.path = path
        self.m = records.read(path, "the first page reads this chapter's results from it; run the chapter again")

    def _fail(self, key: str, wants: str) -> FindingsError:
        got = "missing" if key not in self.m else f"{str(self.m[key])[:60]!r}"
        return FindingsError(f"{shown(self.path)}: {key!r} is {got}, not {wants}: run chapter "
                             f"{self.path.parent.name} again")

    def has(self, key: str) -> bool:
        return key in self.m

    def number(self, key: str, source: dict | None = None, where: str = "") -> float:
        v = (self.m if source is None else source).get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self._fail(where + key, "a finite number")
        return float(v)

    def count(self, key: str) -> int:
        v = self.number(key)
        if v != int(v) or v < 0:
            raise self._fail(key, "a count")
        return int(v)

    def text(self, key: str) -> str:
        v = self.m.get(key)
        if not isinstance(v, str):
            raise self._fail(key, "a text")
        return v

    def flag(self, key: str) -> bool:
        v = self.m.get(key)
        if not isinstance(v, bool):
            raise self._fail(key, "true or false")
        return v

    def interval(self, key: str) -> Interval:
        ci = self.m.get(f"{key}_ci95")
        if not (isinstance(ci, list) and len(ci) == 2):
            raise self._fail(f"{key}_ci95", "a pair of numbers")
        low, high = (self.number(str(i), {str(i): x}, f"{key}_ci95 item ") for i, x in enumerate(ci))
        return Interval(self.number(key), low, high)

    def comparison(self, record, key: str) -> Comparison:
        if not isinstance(record, dict):
            raise self._fail(key, "a comparison")
        ci = record.get("ci95")
        if not (isinstance(ci, list) and len(ci) == 2):
            raise self._fail(f"{key}.ci95", "a pair of numbers")
        low, high = (self.number(str(i), {str(i): x}, f"{key}.ci95 item ") for i, x in enumerate(ci))
        names = [record.get(k) for k in ("a", "b", "metric", "test")]
        if not all(isinstance(n, str) for n in names):
            raise self._fail(key, "a comparison with a, b, metric and test named")
        return Comparison(*names[:3], self.number("difference", record, f"{key}."), low, high,
                          self.number("p_value", record, f"{key}."), names[3],
                          self.number("p_floor", record, f"{key}.") if "p_floor" in record else 0.0)

    def spread(self, key: str) -> SeedSpread | None:
        s = self.m.get(key)
        if s is None:
            return None
        if not isinstance(s, dict):
            raise self._fail(key, "a spread over seeds")
        n = self.number("n", s, f"{key}.")
        if n < 1:
            return None
        return SeedSpread(int(n), *(self.number(k, s, f"{key}.") for k in ("min", "max", "mean")))


def _data(m: _Metrics) -> DataFound:
    return DataFound(m.text("data_source"), m.flag("is_synthetic"), m.count("n_files"), m.count("n_usable"),
                     m.count("n_classes"))


def _baseline(m: _Metrics) -> BaselineFound:
    return BaselineFound(m.interval("val_accuracy"), m.interval("val_balanced_accuracy"))


def _tuning(m: _Metrics) -> TuningFound:
    return TuningFound(m.comparison(m.m.get("tuned_vs_baseline_accuracy"), "tuned_vs_baseline_accuracy"))


def _augmentation(m: _Metrics) -> AugmentationFound:
    key = "augmented_vs_baseline_balanced_accuracy"
    return AugmentationFound(m.comparison(m.m.get(key), key), m.spread("augmented_minus_baseline_balanced_accuracy_seeds"))


def _test(m: _Metrics, folder: Path) -> TestFound:
    comparisons = m.m.get("comparisons", [])
    if not isinstance(comparisons, list):
        raise m._fail("comparisons", "a list of comparisons")
    source = m.text("model_source")
    if source not in ("run", "study"):
        raise m._fail("model_source", "'run' or 'study'")
    return TestFound(source, _eval_split(m, folder), m.count("n_test"),
                     {k: m.interval(f"{k}_test_accuracy") for k in MODELS},
                     {k: m.interval(f"{k}_test_balanced_accuracy") for k in MODELS},
                     tuple(m.comparison(c, f"comparisons[{i}]") for i, c in enumerate(comparisons)),
                     m.interval("neu_recall"))


def _eval_split(m: _Metrics, folder: Path) -> str | None:
    """What chapter 5 evaluated: from its results, else from the parameters the runner gave it, else unknown."""
    if m.has("eval_split"):
        split = m.text("eval_split")
    elif (folder / records.CHAPTER_RECORD).is_file():
        split = records.chapter_record(folder)["parameters"].get("eval_split", DEFAULT_EVAL_SPLIT)
    else:
        return None
    return split if split in EVAL_SPLITS else None


def _xai(m: _Metrics) -> XaiFound:
    fills = m.m.get("fills")
    if not isinstance(fills, dict) or not fills:
        raise m._fail("fills", "a mapping of fills")
    verdicts: dict[str, dict[str, str]] = {}
    for key, _ in XAI_MEANINGS:
        for fill, record in fills.items():
            differences = record.get("differences") if isinstance(record, dict) else None
            if not isinstance(differences, dict) or key not in differences:
                raise m._fail(f"fills.{fill}.differences.{key}", "a comparison")
            verdicts.setdefault(key, {})[fill] = m.comparison(differences[key], f"fills.{fill}.{key}").verdict
    return XaiFound({k: m.text(f"sufficient_n_{k}_text") for k in ("predicted", "first", "random")}, verdicts,
                    *_robustness(m))


def _robustness(m: _Metrics) -> tuple:
    """(images, settings the finding holds in, settings, closest fill), or Nones for a run without the sections."""
    if not m.has("robustness_settings_count"):
        return None, None, None, None
    sizes = m.m.get("robustness_sizes")
    if not isinstance(sizes, dict) or not isinstance(sizes.get("robustness"), int):
        raise m._fail("robustness_sizes.robustness", "a count of images")
    closest = m.text("fill_closest") if m.has("fill_closest") else None
    return sizes["robustness"], m.count("robustness_holds_in"), m.count("robustness_settings_count"), closest


READERS = {"01_data": _data, "02_baseline": _baseline, "03_tuning": _tuning, "04_augmentation": _augmentation,
           "06_xai": _xai}


def _run(run_dir: Path) -> RunFound:
    path = run_dir / records.RUN_RECORD
    if not path.is_file():
        return RunFound()
    r = records.read(path, "the first page reads the run's profile and chapter times from it")

    def text(key):
        v = r.get(key)
        return v if isinstance(v, str) and v else None

    def times(key):
        out = {}
        for e in r.get(key, []) if isinstance(r.get(key), list) else []:
            s = e.get("seconds") if isinstance(e, dict) else None
            if isinstance(e, dict) and isinstance(e.get("chapter"), str) and isinstance(s, (int, float)) \
                    and not isinstance(s, bool) and math.isfinite(s) and s >= 0:
                out[e["chapter"]] = float(s)
        return out

    return RunFound(text("profile") or NOT_RECORDED, text("description") or "", text("started") or NOT_RECORDED,
                    text("machine") or "", times("chapters"), times("kept"))


def load(run_dir) -> Findings:
    """Every chapter's results in ``run_dir`` (``None`` for a chapter that did not run) and the run's record."""
    run_dir = Path(run_dir)
    found = {}
    for name in CHAPTERS:
        path = run_dir / name / "metrics.json"
        if not path.is_file():
            found[name] = None
        elif name == "05_test_results":
            found[name] = _test(_Metrics(path), path.parent)
        else:
            found[name] = READERS[name](_Metrics(path))
    return Findings(*(found[name] for name in CHAPTERS), run=_run(run_dir))
