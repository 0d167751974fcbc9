"""Class-balanced upsampling and on-the-fly augmentation of the training split.

Introduced in chapter 04 (augmentation). The study wrote augmented copies of the
minority classes to disk with ``ImageDataGenerator`` until every class had about
25,000 images. Here nothing is written: each class's training files are repeated
(or subsampled) to a target count by index, and every added copy is transformed
afresh inside tf.data by one random warp per image (:mod:`cytokit.warp`). Validation
and test data are never augmented.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from cytokit import pipeline
from cytokit.warp import FILL_MODES, RandomWarp

AUTOTUNE = tf.data.AUTOTUNE


def augmenter(
    rotation_deg: float = 180,
    translate: float = 0.25,
    shear: float = 0.2,
    flip: bool = True,
    fill_mode: str = "reflect",
    seed: int = 0,
) -> keras.Sequential:
    """The study's geometric augmentation (report Ch. 4.7) as one Keras layer, ``"warp"``.

    Every image gets its own random transform, composed into one matrix and resampled
    once (:class:`cytokit.warp.RandomWarp`), as ``ImageDataGenerator`` did:

    - flips: left-right and top-bottom, independently, each with probability 1/2
      (``horizontal_flip=True, vertical_flip=True``), so true mirror images occur;
    - rotation: uniform in +-``rotation_deg`` (``rotation_range=180``);
    - translation: up to +-``translate`` of width and height (``*_shift_range=0.25``);
    - shear: up to +-``shear`` along each axis, i.e. pixels move by up to ``shear`` of
      the image size across it (about 11 degrees for 0.2), the report's stated 20 %.
      The study's code passed ``ImageDataGenerator(shear_range=0.2)``, which is 0.2
      *degrees*, a near no-op; this follows the report's intent.
    - ``fill_mode`` (``"reflect"``, the study's) fills the uncovered borders. Bilinear
      interpolation keeps values in [0, 1].

    The same ``seed`` gives the same sequence of transforms.
    """
    return keras.Sequential(
        [RandomWarp(rotation_deg, translate, shear, flip, fill_mode, seed=seed, name="warp")],
        name="augmenter")


def augment_dataset(ds: tf.data.Dataset, augmenter: keras.Sequential) -> tf.data.Dataset:
    """Batched (x, y) -> (augmented x clipped to [0, 1], y).

    The map runs sequentially on purpose: the warp draws from a stateful seed
    generator, and a parallel map would hand out the draws in a run-dependent order.
    A prefetch after it still overlaps augmentation with training.
    """

    def apply(x, y):
        return tf.clip_by_value(augmenter(x, training=True), 0.0, 1.0), y

    return ds.map(apply)


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
    cache: bool = False,
) -> tf.data.Dataset:
    """Augmented, class-balanced batches of the *training* split, read in place.

    Usable train rows (``split == "train"``, ``status != "bad"``) are balanced with
    :func:`balanced_indices`, reshuffled every epoch (seeded), decoded and scaled as
    :func:`cytokit.pipeline.load_image` does, batched, then augmented.

    As in the study, which wrote augmented copies beside the untouched originals until
    each class had about 25,000 images, only the *added copies* are transformed; each
    original image is seen once per epoch as it is. ``augment_originals=True``
    transforms every sample instead; ``augmenter=None`` balances without augmenting.

    ``cache=True`` decodes each distinct training image once and keeps it in memory
    (the same batches, without decoding every upsampled copy again every epoch); leave
    it off when the training split does not fit in memory (the full dataset at 250 px).
    """
    train = pipeline.rows(manifest, "train")
    y = pipeline.labels(manifest, "train", class_names)
    idx = balanced_indices(y, target_per_class, seed=seed)
    flags = np.ones(len(idx), bool) if augment_originals else copies(idx)
    if cache:
        images = tf.constant(pipeline.load_images(manifest, data_dir, "train", image_size, batch_size=256))
        ds = tf.data.Dataset.from_tensor_slices((idx, y[idx], flags))
        ds = ds.shuffle(len(idx), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
        ds = ds.map(lambda i, label, flag: (tf.gather(images, i), label, flag))
    else:
        files = np.array([os.path.join(str(data_dir), p) for p in train["path"]])
        load = pipeline.loader(train, image_size)
        ds = tf.data.Dataset.from_tensor_slices((files[idx], y[idx], flags))
        ds = ds.shuffle(len(idx), seed=seed, reshuffle_each_iteration=True)
        ds = ds.map(
            lambda f, label, flag: (load(f), label, flag),
            num_parallel_calls=AUTOTUNE,
            deterministic=True,
        )
        ds = ds.batch(batch_size)
    if augmenter is not None:
        ds = ds.map(lambda x, label, flag: _augment_where(x, label, flag, augmenter))
    else:
        ds = ds.map(lambda x, label, flag: (x, label))
    return ds.prefetch(AUTOTUNE)


def _augment_where(x, y, flag, aug):
    """Transform the flagged images of a batch; keep the others as they are."""
    out = tf.clip_by_value(aug(x, training=True), 0.0, 1.0)
    return tf.where(flag[:, None, None, None], out, x), y


def variants(image: np.ndarray, n: int, aug: keras.Sequential) -> list[np.ndarray]:
    """``n`` augmented versions of one float [0,1] image, as uint8 RGB for display."""
    batch = np.repeat(np.asarray(image, np.float32)[None], n, axis=0)
    out = np.clip(np.asarray(aug(batch, training=True)), 0.0, 1.0)
    return [np.rint(x * 255).astype(np.uint8) for x in out]


def fill_mode_gallery(image: np.ndarray, n: int = 3, seed: int = 0,
                      modes=FILL_MODES) -> dict[str, list[np.ndarray]]:
    """The same random rotations and shifts under each fill mode, to compare the borders.

    Every mode gets an augmenter with the same seed, so the geometry is identical and
    only the filling of the uncovered corners differs.
    """
    return {mode: variants(image, n, augmenter(shear=0.0, flip=False, fill_mode=mode, seed=seed))
            for mode in modes}
