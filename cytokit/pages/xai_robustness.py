"""Chapter 06's robustness sections: does the finding survive another criterion, LIME's own noise, other
superpixels, the fill, a combined score and layer-by-layer randomisation?

Each step is a plain function of the chapter's sample (the model fed 250 px images, the
images, their quickshift superpixels, the labels, and the LIME explanations the chapter
already made) and returns a frozen result that carries its facts for ``metrics.json``, its
table and its sentences (:mod:`cytokit.pages.xai_robustness_words`). The study's own setting
is never explained twice: its explanations, superpixels and sufficiency curves come from the
chapter. :func:`robustness_sections` runs every step on the subsets the profile's sizes ask for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from cytokit.data import embedded, synthetic
from cytokit.evaluation import statistics
from cytokit.io import to_jsonable
from cytokit.pages.xai import Explanations, FillSufficiency, XaiSample
from cytokit.pages.xai_checks import LimeSettings, Randomisation, robust_positions, settings_at
from cytokit.pages import words
from cytokit.pages import xai_robustness_words as say
from cytokit.xai import controls, criterion as criteria, fill_distance as distances, fills, gradcam, gradcam_layer
from cytokit.xai import occlusion, randomisation, robustness as settings_lib, srg
from cytokit.xai import images as xai_images
from cytokit.xai.explain import image_seed
from cytokit.xai.superpixels import counts

#: The rankings whose SRG is compared, and the pairs compared under every fill.
SRG_PAIRS = (("LIME", "Grad-CAM"), ("LIME", "random"), ("LIME", "class 0"), ("Grad-CAM", "random"))
#: The share of superpixels hidden at which the fills are ordered (half: an occlusion test's typical image).
HIDDEN = 0.5


def _cell(v) -> str:
    """A robustness-table cell: a smallest sufficient n or a paired difference, in words."""
    if isinstance(v, criteria.SufficientN):
        return say.n_cell(v)
    if isinstance(v, statistics.Comparison):
        return say.points(v)
    return v


# --------------------------------------------------------------------------- 0. the criterion


@dataclass(frozen=True)
class Criterion:
    """The smallest sufficient n under weighted precision, accuracy and balanced accuracy, and the verdicts."""

    result: criteria.CriterionTable
    images: int
    KEYS: ClassVar[tuple[str, ...]] = ("criterion", "criterion_threshold", "criterion_full_image",
                                       "criterion_statement")

    def table(self) -> pd.DataFrame:
        """One row per criterion: full-image score, threshold, each ranking's n and each comparison's verdict."""
        t = self.result.table
        out = pd.DataFrame({"full image": t["full_image"].map("{:.3f}".format),
                            "threshold (2/3)": t["threshold"].map("{:.3f}".format)})
        for name in [c for c in say.RANKING_NAMES if c in t.columns]:
            out[f"n: {say.RANKING_NAMES[name]}"] = t[name].map(say.n_cell)
        for (crit, key), c in self.result.comparisons.items():
            out.loc[crit, key.replace("_vs_", " − ").replace("first", "class 0")] = say.points(c)
        out.index = [say.CRITERION_WORDS[c] for c in out.index]
        return out

    def counts(self) -> pd.DataFrame:
        """Images each n rests on, per ranking (images with fewer superpixels than n are left out)."""
        return pd.DataFrame(self.result.images_per_n).T.rename(index=say.RANKING_NAMES)

    def facts(self) -> dict:
        study = self.result.table.loc["precision_weighted"]
        return {"criterion": {**self.result.facts(), "images": self.images},
                "criterion_threshold": float(study["threshold"]), "criterion_full_image": float(study["full_image"]),
                "criterion_statement": say.criterion(self.result, self.images)}


def criterion(results: dict, seed: int = 0) -> Criterion:
    """The criterion table from the chapter's own grey-fill sufficiency results (``predicted``, ``first``,
    ``random``): no image is predicted again."""
    names = [n for n in ("predicted", "first", "random") if n in results]
    pairs = [(a, b) for a, b in (("predicted", "first"), ("predicted", "random")) if b in results]
    table = criteria.criterion_table({n: results[n] for n in names}, pairs, seed=seed)
    return Criterion(table, int(len(results["predicted"].y_true)))


# --------------------------------------------------------------------------- Grad-CAM's layer


@dataclass(frozen=True)
class GradcamLayer:
    """The layer Grad-CAM is read on, chosen by measurement, and the evidence for every candidate block."""

    choice: gradcam_layer.LayerChoice
    images: int
    side: int
    KEYS: ClassVar[tuple[str, ...]] = ("gradcam_layer", "gradcam_layer_name", "gradcam_layer_statement")

    @property
    def layer(self) -> str:
        return self.choice.layer

    def table(self) -> pd.DataFrame:
        """Per candidate block: its map's side, each check's result with interval and verdict, checks passed."""
        ev = self.choice.evidence
        out = pd.DataFrame({"layer": ev["layer"], "map side (px)": ev["map_side"],
                            "empty maps": ev["empty_maps"].map(lambda v: f"{100 * v:.0f} %"),
                            "randomisation": ev["randomisation"],
                            "SRG − random": [f"{say.signed(r.srg_minus_random, *r.srg_minus_random_ci95, 3)}: "
                                             f"{r.faithfulness}" for r in ev.itertuples()]})
        if "localisation" in ev:
            out["top superpixel in the cell vs chance"] = [
                f"{100 * r.top_in_cell:.0f} % vs {100 * r.chance:.0f} %: {r.localisation}" for r in ev.itertuples()]
        out["checks passed"] = [f"{k} of {len(self.choice.checks)}" for k in ev["checks_passed"]]
        return out

    def facts(self) -> dict:
        return {"gradcam_layer": {**self.choice.facts(), "images": self.images, "map_side": self.side},
                "gradcam_layer_name": self.layer,
                "gradcam_layer_statement": say.layer_choice(self.choice, self.images, self.side)}


def gradcam_layer_choice(model, images, segments, labels, cell_masks=None, seed: int = 0) -> GradcamLayer:
    """Grad-CAM's layer: the finest conv block passing every check on these images (localisation too when
    ``cell_masks`` are known); choose on images the page then does not report Grad-CAM on."""
    choice = gradcam_layer.choose_layer(model, images, segments, labels, cell_masks, seed=seed)
    return GradcamLayer(choice, len(images), gradcam_layer.map_side(model, choice.layer))


@dataclass(frozen=True)
class Localisation:
    """On cells with known masks: how often each ranking's top superpixel lies in the cell, against chance."""

    rows: dict | None  # name -> (share of hits, chance, statistics.Comparison); None without masks
    images: int
    KEYS: ClassVar[tuple[str, ...]] = ("gradcam_localisation", "gradcam_localisation_statement")

    def table(self) -> pd.DataFrame | None:
        """Hits against chance per ranking; None without masks (a cell showing None shows nothing, the sentence
        says why)."""
        if not self.rows:
            return None
        return pd.DataFrame({"top superpixel in the cell": [f"{100 * h:.0f} %" for h, _, _ in self.rows.values()],
                             "chance": [f"{100 * c:.0f} %" for _, c, _ in self.rows.values()],
                             "difference": [say.difference(c, 2) for _, _, c in self.rows.values()]},
                            index=list(self.rows))

    def facts(self) -> dict:
        if not self.rows:
            return {"gradcam_localisation": None, "gradcam_localisation_statement": say.no_masks()}
        return {"gradcam_localisation": to_jsonable({name: {"top_in_cell": h, "chance": c, **cmp.as_dict()}
                                                     for name, (h, c, cmp) in self.rows.items()}),
                "gradcam_localisation_statement": say.localisation(self.rows, self.images)}


