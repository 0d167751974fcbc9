"""Chapter 06's checks of the explanations: weight randomisation, LIME's stability, deletion and insertion against
Grad-CAM and random rankings, ground truth on synthetic cells; and the chapter's closing sentences.

Each step takes the sample (:class:`cytokit.pages.xai.XaiSample`) and the explanations it checks
(:class:`cytokit.pages.xai.Explanations`, Grad-CAM's rankings) as arguments and returns a frozen
result with its facts (``KEYS``) and sentences (:mod:`cytokit.pages.xai_words`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from cytokit.data import synthetic
from cytokit.evaluation import statistics
from cytokit.evaluation.statistics import Interval
from cytokit.io import to_jsonable
from cytokit.pages import words
from cytokit.pages import xai_words as say
from cytokit.pages.xai import SHARE, Explanations, FillSufficiency, FillVerdicts, XaiSample
from cytokit.xai import controls, deletion
from cytokit.xai import images as xai_images
from cytokit.xai import randomisation as cascade
from cytokit.xai import robustness as settings_lib
from cytokit.xai.superpixels import counts as superpixel_counts

#: Ranking methods of the deletion and insertion curves, and how their keys spell them.
AUC_METHODS = {"LIME": "lime", "Grad-CAM": "gradcam", "random": "random"}


@dataclass(frozen=True)
class Randomisation:
    """Spearman of each randomised model's explanations with the trained model's, per cascade step and method."""

    summary: pd.DataFrame  # cascade.summarise: order, step, method, mean, low, high, n, undefined
    verdicts: dict  # method -> "passes", "fails", "inconclusive" or "not measured"
    KEYS: ClassVar[tuple[str, ...]] = ("randomisation", "randomisation_statement")

    def table(self) -> pd.DataFrame:
        s = self.summary
        shown = [words.marked(words.number_with_interval(m, lo, hi), n)
                 for m, lo, hi, n in zip(s["mean"], s["low"], s["high"], s["n"])]
        return s.assign(spearman=shown)[["step", "method", "spearman", "n"]].set_index(["step", "method"])

    def sentence(self) -> str:
        return say.randomisation(self.verdicts)

    def facts(self) -> dict:
        steps = [{"order": int(r.order), "step": r.step, "method": r.method, "spearman": r.mean,
                  "ci95": [r.low, r.high], "images": int(r.n)} for r in self.summary.itertuples()]
        return {"randomisation": to_jsonable({"steps": steps, "verdicts": self.verdicts}),
                "randomisation_statement": self.sentence()}


def randomisation(sample: XaiSample, lime: Explanations, seed: int) -> Randomisation:
    """The subset explained again under cascading weight randomisation, LIME with each image's own draws."""
    images, segments, _ = sample.at(sample.subset)
    table = cascade.randomisation_check(sample.model, images, segments, trained=[lime.lime[i] for i in sample.subset],
                                        seed=seed, randomisation_seed=seed)
    summary = cascade.summarise(table)
    return Randomisation(summary, dict(summary.attrs["verdicts"]))


@dataclass(frozen=True)
class Stability:
    """LIME against itself on the subset: other seeds, and more perturbations."""

    seed_top5: Interval  # mean Jaccard overlap of the top five superpixels between seeds
    seed_spearman: Interval  # mean Spearman correlation of the weights between seeds
    samples_top5: Interval  # the same, num_samples against more_samples perturbations
    samples_spearman: Interval
    seeds: int
    num_samples: int
    more_samples: int
    KEYS: ClassVar[tuple[str, ...]] = ("stability", "stability_statement")
    LABELS: ClassVar[dict[str, str]] = {"seed_top5": "top-5 overlap between LIME seeds",
                                        "seed_spearman": "Spearman of the weights between LIME seeds",
                                        "samples_top5": "top-5 overlap, {0} vs {1} perturbations",
                                        "samples_spearman": "Spearman of the weights, {0} vs {1}"}

    def table(self) -> pd.DataFrame:
        rows = [{"check": label.format(self.num_samples, self.more_samples),
                 "mean": words.marked(words.number_with_interval(iv.estimate, iv.low, iv.high), iv.n), "images": iv.n}
                for label, iv in zip(self.LABELS.values(), self._intervals())]
        return pd.DataFrame(rows).set_index("check")

    def _intervals(self) -> list[Interval]:
        return [self.seed_top5, self.seed_spearman, self.samples_top5, self.samples_spearman]

    def sentence(self) -> str:
        return say.stability(self.seed_top5, self.seed_spearman, self.samples_top5, self.seeds, self.num_samples,
                             self.more_samples)

    def facts(self) -> dict:
        names = ("lime_seed_top5_overlap", "lime_seed_spearman", "samples_top5_overlap", "samples_spearman")
        record = {k: {"value": iv.estimate, "ci95": iv.as_list(), "images": iv.n}
                  for k, iv in zip(names, self._intervals())}
        record["samples_compared"] = [self.num_samples, self.more_samples]
        return {"stability": to_jsonable(record), "stability_statement": self.sentence()}


