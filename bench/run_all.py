"""Run the benchmarks one after another and write ``bench/RESULTS.md`` from their results.

``bench/RESULTS.md`` is generated, whole, from ``bench/results/<name>.json``: one section per
name in ``ORDER``, each with the date of its measurement, the checkout, the command and the
machine, its figures and the notes its script printed. Nothing in it is typed by hand, so a
note that explains a figure lives in the benchmark's script. A benchmark joins by adding
its name here and saving its result with ``_common.Report`` (see bench/README.md).

One at a time, so no benchmark competes with another for the cores. ``--quick`` runs the
small versions (a few minutes in all) into ``bench/out/`` and writes ``bench/out/RESULTS.md``,
leaving the measurements alone; the full set takes about 50 minutes on a 2-core CPU, most
of it the demo profile of the book. Benchmarks that need another machine or a second
checkout (``ELSEWHERE``) are not run here; their last result is shown as it is.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402

HERE = Path(__file__).resolve().parent
#: Every benchmark's result, in the order of RESULTS.md. ``bench/<name>.py`` makes ``<name>``
#: unless ``ELSEWHERE`` says how it is made.
ORDER = ["pipeline", "cache", "augmentation", "training", "study_predict", "lime_speed", "xai_robustness",
         "xai_sections", "scale", "sim_to_real", "coverage", "book", "hostile", "training_gpu", "gpu_protocol"]
#: Results that ``make bench`` does not make, and how each is made instead.
ELSEWHERE = {
    "hostile": "`python bench/hostile.py --against CHECKOUT --against-name NAME` compares this checkout with "
               "another (e.g. a release) side by side",
    "training_gpu": "`KERAS_BACKEND=jax python bench/training.py --gpu --images DIR` on a GPU machine; "
                    "its `bench/results/training_gpu.json` is copied back",
    "gpu_protocol": "`python bench/gpu_protocol.py` on a GPU machine (sized for one 10-minute slot on an H200; "
                    "`KERAS_BACKEND=jax` where TensorFlow sees no GPU); its `bench/results/gpu_protocol.json` is "
                    "copied back",
}


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def _cells(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def figures_table(result: dict) -> list[str]:
    """The result's figures, or the text table its script chose to show instead."""
    if result.get("table"):
        t = result["table"]
        return [_cells(t["header"]), "|---|" + "---:|" * (len(t["header"]) - 1)] + [_cells(r) for r in t["rows"]]
    lines = ["| figure | value | ratio | target |", "|---|---:|---|---|"]
    for r in result["rows"]:
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.3g}x {r['ratio_of']}"
        target = "" if not r["target"] else f"{r['target']}: {'met' if r['met'] else '**not met**'}"
        lines.append(f"| {r['what']} | {_fmt(r['value'])} {r['unit']} | {ratio} | {target} |")
    return lines


def provenance(result: dict) -> str:
    """When, where and how the figures were measured (what a result did not record is left out)."""
    m = result["machine"]
    when = f"Measured {result['date']}" if result.get("date") else "Measured on a date not recorded"
    at = f" at commit {result['commit']}" if result.get("commit") else ""
    about = [m["cpu"], f"{m['cores']} cores"] + ([f"{m['memory_gb']} GB"] if m.get("memory_gb") else []) + [
        f"Python {m['python']}"]
    if m.get("load_avg_1m_before") is not None:
        about.append(f"load {m['load_avg_1m_before']} at the start and {m['load_avg_1m']} at the end")
    elif m.get("load_avg_1m") is not None:
        about.append(f"load {m['load_avg_1m']} at the end")
    if m.get("nice"):  # a run given priority over (or below) the machine's other jobs says so
        about.append(f"at nice {m['nice']}")
    took = f"; {result['seconds']:.0f} s" if result.get("seconds") is not None else ""
    return (f"{when}{at} with `{result['command']}`{' (quick)' if result['quick'] else ''} — "
            f"{', '.join(about)}{took}")


def section(result: dict) -> str:
    lines = [f"## {result['title']}", "", provenance(result), ""] + figures_table(result) + [""]
    lines += [f"- {n}" for n in result["notes"]]
    return "\n".join(lines).rstrip() + "\n"


def script_title(name: str) -> str:
    """The first line of ``bench/<name>.py``'s docstring (the name when there is no script)."""
    script = HERE / f"{name}.py"
    if script.is_file():
        doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")))
        if doc:
            return doc.splitlines()[0].rstrip(".")
    return name


def missing_section(name: str) -> str:
    how = ELSEWHERE.get(name, f"`python bench/{name}.py`")
    return f"## {script_title(name)}\n\nNot measured yet. It is measured by {how}.\n"


def render(results: Path, quick: bool = False) -> str:
    """RESULTS.md: a section per name in ORDER, from ``results/<name>.json``."""
    try:
        source = results.resolve().relative_to(HERE.parent).as_posix()
    except ValueError:
        source = str(results)
    parts = ["# Benchmark results", "",
             f"Generated by `python bench/run_all.py --write-only{' --quick' if quick else ''}` from `{source}/*.json` "
             "(`make bench" + (" QUICK=1" if quick else "") + "` measures and writes them); do not edit by hand: "
             "a note belongs in its benchmark's script. Every ratio compares figures measured side by side in the "
             "same run. Absolute times on a shared machine move with the neighbours' load (given with each "
             "section); the ratios move much less.", ""]
    for name in ORDER:
        f = results / f"{name}.json"
        parts.append(section(json.loads(f.read_text(encoding="utf-8"))) if f.is_file() else missing_section(name))
    return "\n".join(parts).rstrip() + "\n"


def write_results(results: Path, quick: bool) -> Path:
    """bench/RESULTS.md for the committed results; beside them for any other folder (a quick run's)."""
    path = HERE / "RESULTS.md" if results.resolve() == _common.RESULTS.resolve() else results / "RESULTS.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(results, quick), encoding="utf-8")
    return path


def main() -> None:
    p = _common.parser(__doc__.splitlines()[0])
    runnable = [n for n in ORDER if n not in ELSEWHERE]
    p.add_argument("--only", nargs="*", default=runnable, help="benchmarks to run (default: all that run here)")
    p.add_argument("--write-only", action="store_true", help="only rewrite RESULTS.md from the results")
    args = p.parse_args()
    results = _common.result_dir(args.out, args.quick)
    failed = []
    if not args.write_only:
        for name in [n for n in runnable if n in args.only]:
            start = time.perf_counter()
            cmd = [sys.executable, str(HERE / f"{name}.py")] + (["--out", str(args.out)] if args.out else []) + (
                ["--quick"] if args.quick else [])
            if subprocess.run(cmd, check=False).returncode:
                failed.append(name)
            print(f"-- {name}: {time.perf_counter() - start:.0f} s", flush=True)
    print(f"wrote {write_results(results, args.quick)}")
    if failed:
        sys.exit(f"benchmarks failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
