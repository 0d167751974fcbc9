"""Decoded images kept for every epoch after the first: in memory when they fit, else a file on local disk.

The chapters' ``cache_images`` parameter: ``False`` decodes every JPEG every epoch;
``True`` or ``"memory"`` keeps the decoded uint8 pixels in memory; ``"disk"`` keeps them
in a memory-mapped ``.npy`` file in the run folder (the real dataset at 250 px is about
32 GB of uint8, more than most machines' memory); ``"auto"`` takes memory when the split
fits in half of the memory available now, else disk.

A disk cache is named after what it holds (the files' content hashes from the manifest,
the image size and this module's format), so another chapter or a later run with the same
images reuses it and a changed dataset never reads a stale one. It is written under an
exclusive lock to a temporary name and renamed when complete: a killed fill leaves no
file that looks finished, and processes filling the same cache at once (parallel tuner
workers) decode it once. It is never written beside the dataset. This module imports no
TensorFlow: :mod:`cytokit.data.pipeline` fills the caches.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
from contextlib import contextmanager
from pathlib import Path

import numpy as np

#: The values ``cache_images`` takes besides True and False.
MODES = ("memory", "disk", "auto")
#: Environment variable naming the folder of disk caches (the run folder's ``image_cache``).
CACHE_DIR_ENV = "CYTOKIT_CACHE_DIR"
#: That folder's name inside a run folder, shared by the run's chapters.
RUN_FOLDER = "image_cache"
#: Bump when the pixels a cache holds would change for the same files (decoder, resize, rounding).
FORMAT = 2
#: ``"auto"`` keeps a split in memory when it needs at most this share of the memory available.
MEMORY_SHARE = 0.5
#: Names this module writes: ``<split>-<size>px-<n>-<key>.npy`` and their temporary and lock files.
_OWN_NAME = re.compile(r"[a-z]+-\d+px-\d+-[0-9a-f]{20}\.npy(\.lock|\.tmp-\d+)?")


class CacheError(OSError):
    """A disk cache that cannot be written (no folder, no room); the message says what to set."""


def mode(cache) -> str | None:
    """``cache_images`` as one of None (no cache), ``"memory"``, ``"disk"`` or ``"auto"``; a Path means disk, there."""
    if cache is None or cache is False:
        return None
    if cache is True:
        return "memory"
    if isinstance(cache, str) and cache in MODES:
        return cache
    if isinstance(cache, os.PathLike):
        return "disk"
    raise ValueError(f"cache_images must be true, false or one of {', '.join(MODES)}; got {cache!r}")


def nbytes(n_images: int, image_size: int) -> int:
    """Bytes of ``n_images`` uint8 RGB images of ``image_size`` px."""
    return int(n_images) * int(image_size) ** 2 * 3


def available_memory() -> int:
    """Bytes of memory the system could give this process now (``MemAvailable``)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def choose(cache, n_images: int, image_size: int, available: int | None = None) -> str | None:
    """Where a split's decoded images go: None, ``"memory"`` or ``"disk"`` (``"auto"`` decided here)."""
    wanted = mode(cache)
    if wanted != "auto":
        return wanted
    room = available_memory() if available is None else int(available)
    return "memory" if nbytes(n_images, image_size) <= MEMORY_SHARE * room else "disk"


def folder(cache=None, cache_dir=None) -> Path:
    """The folder of disk caches: ``cache`` when it is a Path, else ``cache_dir``, else ``$CYTOKIT_CACHE_DIR``."""
    if isinstance(cache, os.PathLike):
        return Path(cache)
    found = cache_dir or os.environ.get(CACHE_DIR_ENV)
    if not found:
        raise CacheError(f"cache_images={cache!r} needs a folder for the decoded images: pass cache_dir or set "
                         f"{CACHE_DIR_ENV} (a chapter uses its run folder's image_cache)")
    return Path(found)


def run_folder(run_dir) -> Path:
    """Where a run keeps its disk caches: ``RUN_DIR/image_cache`` (never beside the dataset)."""
    return Path(run_dir) / RUN_FOLDER


def key(files, image_size: int) -> str:
    """A name for the decoded pixels of ``files`` at ``image_size``: changes when any file's content does.

    ``files`` are (relative path, content id) pairs; the manifest's SHA-1 of each file's
    bytes is the content id, or, without it, the size and modification time.
    """
    h = hashlib.sha1(f"cytokit image cache {FORMAT} {int(image_size)}\n".encode())
    for path, content in files:
        h.update(f"{path}\t{content}\n".encode())
    return h.hexdigest()[:20]


def path_for(directory, split: str | None, image_size: int, n_images: int, digest: str) -> Path:
    return Path(directory) / f"{split or 'all'}-{int(image_size)}px-{int(n_images)}-{digest}.npy"


@contextmanager
def _locked(path: Path):
    """An exclusive lock on ``path``'s lock file while the block runs (released if the process dies)."""
    lock = path.with_name(path.name + ".lock")
    with open(lock, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _readable(path: Path, shape: tuple) -> np.ndarray | None:
    """The finished cache at ``path`` mapped read-only, or None when it is absent or not of ``shape``."""
    if not path.is_file():
        return None
    try:
        images = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    return images if images.shape == shape and images.dtype == np.uint8 else None


def on_disk(path: Path, shape: tuple, fill) -> np.ndarray:
    """The read-only memory map of the cache at ``path``, filled first by ``fill(out)`` if it is not there.

    ``fill`` writes every image into the writable array it is given. Under the lock,
    leftovers of a killed fill of this cache are removed, the images are written to a
    temporary file, flushed to disk and renamed into place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        found = _readable(path, shape)
        if found is not None:
            return found
        for stale in path.parent.glob(path.name + ".tmp-*"):
            stale.unlink(missing_ok=True)
        need = int(np.prod(shape))
        free = _free_bytes(path.parent)
        if need > free:
            raise CacheError(f"{path.parent} has {free / 1e9:.1f} GB free; the image cache needs {need / 1e9:.1f} GB: "
                             "free space there, or set cache_images to false")
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        try:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
            fill(out)
            out.flush()
            del out
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return np.load(path, mmap_mode="r")


def _free_bytes(directory: Path) -> int:
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


def in_memory(shape: tuple, fill) -> np.ndarray:
    """A uint8 array of ``shape`` filled by ``fill(out)``."""
    out = np.empty(shape, dtype=np.uint8)
    fill(out)
    return out


def remove(directory) -> list[Path]:
    """Delete the disk caches this module wrote in ``directory`` (and the folder, if then empty); nothing else."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    gone = []
    for p in sorted(directory.iterdir()):
        if p.is_file() and _OWN_NAME.fullmatch(p.name):
            p.unlink()
            gone.append(p)
    if not any(directory.iterdir()):
        directory.rmdir()
    return gone