def localisation(model, layer: str, images, segments, labels, cell_masks, others: dict | None = None,
                 seed: int = 0) -> Localisation:
    """Grad-CAM's top superpixel on ``layer`` and on the last block, and each of ``others`` (rankings), in the
    cell against a random superpixel's chance; no table without ``cell_masks`` (real images)."""
    if cell_masks is None:
        return Localisation(None, len(images))
    last = gradcam.target_layer(model)
    heat = gradcam.heatmaps_by_layer(model, images, labels, list(dict.fromkeys([layer, last])))
    rankings = {f"Grad-CAM on {layer} (chosen)": heat[layer]}
    if last != layer:
        rankings[f"Grad-CAM on {last} (the last block)"] = heat[last]
    rankings = {name: [gradcam.rank_by_heat(h, s, image_seed(seed, i))
                       for i, (h, s) in enumerate(zip(maps, segments))] for name, maps in rankings.items()}
    rankings.update(others or {})
    rows = {}
    for name, ranks in rankings.items():
        hits, chance = controls.top_in_cell(segments, ranks, cell_masks)
        test = controls.localisation_test(hits, chance, (name, "chance"))
        rows[name] = (float(hits.mean()), float(chance.mean()), test)
    return Localisation(rows, len(images))


# --------------------------------------------------------------------------- 1. the finding in other settings


