"""The sanity check by cascading model randomisation (Adebayo et al., NeurIPS 2018) for LIME and Grad-CAM.

An explanation that stays the same when the model's learned weights are replaced by
random ones says nothing about the model. :func:`cascade` re-initialises the network
from the top down -- the output layer, then the hidden Dense layer, then the conv blocks
from the last to the first -- and :func:`randomisation_check` explains the same images
with every randomised model, with the same LIME draws and the same explained class as
for the trained model, and measures with Spearman's rank correlation how much of each
explanation survives. Each method's agreement with itself on the trained model (LIME
with another seed; Grad-CAM, deterministic, computed again) is the level a correlation
has to fall clearly below (:func:`verdicts`).

Beside the cascade, :func:`independent` re-initialises each step's layers *alone*, every
other weight the trained model's (Hedström et al., 2024, on the cascade's pitfalls): a
cascade's later steps inherit every earlier change, so it cannot say which layer an
explanation depends on; an independent randomisation can (:func:`layer_dependence`).

Layers are found by type and position, not by name: the study's saved models carry
Keras' default names (``conv2d_16``, ``dense_5``), :func:`cytokit.models.network.build_cnn`
its own (``block1_conv1``, ``probs``). A conv block is the weighted layers between two
pooling layers, numbered from the input as ``build_cnn`` numbers them. Layers without
weights (Resizing, Rescaling, Activation, Dropout) have nothing to randomise; a weighted
layer other than Conv2D, BatchNormalization and Dense (a Normalization adapted to the
data, say) is not learned by training and is kept. TensorFlow is imported only when a
model is randomised or a heatmap is made.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from cytokit.evaluation.statistics import Interval, mean_interval
from cytokit.io import to_jsonable
from cytokit.progress import bar as progress_bar
from cytokit.xai import gradcam
from cytokit.xai.explain import STUDY_SAMPLES, Explanation, explain, explain_all, image_seed
from cytokit.xai.occlusion import GREY, classifier

#: Layer types whose weights training learns, and so the cascade re-initialises.
LEARNED = ("Conv2D", "BatchNormalization", "Dense")
#: Layer types that end a conv block.
POOLING = ("MaxPooling2D", "AveragePooling2D")
#: The rows of the table that compare the trained model's explanations with themselves made again.
BASELINE = "trained, explained again"
METHODS = ("LIME", "Grad-CAM")
PASSES, FAILS, INCONCLUSIVE, NOT_MEASURED = "passes", "fails", "inconclusive", "not measured"
#: A method passes when, even at the upper end of its interval, it keeps less than this share
#: of its own trained-vs-trained agreement (the lower end of that interval).
KEPT_SHARE = 0.5


# --------------------------------------------------------------------------- the cascade


def cascade_steps(model) -> list[tuple[str, list[str]]]:
    """The cascade's steps, top first: (step name, names of the layers it re-initialises).

    The last Dense layer is ``"probs"``, a Dense layer below it ``"dense"`` (``"dense1"``,
    ``"dense2"``, ... from the bottom when there are several), and the Conv2D and
    BatchNormalization layers between the (i-1)-th and the i-th pooling layer are
    ``"block{i}"``; blocks come last to first. Each step re-initialises only its own
    layers; the steps before it stay re-initialised (:func:`cascade`).
    """
    blocks: dict[int, list[str]] = {}
    dense: list[str] = []
    block = 1
    for layer in model.layers:
        kind = type(layer).__name__
        if hasattr(layer, "layers") and layer.weights:
            raise ValueError(f"layer {layer.name!r} is a nested model: give the cascade a flat model "
                             "(cytokit.xai.images.at_resolution builds one)")
        if kind in POOLING:
            block += 1
        elif layer.weights and kind == "Dense":
            dense.append(layer.name)
        elif layer.weights and kind in LEARNED:
            if dense:
                raise ValueError(f"layer {layer.name!r} ({kind}) follows a Dense layer: not a network of "
                                 "conv blocks and a Dense head")
            blocks.setdefault(block, []).append(layer.name)
    if not dense:
        raise ValueError("the model has no Dense output layer to randomise first")
    hidden = dense[:-1]
    names = ["dense"] if len(hidden) == 1 else [f"dense{i}" for i in range(1, len(hidden) + 1)]
    steps = [("probs", [dense[-1]])]
    steps += [(name, [layer]) for name, layer in reversed(list(zip(names, hidden)))]
    steps += [(f"block{b}", blocks[b]) for b in sorted(blocks, reverse=True)]
    return steps


def _seeded(initializer, seed: int):
    """The initializer with ``seed`` when it draws at random (Keras 3: a ``seed`` in its config)."""
    config = initializer.get_config()
    if "seed" not in config:
        return initializer
    return type(initializer).from_config({**config, "seed": int(seed)})


def layer_seed(seed: int, step: int, layer: int, weight: int) -> int:
    """Seed of one weight of one layer of one step of a cascade seeded ``seed`` (numpy's SeedSequence)."""
    return int(np.random.SeedSequence([int(seed), step, layer, weight]).generate_state(1)[0] >> 1)


def reinitialise(layer, seeds: Sequence[int]) -> None:
    """Draw every weight of ``layer`` again from the layer's own initializer, weight ``j`` seeded ``seeds[j]``.

    Keras 3 keeps each initializer on the layer as ``<weight>_initializer``
    (``kernel_initializer``, ``gamma_initializer``, ``moving_variance_initializer``, ...);
    BatchNormalization's moving mean and variance go back to 0 and 1 with gamma and beta.
    """
    for variable, seed in zip(layer.weights, seeds, strict=True):
        initializer = getattr(layer, f"{variable.name}_initializer", None)
        if initializer is None:
            raise ValueError(f"layer {layer.name!r} has no initializer for its weight {variable.name!r}")
        variable.assign(_seeded(initializer, seed)(tuple(variable.shape), variable.dtype))


def cascade(model, seed: int = 0) -> Iterator[tuple[str, object]]:
    """Yield (step name, model) for each cascade step, each a new clone; ``model`` is never changed.

    Step k's clone has the layers of steps 1..k re-initialised and every other weight the
    trained model's. A generator, so that only one randomised model need be alive at a
    time; the layer ``l`` of step ``k`` draws weight ``j`` with ``layer_seed(seed, k, l, j)``,
    so a step is the same for the same seed, whatever the model's layer names.
    """
    return randomised_models(model, seed, cumulative=True)


def randomised_models(model, seed: int, cumulative: bool) -> Iterator[tuple[str, object]]:
    """Each step's clone of ``model``: its layers re-drawn on top of the previous step's (cascade) or the trained
    weights (independent)."""
    import keras

    position = {layer.name: i for i, layer in enumerate(model.layers)}
    weights = model.get_weights()
    for k, (name, layers) in enumerate(cascade_steps(model), start=1):  # "probs", "dense", last block ... first
        clone = keras.models.clone_model(model)
        clone.set_weights(weights)
        for i, layer_name in enumerate(layers):
            layer = clone.layers[position[layer_name]]
            reinitialise(layer, [layer_seed(seed, k, i, j) for j in range(len(layer.weights))])
        if cumulative:
            weights = clone.get_weights()  # the next step starts from this one's random layers
        yield name, clone


def independent(model, seed: int = 0) -> Iterator[tuple[str, object]]:
    """Yield (step name, model) for each cascade step with *only* that step's layers re-initialised.

    The same steps and the same draws as :func:`cascade` (layer ``l`` of step ``k`` seeded
    ``layer_seed(seed, k, l, j)``), each from the trained weights; ``model`` is never changed.
    """
    return randomised_models(model, seed, cumulative=False)


#: The ways a network is randomised: top-down and cumulative, or one step at a time.
ORDERS = {"cascade": cascade, "independent": independent}


# --------------------------------------------------------------------------- comparing explanations


def _vector_pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    """Two explanations of one image as aligned vectors: dicts (or ``.weights``) by superpixel id, arrays as is."""
    a, b = getattr(a, "weights", a), getattr(b, "weights", b)
    if isinstance(a, dict) or isinstance(b, dict):
        if not (isinstance(a, dict) and isinstance(b, dict)) or set(a) != set(b):
            raise ValueError("the two explanations of an image must cover the same superpixel ids")
        ids = sorted(a)
        return np.array([a[i] for i in ids], float), np.array([b[i] for i in ids], float)
    x, y = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"the two explanations of an image differ in size: {x.shape} and {y.shape}")
    return x, y


