"""Chapter 06 on the page: the explained sample, LIME and its controls, sufficiency under four fills.

Every step takes the sample (:class:`XaiSample`) and the earlier steps' results as arguments
and returns a frozen result: its facts under the keys its class declares (``KEYS``, for
``metrics.json`` and glue) and its sentences (:mod:`cytokit.pages.xai_words`). No step reads
another's numbers from a shared dict, and no step depends on another having run except
through its arguments. The reviewer's checks of the explanations and the chapter's closing
sentences are in :mod:`cytokit.pages.xai_checks`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from cytokit import resources
from cytokit.book.chapter import ChapterData
from cytokit.data import embedded
from cytokit.evaluation import statistics
from cytokit.evaluation.statistics import Comparison
from cytokit.io import to_jsonable
from cytokit.pages import figures, words
from cytokit.pages import xai_words as say
from cytokit.xai import controls, explain, fills, gradcam, occlusion, superpixels
from cytokit.xai import images as xai_images
from cytokit.xai.sufficiency import STUDY_NS, THRESHOLD, SufficiencyResult, sufficiency

#: Explanations are made on 250 px images, the dataset's own size, where the study's quickshift settings hold.
XAI_SIZE = 250
#: The four rankings tested under every fill, as the page names them.
CURVES = {"top": "LIME, most relevant first", "first": "LIME for class 0 (the study's code)",
          "bottom": "LIME, least relevant first", "random": "random superpixels"}
#: The comparisons between rankings whose verdicts are read under every fill: (key, a, b, what it means).
COMPARISONS = (("predicted_minus_first", "top", "first", "explaining the predicted class beats explaining class 0"),
               ("lime_minus_random", "top", "random", "LIME's ranking beats a random one"),
               ("top_minus_bottom", "top", "bottom", "LIME's most relevant superpixels beat its least relevant"))
#: The study's rule: a ranking suffices where the explanation images keep this share of the full-image precision.
SHARE = "two thirds" if abs(THRESHOLD - 2 / 3) < 1e-9 else f"{THRESHOLD:.0%}"
#: Numbers of visible superpixels shown as confusion matrices.
CONFUSION_NS = (15, 35, 45, "all")
#: Explained images a class needs for its own curve.
PER_CLASS_MIN = 10
#: The class the study singled out, drawn thick in the per-class figure where present.
HIGHLIGHT = "PLM"


# --------------------------------------------------------------------------- the sample


@dataclass(frozen=True)
class XaiSample:
    """The explained images and all a step needs to know about them; every step of the chapter takes it.

    Position ``i`` is the same image in ``images``, ``segments``, ``y_true`` and the rows of ``chosen``.
    """

    model: object  # the augmented model, taking uint8 RGB images of XAI_SIZE px (resized inside the network)
    images: tuple  # uint8 (XAI_SIZE, XAI_SIZE, 3) arrays, as read from the dataset
    segments: tuple  # per image, its quickshift superpixels (int array, one id per pixel), the study's settings
    y_true: np.ndarray  # per image, the index of its true class in class_names
    class_names: tuple  # the dataset's class codes, in the order the model's outputs use
    chosen: pd.DataFrame  # per image, its manifest row (path, cls, split), in image order
    subset: np.ndarray  # positions (into images) of the stratified subset that the costly checks use
    split: str  # where the images come from: a split's name, or "all" (every usable image)
    data_dir: Path  # the dataset's folder (synthetic cells carry their cell and nucleus masks there)
    KEYS: ClassVar[tuple[str, ...]] = ("n_images", "n_classes_explained", "explained_split", "explained_per_class",
                                       "n_subset", "superpixels_mean", "superpixels_min", "superpixels_max")

    @property
    def counts(self) -> np.ndarray:
        """Superpixels per image."""
        return superpixels.counts(self.segments)

    @property
    def is_synthetic(self) -> bool:
        return embedded.is_synthetic(self.data_dir)

    def at(self, positions) -> tuple[list, list, np.ndarray]:
        """(images, segments, true classes) of the images at ``positions``, e.g. the subset."""
        idx = np.asarray(positions, dtype=int)
        return [self.images[i] for i in idx], [self.segments[i] for i in idx], self.y_true[idx]

    def facts(self) -> dict:
        counts = self.counts
        return {"n_images": len(self.images), "n_classes_explained": int(self.chosen["cls"].nunique()),
                "explained_split": "all usable images of the folder" if self.split == "all" else
                f"the {self.split} split",
                "explained_per_class": to_jsonable(self.chosen["cls"].value_counts().sort_index()),
                "n_subset": int(len(self.subset)), "superpixels_mean": float(np.mean(counts)),
                "superpixels_min": int(np.min(counts)), "superpixels_max": int(np.max(counts))}


def explained_sample(data: ChapterData, model_path, split: str, n_images: int, n_subset: int,
                     seed: int) -> XaiSample:
    """The augmented model fed 250 px images; a seeded sample stratified by class, its superpixels, its subset."""
    from cytokit.data import pipeline
    from cytokit.models.training import load_model

    model = xai_images.at_resolution(load_model(model_path), XAI_SIZE)
    chosen = xai_images.choose(data.manifest, None if split == "all" else split, n_images, seed=seed)
    images = tuple(pipeline.load_images(chosen, data.root, None, XAI_SIZE))
    segments = tuple(superpixels.superpixels_all(images, **superpixels.QUICKSHIFT))
    y_true = np.array([data.class_names.index(c) for c in chosen["cls"]])
    return XaiSample(model, images, segments, y_true, tuple(data.class_names), chosen,
                     xai_images.subset(chosen, n_subset, seed), split, Path(data.root))


# --------------------------------------------------------------------------- explanations and rankings


@dataclass(frozen=True)
class Explanations:
    """LIME's explanation of every image for the chapter's label mode and for class 0, and a random ranking."""

    label_mode: str
    lime: tuple  # per image, the Explanation of the label_mode's class (its ranking, weights, full-image probs)
    first: tuple  # per image, the Explanation of class 0, as the study's code made it
    random: tuple  # per image, its superpixel ids in a seeded random order
    y_true: np.ndarray
    KEYS: ClassVar[tuple[str, ...]] = ("full_image_accuracy",)

    @property
    def full_probs(self) -> np.ndarray:
        """The model's probabilities on the full images (N, C)."""
        return explain.full_probs(self.lime)

    @property
    def labels(self) -> list[int]:
        """The class each image's LIME explanation explains."""
        return [e.label for e in self.lime]

    def rankings(self, curve: str) -> list:
        """One superpixel order per image for a curve of :data:`CURVES`."""
        orders = {"top": lambda: [e.ranking for e in self.lime], "first": lambda: [e.ranking for e in self.first],
                  "bottom": lambda: [e.ranking[::-1] for e in self.lime], "random": lambda: list(self.random)}
        return orders[curve]()

    def facts(self) -> dict:
        return {"full_image_accuracy": float(np.mean(self.full_probs.argmax(axis=1) == self.y_true))}