@dataclass(frozen=True)
class Robustness:
    """The finding in every setting (setting x verdict, with intervals), and the settings' agreement."""

    result: settings_lib.RobustnessResult
    KEYS: ClassVar[tuple[str, ...]] = ("robustness", "robustness_statement", "robustness_agreement_statement",
                                       "robustness_holds_in", "robustness_settings_count")

    def table(self) -> pd.DataFrame:
        t = self.result.table
        cols = {"superpixels": "superpixels (mean)"}
        for c in ("precision_weighted", "accuracy", "balanced_accuracy"):
            by = say.CRITERION_WORDS[c].split(" (")[0]
            cols.update({f"n_{c}_predicted": f"n by {by}: predicted", f"n_{c}_first": f"n by {by}: class 0"})
        cols.update({"predicted_vs_first": "predicted − class 0", "lime_vs_random": "LIME − random",
                     "holds": "finding holds"})
        out = t[[c for c in cols if c in t.columns]].rename(columns=cols)
        out = out.apply(lambda col: col.map(_cell))
        out["superpixels (mean)"] = t["superpixels"].map("{:.1f}".format)
        out["finding holds"] = t["holds"].map({True: "yes", False: "no"})
        return out

    def agreement(self) -> pd.DataFrame:
        """Per setting: agreement of its rankings with the study's, with intervals; measures that need the same
        superpixels are said to be so where the segmentation differs."""
        a = self.result.agreement
        other = "other superpixels"
        return pd.DataFrame({
            "top-5 feature agreement": [say.share(r.feature_agreement, r.feature_agreement_low,
                                                  r.feature_agreement_high) if r.feature_agreement_images else other
                                        for r in a.itertuples()],
            "top-5 rank agreement": [say.share(r.rank_agreement, r.rank_agreement_low, r.rank_agreement_high)
                                     if r.rank_agreement_images else other for r in a.itertuples()],
            "Spearman of the weights": [say.signed(r.spearman, r.spearman_low, r.spearman_high)
                                        if r.spearman_images else other for r in a.itertuples()],
            "top-5 area agreement": [say.share(r.pixel_agreement, r.pixel_agreement_low, r.pixel_agreement_high)
                                     for r in a.itertuples()],
            "by chance": [say.share(r.pixel_chance, r.pixel_chance_low, r.pixel_chance_high)
                          for r in a.itertuples()]}, index=a.index)

    def facts(self) -> dict:
        k, m = self.result.holds_in
        return {"robustness": self.result.facts(), "robustness_statement": say.robustness(self.result),
                "robustness_agreement_statement": say.agreement(self.result),
                "robustness_holds_in": k, "robustness_settings_count": m}


def robustness(settings: LimeSettings, y_true, class_names, model, images, seed: int = 0) -> Robustness:
    """The finding on the settings' images in every setting (the study's, other LIME seeds, more perturbations,
    other superpixels), each already explained (:func:`cytokit.pages.xai_checks.lime_settings`)."""
    return Robustness(settings_lib.robustness(model, images, y_true, class_names, settings.settings, settings.runs,
                                              seed=seed, progress=False))


