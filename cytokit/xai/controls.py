"""The controls an explanation must pass: a random ranking, stable top superpixels, the true cell."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from cytokit.data.taxonomy import CODES
from cytokit.evaluation import statistics
from cytokit.xai.explain import STUDY_SAMPLES, explain_all, full_probs, image_seed
from cytokit.xai.occlusion import GREY, classifier, rank_map, ranking_of
from cytokit.xai.sufficiency import STUDY_NS, sufficiency


def random_ranking(segments: np.ndarray, seed: int) -> np.ndarray:
    """The superpixel ids in a seeded random order: the floor an explanation must beat."""
    return np.random.default_rng(seed).permutation(np.unique(np.asarray(segments)))


def random_rankings(segments_list: Sequence[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    """:func:`random_ranking` for every image, image ``i`` seeded ``image_seed(seed, i)``."""
    return [random_ranking(s, image_seed(seed, i)) for i, s in enumerate(segments_list)]


def top_overlaps(rankings_a, rankings_b, k: int = 5) -> np.ndarray:
    """Per image, the Jaccard overlap of the top-``k`` superpixels of two rankings of it."""
    scores = []
    for a, b in zip(rankings_a, rankings_b):
        sa, sb = set(ranking_of(a)[:k].tolist()), set(ranking_of(b)[:k].tolist())
        scores.append(len(sa & sb) / len(sa | sb))
    return np.asarray(scores, dtype=float)


def top_overlap(rankings_a, rankings_b, k: int = 5) -> float:
    """Mean Jaccard overlap of the top-``k`` superpixels of two rankings of the same images."""
    return float(np.mean(top_overlaps(rankings_a, rankings_b, k)))


def weight_correlations(explanations_a, explanations_b) -> np.ndarray:
    """Per image, the Spearman correlation of two explanations' superpixel weights (aligned by superpixel)."""
    out = []
    for a, b in zip(explanations_a, explanations_b):
        ids = sorted(a.weights)
        wa, wb = [a.weights[i] for i in ids], [b.weights.get(i, 0.0) for i in ids]
        out.append(stats.spearmanr(wa, wb).statistic if np.std(wa) > 0 and np.std(wb) > 0 else np.nan)
    return np.asarray(out, dtype=float)


def stability(runs: Sequence[Sequence], more: Sequence) -> dict[str, np.ndarray]:
    """Per image: top-5 overlap and weight Spearman averaged over every pair of ``runs`` (one list of
    explanations per LIME seed, the same images), and ``runs[0]`` against ``more`` (more perturbations)."""
    pairs = [(a, b) for i, a in enumerate(runs) for b in runs[i + 1:]]
    none = np.full(len(more), np.nan)  # one seed: nothing to compare across seeds
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an image whose weights are flat in every pair: NaN
        spearman = np.nanmean([weight_correlations(a, b) for a, b in pairs], axis=0) if pairs else none
    return {"seed_top5_overlap": np.mean([top_overlaps(a, b) for a, b in pairs], axis=0) if pairs else none,
            "seed_spearman": spearman, "samples_top5_overlap": top_overlaps(runs[0], more),
            "samples_spearman": weight_correlations(runs[0], more)}


def localisation(segments: np.ndarray, ranking, n: int, cell_mask: np.ndarray,
                 nucleus_mask: np.ndarray) -> dict:
    """Share of the top-``n`` superpixels' area that lies inside the cell and the nucleus.

    Chance level is the cell's (nucleus's) share of the image, also returned, since a
    random ranking's top-n lands there in proportion to area.
    """
    top = rank_map(segments, ranking) < int(n)
    cell, nucleus = np.asarray(cell_mask, bool), np.asarray(nucleus_mask, bool)
    if cell.shape != top.shape or nucleus.shape != top.shape:
        raise ValueError(f"masks {cell.shape}/{nucleus.shape} do not match the segments {top.shape}")
    area = int(top.sum())
    return {"cell": float((top & cell).sum() / area), "nucleus": float((top & nucleus).sum() / area),
            "area": area / top.size, "cell_chance": float(cell.mean()), "nucleus_chance": float(nucleus.mean())}


def cell_superpixels(segments: np.ndarray, cell_mask: np.ndarray, inside: float = 0.5) -> np.ndarray:
    """Per superpixel id (ascending), whether at least ``inside`` of its area lies in the cell."""
    segments, cell = np.asarray(segments), np.asarray(cell_mask, bool)
    if cell.shape != segments.shape:
        raise ValueError(f"mask {cell.shape} does not match the segments {segments.shape}")
    ids, inverse = np.unique(segments, return_inverse=True)
    inverse = inverse.reshape(-1)
    inside_px = np.bincount(inverse, weights=cell.reshape(-1), minlength=len(ids))
    share = inside_px / np.bincount(inverse, minlength=len(ids))
    return share >= inside


