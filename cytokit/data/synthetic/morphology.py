"""One synthetic cell per class, drawn from that class's real morphology.

Colour is a Beer-Lambert mix of three stains shared by every class (chromatin purple,
basophilic blue, eosin pink), recoloured per class by the fitted settings (:mod:`.fitted`); the
neutrophil series PMO -> MYB -> MMZ -> NGB -> NGS is one continuous maturation
parameter per image, so neighbouring stages overlap as in real data.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from cytokit.data.synthetic import draw as D
from cytokit.data.synthetic.fitted import ClassSettings
from cytokit.data.taxonomy import NEUTROPHIL_SERIES

_R_MAX = 106.0  # largest cell radius, px at 250


#: Optical density (R, G, B) of unit concentration of the three stains shared by all
#: classes: CHROM the azure-eosinate violet of chromatin, BASO the blue of basophilic
#: cytoplasm, EOSIN the pink-orange of eosinophilic material (roughly fitted by eye to
#: the real sample). Concentration maps are planar, shape (3, H, W), in this order.
STAINS = np.array([[0.90, 1.30, 0.30], [0.72, 0.52, 0.10], [0.08, 0.60, 0.48]], np.float32)


@dataclass
class Cell:
    conc: np.ndarray  # (3, H, W) stain concentrations inside the cell
    alpha: np.ndarray  # (H, W) opacity: how much of what lies beneath it hides
    cell: np.ndarray
    nucleus: np.ndarray


class Ctx:
    """Per-image drawing context: the random stream, image shape and pixel scale."""

    def __init__(self, rng: np.random.Generator, size: int, difficulty: float, cal: ClassSettings | None = None):
        self.rng, self.shape, self.k, self.d = rng, (size, size), size / 250.0, float(difficulty)
        self.cal = cal  # the fitted settings of the class being drawn (None: the recipe as it is)

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


def vec(chrom=0.0, baso=0.0, eosin=0.0) -> np.ndarray:
    """A stain mixture, shaped (3, 1, 1) to scale an (H, W) map into planar form."""
    return np.array([chrom, baso, eosin], np.float32).reshape(3, 1, 1)


def _assemble(ctx: Ctx, cell, nuc, chrom, cyto, extra=None, texture=0.25) -> Cell:
    """Stack cytoplasm, nucleus and overlays into one cell with soft edges.

    `chrom` is the chromatin concentration (scalar or map) of the nucleus, `cyto` a
    stain mixture or (3, H, W) map for the cytoplasm, `extra` a (3, H, W) overlay
    (granules, rods) clipped to the cell. The class's fitted settings (``ctx.cal``) set
    the contrast of chromatin and cytoplasm and recolour nucleus and cytoplasm.
    """
    cal = ctx.cal
    if cal is not None:
        chrom = _contrast(chrom, nuc, cal.chromatin_contrast)
        texture *= cal.cytoplasm_contrast
        extra = None if extra is None else extra * np.float32(cal.cytoplasm_contrast)
    cell = cell | nuc
    a_cell, a_nuc = D.soft(cell, ctx.px(0.9)), D.soft(nuc, ctx.px(0.7))
    tex = 1.0 + texture * D.noise(ctx.rng, ctx.shape, ctx.px(9))
    conc = cyto * (a_cell * (1 - a_nuc) * tex)
    if extra is not None:
        conc += extra * a_cell
    nuc_c = a_nuc * chrom
    nuc_mix = np.array([1.0, 0.06, 0.0], np.float32)
    if cal is not None:
        conc = _mix(cal.cytoplasm, conc)
        nuc_mix = cal.nucleus @ nuc_mix
    for i in range(3):
        conc[i] += nuc_c * nuc_mix[i]
    return Cell(conc, a_cell, cell, nuc & cell)


def _contrast(chrom, nuc, k: float):
    """Chromatin's texture scaled by k around its mean over the nucleus (a scalar stays as it is)."""
    if np.ndim(chrom) < 2 or k == 1.0 or not nuc.any():
        return chrom
    m = np.float32(chrom[nuc].mean())
    return np.maximum(m + np.float32(k) * (chrom - m), 0).astype(np.float32)


def _mix(m: np.ndarray, conc: np.ndarray) -> np.ndarray:
    """Planar concentrations (3, H, W) mixed by the (3, 3) matrix m: out[i] = sum_j m[i, j] conc[j]."""
    out = np.empty_like(conc)
    for i in range(3):
        out[i] = conc[0] * m[i, 0]
        out[i] += conc[1] * m[i, 1]
        out[i] += conc[2] * m[i, 2]
    return out


