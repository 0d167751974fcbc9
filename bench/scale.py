"""Scale of the index: index + validate + split time per file and peak memory vs dataset size.

For each size (1k, 10k, 100k files; --quick: 1k and
10k) a synthetic tree in the real dataset's layout is written under /tmp -- one folder per
class code, range folders such as ``BLA/0001-1000/`` for the classes the study had more
than 1,000 images of, names ``BLA_00001.jpg``, the real class distribution scaled with
:func:`cytokit.data.synthetic.class_counts` -- and a fresh subprocess runs exactly what chapter
01 and ``cytokit validate`` run: ``data.index``, ``data.validate`` (full decode, sha1,
thread pool, tqdm bar) and ``data.split``. One subprocess per size makes its peak RSS
(``ru_maxrss``) that size's own. The files' bytes are a pool of the real sample's
250x250 JPEGs (``../shared/real-sample``, about 40 KB each) when present, else of
synthetic 250x250 JPEGs (about 8-10 KB), so every file decodes as a real one does.

Targets: time per file at the largest size <= 1.5x that at 1k; memory flat -- the
manifest itself costs a few hundred bytes a row, so at most 10 MB per 10,000 files
(a decoded 250x250 image is 183 KB: keeping anything per image would show as far more).
Files are read from a warm page cache (they were just written); a cold disk adds its
read time to validation.

    .venv/bin/python bench/scale.py [--quick] [--sizes 171374] [--source real|synth]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import Report, parser, peak_rss_mb  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
REAL_SAMPLE = ROOT.parent / "shared" / "real-sample"
FULL_SIZES = (1_000, 10_000, 100_000)
QUICK_SIZES = (1_000, 10_000)
POOL = 64              # distinct images whose bytes are repeated over the tree
RATIO_TARGET = 1.5     # per-file time, largest size vs 1k
MB_PER_10K_TARGET = 10.0


# ---------------------------------------------------------------------- the tree


def image_pool(source: str) -> tuple[list[bytes], str]:
    """Bytes of a few 250x250 JPEGs, and a sentence saying what they are."""
    if source in ("auto", "real") and REAL_SAMPLE.is_dir():
        files = sorted(REAL_SAMPLE.rglob("*.jpg"))
        step = max(1, len(files) // POOL)
        pool = [f.read_bytes() for f in files[::step][:POOL]]
        if pool:
            return pool, (f"{len(pool)} real-sample JPEGs (250x250, mean {_mean_kb(pool):.0f} KB) "
                          "repeated over the tree")
    if source == "real":
        raise SystemExit(f"--source real: {REAL_SAMPLE} not found")
    from cytokit.data import synthetic
    from cytokit.data.taxonomy import CODES

    pool = [synthetic.encode(code, i, 0, 250, 0.5) for code in CODES for i in (1, 2, 3)]
    return pool, (f"{len(pool)} synthetic JPEGs (cytokit.data.synthetic, 250x250, mean {_mean_kb(pool):.0f} KB) "
                  "repeated over the tree")


def _mean_kb(pool) -> float:
    return sum(map(len, pool)) / len(pool) / 1024


def write_tree(root: Path, n_files: int, pool: list[bytes]) -> float:
    """Write ``n_files`` images in the real layout and class distribution; returns seconds."""
    from cytokit.data import synthetic

    start = time.perf_counter()
    made = set()
    k = 0
    for code, count in synthetic.class_counts(n_files).items():
        for i in range(1, count + 1):
            rel = synthetic.relpath(code, i)
            folder = os.path.dirname(rel)
            if folder not in made:
                os.makedirs(root / folder, exist_ok=True)
                made.add(folder)
            with open(root / rel, "wb") as fh:
                fh.write(pool[k % len(pool)])
            k += 1
    return time.perf_counter() - start


# -------------------------------------------------------------- the measured child


def child(data_dir: str, repeat: int) -> None:
    """Index, validate and split ``data_dir``; print one JSON line of timings and peak RSS."""
    import pandas  # noqa: F401 - imported before the baseline, as in any chapter
    import tqdm  # noqa: F401

    from cytokit import data

    out = {"baseline_mb": _current_rss_mb()}

    def timed(name, fn):
        best, cpu, result = float("inf"), float("inf"), None
        for _ in range(max(1, repeat)):
            result = None  # drop the previous result before the next run
            start, start_cpu = time.perf_counter(), time.process_time()
            result = fn()
            best = min(best, time.perf_counter() - start)
            cpu = min(cpu, time.process_time() - start_cpu)
        out[f"{name}_s"] = best
        out[f"{name}_cpu_s"] = cpu
        out[f"{name}_peak_mb"] = peak_rss_mb()
        return result

    idx = timed("index", lambda: data.index(data_dir))
    checked = timed("validate", lambda: data.validate(data_dir, idx, expected_size=(250, 250)))
    manifest = timed("split", lambda: data.split(checked, seed=0))
    out.update(n=len(manifest), peak_mb=peak_rss_mb(), load=os.getloadavg()[0],
               status=checked["status"].value_counts().to_dict(),
               splits=manifest["split"].value_counts().to_dict(),
               manifest_mb=sum(manifest.memory_usage(deep=True)) / 2**20)
    print(json.dumps(out), flush=True)


def _current_rss_mb() -> float:
    """Resident memory now (VmRSS), the baseline the peak is compared with."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return peak_rss_mb()


