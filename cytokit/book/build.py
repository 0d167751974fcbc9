"""Build the Jupyter Book (v1) of a run from its executed notebooks.

The book's sources (``_config.yml``, ``_toc.yml``, ``book/``) are staged beside the
run's executed notebooks in ``RUN_DIR/book_src/``; chapters that were not run are
dropped from the table of contents, plotly.js is copied into ``_static/`` so figures
render offline, and Sphinx runs with warnings as errors. ``book_src/`` carries a
marker listing the files staged there with their hashes; a rebuild deletes it only when
it holds nothing else and nothing in it changed, so a folder of that name the build did
not make, a file a user put in it, or a hand edit of a staged file is never deleted:
the rebuild is refused, naming them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

import cytokit
from cytokit import io, paths
from cytokit.data.outputs import check_folder_output
from cytokit.data.tree import shown


class BookError(RuntimeError):
    """The book did not build, or cannot be built here; the message says why and what to do."""


#: The staging folder's marker: the files the build wrote there, relative to it.
STAGED = ".cytokit-staged.json"
SOURCES = "book_src"
#: What the build writes into ``RUN_DIR/book`` (Jupyter Book's output folder).
BUILT = "_build"


def _check_run_folder(run_dir) -> Path:
    """``run_dir`` if it is a run folder (``run.json`` or an executed chapter), else a BookError."""
    run_dir = Path(run_dir).expanduser()
    if not run_dir.exists() and run_dir.is_symlink():
        raise BookError(f"{shown(run_dir)} is a link that loops back on itself or points nowhere: pass the run "
                        "folder of a `cytokit run` (its --out)")
    if not run_dir.exists():
        raise BookError(f"{shown(run_dir)} does not exist: pass the run folder of a `cytokit run` (its --out)")
    if not run_dir.is_dir():
        raise BookError(f"{shown(run_dir)} is a file: pass the run folder of a `cytokit run` (its --out)")
    executed = [p for p in run_dir.glob("[0-9][0-9]_*/[0-9][0-9]_*.ipynb") if p.stem == p.parent.name]
    if not (run_dir / "run.json").is_file() and not executed:
        raise BookError(f"{shown(run_dir)} is not a run folder (no run.json and no executed chapter such as "
                        "01_data/01_data.ipynb): pass the --out folder of a `cytokit run`; nothing was written")
    check_folder_output(run_dir, "RUN_DIR")
    return run_dir


def _clear_staging(src: Path) -> None:
    """Remove an earlier ``book_src`` only if this build made it, it holds nothing else and nothing in it was edited."""
    if not src.exists() and not src.is_symlink():
        return
    marker = src / STAGED
    if src.is_symlink() or not src.is_dir() or not marker.is_file():
        raise BookError(f"{shown(src)} exists but was not made by the book build (no {STAGED} in it): move it "
                        "away or delete it yourself, then build again; nothing was deleted")
    try:
        listed = io.read_json(marker)
        if isinstance(listed, list):  # a marker of names only, from before the build kept their hashes
            listed = {rel: None for rel in listed}
        if not isinstance(listed, dict) or not all(isinstance(k, str) for k in listed):
            raise TypeError(type(listed).__name__)
    except (ValueError, TypeError, RecursionError):
        raise BookError(f"{shown(marker)} is unreadable: move {shown(src)} away or delete it yourself, then build "
                        "again; nothing was deleted") from None
    present = _files(src)
    foreign = sorted(rel for rel in present if rel not in listed and rel != STAGED)
    if foreign:
        listed_ = ", ".join(shown(f) for f in foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise BookError(f"{shown(src)} holds files the book build did not write ({listed_}): move them out of it, "
                        "then build again; nothing was deleted")
    edited = sorted(rel for rel in present if listed.get(rel) and _digest(src / rel) != listed[rel])
    if edited:
        named = ", ".join(shown(f) for f in edited[:5]) + (" ..." if len(edited) > 5 else "")
        raise BookError(f"{shown(src)} holds file(s) changed since the build wrote them ({named}); a rebuild would "
                        "discard the change: make it in the sources (notebooks/, book/, _config.yml), or move the "
                        "edited files out of it, then build again; nothing was deleted")
    shutil.rmtree(src)


def _files(folder: Path) -> list[str]:
    """Every file and link below ``folder``, relative to it, in POSIX form."""
    out = []
    for here, dirs, files in os.walk(folder):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(here, d))]:
            out.append(Path(os.path.relpath(os.path.join(here, name), folder)).as_posix())
    return out


def _digest(path: Path) -> str:
    """SHA-256 of a staged file's bytes (of a link: of where it points), to notice a hand edit."""
    h = hashlib.sha256()
    if path.is_symlink():
        h.update(b"link:" + os.fsencode(os.readlink(path)))
        return h.hexdigest()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _mark_staged(src: Path) -> None:
    io.write_json(src / STAGED, {rel: _digest(src / rel) for rel in sorted(_files(src)) if rel != STAGED})