# --------------------------------------------------------------------------- 2. how far each fill leaves the data


@dataclass(frozen=True)
class FillDistances:
    """Each fill's distance from the data in the model's features, and the fills ordered by how little they change."""

    result: distances.FillDistance
    order: tuple  # fills from the least to the most shift at HIDDEN
    versus: dict  # other fill -> statistics.Comparison: the closest fill's shift minus that fill's, paired
    KEYS: ClassVar[tuple[str, ...]] = ("fill_distance", "fill_distance_statement", "fill_closest")

    def table(self) -> pd.DataFrame:
        t = self.result.table
        rows = {}
        for (fill, share), r in t.iterrows():
            rows[(fill, f"{100 * share:.0f} %")] = {
                "shift from the original": say.number(r["shift"], r["shift_low"], r["shift_high"]),
                "distance to the nearest real image": say.number(r["distance"], r["distance_low"], r["distance_high"]),
                "spread (1: as varied as the data)": say.number(r["spread"], r["spread_low"], r["spread_high"]),
                f"called {'/'.join(self.result.absorbers) or 'an absorbing class'}":
                    say.share(r["absorbed"], r["absorbed_low"], r["absorbed_high"])}
        out = pd.DataFrame(rows).T
        out.index.names = ["fill", "hidden"]
        return out

    def facts(self) -> dict:
        return {"fill_distance": {**self.result.facts(), "order_by_shift": list(self.order), "hidden": HIDDEN,
                                  "closest_versus": {k: c.as_dict() for k, c in self.versus.items()}},
                "fill_distance_statement": say.fill_distance(self.result, list(self.order), self.versus, HIDDEN),
                "fill_closest": self.order[0]}


def fill_distance(model, images, segments, y_true, class_names, seed: int = 0, workers: int = 1,
                  progress: bool = False) -> FillDistances:
    """Every fill's distance from the data (:mod:`cytokit.xai.fill_distance`), and the fill that changes the
    model's view least, compared image by image with each other fill."""
    found = distances.fill_distance(model, images, segments, y_true, class_names, seed=seed, workers=workers,
                                    progress=progress)
    order = tuple(found.closest(HIDDEN, "shift"))
    return FillDistances(found, order, {k: found.paired(order[0], k, HIDDEN) for k in order[1:]})


# --------------------------------------------------------------------------- 3. one combined score


@dataclass(frozen=True)
class CombinedScores:
    """SRG per ranking and fill with intervals, and the paired verdicts between rankings."""

    result: srg.CombinedScore
    pairs: tuple
    KEYS: ClassVar[tuple[str, ...]] = ("combined_score", "combined_score_statement")

    def table(self) -> pd.DataFrame:
        s = self.result.scores
        cells = [words.marked(say.signed(r.srg, r.low, r.high, 3), r.images) for r in s.itertuples()]
        return pd.Series(cells, index=s.index).unstack("fill")[list(self.result.images)]

    def verdicts(self) -> pd.DataFrame:
        rows = {f"{a} − {b}": {fill: say.difference(self.result.comparisons[(fill, f"{a}_vs_{b}")])
                               for fill in self.result.images} for a, b in self.pairs}
        return pd.DataFrame(rows).T

    def facts(self) -> dict:
        return {"combined_score": self.result.facts(),
                "combined_score_statement": say.combined_score(self.result, self.pairs)}


def combined_score(model, images, segments, rankings: dict, labels, n_imputed: int, seed: int = 0,
                   workers: int = 1, progress: bool = False) -> CombinedScores:
    """SRG of every ranking of ``rankings`` (name -> one ranking per image) under every fill; imputation on the
    first ``n_imputed`` images only (a linear system per point of every curve)."""
    tables = {}
    for kind in fills.FILLS:
        k = min(int(n_imputed), len(images)) if kind in fills.MASK_DEPENDENT else len(images)
        tables[kind] = srg.removal_curves(model, images[:k], segments[:k], {m: r[:k] for m, r in rankings.items()},
                                          labels[:k], kind, seed=seed, workers=workers, progress=progress)
    pairs = tuple(p for p in SRG_PAIRS if set(p) <= set(rankings))
    return CombinedScores(srg.combined_score(tables, pairs), pairs)


