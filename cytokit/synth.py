"""Synthetic bone-marrow cells in the real dataset's on-disk layout (chapter 01, "Data").

The real dataset (Matek et al., TCIA, ~171k images) cannot be downloaded on the
project's machines, so the book runs by default on images drawn here: one
May-Grünwald-Giemsa-looking 250x250 field per image with the labelled cell near the
centre, red cells and cut-off neighbours around it, written as
``CLASS/0001-1000/CLASS_00001.jpg`` exactly like the real tree.

How the drawing stays honest to the task:

* colour is a Beer-Lambert mix of three stains shared by every class (chromatin
  purple, basophilic blue, eosin pink) with strong per-image stain, focus,
  illumination and noise jitter, so colour alone does not tell classes apart;
* the neutrophil series PMO -> MYB -> MMZ -> NGB -> NGS is one continuous
  maturation parameter per image, so neighbouring stages overlap as in real data;
* ``difficulty`` in [0, 1] scales that overlap and all nuisance jitter.

Every image is a pure function of ``(code, index, seed, size, difficulty)``, so
:func:`masks` can regenerate the labelled cell's masks from ``SYNTH.json`` alone.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from cytokit import _draw as D
from cytokit.classes import CLASSES, CODES, NEUTROPHIL_SERIES, get

GENERATOR = "cytokit.synth"
VERSION = 1
META_FILE = "SYNTH.json"
_CHUNK = 48
_R_MAX = 106.0  # largest cell radius, px at 250

# ----------------------------------------------------------------------------------
# Class counts and layout
# ----------------------------------------------------------------------------------


def class_counts(n_images: int, floor: int = 3) -> dict[str, int]:
    """Real class distribution scaled to `n_images`, every class at least `floor`.

    Classes whose scaled share falls below `floor` get exactly `floor` (rare classes stay
    rare); the rest share the remainder in proportion to their real counts, rounded by
    largest remainder so the counts sum to `n_images` and keep the real ordering.
    """
    n_images, floor = int(n_images), int(floor)
    if floor < 0:
        raise ValueError(f"floor must be >= 0, got {floor}")
    if n_images < len(CODES) * floor:
        raise ValueError(
            f"n_images={n_images} is too small: {len(CODES)} classes x floor {floor} "
            f"needs at least {len(CODES) * floor} images"
        )
    real = {c.code: c.study_images for c in CLASSES}
    floored: set[str] = set()
    while True:  # floor classes until the proportional share of the rest is >= floor
        free = n_images - floor * len(floored)
        rest = {c: v for c, v in real.items() if c not in floored}
        total = sum(rest.values())
        quota = {c: free * v / total for c, v in rest.items()}
        low = {c for c, q in quota.items() if q < floor}
        if not low:
            break
        floored |= low
    counts = {c: int(q) for c, q in quota.items()}
    order = sorted(quota, key=lambda c: (-(quota[c] - counts[c]), -real[c], c))
    for c in order[: free - sum(counts.values())]:
        counts[c] += 1
    counts.update({c: floor for c in floored})
    return {c: counts[c] for c in CODES}


def relpath(code: str, index: int) -> str:
    """Path of image `index` (1-based) of class `code`, as in the real dataset.

    Classes with more than 1000 real images keep them in range folders of 1000
    (``BLA/0001-1000/BLA_00001.jpg``); smaller classes have no range folder.
    """
    cls = get(code)
    if int(index) < 1:
        raise ValueError(f"image index is 1-based, got {index}")
    name = f"{code}_{int(index):05d}.jpg"
    if cls.study_images <= 1000:
        return f"{code}/{name}"
    lo = (int(index) - 1) // 1000 * 1000 + 1
    return f"{code}/{lo:04d}-{lo + 999}/{name}"


_NAME = re.compile(r"^([A-Z]{3})_(\d+)\.jpg$")


def _parse(rel: str | os.PathLike) -> tuple[str, int]:
    """(code, index) from a relative image path; the inverse of :func:`relpath`."""
    m = _NAME.match(Path(rel).name)
    if not m or m.group(1) not in CODES:
        raise ValueError(f"{str(rel)!r} is not a dataset image path like 'BLA/0001-1000/BLA_00001.jpg'")
    return m.group(1), int(m.group(2))


# ----------------------------------------------------------------------------------
# Rendering: stains, scene context, cell assembly
# ----------------------------------------------------------------------------------

#: Optical density (R, G, B) of unit concentration of the three stains shared by all
#: classes: CHROM the azure-eosinate violet of chromatin, BASO the blue of basophilic
#: cytoplasm, EOSIN the pink-orange of eosinophilic material (roughly fitted by eye to
#: the real sample). Concentration maps are planar, shape (3, H, W), in this order.
STAINS = np.array([[0.90, 1.30, 0.30], [0.72, 0.52, 0.10], [0.08, 0.60, 0.48]], np.float32)


@dataclass(frozen=True)
class SynthCell:
    """One rendered image and the masks of its labelled (central) cell."""

    image: np.ndarray  # HxWx3 uint8 RGB
    cell_mask: np.ndarray  # HxW bool: cytoplasm + nucleus of the labelled cell
    nucleus_mask: np.ndarray  # HxW bool: its nucleus (smudge for KSC, main object for ART/NIF)


@dataclass
class _Cell:
    conc: np.ndarray  # (3, H, W) stain concentrations inside the cell
    alpha: np.ndarray  # (H, W) opacity: how much of what lies beneath it hides
    cell: np.ndarray
    nucleus: np.ndarray


class _Ctx:
    """Per-image drawing context: the random stream, image shape and pixel scale."""

    def __init__(self, rng: np.random.Generator, size: int, difficulty: float):
        self.rng, self.shape, self.k, self.d = rng, (size, size), size / 250.0, float(difficulty)

    def px(self, v):
        """Lengths are specified for 250 px images; scale them to this size."""
        return v * self.k

    def u(self, a, b):
        return float(self.rng.uniform(a, b))

    def radius(self, lo, hi):
        """Cell radius in px: class range times a difficulty-scaled size jitter, capped
        so that the labelled cell never fills the whole frame."""
        r = self.u(lo, hi) * float(np.exp(self.rng.normal(0, 0.03 + 0.07 * self.d)))
        return self.px(min(r, _R_MAX))

    def zeros(self):
        return np.zeros((3,) + self.shape, np.float32)


def _vec(chrom=0.0, baso=0.0, eosin=0.0) -> np.ndarray:
    """A stain mixture, shaped (3, 1, 1) to scale an (H, W) map into planar form."""
    return np.array([chrom, baso, eosin], np.float32).reshape(3, 1, 1)


def _assemble(ctx: _Ctx, cell, nuc, chrom, cyto, extra=None, texture=0.15) -> _Cell:
    """Stack cytoplasm, nucleus and overlays into one cell with soft edges.

    `chrom` is the chromatin concentration (scalar or map) of the nucleus, `cyto` a
    stain mixture or (3, H, W) map for the cytoplasm, `extra` a (3, H, W) overlay
    (granules, rods) clipped to the cell.
    """
    cell = cell | nuc
    a_cell, a_nuc = D.soft(cell, ctx.px(0.9)), D.soft(nuc, ctx.px(0.7))
    tex = 1.0 + texture * D.noise(ctx.rng, ctx.shape, ctx.px(9))
    conc = cyto * (a_cell * (1 - a_nuc) * tex)
    nuc_c = a_nuc * chrom
    conc[0] += nuc_c
    conc[1] += nuc_c * np.float32(0.06)
    if extra is not None:
        conc += extra * a_cell
    return _Cell(conc, a_cell, cell, nuc & cell)


def _chromatin(ctx: _Ctx, density, grain, amp, clump=0.0) -> np.ndarray:
    """Chromatin concentration: fine (small grain, low amp) to coarse clumped texture."""
    n = D.noise(ctx.rng, ctx.shape, ctx.px(grain)) + 0.5 * D.noise(ctx.rng, ctx.shape, ctx.px(grain * 0.5))
    if clump:  # push the texture towards two levels: dark clumps, paler gaps
        n = (1 - clump) * n + clump * np.clip(2.0 * n, -1.3, 1.3)
    return np.float32(density) * np.clip(1.0 + amp * n, 0.25, 2.5)


def _nucleoli(ctx: _Ctx, nuc, n, r) -> np.ndarray:
    """Soft map (0..1) of `n` round nucleoli of radius ~`r` px inside the nucleus."""
    if n == 0:
        return np.zeros(ctx.shape, np.float32)
    inner = D.dist_inside(nuc) > r * 1.4
    out = np.zeros(ctx.shape, bool)
    for xy in D.sample_in(ctx.rng, inner, n):
        out |= D.disc(ctx.shape, xy, r * ctx.u(0.75, 1.25))
    return D.soft(out, r * 0.35)


def _granules(ctx: _Ctx, region, spacing, sigma, color, amp=(0.6, 1.0), weight=None) -> np.ndarray:
    """(3, H, W) overlay of granules, about one per `spacing`^2 px of `region`."""
    n = int(ctx.rng.poisson(cv2.countNonZero(region.view(np.uint8)) / max(ctx.px(spacing) ** 2, 1e-6)))
    xy = D.sample_in(ctx.rng, region, n)
    if weight is not None and len(xy):  # clustered: keep points where the weight field is high
        w = weight[xy[:, 1].astype(int), xy[:, 0].astype(int)]
        xy = xy[ctx.rng.uniform(0, 1, len(xy)) < w]
    amps = ctx.rng.uniform(amp[0], amp[1], len(xy)).astype(np.float32)
    return color * D.dots(ctx.shape, xy, max(ctx.px(sigma), 0.5), amps)


def _hof(ctx: _Ctx, cell_c, nuc, R, strength) -> np.ndarray:
    """Pale perinuclear zone (Golgi hof) on the nucleus side facing the cell centre."""
    mom = cv2.moments(nuc.view(np.uint8), binaryImage=True)
    nc = np.array([mom["m10"], mom["m01"]]) / mom["m00"] if mom["m00"] else np.asarray(cell_c, float)
    v = np.asarray(cell_c, float) - nc
    v = v / np.linalg.norm(v) if np.linalg.norm(v) > 1 else _unit(ctx.u(0, 2 * np.pi))
    rn = np.sqrt(mom["m00"] / np.pi)
    zone = D.disc(ctx.shape, nc + v * rn * ctx.u(0.85, 1.1), R * ctx.u(0.2, 0.3))
    return np.float32(strength) * D.soft(zone & ~nuc, R * 0.07)


def _unit(a):
    return np.array([np.cos(a), np.sin(a)])


def _body(ctx: _Ctx, c, R, aspect=(1.0, 1.12), wobble=0.05):
    """The cell's outline: a smooth irregular ellipse."""
    return D.blob(ctx.shape, ctx.rng, c, R, ctx.u(*aspect), ctx.u(0, np.pi), wobble)


