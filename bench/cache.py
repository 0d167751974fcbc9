"""Decoded-image caches: epoch 2 against epoch 1, in memory and on disk, and the memory each holds.

``cache_images`` keeps a split's decoded uint8 pixels after the first pass, so no JPEG is
decoded again (:mod:`cytokit.data.image_cache`): in memory, or in a memory-mapped file in
the run folder when the split does not fit (the real dataset at 250 px is about 32 GB of
uint8). Each mode runs in its own fresh process on the same 2,000 (``--quick``: 500)
synthetic 250x250 JPEGs of ``cytokit synth --seed 0``, at 250 px and batch 32, reading the
training batches in shuffled order as a chapter does: epoch 1 (decode everything, fill the
cache, then read), epochs 2 and 3 (read the cache), and the process's peak resident memory
above what it held before the first epoch. A no-cache process gives the reference epoch;
a second disk process shows a later chapter reusing the first one's file (its epoch 1
decodes nothing).

    .venv/bin/python bench/cache.py [--quick] [--images N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(Path(__file__).parent))
from _common import Report, parser, peak_rss_mb, synth_data  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZE = 250
BATCH = 32
EPOCHS = 3
#: The real dataset: 171,374 images; at 250 px in uint8 about 32 GB.
REAL_IMAGES = 171_374


def child(mode: str, data_dir: Path, cache_dir: Path) -> dict:
    """One mode in this (fresh) process: seconds of each epoch, images, memory before and after."""
    from cytokit import data
    from cytokit.data import pipeline

    manifest = data.split(data.validate(data_dir, data.index(data_dir), progress=False), seed=0)
    manifest["split"] = "train"  # every image in one split: the epoch the bench reads
    cache = False if mode == "none" else "disk" if mode.startswith("disk") else mode
    rss_now, anon_now = _status_mb("VmRSS"), _status_mb("RssAnon")
    ds = None
    seconds, n = [], 0
    for _ in range(EPOCHS):
        start = time.perf_counter()
        if ds is None:  # building a cached dataset fills the cache: part of epoch 1
            ds = pipeline.dataset(manifest, data_dir, "train", SIZE, BATCH, shuffle=True, seed=0, cache=cache,
                                  cache_dir=cache_dir)
        n = 0
        for x, _ in ds:
            n += int(x.shape[0])
            assert x.dtype.name == "uint8"
        seconds.append(time.perf_counter() - start)
    files = sorted(cache_dir.glob("*.npy")) if cache_dir.exists() else []
    return {"mode": mode, "images": n, "seconds": seconds, "rss_before_mb": rss_now, "peak_mb": peak_rss_mb(),
            "anon_before_mb": anon_now, "anon_after_mb": _status_mb("RssAnon"),
            "cache_bytes": sum(f.stat().st_size for f in files), "cache_files": [f.name for f in files]}


def _status_mb(field: str) -> float:
    """A line of /proc/self/status in MB: VmRSS (all resident pages), RssAnon (this process's own memory)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_child(mode: str, data_dir: Path, cache_dir: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--data-dir", str(data_dir),
                          "--cache-dir", str(cache_dir)], capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"bench/cache.py child {mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=None, help="number of JPEGs (default 2000, --quick 500)")
    p.add_argument("--child", help=argparse.SUPPRESS)  # one mode, in a fresh process
    p.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--cache-dir", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.data_dir, args.cache_dir)))
        return
    n_images = args.images or (500 if args.quick else 2000)
    report = Report("cache", "Decoded-image cache: epoch 2 vs epoch 1, in memory and on disk", quick=args.quick)
    data_dir = synth_data(n_images)
    report.note(f"data: {n_images} synthetic 250x250 JPEGs (cytokit synth --seed 0) in {data_dir}; {SIZE} px, "
                f"batch {BATCH}, shuffled as a chapter reads them; each mode in a fresh process")
    with tempfile.TemporaryDirectory(prefix="cytokit-cache-bench-") as tmp:
        cache_dir = Path(tmp) / "run" / "image_cache"
        res = {m: run_child(m, data_dir, cache_dir if m.startswith("disk") else Path(tmp) / m)
               for m in ("none", "memory", "disk", "disk reused")}
    plain = res["none"]
    reference = min(plain["seconds"])
    report.figure("no cache: an epoch (decode every JPEG)", n_images / reference, "images/s")
    for mode in ("memory", "disk", "disk reused"):
        r = res[mode]
        assert r["images"] == n_images == plain["images"]
        first, later = r["seconds"][0], min(r["seconds"][1:])
        label = {"memory": "memory", "disk": "disk (first run: fills the file)",
                 "disk reused": "disk, a later chapter reusing the file"}[mode]
        report.figure(f"{label}: epoch 1", n_images / first, "images/s", ratio=reference / first,
                      ratio_of="an uncached epoch")
        report.figure(f"{label}: epoch 2", n_images / later, "images/s", ratio=first / later, ratio_of="its epoch 1")
        report.figure(f"{label}: epoch 2 vs an uncached epoch", n_images / later, "images/s",
                      ratio=reference / later, ratio_of="an uncached epoch")
        split_mb = n_images * SIZE * SIZE * 3 / 1e6
        report.figure(f"{label}: peak resident memory above the process before epoch 1",
                      r["peak_mb"] - r["rss_before_mb"], "MB", ratio=(r["peak_mb"] - r["rss_before_mb"]) / split_mb,
                      ratio_of="the split's uint8 bytes")
        report.figure(f"{label}: the process's own (anonymous) memory after epoch {EPOCHS}, above before epoch 1",
                      r["anon_after_mb"] - r["anon_before_mb"], "MB",
                      ratio=(r["anon_after_mb"] - r["anon_before_mb"]) / split_mb, ratio_of="the split's uint8 bytes")
    report.figure("no cache: peak resident memory above the process before epoch 1",
                  plain["peak_mb"] - plain["rss_before_mb"], "MB")
    report.note("resident memory counts the pages of a memory-mapped cache file the process has read; they are the "
                "kernel's page cache, shared by every process that maps the file and given back under pressure, "
                "while anonymous memory is the process's own")
    disk = res["disk"]
    report.note(f"disk cache: {disk['cache_bytes'] / 1e6:.0f} MB in {', '.join(disk['cache_files'])} "
                f"(the split's uint8 pixels plus a 128-byte .npy header); the reused run found the same file: "
                f"{res['disk reused']['cache_files'] == disk['cache_files']}")
    real_gb = REAL_IMAGES * SIZE * SIZE * 3 / 1e9
    report.note(f"at the real dataset's {REAL_IMAGES:,} images the cache holds {real_gb:.1f} GB at 250 px: "
                "cache_images='auto' keeps it in memory only when that is at most half of the memory available, "
                "else on disk, where the page cache serves it and parallel tuner workers share one copy")
    report.note("epoch seconds: " + "; ".join(f"{m} " + ", ".join(f"{s:.2f}" for s in r["seconds"])
                                              for m, r in res.items()))
    report.note("epoch 1 of a cached split decodes every JPEG into the cache before reading it back (plus building "
                "the dataset); every later epoch, and every later dataset of the same images, reads the cache. "
                "'disk, a later chapter reusing the file' is a second process finding the first one's file: its "
                "epoch 1 decodes nothing")
    report.note("peak resident memory of 'memory' is the split's uint8 bytes plus the decoder's batches in flight; "
                "the float32 cache it replaces held four times the split's bytes (an earlier run of bench/pipeline.py: "
                "1500 MB of float32 for these 2,000 images)")
    print(report.save(args.out))


if __name__ == "__main__":
    main()