def explain_sample(sample: XaiSample, label_mode: str, num_samples: int, seed: int) -> Explanations:
    """LIME for ``label_mode`` and for class 0 (the study's code) on every image, from one set of perturbations per
    image, and a seeded random ranking as the floor."""
    modes = tuple(dict.fromkeys([label_mode, "first"]))
    found = explain.explain_all_labels(sample.model, sample.images, sample.segments, modes, sample.y_true,
                                       num_samples, seed=seed)
    return Explanations(label_mode, tuple(found[label_mode]), tuple(found["first"]),
                        tuple(controls.random_rankings(sample.segments, seed=seed)), sample.y_true)


def gradcam_rankings(sample: XaiSample, lime: Explanations) -> tuple:
    """Per image, its superpixels ordered by Grad-CAM's mean heat for the class LIME explains, hottest first."""
    return tuple(gradcam.rankings(sample.model, sample.images, sample.segments, lime.labels))


# --------------------------------------------------------------------------- sufficiency under four fills


def _filler(kind: str, images, segments, seed: int):
    """``(i, image, segments, visible) -> occluded image`` for one fill, each image's fixed work done once."""
    made = {}

    def fill(i, image, segs, visible):
        if i not in made:
            made[i] = fills.filler(images[i], segments[i], kind, seed=explain.image_seed(seed, i))
        return made[i](visible)
    return fill


