"""Index a dataset tree, validate its images, and split it -- all as manifests.

The study moved and deleted files inside the dataset to build its splits. Here the
dataset folder is only ever read: :func:`index` lists the images, :func:`validate`
checks each one (see :mod:`cytokit.validation` for the policy), :func:`split` assigns
train/val/test in a column, and :func:`write_manifest` saves the result in the run
folder. Introduced in chapter 01 (data); every later chapter reads the manifest.

Layout: one folder per class at the top of ``data_dir`` (the folder name is the
class), images directly inside it (``PMO/PMO_00001.jpg``) or in sub-folders at any
depth (``BLA/0001-1000/BLA_00001.jpg``, the TCIA layout).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from cytokit import classes
from cytokit.progress import bar as progress_bar
from cytokit.validation import ImageCheck, check_bytes, read_rgb  # noqa: F401 - read_rgb re-exported

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
SPLITS = ("train", "val", "test")
MANIFEST_COLUMNS = ("path", "cls", "bytes", "status", "reason", "width", "height",
                    "mode", "format", "sha1", "split")
_INT_COLUMNS = ("bytes", "width", "height")
_RANGE_FOLDER = re.compile(r"^\d+-\d+$")
_INDEX_BAR_DELAY = 1.0  # seconds before the indexing bar appears (short listings print nothing)


class DatasetError(ValueError):
    """The dataset folder cannot be used as given; the message says what to do."""


# ---------------------------------------------------------------------------- index


def index(data_dir, progress=True) -> pd.DataFrame:
    """List every image under ``data_dir`` (read-only), one row per file.

    Columns ``path`` (POSIX, relative to ``data_dir``), ``cls`` (top-level folder) and
    ``bytes``, sorted by path. Hidden entries and non-image files are not indexed; their
    relative paths go to ``df.attrs["ignored"]`` (folders with a trailing ``/``, not
    entered). Class folders without images go to ``df.attrs["empty_classes"]``.
    With ``progress``, a tqdm count of files appears when the listing takes more than
    a second (171k files take a few seconds from a warm cache, longer from a slow disk).
    """
    root = _dataset_root(data_dir)
    rows, ignored, class_dirs = [], [], []
    for entry in _scan(root):
        if entry.name.startswith(".") or not entry.is_dir():
            ignored.append(entry.name + ("/" if entry.is_dir() else ""))
        else:
            class_dirs.append(entry)
    if not class_dirs:
        _raise_no_classes(root, ignored)
    with progress_bar(desc="indexing", unit="file", enabled=progress, delay=_INDEX_BAR_DELAY,
                      mininterval=1.0) as bar:
        for entry in class_dirs:
            _walk(entry, rows, ignored, bar)
    df = pd.DataFrame(rows, columns=["path", "cls", "bytes"])
    df = df.astype({"path": str, "cls": str, "bytes": "int64"}).sort_values("path", ignore_index=True)
    present = set(df["cls"])
    df.attrs.update(data_dir=str(root), ignored=sorted(ignored),
                    empty_classes=sorted(e.name for e in class_dirs if e.name not in present))
    _check_layout(root, df, class_dirs)
    return df


def _dataset_root(data_dir) -> Path:
    """``data_dir`` as a Path, or a DatasetError saying why it cannot be a dataset."""
    if data_dir is None or str(data_dir) == "":
        raise DatasetError("no dataset folder given: pass data_dir, the folder holding one folder per class")
    root = Path(data_dir).expanduser()
    if not root.exists():
        raise DatasetError(f"dataset folder {root} does not exist: check the path "
                           "(data/README.md says how to get the real data)")
    if not root.is_dir():
        raise DatasetError(f"dataset path {root} is a file, not a folder: pass the folder "
                           "that holds one folder per class")
    return root


def _scan(folder: Path):
    """Entries of ``folder`` sorted by name; unreadable folders are a DatasetError."""
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as err:
        raise DatasetError(f"cannot list {folder} ({err.strerror or err}): check its permissions") from None


def _walk(top, rows: list, ignored: list, bar=None) -> None:
    """Append (path, cls, bytes) for every image below the class folder ``top``."""
    cls = top.name
    stack, seen = [(top, cls)], set()
    while stack:
        folder, rel = stack.pop()
        key = _dir_key(folder)
        if key in seen:  # a symlink loop
            continue
        seen.add(key)
        before = len(rows)
        for entry in _scan(folder.path):
            child = f"{rel}/{entry.name}"
            if entry.name.startswith("."):
                ignored.append(child + ("/" if entry.is_dir() else ""))
            elif entry.is_dir():
                stack.append((entry, child))
            elif entry.is_file() and os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES:
                rows.append((child, cls, entry.stat().st_size))
            else:
                ignored.append(child)
        if bar is not None:
            bar.update(len(rows) - before)


def _dir_key(entry):
    st = entry.stat()
    return (st.st_dev, st.st_ino)


def _raise_no_classes(root: Path, ignored: list) -> None:
    if not ignored:
        raise DatasetError(f"dataset folder {root} is empty: it should hold one folder per class "
                           "(e.g. BLA/0001-1000/BLA_00001.jpg)")
    shown = ", ".join(ignored[:5]) + (" ..." if len(ignored) > 5 else "")
    raise DatasetError(f"dataset folder {root} has no class folders (found only {shown}): "
                       "put the images in one folder per class, e.g. BLA/BLA_00001.jpg")


def _check_layout(root: Path, df: pd.DataFrame, class_dirs: list) -> None:
    """Catch a data_dir one level too deep or too shallow before it becomes a 1-class model."""
    names = [e.name for e in class_dirs]
    if names and all(_RANGE_FOLDER.match(n) for n in names):
        shown = ", ".join(names[:3])
        raise DatasetError(f"{root} looks like a single class folder (its sub-folders are {shown} ...): "
                           f"point data_dir at its parent, {root.parent}")
    if len(names) == 1 and not classes.is_known(names[0]):
        inner = [e.name for e in _scan(root / names[0]) if e.is_dir() and classes.is_known(e.name)]
        if len(inner) >= 2:
            raise DatasetError(f"{root} holds one folder, {names[0]!r}, whose sub-folders are class folders "
                               f"({', '.join(inner[:4])} ...): point data_dir at {root / names[0]}")
    if df.empty:
        raise DatasetError(f"no images found in the class folders of {root} (looked for "
                           f"{', '.join(IMAGE_SUFFIXES)} files): check the path and the file types")


# ------------------------------------------------------------------------- validate


def validate(data_dir, idx: pd.DataFrame, expected_size=(250, 250), progress=True,
             workers=None) -> pd.DataFrame:
    """Check every indexed image (read-only) and add its status, reason, size, mode and sha1.

    Each file is read once, hashed (``sha1`` of its bytes, for leakage checks) and fully
    decoded in a thread pool (Pillow and hashlib release the GIL). See
    :mod:`cytokit.validation` for what counts as bad or converted. Memory stays at the
    manifest's own columns: files are checked in chunks, a bounded number in flight, and
    each chunk's outcomes go straight into the columns.
    """
    root = _dataset_root(data_dir)
    cols = _run_checks(str(root), idx["path"].tolist(), expected_size, progress,
                       workers or min(32, 4 * (os.cpu_count() or 1)))
    out = idx.copy()
    for name in _CHECK_COLUMNS:
        values = cols[name]
        out[name] = np.array(values, dtype="int64") if name in _INT_COLUMNS else values
    return out


#: Columns :func:`validate` adds, in the order :func:`_check_chunk` returns them.
_CHECK_COLUMNS = ("status", "reason", "width", "height", "mode", "format", "sha1")
_CHUNK = 128  # files per task of the thread pool


def _check_file(path: str, expected_size) -> tuple[ImageCheck, str]:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as err:
        return ImageCheck("bad", f"unreadable file ({err.strerror or err})"), ""
    return check_bytes(data, path, expected_size), hashlib.sha1(data).hexdigest()


def _check_chunk(root: str, paths: list, expected_size) -> list[tuple]:
    """The :data:`_CHECK_COLUMNS` of each relative path, as one tuple per column."""
    rows = []
    for rel in paths:
        c, sha1 = _check_file(os.path.join(root, rel), expected_size)
        rows.append((c.status, c.reason, c.width, c.height, c.mode, c.format, sha1))
    return list(zip(*rows))


def _run_checks(root: str, paths: list, expected_size, progress: bool, workers: int) -> dict:
    """Check files in chunks on a thread pool, in order, with a tqdm bar; returns column lists.

    At most ``4 * workers`` chunks are queued or finished-but-unread at a time, so memory
    beyond the columns does not grow with the number of files.
    """
    cols = {name: [] for name in _CHECK_COLUMNS}
    window = 4 * max(1, workers)
    pending = deque()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, \
            progress_bar(total=len(paths), desc="validating images", unit="img", enabled=progress,
                         mininterval=1.0) as bar:

        def collect():
            part = pending.popleft().result()
            for name, values in zip(_CHECK_COLUMNS, part):
                cols[name].extend(values)
            bar.update(len(part[0]) if part else 0)

        for i in range(0, len(paths), _CHUNK):
            pending.append(pool.submit(_check_chunk, root, paths[i:i + _CHUNK], expected_size))
            if len(pending) >= window:
                collect()
        while pending:
            collect()
    return cols


# ---------------------------------------------------------------------------- split


def split(manifest: pd.DataFrame, seed: int = 0, test_fraction=0.3, val_fraction=0.2) -> pd.DataFrame:
    """Stratified train/val/test split, per class, as a ``split`` column.

    As in the study: ``test_fraction`` of each class is held out for testing, then
    ``val_fraction`` of the rest is used for validation, the remainder for training.
    Per class of ``n`` usable images (status not "bad", in sorted path order):
    ``n_test = round(n * test_fraction)``, ``n_val = round((n - n_test) * val_fraction)``,
    rounded half up. Small-class rule: with ``n >= 3`` each of train/val/test gets at
    least one image (when its fraction is above 0); ``n == 2`` gives 1 train and 1 test;
    ``n == 1`` gives train only. Which images go where is a permutation drawn from
    ``np.random.default_rng([seed, crc32(class)])``: deterministic for a seed, and one
    class's split does not change when other classes change. Bad rows get "excluded".
    ``df.attrs["notes"]`` holds a sentence for every class the small-class rule affected.
    """
    _check_fractions(test_fraction, val_fraction)
    out = manifest.copy()
    usable = out["status"].ne("bad") if "status" in out else pd.Series(True, index=out.index)
    assigned = pd.Series("excluded", index=out.index, dtype=object)
    notes = []
    for cls in sorted(out["cls"].unique()):
        rows = out.index[(out["cls"] == cls) & usable]
        rows = out.loc[rows].sort_values("path").index
        counts, note = _class_counts(cls, len(rows), test_fraction, val_fraction)
        if note:
            notes.append(note)
        assigned.loc[rows] = _assign(len(rows), counts, _class_rng(seed, cls))
    out["split"] = assigned.astype(str)
    out.attrs["notes"] = notes
    out.attrs["seed"] = seed
    return out


def _check_fractions(test_fraction, val_fraction) -> None:
    for name, value in (("test_fraction", test_fraction), ("val_fraction", val_fraction)):
        if not 0 <= value < 1:
            raise ValueError(f"{name} must be in [0, 1), got {value}")


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5 + 1e-9))


def _class_counts(cls: str, n: int, test_fraction, val_fraction):
    """(train, val, test) counts for a class of ``n`` usable images, and a note if the rule acted."""
    test = _round_half_up(n * test_fraction)
    val = _round_half_up((n - test) * val_fraction)
    plain = (n - test - val, val, test)
    if n == 0:
        return (0, 0, 0), f"{cls}: no usable images, so it is in no split."
    if n == 1:
        counts = (1, 0, 0)
    elif n == 2:
        counts = (1, 0, 1) if test_fraction > 0 else ((1, 1, 0) if val_fraction > 0 else (2, 0, 0))
    else:
        if test_fraction > 0:
            test = min(max(test, 1), n - 2 if val_fraction > 0 else n - 1)
        if val_fraction > 0:
            val = min(max(val, 1), n - test - 1)
        counts = (n - test - val, val, test)
    return counts, _small_class_note(cls, n, plain, counts)


def _small_class_note(cls: str, n: int, plain, counts) -> str:
    """One sentence for the book when rounding alone would not give this split."""
    missing = [name for name, k in zip(("validation", "test"), counts[1:]) if k == 0]
    if counts == plain and not (n < 3 and missing):
        return ""
    text = f"{cls}: {n} usable image{'s' if n != 1 else ''}"
    if counts != plain:
        text += (f"; rounding alone gives {plain[0]} train / {plain[1]} val / {plain[2]} test, "
                 f"the small-class rule gives {counts[0]} / {counts[1]} / {counts[2]}")
    else:
        text += f", split {counts[0]} train / {counts[1]} val / {counts[2]} test"
    if missing:
        text += f"; it has no {' and no '.join(missing)} image"
    return text + "."


def _class_rng(seed: int, cls: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(cls.encode("utf-8"))])


def _assign(n: int, counts, rng) -> np.ndarray:
    """Split labels for ``n`` rows: a seeded permutation, first test, then val, then train."""
    train, val, test = counts
    labels = np.empty(n, dtype=object)
    order = rng.permutation(n)
    labels[order[:test]] = "test"
    labels[order[test:test + val]] = "val"
    labels[order[test + val:]] = "train"
    return labels


def build_manifest(data_dir, seed=0, expected_size=(250, 250), progress=True) -> pd.DataFrame:
    """Index, validate and split ``data_dir`` in one call (the dataset is only read)."""
    idx = index(data_dir, progress=progress)
    checked = validate(data_dir, idx, expected_size=expected_size, progress=progress)
    return split(checked, seed=seed)


# -------------------------------------------------------------------------- files


def write_manifest(df: pd.DataFrame, path) -> Path:
    """Save a manifest as CSV atomically (temp file in the same folder, then rename)."""
    from cytokit import io

    known = [c for c in MANIFEST_COLUMNS if c in df.columns]
    cols = known + [c for c in df.columns if c not in MANIFEST_COLUMNS]
    return io.write_csv(path, df[cols], index=False)


def read_manifest(path) -> pd.DataFrame:
    """Read a manifest CSV back with its types (class codes such as "NA" stay strings)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"manifest {path} not found: run the data chapter (01_data) first")
    df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    missing = {"path", "cls"} - set(df.columns)
    if missing:
        raise DatasetError(f"{path} is not a manifest: it lacks the column(s) {', '.join(sorted(missing))}")
    for col in _INT_COLUMNS:
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce").fillna(0).astype("int64")
    return df


