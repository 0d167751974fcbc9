"""What a hidden superpixel shows: four fills for the occlusion tests of chapter 06.

Grey 128 is the study's fill. Grey is far from every training image (ROAR: Hooker
et al., NeurIPS 2019) and its edges trace the mask (ROAD: Rong et al., ICML 2022),
so the chapter repeats each occlusion test under three more fills:

- ``mean``: each hidden superpixel takes its own mean colour (``lime``'s
  ``hide_color=None``), computed over that superpixel's pixels in the original image;
- ``blur``: a strongly blurred copy of the image (:func:`blur_sigma`);
- ``imputed``: ROAD's noisy linear imputation (:func:`impute`).

The first three fills are images that do not depend on which superpixels are
hidden: :func:`source` makes one per image and ``occlusion.compose(image, visible,
source)`` makes every occluded image from it. Imputation solves one linear system
per mask; :func:`filler` hides that difference behind one callable per image.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from scipy import sparse
from scipy.sparse.linalg import splu

from cytokit.xai.images import check_uint8
from cytokit.xai.occlusion import GREY, compose


#: The fills, the study's first.
FILLS = ("grey", "mean", "blur", "imputed")

#: The fills whose filler image depends on the mask (the others have a :func:`source`).
MASK_DEPENDENT = frozenset({"imputed"})

#: ROAD's weights of a pixel's neighbours (row, column offset): 1/6 direct, 1/12 diagonal; they sum to 1.
NEIGHBOUR_WEIGHTS = (((-1, 0), 1 / 6), ((1, 0), 1 / 6), ((0, -1), 1 / 6), ((0, 1), 1 / 6),
                     ((-1, -1), 1 / 12), ((-1, 1), 1 / 12), ((1, -1), 1 / 12), ((1, 1), 1 / 12))

#: Standard deviation of the imputation noise on the 0-255 scale: ROAD's 0.01 on images in [0, 1].
NOISE = 0.01 * 255

#: The blur's sigma as a fraction of the image side (10 px at 250 px).
BLUR_FRACTION = 1 / 25


def check_kind(kind: str) -> str:
    """``kind`` if it is one of :data:`FILLS`, else a ValueError that lists them."""
    if kind not in FILLS:
        raise ValueError(f"unknown fill {kind!r}; use one of {', '.join(FILLS)}")
    return kind


def blur_sigma(side: int) -> float:
    """The blur's Gaussian sigma in pixels for an image of ``side`` pixels.

    Quickshift makes ~40-55 superpixels on a 250 px cell image, ~35 px across; a
    sigma of side/25 (10 px there, +-2 sigma = one superpixel) wipes out the texture
    and edges inside a hidden superpixel and keeps only its neighbourhood's colour.
    Scaling with the side keeps that ratio on the smaller images of quick profiles.
    """
    return float(side) * BLUR_FRACTION


def blurred(image_uint8: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """The image under a Gaussian blur of ``sigma`` px (default :func:`blur_sigma` of its larger side), uint8."""
    image = check_uint8(image_uint8)
    sigma = blur_sigma(max(image.shape[:2])) if sigma is None else float(sigma)
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


def superpixel_means(image_uint8: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Every pixel painted its superpixel's mean colour, rounded to uint8.

    ``lime`` truncates the mean when it is handed a uint8 image; rounding is the
    nearer colour and differs from it by less than one grey level.
    """
    image = check_uint8(image_uint8)
    means, inverse = segment_means(image, segments)
    return np.clip(np.rint(means), 0, 255).astype(np.uint8)[inverse].reshape(image.shape)