def spearman(a, b, absolute: bool = False) -> float:
    """Spearman's rank correlation of two explanations of one image; NaN when either is constant.

    A constant explanation (a Grad-CAM map with no positive evidence, all zeros) ranks
    nothing, so its correlation is undefined rather than 0; summaries count these.
    ``absolute`` ranks the values' magnitudes (Adebayo et al. report both): a LIME
    ranking whose signs flipped then still counts as the same ranking.
    """
    x, y = _vector_pair(a, b)
    if absolute:
        x, y = np.abs(x), np.abs(y)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(stats.spearmanr(x, y).statistic)


def spearman_per_image(a_list, b_list, absolute: bool = False) -> np.ndarray:
    """Spearman's rank correlation per image of two explanations of each image (:func:`spearman`).

    An item is a LIME :class:`~cytokit.xai.explain.Explanation` (its weights, aligned by
    superpixel id), a dict superpixel id -> value (:func:`superpixel_heat`), or an array.
    """
    a_list, b_list = list(a_list), list(b_list)
    if len(a_list) != len(b_list):
        raise ValueError(f"{len(a_list)} explanations against {len(b_list)}: one of each per image")
    return np.array([spearman(a, b, absolute) for a, b in zip(a_list, b_list)], dtype=float)


def superpixel_heat(heatmap: np.ndarray, segments: np.ndarray) -> dict:
    """Mean heat of each superpixel, by id: a Grad-CAM map in LIME's units.

    Comparing maps per superpixel compares like with like (LIME's weights are per
    superpixel too) and ties pixels that interpolation of the coarse map makes
    near-identical; it is also far cheaper than ranking 62,500 pixels.
    """
    segments = np.asarray(segments)
    ids, inverse = np.unique(segments, return_inverse=True)
    inverse = inverse.reshape(-1)
    sums = np.bincount(inverse, weights=np.asarray(heatmap, float).reshape(-1), minlength=len(ids))
    means = sums / np.bincount(inverse, minlength=len(ids))
    return {int(i): float(m) for i, m in zip(ids, means)}