def _solved_ahead(images, segments, rankings, seed: int, pool, ns=STUDY_NS):
    """Imputation's filler for one ranking: every mask :func:`sufficiency` will ask of it (its top-n visible, each
    n below the image's superpixel count) solved ahead in ``pool``, the images :func:`_filler` would make."""
    ahead = {}
    for i, (image, segs) in enumerate(zip(images, segments)):
        count, order = len(np.unique(segs)), occlusion.rank_map(segs, rankings[i])
        masks = [order < n for n in ns if n != "all" and n < count]
        for mask, future in zip(masks, fills.submit_imputations(image, masks, explain.image_seed(seed, i),
                                                                fills.NOISE, pool)):
            ahead.setdefault((i, mask.tobytes()), []).append(future)

    def fill(i, image, segs, visible):
        waiting = ahead.get((i, np.asarray(visible, bool).tobytes()))
        return waiting.pop(0).result() if waiting else fills.fill(image, segs, visible, "imputed",
                                                                  seed=explain.image_seed(seed, i))
    return fill


def tested_images(sample: XaiSample, kind: str) -> np.ndarray:
    """The images a fill is tested on: the subset for imputation (a linear system per image and n), else all."""
    return np.asarray(sample.subset if kind in fills.MASK_DEPENDENT else np.arange(len(sample.images)))


def sufficiency_under_fills(sample: XaiSample, lime: Explanations, seed: int, workers: int | None = None) \
        -> FillSufficiency:
    """The study's test for every ranking of :data:`CURVES` under every fill; imputation's linear systems solved
    in ``workers`` processes (default: every core) while the model predicts."""
    results = {}
    for kind in fills.FILLS:
        idx = tested_images(sample, kind)
        images, segments, y_true = sample.at(idx)
        with fills.processes(workers) if kind in fills.MASK_DEPENDENT else contextlib.nullcontext() as pool:
            shared = _filler(kind, images, segments, seed) if pool is None else None  # each image's fill made once
            results[kind] = {}
            for curve in CURVES:
                rankings = [lime.rankings(curve)[i] for i in idx]
                filler = shared or _solved_ahead(images, segments, rankings, seed, pool)
                results[kind][curve] = sufficiency(sample.model, images, segments, rankings, y_true,
                                                   class_names=sample.class_names, full_probs=lime.full_probs[idx],
                                                   filler=filler)
    return FillSufficiency.of(results, seed)


