"""Chapter 06's steps: explain a stratified sample, test sufficiency under four fills, run a reviewer's checks."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cytokit import resources
from cytokit.book import figures, prose
from cytokit.book.chapter import Chapter, ChapterData
from cytokit.data import embedded, synthetic
from cytokit.evaluation import statistics
from cytokit.xai import controls, deletion, explain, fills, gradcam, occlusion, superpixels
from cytokit.xai import randomisation as cascade
from cytokit.xai import images as xai_images
from cytokit.xai.sufficiency import STUDY_NS, THRESHOLD, sufficiency

#: Explanations are made on 250 px images, the dataset's own size, where the study's quickshift settings hold.
XAI_SIZE = 250
#: The four rankings tested under every fill, as the page names them.
CURVES = {"top": "LIME, most relevant first", "first": "LIME for class 0 (the study's code)",
          "bottom": "LIME, least relevant first", "random": "random superpixels"}
#: The comparisons between rankings whose verdicts are read under every fill: (key, a, b, what it means).
COMPARISONS = (("predicted_minus_first", "top", "first", "explaining the predicted class beats explaining class 0"),
               ("lime_minus_random", "top", "random", "LIME's ranking beats a random one"),
               ("top_minus_bottom", "top", "bottom", "LIME's most relevant superpixels beat its least relevant"))
#: Numbers of visible superpixels shown as confusion matrices.
CONFUSION_NS = (15, 35, 45, "all")
#: Explained images a class needs for its own curve.
PER_CLASS_MIN = 10


def load_sample(chapter: Chapter, data: ChapterData, model_source: str, study_models_dir, xai_split: str,
                n_images: int, seed: int):
    """The augmented model fed 250 px images, and a seeded sample of images stratified by class."""
    from cytokit.data import pipeline
    from cytokit.models.training import load_model

    path = chapter.models(model_source, study_models_dir)["augmented"]
    model = xai_images.at_resolution(load_model(path), XAI_SIZE)
    chosen = xai_images.choose(data.manifest, None if xai_split == "all" else xai_split, n_images, seed=seed)
    images = list(pipeline.load_images(chosen, data.root, None, XAI_SIZE))
    y_true = np.array([data.class_names.index(c) for c in chosen["cls"]])
    chapter.record("n_images", len(images))
    chapter.record("n_classes_explained", int(chosen["cls"].nunique()))
    chapter.record("explained_split", "every usable image" if xai_split == "all" else f"the {xai_split} split")
    chapter.record("model_file", chapter.shown(path))
    chapter.keep("explained_per_class", chosen["cls"].value_counts().sort_index())
    print(f"explaining {len(images)} images with {chapter.shown(path)}")
    return model, chosen, images, y_true


def segment(chapter: Chapter, images) -> list[np.ndarray]:
    """Quickshift superpixels of every image with the study's settings; records their counts."""
    segments = superpixels.superpixels_all(images, **superpixels.QUICKSHIFT)
    counts = superpixels.counts(segments)
    chapter.record("superpixels_mean", float(np.mean(counts)))
    chapter.record("superpixels_min", int(np.min(counts)))
    chapter.record("superpixels_max", int(np.max(counts)))
    return segments


def choose_subset(chapter: Chapter, chosen, n: int, seed: int) -> np.ndarray:
    """Positions of the stratified subset that the costly checks use; records its size."""
    idx = xai_images.subset(chosen, n, seed)
    chapter.record("n_subset", int(len(idx)))
    return idx


@dataclass
class Experiment:
    """LIME's explanations, a random ranking, and every sufficiency curve under every fill."""

    label_mode: str
    explanations: dict = field(default_factory=dict)
    random_rankings: list = field(default_factory=list)
    results: dict = field(default_factory=dict)
    subsets: dict = field(default_factory=dict)
    curves: dict = field(default_factory=dict)  # fill -> curve -> its table with intervals, as recorded
    gradcam_rankings: list = field(default_factory=list)

    @property
    def main(self) -> list:
        return self.explanations[self.label_mode]

    def rankings(self, curve: str) -> list:
        """One superpixel order per image for a curve of :data:`CURVES`."""
        if curve == "top":
            return [e.ranking for e in self.main]
        if curve == "first":
            return [e.ranking for e in self.explanations["first"]]
        if curve == "bottom":
            return [e.ranking[::-1] for e in self.main]
        return list(self.random_rankings)


