"""What the book says about synthetic against real cells: chapter 1's comparison and the findings page's figure.

The sim-to-real figure is measured by ``bench/sim_to_real.py --publish`` (a network trained
on the demo's synthetic cells, tested on real ones it never saw) and shipped as
``cytokit/resources/sim_to_real.json``; the pages glue sentences built from it here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

from cytokit import resources
from cytokit.data import realism
from cytokit.data.synthetic import calibration, writer
from cytokit.pages import words

PUBLISHED = "sim_to_real.json"


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _with_interval(iv: dict) -> str:
    return f"{_pct(iv['estimate'])} (95 % interval {100 * iv['low']:.1f}–{100 * iv['high']:.1f} %)"


@dataclass(frozen=True)
class RealBeside:
    """Real and synthetic cells of the same classes, compared by colour; or why this copy shows no comparison."""

    synthetic_data: bool  # this copy's data are the synthetic cells (the real ones come from a sample beside it)
    classes: tuple[str, ...] = ()  # the classes compared; empty when no real images were at hand
    real_source: str = ""
    synthetic_source: str = ""
    n_real: int = 0
    distance: tuple[tuple[str, float], ...] = ()  # per class: the share of pixels in another colour bin
    fitted: int | None = None  # real images the generator was fitted to
    looked_in: str = ""  # where a real sample was looked for

    KEYS: ClassVar[tuple[str, ...]] = ("realism_statement", "real_source", "synthetic_source", "min_real_images",
                                       "colour_images")

    def basis(self) -> str:
        if not self.fitted:
            return ""
        return (f"The generator's sizes, stain colours, textures, crowding, focus and JPEG quality were fitted to "
                f"{self.fitted:,} real images, the calibration half of a real sample of the same collection.")

    def sentence(self) -> str:
        """Chapter 1's paragraph on real against synthetic cells (MyST: it refers to the two figures it describes)."""
        if not self.classes:
            found = ("found no real images to set beside them (a real sample is looked for in "
                     f"`{self.looked_in}` beside the project)" if self.synthetic_data else
                     f"found no class with {realism.MIN_REAL} real images or more to compare")
            return " ".join(x for x in (
                f"This copy ran on {'synthetic cells' if self.synthetic_data else 'real images'} and {found}, so it "
                "shows no side-by-side comparison.", self.basis(),
                "The first page gives what a network trained on the synthetic cells does on real ones.") if x)
        k = len(self.classes)
        if self.synthetic_data:
            what = (f"three of this copy's synthetic cells of each of {k} classes beside three real ones from the "
                    f"real sample `{self.real_source}` ({words.number_of(self.n_real, 'real image')} of these "
                    "classes)")
        else:
            what = (f"three real cells of each of {k} classes of this dataset beside three cells of the same "
                    "classes drawn by the book's synthetic generator, whose images are the book's default data")
        distance = dict(self.distance)
        mean = sum(distance.values()) / len(distance)
        most, least = max(distance, key=distance.get), min(distance, key=distance.get)
        return (f"{{numref}}`fig-real-synthetic` sets {what}, and {{numref}}`fig-real-colours` compares their "
                "colours: for each class and RGB channel, the share of pixels at each optical density. Averaged over "
                f"the classes and channels, {_pct(mean)} of the pixels would have to change optical-density bin to "
                f"turn the synthetic colour histograms into the real ones (most for {most}: {_pct(distance[most])}; "
                f"least for {least}: {_pct(distance[least])}). {self.basis()}").strip()

    def facts(self) -> dict:
        return {"realism_statement": self.sentence(), "real_source": self.real_source or "none",
                "synthetic_source": self.synthetic_source or "none", "min_real_images": realism.MIN_REAL,
                "colour_images": realism.COLOUR_IMAGES}


def compare(pair: realism.Pair | None, synthetic_data: bool) -> RealBeside:
    """Chapter 1's comparison of real and synthetic cells, from the images :func:`cytokit.data.realism.pair` chose."""
    fitted = calibration.load()["classes"].get("all", {}).get("n")
    where = realism.default_real_sample()
    looked_in = f"{where.parent.name}/{where.name}"
    if pair is None or not pair.classes:
        return RealBeside(synthetic_data, fitted=fitted, looked_in=looked_in)
    distance = realism.colour_distance(realism.colour_distributions(pair))
    return RealBeside(synthetic_data, tuple(pair.classes), pair.real_source, pair.synthetic_source, pair.n_real,
                      tuple((str(c), float(d)) for c, d in distance.items()), fitted, looked_in)


