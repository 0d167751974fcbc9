"""The synthetic dataset on disk: generated once, atomically, and recognised by its SYNTH.json."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from numbers import Integral
from pathlib import Path

import cv2
import numpy as np

from cytokit import io
from cytokit.data.outputs import check_folder_output
from cytokit.data.synthetic import fitted
from cytokit.data.synthetic.mark import GENERATOR, META_FILE, read_meta
from cytokit.data.synthetic.layout import class_counts, parse, relpath
from cytokit.data.synthetic.scene import check_settings, render
from cytokit.data.taxonomy import CODES
from cytokit.progress import bar as progress_bar

#: Version of the drawing: 2 is fitted to real smears (calibration.json); 1 was drawn by eye.
VERSION = 2
_CHUNK = 48
#: Fewest images: 3 per class, so chapter 01 can give every class a train, val and test image.
MIN_IMAGES = 3 * len(CODES)
#: Most images: the real dataset's 171,374 with room to spare (each takes a file and a job).
MAX_IMAGES = 2_000_000
#: Image side in pixels: the drawing's smallest and the largest any chapter reads.
MIN_SIZE, MAX_SIZE = 32, 1024



#: Modules of the generator that never decide a pixel (the dataset's mark, the fitting code): left out of
#: :func:`generator_digest`, so a change to them keeps a measurement of the images valid.
NOT_DRAWING = ("mark.py", "measure.py", "calibration.py")


def generator_digest(package=None) -> str:
    """SHA-256 of the generator's code (comments and docstrings left out) and data files: what a
    measurement of its images holds for. ``package``: another copy's ``cytokit/data/synthetic`` folder."""
    folder = Path(package) if package is not None else Path(__file__).parent
    h = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.name in NOT_DRAWING:
            continue
        if path.suffix == ".py":
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                body = getattr(node, "body", None)
                if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                        and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                    node.body = body[1:] or [ast.Pass()]
            h.update(path.name.encode() + ast.dump(tree).encode())
        elif path.suffix == ".json":
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def _jpeg_quality(seed, pos, index) -> int:
    """Per-image JPEG quality, in the fitted range (the real sample's), from its own stream so render() is
    unaffected."""
    lo, hi = fitted.field(fitted.shipped())["jpeg_quality"]
    return int(np.random.default_rng([int(seed), pos, int(index), 1]).integers(int(lo), int(hi) + 1))


def encode(code, index, seed, size, difficulty) -> bytes:
    """The JPEG bytes of one synthetic image, exactly as the dataset holds them."""
    img = render(code, index, seed, size, difficulty).image
    q = _jpeg_quality(seed, CODES.index(code), index)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for {code} {index}")
    return buf.tobytes()


def _write_chunk(root: str, jobs, seed, size, difficulty) -> int:
    """Worker: render and write a list of (code, index) images; returns how many.

    OpenCV runs single-threaded meanwhile (the parallelism is over processes); the
    caller's setting is restored afterwards.
    """
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        for code, index in jobs:
            path = Path(root, relpath(code, index))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode(code, index, seed, size, difficulty))
    finally:
        cv2.setNumThreads(threads)
    return len(jobs)


def _meta(n_images, seed, size, difficulty) -> dict:
    return {
        "generator": GENERATOR,
        "version": VERSION,
        "seed": int(seed),
        "size": int(size),
        "difficulty": float(difficulty),
        "n_images": int(n_images),
        "counts": class_counts(n_images),
    }


def _is_cached(out: Path, meta: dict) -> bool:
    """True if `out` already holds a complete dataset made with these settings."""
    old = read_meta(out)
    if old is None or {k: old.get(k) for k in meta} != meta:
        return False
    return sum(1 for _ in out.rglob("*.jpg")) == meta["n_images"]


