"""Build the Jupyter Book (v1) of a run from its executed notebooks.

The book's sources (``_config.yml``, ``_toc.yml``, ``book/``) are staged beside the
run's executed notebooks in ``RUN_DIR/book_src/``; chapters that were not run are
dropped from the table of contents, plotly.js is copied into ``_static/`` so figures
render offline, and Sphinx runs with warnings as errors.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from cytokit import paths


class BookError(RuntimeError):
    """The book did not build; the message holds Sphinx's warnings."""


def _plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _filter_toc(toc: dict, present: set[str]) -> dict:
    """Drop toc entries whose page is absent from the staged sources."""

    def keep(entry):
        return "file" not in entry or entry["file"] in present

    out = dict(toc)
    if "parts" in toc:
        parts = []
        for part in toc["parts"]:
            chs = [c for c in part.get("chapters", []) if keep(c)]
            if chs:
                parts.append({**part, "chapters": chs})
        out["parts"] = parts
    if "chapters" in toc:
        out["chapters"] = [c for c in toc["chapters"] if keep(c)]
    return out


def stage(run_dir, root=None) -> Path:
    """Copy the book's sources and the run's executed notebooks into ``RUN_DIR/book_src``."""
    run_dir, root = Path(run_dir), Path(root or paths.project_root())
    src = run_dir / "book_src"
    if src.exists():
        shutil.rmtree(src)
    (src / "notebooks").mkdir(parents=True)
    shutil.copy2(root / "_config.yml", src / "_config.yml")
    shutil.copytree(root / "book", src / "book")
    present = {str(p.relative_to(src).with_suffix("")) for p in (src / "book").rglob("*.md")}
    for executed in sorted(run_dir.glob("[0-9][0-9]_*/[0-9][0-9]_*.ipynb")):
        if executed.stem == executed.parent.name:
            shutil.copy2(executed, src / "notebooks" / executed.name)
            present.add(f"notebooks/{executed.stem}")
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    (src / "_toc.yml").write_text(yaml.safe_dump(_filter_toc(toc, present), sort_keys=False),
                                  encoding="utf-8")
    static = src / "_static"
    static.mkdir(exist_ok=True)
    shutil.copy2(_plotly_js(), static / "plotly.min.js")
    for extra in (root / "book" / "_static").glob("*.css"):
        shutil.copy2(extra, static / extra.name)
    return src


def build(run_dir, strict: bool = True, log=print) -> Path:
    """Build the HTML book of a run; returns the path of its ``index.html``."""
    run_dir = Path(run_dir).resolve()
    src = stage(run_dir)
    out = run_dir / "book"
    jb = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(src), "--path-output", str(out)]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    env = {**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    (run_dir / "book-build.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    if proc.returncode != 0:
        warnings = [ln for ln in (proc.stdout + proc.stderr).splitlines()
                    if "WARNING" in ln or "ERROR" in ln]
        raise BookError("the book did not build (warnings are errors):\n" + "\n".join(warnings[-30:])
                        + f"\nFull log: {run_dir / 'book-build.log'}")
    index = out / "_build" / "html" / "index.html"
    if not index.exists():
        raise BookError(f"the build finished but {index} is missing; see {run_dir / 'book-build.log'}")
    return index