def measure(tree: Path, repeat: int) -> tuple[dict, str]:
    """Run :func:`child` in a fresh interpreter; its result and its stderr (the progress bars)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(tree), "--repeat", str(repeat)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        raise SystemExit(f"measuring {tree} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


# ---------------------------------------------------------------------------- main


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", help="file counts (default 1k 10k 100k; --quick 1k 10k)")
    p.add_argument("--source", choices=("auto", "real", "synth"), default="auto",
                   help="bytes of the files: the real sample's JPEGs (auto: when present) or synthetic ones")
    p.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()), help="where the trees go (default /tmp)")
    p.add_argument("--child", help=argparse_hidden())
    p.add_argument("--repeat", type=int, default=1, help=argparse_hidden())
    args = p.parse_args()
    if args.child:
        return child(args.child, args.repeat)

    tmp = args.tmp.resolve()
    if tmp.is_relative_to(ROOT) or tmp.is_relative_to(ROOT.parent / "shared"):
        raise SystemExit(f"--tmp {tmp}: the trees must go outside the project (e.g. /tmp)")
    sizes = tuple(sorted(args.sizes)) if args.sizes else (QUICK_SIZES if args.quick else FULL_SIZES)
    default = sizes in (FULL_SIZES, QUICK_SIZES)
    name = "scale" if default else "scale_" + "_".join(map(str, sizes))
    report = Report(name, "Scale of the index: index + validate + split per file, peak memory", quick=args.quick)
    pool, what = image_pool(args.source)
    report.note(f"files: {what}; layout and class distribution of the real dataset "
                "(cytokit.data.synthetic.class_counts / relpath); read from a warm page cache")

    results = {}
    for n in sizes:
        tree = Path(tempfile.mkdtemp(prefix=f"cytokit-scale-{n}-", dir=tmp))
        try:
            wrote = write_tree(tree, n, pool)
            # 1k is quick and noisy: best of 3 there, one run for the larger sizes.
            res, bars = measure(tree, repeat=3 if n <= 2_000 else 1)
        finally:
            shutil.rmtree(tree, ignore_errors=True)
        res["bars"] = bars
        results[n] = res
        print(f"  [{n:,} files written in {wrote:.1f} s; statuses {res['status']}]", flush=True)
        if res["n"] != n or set(res["status"]) != {"ok"}:
            report.note(f"{n:,} files: expected {n:,} ok rows, got {res['n']:,} with statuses {res['status']}")

    stages = ("index", "validate", "split")
    ref, big = results[sizes[0]], results[sizes[-1]]

    def per_file(n, key="s"):
        return sum(results[n][f"{s}_{key}"] for s in stages) / n

    for n, res in results.items():
        first = n == sizes[0]
        for stage in stages:
            us = res[f"{stage}_s"] / n * 1e6
            ratio = None if first else us / (ref[f"{stage}_s"] / sizes[0] * 1e6)
            report.figure(f"{stage} at {n:,} files", us, "us/file", ratio=ratio,
                          ratio_of="" if first else f"per file at {sizes[0]:,}")
        report.figure(f"index + validate + split at {n:,} files (wall)", per_file(n) * 1e6, "us/file",
                      ratio=None if first else per_file(n) / per_file(sizes[0]),
                      ratio_of="" if first else f"per file at {sizes[0]:,}")
        report.figure(f"index + validate + split at {n:,} files (CPU, all threads)", per_file(n, "cpu_s") * 1e6,
                      "us/file", ratio=None if first else per_file(n, "cpu_s") / per_file(sizes[0], "cpu_s"),
                      ratio_of="" if first else f"per file at {sizes[0]:,}")
        report.figure(f"peak RSS at {n:,} files", res["peak_mb"], "MB")
        report.figure(f"peak RSS above the RSS after imports at {n:,} files",
                      res["peak_mb"] - res["baseline_mb"], "MB")
        report.figure(f"manifest in memory at {n:,} files", res["manifest_mb"], "MB")
        report.note(f"{n:,} files: index {res['index_s']:.2f} s, validate {res['validate_s']:.1f} s, "
                    f"split {res['split_s']:.2f} s wall; peak RSS after each "
                    f"{res['index_peak_mb']:.0f} / {res['validate_peak_mb']:.0f} / {res['split_peak_mb']:.0f} MB; load average {res['load']:.1f} on "
                    f"{os.cpu_count()} cores while it ran")

    if len(sizes) > 1:
        cpu_ratio = per_file(sizes[-1], "cpu_s") / per_file(sizes[0], "cpu_s")
        wall_ratio = per_file(sizes[-1]) / per_file(sizes[0])
        report.figure(f"per-file CPU time, {sizes[-1]:,} vs {sizes[0]:,} files", cpu_ratio, "x",
                      target=f"<= {RATIO_TARGET}x", met=cpu_ratio <= RATIO_TARGET)
        report.figure(f"per-file wall time, {sizes[-1]:,} vs {sizes[0]:,} files", wall_ratio, "x",
                      target=f"<= {RATIO_TARGET}x", met=wall_ratio <= RATIO_TARGET)
        growth = (big["peak_mb"] - ref["peak_mb"]) / (sizes[-1] - sizes[0]) * 10_000
        report.figure("peak RSS growth", growth, "MB per 10k files",
                      target=f"<= {MB_PER_10K_TARGET:g} MB per 10k files", met=growth <= MB_PER_10K_TARGET)
        report.note("wall time on this shared 2-core machine moves with the neighbours' load (see the load "
                    "averages); CPU time per file is the steadier measure of how the work scales")

    shown = {stage: "indexing" in big["bars"] if stage == "index" else "validating images" in big["bars"]
             for stage in ("index", "validate")}
    report.note(f"progress bar at {sizes[-1]:,} files: index {'shown' if shown['index'] else 'none'}, "
                f"validate {'shown' if shown['validate'] else 'none'} (tqdm on stderr)")
    report.save(args.out)


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
