"""Does the finding survive LIME's own noise and the choices nobody varied?

The finding: explaining the predicted class suffices with fewer superpixels than
explaining class 0 (the study's code), and LIME's ranking beats a random one. Both come
from one LIME seed, 128 perturbations and the study's quickshift settings. Each
:class:`Setting` changes one of those -- another LIME seed, 1,000 perturbations (Shah and
Sheppard's), quickshift with a smaller or a larger kernel, SLIC (Achanta et al., 2012) at
about the same number of segments -- and the same images are explained again, their
sufficiency tested (grey fill) and the two comparisons read as chapter 06 reads them: the
per-image accuracy of the explanation images averaged over n, paired. The finding *holds*
in a setting when both comparisons come out "better". How much the settings' rankings
agree with the study's is measured per image (:mod:`cytokit.xai.agreement`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cytokit.evaluation import statistics
from cytokit.io import to_jsonable
from cytokit.xai import agreement, controls, criterion
from cytokit.xai.explain import STUDY_SAMPLES, explain_all_labels, full_probs
from cytokit.xai.occlusion import GREY, classifier
from cytokit.xai.sufficiency import CRITERIA, STUDY_NS, sufficiency
from cytokit.xai.superpixels import QUICKSHIFT, SLIC_COMPACTNESS, superpixels_all

#: The rankings each setting tests, as chapter 06 names them.
RANKINGS = ("predicted", "first", "random")
#: The comparisons whose verdicts make the finding: (key, a, b).
FINDING = (("predicted_vs_first", "predicted", "first"), ("lime_vs_random", "predicted", "random"))
#: Top superpixels compared between settings (the study's top 5).
TOP_K = 5


@dataclass(frozen=True)
class Setting:
    """One way to explain: a segmentation and its parameters, a LIME seed and a number of perturbations."""

    name: str
    method: str = "quickshift"
    params: tuple = tuple(sorted(QUICKSHIFT.items()))
    seed: int = 0
    num_samples: int = STUDY_SAMPLES

    @property
    def segmentation(self) -> tuple:
        """What the superpixels depend on: settings equal here share their segments."""
        return self.method, self.params

    def as_dict(self) -> dict:
        return {"name": self.name, "segmentation": self.method, **dict(self.params), "lime_seed": self.seed,
                "num_samples": self.num_samples}


def study_settings(seed: int = 0, num_samples: int = STUDY_SAMPLES, more_samples: int = 1000, lime_seeds: int = 3,
                   kernels=(3, 5), n_segments: int = 45) -> list[Setting]:
    """The study's setting first, then other LIME seeds, more perturbations, other kernels and SLIC."""
    study = Setting("study", seed=seed, num_samples=num_samples)
    out = [study]
    out += [Setting(f"LIME seed {seed + k}", seed=seed + k, num_samples=num_samples) for k in range(1, lime_seeds)]
    out.append(Setting(f"{more_samples:,} perturbations", seed=seed, num_samples=more_samples))
    for kernel in kernels:
        params = tuple(sorted({**QUICKSHIFT, "kernel_size": kernel}.items()))
        out.append(Setting(f"quickshift kernel {kernel}", "quickshift", params, seed, num_samples))
    out.append(Setting(f"SLIC, {n_segments} segments", "slic",
                       tuple(sorted({"n_segments": int(n_segments), "compactness": SLIC_COMPACTNESS}.items())),
                       seed, num_samples))
    return out


@dataclass(frozen=True)
class SettingRun:
    """One setting's superpixels and rankings of every image: LIME for the predicted class and class 0, random."""

    setting: Setting
    segments: list
    predicted: list  # Explanation per image
    first: list  # Explanation per image
    random: list  # superpixel order per image

    def rankings(self, name: str) -> list:
        return {"predicted": self.predicted, "first": self.first, "random": self.random}[name]


def run_setting(model, images, setting: Setting, segments=None, batch_size: int = 256,
                progress: bool = True) -> SettingRun:
    """Segment (unless ``segments`` are given) and explain every image in one setting.

    One set of perturbations per image serves the predicted class and class 0
    (:func:`cytokit.xai.explain.explain_all_labels`); the random ranking is seeded by the
    setting's seed.
    """
    if segments is None:
        segments = superpixels_all(images, progress=progress, method=setting.method, **dict(setting.params))
    found = explain_all_labels(model, images, segments, ("predicted", "first"), None, setting.num_samples, GREY,
                               setting.seed, batch_size, progress)
    return SettingRun(setting, list(segments), found["predicted"], found["first"],
                      controls.random_rankings(segments, setting.seed))


def explain_settings(model, images, settings: Sequence[Setting], runs: dict | None = None, batch_size: int = 256,
                     progress: bool = True) -> dict:
    """Every setting's :class:`SettingRun` on the same images: ``runs`` already made (by setting name) are kept,
    and settings with the same segmentation share their superpixels."""
    runs = dict(runs or {})
    segments = {r.setting.segmentation: r.segments for r in runs.values()}
    for s in settings:
        if s.name not in runs:
            runs[s.name] = run_setting(model, images, s, segments.get(s.segmentation), batch_size, progress)
            segments[s.segmentation] = runs[s.name].segments
    return runs


def paired_accuracy(a, b, names) -> statistics.Comparison:
    """Per-image accuracy over n of two rankings, paired on the images where both have one."""
    x, y = a.per_image_accuracy(), b.per_image_accuracy()
    both = np.isfinite(x) & np.isfinite(y)
    return statistics.paired_mean_difference(x[both], y[both], names, "accuracy over n")