def _chromatin(ctx: Ctx, density, grain, amp, clump=0.0) -> np.ndarray:
    """Chromatin concentration: fine (small grain, low amp) to coarse clumped texture."""
    n = D.noise(ctx.rng, ctx.shape, ctx.px(grain)) + 0.5 * D.noise(ctx.rng, ctx.shape, ctx.px(grain * 0.5))
    if clump:  # push the texture towards two levels: dark clumps, paler gaps
        n = (1 - clump) * n + clump * np.clip(2.0 * n, -1.3, 1.3)
    return np.float32(density) * np.clip(1.0 + amp * n, 0.25, 2.5)


def _nucleoli(ctx: Ctx, nuc, n, r) -> np.ndarray:
    """Soft map (0..1) of `n` round nucleoli of radius ~`r` px inside the nucleus."""
    if n == 0:
        return np.zeros(ctx.shape, np.float32)
    inner = D.dist_inside(nuc) > r * 1.4
    out = np.zeros(ctx.shape, bool)
    for xy in D.sample_in(ctx.rng, inner, n):
        out |= D.disc(ctx.shape, xy, r * ctx.u(0.75, 1.25))
    return D.soft(out, r * 0.35)


def _granules(ctx: Ctx, region, spacing, sigma, color, amp=(0.6, 1.0), weight=None) -> np.ndarray:
    """(3, H, W) overlay of granules, about one per `spacing`^2 px of `region`."""
    n = int(ctx.rng.poisson(cv2.countNonZero(region.view(np.uint8)) / max(ctx.px(spacing) ** 2, 1e-6)))
    xy = D.sample_in(ctx.rng, region, n)
    if weight is not None and len(xy):  # clustered: keep points where the weight field is high
        w = weight[xy[:, 1].astype(int), xy[:, 0].astype(int)]
        xy = xy[ctx.rng.uniform(0, 1, len(xy)) < w]
    amps = ctx.rng.uniform(amp[0], amp[1], len(xy)).astype(np.float32)
    return color * D.dots(ctx.shape, xy, max(ctx.px(sigma), 0.5), amps)


def _hof(ctx: Ctx, cell_c, nuc, R, strength) -> np.ndarray:
    """Pale perinuclear zone (Golgi hof) on the nucleus side facing the cell centre."""
    mom = cv2.moments(nuc.view(np.uint8), binaryImage=True)
    nc = np.array([mom["m10"], mom["m01"]]) / mom["m00"] if mom["m00"] else np.asarray(cell_c, float)
    v = np.asarray(cell_c, float) - nc
    v = v / np.linalg.norm(v) if np.linalg.norm(v) > 1 else unit(ctx.u(0, 2 * np.pi))
    rn = np.sqrt(mom["m00"] / np.pi)
    zone = D.disc(ctx.shape, nc + v * rn * ctx.u(0.85, 1.1), R * ctx.u(0.2, 0.3))
    return np.float32(strength) * D.soft(zone & ~nuc, R * 0.07)


def unit(a):
    return np.array([np.cos(a), np.sin(a)])


def _body(ctx: Ctx, c, R, aspect=(1.0, 1.12), wobble=0.08):
    """The cell's outline: a smooth irregular ellipse."""
    return D.blob(ctx.shape, ctx.rng, c, R, ctx.u(*aspect), ctx.u(0, np.pi), wobble)


def _offset(ctx: Ctx, c, dist):
    return np.asarray(c, float) + unit(ctx.u(0, 2 * np.pi)) * dist


# ----------------------------------------------------------------------------------
# Nuclear shapes
# ----------------------------------------------------------------------------------


def _centreline(ctx: Ctx, center, length, bend, wiggle=0.0, s_shape=False):
    """Points along a smooth curve of given length and total turning angle, centred."""
    n = max(12, int(length / max(ctx.px(2.0), 1.0)))
    s = np.linspace(0.0, 1.0, n)
    base = np.sin(2 * np.pi * (s - 0.5)) * 0.5 if s_shape else (s - 0.5)
    walk = cv2.GaussianBlur(ctx.rng.normal(0, 1, (n, 1)), (0, 0), n / 8).ravel() * np.sqrt(n / 8)
    heading = ctx.u(0, 2 * np.pi) + bend * base + wiggle * walk
    pts = np.cumsum(np.stack([np.cos(heading), np.sin(heading)], 1) * (length / (n - 1)), axis=0)
    return pts - pts.mean(0) + np.asarray(center, float), s


def _lobed_radii(ctx: Ctx, s, length, r, pinch, lobes):
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


def _round_nucleus(ctx: Ctx, center, r, aspect=(1.0, 1.15), wobble=0.04):
    return D.blob(ctx.shape, ctx.rng, center, r, ctx.u(*aspect), ctx.u(0, np.pi), wobble)