def segment_means(image: np.ndarray, segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(k, C) float mean colour of each superpixel (ids ascending), and each pixel's index into them (flat)."""
    segments = np.asarray(segments)
    if segments.shape != image.shape[:2]:
        raise ValueError(f"segments {segments.shape} do not match the image {image.shape[:2]}")
    ids, inverse = np.unique(segments, return_inverse=True)
    inverse = inverse.reshape(-1)
    pixels = image.reshape(-1, image.shape[-1]).astype(np.float64)
    size = np.bincount(inverse, minlength=len(ids))
    means = np.stack([np.bincount(inverse, weights=pixels[:, c], minlength=len(ids)) / size
                      for c in range(pixels.shape[1])], axis=1)
    return means, inverse


def source(image_uint8: np.ndarray, segments: np.ndarray, kind: str) -> np.ndarray:
    """The uint8 filler image of a mask-independent fill, to ``occlusion.compose`` with any mask.

    ``imputed`` has none: its filler depends on the mask (use :func:`filler` or :func:`fill`).
    """
    image = check_uint8(image_uint8)
    if check_kind(kind) in MASK_DEPENDENT:
        raise ValueError(f"the {kind!r} fill depends on the mask and has no source image; use fills.filler")
    if kind == "grey":
        return np.full_like(image, GREY)
    if kind == "mean":
        return superpixel_means(image, segments)
    return blurred(image)


def noise_field(shape, noise: float = NOISE, seed: int = 0) -> np.ndarray:
    """Gaussian noise of standard deviation ``noise`` for every pixel and channel, seeded.

    Drawn for the whole image, so one seed puts the same noise on a pixel whichever
    mask hides it: occluded images of one image differ only by what they show.
    """
    return np.random.default_rng(seed).normal(0.0, float(noise), size=tuple(shape))


def imputation_system(visible: np.ndarray):
    """ROAD's linear system for the hidden pixels of ``visible`` (H, W): ``(A, B, hidden, known)``.

    Each hidden pixel equals the weighted mean of its in-image neighbours
    (:data:`NEIGHBOUR_WEIGHTS`, renormalised where the border cuts some off), the
    visible ones fixed. Row i of the hidden pixels (flat indices ``hidden``) reads
    ``A[i] @ x = B[i] @ image[known]``; A is symmetric and positive definite as soon
    as one pixel is visible.
    """
    visible = np.asarray(visible, dtype=bool)
    h, w = visible.shape
    flat = visible.reshape(-1)
    hidden = np.flatnonzero(~flat)
    known = np.flatnonzero(flat)
    var = np.full(h * w, -1, dtype=np.int64)
    var[hidden] = np.arange(len(hidden))
    col = np.full(h * w, -1, dtype=np.int64)
    col[known] = np.arange(len(known))
    r, c = np.divmod(hidden, w)
    diag = np.zeros(len(hidden))
    a_rows, a_cols, a_vals, b_rows, b_cols, b_vals = [], [], [], [], [], []
    for (dr, dc), weight in NEIGHBOUR_WEIGHTS:
        rr, cc = r + dr, c + dc
        inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        rows = np.flatnonzero(inside)
        nb = rr[inside] * w + cc[inside]
        diag[rows] += weight
        is_known = flat[nb]
        a_rows.append(rows[~is_known])
        a_cols.append(var[nb[~is_known]])
        b_rows.append(rows[is_known])
        b_cols.append(col[nb[is_known]])
        a_vals.append(np.full((~is_known).sum(), -weight))
        b_vals.append(np.full(is_known.sum(), weight))
    n = len(hidden)
    diagonal = np.arange(n)
    a = sparse.csc_matrix((np.concatenate(a_vals + [diag]),
                           (np.concatenate(a_rows + [diagonal]), np.concatenate(a_cols + [diagonal]))),
                          shape=(n, n))
    b = sparse.csr_matrix((np.concatenate(b_vals), (np.concatenate(b_rows), np.concatenate(b_cols))),
                          shape=(n, len(known)))
    return a, b, hidden, known


def imputed_values(image: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Float (H, W, C): the image where visible, ROAD's noiseless linear imputation where hidden.

    With nothing visible the system has no solution to pin it down; every pixel
    then takes the image's mean colour (ROAD's "fixed" imputation).
    """
    image = np.asarray(image, dtype=np.float64)
    visible = np.asarray(visible, dtype=bool)
    if visible.shape != image.shape[:2]:
        raise ValueError(f"mask {visible.shape} does not match the image {image.shape[:2]}")
    out = image.copy()
    if visible.all():
        return out
    if not visible.any():
        out[...] = image.reshape(-1, image.shape[-1]).mean(axis=0)
        return out
    a, b, hidden, known = imputation_system(visible)
    pixels = out.reshape(-1, image.shape[-1])
    # one factorisation serves the three colour channels; the symmetric-pattern ordering suits the
    # symmetric 9-point stencil, and A being symmetric positive definite, its diagonal pivots need no
    # search (SuperLU's symmetric mode: a quarter less time at 250 px, the same solution to 1e-11)
    lu = splu(a, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    pixels[hidden] = lu.solve(b @ pixels[known])
    return out


def impute(image_uint8: np.ndarray, visible: np.ndarray, noise: float = NOISE, seed: int = 0,
           field: np.ndarray | None = None) -> np.ndarray:
    """ROAD's noisy linear imputation of the pixels outside ``visible``, as uint8.

    Hidden pixels get the linear imputation plus :func:`noise_field` (``noise``,
    ``seed``; or a precomputed ``field``), then everything is rounded and clipped to
    0-255; visible pixels keep their bytes.
    """
    image = check_uint8(image_uint8)
    visible = np.asarray(visible, dtype=bool)
    values = imputed_values(image, visible)
    if field is None and noise:
        field = noise_field(image.shape, noise, seed)
    if field is not None:
        values[~visible] += field[~visible]
    out = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    out[visible] = image[visible]
    return out


def filler(image_uint8: np.ndarray, segments: np.ndarray, kind: str, seed: int = 0,
           noise: float = NOISE) -> Callable[[np.ndarray], np.ndarray]:
    """A function visible mask (H, W) -> occluded uint8 image, with the per-image work done once.

    Mask-independent fills compose with their :func:`source`; ``imputed`` draws its
    noise field once (``seed``) and solves one system per mask.
    """
    image = check_uint8(image_uint8)
    if check_kind(kind) not in MASK_DEPENDENT:
        filled = source(image, segments, kind)
        return lambda visible: compose(image, np.asarray(visible, dtype=bool), filled)
    field = noise_field(image.shape, noise, seed) if noise else None
    return lambda visible: impute(image, visible, noise=noise, field=field)


def fill(image_uint8: np.ndarray, segments: np.ndarray, visible: np.ndarray, kind: str, seed: int = 0,
         noise: float = NOISE) -> np.ndarray:
    """The image with every pixel outside ``visible`` replaced by fill ``kind`` (uint8, the image's shape)."""
    return filler(image_uint8, segments, kind, seed=seed, noise=noise)(visible)


def _impute_job(args) -> np.ndarray:
    image, visible, noise, seed = args
    return impute(image, visible, noise=noise, seed=seed)


def fill_many(image_uint8: np.ndarray, segments: np.ndarray, masks, kind: str, seed: int = 0, noise: float = NOISE,
              executor=None) -> list[np.ndarray]:
    """The image under every visible mask of ``masks``, as :func:`filler` makes them one by one.

    Imputation solves a linear system per mask (a fraction of a second at 250 px), one core
    each: given an ``executor`` (:func:`processes`), the solves run in its processes, the
    noise field drawn again there from the same ``seed``, so the images are the same.
    """
    if executor is None or check_kind(kind) not in MASK_DEPENDENT:
        make = filler(image_uint8, segments, kind, seed=seed, noise=noise)
        return [make(m) for m in masks]
    return [f.result() for f in submit_imputations(image_uint8, masks, seed, noise, executor)]


def submit_imputations(image_uint8: np.ndarray, masks, seed: int, noise: float, executor) -> list:
    """One future per visible mask of ``masks``: its :func:`impute` of the image, solved in ``executor``.

    Submitting the next image's masks before collecting this one's keeps the processes busy
    while the caller predicts (:func:`cytokit.xai.srg.removal_curves`).
    """
    image = check_uint8(image_uint8)
    return [executor.submit(_impute_job, (image, np.asarray(m, bool), noise, seed)) for m in masks]


def processes(workers: int | None = None):
    """A process pool for :func:`fill_many` (``workers`` processes, default every core), started by a fork server:
    forking a process that runs TensorFlow can hang. Use it as a context manager."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(int(workers or os.cpu_count() or 1), mp_context=multiprocessing.get_context("forkserver"))
