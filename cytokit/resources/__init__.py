"""Data files shipped with cytokit: the study's published tables (CSV).

Read with :func:`cytokit.resources.table`; the CSVs are the report's own figures,
copied verbatim so that the book can put this run's numbers beside them.
"""

from __future__ import annotations

from importlib import resources as _res

import pandas as pd


def path(name: str):
    """Path of a shipped resource file, e.g. ``path("per_class.csv")``."""
    return _res.files(__name__) / name


def table(name: str) -> pd.DataFrame:
    """Load one of the study's published tables by file stem or name."""
    if not name.endswith(".csv"):
        name += ".csv"
    with path(name).open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh)