def explain_images(chapter: Chapter, model, images, segments, y_true, label_mode: str, num_samples: int,
                   seed: int) -> Experiment:
    """LIME for ``label_mode`` and for class 0 (the study's code) on every image, and a random ranking."""
    exp = Experiment(label_mode)
    for mode in dict.fromkeys([label_mode, "first"]):
        exp.explanations[mode] = explain.explain_all(model, images, segments, mode, y_true, num_samples, seed=seed)
    exp.random_rankings = controls.random_rankings(segments, seed=seed)
    full = explain.full_probs(exp.main)
    chapter.record("full_image_accuracy", float(np.mean(full.argmax(axis=1) == y_true)))
    return exp


def _filler(kind: str, images, segments, seed: int):
    """``(i, image, segments, visible) -> occluded image`` for one fill, each image's fixed work done once."""
    made = {}

    def fill(i, image, segs, visible):
        if i not in made:
            made[i] = fills.filler(images[i], segments[i], kind, seed=explain.image_seed(seed, i))
        return made[i](visible)
    return fill


def sufficiency_under_fills(chapter: Chapter, exp: Experiment, model, images, segments, y_true, class_names,
                            subset_idx, seed: int) -> pd.DataFrame:
    """Every curve of :data:`CURVES` under every fill (imputation on the subset); records them all."""
    full = explain.full_probs(exp.main)
    for kind in fills.FILLS:
        idx = np.asarray(subset_idx if kind in fills.MASK_DEPENDENT else np.arange(len(images)))
        imgs, segs = [images[i] for i in idx], [segments[i] for i in idx]
        filler = _filler(kind, imgs, segs, seed)
        exp.subsets[kind] = idx
        exp.results[kind] = {curve: sufficiency(model, imgs, segs, [exp.rankings(curve)[i] for i in idx],
                                                y_true[idx], class_names=class_names, full_probs=full[idx],
                                                filler=filler) for curve in CURVES}
    chapter.keep("fills", {kind: _fill_record(exp, kind, seed) for kind in fills.FILLS})
    _record_study_curve(chapter, exp)
    return fill_table(chapter)


def _fill_record(exp: Experiment, kind: str, seed: int) -> dict:
    """metrics.json's entry for one fill: curves with intervals, sufficient n with intervals, comparisons."""
    results = exp.results[kind]
    out = {"n_images": int(len(exp.subsets[kind])), "sufficient_n": {}, "sufficient_n_ci95": {}, "differences": {}}
    exp.curves[kind] = {}
    for curve, result in results.items():
        table = exp.curves[kind][curve] = result.curve_intervals(seed=seed)
        out[f"curve_{curve}"] = {m: {n: {"value": row[m], "ci95": [row[f"{m}_low"], row[f"{m}_high"]],
                                         "images": int(row["images"])} for n, row in table.iterrows()}
                                 for m in ("accuracy", "precision_weighted")}
        point, low, high = result.sufficient_n_interval(seed=seed)
        out["sufficient_n"][curve] = point
        out["sufficient_n_ci95"][curve] = [low, high]
    for key, a, b, _ in COMPARISONS:
        first, second = results[a].per_image_accuracy(), results[b].per_image_accuracy()
        both = ~np.isnan(first) & ~np.isnan(second)  # images with no n tested have no value
        c = statistics.paired_mean_difference(first[both], second[both], (CURVES[a], CURVES[b]), "accuracy over n",
                                              bounds=(-1, 1))
        out["differences"][key] = c.as_dict()
    return out