def _offset(ctx: _Ctx, c, dist):
    return np.asarray(c, float) + _unit(ctx.u(0, 2 * np.pi)) * dist


# ----------------------------------------------------------------------------------
# Nuclear shapes
# ----------------------------------------------------------------------------------


def _centreline(ctx: _Ctx, center, length, bend, wiggle=0.0, s_shape=False):
    """Points along a smooth curve of given length and total turning angle, centred."""
    n = max(12, int(length / max(ctx.px(2.0), 1.0)))
    s = np.linspace(0.0, 1.0, n)
    base = np.sin(2 * np.pi * (s - 0.5)) * 0.5 if s_shape else (s - 0.5)
    walk = cv2.GaussianBlur(ctx.rng.normal(0, 1, (n, 1)), (0, 0), n / 8).ravel() * np.sqrt(n / 8)
    heading = ctx.u(0, 2 * np.pi) + bend * base + wiggle * walk
    pts = np.cumsum(np.stack([np.cos(heading), np.sin(heading)], 1) * (length / (n - 1)), axis=0)
    return pts - pts.mean(0) + np.asarray(center, float), s


def _lobed_radii(ctx: _Ctx, s, length, r, pinch, lobes):
    """Tube radius along the centreline: lobes joined by waists that deepen into filaments.

    Between lobes the radius drops to r * (1 - pinch) over an arc of length `gap`; the
    round caps of the lobes eat r of it from each side, so only a deep pinch (gap > 2r)
    leaves a visible thin filament: band -> segmented is continuous in `pinch`.
    """
    a, gap = s * length, _gap(r, pinch)
    core = max(length - (lobes - 1) * gap, 0.0) / lobes
    ramp = max(0.3 * r, 1.0)
    prof = np.zeros_like(s)
    for j in range(1, lobes):
        start = j * core + (j - 1) * gap + ctx.rng.normal(0, 0.05 * core + 1e-6)
        inside = np.minimum(a - start, start + gap - a) / ramp + 0.5
        prof = np.maximum(prof, np.clip(inside, 0.0, 1.0))
    size = np.ones_like(s)
    for j in range(lobes):  # lobes differ a little in size
        size[a >= j * (core + gap)] = 1 + ctx.rng.normal(0, 0.08)
    taper = 0.85 + 0.15 * np.sqrt(np.sin(np.pi * s))
    return np.maximum(r * size * taper * (1 - pinch * prof), ctx.px(1.0))


def _gap(r, pinch):
    """Arc length of a waist between lobes: ~2.2 r at full pinch, just past touching caps."""
    return 2.6 * r * pinch**2


def _round_nucleus(ctx: _Ctx, center, r, aspect=(1.0, 1.15), wobble=0.04):
    return D.blob(ctx.shape, ctx.rng, center, r, ctx.u(*aspect), ctx.u(0, np.pi), wobble)