def gradcam_heat(model, images_uint8, segments_list, class_indices, layer_name: str | None = None,
                 batch_size: int = 64) -> list[dict]:
    """Per image, the mean Grad-CAM heat of each superpixel for ``class_indices`` (:func:`superpixel_heat`)."""
    return gradcam_heat_layers(model, images_uint8, segments_list, class_indices, [layer_name], batch_size)[layer_name]


def gradcam_heat_layers(model, images_uint8, segments_list, class_indices, layer_names,
                        batch_size: int = 64) -> dict[str, list[dict]]:
    """:func:`gradcam_heat` on each of ``layer_names``, one forward and backward pass per batch for them all."""
    names = list(layer_names)
    cam = gradcam.cam_model(model, names)
    classes = np.asarray(class_indices)
    out = {name: [] for name in names}
    for start in range(0, len(images_uint8), batch_size):
        stop = min(start + batch_size, len(images_uint8))
        heat = gradcam.gradcam_layers(model, np.stack(images_uint8[start:stop]), classes[start:stop], names, cam=cam)
        for name in names:
            out[name] += [superpixel_heat(h, segments_list[i]) for h, i in zip(heat[name], range(start, stop))]
    return out


# --------------------------------------------------------------------------- the check


#: The table's columns: signed rank correlation, and that of the magnitudes.
COLUMNS = ["step", "order", "image", "method", "spearman", "spearman_abs"]


def _rows(step: str, order: int, method: str, a_list, b_list) -> list[dict]:
    signed, magnitude = spearman_per_image(a_list, b_list), spearman_per_image(a_list, b_list, absolute=True)
    return [{"step": step, "order": order, "image": i, "method": method, "spearman": float(v),
             "spearman_abs": float(w)} for i, (v, w) in enumerate(zip(signed, magnitude))]


