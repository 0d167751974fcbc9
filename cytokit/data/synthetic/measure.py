"""What a 250 px smear image looks like, in numbers: the same measurements for real and synthetic cells.

The generator is fitted to real images (:mod:`.calibration`) by measuring each property
with these functions on both and matching them, so measurement bias cancels. Colours are
optical densities, ``OD = -log10((I + 1) / 256)`` per RGB channel (Beer-Lambert: stains add
up in OD), and the regions are found the same simple way in every image:

- background: pixels whose summed OD is below :data:`BACKGROUND_OD`, or near that of the
  image's brightest pixels on a darker field;
- the labelled cell: along 72 rays from the image centre, the distance to the first
  background pixel; the median ray is its radius, and each ray is capped at 1.25 times
  it, so a touching neighbour does not count as the cell;
- nucleus: pixels of the cell whose green OD exceeds Otsu's threshold within the cell
  (chromatin absorbs green most; :func:`_nucleus_threshold`), small specks removed;
- cytoplasm: the rest of the cell, away from the nucleus's edge;
- others: what is neither background nor the cell, and too pale to be a nucleus (red cells,
  neighbours' cytoplasm).
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

#: Summed OD below which a pixel is background (plasma and glass): about RGB (215, 215, 225) ...
BACKGROUND_OD = 0.22
#: ... or, on a darker (grey, green) field, within this much of the image's brightest 2 %.
BACKGROUND_MARGIN = 0.12
#: Range of the green OD threshold between nucleus and cytoplasm (chromatin absorbs green most):
#: Otsu's threshold within the cell, kept between green levels of about 90 and 35.
NUCLEUS_OD = (0.45, 0.85)
#: Rays cast from the centre to find the cell's edge.
N_RAYS = 72
#: Each property, in the order :func:`properties` returns them, with what it measures.
PROPERTIES = {
    "background_od_r": "background colour: OD, red", "background_od_g": "background colour: OD, green",
    "background_od_b": "background colour: OD, blue",
    "nucleus_od_r": "nucleus colour: OD, red", "nucleus_od_g": "nucleus colour: OD, green",
    "nucleus_od_b": "nucleus colour: OD, blue",
    "cytoplasm_od_r": "cytoplasm colour: OD, red", "cytoplasm_od_g": "cytoplasm colour: OD, green",
    "cytoplasm_od_b": "cytoplasm colour: OD, blue",
    "others_od_r": "neighbours and red cells: OD, red", "others_od_g": "neighbours and red cells: OD, green",
    "others_od_b": "neighbours and red cells: OD, blue",
    "nucleus_hematoxylin": "nucleus: haematoxylin (rgb2hed)", "cytoplasm_eosin": "cytoplasm: eosin (rgb2hed)",
    "cytoplasm_eosin_share": "cytoplasm (granules): blue OD / green OD (orange-red high, blue-violet low)",
    "cell_fraction": "cell area / frame area", "nucleus_fraction": "nucleus area / frame area",
    "nucleus_share": "nucleus area / cell area",
    "border_occupancy": "crowding: share of the frame's edge covered by cells or red cells",
    "others_fraction": "crowding: share of the frame outside the cell covered by cells or red cells",
    "focus": "focus: 99th percentile of the grey gradient / grey range",
    "tint_r": "illumination tint: background red / mean of RGB", "tint_b": "illumination tint: background "
    "blue / mean of RGB",
    "lobes": "nucleus pieces (segmented vs band or round)", "nucleus_solidity": "nucleus area / its convex hull "
    "(folded or lobed low)",
    "chromatin_texture": "nucleus: OD spread / mean (fine chromatin low, clumped high)",
    "cytoplasm_texture": "cytoplasm: OD spread / mean (granules)",
}


def optical_density(rgb: np.ndarray) -> np.ndarray:
    """OD of each channel of uint8 RGB pixels (float32, 0 for white, 2.4 for black)."""
    return -np.log10((rgb.astype(np.float32) + 1) / 256)


def _cell_radius(background: np.ndarray) -> tuple[float, np.ndarray]:
    """Median distance from the centre to the first background pixel over :data:`N_RAYS` rays, and each ray's."""
    h, w = background.shape
    cy, cx = (h - 1) / 2, (w - 1) / 2
    r = np.arange(1, int(np.hypot(h, w) / 2) + 1, dtype=np.float32)
    a = np.linspace(0, 2 * np.pi, N_RAYS, endpoint=False)
    xs, ys = np.rint(cx + np.cos(a)[:, None] * r), np.rint(cy + np.sin(a)[:, None] * r)
    inside = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    hit = np.ones_like(inside)
    hit[inside] = background[ys[inside].astype(int), xs[inside].astype(int)]
    rays = r[np.argmax(hit, axis=1)]
    return float(np.median(rays)), rays


