"""Real and synthetic cells of the same classes, side by side: what chapter 1 shows when real images are at hand.

On synthetic data the real images come from a real sample beside the project (the
default ``../shared/real-sample``), when it is there; on real data the synthetic cells
are drawn by the embedded generator for the same classes. Only classes with enough
real images are compared, and the real folder is only read, after validation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cytokit import paths
from cytokit.data import census, synthetic, tree, validation
from cytokit.data.manifest import usable
from cytokit.data.synthetic import calibration, measure

#: Fewest real images of a class for it to be compared.
MIN_REAL = 3
#: Images per class and source whose pixels make the colour distributions.
COLOUR_IMAGES = 16
#: Optical-density bins of the colour distributions (0: white, 1.5: a very dark nucleus).
OD_BINS = np.linspace(0.0, 1.5, 31)


@dataclass
class Pair:
    """Real and synthetic images of the same classes, and where each came from."""

    real_source: str  # "this dataset" or the real sample's folder name
    synthetic_source: str  # "this dataset" or "drawn by the generator"
    n_real: int  # usable real images of the compared classes
    shown: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = field(default_factory=dict)
    colour: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = field(default_factory=dict)

    @property
    def classes(self) -> list[str]:
        return list(self.shown)


def default_real_sample() -> Path:
    """The real sample beside the project, where tests and the study profile find it."""
    return paths.shared_dir() / "real-sample"


def _real_manifest(folder: Path) -> pd.DataFrame | None:
    """Validated usable images of a real folder (None when it is absent or holds no dataset)."""
    if not folder.is_dir():
        return None
    try:
        checked = validation.validate(folder, tree.index(folder, progress=False), progress=False)
    except tree.DatasetError:
        return None
    return checked[usable(checked)]


def pair(root, checked: pd.DataFrame, seed: int = 0, per_class: int = 3, real_dir=None,
         colour_images: int = COLOUR_IMAGES) -> Pair | None:
    """Real and synthetic images of every class with at least :data:`MIN_REAL` real images; None without real ones.

    ``root``/``checked``: this chapter's dataset and its validated index. When it is
    synthetic, the real images come from ``real_dir`` (default :func:`default_real_sample`).
    """
    root = Path(root)
    if synthetic.read_meta(root) is None:
        real_root, real, fake_root = root, checked[usable(checked)], None
    else:
        real_root = Path(real_dir) if real_dir else default_real_sample()
        real, fake_root = _real_manifest(real_root), root
        if real is None or real.empty:
            return None
    counts = real["cls"].value_counts()
    classes = [c for c in census.pick_examples(real, 1, seed) if counts.get(c, 0) >= MIN_REAL]
    if not classes:
        return None
    real = real[real["cls"].isin(classes)]
    n = max(per_class, colour_images)
    picked = census.pick_examples(real, n, seed)
    out = Pair("this dataset" if fake_root is None else real_root.name,
               "drawn by the generator" if fake_root is None else "this dataset", int(len(real)))
    fakes = _synthetic_images(fake_root, checked, classes, n, seed)
    for code in classes:
        reals = [validation.read_rgb(real_root / p) for p in picked[code]]
        out.shown[code] = (reals[:per_class], fakes[code][:per_class])
        out.colour[code] = (reals[:colour_images], fakes[code][:colour_images])
    return out


def _synthetic_images(fake_root: Path | None, checked, classes, n: int, seed: int) -> dict[str, list[np.ndarray]]:
    """``n`` synthetic images per class: from this synthetic dataset, or drawn afresh at 250 px."""
    if fake_root is None:
        return {c: [synthetic.render(c, i, seed=seed).image for i in range(1, n + 1)] for c in classes}
    picked = census.pick_examples(checked[checked["cls"].isin(classes)], n, seed)
    return {c: [validation.read_rgb(fake_root / p) for p in picked.get(c, [])] for c in classes}


def colour_distributions(p: Pair) -> pd.DataFrame:
    """Per class, source and RGB channel: the share of pixels in each optical-density bin (:data:`OD_BINS`)."""
    rows = []
    centres = (OD_BINS[:-1] + OD_BINS[1:]) / 2
    for code, sources in p.colour.items():
        for source, images in zip(("real", "synthetic"), sources):
            if not images:
                continue
            od = np.concatenate([measure.optical_density(im).reshape(-1, 3) for im in images])
            for ch, name in enumerate(("red", "green", "blue")):
                share = np.histogram(np.clip(od[:, ch], 0, OD_BINS[-1]), OD_BINS)[0] / len(od)
                rows += [{"code": code, "source": source, "channel": name, "od": c, "share": s}
                         for c, s in zip(centres, share)]
    return pd.DataFrame(rows)


def colour_distance(table: pd.DataFrame) -> pd.Series:
    """Per class: half the summed absolute difference of real and synthetic OD histograms, averaged over the
    channels (0: the same colours, 1: no colour in common)."""
    wide = table.pivot_table(index=["code", "channel", "od"], columns="source", values="share")
    diff = (wide["real"] - wide["synthetic"]).abs().groupby(level=["code", "channel"]).sum() / 2
    return diff.groupby(level="code").mean()


#: Properties chapter 1 lists, as :mod:`cytokit.data.synthetic.measure` names them.
TABLE_PROPERTIES = ("nucleus_od_g", "cytoplasm_od_g", "cytoplasm_eosin_share", "background_od_b", "cell_fraction",
                    "nucleus_fraction", "border_occupancy", "focus", "lobes", "chromatin_texture")


def property_table(root, checked: pd.DataFrame, seed: int = 0, per_class: int = 8,
                   properties=TABLE_PROPERTIES) -> pd.DataFrame:
    """Per property (rows) and class (columns): the real calibration images' median [10th-90th percentile] and
    this dataset's median.

    The real figures are those the generator was fitted to (shipped quantiles); this
    dataset's are measured the same way on ``per_class`` images of each class it shares.
    """
    real = calibration.load()["classes"]
    rows = checked[usable(checked) & checked["cls"].isin(real)]
    picked = census.pick_examples(rows, per_class, seed)
    table = calibration.measure_images(root, pd.DataFrame([(p, c) for c, ps in picked.items() for p in ps],
                                                          columns=["path", "cls"]))
    out = {}
    for code in picked:
        mine = table[table["cls"] == code]
        for prop in properties:
            q = real[code][prop]
            out[(measure.PROPERTIES[prop], "real: median [10–90 %]", code)] = f"{q[2]:.3g} [{q[0]:.3g}–{q[-1]:.3g}]"
            out[(measure.PROPERTIES[prop], "this dataset: median", code)] = f"{mine[prop].median():.3g}"
    wide = pd.Series(out).unstack(level=2)
    wide.index.names = ["property", "images"]
    return wide.loc[[measure.PROPERTIES[p] for p in properties], list(picked)]