#: Knots of the neutrophil maturation parameter m: PMO=0, MYB=1, MMZ=2, NGB=3, NGS=4.
_M = np.arange(5.0)
_NEU = {
    "R": [94, 86, 78, 71, 68],  # cell radius, px at 250
    "r": [0.56, 0.5, 0.41, 0.25, 0.26],  # nuclear tube radius / R
    "L": [0.12, 0.34, 0.95, 2.05, 0.75],  # centreline length / R (lobe cores only at m=4)
    "bend": [0.0, 0.4, 2.3, 3.2, 4.2],  # total turning (rad): bean at 2, C/U at 3
    "pinch": [0.0, 0.0, 0.0, 0.15, 0.92],  # lobe constriction depth
    "ecc": [0.22, 0.2, 0.12, 0.05, 0.04],  # nucleus offset / R
    "dens": [0.8, 0.95, 1.1, 1.25, 1.35],  # chromatin density
    "clump": [0.0, 0.2, 0.4, 0.6, 0.7],
    "g_space": [5.5, 5.5, 6.0, 6.5, 6.5],  # granule spacing (px)
    "g_sigma": [1.6, 1.2, 1.0, 0.95, 0.95],
    "g_chrom": [0.6, 0.35, 0.18, 0.15, 0.15],
    "g_eosin": [0.45, 0.5, 0.4, 0.38, 0.38],
    "c_baso": [0.45, 0.26, 0.15, 0.12, 0.12],
    "c_eosin": [0.1, 0.2, 0.26, 0.28, 0.28],
    "hof": [0.75, 0.3, 0.0, 0.0, 0.0],
}


def _neu(name: str, m: float, ctx: _Ctx, jitter: float = 0.06) -> float:
    """A neutrophil-series feature at maturation m, with its own small noise."""
    v = float(np.interp(m, _M, _NEU[name]))
    return v * float(np.exp(ctx.rng.normal(0, jitter)))


def _maturation(ctx: _Ctx, stage: int) -> float:
    """Per-image maturation: class centre plus noise wide enough to overlap neighbours."""
    sd = 0.1 + 0.3 * ctx.d
    return float(np.clip(stage + ctx.rng.normal(0, sd), -0.45, 4.45))


def _neutrophil_nucleus(ctx: _Ctx, center, R, m, cell_c=None):
    """Round -> bean -> band -> segmented nucleus as one continuous function of m.

    With `cell_c`, a centreline that would leave the cell (radius R around cell_c) is
    squeezed towards it: long lobe chains fold up inside the cell as real ones do.
    """
    pinch = min(_neu("pinch", m, ctx, 0.1) ** 1.5 / 0.92**0.5, 0.95)  # bands stay bands longer
    lobes = int(ctx.rng.choice([2, 3, 4, 5], p=[0.2, 0.4, 0.3, 0.1])) if pinch > 0.05 else 1
    seg = float(np.clip(m - 3, 0, 1))  # lobe cores shorten as the waists become filaments
    r = R * _neu("r", m, ctx) * (3 / lobes) ** (0.3 * seg)
    core = R * _neu("L", m, ctx, 0.12) * (1 + (lobes / 3 - 1) * seg)
    length = max(core + (lobes - 1) * _gap(r, pinch), ctx.px(1.0))
    bend = _neu("bend", m, ctx, 0.15) * (1 if ctx.rng.uniform() < 0.5 else -1)
    s_shape = 2.6 < m < 3.6 and ctx.rng.uniform() < 0.3
    pts, s = _centreline(ctx, center, length, bend, wiggle=max(0.0, m - 2.8) * 1.2, s_shape=s_shape)
    radii = _lobed_radii(ctx, s, length, r, pinch, lobes)
    if cell_c is not None:
        pts = _squeeze(pts, radii, np.asarray(cell_c, float), 0.95 * R)
    return D.tube(ctx.shape, pts, radii)


def _squeeze(pts, radii, c, limit):
    """Scale a centreline towards c until the tube it carries fits within `limit` of c."""
    reach = np.max(np.linalg.norm(pts - c, axis=1) + radii)
    if reach <= limit:
        return pts
    inner = np.linalg.norm(pts - c, axis=1).max()
    scale = max(limit - (reach - inner), 0.3 * inner) / max(inner, 1e-6)
    return c + (pts - c) * min(scale, 1.0)


# ----------------------------------------------------------------------------------
# Class recipes: each draws one cell centred at c and returns a _Cell
# ----------------------------------------------------------------------------------


def _neutrophil(ctx: _Ctx, c, m: float) -> _Cell:
    """PMO..NGS: size, nucleus shape, granules and cytoplasm all interpolate along m."""
    R = ctx.px(min(_neu("R", m, ctx, 0.07) * float(np.exp(ctx.rng.normal(0, 0.02 + 0.05 * ctx.d))), _R_MAX))
    cell = _body(ctx, c, R)
    nuc = _neutrophil_nucleus(ctx, _offset(ctx, c, R * _neu("ecc", m, ctx, 0.3)), R, m, c)
    chrom = _chromatin(ctx, _neu("dens", m, ctx), grain=ctx.u(4, 7), amp=0.28, clump=_neu("clump", m, ctx))
    over = cell | nuc if m < 1.3 else cell & ~nuc  # early granules lie over the nucleus too
    gcol = _vec(_neu("g_chrom", m, ctx, 0.15), 0.0, _neu("g_eosin", m, ctx, 0.15))
    gran = _granules(ctx, over, _neu("g_space", m, ctx, 0.1), _neu("g_sigma", m, ctx, 0.1), gcol)
    cyto = _vec(0.12, _neu("c_baso", m, ctx, 0.2), _neu("c_eosin", m, ctx, 0.2))
    if m < 1.6:
        hof = _hof(ctx, c, nuc, R, _neu("hof", m, ctx, 0.2))
        gran *= 1 - 0.85 * hof
        cyto = cyto * (1 - 0.6 * hof)
    return _assemble(ctx, cell, nuc, chrom, cyto, gran)


def _stage(stage: int):
    return lambda ctx, c: _neutrophil(ctx, c, _maturation(ctx, stage))


def _blast_like(ctx: _Ctx, c, radius, shift, size, wobble, nucleoli, nucleolus_px):
    """Body, round nucleus with fine chromatin and nucleoli: the core of BLA and FGC."""
    R = ctx.radius(*radius)
    cell = _body(ctx, c, R)
    nuc = _round_nucleus(ctx, _offset(ctx, c, R * ctx.u(*shift)), R * ctx.u(*size), wobble=wobble)
    chrom = _chromatin(ctx, ctx.u(0.75, 0.95), grain=3.0, amp=0.14)
    nl = _nucleoli(ctx, nuc, int(ctx.rng.integers(*nucleoli)), ctx.px(ctx.u(*nucleolus_px)))
    return R, cell, nuc, chrom, nl


def _bla(ctx: _Ctx, c) -> _Cell:
    """Blast: large, high N:C, fine chromatin, 1-3 nucleoli, thin blue rim."""
    R, cell, nuc, chrom, nl = _blast_like(ctx, c, (62, 86), (0, 0.08), (0.76, 0.88), 0.06, (1, 4), (5, 8))
    extra = _vec(0, 0.25) * nl
    return _assemble(ctx, cell, nuc, chrom * (1 - 0.65 * nl), _vec(0.1, ctx.u(0.65, 1.0), 0.03), extra)