def explain_like(model, images_uint8, segments_list, like: Sequence[Explanation], hide_color: int = GREY,
                 seeds: Sequence[int] | None = None, progress: bool = True) -> list[Explanation]:
    """LIME explanations of ``model`` with the class, perturbation count and seed of each of ``like``.

    With the same seed an image gets the same perturbed images whatever the model, so two
    models' explanations differ only by the model. ``seeds`` replaces the seeds; ``hide_color``
    is not recorded in an explanation and must be the one ``like`` was made with.
    """
    if not len(like) == len(images_uint8) == len(segments_list):
        raise ValueError(f"{len(like)} explanations for {len(images_uint8)} images and {len(segments_list)} "
                         "segmentations: one of each per image")
    seeds = [e.seed for e in like] if seeds is None else list(seeds)
    predict = classifier(model)
    return [explain(predict, images_uint8[i], segments_list[i], "true", e.label, e.num_samples, hide_color, seeds[i])
            for i, e in progress_bar(enumerate(like), enabled=progress, total=len(like), desc="LIME", leave=False)]


def randomisation_check(model, images_uint8, segments_list, labels=None, num_samples: int = STUDY_SAMPLES,
                        seed: int = 0, baseline_seed: int | None = None, hide_color: int = GREY,
                        trained: Sequence[Explanation] | None = None, steps: Sequence[str] | None = None,
                        randomisation_seed: int = 0, layer_name: str | None = None, order: str = "cascade",
                        progress: bool = True) -> pd.DataFrame:
    """Spearman per image between the trained and each randomised model's explanations: a tidy table.

    ``order`` is ``"cascade"`` (:func:`cascade`) or ``"independent"`` (:func:`independent`).

    Columns: ``step`` (a :func:`cascade_steps` name, or :data:`BASELINE`), ``order`` (0 for
    the baseline, then the cascade's order), ``image``, ``method`` ("LIME", "Grad-CAM"),
    ``spearman`` (signed values: LIME's weights, Grad-CAM's mean heat per superpixel) and
    ``spearman_abs`` (their magnitudes; the same for Grad-CAM, whose map is >= 0). The
    trained model's LIME explanations are ``trained`` when given (any label mode, seeds
    and sample count: they are reused as they are; ``hide_color`` must be theirs), else
    made here for ``labels`` with ``num_samples`` and ``seed``. Every
    randomised model then explains each image's same class with the same seed and
    samples (:func:`explain_like`), so only the model differs; Grad-CAM reads the same
    class. The :data:`BASELINE` rows compare the trained model's explanations with
    themselves made again: LIME with image ``i`` seeded ``image_seed(baseline_seed, i)``
    (default ``seed + 1``), its own seed-to-seed agreement; Grad-CAM computed a second time
    (1 wherever the map is not constant, as long as Grad-CAM is deterministic). ``steps``
    explains only the named cascade steps (the cascade itself always runs in full).
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {sorted(ORDERS)}; got {order!r}")
    names = [name for name, _ in cascade_steps(model)]
    unknown = set(steps or ()) - set(names)
    if unknown:
        raise ValueError(f"no cascade steps {sorted(unknown)} in this model (steps: {names})")
    if trained is None:
        if labels is None:
            raise ValueError("pass the classes to explain (labels) or the trained model's explanations (trained)")
        trained = explain_all(model, images_uint8, segments_list, "true", np.asarray(labels), num_samples,
                              hide_color, seed, progress=progress)
    elif labels is not None and [int(v) for v in labels] != [e.label for e in trained]:
        raise ValueError("labels differ from the trained explanations' labels: pass one or the other")
    other = [image_seed(seed + 1 if baseline_seed is None else baseline_seed, i) for i in range(len(trained))]
    if any(o == e.seed for o, e in zip(other, trained)):
        raise ValueError("baseline_seed gives an image the trained explanation's own seed: choose another")
    baseline = explain_like(model, images_uint8, segments_list, trained, hide_color, other, progress)
    rows = _rows(BASELINE, 0, "LIME", trained, baseline)
    labels = [e.label for e in trained]
    trained_heat = gradcam_heat(model, images_uint8, segments_list, labels, layer_name)
    rows += _rows(BASELINE, 0, "Grad-CAM", trained_heat,
                  gradcam_heat(model, images_uint8, segments_list, labels, layer_name))
    steps_run = progress_bar(ORDERS[order](model, randomisation_seed), enabled=progress, total=len(names),
                             desc=f"randomisation ({order})", leave=False)
    for order, (name, randomised) in enumerate(steps_run, start=1):
        if steps is not None and name not in steps:
            continue
        lime = explain_like(randomised, images_uint8, segments_list, trained, hide_color, progress=progress)
        heat = gradcam_heat(randomised, images_uint8, segments_list, labels, layer_name)
        rows += _rows(name, order, "LIME", trained, lime)
        rows += _rows(name, order, "Grad-CAM", trained_heat, heat)
    return pd.DataFrame(rows, columns=COLUMNS)


# --------------------------------------------------------------------------- summaries and verdicts


def summarise(table: pd.DataFrame, column: str = "spearman") -> pd.DataFrame:
    """Per (step, method), in cascade order: the mean of ``column`` over images with its 95 % Student-t interval.

    Columns ``order``, ``step``, ``method``, ``mean``, ``low``, ``high``, ``n`` (images with a
    defined correlation) and ``undefined`` (images where an explanation was constant:
    left out of the mean, counted here). The verdict per method (:func:`verdicts`) rides
    along in ``attrs["verdicts"]``.
    """
    rows = []
    for (order, step, method), group in table.groupby(["order", "step", "method"], sort=True):
        values = group[column].to_numpy(float)
        defined = int(np.isfinite(values).sum())
        interval = mean_interval(values[np.isfinite(values)], bounds=(-1, 1)) if defined else Interval(*[float("nan")] * 3)
        rows.append({"order": int(order), "step": step, "method": method, "mean": interval.estimate,
                     "low": interval.low, "high": interval.high, "n": defined,
                     "undefined": int(len(values) - defined)})
    summary = pd.DataFrame(rows, columns=["order", "step", "method", "mean", "low", "high", "n", "undefined"])
    summary.attrs["column"] = column
    summary.attrs["verdicts"] = verdicts(summary)
    return summary


def verdicts(summary: pd.DataFrame) -> dict[str, str]:
    """Per method, whether its explanation passes the randomisation check.

    Rule: take the method's own trained-vs-trained agreement (its :data:`BASELINE` row:
    LIME with two seeds, Grad-CAM made twice) and the bar ``KEPT_SHARE`` (one half) of that
    interval's lower end. At the deepest cascade step in ``summary`` (every learned layer
    re-initialised when the whole cascade was explained) the method

    - **passes** when its whole 95 % interval lies below the bar: the randomised model's
      explanations keep clearly less than half of what the method agrees with itself;
    - **fails** when its whole interval lies at or above the bar;
    - is **inconclusive** when the interval straddles the bar, or when the method does not
      agree with itself (its trained-vs-trained interval reaches 0: LIME with too few
      samples ranks superpixels at random, and no drop can show);
    - is **not measured** when either row has no defined correlation.

    A signed correlation far below 0 (a ranking reversed) passes; summarise the
    ``spearman_abs`` column to count a reversed ranking as the same one.
    """
    out = {}
    for method in sorted(summary["method"].unique(), key=lambda m: (m not in METHODS, m)):
        mine = summary[(summary["method"] == method) & (summary["n"] > 0)]
        base = mine[mine["step"] == BASELINE]
        steps = summary[(summary["method"] == method) & (summary["step"] != BASELINE)]
        last = steps[steps["order"] == steps["order"].max()]
        if base.empty or last.empty or int(last["n"].iloc[0]) == 0:
            out[method] = NOT_MEASURED
            continue
        reference, low, high = float(base["low"].iloc[0]), float(last["low"].iloc[0]), float(last["high"].iloc[0])
        bar = KEPT_SHARE * reference
        if reference <= 0:
            out[method] = INCONCLUSIVE
        elif high < bar:
            out[method] = PASSES
        elif low >= bar:
            out[method] = FAILS
        else:
            out[method] = INCONCLUSIVE
    return out


#: Verdicts of :func:`layer_dependence`.
DEPENDS, NO_DEPENDENCE = "depends on it", "does not depend on it"


def layer_dependence(summary: pd.DataFrame) -> dict[str, dict[str, str]]:
    """Per method and randomised step of an independent randomisation, whether the explanation depends on it.

    The bar is :func:`verdicts`': half the lower end of the method's own trained-vs-trained
    interval. A step's whole interval below the bar: the explanation **depends on it**;
    at or above: it **does not depend on it**; straddling, or a method that does not
    agree with itself: **inconclusive**; no defined correlation: **not measured**.
    """
    out: dict[str, dict[str, str]] = {}
    for method in summary["method"].unique():
        mine = summary[(summary["method"] == method) & (summary["n"] > 0)]
        base = mine[mine["step"] == BASELINE]
        reference = float(base["low"].iloc[0]) if len(base) else float("nan")
        bar = KEPT_SHARE * reference
        found = {}
        for row in summary[(summary["method"] == method) & (summary["step"] != BASELINE)].itertuples():
            if base.empty or row.n == 0:
                found[row.step] = NOT_MEASURED
            elif reference <= 0 or not (row.high < bar or row.low >= bar):
                found[row.step] = INCONCLUSIVE
            else:
                found[row.step] = DEPENDS if row.high < bar else NO_DEPENDENCE
        out[method] = found
    return out


@dataclass(frozen=True)
class IndependentRandomisation:
    """Each learned step re-initialised alone: Spearman to the trained explanation per method, with intervals."""

    summary: pd.DataFrame  # :func:`summarise` of an ``order="independent"`` table
    images: int

    def dependence(self) -> dict[str, dict[str, str]]:
        return layer_dependence(self.summary)

    def facts(self) -> dict:
        """metrics.json's ``randomisation.independent`` entry."""
        dependence = self.dependence()
        steps = [{"order": int(r.order), "step": r.step, "method": r.method, "spearman": r.mean,
                  "ci95": [r.low, r.high], "images": int(r.n),
                  "verdict": dependence.get(r.method, {}).get(r.step, "reference")}
                 for r in self.summary.itertuples()]
        return to_jsonable({"images": self.images, "steps": steps, "dependence": dependence,
                            "bar": f"{KEPT_SHARE:g} x the lower end of the method's trained-vs-trained interval"})


