"""Run every benchmark one after another and write ``bench/RESULTS.md`` from their results.

One at a time, so no benchmark competes with another for the cores. ``--quick`` runs
the small versions (a few minutes in all); the full set takes about 45 minutes on a
2-core CPU, most of it the demo profile of the book. GPU figures are not measured
here: ``bench/gpu/`` holds the last run on a GPU machine (see its ``gpu.txt``), and
they are copied into the table as they are.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402

HERE = Path(__file__).resolve().parent
ORDER = ["pipeline", "cache", "augmentation", "training", "lime_speed", "xai_robustness", "scale", "book"]
#: The one command for the GPU figures of the full profile; its result is copied from bench/gpu/.
GPU_PROTOCOL = "python bench/gpu_protocol.py"


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def section(result: dict) -> str:
    m = result["machine"]
    lines = [f"## {result['title']}", "",
             f"`{result['command']}`{' (quick)' if result['quick'] else ''} — {m['cpu']}, {m['cores']} cores, "
             f"{m['memory_gb']} GB, Python {m['python']}, load {m['load_avg_1m']} at the end; "
             f"{result['seconds']:.0f} s", "",
             "| figure | value | ratio | target |", "|---|---:|---|---|"]
    for r in result["rows"]:
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.3g}x {r['ratio_of']}"
        target = "" if not r["target"] else f"{r['target']}: {'met' if r['met'] else '**not met**'}"
        lines.append(f"| {r['what']} | {_fmt(r['value'])} {r['unit']} | {ratio} | {target} |")
    lines += [""] + [f"- {n}" for n in result["notes"]] + ([""] if result["notes"] else [])
    return "\n".join(lines)


def gpu_protocol_section(result: Path) -> str:
    """The full profile on one GPU: the measured section, or the command and "not measured" rows."""
    if result.is_file() and not json.loads(result.read_text())["quick"]:
        return section(json.loads(result.read_text()))
    rows = ["chapter 02: baseline epoch at 250 px, batch 32", "chapter 03: a trial's epoch at batch 32, 64, 128",
            "chapter 04: the augmented stream, alone and training", "parallel trials: 1, 2, 4, 8 workers on one GPU "
            "(trials/hour, ratio to 1 worker; goal >= 3x at 4)", "float32 vs mixed_bfloat16: images/s and validation "
            "accuracy on the same data", "projected wall time of the full profile (goal <= 8 h; the study: 44 min "
            "+ 6 d 5 h + 6.5 h)"]
    return "\n".join(["## The full profile on one GPU: chapter epochs, parallel trials, bfloat16, projected wall time",
                      "", f"Not measured: no GPU was available. The ready command on a GPU machine (sized for one "
                      f"10-minute slot on an H200; `KERAS_BACKEND=jax` where TensorFlow sees no GPU): "
                      f"`{GPU_PROTOCOL}`, then copy "
                      "`bench/out/gpu_protocol.json` to `bench/gpu/`.", "", "| figure | value | ratio | target |",
                      "|---|---:|---|---|"] + [f"| {r} | not measured |  |  |" for r in rows]) + "\n"


def write_results(out: Path, quick: bool) -> Path:
    parts = ["# Benchmark results", "",
             "Written by `make bench" + (" QUICK=1" if quick else "") + "` (`bench/run_all.py`); every ratio "
             "compares figures measured side by side in the same run. Absolute times on a shared "
             "machine move with the neighbours' load; the ratios move much less.", ""]
    for name in ORDER:
        f = out / f"{name}.json"
        if f.exists():
            parts.append(section(json.loads(f.read_text())))
    gpu = HERE / "gpu" / "training_gpu.json"
    if gpu.exists():
        card = "; ".join((HERE / "gpu" / "gpu.txt").read_text().strip().splitlines()[1:])
        parts += ["## On a GPU", "", f"Measured on a lent GPU machine ({card}). TensorFlow's GPU build could not "
                  "be installed there, so the same Keras network ran on the JAX backend "
                  "(`KERAS_BACKEND=jax python bench/training.py --gpu --images <real-sample>`).", "",
                  section(json.loads(gpu.read_text())).split("\n", 2)[2]]
    parts += [gpu_protocol_section(HERE / "gpu" / "gpu_protocol.json")]
    path = HERE / "RESULTS.md"
    parts += [kept_section(path, HOSTILE_HEADING)]
    path.write_text("\n".join(p for p in parts if p).rstrip() + "\n")
    return path


#: A section bench/hostile.py writes into RESULTS.md itself (``--write``); rewriting the file keeps it.
HOSTILE_HEADING = "## Hostile inputs"


def kept_section(path: Path, heading: str) -> str:
    """The section of ``path`` that starts with ``heading``, up to the next section ("" when absent)."""
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8")
    start = text.find(heading)
    if start < 0:
        return ""
    end = text.find("\n## ", start + len(heading))
    return text[start:end if end >= 0 else len(text)].rstrip() + "\n"


def main() -> None:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", default=ORDER, help="benchmarks to run (default: all)")
    p.add_argument("--write-only", action="store_true", help="only rewrite RESULTS.md from existing results")
    args = p.parse_args()
    failed = []
    if not args.write_only:
        for name in [n for n in ORDER if n in args.only]:
            start = time.perf_counter()
            cmd = [sys.executable, str(HERE / f"{name}.py"), "--out", str(args.out)] + (["--quick"] if args.quick else [])
            if subprocess.run(cmd, check=False).returncode:
                failed.append(name)
            print(f"-- {name}: {time.perf_counter() - start:.0f} s", flush=True)
    print(f"wrote {write_results(args.out, args.quick)}")
    if failed:
        sys.exit(f"benchmarks failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
