"""A whole field around the labelled cell: smear background, red cells, neighbours and optics."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from cytokit.data.synthetic import draw as D
from cytokit.data.synthetic import fitted
from cytokit.data.synthetic.morphology import NEIGHBOURS, RECIPES, STAINS, Cell, Ctx, unit, vec
from cytokit.data.taxonomy import CODES, get


#: The lamp: a neutral light just below the camera's white (a field's tint is the plasma's).
LIGHT = 0.97


@dataclass(frozen=True)
class SynthCell:
    """One rendered image and the masks of its labelled (central) cell."""

    image: np.ndarray  # HxWx3 uint8 RGB
    cell_mask: np.ndarray  # HxW bool: cytoplasm + nucleus of the labelled cell
    nucleus_mask: np.ndarray  # HxW bool: its nucleus (smudge for KSC, main object for ART/NIF)



def _background(ctx: Ctx, field: dict) -> np.ndarray:
    """Plasma tint and a little dust (platelets, precipitate): the smear between cells.

    The plasma's optical density is drawn from the real fields' (mean and covariance over
    images) and expressed in the three stains.
    """
    tint = 1 + 0.3 * D.noise(ctx.rng, ctx.shape, ctx.px(60))
    od10 = ctx.rng.multivariate_normal(field["background_od"], field["background_od_cov"]) + np.log10(LIGHT)
    od = np.maximum(od10, 0) * np.log(10)  # measured in decadic OD; the drawing's is natural
    conc = np.linalg.solve(STAINS.T.astype(np.float64), od).astype(np.float32).reshape(3, 1, 1) * tint
    n = int(ctx.rng.integers(0, 12))
    dust = ctx.rng.uniform(0, ctx.shape[0], (n, 2))
    specks = D.dots(ctx.shape, dust, ctx.px(ctx.u(0.8, 1.5)), ctx.rng.uniform(0.3, 0.9, n))
    conc += vec(0.9, 0.1, 0.3) * specks
    return conc


def _red_cells(ctx: Ctx, conc: np.ndarray, field: dict, mixing: np.ndarray) -> None:
    """Add pale grey-pink discs with central pallor (erythrocytes), overlapping freely."""
    discs, pallor = np.zeros(ctx.shape, np.float32), np.zeros(ctx.shape, np.float32)
    for _ in range(int(ctx.rng.poisson(field["red_cells"]))):
        c = ctx.rng.uniform(-0.05, 1.05, 2) * ctx.shape[0]
        r = ctx.px(ctx.u(27, 40))
        discs += D.blob(ctx.shape, ctx.rng, c, r, ctx.u(1, 1.12), ctx.u(0, 3), 0.03)
        pallor += ctx.u(0.3, 0.6) * D.disc(ctx.shape, c + ctx.rng.normal(0, r * 0.08, 2), r * ctx.u(0.3, 0.5))
    layer = cv2.GaussianBlur(discs, (0, 0), ctx.px(1.2)) - D.blur_wide(pallor, ctx.px(6))
    colour = mixing @ np.array([ctx.u(0.06, 0.1), ctx.u(0.04, 0.1), ctx.u(0.12, 0.24)], np.float32)
    conc += colour.reshape(3, 1, 1) * np.maximum(layer, 0)


def _composite(conc: np.ndarray, cell: Cell) -> np.ndarray:
    """Lay a cell over the scene: it hides what lies beneath in proportion to its alpha."""
    return conc * (1 - cell.alpha) + cell.conc


def _neighbours(ctx: Ctx, conc: np.ndarray, field: dict, settings: dict) -> np.ndarray:
    """Cells centred around the frame edge so that the frame cuts them, as many as the real fields hold."""
    codes, p = list(NEIGHBOURS), np.array(list(NEIGHBOURS.values()))
    half = ctx.shape[0] / 2
    for _ in range(int(ctx.rng.poisson(field["neighbours"]))):
        code = str(ctx.rng.choice(codes, p=p / p.sum()))
        c = half + unit(ctx.u(0, 2 * np.pi)) * half * ctx.u(*field["neighbour_reach"])
        conc = _composite(conc, _draw(ctx, code, c, settings[code]))
    return conc


def _draw(ctx: Ctx, code: str, c, cal: fitted.ClassSettings) -> Cell:
    """One cell of ``code`` at c, at its class's fitted size and colours."""
    k, ctx.k, ctx.cal = ctx.k, ctx.k * cal.size, cal
    try:
        return RECIPES[code](ctx, c)
    finally:
        ctx.k, ctx.cal = k, None


