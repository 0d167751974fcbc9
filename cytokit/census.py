"""Chapter 1's view of a dataset: what is there, what is wrong, how it was split.

Tables here put the dataset beside the study's Table 2.2.1 and pick example images
per class, grouped by lineage, for the gallery figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cytokit import classes

SPLITS = ("train", "val", "test")


def usable(manifest: pd.DataFrame) -> pd.DataFrame:
    """Rows that take part in the study (not excluded as bad files)."""
    return manifest[manifest["status"] != "bad"]


def class_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """Images per class here beside the study's counts and shares (Table 2.2.1).

    All 21 taxonomy classes are listed (0 where absent); classes unknown to the
    taxonomy are appended with lineage 'other' and no study figures.
    """
    counts = usable(manifest)["cls"].value_counts()
    codes = list(classes.CODES) + sorted(c for c in counts.index if not classes.is_known(c))
    rows = []
    for code in codes:
        known = classes.is_known(code)
        info = classes.get(code) if known else None
        rows.append({
            "code": code,
            "name": info.name if known else "(not in the taxonomy)",
            "lineage": classes.lineage_of(code),
            "images": int(counts.get(code, 0)),
            "study_images": info.study_images if known else np.nan,
            "study_percent": info.study_percent if known else np.nan,
        })
    df = pd.DataFrame(rows)
    df["percent"] = 100 * df["images"] / max(df["images"].sum(), 1)
    return df[["code", "name", "lineage", "images", "percent", "study_images", "study_percent"]]


def problems(manifest: pd.DataFrame) -> pd.DataFrame:
    """Files that were excluded or need conversion, with the reason."""
    cols = ["path", "cls", "status", "reason"]
    return manifest.loc[manifest["status"] != "ok", cols].reset_index(drop=True)


def split_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """Per class: images in each split and each split's share of the class."""
    df = usable(manifest)
    counts = pd.crosstab(df["cls"], df["split"]).reindex(columns=list(SPLITS), fill_value=0)
    counts.index.name = "code"
    total = counts.sum(axis=1)
    for split in SPLITS:
        counts[f"{split}_share"] = counts[split] / total
    counts.insert(0, "images", total)
    return counts.reset_index()


def max_share_deviation(table: pd.DataFrame, expected: dict[str, float], min_images: int = 20) -> float:
    """Largest gap between a class's split share and the intended one.

    Only classes with at least ``min_images`` count: a class of 3 images cannot be
    split 56/14/30 and is handled by the small-class rule instead.
    """
    big = table[table["images"] >= min_images]
    if big.empty:
        return float("nan")
    gaps = [np.abs(big[f"{s}_share"] - share).max() for s, share in expected.items()]
    return float(max(gaps))


def pick_examples(manifest: pd.DataFrame, per_class: int, seed: int = 0) -> dict[str, list[str]]:
    """A seeded choice of example paths per class, classes ordered by lineage then code."""
    rng = np.random.default_rng(seed)
    df = usable(manifest)
    order = sorted(df["cls"].unique(),
                   key=lambda c: (classes.LINEAGES.index(classes.lineage_of(c)), c))
    picked = {}
    for code in order:
        paths = sorted(df.loc[df["cls"] == code, "path"])
        take = rng.choice(len(paths), size=min(per_class, len(paths)), replace=False)
        picked[code] = [paths[i] for i in sorted(take)]
    return picked


def load_examples(data_dir, picked: dict[str, list[str]]) -> dict[str, list[np.ndarray]]:
    """Read the picked images as uint8 RGB."""
    from cytokit.validation import read_rgb

    root = Path(data_dir)
    return {code: [read_rgb(root / p) for p in paths] for code, paths in picked.items()}
