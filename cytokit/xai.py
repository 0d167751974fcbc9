"""Superpixels, LIME explanations and the controls of chapter 06 (the study's Ch. 6).

The study segmented each image with quickshift (kernel_size 4, max_dist 200, ratio 0.2,
its public code), explained it with LIME from 128 grey (128) perturbations and kept the
top-n superpixels. Here:

* :func:`superpixels` runs quickshift on the **uint8** image, whatever the model
  consumes: the same picture as floats 0-255 gives about three times as many segments.
* :func:`explain` runs ``lime.lime_image.LimeImageExplainer`` on the uint8 image with
  ``hide_color=128`` and the precomputed segments. Only the neighbourhood builder is
  replaced by a vectorised one that draws the same random perturbations (so results
  equal lime's own, tested) and hands the model a few big batches.
* ``label_mode`` says which class is explained: ``"predicted"`` (default), ``"true"``,
  or ``"first"`` -- class index 0 for every image, which is what the study's code did
  (``np.argmax(class_names[np.argmax(image_class)])`` is always 0); keep it only to
  reproduce the published curve.
* Controls: :func:`random_ranking` (the floor any explanation must beat), Grad-CAM
  rankings, deletion/insertion curves, and on synthetic cells, where the true cell
  and nucleus are known, :func:`localisation`.

The occlusion and sufficiency machinery lives in :mod:`cytokit.sufficiency` and Grad-CAM in
:mod:`cytokit.gradcam`; both are re-exported here so a notebook needs only ``xai``.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from skimage.segmentation import quickshift

with warnings.catch_warnings():
    # lime imports tqdm.auto, which warns inside a kernel without ipywidgets although
    # no lime progress bar is ever shown here.
    warnings.filterwarnings("ignore", message="IProgress not found")
    from lime.lime_image import LimeImageExplainer

from cytokit.classes import CODES
from cytokit.gradcam import gradcam, rank_by_heat, target_layer  # noqa: F401  (re-exported)
from cytokit.gradcam import rankings as gradcam_rankings  # noqa: F401
from cytokit.sufficiency import (  # noqa: F401  (re-exported)
    GREY,
    STUDY_NS,
    THRESHOLD,
    CurveResult,
    SufficiencyResult,
    _keep,
    _progress,
    auc,
    classifier,
    deletion_insertion,
    grey_top,
    keep_top,
    rank_map,
    ranking_of,
    sufficiency,
)

#: The study's quickshift settings (from its public code; lime's defaults too).
QUICKSHIFT = {"kernel_size": 4, "max_dist": 200, "ratio": 0.2}
#: quickshift's tie-breaking seed: skimage's default, which lime's wrapper leaves in place.
QUICKSHIFT_SEED = 42
#: The study's perturbations per image.
STUDY_SAMPLES = 128
LABEL_MODES = ("predicted", "true", "first")


# --------------------------------------------------------------------------- images
def to_uint8(images_float: np.ndarray) -> np.ndarray:
    """Model input in [0, 1] back to uint8 0-255 (exact for images that were pixel/255)."""
    return np.clip(np.rint(np.asarray(images_float, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def _check_uint8(image) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise TypeError(f"expected a uint8 RGB image (H, W, 3), got {image.dtype} {image.shape}; "
                        "use xai.to_uint8 on model inputs in [0, 1]")
    return image


# --------------------------------------------------------------------------- superpixels
def superpixels(image_uint8: np.ndarray, kernel_size: float = 4, max_dist: float = 200,
                ratio: float = 0.2, seed: int = QUICKSHIFT_SEED) -> np.ndarray:
    """Quickshift superpixels of one uint8 RGB image, labelled 0..k-1 (int32).

    Refuses float images on purpose: quickshift's counts depend on the pixel scale,
    and the study's ~43 segments per 250 px image are those of the 8-bit image.
    """
    image = _check_uint8(image_uint8)
    seg = quickshift(image, ratio=ratio, kernel_size=kernel_size, max_dist=max_dist, rng=seed)
    return _dense(seg)


def quickshift_params(image_size: int) -> dict:
    """The study's quickshift settings with kernel_size and max_dist scaled by image_size/250.

    At 250 px this is exactly the study's. Smaller book profiles need it: with the
    study's settings a 64 px image gives ~5 superpixels (real images downscaled and
    synthetic cells alike, measured), too few for the n = 1..45 grid; scaled, ~33-36 at
    64 px and ~41 at 96 px (real 250 px images: ~45).
    """
    scale = float(image_size) / 250.0
    return {"kernel_size": QUICKSHIFT["kernel_size"] * scale, "max_dist": QUICKSHIFT["max_dist"] * scale,
            "ratio": QUICKSHIFT["ratio"]}


def _dense(segments) -> np.ndarray:
    """Labels renumbered 0..k-1 in order, the form lime's perturbation code assumes."""
    ids, inverse = np.unique(np.asarray(segments), return_inverse=True)
    return inverse.reshape(np.shape(segments)).astype(np.int32)


