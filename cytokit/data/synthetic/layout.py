"""Where each synthetic image goes: class sizes scaled from the study and the real folder layout."""

from __future__ import annotations

import os
import re
from pathlib import Path

from cytokit.data.taxonomy import CLASSES, CODES, get



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


def parse(rel: str | os.PathLike) -> tuple[str, int]:
    """(code, index) from a relative image path; the inverse of :func:`relpath`."""
    m = _NAME.match(Path(rel).name)
    if not m or m.group(1) not in CODES:
        raise ValueError(f"{str(rel)!r} is not a dataset image path like 'BLA/0001-1000/BLA_00001.jpg'")
    return m.group(1), int(m.group(2))
