"""Chapter 1's view of a dataset: what is there, what is wrong, how it was split.

Tables here put the dataset beside the study's Table 2.2.1 and pick example images
per class, grouped by lineage, for the gallery figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cytokit.data import taxonomy
from cytokit.data.manifest import SPLITS, leakage, usable
from cytokit.data.tree import layout_notes
from cytokit.data.validation import read_rgb


#: The study's shares of every class: 30 % test, then 80/20 train/validation of the rest.
STUDY_SHARES = {"train": 0.56, "val": 0.14, "test": 0.30}


def file_counts(checked: pd.DataFrame, index: pd.DataFrame) -> dict:
    """How many image files were found, bad, converted, usable; other files ignored; what the index left out."""
    status = checked["status"]
    notes = layout_notes(index)
    return {"n_files": len(checked), "n_bad": int(status.eq("bad").sum()),
            "n_converted": int(status.eq("converted").sum()),
            "n_ignored": len(index.attrs.get("ignored", [])), "n_usable": int(status.ne("bad").sum()),
            "layout_notes": "\n".join(f"- {n}" for n in notes) if notes else
            "The index left nothing out: no empty class folder, link or metadata folder was found."}


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


def class_facts(table: pd.DataFrame) -> dict:
    """Classes present, the largest one, and how many times larger it is than the smallest."""
    present = table[table["images"] > 0]
    return {"n_classes": len(present), "largest_class": present.loc[present["images"].idxmax(), "code"],
            "imbalance_ratio": float(present["images"].max() / present["images"].min())}


def styled_class_table(table: pd.DataFrame):
    """The class table as the page shows it."""
    return table.style.format({"percent": "{:.2f}", "study_percent": "{:.3f}", "study_images": "{:,.0f}"}) \
        .hide(axis="index")


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


def styled_split_table(table: pd.DataFrame):
    """The split table as the page shows it."""
    return table.style.format({f"{s}_share": "{:.1%}" for s in SPLITS}).hide(axis="index")


def split_facts(manifest: pd.DataFrame, table: pd.DataFrame, shares: dict[str, float]) -> dict:
    """Images per split, the largest gap from the intended shares, duplicates across splits, small-class notes."""
    notes = manifest.attrs.get("notes", [])
    return {**{f"n_{s}": int(table[s].sum()) for s in SPLITS},
            "max_share_deviation": max_share_deviation(table, shares),
            "n_duplicates": len(leakage(manifest)),
            "small_class_notes": "\n".join(f"- {note}" for note in notes) if notes else
            "Every class was large enough to be split in these proportions."}


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