# --------------------------------------------------------------------------- 4. independent randomisation


@dataclass(frozen=True)
class Independent:
    """Each learned step re-initialised alone, beside the chapter's cascade when given."""

    result: randomisation.IndependentRandomisation
    layer: str
    cascade: pd.DataFrame | None = None  # randomisation.summarise of the chapter's cascade
    KEYS: ClassVar[tuple[str, ...]] = ("randomisation.independent", "independent_statement")

    def table(self) -> pd.DataFrame:
        """Per step and method: the Spearman to the trained explanation alone (with the verdict) and in cascade."""
        s, dependence = self.result.summary, self.result.dependence()
        out = pd.DataFrame({
            "step": s["step"], "method": s["method"],
            "this layer alone": [words.marked(say.signed(r.mean, r.low, r.high), r.n) for r in s.itertuples()],
            "verdict": [dependence.get(r.method, {}).get(r.step, "reference") for r in s.itertuples()]})
        if self.cascade is not None:
            c = self.cascade.set_index(["step", "method"])
            cells = {key: words.marked(say.signed(v["mean"], v["low"], v["high"]), int(v["n"]))
                     for key, v in c.iterrows()}
            out["in cascade (every layer above too)"] = [cells.get((r.step, r.method), "not run")
                                                         for r in s.itertuples()]
        return out.set_index(["step", "method"])

    def facts(self) -> dict:
        return {"randomisation.independent": {**self.result.facts(), "gradcam_layer": self.layer},
                "independent_statement": say.independent(self.result, self.layer)}


def independent_randomisation(model, images, segments, trained, layer: str, seed: int = 0, cascade=None,
                              progress: bool = False) -> Independent:
    """Each cascade step's layers re-initialised alone (every other weight the trained model's): LIME with the
    ``trained`` explanations' classes, seeds and samples, Grad-CAM on ``layer``."""
    found = randomisation.independent_check(model, images, segments, trained, seed=seed, randomisation_seed=seed,
                                            layer_name=layer, progress=progress)
    return Independent(found, layer, cascade)


# --------------------------------------------------------------------------- every section on the profile's subsets


@dataclass(frozen=True)
class Sizes:
    """Which images each check runs on: positions in the chapter's sample."""

    n_images: int
    robust: tuple  # the settings and the fills' distance
    subset: tuple  # the combined score (the chapter's subset), ordered class by class
    imputed: int  # how many of ``subset``, the first, the combined score reads under imputation
    choice: tuple  # Grad-CAM's layer choice: images outside ``subset``
    independent: int = 0  # how many of ``subset``, the first, the independent randomisation explains again
    KEYS: ClassVar[tuple[str, ...]] = ("robustness_sizes", "robustness_sizes_statement")

    def facts(self) -> dict:
        return {"robustness_sizes": {"explained": self.n_images, "robustness": len(self.robust),
                                     "fill_distance": len(self.robust), "combined_score": len(self.subset),
                                     "combined_score_imputed": self.imputed, "independent": self.independent,
                                     "gradcam_layer_choice": len(self.choice)},
                "robustness_sizes_statement": say.sizes(self.n_images, len(self.robust), len(self.subset),
                                                        self.imputed, self.independent, len(self.choice))}