@dataclass(frozen=True)
class LimeSettings:
    """A stratified part of the sample explained again in every setting the robustness section varies: other LIME
    seeds, more perturbations, other superpixels. The stability check and the robustness table both read it."""

    positions: tuple  # the images explained again: positions in the chapter's sample
    settings: tuple  # robustness.Setting, the study's first
    runs: dict  # setting name -> robustness.SettingRun on those images (the study's: the chapter's own explanations)

    def _matching(self, same_samples: bool) -> list:
        """The settings on the study's superpixels: other seeds (same samples) or more perturbations."""
        study = self.settings[0]
        return [s for s in self.settings if s.segmentation == study.segmentation
                and (s.num_samples == study.num_samples) == same_samples]

    @property
    def seed_runs(self) -> list:
        """Per LIME seed on the study's superpixels and samples, its explanations of the predicted class."""
        return [self.runs[s.name].predicted for s in self._matching(True)]

    @property
    def more(self):
        """The setting with more perturbations (the study's seed and superpixels), or None."""
        found = [s for s in self._matching(False) if s.seed == self.settings[0].seed]
        return found[0] if found else None


def lime_settings(sample: XaiSample, lime: Explanations, n_robust: int, lime_seeds: int, more_samples: int,
                  seed: int) -> LimeSettings:
    """``n_robust`` images of the sample, stratified, explained again with ``lime_seeds`` seeds, ``more_samples``
    perturbations and three other segmentations; the study's own setting is the chapter's explanations."""
    positions = robust_positions(sample.chosen, n_robust, seed)
    return settings_at(sample.model, list(sample.images), list(sample.segments), list(lime.lime), list(lime.first),
                       list(lime.random), positions, lime_seeds, more_samples, seed)


def robust_positions(chosen, n_robust: int, seed: int) -> tuple:
    """The stratified, seeded part of the sample that every setting explains again."""
    rows = chosen.reset_index(drop=True)
    return tuple(int(i) for i in xai_images.subset(rows, min(int(n_robust), len(rows)), seed))


def settings_at(model, images, segments, predicted, first, random_rankings, positions, lime_seeds: int,
                more_samples: int, seed: int, progress: bool = False) -> LimeSettings:
    """:class:`LimeSettings` of the images at ``positions``: the study's setting from ``predicted``, ``first`` and
    ``random_rankings`` where those explain the predicted class with one number of samples, every other setting
    explained here (:func:`cytokit.xai.robustness.explain_settings`)."""
    at = [int(i) for i in positions]
    images, segments = [images[i] for i in at], [segments[i] for i in at]
    predicted, first, random_rankings = ([items[i] for i in at] for items in (predicted, first, random_rankings))
    samples = sorted({e.num_samples for e in predicted})
    if int(more_samples) <= samples[0]:
        raise ValueError(f"more_samples={more_samples} must be more than the {samples[0]} perturbations the chapter's "
                         "LIME used: the stability check compares the two")
    mean_count = int(round(float(np.mean(superpixel_counts(segments)))))
    settings = settings_lib.study_settings(seed, samples[0], more_samples, lime_seeds, n_segments=mean_count)
    # explanations of another class (label_mode "true") cannot stand for the study's setting: explained again
    reusable = len(samples) == 1 and all(e.label_mode == "predicted" for e in predicted)
    runs = {"study": settings_lib.SettingRun(settings[0], segments, predicted, first, random_rankings)} \
        if reusable else {}
    return LimeSettings(tuple(at), tuple(settings),
                        settings_lib.explain_settings(model, images, settings, runs, progress=progress))


def stability(settings: LimeSettings) -> Stability:
    """LIME's ranking of the predicted class against itself: across the LIME seeds, and against more perturbations,
    on the images every setting explains."""
    runs, more = settings.seed_runs, settings.more
    if more is None:
        raise ValueError("the settings hold no run with more perturbations on the study's superpixels and seed")
    found = controls.stability(runs, settings.runs[more.name].predicted)
    ivs = {key: settings_lib.mean_where_defined(found[key], (-1, 1) if "spearman" in key else (0, 1))
           for key in ("seed_top5_overlap", "seed_spearman", "samples_top5_overlap", "samples_spearman")}
    return Stability(ivs["seed_top5_overlap"], ivs["seed_spearman"], ivs["samples_top5_overlap"],
                     ivs["samples_spearman"], len(runs), settings.settings[0].num_samples, more.num_samples)