def _regions(rgb: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks of background, cell, nucleus and cytoplasm, and the OD image, as the module says."""
    od = optical_density(rgb)
    total = od.sum(axis=2)
    background = total < max(BACKGROUND_OD, float(np.percentile(total, 2)) + BACKGROUND_MARGIN)
    radius, rays = _cell_radius(background)
    h, w = background.shape
    a = np.linspace(0, 2 * np.pi, N_RAYS, endpoint=False)
    reach = np.minimum(rays, 1.25 * radius)
    poly = np.stack([(w - 1) / 2 + np.cos(a) * reach, (h - 1) / 2 + np.sin(a) * reach], axis=1)
    cell = np.zeros((h, w), np.uint8)
    cv2.fillPoly(cell, [np.rint(poly).astype(np.int32)], 1)
    cell = cell.astype(bool) & ~background
    green = od[..., 1]
    dark = (green > _nucleus_threshold(green[cell])) & cell
    dark = cv2.morphologyEx(dark.view(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool)
    near = cv2.dilate(dark.view(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    others = ~background & ~cell & (green <= NUCLEUS_OD[0])
    return {"od": od, "background": background, "cell": cell, "nucleus": dark, "cytoplasm": cell & ~near,
            "others": others, "radius": np.float32(radius)}


def _nucleus_threshold(green: np.ndarray) -> float:
    """Otsu's threshold of the cell's green OD (nucleus vs cytoplasm), kept within :data:`NUCLEUS_OD`."""
    if len(green) < 50:
        return NUCLEUS_OD[1]
    from skimage.filters import threshold_otsu

    return float(np.clip(threshold_otsu(green), *NUCLEUS_OD))


def _mean(od: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return od[mask].mean(axis=0) if mask.sum() >= 20 else np.full(od.shape[-1], np.nan, np.float32)


def _pieces(mask: np.ndarray, min_share: float = 0.05) -> tuple[int, float]:
    """Number of connected pieces holding at least ``min_share`` of the mask, and the mask's solidity."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    if areas.sum() < 20:
        return 0, np.nan
    points = cv2.findNonZero(mask.view(np.uint8))
    hull = cv2.contourArea(cv2.convexHull(points))
    return int((areas >= min_share * areas.sum()).sum()), float(mask.sum() / max(hull, 1.0))


def _spread(values: np.ndarray) -> float:
    return float(values.std() / values.mean()) if len(values) >= 20 and values.mean() > 0 else np.nan


def properties(rgb: np.ndarray) -> np.ndarray:
    """Every property of :data:`PROPERTIES` of one uint8 RGB image (NaN where a region is too small)."""
    from skimage.color import rgb2hed

    reg = _regions(rgb)
    od, bg, cell, nuc, cyto = reg["od"], reg["background"], reg["cell"], reg["nucleus"], reg["cytoplasm"]
    n = od.shape[0] * od.shape[1]
    hed = rgb2hed(rgb)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    grad = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    lo, hi = np.percentile(grey, [1, 99])
    border = np.concatenate([bg[0], bg[-1], bg[:, 0], bg[:, -1]])
    background_rgb = rgb[bg].mean(axis=0) if bg.sum() >= 20 else np.full(3, np.nan)
    cyto_od = _mean(od, cyto)
    lobes, solidity = _pieces(nuc)
    return np.array([
        *_mean(od, bg), *_mean(od, nuc), *cyto_od, *_mean(od, reg["others"]),
        hed[..., 0][nuc].mean() if nuc.sum() >= 20 else np.nan,
        hed[..., 1][cyto].mean() if cyto.sum() >= 20 else np.nan,
        cyto_od[2] / cyto_od[1] if cyto_od[1] > 0 else np.nan,
        cell.sum() / n, nuc.sum() / n, nuc.sum() / max(cell.sum(), 1),
        1 - border.mean(), (~bg & ~cell).sum() / max(n - cell.sum(), 1),
        float(np.percentile(grad, 99) / max(hi - lo, 1.0)),
        *(background_rgb[[0, 2]] / background_rgb.mean()),
        lobes, solidity, _spread(od[..., 1][nuc]), _spread(od[..., 1][cyto]),
    ], dtype=np.float64)


def jpeg_quality(data: bytes) -> int | None:
    """The IJG quality (1-100) whose luminance table a JPEG's matches best; None if it is not a JPEG."""
    table = _luma_table(data)
    if table is None:
        return None
    return int(min(range(1, 101), key=lambda q: np.abs(_ijg_table(q) - table).sum()))


def _luma_table(data: bytes) -> np.ndarray | None:
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.quantization[0], dtype=float) if im.format == "JPEG" else None
    except (OSError, KeyError, IndexError, AttributeError):
        return None


@lru_cache(maxsize=None)
def _ijg_table(quality: int) -> np.ndarray:
    """libjpeg's luminance table at ``quality``, as Pillow (libjpeg) writes and reads it back."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "JPEG", quality=int(quality))
    return _luma_table(buf.getvalue())
