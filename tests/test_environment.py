"""environment.yml (conda) and pyproject.toml (pip) must install the same packages."""

import tomllib

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