@dataclass(frozen=True)
class FillSufficiency:
    """Every ranking's smallest sufficient n under every fill, with intervals over images, and the paired
    comparisons of the rankings' per-image accuracy."""

    results: dict  # fill -> curve -> SufficiencyResult: the predictions at every n, for figures and later checks
    curves: dict  # fill -> curve -> per-n table of accuracy and weighted precision with their intervals
    sufficient: dict  # fill -> curve -> (smallest sufficient n, low, high); None where no n tested suffices
    differences: dict  # fill -> comparison key of COMPARISONS -> Comparison of per-image accuracy over n
    images: dict  # fill -> images it was tested on
    full_image_precision: float  # weighted precision of the full images (grey fill's images: every image)
    full_image_correct: int  # full images the model calls right, of images["grey"]
    KEYS: ClassVar[tuple[str, ...]] = (
        "fills", "full_image_precision", "reference_statement", "sufficient_n_predicted", "sufficient_n_predicted_text",
        "sufficient_n_first", "sufficient_n_first_text", "sufficient_n_random", "sufficient_n_random_text",
        "sufficient_n_bottom", "sufficient_n_bottom_text")
    #: The grey fill's curves as the prose names them.
    NAMED: ClassVar[dict[str, str]] = {"predicted": "top", "first": "first", "random": "random", "bottom": "bottom"}

    @classmethod
    def of(cls, results: dict, seed: int) -> FillSufficiency:
        """The intervals and comparisons of ``results`` (fill -> curve -> SufficiencyResult), resampled with
        ``seed``."""
        curves = {kind: {c: r.curve_intervals(seed=seed) for c, r in by.items()} for kind, by in results.items()}
        sufficient = {kind: {c: r.sufficient_n_interval(seed=seed) for c, r in by.items()}
                      for kind, by in results.items()}
        differences = {kind: {key: _paired_accuracy(by[a], by[b], a, b) for key, a, b, _ in COMPARISONS}
                       for kind, by in results.items()}
        images = {kind: len(by["top"].y_true) for kind, by in results.items()}
        grey = results["grey"]["top"]
        return cls(results, curves, sufficient, differences, images, grey.reference("precision_weighted"),
                   int(np.sum(grey.full_pred == grey.y_true)))

    @property
    def threshold(self) -> float:
        """The weighted precision a ranking must reach: the study's share of the full-image precision."""
        return THRESHOLD * self.full_image_precision

    def reference_sentence(self) -> str:
        total = self.images["grey"]
        low, high = statistics.wilson(self.full_image_correct, total)
        return say.reference(self.full_image_correct, total, low, high, self.full_image_precision, SHARE)

    def sufficient_text(self, curve: str, kind: str = "grey") -> str:
        return say.sufficient_n_with_interval(*self.sufficient[kind][curve])

    def table(self) -> pd.DataFrame:
        """Per fill and ranking: the smallest sufficient n with its interval, marked when it rests on few images."""
        return pd.DataFrame({kind: {CURVES[c]: words.marked(self.sufficient_text(c, kind), self.images[kind])
                                    for c in CURVES} for kind in self.sufficient})

    def curves_for_figure(self, kind: str) -> dict[str, pd.DataFrame]:
        """The curves of one fill with their intervals, labelled for the figure."""
        return {CURVES[c]: table for c, table in self.curves[kind].items()}

    def _fill_record(self, kind: str) -> dict:
        """metrics.json's entry for one fill: curves with intervals, sufficient n with intervals, comparisons."""
        out = {"n_images": self.images[kind],
               "sufficient_n": {c: s[0] for c, s in self.sufficient[kind].items()},
               "sufficient_n_ci95": {c: [s[1], s[2]] for c, s in self.sufficient[kind].items()},
               "differences": {key: c.as_dict() for key, c in self.differences[kind].items()}}
        for curve, table in self.curves[kind].items():
            out[f"curve_{curve}"] = {m: {n: {"value": row[m], "ci95": [row[f"{m}_low"], row[f"{m}_high"]],
                                             "images": int(row["images"])} for n, row in table.iterrows()}
                                     for m in ("accuracy", "precision_weighted")}
        return out

    def facts(self) -> dict:
        out = {"fills": to_jsonable({kind: self._fill_record(kind) for kind in self.sufficient}),
               "full_image_precision": self.full_image_precision, "reference_statement": self.reference_sentence()}
        for name, curve in self.NAMED.items():
            out[f"sufficient_n_{name}"] = self.sufficient["grey"][curve][0]
            out[f"sufficient_n_{name}_text"] = self.sufficient_text(curve)
        return out


def _paired_accuracy(first: SufficiencyResult, second: SufficiencyResult, a: str, b: str) -> Comparison:
    """Per-image accuracy over n of two rankings, paired over the images both have a value for."""
    x, y = first.per_image_accuracy(), second.per_image_accuracy()
    both = ~np.isnan(x) & ~np.isnan(y)  # images with no n tested have no value
    return statistics.paired_mean_difference(x[both], y[both], (CURVES[a], CURVES[b]), "accuracy over n",
                                             bounds=(-1, 1))


