"""Shared plumbing for the benchmarks: timing, the machine's description, and result files.

Every benchmark measures its figures side by side in one process and reports ratios,
because absolute times on a shared 2-core machine move with the neighbours' load.
Each script writes its result, ``bench/results/<name>.json`` (kept in the repository:
figures, notes, the command, the machine and the date of the measurement);
``bench/run_all.py`` turns those files, and nothing else, into ``bench/RESULTS.md``.
A ``--quick`` run writes to ``bench/out/`` instead, so a check that the scripts work
never replaces a measurement.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: The latest full measurement of each benchmark, one JSON file per benchmark (committed).
RESULTS = HERE / "results"
#: Quick runs, run folders and other scratch (git-ignored).
SCRATCH = Path(os.environ.get("CYTOKIT_BENCH_OUT", HERE / "out"))


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small sizes, a minute or so")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for the JSON result (default bench/results; with --quick bench/out)")
    return p


def result_dir(out: Path | None, quick: bool) -> Path:
    """Where a result goes: ``out`` when given, else the committed results (scratch for a quick run)."""
    return out if out is not None else SCRATCH if quick else RESULTS


def synth_data(n_images: int, seed: int = 0) -> Path:
    """The synthetic dataset of ``cytokit synth`` under the temp folder (reused when complete)."""
    out = Path(tempfile.gettempdir()) / "cytokit-bench" / f"synth-{n_images}-seed{seed}"
    exe = Path(sys.executable).with_name("cytokit")
    cmd = [str(exe)] if exe.exists() else [shutil.which("cytokit") or "cytokit"]
    subprocess.run(cmd + ["synth", str(out), "--n-images", str(n_images), "--seed", str(seed), "--quiet"],
                   check=True, stdout=subprocess.DEVNULL)
    return out


def best_of(fn, repeat: int = 3) -> float:
    """Fastest of `repeat` wall-clock runs: the least disturbed by other load."""
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _commit() -> str:
    """The checkout measured: its short commit, ``+changes`` when the tree differs from it."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True, check=False).stdout.strip()
    head = git("rev-parse", "--short", "HEAD")
    return (head + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")) if head else ""


def _command() -> str:
    """How this benchmark was started, from the project's root (with the Keras backend when one was chosen)."""
    backend = [f"KERAS_BACKEND={os.environ['KERAS_BACKEND']}"] if os.environ.get("KERAS_BACKEND") else []
    return " ".join(backend + ["python", *sys.argv]).replace(str(HERE.parent) + "/", "")


def machine() -> dict:
    """What the figures were measured on."""
    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError):
        mem_gb = float("nan")
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gb": round(mem_gb, 1),
            "python": platform.python_version(), "load_avg_1m": round(os.getloadavg()[0], 2),
            "nice": os.nice(0)}


class Report:
    """The figures of one benchmark: printed as they come, saved as JSON at the end.

    A note that explains the figures belongs in the benchmark's script (``report.note``),
    never in RESULTS.md, which is rewritten whole from the results.
    """

    def __init__(self, name: str, title: str, quick: bool = False):
        self.name, self.title, self.quick = name, title, quick
        self.rows: list[dict] = []
        self.notes: list[str] = []
        self.table: dict | None = None
        self.load_before = round(os.getloadavg()[0], 2)
        self.started = time.perf_counter()
        print(f"== {title}{' (quick)' if quick else ''}", flush=True)

    def figure(self, what: str, value: float, unit: str, ratio: float | None = None,
               ratio_of: str = "", target: str = "", met: bool | None = None) -> None:
        """One measured figure; `ratio` compares it with `ratio_of` (a reference or a ceiling)."""
        row = {"what": what, "value": float(value), "unit": unit, "ratio": None if ratio is None else float(ratio),
               "ratio_of": ratio_of, "target": target, "met": None if met is None else bool(met)}
        self.rows.append(row)
        text = f"  {what}: {value:,.4g} {unit}"
        if ratio is not None:
            text += f"  ({ratio:.2f}x {ratio_of})"
        if target:
            text += f"  target {target}: {'met' if met else 'NOT met'}"
        print(text, flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)

    def show_table(self, header: list[str], rows: list[list[str]]) -> None:
        """A table of text cells that RESULTS.md shows instead of the figures (e.g. two checkouts side by side)."""
        self.table = {"header": list(header), "rows": [[str(c) for c in r] for r in rows]}

    def save(self, out: Path | None = None) -> Path:
        out = result_dir(out, self.quick)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{self.name}.json"
        payload = {"name": self.name, "title": self.title, "quick": self.quick,
                   "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
                   "commit": _commit(), "machine": {**machine(), "load_avg_1m_before": self.load_before},
                   "seconds": round(time.perf_counter() - self.started, 1),
                   "command": _command(),
                   "rows": self.rows, "notes": self.notes}
        if self.table:
            payload["table"] = self.table
        path.write_text(json.dumps(payload, indent=2) + "\n")
        return path