def _lyt(ctx: _Ctx, c) -> _Cell:
    """Lymphocyte: small, dense round clumped nucleus, scant sky-blue rim."""
    R = ctx.radius(38, 52)
    cell = _body(ctx, c, R, wobble=0.04)
    nuc = _round_nucleus(ctx, _offset(ctx, c, R * ctx.u(0.03, 0.15)), R * ctx.u(0.8, 0.92))
    chrom = _chromatin(ctx, ctx.u(1.45, 1.85), grain=ctx.u(6, 9), amp=0.3, clump=0.6)
    return _assemble(ctx, cell, nuc, chrom, _vec(0.05, ctx.u(0.55, 0.9), 0.02))


def _lyi(ctx: _Ctx, c) -> _Cell:
    """Immature lymphocyte: larger than LYT, finer less dense chromatin, maybe a nucleolus."""
    R = ctx.radius(52, 68)
    cell = _body(ctx, c, R, wobble=0.04)
    nuc = _round_nucleus(ctx, _offset(ctx, c, R * ctx.u(0.03, 0.12)), R * ctx.u(0.8, 0.9), wobble=0.07)
    chrom = _chromatin(ctx, ctx.u(1.0, 1.3), grain=ctx.u(4, 5.5), amp=0.2, clump=0.2)
    nl = _nucleoli(ctx, nuc, int(ctx.rng.integers(0, 2)), ctx.px(ctx.u(4, 6)))
    return _assemble(ctx, cell, nuc, chrom * (1 - 0.4 * nl), _vec(0.06, ctx.u(0.6, 0.95), 0.02))


def _peb(ctx: _Ctx, c) -> _Cell:
    """Proerythroblast: large, round nucleus with nucleoli, deep blue cytoplasm, pale halo."""
    R = ctx.radius(80, 105)
    cell = _body(ctx, c, R, wobble=0.04)
    nuc = _round_nucleus(ctx, _offset(ctx, c, R * ctx.u(0.0, 0.12)), R * ctx.u(0.62, 0.76))
    chrom = _chromatin(ctx, ctx.u(0.95, 1.2), grain=4.5, amp=0.22, clump=0.2)
    nl = _nucleoli(ctx, nuc, int(ctx.rng.integers(1, 3)), ctx.px(ctx.u(5, 8)))
    halo = np.exp(-cv2.distanceTransform((~nuc).view(np.uint8), cv2.DIST_L2, 3) / np.float32(ctx.px(7)))
    cyto = _vec(0.16, ctx.u(1.15, 1.6), 0.05) * (1 - 0.45 * halo)
    return _assemble(ctx, cell, nuc, chrom * (1 - 0.45 * nl), cyto)


def _ebo(ctx: _Ctx, c) -> _Cell:
    """Erythroblast: small, very round dense nucleus, grey-pink cytoplasm."""
    R = ctx.radius(38, 55)
    cell = _body(ctx, c, R, aspect=(1.0, 1.06), wobble=0.02)
    nuc = _round_nucleus(
        ctx, _offset(ctx, c, R * ctx.u(0.0, 0.15)), R * ctx.u(0.52, 0.72), (1.0, 1.05), 0.015
    )
    chrom = _chromatin(ctx, ctx.u(1.9, 2.4), grain=5, amp=0.08)
    hb = ctx.u(0, 1)  # haemoglobinisation: bluer (polychromatic) to pinker (orthochromatic)
    return _assemble(ctx, cell, nuc, chrom, _vec(0.08, 0.5 - 0.35 * hb, 0.2 + 0.35 * hb))


def _plm(ctx: _Ctx, c) -> _Cell:
    """Plasma cell: oval, eccentric clock-face nucleus, deep blue cytoplasm, pale hof."""
    R, angle, aspect = ctx.radius(56, 74), ctx.u(0, np.pi), ctx.u(1.2, 1.5)
    cell = D.blob(ctx.shape, ctx.rng, c, R, aspect, angle, 0.04)
    rn = R * ctx.u(0.5, 0.62)
    side = 1 if ctx.u(0, 1) < 0.5 else -1
    nc = np.asarray(c, float) + _unit(angle) * (R * aspect - rn) * ctx.u(0.85, 1.05) * side
    nuc = _round_nucleus(ctx, nc, rn, (1.0, 1.1), 0.03)
    k, a0 = int(ctx.rng.integers(6, 10)), ctx.u(0, 1)
    ring = [nc + _unit(a) * rn * 0.6 for a in np.linspace(0, 2 * np.pi, k, endpoint=False) + a0]
    clocks = np.clip(D.dots(ctx.shape, np.array(ring + [nc]), rn * 0.15, 1.0), 0, 1)
    chrom = _chromatin(ctx, ctx.u(0.8, 1.0), grain=5, amp=0.12) * (1 + 1.3 * clocks)
    cyto = _vec(0.12, ctx.u(1.1, 1.5), 0.06) * (1 - 0.6 * _hof(ctx, c, nuc, R, 1.0))
    return _assemble(ctx, cell, nuc, chrom, cyto)


def _hac(ctx: _Ctx, c) -> _Cell:
    """Hairy cell: oval/bean nucleus, pale grey-blue cytoplasm with hair-like projections."""
    R = ctx.radius(55, 72)
    body = _body(ctx, c, R, wobble=0.06)
    nuc = _neutrophil_nucleus(ctx, _offset(ctx, c, R * 0.08), R * 1.15, ctx.u(0.8, 2.0), c)
    edge = body & (D.dist_inside(body) < ctx.px(2))
    roots = D.sample_in(ctx.rng, edge, int(ctx.rng.integers(28, 60)))
    out = roots - np.asarray(c)
    out /= np.linalg.norm(out, axis=1, keepdims=True) + 1e-6
    tang = np.stack([-out[:, 1], out[:, 0]], 1) * ctx.rng.normal(0, 0.45, (len(roots), 1))
    tips = roots + (out + tang) * ctx.px(ctx.rng.uniform(7, 22, (len(roots), 1)))
    hairs = D.lines(ctx.shape, np.hstack([roots, tips]), ctx.px(2.2))
    chrom = _chromatin(ctx, ctx.u(0.8, 1.0), grain=4, amp=0.16)
    cyto = _vec(0.1, ctx.u(0.3, 0.45), 0.06)
    return _assemble(ctx, body | (hairs > 0.35), nuc, chrom, cyto, cyto * (0.3 * hairs))


def _fgc(ctx: _Ctx, c) -> _Cell:
    """Faggot cell: blast with bundles of pink-purple Auer rods in the cytoplasm."""
    R, cell, nuc, chrom, nl = _blast_like(ctx, c, (68, 90), (0.1, 0.25), (0.58, 0.7), 0.07, (1, 3), (4, 7))
    rods = np.zeros(ctx.shape, np.float32)
    space = cell & ~nuc & (D.dist_inside(cell) > ctx.px(10))
    for centre in D.sample_in(ctx.rng, space, int(ctx.rng.integers(1, 4))):
        rods = _auer_bundle(ctx, centre, rods)
    extra = _vec(0.25, 0.0, 0.8) * np.minimum(rods, 1.0)
    return _assemble(ctx, cell, nuc, chrom * (1 - 0.5 * nl), _vec(0.1, ctx.u(0.6, 0.9), 0.04), extra)


