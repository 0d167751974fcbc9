"""Chapter 05's helpers: the three models on the test split, and the comparisons.

The models come from chapters 02-04 (or, with ``model_source="study"``, from the
study's own published models); the test split is read here for the first time.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from cytokit import reference, resources

#: Chapter that trains each model, in the study's order.
MODEL_CHAPTERS = {"baseline": "02_baseline", "tuned": "03_tuning", "augmented": "04_augmentation"}

#: Published systems of literature_f1.csv (the study's Table 7.2.1.6), in column order.
LITERATURE = {
    "ananthakrishnan": "Ananthakrishnan et al.",
    "matek_strict": "Matek et al. (strict)",
    "engstrom_gaussian": "Engström & Koutakis (Gaussian)",
    "engstrom_bernoulli": "Engström & Koutakis (Bernoulli)",
    "tripathi": "Tripathi et al. (CoAtNet)",
    "report_best": "the study's best model",
}


def model_paths(chapter, source: str = "run", study_dir=None) -> dict[str, Path]:
    """Where each model is: this run's chapters (``run``) or the study's files (``study``).

    The study's models are read from ``study_dir`` (``baseline.keras``, ``tuned.keras``,
    ``augmented.keras``, e.g. written by ``cytokit import-study-model``), by default from
    the reference folder beside the project.

    A missing model raises :class:`cytokit.chapter.MissingArtifact` naming the chapter
    (or the reference folder) to provide it.
    """
    if source == "run":
        return {name: chapter.upstream(ch, "model.keras") for name, ch in MODEL_CHAPTERS.items()}
    if source == "study":
        from cytokit.chapter import MissingArtifact

        folder = Path(study_dir) if study_dir else reference.folder() / "study-models"
        found = {name: folder / f"{name}.keras" for name in MODEL_CHAPTERS}
        missing = [n for n, p in found.items() if not p.is_file()]
        if missing:
            raise MissingArtifact(
                f"the study's models {missing} are not in {folder}; see data/README.md on getting "
                "them (cytokit import-study-model PICKLE OUT.keras)")
        return found
    raise ValueError(f"model_source must be 'run' or 'study', not {source!r}")


def predict_timed(model, ds) -> tuple[np.ndarray, float]:
    """Probabilities for a batched dataset and the seconds the predictions took."""
    start = time.perf_counter()
    probs = np.asarray(model.predict(ds, verbose=0))
    return probs, time.perf_counter() - start


def split_comparison(val: dict, test: dict, keys) -> pd.DataFrame:
    """One model's headline metrics on validation and test, with test - validation."""
    return pd.DataFrame({"validation": [val[k] for k in keys], "test": [test[k] for k in keys]},
                        index=list(keys)).assign(difference=lambda d: d["test"] - d["validation"])


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


def model_card(name: str, path: Path, model, images: int, predict_seconds: float,
               train_seconds: float | None, test_scores: dict) -> pd.Series:
    """The facts a reader needs before trusting the best model."""
    from cytokit.models import param_count

    return pd.Series({
        "model": name,
        "file": str(path.name),
        "parameters": param_count(model),
        "file size (kB)": round(path.stat().st_size / 1024, 1),
        "input": "x".join(str(d) for d in model.input_shape[1:]),
        "test accuracy": round(test_scores["accuracy"], 4),
        "test balanced accuracy": round(test_scores["balanced_accuracy"], 4),
        "inference speed (images/s, this machine)": round(images / predict_seconds, 1),
        "training time (s)": None if train_seconds is None else round(train_seconds, 1),
    })