def _check_output_folder(out: Path) -> None:
    """Refuse ``RUN_DIR/book`` when it holds anything besides the build's own ``_build``."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise BookError(f"{shown(out)} is not a folder the book build made: move it away, then build again")
    foreign = sorted(p.name for p in out.iterdir() if p.name != BUILT) if out.is_dir() else []
    if foreign:
        raise BookError(f"{shown(out)} holds {', '.join(foreign[:5])}, which the book build did not write: move "
                        "them away, then build again; nothing was written")


def _plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _filter_toc(toc: dict, present: set[str]) -> dict:
    """Drop toc entries whose page is absent from the staged sources."""

    def keep(entry):
        return "file" not in entry or entry["file"] in present

    out = dict(toc)
    if out.get("root") not in present:  # a run without its findings page opens on the first page there is
        pages = [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", []) if keep(c)]
        out["root"] = pages[0] if pages else out.get("root")
        present = present - {out["root"]}
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


def _without_parameters(notebook: Path, target: Path) -> None:
    """Copy an executed notebook with its parameter cells removed from the page (the findings page shows none)."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if {"parameters", "injected-parameters"} & set(tags):
            cell["metadata"]["tags"] = [*tags, "remove-cell"]
    target.write_text(json.dumps(nb), encoding="utf-8")


def _stage_package(src: Path) -> None:
    """The package's Python sources beside the notebooks, so that a page shows a function as it ran
    (``{literalinclude} ../cytokit/<module>.py`` with ``:pyobject:``)."""
    package = Path(cytokit.__file__).parent
    for path in sorted(package.rglob("*.py")):
        target = src / "cytokit" / path.relative_to(package)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def stage(run_dir, root=None) -> Path:
    """Copy the book's sources, the package's Python source and the run's executed notebooks into
    ``RUN_DIR/book_src``."""
    run_dir, root = Path(run_dir), Path(root or paths.project_root())
    src = run_dir / SOURCES
    _clear_staging(src)
    (src / "notebooks").mkdir(parents=True)
    io.write_json(src / STAGED, {})  # the folder is the build's from here on
    shutil.copy2(root / "_config.yml", src / "_config.yml")
    shutil.copytree(root / "book", src / "book")
    _stage_package(src)
    present = {str(p.relative_to(src).with_suffix("")) for p in (src / "book").rglob("*.md")}
    for executed in sorted(run_dir.glob("[0-9][0-9]_*/[0-9][0-9]_*.ipynb")):
        if executed.stem == executed.parent.name:
            shutil.copy2(executed, src / "notebooks" / executed.name)
            present.add(f"notebooks/{executed.stem}")
    findings = run_dir / "findings" / "findings.ipynb"
    if findings.is_file():
        _without_parameters(findings, src / "notebooks" / findings.name)
        present.add("notebooks/findings")
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    (src / "_toc.yml").write_text(yaml.safe_dump(_filter_toc(toc, present), sort_keys=False),
                                  encoding="utf-8")
    static = src / "_static"
    static.mkdir(exist_ok=True)
    shutil.copy2(_plotly_js(), static / "plotly.min.js")
    for extra in (root / "book" / "_static").glob("*.css"):
        shutil.copy2(extra, static / extra.name)
    _mark_staged(src)
    return src


def build(run_dir, strict: bool = True, log=print) -> Path:
    """Build the HTML book of a run folder; returns the path of its ``index.html``."""
    run_dir = _check_run_folder(run_dir).resolve()
    out = run_dir / "book"
    _check_output_folder(out)
    src = stage(run_dir)
    jb = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(src), "--path-output", str(out)]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    env = {**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    _mark_staged(src)  # whatever the build itself added there is the build's too
    io.write_text(run_dir / "book-build.log", proc.stdout + proc.stderr)
    if proc.returncode != 0:
        warnings = [ln for ln in (proc.stdout + proc.stderr).splitlines()
                    if "WARNING" in ln or "ERROR" in ln]
        raise BookError("the book did not build (warnings are errors):\n" + "\n".join(warnings[-30:])
                        + f"\nFull log: {run_dir / 'book-build.log'}")
    index = out / "_build" / "html" / "index.html"
    if not index.exists():
        raise BookError(f"the build finished but {index} is missing; see {run_dir / 'book-build.log'}")
    return index


def main_book(run_dir, log=print) -> Path:
    """``cytokit book RUN_DIR``: check the folder, hold its lock, rebuild the book."""
    run_dir = _check_run_folder(run_dir)
    with io.folder_lock(run_dir, log=log, advice="wait for it to finish, then run `cytokit book` again"):
        return build(run_dir, log=log)