def _auer_bundle(ctx: _Ctx, centre, out):
    """4-10 near-parallel needles crossing one point: the 'bundle of sticks'."""
    n, a0 = int(ctx.rng.integers(4, 11)), ctx.u(0, np.pi)
    ang = a0 + ctx.rng.normal(0, 0.12, n) + (ctx.rng.uniform(0, 1, n) < 0.3) * ctx.u(0.6, 1.4)
    half = ctx.px(ctx.rng.uniform(9, 18, n))
    mid = centre + ctx.px(ctx.rng.normal(0, 3.5, (n, 2)))
    d = np.stack([np.cos(ang), np.sin(ang)], 1) * half[:, None]
    return D.lines(ctx.shape, np.hstack([mid - d, mid + d]), ctx.px(1.8), 1.0, out)


def _eos_like(ctx: _Ctx, c, m, dark_share) -> _Cell:
    """Eosinophil body: packed large granules, orange-red or (ABE) partly purple-black."""
    R = ctx.radius(66, 84)
    cell = _body(ctx, c, R)
    nuc = _neutrophil_nucleus(ctx, _offset(ctx, c, R * ctx.u(0.0, 0.12)), R * 1.05, m, c)
    chrom = _chromatin(ctx, ctx.u(1.15, 1.4), grain=5, amp=0.25, clump=0.5)
    sig = ctx.u(1.6, 2.1)
    gran = _granules(ctx, cell & ~nuc, 4.4, sig, _vec(0.1, 0.0, 0.95), (0.7, 1.1))
    if dark_share:
        gran = gran * (1 - dark_share) + _granules(ctx, cell, 6.5, sig, _vec(1.2, 0.15, 0.2), (0.6, 1.1))
    return _assemble(ctx, cell, nuc, chrom, _vec(0.05, 0.08, 0.3), gran)


def _eos(ctx: _Ctx, c) -> _Cell:
    """Eosinophil: bilobed (spectacle) nucleus, big orange-red granules."""
    return _eos_like(ctx, c, ctx.u(3.6, 4.0), 0.0)


def _abe(ctx: _Ctx, c) -> _Cell:
    """Abnormal eosinophil: less segmented nucleus, eosinophil granules mixed with dark ones."""
    return _eos_like(ctx, c, ctx.u(1.2, 3.2), ctx.u(0.3, 0.6))


def _bas(ctx: _Ctx, c) -> _Cell:
    """Basophil: coarse purple-black granules scattered over a pale lobed nucleus."""
    R = ctx.radius(54, 70)
    cell = _body(ctx, c, R)
    nuc = _neutrophil_nucleus(ctx, _offset(ctx, c, R * 0.05), R * 1.1, ctx.u(2.5, 3.8), c)
    chrom = _chromatin(ctx, ctx.u(0.55, 0.75), grain=5, amp=0.2)
    clusters = np.clip(0.55 + 0.6 * D.noise(ctx.rng, ctx.shape, ctx.px(18)), 0.1, 1)
    gran = _granules(ctx, cell, 4.2, ctx.u(1.8, 2.5), _vec(1.35, 0.25, 0.1), (0.7, 1.3), clusters)
    return _assemble(ctx, cell, nuc, chrom, _vec(0.12, 0.1, 0.14), gran)


def _mon(ctx: _Ctx, c) -> _Cell:
    """Monocyte: large, folded convoluted nucleus, grey-blue vacuolated cytoplasm."""
    R = ctx.radius(84, 110)
    cell = _body(ctx, c, R, aspect=(1.0, 1.2), wobble=0.09)
    centre = _offset(ctx, c, R * ctx.u(0.05, 0.2))
    pts, s = _centreline(ctx, centre, R * ctx.u(0.9, 1.4), ctx.u(2.5, 4.0), wiggle=1.5)
    radii = R * ctx.u(0.3, 0.37) * (1 + 0.25 * np.sin(2 * np.pi * (ctx.u(1.5, 3.5) * s + ctx.u(0, 1))))
    nuc = D.tube(ctx.shape, pts, radii)
    folds = D.lines(ctx.shape, _fold_lines(ctx, pts, R), ctx.px(2.5)) * nuc
    creases = cv2.GaussianBlur(folds, (0, 0), ctx.px(1.2))
    chrom = _chromatin(ctx, ctx.u(0.75, 0.95), grain=4, amp=0.25) + 0.45 * creases
    vac = _vacuoles(ctx, cell & ~nuc, int(ctx.rng.integers(3, 12)), (2.5, 6.5))
    cyto = _vec(0.16, ctx.u(0.3, 0.45), 0.1) * (1 - 0.85 * vac)
    dust = _granules(ctx, cell & ~nuc, 9, 0.8, _vec(0.3, 0, 0.3), (0.3, 0.6))
    return _assemble(ctx, cell, nuc, chrom, cyto, dust)


def _fold_lines(ctx: _Ctx, pts, R):
    """Two or three short creases across the nucleus (the 'brain-like' folds)."""
    k = int(ctx.rng.integers(2, 4))
    mids = pts[ctx.rng.integers(0, len(pts), k)]
    a = ctx.rng.uniform(0, np.pi, k)
    d = np.stack([np.cos(a), np.sin(a)], 1) * R * 0.22
    return np.hstack([mids - d, mids + d])


def _vacuoles(ctx: _Ctx, region, n, r_range) -> np.ndarray:
    """Soft map of round clear vacuoles (unstained holes) in the cytoplasm."""
    out = np.zeros(ctx.shape, bool)
    for xy in D.sample_in(ctx.rng, region, n):
        out |= D.disc(ctx.shape, xy, ctx.px(ctx.u(*r_range)))
    return D.soft(out, ctx.px(0.8))


def _ksc(ctx: _Ctx, c) -> _Cell:
    """Smudge cell: a pale smeared streaky chromatin patch with fuzzy edges, no cytoplasm."""
    R, ang = ctx.radius(50, 85), ctx.u(0, np.pi)
    smudge = D.blob(ctx.shape, ctx.rng, c, R, ctx.u(1.0, 1.5), ang, ctx.u(0.3, 0.5))
    threads = _threads(ctx, c, R, smudge)
    shape = smudge | (threads > 0.3)
    blotch = 1 + 0.35 * D.noise(ctx.rng, ctx.shape, ctx.px(14))
    chrom = ctx.u(0.45, 0.8) * np.clip(1 + 0.25 * _streaks(ctx, ang), 0.2, 2) * blotch
    chrom = np.where(smudge, chrom, 0.5 * threads).astype(np.float32)
    return _defocus(_assemble(ctx, shape, shape, chrom, _vec()), ctx.px(ctx.u(1.0, 2.0)))


def _defocus(cell: _Cell, sigma: float) -> _Cell:
    """Blur one object (not the whole field): smeared edges, out-of-focus debris."""
    cell.conc = np.stack([cv2.GaussianBlur(p, (0, 0), sigma) for p in cell.conc])
    cell.alpha = cv2.GaussianBlur(cell.alpha, (0, 0), sigma)
    return cell


