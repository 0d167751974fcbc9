"""Re-running the chapters in JupyterLab: every notebook runs top to bottom in the ``cytokit`` kernel.

As a reader pressing "Run all": each source notebook with its committed parameters (the
demo profile's values, ``run_dir = None`` meaning ``runs/demo``), from ``notebooks/`` as
the working folder, in the kernel ``make env`` registers, in the book's order. It runs in
a temporary copy of the project (``CYTOKIT_HOME``) so a reader's own ``runs/demo`` is
never touched; the embedded synthetic data already generated is shared by symlink.
Then a JupyterLab server started as ``make lab`` starts it must list that kernel.
"""

from __future__ import annotations

import contextlib
import hashlib
import html.parser
import json
import re
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

import chromium
from conftest import ROOT

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
kernelspec = pytest.importorskip("jupyter_client.kernelspec")

pytestmark = pytest.mark.slow

#: The kernel ``make env`` installs (``python -m ipykernel install --sys-prefix --name cytokit``).
KERNEL = "cytokit"
ORDER = ["01_data", "02_baseline", "03_tuning", "04_augmentation", "05_test_results", "06_xai", "findings"]
#: What a copy of the project needs for the notebooks to find their root, profiles and book.
PROJECT_FILES = ["pyproject.toml", "_config.yml", "_toc.yml"]
PROJECT_FOLDERS = ["notebooks", "profiles", "book"]
CELL_TIMEOUT_S = 1800


def require_kernel() -> None:
    try:
        kernelspec.KernelSpecManager().get_kernel_spec(KERNEL)
    except kernelspec.NoSuchKernel:
        pytest.skip(f"Jupyter kernel {KERNEL!r} not installed: `make env` registers it "
                    f"(python -m ipykernel install --sys-prefix --name {KERNEL})")


def folder_digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (hidden ones too), by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory) -> Path:
    """A copy of the project's notebooks, profiles and book config, with the synthetic cache linked."""
    home = tmp_path_factory.mktemp("lab") / "project"
    home.mkdir()
    for name in PROJECT_FILES:
        shutil.copy(ROOT / name, home / name)
    for name in PROJECT_FOLDERS:
        shutil.copytree(ROOT / name, home / name)
    cache = ROOT / "data" / "synthetic"
    (home / "data" / "synthetic").mkdir(parents=True)
    for entry in sorted(cache.iterdir()) if cache.is_dir() else []:
        if entry.is_dir():  # generated datasets, read only; a missing one is generated in the copy
            (home / "data" / "synthetic" / entry.name).symlink_to(entry, target_is_directory=True)
    return home


def test_every_chapter_runs_top_to_bottom_in_the_lab_kernel(project_copy, monkeypatch):
    require_kernel()
    monkeypatch.setenv("CYTOKIT_HOME", str(project_copy))
    notebooks = project_copy / "notebooks"
    sources_before, copy_before = folder_digest(ROOT / "notebooks"), folder_digest(notebooks)
    seconds = {}
    for name in ORDER:
        nb = nbformat.read(notebooks / f"{name}.ipynb", as_version=4)
        assert nb.metadata["kernelspec"]["name"] == KERNEL, f"{name}.ipynb asks for another kernel"
        client = nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=CELL_TIMEOUT_S,
                                         resources={"metadata": {"path": str(notebooks)}})
        start = time.perf_counter()
        client.execute()  # raises CellExecutionError, naming the cell, on the first error
        seconds[name] = round(time.perf_counter() - start, 1)
        print(f"{name}: {seconds[name]:.0f} s", flush=True)
    print("notebook seconds:", json.dumps(seconds), f"total {sum(seconds.values()):.0f} s")
    run_dir = project_copy / "runs" / "demo"
    for name in ORDER[:-1]:
        assert (run_dir / name / "metrics.json").is_file(), f"{name} wrote no metrics.json into runs/demo"
    assert folder_digest(notebooks) == copy_before, "running the notebooks changed notebooks/"
    assert folder_digest(ROOT / "notebooks") == sources_before


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, deadline: float, proc: subprocess.Popen | None, log: Path):
    """GET ``url`` until it answers, the server exits, or the deadline passes."""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.load(response)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    pytest.fail(f"jupyter lab did not answer {url.split('?')[0]} in time:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def lab_as_make_lab_starts_it(tmp_path: Path, folder: str = "notebooks/"):
    """``jupyter lab FOLDER`` from the project root, as ``make lab`` runs it; yields its URL and token.

    The server's own files and any user-level JupyterLab settings or workspaces stay in
    ``tmp_path``: what it shows comes from the project's environment alone.
    """
    jupyter = Path(sys.executable).with_name("jupyter")
    if not jupyter.exists():
        pytest.skip(f"{jupyter} not found: `make env` installs JupyterLab into .venv")
    port, token = free_port(), secrets.token_hex(16)
    cmd = [str(jupyter), "lab", folder, "--no-browser", f"--port={port}", f"--ServerApp.token={token}"] + (["--allow-root"] if os.geteuid() == 0 else [])
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "user-settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces")}
    log = tmp_path / "lab.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        get_json(f"{url}/api/status?token={token}", time.monotonic() + 90, proc, log)
        yield url, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_jupyterlab_as_make_lab_starts_it_lists_the_cytokit_kernel(tmp_path):
    require_kernel()
    before = folder_digest(ROOT / "notebooks")
    with lab_as_make_lab_starts_it(tmp_path) as (url, token):
        specs = get_json(f"{url}/api/kernelspecs?token={token}", time.monotonic() + 30, None, tmp_path / "lab.log")
    assert KERNEL in specs["kernelspecs"], f"kernels listed: {sorted(specs['kernelspecs'])}"
    assert specs["kernelspecs"][KERNEL]["spec"]["display_name"] == "cytokit (Python 3)"
    assert folder_digest(ROOT / "notebooks") == before


