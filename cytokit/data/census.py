"""A dataset's census: images per class beside the study's, files that need attention, the split per class.

Tables here put the dataset beside the study's Table 2.2.1 and pick example images
per class, grouped by lineage, for the gallery figure; chapter 1's page
(:mod:`cytokit.pages.data`) turns them into sentences.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cytokit.data import taxonomy
from cytokit.data.manifest import SPLITS, usable
from cytokit.data.validation import read_rgb


#: The study's shares of every class: 30 % test, then 80/20 train/validation of the rest.
STUDY_SHARES = {"train": 0.56, "val": 0.14, "test": 0.30}


def class_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """Images per class here beside the study's counts and shares (Table 2.2.1).

    All 21 taxonomy classes are listed (0 where absent); classes unknown to the
    taxonomy are appended with lineage 'other' and no study figures.
    """
    counts = manifest.loc[usable(manifest), "cls"].value_counts()
    codes = list(taxonomy.CODES) + sorted(c for c in counts.index if not taxonomy.is_known(c))
    rows = []
    for code in codes:
        known = taxonomy.is_known(code)
        info = taxonomy.get(code) if known else None
        rows.append({
            "code": code,
            "name": info.name if known else "(not in the taxonomy)",
            "lineage": taxonomy.lineage_of(code),
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
    df = manifest[usable(manifest)]
    counts = pd.crosstab(df["cls"], df["split"]).reindex(columns=list(SPLITS), fill_value=0)
    counts.index.name = "code"
    total = counts.sum(axis=1)
    for split in SPLITS:
        counts[f"{split}_share"] = counts[split] / total
    counts.insert(0, "images", total)
    return counts.reset_index()


def pick_examples(manifest: pd.DataFrame, per_class: int, seed: int = 0) -> dict[str, list[str]]:
    """A seeded choice of example paths per class, classes ordered by lineage then code."""
    rng = np.random.default_rng(seed)
    df = manifest[usable(manifest)]
    order = sorted(df["cls"].unique(),
                   key=lambda c: (taxonomy.LINEAGES.index(taxonomy.lineage_of(c)), c))
    picked = {}
    for code in order:
        paths = sorted(df.loc[df["cls"] == code, "path"])
        take = rng.choice(len(paths), size=min(per_class, len(paths)), replace=False)
        picked[code] = [paths[i] for i in sorted(take)]
    return picked


def load_examples(data_dir, picked: dict[str, list[str]]) -> dict[str, list[np.ndarray]]:
    """Read the picked images as uint8 RGB."""
    root = Path(data_dir)
    return {code: [read_rgb(root / p) for p in paths] for code, paths in picked.items()}