def _streaks(ctx: _Ctx, angle) -> np.ndarray:
    """Anisotropic noise: fibres of smeared material along direction `angle`."""
    h, w = ctx.shape
    small = ctx.rng.standard_normal((max(2, h // 2), 24)).astype(np.float32)
    field = cv2.resize(small, (2 * w, 2 * h), interpolation=cv2.INTER_LINEAR)
    M = cv2.getRotationMatrix2D((w, h), float(np.degrees(angle)), 1.0)
    return cv2.warpAffine(field, M, (2 * w, 2 * h))[h // 2 : h // 2 + h, w // 2 : w // 2 + w]


def _threads(ctx: _Ctx, c, R, region):
    """Thin chromatin threads trailing out of a smudge (the 'basket' of smudge cells)."""
    roots = D.sample_in(ctx.rng, region, int(ctx.rng.integers(4, 14)))
    out = roots - np.asarray(c)
    out /= np.linalg.norm(out, axis=1, keepdims=True) + 1e-6
    tips = roots + out * R * ctx.rng.uniform(0.2, 0.7, (len(roots), 1))
    return D.lines(ctx.shape, np.hstack([roots, tips]), ctx.px(1.8))


def _art(ctx: _Ctx, c) -> _Cell:
    """Artefact: stain precipitate, smeared amorphous material or a crushed fragment."""
    return (_precipitate, _sheet, _fragment)[int(ctx.rng.integers(0, 3))](ctx, c)


def _precipitate(ctx: _Ctx, c) -> _Cell:
    """A cloud of dark stain grains and a few blotches; no cell."""
    R = ctx.radius(45, 90)
    area = D.blob(ctx.shape, ctx.rng, c, R, ctx.u(1, 1.6), ctx.u(0, np.pi), 0.4)
    g = _granules(ctx, area, ctx.u(4, 7), ctx.u(0.8, 1.6), _vec(1.4, 0.2, 0.2), (0.5, 1.4))
    blotch = D.blob(ctx.shape, ctx.rng, _offset(ctx, c, R * 0.3), R * ctx.u(0.15, 0.3), 1.3, ctx.u(0, 3), 0.5)
    cell = _assemble(ctx, (g[0] > 0.35) | blotch, blotch, ctx.u(1.2, 1.8), _vec(0.1, 0, 0.1), g)
    cell.alpha *= np.float32(0.9)
    return cell


def _sheet(ctx: _Ctx, c) -> _Cell:
    """Smeared purple material with a fibrous texture (broken cytoplasm, smear artefact)."""
    R = ctx.radius(80, 130)
    obj = D.blob(ctx.shape, ctx.rng, c, R, ctx.u(1.0, 1.7), ctx.u(0, np.pi), ctx.u(0.3, 0.6))
    fib = _streaks(ctx, ctx.u(0, np.pi)) * (0.6 + 0.4 * D.noise(ctx.rng, ctx.shape, ctx.px(30)))
    tex = np.clip(1 + 0.5 * fib, 0.2, 2.2)
    g = _granules(ctx, obj, 8, 1.0, _vec(0.6, 0, 0.2), (0.3, 0.8))
    return _assemble(ctx, obj, obj & (fib > 0.8), ctx.u(1, 1.4), _vec(ctx.u(0.4, 0.7), 0.15, 0.12) * tex, g)


def _fragment(ctx: _Ctx, c) -> _Cell:
    """A crushed dark nuclear fragment dragged into a streaky smear tail."""
    R, ang = ctx.radius(24, 44), ctx.u(0, 2 * np.pi)
    core = D.blob(ctx.shape, ctx.rng, c, R, ctx.u(1.2, 2.0), ang, 0.35)
    tail_c = np.asarray(c, float) + _unit(ang) * R * ctx.u(1.0, 1.8)
    tail = D.blob(ctx.shape, ctx.rng, tail_c, R * ctx.u(1.2, 1.8), ctx.u(1.8, 2.6), ang, 0.3)
    fib = np.clip(1 + 0.5 * _streaks(ctx, ang), 0.2, 2)
    chrom = _chromatin(ctx, ctx.u(1.6, 2.2), grain=4, amp=0.15)
    cell = _assemble(ctx, core | tail, core, chrom, _vec(ctx.u(0.3, 0.6), 0.15, 0.15) * fib)
    return _defocus(cell, ctx.px(ctx.u(0.5, 2.5)))


def _nif(ctx: _Ctx, c) -> _Cell:
    """Not identifiable: a degenerate (pyknotic or ordinary) cell, heavily out of focus."""
    base = str(ctx.rng.choice(["NGS", "LYT", "EBO", "BLA", "MON", "PMO", "MYB", "PYK"]))
    cell = _pyknotic(ctx, c) if base == "PYK" else _RECIPES[base](ctx, c)
    return _defocus(cell, ctx.px(ctx.u(2.5, 6.0)))


def _pyknotic(ctx: _Ctx, c) -> _Cell:
    """Dying cell: shrunken, very dark nucleus and fragments in ragged cytoplasm."""
    R = ctx.radius(40, 68)
    cell = _body(ctx, c, R, wobble=0.2)
    nuc = _round_nucleus(ctx, _offset(ctx, c, R * 0.2), R * ctx.u(0.35, 0.55), wobble=0.15)
    for xy in D.sample_in(ctx.rng, cell, int(ctx.rng.integers(0, 4))):
        nuc |= D.disc(ctx.shape, xy, R * ctx.u(0.08, 0.18))
    return _assemble(ctx, cell, nuc, ctx.u(2.0, 2.6), _vec(0.15, 0.3, 0.2))


def _oth(ctx: _Ctx, c) -> _Cell:
    """Other: a macrophage with inclusions or a mast cell crowded with dark granules."""
    return _macrophage(ctx, c) if ctx.rng.uniform() < 0.5 else _mast(ctx, c)


def _macrophage(ctx: _Ctx, c) -> _Cell:
    R = ctx.radius(92, 112)
    cell = _body(ctx, c, R, aspect=(1.0, 1.25), wobble=0.15)
    nuc = _round_nucleus(ctx, _offset(ctx, c, R * ctx.u(0.3, 0.5)), R * ctx.u(0.22, 0.32), (1.1, 1.5), 0.08)
    chrom = _chromatin(ctx, ctx.u(0.9, 1.2), grain=4, amp=0.25)
    region = cell & ~nuc
    vac = _vacuoles(ctx, region, int(ctx.rng.integers(10, 30)), (3, 8))
    inc = ctx.zeros()
    for xy in D.sample_in(ctx.rng, region, int(ctx.rng.integers(3, 9))):
        blob = D.soft(D.disc(ctx.shape, xy, ctx.px(ctx.u(3, 9))), ctx.px(1))
        inc += _vec(ctx.u(0.3, 1.6), ctx.u(0, 0.4), ctx.u(0.2, 1.0)) * blob
    cyto = _vec(0.12, ctx.u(0.18, 0.3), 0.12) * (1 - 0.8 * vac)
    return _assemble(ctx, cell, nuc, chrom, cyto, inc)


def _mast(ctx: _Ctx, c) -> _Cell:
    R = ctx.radius(60, 80)
    cell = _body(ctx, c, R, aspect=(1.0, 1.25), wobble=0.07)
    nuc = _round_nucleus(ctx, _offset(ctx, c, R * 0.1), R * ctx.u(0.35, 0.45))
    chrom = _chromatin(ctx, ctx.u(0.7, 0.9), grain=4, amp=0.2)
    gran = _granules(ctx, cell, 2.8, ctx.u(1.1, 1.5), _vec(1.1, 0.3, 0.15), (0.7, 1.0))
    return _assemble(ctx, cell, nuc, chrom, _vec(0.35, 0.2, 0.1), gran * (1 - 0.4 * D.soft(nuc, 2)))


_RECIPES = {
    "ABE": _abe, "ART": _art, "BAS": _bas, "BLA": _bla, "EBO": _ebo, "EOS": _eos,
    "FGC": _fgc, "HAC": _hac, "KSC": _ksc, "LYI": _lyi, "LYT": _lyt, "MON": _mon,
    "NIF": _nif, "OTH": _oth, "PEB": _peb, "PLM": _plm,
    **{code: _stage(i) for i, code in enumerate(NEUTROPHIL_SERIES)},
}  # fmt: skip

#: Neighbour cells at the frame edge, drawn from common classes whatever the label.
_NEIGHBOURS = {
    "NGS": 0.25,
    "LYT": 0.2,
    "EBO": 0.2,
    "MYB": 0.1,
    "NGB": 0.1,
    "PMO": 0.05,
    "BLA": 0.05,
    "EOS": 0.05,
}

# ----------------------------------------------------------------------------------
# Scene: background, red cells, neighbours, optics
# ----------------------------------------------------------------------------------


def _background(ctx: _Ctx) -> np.ndarray:
    """Plasma tint and a little dust (platelets, precipitate): the smear between cells."""
    tint = 1 + 0.5 * D.noise(ctx.rng, ctx.shape, ctx.px(60))
    conc = _vec(ctx.u(0.0, 0.03), ctx.u(0.0, 0.06), ctx.u(0.0, 0.06)) * tint
    n = int(ctx.rng.integers(0, 12))
    dust = ctx.rng.uniform(0, ctx.shape[0], (n, 2))
    specks = D.dots(ctx.shape, dust, ctx.px(ctx.u(0.8, 1.5)), ctx.rng.uniform(0.3, 0.9, n))
    conc += _vec(0.9, 0.1, 0.3) * specks
    return conc


def _red_cells(ctx: _Ctx, conc: np.ndarray) -> None:
    """Add pale grey-pink discs with central pallor (erythrocytes), overlapping freely."""
    discs, pallor = np.zeros(ctx.shape, np.float32), np.zeros(ctx.shape, np.float32)
    for _ in range(int(ctx.rng.integers(1, 7))):
        c = ctx.rng.uniform(-0.05, 1.05, 2) * ctx.shape[0]
        r = ctx.px(ctx.u(27, 40))
        discs += D.blob(ctx.shape, ctx.rng, c, r, ctx.u(1, 1.12), ctx.u(0, 3), 0.03)
        pallor += ctx.u(0.3, 0.6) * D.disc(ctx.shape, c + ctx.rng.normal(0, r * 0.08, 2), r * ctx.u(0.3, 0.5))
    layer = cv2.GaussianBlur(discs, (0, 0), ctx.px(1.2)) - D.blur_wide(pallor, ctx.px(6))
    conc += _vec(ctx.u(0.06, 0.1), ctx.u(0.04, 0.1), ctx.u(0.12, 0.24)) * np.maximum(layer, 0)


def _composite(conc: np.ndarray, cell: _Cell) -> np.ndarray:
    """Lay a cell over the scene: it hides what lies beneath in proportion to its alpha."""
    return conc * (1 - cell.alpha) + cell.conc


def _neighbours(ctx: _Ctx, conc: np.ndarray) -> np.ndarray:
    """0-3 cells centred around the frame edge so that the frame cuts them."""
    codes, p = list(_NEIGHBOURS), np.array(list(_NEIGHBOURS.values()))
    half = ctx.shape[0] / 2
    for _ in range(int(ctx.rng.integers(0, 2 + round(2 * ctx.d)))):
        code = str(ctx.rng.choice(codes, p=p / p.sum()))
        c = half + _unit(ctx.u(0, 2 * np.pi)) * half * ctx.u(1.1, 1.5)
        conc = _composite(conc, _RECIPES[code](ctx, c))
    return conc


@lru_cache(maxsize=4)
def _noise_bank(size: int) -> np.ndarray:
    """Fixed sensor-noise texture; images take random crops of it (fast, deterministic)."""
    return np.random.default_rng(2021).standard_normal((2 * size, 2 * size, 3), np.float32)


@lru_cache(maxsize=4)
def _grid(size: int):
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / np.float32(size) - np.float32(0.5)
    return x, y, x * x + y * y


def _illumination(ctx: _Ctx) -> np.ndarray:
    """Vignette plus a linear gradient across the field."""
    x, y, r2 = _grid(ctx.shape[0])
    a = ctx.u(0, 2 * np.pi)
    grad = np.float32(ctx.u(0, 0.04 + 0.1 * ctx.d))
    vig = np.float32(ctx.u(0, 0.1 + 0.2 * ctx.d))
    return 1 + grad * (np.float32(np.cos(a)) * x + np.float32(np.sin(a)) * y) - vig * r2


def _density(conc: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted sum of the three stain planes (plain loops beat tensordot here)."""
    out = conc[0] * np.float32(w[0])
    out += conc[1] * np.float32(w[1])
    out += conc[2] * np.float32(w[2])
    return out


def _optics(ctx: _Ctx, conc: np.ndarray) -> np.ndarray:
    """Stain, illumination, focus, colour balance and sensor noise -> uint8 RGB."""
    rng, d, h = ctx.rng, ctx.d, ctx.shape[0]
    od = STAINS * np.exp(rng.normal(0, 0.05 + 0.12 * d, (3, 3))).astype(np.float32)
    od[0] += rng.normal(0, 0.08 + 0.12 * d) * STAINS[1]  # chromatin stain bluer or redder
    od *= np.float32(np.exp(rng.normal(0, 0.06 + 0.12 * d)))  # overall staining intensity
    light = np.array([0.92, 0.91, 0.97]) * np.exp(rng.normal(0, 0.015 + 0.03 * d, 3))
    illum = _illumination(ctx)
    rgb = [cv2.exp(_density(conc, -od[:, i])) * (illum * np.float32(255 * light[i])) for i in range(3)]
    img = cv2.GaussianBlur(cv2.merge(rgb), (0, 0), ctx.px(ctx.u(0.3, 0.7 + 1.1 * d)))
    oy, ox = rng.integers(0, h, 2)
    img += _noise_bank(h)[oy : oy + h, ox : ox + h] * np.float32(ctx.u(0.8, 2.0 + 2.5 * d))
    img = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    return cv2.LUT(img, _colour_lut(ctx))


def _colour_lut(ctx: _Ctx) -> np.ndarray:
    """Per-channel gain and gamma (camera white balance and response) as a lookup table."""
    gamma = np.exp(ctx.rng.normal(0, 0.04 + 0.08 * ctx.d))
    gain = np.exp(ctx.rng.normal(0, 0.02 + 0.04 * ctx.d, 3))
    v = (np.arange(256) / 255.0)[:, None] ** gamma * gain * 255
    return np.clip(v + 0.5, 0, 255).astype(np.uint8).reshape(256, 1, 3)


def render(code: str, index: int, seed: int = 0, size: int = 250, difficulty: float = 0.5) -> SynthCell:
    """Draw image `index` of class `code`; a pure function of its arguments."""
    pos = CODES.index(get(code).code)
    _check(size, difficulty)
    ctx = _Ctx(np.random.default_rng([int(seed), pos, int(index)]), int(size), difficulty)
    conc = _background(ctx)
    _red_cells(ctx, conc)
    conc = _neighbours(ctx, conc)
    centre = ctx.shape[0] / 2 + ctx.rng.normal(0, ctx.px(3 + 7 * ctx.d), 2)
    cell = _RECIPES[code](ctx, centre)
    image = _optics(ctx, _composite(conc, cell))
    return SynthCell(image, cell.cell.copy(), cell.nucleus.copy())


def _check(size, difficulty):
    if int(size) < 32:
        raise ValueError(f"size must be >= 32 px, got {size}")
    if not 0.0 <= float(difficulty) <= 1.0:
        raise ValueError(f"difficulty must be in [0, 1], got {difficulty}")


# ----------------------------------------------------------------------------------
# Dataset on disk
# ----------------------------------------------------------------------------------


def _jpeg_quality(seed, pos, index) -> int:
    """Per-image JPEG quality (80-95) from its own stream, so render() is unaffected."""
    return int(np.random.default_rng([int(seed), pos, int(index), 1]).integers(80, 96))


def _encode(code, index, seed, size, difficulty) -> bytes:
    img = render(code, index, seed, size, difficulty).image
    q = _jpeg_quality(seed, CODES.index(code), index)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for {code} {index}")
    return buf.tobytes()


def _write_chunk(root: str, jobs, seed, size, difficulty) -> int:
    """Worker: render and write a list of (code, index) images; returns how many.

    OpenCV runs single-threaded meanwhile (the parallelism is over processes); the
    caller's setting is restored afterwards.
    """
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        for code, index in jobs:
            path = Path(root, relpath(code, index))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_encode(code, index, seed, size, difficulty))
    finally:
        cv2.setNumThreads(threads)
    return len(jobs)


def _meta(n_images, seed, size, difficulty) -> dict:
    return {
        "generator": GENERATOR,
        "version": VERSION,
        "seed": int(seed),
        "size": int(size),
        "difficulty": float(difficulty),
        "n_images": int(n_images),
        "counts": class_counts(n_images),
    }


def read_meta(data_dir) -> dict | None:
    """The dataset's SYNTH.json, or None for a real (non-synthetic) dataset."""
    path = Path(data_dir) / META_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _is_cached(out: Path, meta: dict) -> bool:
    """True if `out` already holds a complete dataset made with these settings."""
    old = read_meta(out)
    if old is None or {k: old.get(k) for k in meta} != meta:
        return False
    return sum(1 for _ in out.rglob("*.jpg")) == meta["n_images"]


def generate(
    out_dir,
    n_images: int,
    seed: int = 0,
    size: int = 250,
    difficulty: float = 0.5,
    progress: bool = True,
    workers: int | None = None,
) -> Path:
    """Write a synthetic dataset of `n_images` JPEGs in the real layout; return its folder.

    Refuses to touch a non-empty folder unless it already holds this exact dataset
    (then returns at once). Files are written to a hidden temporary sibling folder
    (``.NAME.partial-*``) renamed into place at the end, so an interrupted run never
    leaves a partial dataset at `out_dir` (a killed process may leave that sibling).
    The bytes do not depend on `workers` (default: all CPUs, over processes).
    """
    _check(size, difficulty)
    out = Path(out_dir).expanduser().absolute()
    meta = _meta(n_images, seed, size, difficulty)
    if _is_cached(out, meta):
        return out
    _refuse_nonempty(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the dataset should not be
    try:
        _render_all(tmp, meta, progress, workers)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        _move_into_place(tmp, out, meta)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _refuse_nonempty(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(
            f"{out} exists and is not an empty folder, nor a synthetic dataset with these "
            "settings; refusing to write into it. Choose a new folder or remove it yourself."
        )


def _move_into_place(tmp: Path, out: Path, meta: dict) -> None:
    """Atomic rename; a concurrent run that finished first with the same settings wins."""
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    try:
        os.rename(tmp, out)
    except OSError:
        if not _is_cached(out, meta):
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def _jobs(counts: dict) -> list[tuple[str, int]]:
    return [(code, i) for code in CODES for i in range(1, counts[code] + 1)]


def _render_all(root: Path, meta: dict, progress: bool, workers: int | None) -> None:
    """Render every image into `root`, in-process or over a pool of processes."""
    from cytokit.progress import bar as progress_bar

    jobs = _jobs(meta["counts"])
    chunks = [jobs[i : i + _CHUNK] for i in range(0, len(jobs), _CHUNK)]
    args = (str(root), meta["seed"], meta["size"], meta["difficulty"])
    workers = max(1, min(int(workers or os.cpu_count() or 1), len(chunks)))
    with progress_bar(total=len(jobs), desc="synth", unit="img", enabled=progress) as bar:
        if workers == 1:
            for ch in chunks:
                bar.update(_write_chunk(args[0], ch, *args[1:]))
            return
        import multiprocessing as mp

        # spawn, not fork: the parent may hold TensorFlow's threads (fork would be unsafe)
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_write_chunk, args[0], ch, *args[1:]) for ch in chunks]
            try:
                for f in as_completed(futures):
                    bar.update(f.result())
            except BaseException:
                for f in futures:
                    f.cancel()
                raise


def masks(data_dir, relpath: str) -> tuple[np.ndarray, np.ndarray]:
    """(cell_mask, nucleus_mask) of a synthetic image, regenerated from SYNTH.json."""
    meta = read_meta(data_dir)
    if meta is None or meta.get("generator") != GENERATOR:
        raise ValueError(
            f"{data_dir} is not a synthetic dataset (no {META_FILE}); masks exist only for synthetic data"
        )
    code, index = _parse(relpath)
    if not 1 <= index <= meta["counts"].get(code, 0):
        raise ValueError(f"{relpath!r}: {code} has {meta['counts'].get(code, 0)} images in {data_dir}")
    cell = render(code, index, meta["seed"], meta["size"], meta["difficulty"])
    return cell.cell_mask, cell.nucleus_mask


def main_synth(out_dir, n_images, seed, size, difficulty, progress=True) -> Path:
    """CLI entry: generate (or find cached) and print a one-line summary."""
    t0 = time.perf_counter()
    path = generate(out_dir, n_images, seed=seed, size=size, difficulty=difficulty, progress=progress)
    counts = read_meta(path)["counts"]
    n, k, secs = sum(counts.values()), sum(1 for v in counts.values() if v), time.perf_counter() - t0
    print(f"synthetic dataset: {n} images, {k} classes in {path} ({secs:.1f} s)")
    return path
