"""``cytokit run --resume`` after a real SIGKILL in the middle of a chapter's training.

The book's own chapters 01 and 02 run on a tiny synthetic tree (160 images, 32 px); the
``cytokit run`` process is killed once chapter 02 has backed up two epochs. The resumed
run keeps chapter 01 untouched, and chapter 02 continues its training from the epoch
after the last backed-up one instead of starting again.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow

EPOCHS = 12
ARGS = ["--only", "01", "02", "--no-book", "-p", f"epochs={EPOCHS}", "-p", "image_size=32",
        "-p", "expected_size=64"]


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            pass
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _backed_up_epochs(run_dir: Path) -> int:
    meta = run_dir / "02_baseline" / "backup" / "training_metadata.json"
    try:
        return int(json.loads(meta.read_text())["epoch"])
    except (OSError, ValueError, KeyError):
        return 0


def _epoch_lines(notebook: Path) -> list[int]:
    nb = nbformat.read(notebook, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    return [int(line.split()[1]) for line in text.splitlines() if line.startswith("epoch ")]


def _snapshot(folder: Path) -> dict:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.iterdir()) if p.is_file()}


def test_resume_after_a_kill_keeps_finished_chapters_and_continues_training(tmp_path):
    from cytokit.data import synthetic as synth

    data = synth.generate(tmp_path / "data", 160, seed=0, size=64, progress=False, workers=1)
    run_dir = tmp_path / "run"
    cli = [sys.executable, "-m", "cytokit.cli", "run"]
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(cli + ["--profile", "smoke", "--out", str(run_dir), "--data-dir", str(data)] + ARGS,
                             cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    kernels = set()
    try:
        deadline = time.time() + 300
        while _backed_up_epochs(run_dir) < 2 and time.time() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert first.poll() is None, "the run ended before it could be killed:\n" + (tmp_path / "first.log").read_text()[-3000:]
        assert _backed_up_epochs(run_dir) >= 2, "chapter 02 did not back up two epochs in time"
        kernels |= _descendants(first.pid)
        first.send_signal(signal.SIGKILL)
        first.wait()
        # the chapter's kernel notices that its parent is gone and exits by itself
        deadline = time.time() + 30
        while any(_alive(p) for p in kernels) and time.time() < deadline:
            time.sleep(0.2)
        assert not any(_alive(p) for p in kernels), "the killed run's kernel kept running"
    finally:
        for pid in kernels | {first.pid}:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        log.close()

    backed_up = _backed_up_epochs(run_dir)
    assert 2 <= backed_up < EPOCHS, "the kill did not land during chapter 02's training"
    assert not (run_dir / "02_baseline" / "chapter-run.json").exists()
    chapter01 = _snapshot(run_dir / "01_data")
    assert {"01_data.ipynb", "chapter-run.json", "metrics.json", "manifest.csv"} <= set(chapter01)

    second = subprocess.run(cli + ["--resume", str(run_dir), "--data-dir", str(data)] + ARGS,
                            cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "01_data is up to date, kept" in second.stdout
    assert "02_baseline done" in second.stdout
    assert _snapshot(run_dir / "01_data") == chapter01, "chapter 01 was executed again"

    chapter02 = run_dir / "02_baseline"
    assert (chapter02 / "chapter-run.json").is_file() and (chapter02 / "model.keras").is_file()
    assert not (chapter02 / "backup").exists()
    epochs = _epoch_lines(chapter02 / "02_baseline.ipynb")
    assert epochs == list(range(backed_up + 1, EPOCHS + 1)), \
        f"chapter 02 trained epochs {epochs}, not the ones after the {backed_up} backed up"
    history = json.loads((chapter02 / "history.json").read_text())
    assert len(history["loss"]) == len(history["val_accuracy"]) == history["epochs_run"] == EPOCHS
    assert json.loads((run_dir / "run.json").read_text()).get("finished")