def sizes(chosen, subset, n_robust: int, n_imputed: int, n_layer_choice: int, n_independent: int | None = None,
          seed: int = 0) -> Sizes:
    """Stratified subsets of the chapter's sample (``chosen``, its rows in order): ``n_robust`` images for the
    settings, the chapter's ``subset`` ordered class by class so that its first ``n_imputed`` serve imputation
    and its first ``n_independent`` (default: all) the independent randomisation, and ``n_layer_choice`` images
    outside the subset for Grad-CAM's layer choice."""
    rows = chosen.reset_index(drop=True)
    subset = np.asarray(subset, dtype=int)
    ordered = subset[xai_images.class_by_class(rows["cls"].iloc[subset].to_numpy(), seed)]
    rest = np.array([i for i in range(len(rows)) if i not in set(subset)], dtype=int)
    if len(rest) < 2:
        raise ValueError(f"Grad-CAM's layer is chosen on images outside the subset: {len(rest)} of {len(rows)} "
                         "explained images are; explain more images or take a smaller subset")
    choice = rest[xai_images.subset(rows.iloc[rest], min(int(n_layer_choice), len(rest)), seed + 1)]
    return Sizes(len(rows), robust_positions(rows, n_robust, seed), tuple(int(i) for i in ordered),
                 min(int(n_imputed), len(subset)), tuple(int(i) for i in choice),
                 len(subset) if n_independent is None else min(int(n_independent), len(subset)))


@dataclass(frozen=True)
class XaiRobustness:
    """Every robustness section of chapter 06, each recorded and shown by the page on its own."""

    sizes: Sizes
    criterion: Criterion
    gradcam: GradcamLayer
    localisation: Localisation
    robustness: Robustness
    fills: FillDistances
    combined: CombinedScores
    independent: Independent
    KEYS: ClassVar[tuple[str, ...]] = (Sizes.KEYS + Criterion.KEYS + GradcamLayer.KEYS + Localisation.KEYS
                                       + Robustness.KEYS + FillDistances.KEYS + CombinedScores.KEYS + Independent.KEYS)

    def facts(self) -> dict:
        out = {}
        for part in (self.sizes, self.criterion, self.gradcam, self.localisation, self.robustness, self.fills,
                     self.combined, self.independent):
            out.update(part.facts())
        return out


def _at(items, positions) -> list:
    return [items[i] for i in positions]


def robustness_sections(model, images, segments, y_true, class_names, chosen, predicted, first, random_rankings,
                        sufficiency: dict, subset, n_robust: int, n_imputed: int, n_layer_choice: int,
                        n_independent: int | None = None, lime_seeds: int = 3, more_samples: int = 1000, seed: int = 0,
                        cell_masks=None, cascade=None, workers: int | None = None, progress: bool = False,
                        settings: LimeSettings | None = None) -> XaiRobustness:
    """Every section on the chapter's sample, each on its subset (:func:`sizes`), reusing what the chapter made.

    From the chapter: ``model`` (fed 250 px images), ``images`` and their quickshift
    ``segments``, ``y_true``, ``class_names``, ``chosen`` (the sample's manifest rows),
    LIME's ``predicted`` and ``first`` explanations and the ``random_rankings`` of every image,
    its grey-fill ``sufficiency`` results (``predicted``, ``first``, ``random``), its
    ``subset`` positions and, when it ran, its cascade's summary (``cascade``). On synthetic
    cells, ``cell_masks`` (one per image, :func:`cell_masks`) add Grad-CAM's localisation against
    chance. The profile's sizes: ``n_robust``, ``n_imputed``, ``n_layer_choice``, ``n_independent``;
    ``lime_seeds`` and ``more_samples`` are the chapter's own. ``settings``: the images already explained in
    every setting (:func:`cytokit.pages.xai_checks.lime_settings`, on ``n_robust`` images), else explained here.
    """
    workers = int(workers or os.cpu_count() or 1)
    y_true = np.asarray(y_true)
    sz = sizes(chosen, subset, n_robust, n_imputed, n_layer_choice, n_independent, seed)
    labels = np.array([e.label for e in predicted])
    masks = None if cell_masks is None else list(cell_masks)
    crit = criterion(sufficiency, seed)
    c = list(sz.choice)
    layer = gradcam_layer_choice(model, _at(images, c), _at(segments, c), labels[c],
                                 None if masks is None else _at(masks, c), seed)
    seen = [i for i in range(len(images)) if i not in set(c)]
    loc = localisation(model, layer.layer, _at(images, seen), _at(segments, seen), labels[seen],
                       None if masks is None else _at(masks, seen),
                       {"LIME": _at(predicted, seen), "random": _at(random_rankings, seen)}, seed)
    if settings is None:
        settings = settings_at(model, images, segments, predicted, first, random_rankings, sz.robust, lime_seeds,
                               more_samples, seed, progress)
    elif settings.positions != sz.robust:
        raise ValueError(f"the settings explain {len(settings.positions)} images, not the {len(sz.robust)} "
                         f"n_robust={n_robust} picks: make them with the same n_robust and seed")
    r = list(sz.robust)
    robust = robustness(settings, y_true[r], class_names, model, _at(images, r), seed)
    fill = fill_distance(model, _at(images, r), _at(segments, r), y_true[r], class_names, seed, workers, progress)
    s = list(sz.subset)
    sub_images, sub_segments = _at(images, s), _at(segments, s)
    ranks = {"LIME": _at(predicted, s),
             "Grad-CAM": gradcam.rankings(model, sub_images, sub_segments, labels[s], layer.layer, progress=False,
                                          seed=seed),
             "random": _at(random_rankings, s), "class 0": _at(first, s)}
    combined = combined_score(model, sub_images, sub_segments, ranks, labels[s], sz.imputed, seed, workers, progress)
    k = sz.independent
    alone = independent_randomisation(model, sub_images[:k], sub_segments[:k], _at(predicted, s[:k]), layer.layer,
                                      seed, cascade, progress)
    return XaiRobustness(sz, crit, layer, loc, robust, fill, combined, alone)


