"""Drawing primitives for :mod:`cytokit.data.synthetic` (private).

Everything works on float32 maps the size of the image so that shapes, textures and
stains compose by plain array arithmetic; OpenCV does the rasterising because it is
fast enough for thousands of images per minute on two cores.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Sub-pixel precision for cv2 drawing calls (coordinates are multiplied by 2**SHIFT).
SHIFT = 3
_ONE = 1 << SHIFT


def _fix(points: np.ndarray) -> np.ndarray:
    """Float pixel coordinates as cv2's fixed-point int32 (smooth outlines, no jaggies)."""
    return np.round(np.asarray(points, np.float64) * _ONE).astype(np.int32)


def polygon(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """Filled polygon as a bool mask."""
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [_fix(points).reshape(-1, 1, 2)], 1, cv2.LINE_8, SHIFT)
    return m.view(bool)


def blob_outline(rng, center, radius, aspect=1.0, angle=0.0, wobble=0.05, n=96):
    """Closed outline of a smooth irregular ellipse: low harmonics make cells look organic."""
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    r = np.ones(n)
    for k in range(2, 6):
        r += wobble / k * rng.normal() * np.cos(k * t + rng.uniform(0, 2 * np.pi))
    x, y = radius * aspect * r * np.cos(t), radius / aspect * r * np.sin(t)
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([center[0] + c * x - s * y, center[1] + s * x + c * y], axis=1)


def blob(shape, rng, center, radius, aspect=1.0, angle=0.0, wobble=0.05) -> np.ndarray:
    """Bool mask of :func:`blob_outline`."""
    return polygon(shape, blob_outline(rng, center, radius, aspect, angle, wobble))


def disc(shape, center, radius) -> np.ndarray:
    """Bool mask of a circle."""
    m = np.zeros(shape, np.uint8)
    cv2.circle(m, tuple(int(v) for v in _fix(center)), int(round(radius * _ONE)), 1, -1, cv2.LINE_8, SHIFT)
    return m.view(bool)


def tube(shape, points: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Union of capsules along a centreline: one model for round, bean, band and lobed nuclei."""
    m = np.zeros(shape, np.uint8)
    p = _fix(points)
    for i in range(len(p) - 1):
        thick = max(1, int(round(2 * min(radii[i], radii[i + 1]))))
        cv2.line(
            m, (int(p[i, 0]), int(p[i, 1])), (int(p[i + 1, 0]), int(p[i + 1, 1])), 1, thick, cv2.LINE_8, SHIFT
        )
    return m.view(bool)


def lines(shape, segments: np.ndarray, width: float, value: float = 1.0, out=None) -> np.ndarray:
    """Straight strokes (rods, hairs, fibres) drawn into a float map."""
    out = np.zeros(shape, np.float32) if out is None else out
    p = _fix(segments)
    w = max(1, int(round(width)))
    for x0, y0, x1, y1 in p.reshape(-1, 4):
        cv2.line(out, (int(x0), int(y0)), (int(x1), int(y1)), float(value), w, cv2.LINE_AA, SHIFT)
    return out


def noise(rng, shape, scale: float) -> np.ndarray:
    """Smooth random field, zero mean, unit-ish std, correlated over ~`scale` pixels."""
    h, w = shape
    gh, gw = max(2, int(h / scale) + 2), max(2, int(w / scale) + 2)
    small = rng.standard_normal((gh, gw)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def soft(mask: np.ndarray, sigma: float = 0.8) -> np.ndarray:
    """Anti-aliased float version of a bool mask (soft edges look optical, not drawn)."""
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma)


def blur_wide(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with a large sigma, done at quarter resolution (same look, ~10x faster)."""
    h, w = img.shape[:2]
    if sigma < 4:
        return cv2.GaussianBlur(img, (0, 0), sigma)
    small = cv2.resize(img, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    return cv2.resize(cv2.GaussianBlur(small, (0, 0), sigma / 4), (w, h), interpolation=cv2.INTER_LINEAR)


def dots(shape, xy: np.ndarray, sigma: float, amps: np.ndarray | float = 1.0) -> np.ndarray:
    """Gaussian spots (granules, precipitate) of peak ~amps at points xy, vectorised."""
    h, w = shape
    out = np.zeros(shape, np.float32)
    xy = np.asarray(xy)
    if len(xy) == 0:
        return out
    xi = np.clip(np.round(xy[:, 0]).astype(int), 0, w - 1)
    yi = np.clip(np.round(xy[:, 1]).astype(int), 0, h - 1)
    np.add.at(out, (yi, xi), np.broadcast_to(np.asarray(amps, np.float32), xi.shape))
    out = cv2.GaussianBlur(out, (0, 0), sigma)
    return out * np.float32(2 * np.pi * sigma * sigma)


def sample_in(rng, mask: np.ndarray, n: int) -> np.ndarray:
    """n random (x, y) points inside a mask, by rejection in its bounding box (fast)."""
    x0, y0, bw, bh = cv2.boundingRect(mask.view(np.uint8))
    if n <= 0 or bw == 0:
        return np.zeros((0, 2))
    out, need = [], n
    for _ in range(50):
        xy = rng.uniform(0, 1, (2 * need + 8, 2)) * (bw, bh) + (x0, y0)
        xy = xy[mask[xy[:, 1].astype(int), xy[:, 0].astype(int)]][:need]
        out.append(xy)
        need -= len(xy)
        if need == 0:
            break
    return np.concatenate(out)


def dist_inside(mask: np.ndarray) -> np.ndarray:
    """Distance (px) of each mask pixel to the mask's edge."""
    return cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)


def remap(img: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """``img`` sampled at (map_x, map_y): bilinear for float maps, nearest for bool masks (0 outside)."""
    if img.dtype == bool:
        return cv2.remap(img.view(np.uint8), map_x, map_y, cv2.INTER_NEAREST, borderValue=0).view(bool)
    return cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderValue=0)
