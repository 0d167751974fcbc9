"""Class-balanced upsampling and on-the-fly augmentation of the training split.

Introduced in chapter 04 (augmentation). The study wrote augmented copies of the
minority classes to disk with ``ImageDataGenerator`` until every class had about
25,000 images. Here nothing is written: each class's training files are repeated
(or subsampled) to a target count by index, and every added copy is transformed
afresh inside tf.data by one random warp per image (:mod:`cytokit.models.warp`). Validation
and test data are never augmented.

Batches are uint8, as the input pipeline's: a warped copy is resampled in float and
rounded back to the nearest grey level (the study's copies were saved as 8-bit JPEGs),
so the network sees each pixel within half a level of the exact warp.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from cytokit.data import image_cache
from cytokit.data import manifest as manifest_rows
from cytokit.data import pipeline
from cytokit.models.warp import FILL_MODES, RandomWarp

AUTOTUNE = tf.data.AUTOTUNE


def augmenter(
    rotation_deg: float = 180,
    translate: float = 0.25,
    shear: float = 0.2,
    flip: bool = True,
    fill_mode: str = "reflect",
    seed: int = 0,
) -> keras.Sequential:
    """The study's augmentation (report Ch. 4.7) as one seeded Keras layer: flips, rotation, shift, shear."""
    # one transform per image, composed into one matrix and resampled once, as ImageDataGenerator did;
    # shear=0.2 moves pixels by up to 20 % of the image (about 11 degrees), the report's stated shear
    # (the study's code passed shear_range=0.2, which Keras reads as 0.2 degrees)
    return keras.Sequential(
        [RandomWarp(rotation_deg, translate, shear, flip, fill_mode, seed=seed, name="warp")],
        name="augmenter")


def balanced_indices(labels: np.ndarray, target_per_class: int, seed: int = 0) -> np.ndarray:
    """Indices into ``labels`` giving exactly ``target_per_class`` of every class present.

    A class with n <= target keeps each of its images once and fills the rest with
    random repeats; a larger class is cut to a random subset without replacement.
    The result is shuffled; the same seed gives the same indices.
    """
    labels = np.asarray(labels)
    if target_per_class < 1:
        raise ValueError(f"target_per_class must be >= 1; got {target_per_class}")
    rng = np.random.default_rng(seed)
    parts = []
    for cls in np.unique(labels):
        own = np.flatnonzero(labels == cls)
        if len(own) > target_per_class:
            parts.append(rng.choice(own, target_per_class, replace=False))
        else:
            parts.append(np.concatenate([own, rng.choice(own, target_per_class - len(own), replace=True)]))
    idx = np.concatenate(parts) if parts else np.array([], dtype=np.int64)
    return rng.permutation(idx)


def copies(idx: np.ndarray) -> np.ndarray:
    """True for every entry of ``idx`` that repeats an index already counted once.

    Exactly one occurrence of each distinct image is the original; the rest are the
    copies that upsampling added.
    """
    idx = np.asarray(idx)
    is_copy = np.ones(len(idx), dtype=bool)
    _, first = np.unique(idx, return_index=True)
    is_copy[first] = False
    return is_copy


def upsampled_dataset(
    manifest,
    data_dir,
    image_size: int,
    batch_size: int,
    target_per_class: int,
    class_names=None,
    augmenter: keras.Sequential | None = None,
    seed: int = 0,
    augment_originals: bool = False,
    cache=False,
    cache_dir=None,
) -> tf.data.Dataset:
    """Class-balanced uint8 batches of the training split, reshuffled every epoch, the added copies augmented."""
    y = manifest_rows.labels(manifest, "train", class_names)
    idx = balanced_indices(y, target_per_class, seed=seed)
    flags = np.ones(len(idx), bool) if augment_originals else copies(idx)  # the study augmented only the copies
    ds = _shuffled_batches(manifest, data_dir, image_size, batch_size, idx, y, flags, seed, cache, cache_dir)
    if augmenter is None:
        return ds.map(lambda x, label, flag: (x, label)).prefetch(AUTOTUNE)
    return ds.map(lambda x, label, flag: _augment_where(x, label, flag, augmenter)).prefetch(AUTOTUNE)


def _shuffled_batches(manifest, data_dir, image_size, batch_size, idx, y, flags, seed, cache, cache_dir):
    """(uint8 images, labels, augment flags) of the training rows ``idx``, batched and reshuffled every epoch.

    ``cache`` (``cache_images``) decodes each distinct training image once and keeps it, in
    memory or on disk (:func:`cytokit.data.pipeline.decoded`); otherwise each is read in place.
    """
    if image_cache.mode(cache) is not None:
        images = pipeline.decoded(manifest, data_dir, "train", image_size, cache, cache_dir)
        ds = tf.data.Dataset.from_tensor_slices((idx, y[idx], flags))
        ds = ds.shuffle(len(idx), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
        return ds.map(lambda i, label, flag: (pipeline.gather(images, i), label, flag),
                      num_parallel_calls=AUTOTUNE, deterministic=True)
    train = manifest_rows.rows(manifest, "train")
    files = np.array([os.path.join(str(data_dir), p) for p in train["path"]])
    load = pipeline.loader(train, image_size)
    ds = tf.data.Dataset.from_tensor_slices((files[idx], y[idx], flags))
    ds = ds.shuffle(len(idx), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda f, label, flag: (load(f), label, flag), num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.batch(batch_size)


def _augment_where(x, y, flag, aug):
    """Transform the flagged images of a uint8 batch (in float, rounded back); keep the others as they are."""
    return tf.where(flag[:, None, None, None], warped(x, aug), x), y


def warped(images, aug) -> tf.Tensor:
    """uint8 images (n, h, w, 3) through the augmenter: warped in float, rounded to the nearest level."""
    out = aug(tf.convert_to_tensor(images), training=True)
    if out.dtype != tf.uint8:  # an augmenter of other layers, which compute in float
        out = tf.cast(tf.clip_by_value(tf.round(out), 0.0, 255.0), tf.uint8)
    return out


def variants(image: np.ndarray, n: int, aug: keras.Sequential) -> list[np.ndarray]:
    """``n`` augmented versions of one uint8 RGB image (as the pipeline reads it), uint8 for display."""
    batch = np.repeat(np.asarray(image)[None], n, axis=0)
    if batch.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, as cytokit.data.pipeline.load_image reads it; got {batch.dtype}")
    return list(np.asarray(warped(batch, aug)))


def variant_gallery(image: np.ndarray, label: str, seed: int = 0, rows: int = 3) -> dict[str, list[np.ndarray]]:
    """``rows`` rows of three augmented versions of one image, each row from its own seeded augmenter."""
    return {f"{label} ({3 * k + 1}-{3 * k + 3})": variants(image, 3, augmenter(seed=seed + k)) for k in range(rows)}


def fill_mode_gallery(image: np.ndarray, n: int = 3, seed: int = 0,
                      modes=FILL_MODES) -> dict[str, list[np.ndarray]]:
    """The same random rotations and shifts under each fill mode, to compare the borders.

    Every mode gets an augmenter with the same seed, so the geometry is identical and
    only the filling of the uncovered corners differs.
    """
    return {mode: variants(image, n, augmenter(shear=0.0, flip=False, fill_mode=mode, seed=seed))
            for mode in modes}
