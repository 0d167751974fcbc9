"""What the book says about synthetic against real cells: chapter 1's comparison and the findings page's figure.

The sim-to-real figure is measured by ``bench/sim_to_real.py --publish`` (a network trained
on the demo's synthetic cells, tested on real ones it never saw) and shipped as
``cytokit/resources/sim_to_real.json``; the pages glue sentences built from it here.
"""

from __future__ import annotations

import json

from cytokit import resources
from cytokit.data import realism
from cytokit.data.synthetic import calibration, writer

PUBLISHED = "sim_to_real.json"


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _with_interval(iv: dict) -> str:
    return f"{_pct(iv['estimate'])} (95 % interval {100 * iv['low']:.1f}–{100 * iv['high']:.1f} %)"


def comparison_statement(pair: realism.Pair | None, synthetic_data: bool) -> str:
    """Chapter 1's paragraph on real against synthetic cells, true for whichever data the chapter read."""
    fitted = calibration.load()["classes"].get("all", {}).get("n")
    basis = (f"The generator's sizes, stain colours, textures, crowding, focus and JPEG quality were fitted to "
             f"{fitted} real images, the calibration half of a real sample of the same collection."
             if fitted else "")
    if pair is None:
        where = realism.default_real_sample()
        return (f"This copy ran on synthetic cells and found no real images to set beside them (a real sample is "
                f"looked for in `{where.parent.name}/{where.name}` beside the project), so it shows no comparison. "
                f"{basis} The first page gives what a network trained on these synthetic cells does on real ones.")
    k = len(pair.classes)
    if synthetic_data:
        what = (f"three of this copy's synthetic cells of each of {k} classes beside three real ones from the real "
                f"sample `{pair.real_source}` ({pair.n_real} real images of these classes)")
    else:
        what = (f"three real cells of each of {k} classes of this dataset beside three cells of the same classes "
                f"drawn by the book's synthetic generator, whose images are the book's default data")
    distance = realism.colour_distance(realism.colour_distributions(pair))
    return (f"Figure 1.5 sets {what}, and Figure 1.6 "
            f"compares their colours: for each class and RGB channel, the share of pixels at each optical density. "
            f"Averaged over the classes and channels, {_pct(distance.mean())} of the pixels would have to change "
            f"optical-density bin to turn the synthetic colour histograms into the real ones (most for "
            f"{distance.idxmax()}: {_pct(distance.max())}; least for {distance.idxmin()}: {_pct(distance.min())}). "
            f"{basis}")


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


def sim_to_real_paragraph(data: dict) -> str:
    """The findings page's paragraph: what a network trained on the embedded synthetic cells does on real ones."""
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
            f"embedded cells are {above}, but every other number in this book describes the method and its "
            f"machinery on synthetic cells, not how well it classifies real marrow cells.")
    measured = f" Measured by `{data['command']}` on {data['measured']}"
    if data["generator_digest"] == writer.generator_digest():
        return text + measured + " with this version of the generator."
    return text + measured + ", for an earlier version of the generator: the figure may have changed since."


def captions(pair: realism.Pair | None) -> tuple[str, str]:
    """The captions of chapter 1's two comparison figures (a plain note where there are no real images)."""
    if pair is None:
        note = "No real images were at hand in this copy, so this figure was not drawn."
        return f"**Figure 1.5.** {note}", f"**Figure 1.6.** {note}"
    return (f"**Figure 1.5.** Real (first three) and synthetic (last three) cells of each class with at least "
            f"{realism.MIN_REAL} real images; real: {pair.real_source}, synthetic: {pair.synthetic_source}.",
            f"**Figure 1.6.** Share of pixels at each optical density (0: white) in the red, green and blue channels "
            f"of up to {realism.COLOUR_IMAGES} real (solid) and synthetic (dotted) images per class.")
