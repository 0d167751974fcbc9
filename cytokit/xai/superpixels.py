"""Superpixels, the units LIME ranks: quickshift with the study's settings on the uint8 image, or SLIC.

The same picture as floats 0-255 gives about three times as many quickshift segments, so
:func:`superpixels` refuses anything but uint8. SLIC (Achanta et al., 2012) is the other
segmentation chapter 06 tries, to see whether a finding depends on quickshift's.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from skimage.segmentation import quickshift, slic

from cytokit.data.taxonomy import CODES
from cytokit.progress import bar as progress_bar
from cytokit.xai.images import check_uint8


#: The study's quickshift settings (from its public code; lime's defaults too).
QUICKSHIFT = {"kernel_size": 4, "max_dist": 200, "ratio": 0.2}


#: quickshift's tie-breaking seed: skimage's default, which lime's wrapper leaves in place.
QUICKSHIFT_SEED = 42


def superpixels(image_uint8: np.ndarray, kernel_size: float = 4, max_dist: float = 200,
                ratio: float = 0.2, seed: int = QUICKSHIFT_SEED) -> np.ndarray:
    """Quickshift superpixels of one uint8 RGB image, labelled 0..k-1 (int32).

    Refuses float images on purpose: quickshift's counts depend on the pixel scale,
    and the study's ~43 segments per 250 px image are those of the 8-bit image.
    """
    image = check_uint8(image_uint8)
    seg = quickshift(image, ratio=ratio, kernel_size=kernel_size, max_dist=max_dist, rng=seed)
    return dense(seg)


#: SLIC's compactness: at about the study's number of segments on real 250 px cells, SLIC makes as many as asked.
SLIC_COMPACTNESS = 20

#: The segmentations :func:`segment` knows.
METHODS = ("quickshift", "slic")


def slic_superpixels(image_uint8: np.ndarray, n_segments: int = 45,
                     compactness: float = SLIC_COMPACTNESS) -> np.ndarray:
    """SLIC superpixels of one uint8 RGB image (in Lab colour, skimage's default), labelled 0..k-1 (int32)."""
    image = check_uint8(image_uint8)
    return dense(slic(image, n_segments=int(n_segments), compactness=float(compactness), start_label=0))


def segment(image_uint8: np.ndarray, method: str = "quickshift", **params) -> np.ndarray:
    """Superpixels of one image by ``method`` (:data:`METHODS`) with its parameters."""
    if method == "quickshift":
        return superpixels(image_uint8, **params)
    if method == "slic":
        return slic_superpixels(image_uint8, **params)
    raise ValueError(f"unknown segmentation {method!r}; use one of {', '.join(METHODS)}")


def dense(segments) -> np.ndarray:
    """Labels renumbered 0..k-1 in order, the form lime's perturbation code assumes."""
    ids, inverse = np.unique(np.asarray(segments), return_inverse=True)
    return inverse.reshape(np.shape(segments)).astype(np.int32)


def _segment(args) -> np.ndarray:
    image, method, params = args
    return segment(image, method, **params)


def superpixels_all(images: Sequence[np.ndarray], workers: int | None = None, progress: bool = True,
                    method: str = "quickshift", **params) -> list[np.ndarray]:
    """Superpixels of many images by ``method`` (:func:`segment`), over ``workers`` processes (default: every core).

    Quickshift holds the GIL (threads do not help) and costs ~0.5-1 s per 250 px image,
    so the study's 7,225 images need processes. Same result as a serial loop. Workers
    are started by a fork server (forking a process that runs TensorFlow can hang), so
    a plain script must call this under ``if __name__ == "__main__":``; notebooks need not.
    """
    workers = os.cpu_count() if workers is None else int(workers)
    jobs = [(im, method, params) for im in images]
    if workers <= 1 or len(jobs) < 4:
        return [_segment(j) for j in progress_bar(jobs, enabled=progress, desc="superpixels", leave=False)]
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("forkserver")  # no fork of a process that may hold TensorFlow
    chunk = max(1, min(16, len(jobs) // (4 * workers)))
    with ProcessPoolExecutor(workers, mp_context=ctx) as ex:
        it = ex.map(_segment, jobs, chunksize=chunk)
        return list(progress_bar(it, enabled=progress, total=len(jobs), desc="superpixels", leave=False))


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