# ------------------------------------------------------------------------ reports


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per class: images, bad, converted, and the count and share of usable images per split."""
    status = df["status"] if "status" in df else pd.Series("ok", index=df.index)
    out = pd.DataFrame({"images": df.groupby("cls").size()})
    out["bad"] = status.eq("bad").groupby(df["cls"]).sum()
    out["converted"] = status.eq("converted").groupby(df["cls"]).sum()
    usable = (out["images"] - out["bad"]).replace(0, np.nan)
    if "split" in df:
        for name in SPLITS:
            out[name] = df["split"].eq(name).groupby(df["cls"]).sum()
        for name in SPLITS:
            out[f"{name}_frac"] = (out[name] / usable).fillna(0.0)
    out.index.name = "cls"
    return out.astype({c: "int64" for c in out.columns if not c.endswith("_frac")})


def leakage(df: pd.DataFrame) -> pd.DataFrame:
    """Rows whose exact bytes (same sha1) also appear in another split: a leak between splits."""
    cols = ["sha1", "path", "cls", "split"]
    used = df[df["split"].isin(SPLITS)] if "split" in df else df.iloc[0:0]
    spread = used.groupby("sha1")["split"].transform("nunique")
    return used.loc[spread > 1, cols].sort_values(["sha1", "split", "path"], ignore_index=True)


def class_names(df: pd.DataFrame) -> list[str]:
    """Model output order: all 21 study codes when every class is known, else the sorted classes."""
    present = set(df["cls"])
    if all(classes.is_known(c) for c in present):
        return list(classes.CODES)
    return sorted(present)
