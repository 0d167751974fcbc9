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

with warnings.catch_warnings():
    # lime imports tqdm.auto, which warns inside a kernel without ipywidgets although
    # no lime progress bar is ever shown here.
    warnings.filterwarnings("ignore", message="IProgress not found")
    from lime.lime_image import LimeImageExplainer

from cytokit.progress import bar as progress_bar
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
    explainer fits only the explained class (``labels=(label,)``, or ``top_labels=1``
    for the predicted class, read from lime's own unperturbed sample), not all 21.
    """
    image = check_uint8(image_uint8)
    labelled = dense(segments)
    ids = np.unique(np.asarray(segments))
    label = explained_label(label_mode, true_label=true_label)
    # "none" fits all superpixels at once; lime's "auto" ends with the same model when
    # num_features covers every superpixel, after extra fitting rounds.
    explainer = _BatchedLime(random_state=seed, feature_selection="none")
    exp = explainer.explain_instance(
        image, classifier(model, batch_size), labels=() if label is None else (label,),
        hide_color=hide_color, top_labels=1 if label is None else None, num_features=len(ids),
        num_samples=int(num_samples), batch_size=batch_size, segmentation_fn=lambda _: labelled,
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
    for i in progress_bar(range(len(images)), enabled=progress, desc=f"LIME ({num_samples} samples)", leave=False):
        truth = None if y_true is None else int(y_true[i])
        out.append(explain(predict, images[i], segments_list[i], label_mode, truth, num_samples,
                           hide_color, image_seed(seed, i), batch_size))
    return out


def full_probs(explanations: Sequence[Explanation]) -> np.ndarray:
    """The model's full-image probabilities, as recorded by the explanations (N, C)."""
    return np.stack([e.full_probs for e in explanations])