@dataclass(frozen=True)
class DeletionInsertion:
    """Deletion and insertion AUCs of LIME, Grad-CAM and random rankings, and LIME against random."""

    aucs: dict  # method -> kind ("deletion", "insertion") -> Interval of the mean AUC over images
    differences: dict  # kind -> Comparison, LIME minus random, paired over images
    mean_curves: pd.DataFrame  # method, kind, fraction, prob: the curves averaged over images, for the figure
    KEYS: ClassVar[tuple[str, ...]] = (
        "deletion_insertion", "deletion_statement", "deletion_auc_lime", "insertion_auc_lime", "deletion_auc_gradcam",
        "insertion_auc_gradcam", "deletion_auc_random", "insertion_auc_random")

    def table(self) -> pd.DataFrame:
        """Per method (rows) and curve (columns): the mean AUC with its interval, marked when on few images."""
        cells = {method: {kind: words.marked(words.number_with_interval(iv.estimate, iv.low, iv.high, 3), iv.n)
                          for kind, iv in by.items()} for method, by in self.aucs.items()}
        return pd.DataFrame(cells).T.rename_axis("method")

    def sentence(self) -> str:
        return say.deletion(self.differences)

    def facts(self) -> dict:
        record = {method: {kind: {"value": iv.estimate, "ci95": iv.as_list(), "images": iv.n}
                           for kind, iv in by.items()} for method, by in self.aucs.items()}
        record.update({f"lime_minus_random_{kind}": c.as_dict() for kind, c in self.differences.items()})
        out = {"deletion_insertion": to_jsonable(record), "deletion_statement": self.sentence()}
        for method, key in AUC_METHODS.items():
            out.update({f"{kind}_auc_{key}": iv.estimate for kind, iv in self.aucs[method].items()})
        return out


def deletion_and_insertion(sample: XaiSample, lime: Explanations, gradcam_ranked: tuple,
                           steps: int = 10) -> DeletionInsertion:
    """Deletion and insertion curves of LIME's, Grad-CAM's and the random rankings, for LIME's explained class."""
    methods = {"LIME": lime.lime, "Grad-CAM": gradcam_ranked, "random": lime.random}
    curves = deletion.deletion_insertion(sample.model, sample.images, sample.segments, methods, lime.labels,
                                         steps=steps)
    aucs = curves.aucs()
    intervals = {}
    for (method, kind), group in aucs.groupby(["method", "kind"], sort=False):
        intervals.setdefault(method, {})[kind] = statistics.mean_interval(
            group.sort_values("image")["auc"].to_numpy(), bounds=(0, 1))
    differences = {}
    for kind in ("deletion", "insertion"):
        per = aucs[aucs["kind"] == kind].pivot(index="image", columns="method", values="auc")
        differences[kind] = statistics.paired_mean_difference(per["LIME"], per["random"], ("LIME", "random"),
                                                              f"{kind} AUC", bounds=(-1, 1))
    return DeletionInsertion(intervals, differences, curves.mean_curves())


@dataclass(frozen=True)
class GroundTruth:
    """On synthetic cells, the share of the top superpixels' area inside the cell and its nucleus, beside chance."""

    synthetic: bool
    localisation: pd.DataFrame | None  # per method and n: cell, nucleus, cell_chance, nucleus_chance; None on real
    KEYS: ClassVar[tuple[str, ...]] = ("ground_truth_statement", "localisation")

    def table(self) -> pd.DataFrame | None:
        """The localisation table, or nothing to show on real images (the sentence says why)."""
        return self.localisation

    def facts(self) -> dict:
        out = {"ground_truth_statement": say.ground_truth(self.synthetic)}
        if self.localisation is not None:
            out["localisation"] = to_jsonable(self.localisation.reset_index())
        return out


def ground_truth(sample: XaiSample, lime: Explanations, gradcam_ranked: tuple) -> GroundTruth:
    """How much of each ranking's top superpixels lies on the cell and its nucleus, where masks exist."""
    if not sample.is_synthetic:
        return GroundTruth(False, None)
    masks = [synthetic.masks(sample.data_dir, p) for p in sample.chosen["path"]]
    rankings = {"LIME": lime.lime, "Grad-CAM": gradcam_ranked, "random": lime.random}
    table = controls.localisation_table(sample.segments, rankings, masks, ns=(1, 5, 15))
    return GroundTruth(True, controls.localisation_summary(table))


# --------------------------------------------------------------------------- the chapter's closing


@dataclass(frozen=True)
class Conclusion:
    """The chapter's closing sentences: the study's criterion under grey, what holds under every fill, the checks."""

    grey: dict  # "predicted", "first", "random" -> smallest sufficient n with its interval, as text
    fills_statement: str
    synthetic: bool
    checks: str
    KEYS: ClassVar[tuple[str, ...]] = ("conclusion", "checks_statement")

    def facts(self) -> dict:
        return {"conclusion": say.conclusion(self.grey, self.fills_statement, SHARE, self.synthetic),
                "checks_statement": self.checks}


def conclusion(sample: XaiSample, suff: FillSufficiency, verdicts: FillVerdicts, randomised: Randomisation,
               deletion_insertion: DeletionInsertion, stable: Stability) -> Conclusion:
    """What the chapter found, from the results of its steps."""
    grey = {name: suff.sufficient_text(FillSufficiency.NAMED[name]) for name in ("predicted", "first", "random")}
    checks = say.checks(randomised.verdicts, deletion_insertion.differences["deletion"], stable.seed_top5,
                        stable.seeds)
    return Conclusion(grey, verdicts.sentence(), sample.is_synthetic, checks)