#: Knots of the neutrophil maturation parameter m: PMO=0, MYB=1, MMZ=2, NGB=3, NGS=4.
_M = np.arange(5.0)
_NEU = {
    "R": [94, 86, 78, 71, 68],  # cell radius, px at 250
    "r": [0.56, 0.5, 0.41, 0.3, 0.32],  # nuclear tube radius / R
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


def _neu(name: str, m: float, ctx: Ctx, jitter: float = 0.06) -> float:
    """A neutrophil-series feature at maturation m, with its own small noise."""
    v = float(np.interp(m, _M, _NEU[name]))
    return v * float(np.exp(ctx.rng.normal(0, jitter)))


def _maturation(ctx: Ctx, stage: int) -> float:
    """Per-image maturation: class centre plus noise wide enough to overlap neighbours."""
    sd = 0.1 + 0.3 * ctx.d
    return float(np.clip(stage + ctx.rng.normal(0, sd), -0.45, 4.45))


def _neutrophil_nucleus(ctx: Ctx, center, R, m, cell_c=None, lobe_p=(0.2, 0.4, 0.3, 0.1)):
    """Round -> bean -> band -> segmented nucleus as one continuous function of m.

    With `cell_c`, a centreline that would leave the cell (radius R around cell_c) is
    squeezed towards it: long lobe chains fold up inside the cell as real ones do.
    """
    pinch = min(_neu("pinch", m, ctx, 0.1) ** 1.5 / 0.92**0.5, 0.95)  # bands stay bands longer
    lobes = int(ctx.rng.choice([2, 3, 4, 5], p=lobe_p)) if pinch > 0.05 else 1
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
# Class recipes: each draws one cell centred at c and returns a Cell
# ----------------------------------------------------------------------------------


def _neutrophil(ctx: Ctx, c, m: float) -> Cell:
    """PMO..NGS: size, nucleus shape, granules and cytoplasm all interpolate along m."""
    R = ctx.px(min(_neu("R", m, ctx, 0.07) * float(np.exp(ctx.rng.normal(0, 0.02 + 0.05 * ctx.d))), _R_MAX))
    cell = _body(ctx, c, R)
    nuc = _neutrophil_nucleus(ctx, _offset(ctx, c, R * _neu("ecc", m, ctx, 0.3)), R, m, c)
    chrom = _chromatin(ctx, _neu("dens", m, ctx), grain=ctx.u(4, 7), amp=0.28, clump=_neu("clump", m, ctx))
    over = cell | nuc if m < 1.3 else cell & ~nuc  # early granules lie over the nucleus too
    gcol = vec(_neu("g_chrom", m, ctx, 0.15), 0.0, _neu("g_eosin", m, ctx, 0.15))
    gran = _granules(ctx, over, _neu("g_space", m, ctx, 0.1), _neu("g_sigma", m, ctx, 0.1), gcol)
    cyto = vec(0.12, _neu("c_baso", m, ctx, 0.2), _neu("c_eosin", m, ctx, 0.2))
    if m < 1.6:
        hof = _hof(ctx, c, nuc, R, _neu("hof", m, ctx, 0.2))
        gran *= 1 - 0.85 * hof
        cyto = cyto * (1 - 0.6 * hof)
    return _assemble(ctx, cell, nuc, chrom, cyto, gran)


def _stage(stage: int):
    return lambda ctx, c: _neutrophil(ctx, c, _maturation(ctx, stage))


def _blast_like(ctx: Ctx, c, radius, shift, size, wobble, nucleoli, nucleolus_px):
    """Body, round nucleus with fine chromatin and nucleoli: the core of BLA and FGC."""
    R = ctx.radius(*radius)
    cell = _body(ctx, c, R)
    nuc = _round_nucleus(ctx, _offset(ctx, c, R * ctx.u(*shift)), R * ctx.u(*size), wobble=wobble)
    chrom = _chromatin(ctx, ctx.u(0.75, 0.95), grain=3.0, amp=0.14)
    nl = _nucleoli(ctx, nuc, int(ctx.rng.integers(*nucleoli)), ctx.px(ctx.u(*nucleolus_px)))
    return R, cell, nuc, chrom, nl


def _bla(ctx: Ctx, c) -> Cell:
    """Blast: large, high N:C, fine chromatin, 1-3 nucleoli, thin blue rim."""
    R, cell, nuc, chrom, nl = _blast_like(ctx, c, (62, 86), (0, 0.08), (0.76, 0.88), 0.06, (1, 4), (5, 8))
    extra = vec(0, 0.1) * nl  # nucleoli: paler, bluish spots in fine chromatin, faint at low resolution
    return _assemble(ctx, cell, nuc, chrom * (1 - 0.35 * nl), vec(0.1, ctx.u(0.65, 1.0), 0.03), extra)


def _lyt(ctx: Ctx, c) -> Cell:
    """Lymphocyte: small, dense round clumped nucleus, scant sky-blue rim."""
    R = ctx.radius(38, 52)
    cell = _body(ctx, c, R, wobble=0.04)
    nuc = _round_nucleus(ctx, _offset(ctx, c, R * ctx.u(0.03, 0.15)), R * ctx.u(0.8, 0.92))
    chrom = _chromatin(ctx, ctx.u(1.45, 1.85), grain=ctx.u(6, 9), amp=0.3, clump=0.6)
    return _assemble(ctx, cell, nuc, chrom, vec(0.05, ctx.u(0.55, 0.9), 0.02))


def _lyi(ctx: Ctx, c) -> Cell:
    """Immature lymphocyte: larger than LYT, finer less dense chromatin, maybe a nucleolus."""
    R = ctx.radius(52, 68)
    cell = _body(ctx, c, R, wobble=0.04)
    nuc = _round_nucleus(ctx, _offset(ctx, c, R * ctx.u(0.03, 0.12)), R * ctx.u(0.8, 0.9), wobble=0.07)
    chrom = _chromatin(ctx, ctx.u(1.0, 1.3), grain=ctx.u(4, 5.5), amp=0.2, clump=0.2)
    nl = _nucleoli(ctx, nuc, int(ctx.rng.integers(0, 2)), ctx.px(ctx.u(4, 6)))
    return _assemble(ctx, cell, nuc, chrom * (1 - 0.4 * nl), vec(0.06, ctx.u(0.6, 0.95), 0.02))


def _peb(ctx: Ctx, c) -> Cell:
    """Proerythroblast: large, round nucleus with nucleoli, deep blue cytoplasm, pale halo."""
    R = ctx.radius(80, 105)
    cell = _body(ctx, c, R, wobble=0.04)
    nuc = _round_nucleus(ctx, _offset(ctx, c, R * ctx.u(0.0, 0.12)), R * ctx.u(0.62, 0.76))
    chrom = _chromatin(ctx, ctx.u(0.95, 1.2), grain=4.5, amp=0.22, clump=0.2)
    nl = _nucleoli(ctx, nuc, int(ctx.rng.integers(1, 3)), ctx.px(ctx.u(5, 8)))
    halo = np.exp(-cv2.distanceTransform((~nuc).view(np.uint8), cv2.DIST_L2, 3) / np.float32(ctx.px(7)))
    cyto = vec(0.16, ctx.u(1.15, 1.6), 0.05) * (1 - 0.45 * halo)
    return _assemble(ctx, cell, nuc, chrom * (1 - 0.45 * nl), cyto)


def _ebo(ctx: Ctx, c) -> Cell:
    """Erythroblast: small, very round dense nucleus, grey-pink cytoplasm."""
    R = ctx.radius(38, 55)
    cell = _body(ctx, c, R, aspect=(1.0, 1.06), wobble=0.02)
    nuc = _round_nucleus(
        ctx, _offset(ctx, c, R * ctx.u(0.0, 0.15)), R * ctx.u(0.52, 0.72), (1.0, 1.05), 0.015
    )
    chrom = _chromatin(ctx, ctx.u(1.9, 2.4), grain=5, amp=0.08)
    hb = ctx.u(0, 1)  # haemoglobinisation: bluer (polychromatic) to pinker (orthochromatic)
    return _assemble(ctx, cell, nuc, chrom, vec(0.08, 0.5 - 0.35 * hb, 0.2 + 0.35 * hb))


def _plm(ctx: Ctx, c) -> Cell:
    """Plasma cell: oval, eccentric clock-face nucleus, deep blue cytoplasm, pale hof."""
    R, angle, aspect = ctx.radius(56, 74), ctx.u(0, np.pi), ctx.u(1.2, 1.5)
    cell = D.blob(ctx.shape, ctx.rng, c, R, aspect, angle, 0.04)
    rn = R * ctx.u(0.5, 0.62)
    side = 1 if ctx.u(0, 1) < 0.5 else -1
    nc = np.asarray(c, float) + unit(angle) * (R * aspect - rn) * ctx.u(0.85, 1.05) * side
    nuc = _round_nucleus(ctx, nc, rn, (1.0, 1.1), 0.03)
    k, a0 = int(ctx.rng.integers(6, 10)), ctx.u(0, 1)
    ring = [nc + unit(a) * rn * 0.6 for a in np.linspace(0, 2 * np.pi, k, endpoint=False) + a0]
    clocks = np.clip(D.dots(ctx.shape, np.array(ring + [nc]), rn * 0.15, 1.0), 0, 1)
    chrom = _chromatin(ctx, ctx.u(0.8, 1.0), grain=5, amp=0.12) * (1 + 1.3 * clocks)
    cyto = vec(0.12, ctx.u(1.1, 1.5), 0.06) * (1 - 0.6 * _hof(ctx, c, nuc, R, 1.0))
    return _assemble(ctx, cell, nuc, chrom, cyto)


def _hac(ctx: Ctx, c) -> Cell:
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
    cyto = vec(0.1, ctx.u(0.3, 0.45), 0.06)
    return _assemble(ctx, body | (hairs > 0.35), nuc, chrom, cyto, cyto * (0.3 * hairs))


def _fgc(ctx: Ctx, c) -> Cell:
    """Faggot cell: blast with bundles of pink-purple Auer rods in the cytoplasm."""
    R, cell, nuc, chrom, nl = _blast_like(ctx, c, (68, 90), (0.1, 0.25), (0.58, 0.7), 0.07, (1, 3), (4, 7))
    rods = np.zeros(ctx.shape, np.float32)
    space = cell & ~nuc & (D.dist_inside(cell) > ctx.px(10))
    for centre in D.sample_in(ctx.rng, space, int(ctx.rng.integers(1, 4))):
        rods = _auer_bundle(ctx, centre, rods)
    extra = vec(0.25, 0.0, 0.8) * np.minimum(rods, 1.0)
    return _assemble(ctx, cell, nuc, chrom * (1 - 0.5 * nl), vec(0.1, ctx.u(0.6, 0.9), 0.04), extra)


def _auer_bundle(ctx: Ctx, centre, out):
    """4-10 near-parallel needles crossing one point: the 'bundle of sticks'."""
    n, a0 = int(ctx.rng.integers(4, 11)), ctx.u(0, np.pi)
    ang = a0 + ctx.rng.normal(0, 0.12, n) + (ctx.rng.uniform(0, 1, n) < 0.3) * ctx.u(0.6, 1.4)
    half = ctx.px(ctx.rng.uniform(9, 18, n))
    mid = centre + ctx.px(ctx.rng.normal(0, 3.5, (n, 2)))
    d = np.stack([np.cos(ang), np.sin(ang)], 1) * half[:, None]
    return D.lines(ctx.shape, np.hstack([mid - d, mid + d]), ctx.px(1.8), 1.0, out)


def _eos_like(ctx: Ctx, c, m, dark_share) -> Cell:
    """Eosinophil body: packed large granules, orange-red or (ABE) partly purple-black."""
    R = ctx.radius(66, 84)
    cell = _body(ctx, c, R)
    nuc = _neutrophil_nucleus(ctx, _offset(ctx, c, R * ctx.u(0.0, 0.12)), R * 1.05, m, c, (0.8, 0.15, 0.05, 0.0))
    chrom = _chromatin(ctx, ctx.u(1.15, 1.4), grain=5, amp=0.25, clump=0.5)
    sig = ctx.u(1.6, 2.1)
    gran = _granules(ctx, cell & ~nuc, 4.4, sig, vec(0.2, 0.05, 0.8), (0.6, 1.0))  # orange-pink, packed
    if dark_share:
        gran = gran * (1 - dark_share) + _granules(ctx, cell, 6.5, sig, vec(1.2, 0.15, 0.2), (0.6, 1.1))
    return _assemble(ctx, cell, nuc, chrom, vec(0.05, 0.08, 0.3), gran)


def _eos(ctx: Ctx, c) -> Cell:
    """Eosinophil: bilobed (spectacle) nucleus, big orange-red granules."""
    return _eos_like(ctx, c, ctx.u(3.6, 4.0), 0.0)


def _abe(ctx: Ctx, c) -> Cell:
    """Abnormal eosinophil: less segmented nucleus, eosinophil granules mixed with dark ones."""
    return _eos_like(ctx, c, ctx.u(1.2, 3.2), ctx.u(0.3, 0.6))


def _bas(ctx: Ctx, c) -> Cell:
    """Basophil: coarse purple-black granules scattered over a pale lobed nucleus."""
    R = ctx.radius(54, 70)
    cell = _body(ctx, c, R)
    nuc = _neutrophil_nucleus(ctx, _offset(ctx, c, R * 0.05), R * 1.1, ctx.u(2.5, 3.8), c)
    chrom = _chromatin(ctx, ctx.u(0.55, 0.75), grain=5, amp=0.2)
    clusters = np.clip(0.55 + 0.6 * D.noise(ctx.rng, ctx.shape, ctx.px(18)), 0.1, 1)
    gran = _granules(ctx, cell, 4.2, ctx.u(1.8, 2.5), vec(1.35, 0.25, 0.1), (0.7, 1.3), clusters)
    return _assemble(ctx, cell, nuc, chrom, vec(0.12, 0.1, 0.14), gran)


def _mon(ctx: Ctx, c) -> Cell:
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
    cyto = vec(0.16, ctx.u(0.3, 0.45), 0.1) * (1 - 0.4 * vac)
    dust = _granules(ctx, cell & ~nuc, 9, 0.8, vec(0.3, 0, 0.3), (0.3, 0.6))
    return _assemble(ctx, cell, nuc, chrom, cyto, dust)


def _fold_lines(ctx: Ctx, pts, R):
    """Two or three short creases across the nucleus (the 'brain-like' folds)."""
    k = int(ctx.rng.integers(2, 4))
    mids = pts[ctx.rng.integers(0, len(pts), k)]
    a = ctx.rng.uniform(0, np.pi, k)
    d = np.stack([np.cos(a), np.sin(a)], 1) * R * 0.22
    return np.hstack([mids - d, mids + d])


def _vacuoles(ctx: Ctx, region, n, r_range) -> np.ndarray:
    """Soft map of round clear vacuoles (unstained holes) in the cytoplasm."""
    out = np.zeros(ctx.shape, bool)
    for xy in D.sample_in(ctx.rng, region, n):
        out |= D.disc(ctx.shape, xy, ctx.px(ctx.u(*r_range)))
    return D.soft(out, ctx.px(0.8))


def _ksc(ctx: Ctx, c) -> Cell:
    """Smudge cell: a pale smeared streaky chromatin patch with fuzzy edges, no cytoplasm."""
    R, ang = ctx.radius(50, 85), ctx.u(0, np.pi)
    smudge = D.blob(ctx.shape, ctx.rng, c, R, ctx.u(1.0, 1.5), ang, ctx.u(0.3, 0.5))
    threads = _threads(ctx, c, R, smudge)
    shape = smudge | (threads > 0.3)
    blotch = 1 + 0.35 * D.noise(ctx.rng, ctx.shape, ctx.px(14))
    chrom = ctx.u(0.45, 0.8) * np.clip(1 + 0.25 * _streaks(ctx, ang), 0.2, 2) * blotch
    chrom = np.where(smudge, chrom, 0.5 * threads).astype(np.float32)
    return _defocus(_assemble(ctx, shape, shape, chrom, vec()), ctx.px(ctx.u(1.0, 2.0)))


def _defocus(cell: Cell, sigma: float) -> Cell:
    """Blur one object (not the whole field): smeared edges, out-of-focus debris."""
    cell.conc = np.stack([cv2.GaussianBlur(p, (0, 0), sigma) for p in cell.conc])
    cell.alpha = cv2.GaussianBlur(cell.alpha, (0, 0), sigma)
    return cell


def _streaks(ctx: Ctx, angle) -> np.ndarray:
    """Anisotropic noise: fibres of smeared material along direction `angle`."""
    h, w = ctx.shape
    small = ctx.rng.standard_normal((max(2, h // 2), 24)).astype(np.float32)
    field = cv2.resize(small, (2 * w, 2 * h), interpolation=cv2.INTER_LINEAR)
    M = cv2.getRotationMatrix2D((w, h), float(np.degrees(angle)), 1.0)
    return cv2.warpAffine(field, M, (2 * w, 2 * h))[h // 2 : h // 2 + h, w // 2 : w // 2 + w]


def _threads(ctx: Ctx, c, R, region):
    """Thin chromatin threads trailing out of a smudge (the 'basket' of smudge cells)."""
    roots = D.sample_in(ctx.rng, region, int(ctx.rng.integers(4, 14)))
    out = roots - np.asarray(c)
    out /= np.linalg.norm(out, axis=1, keepdims=True) + 1e-6
    tips = roots + out * R * ctx.rng.uniform(0.2, 0.7, (len(roots), 1))
    return D.lines(ctx.shape, np.hstack([roots, tips]), ctx.px(1.8))


def _art(ctx: Ctx, c) -> Cell:
    """Artefact: mostly a cell torn and smeared by the spreading, else stain precipitate, smeared
    amorphous material or a crushed fragment."""
    kind = ctx.rng.choice(4, p=[0.6, 0.1, 0.15, 0.15])
    return (_damaged, _precipitate, _sheet, _fragment)[int(kind)](ctx, c)


def _damaged(ctx: Ctx, c) -> Cell:
    """An ordinary cell broken by the smear: dragged and torn (ragged edge, strands) and mottled."""
    cell = RECIPES[str(ctx.rng.choice(["BLA", "MON", "PMO", "MYB", "NGS", "LYT", "EBO"]))](ctx, c)
    h, w = ctx.shape
    ang, pull = ctx.u(0, 2 * np.pi), ctx.px(ctx.u(15, 45))
    drag = np.maximum(D.noise(ctx.rng, ctx.shape, ctx.px(40)), 0) * pull  # some parts dragged further
    tear = ctx.px(ctx.u(5, 12))
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx = (gx - float(np.cos(ang)) * drag + D.noise(ctx.rng, ctx.shape, ctx.px(7)) * tear).astype(np.float32)
    my = (gy - float(np.sin(ang)) * drag + D.noise(ctx.rng, ctx.shape, ctx.px(7)) * tear).astype(np.float32)
    mottle = np.clip(1 + 0.35 * D.noise(ctx.rng, ctx.shape, ctx.px(6)), 0.3, 1.8).astype(np.float32)
    conc = np.stack([D.remap(p, mx, my) for p in cell.conc]) * mottle
    mask = D.remap(cell.cell, mx, my)
    return Cell(conc, D.remap(cell.alpha, mx, my), mask, D.remap(cell.nucleus, mx, my) & mask)


def _precipitate(ctx: Ctx, c) -> Cell:
    """A cloud of dark stain grains and a few blotches; no cell."""
    R = ctx.radius(45, 90)
    area = D.blob(ctx.shape, ctx.rng, c, R, ctx.u(1, 1.6), ctx.u(0, np.pi), 0.4)
    g = _granules(ctx, area, ctx.u(4, 7), ctx.u(0.8, 1.6), vec(1.4, 0.2, 0.2), (0.5, 1.4))
    blotch = D.blob(ctx.shape, ctx.rng, _offset(ctx, c, R * 0.3), R * ctx.u(0.15, 0.3), 1.3, ctx.u(0, 3), 0.5)
    cell = _assemble(ctx, (g[0] > 0.35) | blotch, blotch, ctx.u(1.2, 1.8), vec(0.1, 0, 0.1), g)
    cell.alpha *= np.float32(0.9)
    return cell


def _sheet(ctx: Ctx, c) -> Cell:
    """Smeared purple material with a fibrous texture (broken cytoplasm, smear artefact)."""
    R = ctx.radius(80, 130)
    obj = D.blob(ctx.shape, ctx.rng, c, R, ctx.u(1.0, 1.7), ctx.u(0, np.pi), ctx.u(0.3, 0.6))
    fib = _streaks(ctx, ctx.u(0, np.pi)) * (0.6 + 0.4 * D.noise(ctx.rng, ctx.shape, ctx.px(30)))
    tex = np.clip(1 + 0.5 * fib, 0.2, 2.2)
    g = _granules(ctx, obj, 8, 1.0, vec(0.6, 0, 0.2), (0.3, 0.8))
    return _assemble(ctx, obj, obj & (fib > 0.8), ctx.u(1, 1.4), vec(ctx.u(0.4, 0.7), 0.15, 0.12) * tex, g)


def _fragment(ctx: Ctx, c) -> Cell:
    """A crushed dark nuclear fragment dragged into a streaky smear tail."""
    R, ang = ctx.radius(24, 44), ctx.u(0, 2 * np.pi)
    core = D.blob(ctx.shape, ctx.rng, c, R, ctx.u(1.2, 2.0), ang, 0.35)
    tail_c = np.asarray(c, float) + unit(ang) * R * ctx.u(1.0, 1.8)
    tail = D.blob(ctx.shape, ctx.rng, tail_c, R * ctx.u(1.2, 1.8), ctx.u(1.8, 2.6), ang, 0.3)
    fib = np.clip(1 + 0.5 * _streaks(ctx, ang), 0.2, 2)
    chrom = _chromatin(ctx, ctx.u(1.6, 2.2), grain=4, amp=0.15)
    cell = _assemble(ctx, core | tail, core, chrom, vec(ctx.u(0.3, 0.6), 0.15, 0.15) * fib)
    return _defocus(cell, ctx.px(ctx.u(0.5, 2.5)))


#: What an unidentifiable cell was: often a dense dying (pyknotic) one, else any common cell.
_NIF_BASES = {"PYK": 0.35, "LYT": 0.15, "NGS": 0.1, "EBO": 0.1, "BLA": 0.1, "MON": 0.1, "PMO": 0.05, "MYB": 0.05}


def _nif(ctx: Ctx, c) -> Cell:
    """Not identifiable: a degenerate (pyknotic or ordinary) cell, out of focus, often off the centre."""
    base = str(ctx.rng.choice(list(_NIF_BASES), p=list(_NIF_BASES.values())))
    if ctx.rng.uniform() < 0.3:  # framed badly: the cell lies towards the edge
        c = _offset(ctx, c, ctx.px(ctx.u(25, 60)))
    cell = _pyknotic(ctx, c) if base == "PYK" else RECIPES[base](ctx, c)
    return _defocus(cell, ctx.px(ctx.u(2.5, 6.0)) * (ctx.cal.defocus if ctx.cal is not None else 1.0))


def _pyknotic(ctx: Ctx, c) -> Cell:
    """Dying cell: shrunken, very dark nucleus and fragments in ragged cytoplasm."""
    R = ctx.radius(40, 68)
    cell = _body(ctx, c, R, wobble=0.2)
    nuc = _round_nucleus(ctx, _offset(ctx, c, R * 0.2), R * ctx.u(0.35, 0.55), wobble=0.15)
    for xy in D.sample_in(ctx.rng, cell, int(ctx.rng.integers(0, 4))):
        nuc |= D.disc(ctx.shape, xy, R * ctx.u(0.08, 0.18))
    return _assemble(ctx, cell, nuc, ctx.u(2.0, 2.6), vec(0.15, 0.3, 0.2))


def _oth(ctx: Ctx, c) -> Cell:
    """Other: a macrophage with inclusions or a mast cell crowded with dark granules."""
    return _macrophage(ctx, c) if ctx.rng.uniform() < 0.5 else _mast(ctx, c)


def _macrophage(ctx: Ctx, c) -> Cell:
    R = ctx.radius(92, 112)
    cell = _body(ctx, c, R, aspect=(1.0, 1.25), wobble=0.15)
    nuc = _round_nucleus(ctx, _offset(ctx, c, R * ctx.u(0.3, 0.5)), R * ctx.u(0.22, 0.32), (1.1, 1.5), 0.08)
    chrom = _chromatin(ctx, ctx.u(0.9, 1.2), grain=4, amp=0.25)
    region = cell & ~nuc
    vac = _vacuoles(ctx, region, int(ctx.rng.integers(10, 30)), (3, 8))
    inc = ctx.zeros()
    for xy in D.sample_in(ctx.rng, region, int(ctx.rng.integers(3, 9))):
        blob = D.soft(D.disc(ctx.shape, xy, ctx.px(ctx.u(3, 9))), ctx.px(1))
        inc += vec(ctx.u(0.3, 1.6), ctx.u(0, 0.4), ctx.u(0.2, 1.0)) * blob
    cyto = vec(0.12, ctx.u(0.18, 0.3), 0.12) * (1 - 0.8 * vac)
    return _assemble(ctx, cell, nuc, chrom, cyto, inc)


def _mast(ctx: Ctx, c) -> Cell:
    R = ctx.radius(60, 80)
    cell = _body(ctx, c, R, aspect=(1.0, 1.25), wobble=0.07)
    nuc = _round_nucleus(ctx, _offset(ctx, c, R * 0.1), R * ctx.u(0.35, 0.45))
    chrom = _chromatin(ctx, ctx.u(0.7, 0.9), grain=4, amp=0.2)
    gran = _granules(ctx, cell, 2.8, ctx.u(1.1, 1.5), vec(1.1, 0.3, 0.15), (0.7, 1.0))
    return _assemble(ctx, cell, nuc, chrom, vec(0.35, 0.2, 0.1), gran * (1 - 0.4 * D.soft(nuc, 2)))


RECIPES = {
    "ABE": _abe, "ART": _art, "BAS": _bas, "BLA": _bla, "EBO": _ebo, "EOS": _eos,
    "FGC": _fgc, "HAC": _hac, "KSC": _ksc, "LYI": _lyi, "LYT": _lyt, "MON": _mon,
    "NIF": _nif, "OTH": _oth, "PEB": _peb, "PLM": _plm,
    **{code: _stage(i) for i, code in enumerate(NEUTROPHIL_SERIES)},
}  # fmt: skip

#: Neighbour cells at the frame edge, drawn from common classes whatever the label.
NEIGHBOURS = {
    "NGS": 0.25,
    "LYT": 0.2,
    "EBO": 0.2,
    "MYB": 0.1,
    "NGB": 0.1,
    "PMO": 0.05,
    "BLA": 0.05,
    "EOS": 0.05,
}
