"""Hidden superpixels: images with only some superpixels visible, fed to the model in big batches.

Everything works on uint8 images at the model's input size; the study hid a superpixel
by painting it grey 128.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np


#: The study's occlusion value on the 0-255 scale.
GREY = 128


def classifier(model, batch_size: int = 256) -> Callable[[np.ndarray], np.ndarray]:
    """A function uint8 images -> probabilities that feeds the model its uint8 pixels in big batches.

    A Keras model is called through ``predict_on_batch`` (its compiled predict step,
    no per-call overhead) on chunks of ``batch_size``, with the input the pipeline's:
    the uint8 pixels as they are, which the network scales itself
    (:func:`cytokit.models.network.build_cnn`); any other callable is returned
    unchanged and must itself take a uint8 batch (N, H, W, 3).
    """
    if not hasattr(model, "predict_on_batch"):
        if not callable(model):
            raise TypeError(f"expected a Keras model or a callable, got {type(model).__name__}")
        return model

    def predict(images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        out = [np.asarray(model.predict_on_batch(images[i:i + batch_size]))
               for i in range(0, len(images), batch_size)]
        return np.concatenate(out, axis=0) if out else np.zeros((0, 0), np.float32)

    predict.batch_size = batch_size
    return predict


def predict_stream(predict: Callable, items: Iterable[tuple[object, np.ndarray]],
                   batch_size: int = 256) -> dict:
    """Probabilities for ``(key, image)`` pairs, predicted ``batch_size`` images at a time.

    Keeps at most one batch of occluded images in memory, so the full study (65k
    occluded images at 250 px) never needs 12 GB at once.
    """
    out, keys, batch = {}, [], []

    def flush():
        if batch:
            probs = np.asarray(predict(np.stack(batch)))
            out.update(zip(keys, probs))
            keys.clear()
            batch.clear()

    for key, image in items:
        keys.append(key)
        batch.append(image)
        if len(batch) >= batch_size:
            flush()
    flush()
    return out


def batch_size_of(predict, batch_size):
    return int(batch_size or getattr(predict, "batch_size", 256))


def ranking_of(item) -> np.ndarray:
    """The superpixel order of an explanation object (``.ranking``) or of a plain sequence."""
    return np.asarray(getattr(item, "ranking", item))


def rank_map(segments: np.ndarray, ranking) -> np.ndarray:
    """Per pixel, the rank of its superpixel (0 = most important), to occlude by comparison."""
    ranking = ranking_of(ranking)
    segments = np.asarray(segments)
    ids = np.unique(segments)
    if len(ranking) != len(ids) or not np.array_equal(np.sort(ranking), ids):
        raise ValueError(f"ranking must order all {len(ids)} superpixel ids of the segments exactly once")
    pos = np.empty(int(ids.max()) + 1, dtype=np.int32)
    pos[ranking] = np.arange(len(ranking), dtype=np.int32)
    return pos[segments]


def keep_top(image_uint8: np.ndarray, segments: np.ndarray, ranking, n: int, grey: int = GREY) -> np.ndarray:
    """The explanation image: the top-``n`` superpixels as they are, ``grey`` everywhere else."""
    return compose(image_uint8, rank_map(segments, ranking) < int(n), grey)


def grey_top(image_uint8: np.ndarray, segments: np.ndarray, ranking, n: int, grey: int = GREY) -> np.ndarray:
    """The deletion image: the top-``n`` superpixels greyed out, the rest as they are."""
    return compose(image_uint8, rank_map(segments, ranking) >= int(n), grey)


def compose(image, visible, fill):
    """``image`` where ``visible`` (H, W) or (B, H, W), ``fill`` (a value or an image) elsewhere.

    The mask is repeated over the channels first: numpy's ``where`` is ~4x slower when
    it has to broadcast a mask over a last axis of 3.
    """
    image = np.asarray(image)
    fill = np.asarray(fill, dtype=image.dtype)
    return np.where(np.repeat(visible[..., None], image.shape[-1], axis=-1), image, fill)