def setting_verdicts(model, images, y_true, run: SettingRun, class_names, ns=STUDY_NS, criteria=CRITERIA,
                     resamples: int = statistics.RESAMPLES, seed: int = 0, batch_size: int = 256) -> dict:
    """One row of the robustness table: smallest sufficient n per criterion and ranking, both comparisons."""
    predict = classifier(model, batch_size)
    full = full_probs(run.predicted)
    results = {name: sufficiency(predict, images, run.segments, run.rankings(name), y_true, ns, class_names,
                                 full_probs=full, batch_size=batch_size, progress=False) for name in RANKINGS}
    row = {"setting": run.setting.name, "superpixels": float(np.mean([len(np.unique(s)) for s in run.segments]))}
    for c in criteria:
        for name in RANKINGS:
            row[f"n_{c}_{name}"] = criterion.sufficient_n(results[name], c, resamples=resamples, seed=seed)
    for key, a, b in FINDING:
        row[key] = paired_accuracy(results[a], results[b], (a, b))
    row["holds"] = all(row[key].verdict == statistics.BETTER for key, _, _ in FINDING)
    return row


def agreement_with(base: SettingRun, other: SettingRun, k: int = TOP_K) -> dict[str, np.ndarray]:
    """Per image: feature and rank agreement of the top ``k`` and the weights' Spearman (same superpixels only),
    pixel agreement over the area of the base's top ``k``, and that area (the pixel agreement of chance)."""
    same = all(np.array_equal(a, b) for a, b in zip(base.segments, other.segments))
    nan = np.full(len(base.segments), np.nan)
    shares = np.array([agreement.top_area_share(s, e.ranking, k) for s, e in zip(base.segments, base.predicted)])
    pixels = np.array([agreement.pixel_agreement(sa, a.ranking, sb, b.ranking, q) for sa, a, sb, b, q in
                       zip(base.segments, base.predicted, other.segments, other.predicted, shares)])
    return {"feature_agreement": np.array([agreement.feature_agreement(a.ranking, b.ranking, k) for a, b in
                                           zip(base.predicted, other.predicted)]) if same else nan,
            "rank_agreement": np.array([agreement.rank_agreement(a.ranking, b.ranking, k) for a, b in
                                        zip(base.predicted, other.predicted)]) if same else nan,
            "spearman": controls.weight_correlations(base.predicted, other.predicted) if same else nan,
            "pixel_agreement": pixels, "pixel_chance": shares}


def mean_where_defined(values, bounds: tuple | None = None) -> statistics.Interval:
    """The mean over the images with a value, its interval cut to ``bounds``; undefined (NaN, 0 images) where
    none has one, as feature agreement between two segmentations, which share no superpixels."""
    values = np.asarray(values, dtype=float)
    defined = values[np.isfinite(values)]
    if not len(defined):
        return statistics.Interval(*[float("nan")] * 3, 0)
    return statistics.mean_interval(defined, bounds=bounds)


@dataclass(frozen=True)
class RobustnessResult:
    """The robustness table (setting x verdict, with intervals), agreement with the study's setting, and k of m."""

    table: pd.DataFrame  # index setting; SufficientN and Comparison cells, "holds"
    agreement: pd.DataFrame  # index setting; mean, low, high of each agreement measure
    settings: tuple
    images: int

    @property
    def holds_in(self) -> tuple[int, int]:
        """(k, m): the finding holds in k of m settings."""
        return int(self.table["holds"].sum()), int(len(self.table))

    def facts(self) -> dict:
        """metrics.json's ``robustness`` entry."""
        k, m = self.holds_in
        rows = {}
        for name, row in self.table.iterrows():
            rows[name] = {col: (v.as_dict() if hasattr(v, "as_dict") else v) for col, v in row.items()}
        return to_jsonable({"images": self.images, "holds_in": k, "settings_count": m,
                            "settings": [s.as_dict() for s in self.settings], "verdicts": rows,
                            "agreement_with_study": self.agreement.to_dict(orient="index"),
                            "holds_when": "predicted beats class 0 and LIME beats random (accuracy over n, paired)"})


def robustness(model, images, y_true, class_names, settings: Sequence[Setting], runs: dict | None = None,
               ns=STUDY_NS, criteria=CRITERIA, k: int = TOP_K, resamples: int = statistics.RESAMPLES, seed: int = 0,
               batch_size: int = 256, progress: bool = True) -> RobustnessResult:
    """Every setting's verdicts on the same images, and each setting's agreement with the first (the study's).

    ``runs`` maps setting names to :class:`SettingRun` already made (a cache, or the
    chapter's own explanations for the study's setting); the others are made here, and
    settings with the same segmentation share their superpixels.
    """
    runs = explain_settings(model, images, settings, runs, batch_size, progress)
    y_true = np.asarray(y_true)
    rows = [setting_verdicts(model, images, y_true, runs[s.name], class_names, ns, criteria, resamples, seed,
                             batch_size) for s in settings]
    base = runs[settings[0].name]
    agree = []
    for s in settings[1:]:
        found = agreement_with(base, runs[s.name], k)
        row = {"setting": s.name}
        for key, values in found.items():
            iv = mean_where_defined(values, (-1, 1) if key == "spearman" else (0, 1))
            row.update({key: iv.estimate, f"{key}_low": iv.low, f"{key}_high": iv.high, f"{key}_images": iv.n})
        agree.append(row)
    return RobustnessResult(pd.DataFrame(rows).set_index("setting"), pd.DataFrame(agree).set_index("setting"),
                            tuple(settings), len(images))

