"""The study's own files, read at run time from ``../shared/reference`` when present.

Its training curves, tuner trials and trained models come from the study's code
repository and are not part of this project: every function here returns ``None``
when they are absent, and the chapters then simply leave the comparison out.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from cytokit import paths


def folder() -> Path:
    return paths.shared_dir() / "reference"


def study_history(model: str) -> dict | None:
    """Per-epoch curves of the study's ``baseline``, ``tuned`` or ``augmented`` model."""
    f = folder() / "study_training_histories.json"
    if not f.is_file():
        return None
    data = json.loads(f.read_text(encoding="utf-8"))
    entry = data.get(model) if isinstance(data, dict) else None
    if isinstance(entry, dict) and "history" in entry:
        entry = entry["history"]
    return entry


def study_trials() -> pd.DataFrame | None:
    """The study's 60 random-search trials, or ``None``."""
    f = folder() / "study_random_search_trials.csv"
    return pd.read_csv(f) if f.is_file() else None


def study_model(name: str) -> Path | None:
    """Path of the study's trained ``baseline``/``tuned``/``augmented`` model (Keras 3)."""
    f = folder() / "study-models" / f"{name}.keras"
    return f if f.is_file() else None