def independent_check(model, images_uint8, segments_list, trained: Sequence[Explanation], seed: int = 0,
                      randomisation_seed: int = 0, layer_name: str | None = None, hide_color: int = GREY,
                      progress: bool = True) -> IndependentRandomisation:
    """:func:`randomisation_check` with ``order="independent"`` on the trained explanations, summarised."""
    table = randomisation_check(model, images_uint8, segments_list, trained=trained, seed=seed, hide_color=hide_color,
                                randomisation_seed=randomisation_seed, layer_name=layer_name, order="independent",
                                progress=progress)
    return IndependentRandomisation(summarise(table), len(trained))


def gradcam_check(model, images_uint8, segments_list, labels, layers: Sequence[str], order: str = "cascade",
                  randomisation_seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """The check for Grad-CAM alone, read on each of ``layers``: the table of :func:`randomisation_check`,
    one ``method`` per layer (``"Grad-CAM <layer>"``); no LIME, so it costs a few heatmaps per step."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {sorted(ORDERS)}; got {order!r}")
    labels = [int(v) for v in labels]
    trained = gradcam_heat_layers(model, images_uint8, segments_list, labels, layers)
    again = gradcam_heat_layers(model, images_uint8, segments_list, labels, layers)
    rows = []
    for layer in layers:
        rows += _rows(BASELINE, 0, f"Grad-CAM {layer}", trained[layer], again[layer])
    steps = progress_bar(ORDERS[order](model, randomisation_seed), enabled=progress,
                         total=len(cascade_steps(model)), desc=f"Grad-CAM randomisation ({order})", leave=False)
    for k, (name, randomised) in enumerate(steps, start=1):
        heat = gradcam_heat_layers(randomised, images_uint8, segments_list, labels, layers)
        for layer in layers:
            rows += _rows(name, k, f"Grad-CAM {layer}", trained[layer], heat[layer])
    return pd.DataFrame(rows, columns=COLUMNS)
