"""The environment: environment.yml (conda) and pyproject.toml (pip) install the same packages,
and the JupyterLab of `make lab` renders the chapters' MyST and asks no question about news."""

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

from conftest import ROOT


def _pyproject_requirements() -> set[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = set(meta["dependencies"])
    for extra in meta.get("optional-dependencies", {}).values():
        reqs |= set(extra)
    return {r.replace(" ", "").lower() for r in reqs}


def _conda_pip_requirements() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {r.replace(" ", "").lower() for r in pip if not r.startswith("-e")}


def test_same_packages_and_pins():
    py, conda = _pyproject_requirements(), _conda_pip_requirements()
    assert py == conda, f"only in pyproject: {sorted(py - conda)}; only in environment.yml: {sorted(conda - py)}"


def test_python_version_agrees():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert conda_python == "python=3.11" and ">=3.11" in requires


def test_every_pin_is_exact():
    assert all("==" in r for r in _pyproject_requirements())


# --------------------------------------------------------------------------- JupyterLab (`make lab`)

#: The settings `make env` installs for JupyterLab, and where JupyterLab reads a prefix's overrides.
LAB_OVERRIDES = ROOT / "lab" / "overrides.json"
NOTIFICATION = "@jupyterlab/apputils-extension:notification"


def project_venv() -> Path:
    """This interpreter's prefix when it is the project's own ``.venv``; otherwise skip (nothing to check)."""
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        pytest.skip(f"not running in the project's .venv ({sys.prefix}): `make env` sets up JupyterLab there")
    return Path(sys.prefix)


def test_lab_never_asks_about_news_and_the_setting_is_one_jupyterlab_accepts():
    prefix = project_venv()
    installed = prefix / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    assert installed.is_file(), f"{installed} missing: `make env` installs {LAB_OVERRIDES.relative_to(ROOT)} there"
    settings = json.loads(installed.read_text())
    assert settings == json.loads(LAB_OVERRIDES.read_text()), "the venv's JupyterLab settings are not the project's"
    assert settings[NOTIFICATION]["fetchNews"] == "false"
    schema = prefix / "share" / "jupyter" / "lab" / "schemas" / "@jupyterlab" / "apputils-extension" / "notification.json"
    jsonschema.validate(settings[NOTIFICATION], json.loads(schema.read_text()))


def test_jupyterlab_myst_is_installed_and_enabled():
    project_venv()
    out = subprocess.run([str(Path(sys.executable).with_name("jupyter")), "labextension", "list"],
                         capture_output=True, text=True, timeout=120, check=True)
    listing = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)  # without the colours
    # "enabled  X": jupyterlab-myst 2.7.0 declares @jupyter/ydoc ^3 and JupyterLab 4.6 ships 4; it loads
    # and renders all the same (tests/test_jupyterlab.py opens a chapter in headless Chromium)
    assert re.search(r"^\s*jupyterlab-myst v2\.7\.0 enabled\b", listing, re.M), listing