def _record_study_curve(chapter: Chapter, exp: Experiment) -> None:
    """The study's own setting (grey fill) as plain numbers and sentences for the prose."""
    grey = chapter.metrics["fills"]["grey"]
    chapter.record("full_image_precision", exp.results["grey"]["top"].reference("precision_weighted"))
    for curve, key in (("top", "predicted"), ("first", "first"), ("random", "random"), ("bottom", "bottom")):
        low, high = grey["sufficient_n_ci95"][curve]
        chapter.record(f"sufficient_n_{key}", grey["sufficient_n"][curve])
        chapter.record(f"sufficient_n_{key}_text", prose.sufficient_n_with_interval(grey["sufficient_n"][curve],
                                                                                     low, high))


def fill_table(chapter: Chapter) -> pd.DataFrame:
    """Per fill and curve: the smallest sufficient n with its interval, and the images it rests on."""
    rows = []
    for kind, rec in chapter.metrics["fills"].items():
        for curve in CURVES:
            low, high = rec["sufficient_n_ci95"][curve]
            rows.append({"fill": kind, "ranking": CURVES[curve], "images": rec["n_images"],
                         "smallest sufficient n": prose.marked(prose.sufficient_n_with_interval(
                             rec["sufficient_n"][curve], low, high), rec["n_images"])})
    return pd.DataFrame(rows).pivot(index="ranking", columns="fill", values="smallest sufficient n")[list(fills.FILLS)]


def conclusions(chapter: Chapter) -> pd.DataFrame:
    """Each comparison's verdict under every fill, and a sentence on which conclusions hold under all."""
    rows, sentences = {}, []
    for key, _, _, meaning in COMPARISONS:
        verdicts = {kind: rec["differences"][key] for kind, rec in chapter.metrics["fills"].items()}
        rows[meaning] = {kind: prose.difference_cell(c) for kind, c in verdicts.items()}
        sentences.append(prose.across_fills(meaning, {k: c["verdict"] for k, c in verdicts.items()}))
    family = [rec["differences"][key] for rec in chapter.metrics["fills"].values() for key, *_ in COMPARISONS]
    sentences.append(prose.family(family, "differences in the table"))
    chapter.record("fills_statement", " ".join(sentences))
    return pd.DataFrame(rows).T[list(fills.FILLS)]


def curves_for_figure(exp: Experiment, kind: str) -> dict[str, pd.DataFrame]:
    """The curves of one fill with the intervals ``metrics.json`` holds, labelled for the figure."""
    return {CURVES[c]: table for c, table in exp.curves[kind].items()}


def per_class_curves(chapter: Chapter, exp: Experiment, y_true, class_names) -> pd.DataFrame:
    """Per class with enough explained images: accuracy of its explanation images at each n (grey, LIME's
    ranking) with Wilson intervals."""
    result = exp.results["grey"]["top"]
    rows = []
    for c in np.unique(y_true):
        members = y_true == c
        if members.sum() < PER_CLASS_MIN:
            continue
        for n in result.ns:
            used = result.used(n) & members
            hits = int((result.predictions(n)[used] == c).sum()) if n != "all" else int(
                (result.full_pred[members] == c).sum())
            total = int(used.sum()) if n != "all" else int(members.sum())
            low, high = statistics.wilson(hits, total)
            rows.append({"code": class_names[c], "n": str(n), "images": total,
                         "accuracy": hits / total if total else np.nan, "low": low, "high": high})
    table = pd.DataFrame(rows, columns=["code", "n", "images", "accuracy", "low", "high"])
    chapter.keep("per_class_curves", table)
    return table


def absorbers(chapter: Chapter, exp: Experiment) -> pd.DataFrame:
    """The classes that take most occluded images at each n (grey, LIME's ranking); kept for metrics.json."""
    return chapter.keep("absorbers", exp.results["grey"]["top"].top_absorbers(3))


def confusions(exp: Experiment) -> dict:
    return {n: exp.results["grey"]["top"].confusion(n, normalize=True) for n in CONFUSION_NS}


