"""The facts a reader needs before trusting a model: size, input, scores, speed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cytokit.models.network import param_count


def model_card(name: str, path: Path, model, images: int, predict_seconds: float,
               train_seconds: float | None, test_scores: dict) -> pd.Series:
    """The facts a reader needs before trusting the best model."""
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