def cell_masks(data_root, chosen) -> list | None:
    """The cell mask of every chosen image when the data are the embedded synthetic cells (None for real images)."""
    if not embedded.is_synthetic(data_root):
        return None
    return [synthetic.masks(data_root, p)[0] for p in chosen["path"]]


def maps_beside_lime(model, images, segments, predicted, layer: str, y_true, class_names, k: int = 4,
                     seed: int = 0) -> dict:
    """A few images of different classes: the image, LIME's top five superpixels, Grad-CAM on the chosen layer
    and on the last block (for :func:`cytokit.pages.figures.image_grid`)."""
    picks = xai_images.example_indices(y_true, k=k, seed=seed)
    last = gradcam.target_layer(model)
    labels = [predicted[i].label for i in picks]
    heat = gradcam.heatmaps_by_layer(model, _at(images, picks), labels, list(dict.fromkeys([layer, last])))
    panel = {}
    for j, i in enumerate(picks):
        row = [images[i], occlusion.keep_top(images[i], segments[i], predicted[i].ranking, 5),
               xai_images.heat_overlay(images[i], heat[layer][j])]
        if last != layer:
            row.append(xai_images.heat_overlay(images[i], heat[last][j]))
        panel[f"{class_names[y_true[i]]} #{j + 1} (explained: {class_names[labels[j]]})"] = row
    return panel


def chapter_sections(sample: XaiSample, lime: Explanations, suff: FillSufficiency, cascade: Randomisation,
                     settings: LimeSettings, n_imputed: int, n_layer_choice: int, n_independent: int | None,
                     seed: int = 0) -> XaiRobustness:
    """Every robustness section on chapter 06's own sample, explanations, grey-fill results, cascade and settings."""
    grey = suff.results["grey"]
    return robustness_sections(
        sample.model, list(sample.images), list(sample.segments), sample.y_true, list(sample.class_names),
        sample.chosen, list(lime.lime), list(lime.first), list(lime.random),
        {"predicted": grey["top"], "first": grey["first"], "random": grey["random"]}, sample.subset,
        len(settings.positions), n_imputed, n_layer_choice, n_independent, seed=seed,
        cell_masks=cell_masks(sample.data_dir, sample.chosen), cascade=cascade.summary, settings=settings)