def randomisation(chapter: Chapter, model, images, segments, exp: Experiment, subset_idx, y_true,
                  num_samples: int, seed: int) -> pd.DataFrame:
    """The sanity check: explanations of the subset under cascading weight randomisation; records the summary."""
    idx = np.asarray(subset_idx)
    table = cascade.randomisation_check(model, [images[i] for i in idx], [segments[i] for i in idx],
                                        trained=[exp.main[i] for i in idx], seed=seed, randomisation_seed=seed)
    summary = cascade.summarise(table)
    chapter.keep("randomisation", {
        "steps": [{"order": int(r.order), "step": r.step, "method": r.method, "spearman": r.mean,
                   "ci95": [r.low, r.high], "images": int(r.n)} for r in summary.itertuples()],
        "verdicts": summary.attrs["verdicts"]})
    chapter.record("randomisation_statement", prose.randomisation(summary))
    return summary.assign(spearman=[prose.marked(prose.number_with_interval(m, lo, hi), n) for m, lo, hi, n in
                                    zip(summary["mean"], summary["low"], summary["high"], summary["n"])])[
        ["step", "method", "spearman", "n"]].set_index(["step", "method"])


def stability(chapter: Chapter, model, images, segments, y_true, subset_idx, label_mode: str, num_samples: int,
              lime_seeds: int, more_samples: int, seed: int) -> pd.DataFrame:
    """LIME's ranking against itself: other LIME seeds and more perturbations, on the subset; records both."""
    idx = np.asarray(subset_idx)
    found = controls.stability(model, [images[i] for i in idx], [segments[i] for i in idx], y_true[idx], label_mode,
                               num_samples, seeds=tuple(seed + k for k in range(lime_seeds)),
                               more_samples=more_samples)
    record, rows = {}, []
    for key, label in (("seed_top5_overlap", "top-5 overlap between LIME seeds"),
                       ("seed_spearman", "Spearman of the weights between LIME seeds"),
                       ("samples_top5_overlap", f"top-5 overlap, {num_samples} vs {more_samples} perturbations"),
                       ("samples_spearman", f"Spearman of the weights, {num_samples} vs {more_samples}")):
        values = np.asarray(found[key], dtype=float)
        iv = statistics.mean_interval(values[~np.isnan(values)], bounds=(-1, 1) if "spearman" in key else (0, 1))
        record[f"lime_{key}" if key.startswith("seed") else f"samples_{num_samples}_vs_{more_samples}_"
               + key.removeprefix("samples_")] = {"value": iv.estimate, "ci95": iv.as_list(), "images": iv.n}
        rows.append({"check": label, "mean": prose.marked(prose.number_with_interval(iv.estimate, iv.low, iv.high),
                                                           iv.n),
                     "images": iv.n})
    chapter.keep("stability", record)
    chapter.record("stability_statement", prose.stability(record, lime_seeds, num_samples, more_samples))
    return pd.DataFrame(rows).set_index("check")


def example_panel(model, images, segments, exp: Experiment, y_true, class_names, seed: int) -> dict:
    """A few images of different classes: top 5, 15, 25, 40 superpixels, the full image and Grad-CAM."""
    picks = xai_images.example_indices(y_true, k=4, seed=seed)
    heat = gradcam.gradcam(model, np.stack([images[i] for i in picks]), [exp.main[i].label for i in picks])
    panel = {}
    for j, i in enumerate(picks):
        name = f"{class_names[y_true[i]]} #{j + 1}"
        panel[name] = [occlusion.keep_top(images[i], segments[i], exp.main[i].ranking, n) for n in (5, 15, 25, 40)]
        panel[name] += [images[i], xai_images.heat_overlay(images[i], heat[j])]
    return panel