def _segment(args) -> np.ndarray:
    image, params = args
    return superpixels(image, **params)


def superpixels_all(images: Sequence[np.ndarray], workers: int | None = None, progress: bool = True,
                    **params) -> list[np.ndarray]:
    """Superpixels of many images, over ``workers`` processes (default: every core).

    Quickshift holds the GIL (threads do not help) and costs ~0.5-1 s per 250 px image,
    so the study's 7,225 images need processes. Same result as a serial loop. Workers
    are started by a fork server (forking a process that runs TensorFlow can hang), so
    a plain script must call this under ``if __name__ == "__main__":``; notebooks need not.
    """
    workers = os.cpu_count() if workers is None else int(workers)
    jobs = [(im, params) for im in images]
    if workers <= 1 or len(jobs) < 4:
        return [_segment(j) for j in _progress(jobs, progress, "superpixels")]
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("forkserver")  # no fork of a process that may hold TensorFlow
    chunk = max(1, min(16, len(jobs) // (4 * workers)))
    with ProcessPoolExecutor(workers, mp_context=ctx) as ex:
        it = ex.map(_segment, jobs, chunksize=chunk)
        from cytokit.progress import bar

        return list(bar(it, enabled=progress, total=len(jobs), desc="superpixels", leave=False))


def counts(segments_list: Sequence[np.ndarray]) -> np.ndarray:
    """Number of superpixels of each image."""
    return np.array([len(np.unique(s)) for s in segments_list], dtype=np.int64)


def superpixel_stats(counts, labels, class_names=CODES) -> pd.DataFrame:
    """Superpixels per image by class (images, mean, min, max), plus an ``all`` row."""
    df = pd.DataFrame({"code": np.asarray(list(class_names))[np.asarray(labels)], "superpixels": counts})
    stats = df.groupby("code")["superpixels"].agg(images="size", mean="mean", min="min", max="max")
    stats = stats.reindex([c for c in class_names if c in stats.index])
    stats.loc["all"] = [len(df), df["superpixels"].mean(), df["superpixels"].min(), df["superpixels"].max()]
    return stats.astype({"images": int, "min": int, "max": int})


# --------------------------------------------------------------------------- LIME
class _BatchedLime(LimeImageExplainer):
    """lime's explainer with a vectorised neighbourhood: same draws, same images, big batches.

    lime 0.2.0.1 builds each perturbed image with a Python loop over superpixels and
    shows a progress bar per explanation; this builds a whole batch with one gather and
    one ``where``. The random draws and the perturbed images are identical to lime's own.

    The gather is ``np.take`` of the on/off rows (as bools) by the segment id of every
    pixel *and channel*, so the mask comes out (B, H, W, 3) and C-ordered, ready for
    ``where``. The earlier ``data[:, segments].astype(bool)`` and a repeat over the
    channels took about half as long again (0.68 against 0.47 ms per 250 px image at
    128 samples, 0.86 against 0.55 at 1,000, timed with a model-free stub as
    bench/lime_speed.py does): fancy indexing gathers int64 and lays the mask out batch axis
    innermost, and the repeat then walks that transposed layout.
    """

    def data_labels(self, image, fudged_image, segments, classifier_fn, num_samples, batch_size=10):
        n_features = np.unique(segments).shape[0]
        data = self.random_state.randint(0, 2, num_samples * n_features).reshape((num_samples, n_features))
        data[0, :] = 1  # row 0 is the unperturbed image: its prediction is the full-image one
        on_off = data.astype(bool)
        ids = np.repeat(np.asarray(segments)[..., None], image.shape[-1], axis=-1)  # (H, W, 3) segment ids
        labels = []
        for start in range(0, num_samples, batch_size):
            on = np.take(on_off[start:start + batch_size], ids, axis=1)  # (B, H, W, 3), C-ordered
            labels.extend(classifier_fn(np.where(on, image, fudged_image)))
        self.full_probs_ = np.asarray(labels[0], dtype=np.float32)
        return data, np.array(labels)


@dataclass
class Explanation:
    """One LIME explanation: superpixels ranked by weight for ``label``, and the model's view.

    ``ranking`` orders the superpixel ids by LIME weight for ``label``, largest (most
    positive) first -- the order in which :func:`keep_top` reveals them; ``weights[id]``
    is that weight. ``full_probs`` is the model's prediction on the whole image.
    """

    label: int
    label_mode: str
    ranking: np.ndarray
    weights: dict
    full_probs: np.ndarray
    score: float
    intercept: float
    num_samples: int
    seed: int

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.full_probs))

    def top(self, n: int) -> np.ndarray:
        return self.ranking[:n]


