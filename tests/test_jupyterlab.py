"""Re-running the chapters in JupyterLab: every notebook runs top to bottom in the ``cytokit`` kernel.

As a reader pressing "Run all": each source notebook with its committed parameters (the
demo profile's values, ``run_dir = None`` meaning ``runs/demo``), from ``notebooks/`` as
the working folder, in the kernel ``make env`` registers, in the book's order. It runs in
a temporary copy of the project (``CYTOKIT_HOME``) so a reader's own ``runs/demo`` is
never touched; the embedded synthetic data already generated is shared by symlink.
Then a JupyterLab server started as ``make lab`` starts it must list that kernel.
"""

from __future__ import annotations

import hashlib
import json
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


def get_json(url: str, deadline: float, proc: subprocess.Popen, log: Path):
    """GET ``url`` until it answers, the server exits, or the deadline passes."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.load(response)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    pytest.fail(f"jupyter lab did not answer {url.split('?')[0]} in time:\n{log.read_text()[-3000:]}")


def test_jupyterlab_as_make_lab_starts_it_lists_the_cytokit_kernel(tmp_path):
    require_kernel()
    jupyter = Path(sys.executable).with_name("jupyter")
    if not jupyter.exists():
        pytest.skip(f"{jupyter} not found: `make env` installs JupyterLab into .venv")
    port, token = free_port(), secrets.token_hex(16)
    cmd = [str(jupyter), "lab", "notebooks/", "--no-browser", f"--port={port}", f"--ServerApp.token={token}"] + (["--allow-root"] if os.geteuid() == 0 else [])
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}  # server files stay out of $HOME
    before = folder_digest(ROOT / "notebooks")
    log = tmp_path / "lab.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        specs = get_json(f"http://127.0.0.1:{port}/api/kernelspecs?token={token}", time.monotonic() + 90, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert KERNEL in specs["kernelspecs"], f"kernels listed: {sorted(specs['kernelspecs'])}"
    assert specs["kernelspecs"][KERNEL]["spec"]["display_name"] == "cytokit (Python 3)"
    assert folder_digest(ROOT / "notebooks") == before