@dataclass(frozen=True)
class FillVerdicts:
    """Each comparison of rankings under every fill: its verdict, and which conclusions hold under all fills."""

    differences: dict  # fill -> comparison key of COMPARISONS -> Comparison
    KEYS: ClassVar[tuple[str, ...]] = ("fills_statement",)

    def table(self) -> pd.DataFrame:
        """Per comparison (rows) and fill (columns): the difference, its interval, p-value and verdict."""
        return pd.DataFrame({kind: {meaning: say.difference_cell(by[key]) for key, _, _, meaning in COMPARISONS}
                             for kind, by in self.differences.items()})

    def sentence(self) -> str:
        held = [say.across_fills(meaning, {kind: by[key].verdict for kind, by in self.differences.items()})
                for key, _, _, meaning in COMPARISONS]
        family = [by[key].as_dict() for by in self.differences.values() for key, *_ in COMPARISONS]
        return " ".join([*held, words.family(family, "differences in the table")])

    def facts(self) -> dict:
        return {"fills_statement": self.sentence()}


def fill_verdicts(suff: FillSufficiency) -> FillVerdicts:
    """Which comparisons of rankings hold under every fill."""
    return FillVerdicts(suff.differences)


# --------------------------------------------------------------------------- per class and where the images go


@dataclass(frozen=True)
class PerClassCurves:
    """Accuracy of each class's explanation images at every n (grey fill, LIME's ranking), with Wilson intervals."""

    table: pd.DataFrame  # columns code, n, images, accuracy, low, high; classes with PER_CLASS_MIN images or more
    images_per_class: pd.Series  # explained images of every class in the sample, by code
    KEYS: ClassVar[tuple[str, ...]] = ("per_class_curves", "per_class_statement")

    def sentence(self) -> str:
        return say.per_class(list(dict.fromkeys(self.table["code"])), PER_CLASS_MIN, HIGHLIGHT)

    def facts(self) -> dict:
        return {"per_class_curves": to_jsonable(self.table), "per_class_statement": self.sentence()}


def per_class_curves(suff: FillSufficiency) -> PerClassCurves:
    """Per class with enough explained images: the share of its explanation images still called right at each n."""
    result = suff.results["grey"]["top"]
    rows = []
    for c in np.unique(result.y_true):
        members = result.y_true == c
        if members.sum() < PER_CLASS_MIN:
            continue
        for n in result.ns:
            used = result.used(n) & members if n != "all" else members
            pred = result.predictions(n) if n != "all" else result.full_pred
            hits, total = int((pred[used] == c).sum()), int(used.sum())
            low, high = statistics.wilson(hits, total)
            rows.append({"code": result.class_names[c], "n": str(n), "images": total,
                         "accuracy": hits / total if total else np.nan, "low": low, "high": high})
    counts = pd.Series({result.class_names[c]: int((result.y_true == c).sum()) for c in np.unique(result.y_true)})
    return PerClassCurves(pd.DataFrame(rows, columns=["code", "n", "images", "accuracy", "low", "high"]), counts)


@dataclass(frozen=True)
class Absorbers:
    """The classes that take most occluded images at each n (grey fill, LIME's ranking)."""

    table: pd.DataFrame  # columns n, rank, code, share
    KEYS: ClassVar[tuple[str, ...]] = ("absorbers",)

    def wide(self) -> pd.DataFrame:
        """One row per n: the classes that take most explanation images there, with their shares (none: blank)."""
        cells = self.table.assign(cell=[f"{c} ({s:.0%})" if s > 0 else "" for c, s in
                                        zip(self.table["code"], self.table["share"])])
        wide = cells.pivot(index="n", columns="rank", values="cell").loc[list(dict.fromkeys(self.table["n"]))]
        wide = wide.rename(columns={1: "most", 2: "second", 3: "third"}).rename_axis(columns=None)
        return wide.loc[:, (wide.fillna("") != "").any()]  # a rank no n fills is left out

    def facts(self) -> dict:
        return {"absorbers": to_jsonable(self.table)}


