"""Shared fixtures: where the read-only reference material lives, if it is here at all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    return Path(os.environ.get("CYTOKIT_SHARED", ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def real_sample() -> Path:
    """``../shared/real-sample``; tests using it skip with the reason when it is absent."""
    folder = Path(os.environ.get("CYTOKIT_REAL_SAMPLE", shared_dir() / "real-sample"))
    if not folder.is_dir():
        pytest.skip(f"real-image sample not found at {folder} (set CYTOKIT_REAL_SAMPLE to its path)")
    return folder


def study_models_dir() -> Path:
    """The study's trained models (``../shared/reference/study-models``; env overrides)."""
    return Path(os.environ.get("CYTOKIT_STUDY_MODELS", shared_dir() / "reference" / "study-models"))


def require_study_file(path: Path) -> Path:
    """``path`` if it exists; otherwise skip the test with the reason."""
    if not path.is_file():
        pytest.skip(f"study file {path} absent (set CYTOKIT_STUDY_MODELS to the study-models folder)")
    return path


@pytest.fixture(autouse=True)
def _progress_bars_follow_each_test(monkeypatch):
    """The runner silences progress bars for the book (TQDM_DISABLE) in its own process;
    a test that ran it in-process must not silence the bars later tests look for."""
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
