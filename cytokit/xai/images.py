"""The images chapter 06 explains: chosen, read as uint8, and fed to a model trained at another size."""

from __future__ import annotations


import numpy as np
import pandas as pd

from cytokit.data import manifest as manifests


def check_uint8(image) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise TypeError(f"expected a uint8 RGB image (H, W, 3), got {image.dtype} {image.shape}; "
                        "explanations work on the images as read (uint8 0-255)")
    return image


#: A class with at least this many images in the split is always represented among those explained.
REPRESENTED = 10


def allocate(counts: dict[str, int], n_images: int, floor: int = 1) -> dict[str, int]:
    """Images to explain per class: proportional to the class sizes (largest remainder), every class of
    :data:`REPRESENTED` or more images given at least ``floor``, none more than it has."""
    total = sum(counts.values())
    n = min(int(n_images), total)
    base = {c: (min(floor, k) if k >= REPRESENTED else 0) for c, k in counts.items()}
    left = n - sum(base.values())
    if left < 0:
        raise ValueError(f"{n_images} images cannot represent the {sum(1 for v in base.values() if v)} classes "
                         f"that have {REPRESENTED} or more images: ask for more")
    room = {c: counts[c] - base[c] for c in counts}
    share = {c: left * room[c] / max(sum(room.values()), 1) for c in counts}
    extra = {c: min(int(share[c]), room[c]) for c in counts}
    order = sorted(counts, key=lambda c: (-(share[c] - int(share[c])), -counts[c], c))
    for c in order:
        if sum(extra.values()) >= left:
            break
        if extra[c] < room[c]:
            extra[c] += 1
    return {c: base[c] + extra[c] for c in counts}


def choose(manifest, split: str | None, n_images: int, seed: int = 0):
    """A seeded sample of ``n_images`` usable rows of a split, stratified by class (see :func:`allocate`)."""
    rows = manifests.rows(manifest, split)
    counts = rows["cls"].value_counts().sort_index().to_dict()
    wanted = allocate(counts, n_images)
    rng = np.random.default_rng(seed)
    picked = [group.iloc[np.sort(rng.choice(len(group), wanted[cls], replace=False))]
              for cls, group in rows.sort_values("path").groupby("cls", sort=True) if wanted[cls]]
    return pd.concat(picked).sort_values("path")


def subset(chosen, n: int, seed: int = 0) -> np.ndarray:
    """Positions of a stratified, seeded subset of ``n`` of the chosen images (for the costly checks)."""
    positions = chosen.reset_index(drop=True)
    counts = positions["cls"].value_counts().sort_index().to_dict()
    wanted = allocate(counts, n)
    rng = np.random.default_rng([seed, 1])
    picked = [np.sort(rng.choice(group.index.to_numpy(), wanted[cls], replace=False))
              for cls, group in positions.groupby("cls", sort=True) if wanted[cls]]
    return np.sort(np.concatenate(picked)) if picked else np.array([], dtype=int)


def class_by_class(classes, seed: int = 0) -> np.ndarray:
    """An order of positions that takes one image of each class in turn (classes and images in a seeded order):
    any first k of it are as evenly spread over the classes as k allows."""
    classes = np.asarray(classes)
    rng = np.random.default_rng([seed, 2])
    queues = [list(rng.permutation(np.flatnonzero(classes == c))) for c in rng.permutation(np.unique(classes))]
    order = []
    while any(queues):
        order += [q.pop(0) for q in queues if q]
    return np.array(order, dtype=int)


def at_resolution(model, source_size: int):
    """The model fed uint8 images of ``source_size`` px, resized inside the network as the pipeline does.

    Explanations are made on the dataset's own images (250 px), where the study's
    quickshift settings give its ~43 superpixels; a model trained on smaller images
    sees each occluded image resized to its input size. The resize works on the 0-255
    pixels, before the model's own pixel/255 layer; unlike the pipeline it does not round
    the resized pixels to whole levels (at most half a level apart). At the model's own
    size this returns the model unchanged.
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