def published() -> dict:
    """The benchmark's sim-to-real figures shipped with the book (a dict with the keys the pages read)."""
    with resources.path(PUBLISHED).open("r", encoding="utf-8") as fh:
        data = json.load(fh)
    for key in ("synthetic", "synthetic_before", "real", "real_steps", "colour", "classes", "settings",
                "generator_digest", "after_vs_before", "after_vs_real", "command", "measured"):
        if key not in data:
            raise ValueError(f"{PUBLISHED} lacks {key!r}: run bench/sim_to_real.py --publish")
    return data


def _difference(c: dict) -> str:
    return (f"{100 * c['difference']:+.1f} points (95 % interval {100 * c['ci95'][0]:+.1f} to "
            f"{100 * c['ci95'][1]:+.1f}, {c['test']} p = {c['p_value']:.2g}: {c['verdict']})")


def _what_it_means(this_copy_synthetic: bool | None) -> str:
    if this_copy_synthetic is None:
        return ""
    if this_copy_synthetic:
        return (", but the other numbers of this copy describe the method and its machinery on synthetic cells, not "
                "how well it classifies real marrow cells")
    return "; this copy, though, ran on real images, so its other numbers were measured on real cells"


def sim_to_real_paragraph(data: dict, this_copy_synthetic: bool | None = True) -> str:
    """The findings page's paragraph: what a network trained on the embedded synthetic cells does on real ones, and
    what that means for this copy's other numbers (synthetic, real, or unknown when chapter 1 did not run)."""
    s, r, r2, c, b = (data[k]["balanced_accuracy"] for k in ("synthetic", "real", "real_steps", "colour",
                                                               "synthetic_before"))
    n, k, chance = data["synthetic"]["n_images"], len(data["classes"]), data["synthetic"]["chance"]
    st = data["settings"]
    above = ("above chance, so they carry some of what tells real cells apart"
             if s["low"] > chance else "not clearly above chance")
    text = (f"The book's default data are synthetic cells. A network trained as chapter 2 trains it in the demo "
            f"profile ({st['image_size']} px, {st['epochs']} epochs) on the demo's {data['synthetic']['n_train']:,} "
            f"synthetic training images, then shown {n} real images of {k} classes ({', '.join(data['classes'])}) "
            f"that played no part in fitting the generator, reaches a balanced accuracy of {_with_interval(s)}, "
            f"against a chance level of {_pct(chance)}; with the generator as it was before it was fitted to real "
            f"smears it reached {_with_interval(b)}, a difference of {_difference(data['after_vs_before'])}. "
            f"Trained the same way on the {data['real']['n_train']} real images of the sample's other half, the "
            f"network reaches {_with_interval(r)}; synthetic minus real: {_difference(data['after_vs_real'])}; "
            f"trained on them for as many steps as on the synthetic images ({data['real_steps']['epochs']} epochs), "
            f"{_with_interval(r2)}; and a colour-histogram classifier trained on them, {_with_interval(c)}. The "
            f"embedded cells are {above}{_what_it_means(this_copy_synthetic)}.")
    measured = f" Measured by `{data['command']}` on {data['measured']}"
    if data["generator_digest"] == writer.generator_digest():
        return text + measured + " with this version of the generator."
    return text + measured + ", for an earlier version of the generator: the figure may have changed since."


@dataclass(frozen=True)
class SimToReal:
    """The shipped sim-to-real benchmark, read for a copy whose own data are synthetic, real, or unknown."""

    data: dict
    this_copy_synthetic: bool | None

    KEYS: ClassVar[tuple[str, ...]] = ("sim_to_real",)

    def sentence(self) -> str:
        return sim_to_real_paragraph(self.data, self.this_copy_synthetic)

    def facts(self) -> dict:
        return {"sim_to_real": self.sentence()}


def sim_to_real(this_copy_synthetic: bool | None) -> SimToReal:
    """The benchmark's figures shipped with the book, said for this copy's data."""
    return SimToReal(published(), this_copy_synthetic)