class _RenderedText(html.parser.HTMLParser):
    """The text of a JupyterLab page as a reader sees it: without the cell editors' source."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._editor_depth = 0  # > 0 inside a CodeMirror editor

    def handle_starttag(self, tag, attrs):
        classes = (dict(attrs).get("class") or "").split()
        if self._editor_depth or "cm-editor" in classes:
            self._editor_depth += tag not in VOID_TAGS

    def handle_endtag(self, tag):
        if self._editor_depth and tag not in VOID_TAGS:
            self._editor_depth -= 1

    def handle_data(self, data):
        if not self._editor_depth:
            self.parts.append(data)


VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

#: A MyST figure directive, put first in a copy of chapter 01 (the chapters' own figures are code outputs).
FIGURE_PROBE = ":::{figure} probe.png\n:name: fig-lab-probe\nA probe figure.\n:::"


def test_make_labs_jupyterlab_shows_a_chapters_myst_rendered_and_asks_nothing_about_news(tmp_path):
    """A reader opening chapter 01 in `make lab` sees its prose, not MyST syntax, and no news question."""
    require_kernel()
    if not chromium.executable():
        pytest.skip("headless Chromium not installed (Debian package `chromium`; .ci/run installs it)")
    folder = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", folder)
    Image.new("RGB", (90, 60), (200, 120, 160)).save(folder / "probe.png")
    chapter = nbformat.read(folder / "01_data.ipynb", as_version=4)
    assert "{cite:p}" in chapter.cells[0].source + chapter.cells[1].source, "chapter 01 no longer cites first"
    chapter.cells.insert(0, nbformat.v4.new_markdown_cell(FIGURE_PROBE))
    nbformat.write(chapter, folder / "01_data.ipynb")
    with lab_as_make_lab_starts_it(tmp_path, str(folder)) as (url, token):
        news = get_json(f"{url}/lab/api/settings/@jupyterlab/apputils-extension:notification?token={token}",
                        time.monotonic() + 30, None, tmp_path / "lab.log")
        page = f"{url.replace('127.0.0.1', 'localhost')}/lab/tree/01_data.ipynb?token={token}"  # the one name resolved
        dom = chromium.dump_dom(page, budget_ms=60000).stdout
    assert news["schema"]["properties"]["fetchNews"]["default"] == "false"
    assert "jp-MarkdownCell" in dom, "the chapter did not open"
    reader = _RenderedText()
    reader.feed(dom)
    text = "".join(reader.parts)
    for syntax in ("{cite:p}", "{glue:text}", ":::{figure}"):
        assert syntax not in text, f"{syntax} shown as raw text"
    assert re.search(r'<figure[^>]*id="fig-lab-probe"', dom), "the figure directive was not rendered"
    assert "Jupyter news" not in text