def generate(
    out_dir,
    n_images: int,
    seed: int = 0,
    size: int = 250,
    difficulty: float = 0.5,
    progress: bool = True,
    workers: int | None = None,
) -> Path:
    """Write a synthetic dataset of `n_images` JPEGs in the real layout; return its folder.

    Refuses to touch a non-empty folder unless it already holds this exact dataset
    (then returns at once). Files are written to a hidden temporary sibling folder
    (``.NAME.partial-*``) renamed into place at the end, so an interrupted run never
    leaves a partial dataset at `out_dir` (a killed process may leave that sibling).
    The bytes do not depend on `workers` (default: all CPUs, over processes).
    """
    check_request(n_images, size, difficulty)
    out = Path(out_dir).expanduser().absolute()
    meta = _meta(n_images, seed, size, difficulty)
    if _is_cached(out, meta):
        return out
    _refuse_nonempty(out)
    check_folder_output(out, "the synthetic dataset's folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    tmp.chmod(0o777 & ~io.umask())  # mkdtemp makes it private; the dataset should not be
    try:
        _render_all(tmp, meta, progress, workers)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        _move_into_place(tmp, out, meta)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def check_request(n_images, size, difficulty) -> None:
    """Refuse a dataset size or image size outside the bounds, before anything is built."""
    if isinstance(n_images, bool) or not isinstance(n_images, Integral) or not MIN_IMAGES <= n_images <= MAX_IMAGES:
        raise ValueError(f"n_images={n_images!r} must be an integer from {MIN_IMAGES} (3 per class) "
                         f"to {MAX_IMAGES:,}")
    if isinstance(size, bool) or not isinstance(size, Integral) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size={size!r} must be an integer from {MIN_SIZE} to {MAX_SIZE} pixels")
    check_settings(size, difficulty)


def _refuse_nonempty(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(
            f"{out} exists and is not an empty folder, nor a synthetic dataset with these "
            "settings; refusing to write into it. Choose a new folder or remove it yourself."
        )


def _move_into_place(tmp: Path, out: Path, meta: dict) -> None:
    """Atomic rename; a concurrent run that finished first with the same settings wins."""
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    try:
        os.rename(tmp, out)
    except OSError:
        if not _is_cached(out, meta):
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def _jobs(counts: dict) -> list[tuple[str, int]]:
    return [(code, i) for code in CODES for i in range(1, counts[code] + 1)]


def _render_all(root: Path, meta: dict, progress: bool, workers: int | None) -> None:
    """Render every image into `root`, in-process or over a pool of processes."""
    jobs = _jobs(meta["counts"])
    chunks = [jobs[i : i + _CHUNK] for i in range(0, len(jobs), _CHUNK)]
    args = (str(root), meta["seed"], meta["size"], meta["difficulty"])
    workers = max(1, min(int(workers or os.cpu_count() or 1), len(chunks)))
    with progress_bar(total=len(jobs), desc="synth", unit="img", enabled=progress) as bar:
        if workers == 1:
            for ch in chunks:
                bar.update(_write_chunk(args[0], ch, *args[1:]))
            return
        import multiprocessing as mp

        # spawn, not fork: the parent may hold TensorFlow's threads (fork would be unsafe)
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_write_chunk, args[0], ch, *args[1:]) for ch in chunks]
            try:
                for f in as_completed(futures):
                    bar.update(f.result())
            except BaseException:
                for f in futures:
                    f.cancel()
                raise


def masks(data_dir, relpath: str) -> tuple[np.ndarray, np.ndarray]:
    """(cell_mask, nucleus_mask) of a synthetic image, regenerated from SYNTH.json."""
    meta = read_meta(data_dir)
    if meta is None or meta.get("generator") != GENERATOR:
        raise ValueError(
            f"{data_dir} is not a synthetic dataset (no {META_FILE}); masks exist only for synthetic data"
        )
    code, index = parse(relpath)
    if not 1 <= index <= meta["counts"].get(code, 0):
        raise ValueError(f"{relpath!r}: {code} has {meta['counts'].get(code, 0)} images in {data_dir}")
    cell = render(code, index, meta["seed"], meta["size"], meta["difficulty"])
    return cell.cell_mask, cell.nucleus_mask


def main_synth(out_dir, n_images, seed, size, difficulty, progress=True) -> Path:
    """CLI entry: generate (or find cached) and print a one-line summary."""
    t0 = time.perf_counter()
    path = generate(out_dir, n_images, seed=seed, size=size, difficulty=difficulty, progress=progress)
    counts = read_meta(path)["counts"]
    n, k, secs = sum(counts.values()), sum(1 for v in counts.values() if v), time.perf_counter() - t0
    print(f"synthetic dataset: {n} images, {k} classes in {path} ({secs:.1f} s)")
    return path