def top_in_cell(segments_list, rankings, cell_masks, inside: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Per image: whether the ranking's top superpixel lies in the cell, and the chance that a random one does.

    A superpixel "lies in the cell" when at least ``inside`` of its area does; chance is
    the share of the image's superpixels that do, what a random ranking's top one scores
    on average.
    """
    hits, chance = [], []
    for seg, ranking, cell in zip(segments_list, rankings, cell_masks):
        inside_cell = cell_superpixels(seg, cell, inside)
        ids = np.unique(np.asarray(seg))
        hits.append(bool(inside_cell[np.searchsorted(ids, ranking_of(ranking)[0])]))
        chance.append(float(inside_cell.mean()))
    return np.asarray(hits, dtype=float), np.asarray(chance, dtype=float)


def localisation_test(hits, chance, names=("ranking", "random superpixel")) -> statistics.Comparison:
    """Top superpixel in the cell minus chance over images: its Student-t interval and the exact test of a random
    top superpixel, under which the hits are Poisson-binomial with the images' chances.

    Not a signed-rank test: hit - chance is skewed (a small loss on most images, a large
    gain on a few), so Wilcoxon's test rejects a random ranking and misses a real lift
    (simulated in ``tests/test_gradcam_layer.py``). Two-sided p: twice the smaller tail.
    """
    h, c = np.asarray(hits, float), np.asarray(chance, float)
    if len(h) < 2 or len(h) != len(c):
        raise ValueError(f"the test needs hits and chances of the same two or more images, got {len(h)} and {len(c)}")
    iv = statistics.mean_interval(h - c, bounds=(-1, 1))
    null, found = stats.poisson_binom(c), int(h.sum())
    p_value = float(min(1.0, 2 * min(null.sf(found - 1), null.cdf(found))))
    return statistics.Comparison(names[0], names[1], "top superpixel in the cell", iv.estimate, iv.low, iv.high,
                                 p_value, "exact Poisson-binomial", 0.0, len(h))


def localisation_table(segments_list, rankings_by_method: dict, masks: Sequence[tuple], ns=(1, 5, 15)) -> pd.DataFrame:
    """:func:`localisation` for every image, ranking method and n (images with fewer superpixels left out).

    ``masks`` holds one ``(cell_mask, nucleus_mask)`` per image, e.g. from
    ``cytokit.data.synthetic.masks(data_dir, relpath)``.
    """
    rows = []
    for i, seg in enumerate(segments_list):
        k = len(np.unique(seg))
        for method, rankings in rankings_by_method.items():
            for n in ns:
                if n <= k:
                    rows.append({"image": i, "method": method, "n": int(n),
                                 **localisation(seg, rankings[i], n, *masks[i])})
    return pd.DataFrame(rows)


def localisation_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean share inside the cell and the nucleus per method and n, beside chance."""
    cols = ["cell", "nucleus", "cell_chance", "nucleus_chance"]
    return table.groupby(["method", "n"])[cols].mean()


def perturbation_count(model, images, segments_list, y_true, samples=(STUDY_SAMPLES, 1000),
                       label_mode: str = "predicted", ns=STUDY_NS, class_names=CODES, seed: int = 0,
                       batch_size: int = 256, progress: bool = True) -> dict:
    """Explain the same images with each number of perturbations and compare the sufficiency curves.

    The study blamed its 128 perturbations (Ch. 7.2.2); Shah and Sheppard used 1,000.
    Returns ``{"results": {samples: SufficiencyResult}, "curves": summary tables stacked
    by samples, "sufficient_n": {samples: n}, "top5_overlap": overlap of the rankings of
    the first two sample counts}``.
    """
    predict = classifier(model, batch_size)
    explanations, results = {}, {}
    for s in samples:
        ex = explain_all(predict, images, segments_list, label_mode, y_true, s, GREY, seed, batch_size, progress)
        explanations[s] = ex
        results[s] = sufficiency(predict, images, segments_list, ex, y_true, ns, class_names,
                                 full_probs=full_probs(ex), batch_size=batch_size, progress=progress)
    curves = pd.concat({s: r.summary() for s, r in results.items()}, names=["samples"])
    first, second = list(samples)[:2] if len(samples) > 1 else (samples[0], samples[0])
    return {"explanations": explanations, "results": results, "curves": curves,
            "sufficient_n": {s: r.sufficient_n() for s, r in results.items()},
            "top5_overlap": top_overlap(explanations[first], explanations[second], 5)}