def explained_label(label_mode: str, probs=None, true_label=None) -> int | None:
    """The class a ``label_mode`` explains (None for "predicted" before the prediction is known)."""
    if label_mode not in LABEL_MODES:
        raise ValueError(f"label_mode must be one of {LABEL_MODES}; got {label_mode!r}")
    if label_mode == "first":
        return 0
    if label_mode == "true":
        if true_label is None:
            raise ValueError("label_mode='true' needs true_label")
        return int(true_label)
    return None if probs is None else int(np.argmax(probs))


def explain(model, image_uint8: np.ndarray, segments: np.ndarray, label_mode: str = "predicted",
            true_label: int | None = None, num_samples: int = STUDY_SAMPLES, hide_color: int = GREY,
            seed: int = 0, batch_size: int = 256) -> Explanation:
    """Explain one image with lime on its precomputed superpixels.

    ``model`` is a Keras model (fed pixel/255) or a function of a uint8 batch. The
    explainer fits only the explained class (``labels=(label,)``, or ``top_labels=1``
    for the predicted class, read from lime's own unperturbed sample), not all 21.
    """
    image = _check_uint8(image_uint8)
    dense = _dense(segments)
    ids = np.unique(np.asarray(segments))
    label = explained_label(label_mode, true_label=true_label)
    # "none" fits all superpixels at once; lime's "auto" ends with the same model when
    # num_features covers every superpixel, after extra fitting rounds.
    explainer = _BatchedLime(random_state=seed, feature_selection="none")
    exp = explainer.explain_instance(
        image, classifier(model, batch_size), labels=() if label is None else (label,),
        hide_color=hide_color, top_labels=1 if label is None else None, num_features=len(ids),
        num_samples=int(num_samples), batch_size=batch_size, segmentation_fn=lambda _: dense,
        random_seed=seed)
    label = exp.top_labels[0] if label is None else label
    pairs = exp.local_exp[label]
    weights = {int(ids[f]): float(w) for f, w in pairs}
    order = sorted(weights, key=lambda k: (-weights[k], k))
    return Explanation(int(label), label_mode, np.array(order, dtype=np.int64), weights,
                       explainer.full_probs_, float(exp.score), float(exp.intercept[label]),
                       int(num_samples), int(seed))


def image_seed(seed: int, i: int) -> int:
    """Independent seed of image ``i`` in a run seeded ``seed`` (numpy's SeedSequence)."""
    return int(np.random.SeedSequence([int(seed), int(i)]).generate_state(1)[0] >> 1)


def explain_all(model, images: Sequence[np.ndarray], segments_list: Sequence[np.ndarray],
                label_mode: str = "predicted", y_true=None, num_samples: int = STUDY_SAMPLES,
                hide_color: int = GREY, seed: int = 0, batch_size: int = 256,
                progress: bool = True) -> list[Explanation]:
    """:func:`explain` for every image; image ``i`` is seeded ``image_seed(seed, i)``."""
    if label_mode == "true" and y_true is None:
        raise ValueError("label_mode='true' needs y_true")
    predict = classifier(model, batch_size)
    out = []
    for i in _progress(range(len(images)), progress, f"LIME ({num_samples} samples)"):
        truth = None if y_true is None else int(y_true[i])
        out.append(explain(predict, images[i], segments_list[i], label_mode, truth, num_samples,
                           hide_color, image_seed(seed, i), batch_size))
    return out


def full_probs(explanations: Sequence[Explanation]) -> np.ndarray:
    """The model's full-image probabilities, as recorded by the explanations (N, C)."""
    return np.stack([e.full_probs for e in explanations])


