"""The generator's fitted settings: per class size, colour and texture; per field crowding, blur and JPEG.

The recipes of :mod:`.morphology` draw each class's shape; these settings, fitted to a
real sample's calibration half (:mod:`.calibration`) and kept in ``calibration.json``,
scale and recolour what they draw so that the measured properties (:mod:`.measure`)
match the real ones. Colour gains act on optical density, channel by channel, and are
turned into a mixing of the three stains (:func:`od_mixing`), so a cell stays a
Beer-Lambert mixture of stains. A class without real images borrows the settings of the
measured class it resembles most (:data:`DONORS`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from cytokit.data.taxonomy import CODES

#: The fitted statistics and settings shipped with the generator (written by :mod:`.calibration`).
FILE = Path(__file__).with_name("calibration.json")

#: A class's settings before fitting: the recipes as drawn.
CLASS_DEFAULTS = {"size": 1.0, "nucleus_gain": [1.0, 1.0, 1.0], "cytoplasm_gain": [1.0, 1.0, 1.0],
                  "chromatin_contrast": 1.0, "cytoplasm_contrast": 1.0, "defocus": 1.0}
#: The field's settings before fitting: background optical density (mean, covariance over images),
#: neighbour cells and red cells per image, red-cell colour gain, focus blur scale and JPEG quality range.
FIELD_DEFAULTS = {"background_od": [0.08, 0.09, 0.06], "background_od_cov": [[1e-4, 0, 0], [0, 1e-4, 0],
                                                                               [0, 0, 1e-4]],
                  "neighbours": 1.0, "neighbour_reach": [0.8, 1.4], "red_cells": 3.5, "red_cell_gain": [1.0, 1.0, 1.0],
                  "blur": 1.0, "jpeg_quality": [80, 95]}
#: Classes whose recipe draws the cell out of focus (its blur is fitted as "defocus").
DEFOCUSED = ("NIF",)
#: Classes absent from the real sample's main classes take the settings of the one they resemble.
DONORS = {"ABE": "EOS", "BAS": "EOS", "EBO": "LYT", "FGC": "BLA", "HAC": "MON", "KSC": "ART", "LYI": "LYT",
          "MMZ": "NGS", "MYB": "PMO", "NGB": "NGS", "OTH": "MON", "PEB": "BLA", "PLM": "LYT"}


@dataclass(frozen=True)
class ClassSettings:
    """One class's fitted settings, ready for drawing."""

    size: float
    nucleus: np.ndarray  # (3, 3) stain mixing that applies the nucleus's OD gains
    cytoplasm: np.ndarray  # (3, 3) the same for cytoplasm and granules
    chromatin_contrast: float
    cytoplasm_contrast: float
    defocus: float


def od_mixing(gain, stains: np.ndarray) -> np.ndarray:
    """The (3, 3) mixing M of stain concentrations whose OD is ``gain`` times the original, channel by channel.

    OD = stainsᵀ c, so diag(gain) stainsᵀ c = stainsᵀ (M c) with M = stains⁻ᵀ diag(gain) stainsᵀ.
    """
    s = np.asarray(stains, np.float64)
    return (np.linalg.solve(s.T, np.diag(np.asarray(gain, np.float64))) @ s.T).astype(np.float32)


def class_params(params: dict | None, code: str) -> dict:
    """The raw settings of ``code`` in ``params`` (its donor's, else the defaults)."""
    classes = (params or {}).get("classes", {})
    raw = classes.get(code) or classes.get(DONORS.get(code, ""), {})
    return {**CLASS_DEFAULTS, **raw}


def settings(params: dict | None, code: str, stains: np.ndarray) -> ClassSettings:
    """:class:`ClassSettings` of ``code`` under ``params`` (None: the recipes as drawn)."""
    p = class_params(params, code)
    return ClassSettings(float(p["size"]), od_mixing(p["nucleus_gain"], stains), od_mixing(p["cytoplasm_gain"], stains),
                         float(p["chromatin_contrast"]), float(p["cytoplasm_contrast"]), float(p["defocus"]))


def field(params: dict | None) -> dict:
    """The field's settings under ``params``."""
    return {**FIELD_DEFAULTS, **(params or {}).get("field", {})}


@lru_cache(maxsize=1)
def load() -> dict:
    """``calibration.json``: the real calibration images' quantiles ("classes") and the fitted settings."""
    return json.loads(FILE.read_text(encoding="utf-8"))


def shipped() -> dict:
    """The settings fitted to real smears, as shipped in ``calibration.json`` ("generator")."""
    return load().get("generator", {"classes": {}, "field": {}})


def all_settings(params: dict | None, stains: np.ndarray) -> dict[str, ClassSettings]:
    """:class:`ClassSettings` of every class."""
    return {code: settings(params, code, stains) for code in CODES}
