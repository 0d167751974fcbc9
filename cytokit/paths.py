"""Where things live: the project root, run folders and the embedded dataset.

Notebooks run from ``notebooks/`` in JupyterLab and from a run folder under
papermill; resolving every default from the project root keeps both the same.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_PROFILE = "demo"


def project_root() -> Path:
    """The checkout holding ``pyproject.toml`` (``CYTOKIT_HOME`` overrides).

    Looks beside the installed package first (editable installs), then upwards
    from the working directory.
    """
    env = os.environ.get("CYTOKIT_HOME")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").is_file() and (here / "notebooks").is_dir():
        return here
    for folder in [Path.cwd(), *Path.cwd().parents]:
        if (folder / "pyproject.toml").is_file() and (folder / "cytokit").is_dir():
            return folder
    return Path.cwd()


def _runs_root() -> Path:
    return project_root() / "runs"


def default_run_dir(profile: str = DEFAULT_PROFILE) -> Path:
    """The run folder that ``make book PROFILE=...`` writes and notebooks read by default."""
    return _runs_root() / profile


def synthetic_root() -> Path:
    """Cache of generated synthetic datasets (git-ignored, regenerated from a seed)."""
    return project_root() / "data" / "synthetic"


def notebooks_dir() -> Path:
    return project_root() / "notebooks"


def profiles_dir() -> Path:
    return project_root() / "profiles"


def shared_dir() -> Path:
    """``../shared`` beside the checkout: the study's reference files and real sample, when present."""
    env = os.environ.get("CYTOKIT_SHARED")
    return Path(env).resolve() if env else project_root().parent / "shared"