@lru_cache(maxsize=4)
def _noise_bank(size: int) -> np.ndarray:
    """Fixed sensor-noise texture; images take random crops of it (fast, deterministic)."""
    return np.random.default_rng(2021).standard_normal((2 * size, 2 * size, 3), np.float32)


@lru_cache(maxsize=4)
def _grid(size: int):
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / np.float32(size) - np.float32(0.5)
    return x, y, x * x + y * y


def _illumination(ctx: Ctx) -> np.ndarray:
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


def _optics(ctx: Ctx, conc: np.ndarray, blur: float = 1.0) -> np.ndarray:
    """Stain, illumination, focus, colour balance and sensor noise -> uint8 RGB."""
    rng, d, h = ctx.rng, ctx.d, ctx.shape[0]
    # staining intensity and colour cast per image, channel by channel: the stains' mixtures (and the
    # fitted recolouring, :mod:`.fitted`) stay exact, only the slide's overall staining varies
    cast = np.exp(rng.normal(0, 0.12 + 0.24 * d) + rng.normal(0, 0.06 + 0.12 * d, 3))
    od = STAINS * cast.astype(np.float32)[None, :]
    light = LIGHT * np.exp(rng.normal(0, 0.01 + 0.02 * d, 3))
    illum = _illumination(ctx)
    rgb = [cv2.exp(_density(conc, -od[:, i])) * (illum * np.float32(255 * light[i])) for i in range(3)]
    img = cv2.GaussianBlur(cv2.merge(rgb), (0, 0), ctx.px(ctx.u(0.3, 0.7 + 1.1 * d)) * blur)
    oy, ox = rng.integers(0, h, 2)
    img += _noise_bank(h)[oy : oy + h, ox : ox + h] * np.float32(ctx.u(0.8, 2.0 + 2.5 * d))
    img = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    return cv2.LUT(img, _colour_lut(ctx))


def _colour_lut(ctx: Ctx) -> np.ndarray:
    """Per-channel gain and gamma (camera white balance and response) as a lookup table."""
    gamma = np.exp(ctx.rng.normal(0, 0.04 + 0.08 * ctx.d))
    gain = np.exp(ctx.rng.normal(0, 0.02 + 0.04 * ctx.d, 3))
    v = (np.arange(256) / 255.0)[:, None] ** gamma * gain * 255
    return np.clip(v + 0.5, 0, 255).astype(np.uint8).reshape(256, 1, 3)


def render(code: str, index: int, seed: int = 0, size: int = 250, difficulty: float = 0.5,
           params: dict | None = None) -> SynthCell:
    """Draw image `index` of class `code`; a pure function of its arguments.

    ``params``: the fitted settings (:mod:`.fitted`); None takes those shipped with the
    generator, fitted to real smears.
    """
    pos = CODES.index(get(code).code)
    check_settings(size, difficulty)
    settings, field = _fitted(params)
    ctx = Ctx(np.random.default_rng([int(seed), pos, int(index)]), int(size), difficulty)
    conc = _background(ctx, field)
    _red_cells(ctx, conc, field, fitted.od_mixing(field["red_cell_gain"], STAINS))
    conc = _neighbours(ctx, conc, field, settings)
    centre = ctx.shape[0] / 2 + ctx.rng.normal(0, ctx.px(3 + 7 * ctx.d), 2)
    cell = _draw(ctx, code, centre, settings[code])
    image = _optics(ctx, _composite(conc, cell), field["blur"])
    return SynthCell(image, cell.cell.copy(), cell.nucleus.copy())


def _fitted(params: dict | None) -> tuple[dict, dict]:
    """Every class's settings and the field's, for ``params`` (None: the shipped ones, computed once)."""
    if params is None:
        return _shipped()
    return fitted.all_settings(params, STAINS), fitted.field(params)


@lru_cache(maxsize=1)
def _shipped() -> tuple[dict, dict]:
    return _fitted(fitted.shipped())


def forget_shipped() -> None:
    """Read ``calibration.json`` again on the next render (after a new fit)."""
    _shipped.cache_clear()


def check_settings(size, difficulty) -> None:
    """Refuse an image size or difficulty the drawing cannot honour."""
    if int(size) < 32:
        raise ValueError(f"size must be >= 32 px, got {size}")
    if not 0.0 <= float(difficulty) <= 1.0:
        raise ValueError(f"difficulty must be in [0, 1], got {difficulty}")