def deletion_and_insertion(chapter: Chapter, model, images, segments, exp: Experiment, steps: int = 10):
    """Deletion and insertion AUCs of LIME, Grad-CAM and random rankings with intervals over images;
    returns the table and the mean curves."""
    labels = [e.label for e in exp.main]
    exp.gradcam_rankings = gradcam.rankings(model, images, segments, labels)
    methods = {"LIME": exp.main, "Grad-CAM": exp.gradcam_rankings, "random": exp.random_rankings}
    result = deletion.deletion_insertion(model, images, segments, methods, labels, steps=steps)
    aucs = result.aucs()
    rows, record = [], {}
    for (method, kind), group in aucs.groupby(["method", "kind"], sort=False):
        iv = statistics.mean_interval(group.sort_values("image")["auc"].to_numpy(), bounds=(0, 1))
        record.setdefault(method, {})[kind] = {"value": iv.estimate, "ci95": iv.as_list(), "images": iv.n}
        chapter.record(f"{kind}_auc_{method.lower().replace('-', '')}", iv.estimate)
        rows.append({"method": method, "kind": kind,
                     "mean AUC": prose.marked(prose.number_with_interval(iv.estimate, iv.low, iv.high, 3), iv.n)})
    for kind in ("deletion", "insertion"):
        per = aucs[aucs["kind"] == kind].pivot(index="image", columns="method", values="auc")
        c = statistics.paired_mean_difference(per["LIME"], per["random"], ("LIME", "random"), f"{kind} AUC",
                                              bounds=(-1, 1))
        record[f"lime_minus_random_{kind}"] = c.as_dict()
    chapter.keep("deletion_insertion", record)
    chapter.record("deletion_statement", prose.deletion(record))
    return pd.DataFrame(rows).pivot(index="method", columns="kind", values="mean AUC"), result.mean_curves()


def ground_truth(chapter: Chapter, data: ChapterData, chosen, segments, exp: Experiment):
    """On synthetic cells, how much of the top superpixels lies on the cell and nucleus; records the statement."""
    synthetic_cells = embedded.is_synthetic(data.root)
    chapter.record("ground_truth_statement", prose.ground_truth(synthetic_cells))
    if not synthetic_cells:
        return pd.DataFrame()
    masks = [synthetic.masks(data.root, p) for p in chosen["path"]]
    rankings = {"LIME": exp.main, "Grad-CAM": exp.gradcam_rankings, "random": exp.random_rankings}
    loc = controls.localisation_summary(controls.localisation_table(segments, rankings, masks, ns=(1, 5, 15)))
    chapter.keep("localisation", loc.reset_index())
    return loc


def explorer(model, images, segments, exp: Experiment, y_true, class_names, chosen, n: int = 12, seed: int = 0):
    """The data of the page's explorer: about ``n`` images of different classes, each occluded (grey) at every n
    of the study, with the model's probabilities."""
    picks = xai_images.subset(chosen, min(n, len(images)), seed)
    ns = [k for k in STUDY_NS if k != "all"]
    predict = occlusion.classifier(model)
    shown, probs, titles = [], [], []
    for i in picks:
        ranks = occlusion.rank_map(segments[i], exp.main[i].ranking)
        row = [occlusion.compose(images[i], ranks < k, occlusion.GREY) for k in ns] + [images[i]]
        shown.append(row)
        probs.append(predict(np.stack(row)))
        titles.append(f"{class_names[y_true[i]]} #{len(titles) + 1}")
    return figures.sufficiency_explorer(shown, titles, [*map(str, ns), "all"], class_names, np.stack(probs),
                                        fill_name="grey", true_labels=[int(y_true[i]) for i in picks])


def beside_study(chapter: Chapter) -> pd.DataFrame:
    """Mean superpixels and the smallest sufficient n (grey fill), this run's rankings beside the study's figures."""
    facts = resources.table("lime_facts").set_index("key")["value"]
    mean = round(chapter.metrics["superpixels_mean"], 1)
    table = pd.DataFrame({"study (published)": [facts.get("mean_superpixels", "43"),
                                                facts.get("sufficient_n_global", "40")]},
                         index=["mean superpixels per image", "smallest sufficient n (grey)"])
    for key, curve in (("predicted", "top"), ("first", "first"), ("random", "random")):
        table[f"this run, {CURVES[curve]}"] = [mean, chapter.metrics[f"sufficient_n_{key}_text"]]
    return table


def conclusion(chapter: Chapter, is_synthetic: bool) -> str:
    """Records the chapter's closing sentences from the verdicts under every fill."""
    return chapter.record("conclusion", prose.xai_conclusion(chapter.metrics, THRESHOLD, is_synthetic))