def absorbers(suff: FillSufficiency) -> Absorbers:
    """The three classes that take most explanation images at each n."""
    return Absorbers(suff.results["grey"]["top"].top_absorbers(3))


def confusions(suff: FillSufficiency) -> dict:
    """Row-normalised confusion matrices of the explanation images (grey, LIME's ranking) at :data:`CONFUSION_NS`."""
    return {n: suff.results["grey"]["top"].confusion(n, normalize=True) for n in CONFUSION_NS}


# --------------------------------------------------------------------------- figures' data and the study


def example_panel(sample: XaiSample, lime: Explanations, seed: int) -> dict:
    """A few images of different classes: top 5, 15, 25, 40 superpixels, the full image and Grad-CAM."""
    picks = xai_images.example_indices(sample.y_true, k=4, seed=seed)
    heat = gradcam.gradcam(sample.model, np.stack([sample.images[i] for i in picks]), [lime.labels[i] for i in picks])
    panel = {}
    for j, i in enumerate(picks):
        image, segments, ranking = sample.images[i], sample.segments[i], lime.lime[i].ranking
        panel[f"{sample.class_names[sample.y_true[i]]} #{j + 1}"] = [
            *(occlusion.keep_top(image, segments, ranking, n) for n in (5, 15, 25, 40)), image,
            xai_images.heat_overlay(image, heat[j])]
    return panel


def explorer(sample: XaiSample, lime: Explanations, settings=None, n: int = 12, seed: int = 0):
    """The page's explorer: about ``n`` images of different classes, each occluded (grey) at every n of the study,
    with the model's probabilities; given the chapter's ``settings`` (:class:`cytokit.pages.xai_checks.LimeSettings`),
    about half as many of their images, each in every setting (LIME seed, perturbations, superpixels)."""
    ns = [k for k in STUDY_NS if k != "all"]
    if settings is None:
        picks = xai_images.class_by_class(sample.chosen["cls"].to_numpy(), seed)[:n]
        entries = [(i, "", sample.segments[i], lime.lime[i].ranking) for i in picks]
    else:
        classes = sample.chosen["cls"].to_numpy()[list(settings.positions)]
        picks = xai_images.class_by_class(classes, seed)[:max(1, n // 2)]  # one image per class in turn
        entries = [(settings.positions[j], f" · {s.name}", settings.runs[s.name].segments[j],
                    settings.runs[s.name].predicted[j].ranking) for j in picks for s in settings.settings]
    predict = occlusion.classifier(sample.model)
    shown, probs, titles, numbers = [], [], [], {}
    for i, setting, segments, ranking in entries:
        ranks = occlusion.rank_map(segments, ranking)
        row = [occlusion.compose(sample.images[i], ranks < k, occlusion.GREY) for k in ns] + [sample.images[i]]
        shown.append(row)
        probs.append(predict(np.stack(row)))
        numbers.setdefault(i, len(numbers) + 1)
        titles.append(f"{sample.class_names[sample.y_true[i]]} #{numbers[i]}{setting}")
    return figures.sufficiency_explorer(shown, titles, [*map(str, ns), "all"], sample.class_names, np.stack(probs),
                                        fill_name="grey", true_labels=[int(sample.y_true[i]) for i, *_ in entries])


def beside_study(sample: XaiSample, suff: FillSufficiency) -> pd.DataFrame:
    """Mean superpixels and the smallest sufficient n (grey fill), this run's rankings beside the study's figures."""
    facts = resources.table("lime_facts").set_index("key")["value"]
    table = pd.DataFrame({"study (published)": [facts.get("mean_superpixels", "43"),
                                                facts.get("sufficient_n_global", "40")]},
                         index=["mean superpixels per image", "smallest sufficient n (grey)"])
    for curve in ("top", "first", "random"):
        table[f"this run, {CURVES[curve]}"] = [round(float(np.mean(sample.counts)), 1), suff.sufficient_text(curve)]
    return table
