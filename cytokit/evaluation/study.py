"""The study's own published numbers, to set beside this run's.

Its tables (headline and per-class metrics, the literature it compared with) ship with
cytokit as CSV; its training curves and tuner trials are read from ``../shared/reference``
when that folder is present, and are simply left out of the pages otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from cytokit import paths, resources
from cytokit.data.taxonomy import CODES
from cytokit.evaluation.metrics import HEADLINE_KEYS

#: Published systems of literature_f1.csv (the study's Table 7.2.1.6), in column order.
LITERATURE = {
    "ananthakrishnan": "Ananthakrishnan et al.",
    "matek_strict": "Matek et al. (strict)",
    "engstrom_gaussian": "Engström & Koutakis (Gaussian)",
    "engstrom_bernoulli": "Engström & Koutakis (Bernoulli)",
    "tripathi": "Tripathi et al. (CoAtNet)",
    "report_best": "the study's best model",
}


def literature_comparison(f1: pd.Series, label: str = "this run") -> pd.DataFrame:
    """Per-class F1 (fractions) of published systems beside this run's best model.

    Empty cells are classes a paper did not report (or did not use).
    """
    lit = resources.table("literature_f1").set_index("code")
    out = lit[list(LITERATURE)].astype(float) / 100.0
    out.columns = [LITERATURE[c] for c in LITERATURE]
    out[label] = f1.reindex(out.index)
    return out


def best_per_class(table: pd.DataFrame) -> pd.Series:
    """Name of the column with the highest value in each row (ties: the first)."""
    return table.astype(float).idxmax(axis=1, skipna=True)


def _select(name: str, model: str, split: str) -> pd.DataFrame:
    df = resources.table(name)
    sel = df[(df["model"] == model) & (df["split"] == split)]
    if sel.empty:
        pairs = sorted(set(zip(df["model"], df["split"])))
        raise KeyError(f"no {name} rows for model={model!r}, split={split!r}; available: {pairs}")
    return sel


def study_per_class(model: str, split: str) -> pd.DataFrame:
    """The study's per-class table for one model/split, as fractions (0-1), in CODES order.

    Same layout as :func:`per_class`. ``support`` is a nullable integer: the study printed
    it for the validation split only, so test rows hold <NA>.
    """
    sel = _select("per_class", model, split).set_index("code")
    out = sel[["precision", "recall", "f1"]].astype(float) / 100.0
    out["support"] = sel["support"].astype("Int64")
    out = out.reindex(list(CODES))
    out.index.name = "code"
    return out


def study_headline(model: str, split: str) -> dict:
    """The study's headline metrics for one model/split, as fractions (0-1)."""
    row = _select("headline_metrics", model, split).iloc[0]
    return {k: float(row[k]) / 100.0 for k in HEADLINE_KEYS}


def neu_recall() -> float:
    """The study's share (in %) of neutrophil-lineage test images its best model put into the lineage."""
    facts = resources.table("training_facts").set_index("key")["value"]
    return float(facts["neu_accuracy_test"])


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


def study_trials_for_scatter() -> pd.DataFrame:
    """The study's trials named as this run's trials table (empty when its files are absent)."""
    trials = study_trials()
    if trials is None:
        return pd.DataFrame(columns=["dropout", "optimizer", "learning_rate", "batch_size", "val_accuracy"])
    return trials.rename(columns={"dropout_rate": "dropout", "score_val_accuracy": "val_accuracy"}).set_index("trial")
