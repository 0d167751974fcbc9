"""The split as a manifest: every image with its class, status and split, never a moved file.

The study moved and deleted files inside the dataset to build its splits; here the
split is a column of a table saved in the run folder (chapter 01), and every later
chapter takes its rows from it.
"""

from __future__ import annotations

import math
import os
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from cytokit import io
from cytokit.data import taxonomy
from cytokit.data.tree import DatasetError, index
from cytokit.data.validation import validate

SPLITS = ("train", "val", "test")
MANIFEST_COLUMNS = ("path", "cls", "bytes", "status", "reason", "width", "height",
                    "mode", "format", "sha1", "split")
_INT_COLUMNS = ("bytes", "width", "height")


def usable(manifest: pd.DataFrame) -> pd.Series:
    """True for rows that take part in the study (every row not excluded as a bad file)."""
    if "status" not in manifest:
        return pd.Series(True, index=manifest.index)
    return manifest["status"].ne("bad")


def split(manifest: pd.DataFrame, seed: int = 0, test_fraction=0.3, val_fraction=0.2) -> pd.DataFrame:
    """Stratified train/val/test split, per class, as a ``split`` column (bad rows: "excluded").

    As the study: ``test_fraction`` of each class for test, then ``val_fraction`` of the
    rest for validation, rounded half up; classes of 3+ images get one image in each split,
    2 images go train and test, 1 goes train. The permutation comes from
    ``default_rng([seed, crc32(class)])``, so one class's split never depends on another's.
    ``df.attrs["notes"]`` says which classes the small-class rule changed.
    """
    _check_fractions(test_fraction, val_fraction)
    out = manifest.copy()
    usable_rows = usable(out)
    assigned = pd.Series("excluded", index=out.index, dtype=object)
    notes = []
    for cls in sorted(out["cls"].unique()):
        rows = out.index[(out["cls"] == cls) & usable_rows]
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


def _class_rng(seed: int, cls: str, *stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(cls.encode("utf-8")), *stream])


def _assign(n: int, counts, rng) -> np.ndarray:
    """Split labels for ``n`` rows: a seeded permutation, first test, then val, then train."""
    train, val, test = counts
    labels = np.empty(n, dtype=object)
    order = rng.permutation(n)
    labels[order[:test]] = "test"
    labels[order[test:test + val]] = "val"
    labels[order[test + val:]] = "train"
    return labels


#: The two halves of a real sample: what a synthetic generator is fitted to, and what it is judged on.
HALVES = ("calibration", "report")
_HALVES_STREAM = 1  # a random stream of its own: the halves never follow the train/val/test permutation


def halves(manifest: pd.DataFrame, seed: int = 0) -> pd.Series:
    """Each usable row's half, "calibration" or "report", cut once per class (bad rows: "excluded").

    A class of n usable images puts n // 2 in the report half and the rest (one more when
    n is odd, the single image of a 1-image class) in the calibration half. Each class's
    permutation comes from its own seeded stream, so one class's cut never depends on
    another's, on the row order, or on the train/val/test split of the same seed.
    """
    out = pd.Series("excluded", index=manifest.index, dtype=object, name="half")
    ok = usable(manifest)
    for cls in sorted(manifest["cls"].unique()):
        rows = manifest.loc[(manifest["cls"] == cls) & ok].sort_values("path").index
        order = _class_rng(seed, cls, _HALVES_STREAM).permutation(len(rows))
        labels = np.full(len(rows), HALVES[0], dtype=object)
        labels[order[: len(rows) // 2]] = HALVES[1]
        out.loc[rows] = labels
    return out


def build_manifest(data_dir, seed=0, expected_size=(250, 250), progress=True) -> pd.DataFrame:
    """Index, validate and split ``data_dir`` in one call (the dataset is only read)."""
    idx = index(data_dir, progress=progress)
    checked = validate(data_dir, idx, expected_size=expected_size, progress=progress)
    return split(checked, seed=seed)


def write_manifest(df: pd.DataFrame, path) -> Path:
    """Save a manifest as CSV atomically (temp file in the same folder, then rename).

    A manifest whose usable images come from fewer than 2 classes is refused: no
    classifier can be trained on it, and the later chapters would fail far from the cause.
    """
    _check_classes(df)
    known = [c for c in MANIFEST_COLUMNS if c in df.columns]
    cols = known + [c for c in df.columns if c not in MANIFEST_COLUMNS]
    return io.write_csv(path, df[cols], index=False)


def _check_classes(manifest: pd.DataFrame) -> None:
    """Raise :class:`DatasetError` unless usable images of at least 2 classes are in the manifest."""
    present = sorted(set(manifest.loc[usable(manifest), "cls"]))
    if len(present) < 2:
        where = manifest.attrs.get("data_dir", "the dataset")
        found = f"only {present[0]}" if present else "none"
        raise DatasetError(f"{where} has usable images of {len(present)} class ({found}): a classifier needs at "
                           "least 2 classes; point data_dir at the folder holding one folder per class")


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


def leakage(df: pd.DataFrame) -> pd.DataFrame:
    """Rows whose exact bytes (same sha1) also appear in another split: a leak between splits."""
    cols = ["sha1", "path", "cls", "split"]
    used = df[df["split"].isin(SPLITS)] if "split" in df else df.iloc[0:0]
    spread = used.groupby("sha1")["split"].transform("nunique")
    return used.loc[spread > 1, cols].sort_values(["sha1", "split", "path"], ignore_index=True)


def class_names(df: pd.DataFrame) -> list[str]:
    """Model output order: all 21 study codes when every class is known, else the sorted classes."""
    present = set(df["cls"])
    if all(taxonomy.is_known(c) for c in present):
        return list(taxonomy.CODES)
    return sorted(present)


def rows(manifest: pd.DataFrame, split: str | None) -> pd.DataFrame:
    """Usable rows of one split (None: every usable row), in manifest order."""
    _note_read(split)
    chosen = manifest[usable(manifest)]
    if split is None:
        return chosen
    if "split" not in manifest:
        raise ValueError("the manifest has no 'split' column: run cytokit.data.split first, or pass split=None")
    chosen = chosen[chosen["split"].eq(split)]
    if chosen.empty:
        found = sorted(set(manifest["split"]))
        raise ValueError(f"no usable images in split {split!r} (the manifest has {', '.join(found)})")
    return chosen


def labels(manifest: pd.DataFrame, split: str | None, names=None) -> np.ndarray:
    """int32 class indices of a split's usable rows, in manifest order."""
    names = list(names) if names is not None else class_names(manifest)
    lookup = {c: i for i, c in enumerate(names)}
    chosen = rows(manifest, split)
    unknown = sorted(set(chosen["cls"]) - set(lookup))
    if unknown:
        raise ValueError(f"classes {unknown} are not in class_names ({', '.join(names)})")
    return np.array([lookup[c] for c in chosen["cls"]], dtype=np.int32)


#: Environment variable naming the file where the runner records which splits a chapter read.
SPLIT_LOG = "CYTOKIT_SPLIT_LOG"


def _note_read(split) -> None:
    """Append the split to the runner's log, so a test can check that only chapter 05 reads test."""
    log = os.environ.get(SPLIT_LOG)
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"{split if split is not None else 'all'}\n")