def labels_of(explanations: Sequence[Explanation]) -> np.ndarray:
    """The class each explanation explains."""
    return np.array([e.label for e in explanations], dtype=np.int64)


def table(explanations: Sequence[Explanation], class_names=CODES) -> pd.DataFrame:
    """One row per explanation: explained and predicted class, superpixels, LIME fit R^2."""
    names = list(class_names)
    return pd.DataFrame({
        "explained": [names[e.label] for e in explanations],
        "predicted": [names[e.predicted] for e in explanations],
        "superpixels": [len(e.ranking) for e in explanations],
        "score": [e.score for e in explanations],
    })


# --------------------------------------------------------------------------- controls
def random_ranking(segments: np.ndarray, seed: int) -> np.ndarray:
    """The superpixel ids in a seeded random order: the floor an explanation must beat."""
    return np.random.default_rng(seed).permutation(np.unique(np.asarray(segments)))


def random_rankings(segments_list: Sequence[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    """:func:`random_ranking` for every image, image ``i`` seeded ``image_seed(seed, i)``."""
    return [random_ranking(s, image_seed(seed, i)) for i, s in enumerate(segments_list)]


def top_overlap(rankings_a, rankings_b, k: int = 5) -> float:
    """Mean Jaccard overlap of the top-``k`` superpixels of two rankings of the same images."""
    scores = []
    for a, b in zip(rankings_a, rankings_b):
        sa, sb = set(ranking_of(a)[:k].tolist()), set(ranking_of(b)[:k].tolist())
        scores.append(len(sa & sb) / len(sa | sb))
    return float(np.mean(scores))


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


def localisation_table(segments_list, rankings_by_method: dict, masks: Sequence[tuple], ns=(1, 5, 15)) -> pd.DataFrame:
    """:func:`localisation` for every image, ranking method and n (images with fewer superpixels left out).

    ``masks`` holds one ``(cell_mask, nucleus_mask)`` per image, e.g. from
    ``cytokit.synth.masks(data_dir, relpath)``.
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


# --------------------------------------------------------------------------- perturbation count
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


def at_resolution(model, source_size: int):
    """The model fed images of ``source_size`` px, resized inside the network as the pipeline does.

    Explanations are made on the dataset's own images (250 px), where the study's
    quickshift settings give its ~43 superpixels; a model trained on smaller images
    sees each occluded image resized to its input size. At the model's own size this
    returns the model unchanged.
    """
    import keras

    size = model.input_shape[1]
    if size == source_size:
        return model
    return keras.Sequential(
        [keras.Input((source_size, source_size, 3)),
         keras.layers.Resizing(size, size, interpolation="area" if size < source_size else "bilinear",
                               antialias=True, name="resize_to_model"),
         *model.layers], name=f"{model.name}_at_{source_size}px")


def load_images(data_dir, relpaths, size: int) -> list[np.ndarray]:
    """uint8 RGB images at ``size`` px (the dataset's own size needs no resizing)."""
    import cv2

    from cytokit.validation import read_rgb

    out = []
    for rel in relpaths:
        img = read_rgb(Path(data_dir) / rel)
        if img.shape[:2] != (size, size):
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        out.append(img)
    return out


def choose(manifest, split: str, fraction: float, seed: int = 0, max_images: int | None = None):
    """A seeded fraction of a split's usable rows (the study explained 30 % of its validation set)."""
    from cytokit import pipeline

    rows = pipeline.rows(manifest, split)
    n = max(1, int(round(len(rows) * fraction)))
    if max_images:
        n = min(n, int(max_images))
    return rows.sample(n=n, random_state=seed).sort_values("path")


def heat_overlay(image_uint8: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """A Grad-CAM heatmap blended over the image (jet colours), uint8 RGB."""
    import cv2

    colour = cv2.applyColorMap(np.uint8(255 * np.clip(heat, 0, 1)), cv2.COLORMAP_JET)[..., ::-1]
    return np.uint8(np.clip((1 - alpha) * image_uint8 + alpha * colour, 0, 255))


def example_indices(labels, k: int = 4, seed: int = 0) -> list[int]:
    """Up to ``k`` images of different classes (seeded), for the example panels."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    classes = rng.permutation(np.unique(labels))[:k]
    return sorted(int(rng.choice(np.flatnonzero(labels == c))) for c in classes)
