"""LIME explanations of one class per image, with lime's own draws in a few big batches.

``label_mode`` says which class is explained: ``"predicted"`` (default), ``"true"``, or
``"first"`` -- class index 0 for every image, which is what the study's code did
(``np.argmax(class_names[np.argmax(image_class)])`` is always 0); keep it only to
reproduce the published curve.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sklearn.metrics

with warnings.catch_warnings():
    # lime imports tqdm.auto, which warns inside a kernel without ipywidgets although
    # no lime progress bar is ever shown here.
    warnings.filterwarnings("ignore", message="IProgress not found")
    from lime.lime_image import LimeImageExplainer

from cytokit.progress import bar as progress_bar
from cytokit.xai.fills import segment_means
from cytokit.xai.images import check_uint8
from cytokit.xai.occlusion import GREY, classifier
from cytokit.xai.superpixels import dense


#: The study's perturbations per image.
STUDY_SAMPLES = 128


LABEL_MODES = ("predicted", "true", "first")


class _BatchedLime(LimeImageExplainer):
    """lime's explainer with a vectorised neighbourhood: lime's own draws and images, in big batches.

    lime 0.2.0.1 builds each perturbed image in a Python loop over superpixels; here one
    ``np.take`` of the on/off rows by each pixel's (and channel's) segment id gives the
    whole batch's mask, C-ordered for ``np.where`` (bench/lime_speed.py compares the two).
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

    ``model`` is a Keras model (fed the uint8 images) or a function of a uint8 batch. The
    explainer fits only the explained class (the predicted one is read from lime's own
    unperturbed sample), not all 21.
    """
    return explain_labels(model, image_uint8, segments, (label_mode,), true_label, num_samples, hide_color,
                          seed, batch_size)[label_mode]


def _hidden_image(image: np.ndarray, segments: np.ndarray, hide_color) -> np.ndarray:
    """What lime shows in place of a hidden superpixel: ``hide_color``, or (None) each superpixel's
    mean colour truncated to the image's dtype, as lime computes it."""
    if hide_color is not None:
        return np.full_like(image, hide_color)
    means, inverse = segment_means(image, segments)
    return means.astype(image.dtype)[inverse].reshape(image.shape)


def explain_labels(model, image_uint8: np.ndarray, segments: np.ndarray, label_modes=("predicted", "first"),
                   true_label: int | None = None, num_samples: int = STUDY_SAMPLES, hide_color: int = GREY,
                   seed: int = 0, batch_size: int = 256) -> dict[str, Explanation]:
    """LIME with the study's settings, one explanation per label mode from one set of perturbations.

    Each explanation is the one :func:`explain` makes alone with the same seed: lime draws the
    same perturbed images whatever the class, and fits each class's ridge model on them
    separately (``lime.lime_image.LimeImageExplainer.explain_instance``, step by step).
    """
    wanted = {mode: explained_label(mode, true_label=true_label) for mode in label_modes}
    image, ids = check_uint8(image_uint8), dense(segments)
    explainer = _BatchedLime(random_state=seed, feature_selection="none")
    # num_samples copies of the image, each with a random set of superpixels hidden (row 0: none hidden)
    data, labels = explainer.data_labels(image, _hidden_image(image, ids, hide_color), ids,
                                         classifier(model, batch_size), int(num_samples), batch_size)
    distances = sklearn.metrics.pairwise_distances(data, data[0].reshape(1, -1), metric="cosine").ravel()
    predicted = int(np.argsort(labels[0])[-1])  # lime's top_labels=1
    out = {}
    for mode, label in wanted.items():
        label = predicted if label is None else label
        # a ridge model of the class's probability on which superpixels were visible, near images weighted up
        fit = explainer.base.explain_instance_with_data(data, labels, distances, label, data.shape[1],
                                                        feature_selection="none")
        out[mode] = _explanation(fit, np.unique(np.asarray(segments)), label, mode, explainer.full_probs_,
                                 num_samples, seed)
    return out


