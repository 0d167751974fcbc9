"""Parameter profiles (``profiles/*.yaml``): the notebook parameters of a whole run.

A profile has ``parameters`` shared by every chapter, optional per-chapter
``chapters: {02_baseline: {...}}`` overrides and an optional ``only`` list of the
chapters it runs. Only parameters a notebook declares in its ``parameters`` cell are
passed to it; a relative ``data_dir`` is relative to the project folder.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from cytokit import paths


#: Largest profile read (the project's are under 2 KB).
MAX_PROFILE_BYTES = 2**20


class ProfileError(ValueError):
    """A profile that does not exist or does not parse; refused before any work starts."""


def available() -> list[str]:
    return sorted(p.stem for p in paths.profiles_dir().glob("*.yaml"))


def load(name_or_path: str) -> dict:
    """Read a profile by name (``demo``) or by path to a YAML file."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        path = candidate
    else:
        path = paths.profiles_dir() / f"{name_or_path}.yaml"
        if not path.is_file():
            raise ProfileError(
                f"unknown profile {name_or_path!r}: choose one of {', '.join(available())} "
                f"(files in {paths.profiles_dir()}) or give a path to a .yaml file"
            )
    size = path.stat().st_size
    if size > MAX_PROFILE_BYTES:
        raise ProfileError(f"profile {path} is {size:,} bytes, over the {MAX_PROFILE_BYTES:,}-byte limit of a "
                           "profile: not read")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ProfileError(f"profile {path} is not valid YAML: {exc}") from None
    except RecursionError:
        raise ProfileError(f"profile {path} nests too deep to be a profile (a mapping of parameters)") from None
    if not isinstance(data, dict) or not isinstance(data.get("parameters", {}), dict):
        raise ProfileError(f"profile {path} must be a mapping with a 'parameters' mapping")
    chapters = data.get("chapters") or {}
    if not isinstance(chapters, dict) or not all(isinstance(v, dict) for v in chapters.values()):
        raise ProfileError(f"profile {path}: 'chapters' must map chapter names to parameter mappings")
    only = data.get("only") or []
    if not isinstance(only, list):
        raise ProfileError(f"profile {path}: 'only' must be a list of chapters, e.g. ['01', '05']")
    return {"name": path.stem, "path": str(path), "description": data.get("description", ""),
            "parameters": dict(data.get("parameters") or {}), "chapters": chapters,
            "only": [str(c) for c in only]}


def chapter_parameters(profile: dict, chapter: str) -> dict:
    """Shared parameters overlaid with the chapter's own section (by full name or NN prefix)."""
    params = dict(profile["parameters"])
    for key, section in profile["chapters"].items():
        if key == chapter or key == chapter.split("_", 1)[0]:
            params.update(section)
    return params
