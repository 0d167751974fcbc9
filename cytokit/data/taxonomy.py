"""The 21-class bone-marrow cell taxonomy of the Matek et al. dataset.

Codes, names and the study's image counts come from its Table 2.2.1
(``resources/dataset_distribution.csv``); lineages follow its Figure 2.2.4.
Model outputs use :data:`CODES` order, which is alphabetical, the order Keras'
``image_dataset_from_directory`` gave the study's models.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

from cytokit import resources

LINEAGES = ("myelopoiesis", "lymphopoiesis", "other")

#: The neutrophil maturation series, least to most mature (grouped as NEU in the study).
NEUTROPHIL_SERIES = ("PMO", "MYB", "MMZ", "NGB", "NGS")


@dataclass(frozen=True)
class CellClass:
    """One class of the taxonomy with the study's count of real images."""

    code: str
    name: str
    lineage: str
    study_images: int
    study_percent: float


def _load() -> tuple[CellClass, ...]:
    with resources.path("dataset_distribution.csv").open("r", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out = tuple(
        CellClass(
            code=r["code"],
            name=r["name"],
            lineage=r["lineage"],
            study_images=int(r["images"]),
            study_percent=float(r["percent"]),
        )
        for r in rows
    )
    return tuple(sorted(out, key=lambda c: c.code))


CLASSES: tuple[CellClass, ...] = _load()
CODES: tuple[str, ...] = tuple(c.code for c in CLASSES)
_BY_CODE = {c.code: c for c in CLASSES}


def get(code: str) -> CellClass:
    """The class with this code; a clear error names the known codes otherwise."""
    try:
        return _BY_CODE[code]
    except KeyError:
        raise KeyError(f"unknown cell class {code!r}; known codes: {', '.join(CODES)}") from None


def is_known(code: str) -> bool:
    return code in _BY_CODE


def lineage_of(code: str) -> str:
    """Lineage of a class code; classes outside the taxonomy count as 'other'."""
    return _BY_CODE[code].lineage if code in _BY_CODE else "other"


def study_total() -> int:
    """Images in the study's dataset (171,374)."""
    return sum(c.study_images for c in CLASSES)