def _explanation(fit, ids: np.ndarray, label: int, mode: str, full: np.ndarray, num_samples: int,
                 seed: int) -> Explanation:
    """lime's fit ``(intercept, (feature, weight) pairs, score, _)`` as an :class:`Explanation` of superpixel ids."""
    intercept, pairs, score, _ = fit
    weights = {int(ids[f]): float(w) for f, w in pairs}
    order = sorted(weights, key=lambda k: (-weights[k], k))
    return Explanation(int(label), mode, np.array(order, dtype=np.int64), weights, full, float(score),
                       float(intercept), int(num_samples), int(seed))


def image_seed(seed: int, i: int) -> int:
    """Independent seed of image ``i`` in a run seeded ``seed`` (numpy's SeedSequence)."""
    return int(np.random.SeedSequence([int(seed), int(i)]).generate_state(1)[0] >> 1)


def explain_all(model, images: Sequence[np.ndarray], segments_list: Sequence[np.ndarray],
                label_mode: str = "predicted", y_true=None, num_samples: int = STUDY_SAMPLES,
                hide_color: int = GREY, seed: int = 0, batch_size: int = 256,
                progress: bool = True) -> list[Explanation]:
    """:func:`explain` for every image; image ``i`` is seeded ``image_seed(seed, i)``."""
    return explain_all_labels(model, images, segments_list, (label_mode,), y_true, num_samples, hide_color, seed,
                              batch_size, progress)[label_mode]


def explain_all_labels(model, images: Sequence[np.ndarray], segments_list: Sequence[np.ndarray],
                       label_modes=("predicted", "first"), y_true=None, num_samples: int = STUDY_SAMPLES,
                       hide_color: int = GREY, seed: int = 0, batch_size: int = 256,
                       progress: bool = True) -> dict[str, list[Explanation]]:
    """:func:`explain_labels` for every image (image ``i`` seeded ``image_seed(seed, i)``): one list per mode."""
    if "true" in label_modes and y_true is None:
        raise ValueError("label_mode='true' needs y_true")
    predict = classifier(model, batch_size)
    out = {mode: [] for mode in label_modes}
    for i in progress_bar(range(len(images)), enabled=progress, desc=f"LIME ({num_samples} samples)", leave=False):
        truth = None if y_true is None else int(y_true[i])
        found = explain_labels(predict, images[i], segments_list[i], tuple(label_modes), truth, num_samples,
                               hide_color, image_seed(seed, i), batch_size)
        for mode in label_modes:
            out[mode].append(found[mode])
    return out


def to_arrays(explanations: Sequence[Explanation]) -> dict[str, np.ndarray]:
    """Explanations as plain arrays, to save with ``numpy.savez`` and no pickles (superpixel ids 0..k-1, as
    :func:`dense` makes them)."""
    width = max(max(e.weights) + 1 for e in explanations)
    weights = np.full((len(explanations), width), np.nan)
    for row, e in zip(weights, explanations):
        row[list(e.weights)] = list(e.weights.values())
    return {"label": np.array([e.label for e in explanations]), "weights": weights,
            "full_probs": np.stack([e.full_probs for e in explanations]),
            "score": np.array([e.score for e in explanations]),
            "intercept": np.array([e.intercept for e in explanations]),
            "num_samples": np.array([e.num_samples for e in explanations]),
            "seed": np.array([e.seed for e in explanations]),
            "label_mode": np.array([e.label_mode for e in explanations])}


def from_arrays(arrays) -> list[Explanation]:
    """The explanations :func:`to_arrays` wrote; rankings rebuilt from the weights as :func:`explain_labels` orders
    them."""
    out = []
    for i in range(len(arrays["label"])):
        row = np.asarray(arrays["weights"][i], float)
        weights = {int(k): float(row[k]) for k in np.flatnonzero(~np.isnan(row))}
        order = sorted(weights, key=lambda k: (-weights[k], k))
        out.append(Explanation(int(arrays["label"][i]), str(arrays["label_mode"][i]), np.array(order, dtype=np.int64),
                               weights, np.asarray(arrays["full_probs"][i], np.float32), float(arrays["score"][i]),
                               float(arrays["intercept"][i]), int(arrays["num_samples"][i]), int(arrays["seed"][i])))
    return out


def full_probs(explanations: Sequence[Explanation]) -> np.ndarray:
    """The model's full-image probabilities, as recorded by the explanations (N, C)."""
    return np.stack([e.full_probs for e in explanations])
