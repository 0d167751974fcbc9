"""The sentences and table cells of chapter 06's robustness sections, from frozen results, never typed numbers.

Every comparison a sentence makes follows from a verdict of :mod:`cytokit.evaluation.statistics`
(interval and test agreeing); an interval that is undefined (one image) is said in words.
"""

from __future__ import annotations

import math

from cytokit.evaluation import statistics
from cytokit.pages import words

#: The rankings as the page names them.
RANKING_NAMES = {"predicted": "LIME for the predicted class", "first": "LIME for class 0 (the study's code)",
                 "random": "a random ranking"}
#: What each comparison of the finding means when it comes out "better".
FINDING_WORDS = {"predicted_vs_first": "explaining the predicted class beats explaining class 0",
                 "lime_vs_random": "LIME's ranking beats a random one",
                 "predicted_vs_random": "LIME's ranking beats a random one"}
#: The criteria as a sentence names them.
CRITERION_WORDS = {"precision_weighted": "weighted precision (the study's)", "accuracy": "accuracy",
                   "balanced_accuracy": "balanced accuracy"}


def defined(x) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def listing(items) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else ""


def n_cell(v) -> str:
    """A smallest sufficient n with its interval over images: "15 (5–25)"; "all" is the full image only."""
    return f"{v.value} ({v.low}–{v.high})"


def share(value: float, low: float, high: float) -> str:
    """A share with its interval in percent: "39 % (34–45 %)", "39 % (one image: no interval)"."""
    if not defined(value):
        return "not measured"
    if not (defined(low) and defined(high)):
        return f"{100 * value:.0f} % (one image: no interval)"
    return f"{100 * value:.0f} % ({100 * low:.0f}–{100 * high:.0f} %)"


def number(value: float, low: float, high: float, digits: int = 2) -> str:
    """A number with its interval: "0.26 (0.20–0.32)"; undefined intervals and values said in words."""
    return words.number_with_interval(value, low, high, digits)


def _signed(x: float, digits: int) -> str:
    """``x`` with its sign, never "-0.000"."""
    return f"{round(float(x), digits) + 0.0:+.{digits}f}"


def signed(value: float, low: float, high: float, digits: int = 2) -> str:
    """A signed number with its interval: "+0.36 (+0.27 to +0.45)"; undefined intervals said in words."""
    if not defined(value):
        return "not measured"
    if not (defined(low) and defined(high)):
        return f"{_signed(value, digits)} (one image: no interval)"
    return f"{_signed(value, digits)} ({_signed(low, digits)} to {_signed(high, digits)})"


def difference_plain(c: statistics.Comparison, digits: int = 3, scale: float = 1.0, unit: str = "") -> str:
    """A paired difference with its interval and test, no verdict word: "+0.157 (+0.103 to +0.208; Wilcoxon
    signed-rank p < 0.001)"."""
    few = f"; {words.few_images(c.n)}" if words.few_images(c.n) else ""
    d, lo, hi = (scale * x for x in (c.difference, c.low, c.high))
    return (f"{_signed(d, digits)}{unit} ({_signed(lo, digits)} to {_signed(hi, digits)}; {c.test} "
            f"{words.p_value(c.p_value, c.p_floor)}{few})")


def difference(c: statistics.Comparison, digits: int = 3, scale: float = 1.0, unit: str = "") -> str:
    """A paired difference as a cell, with its verdict: "+0.157 (+0.103 to +0.208; Wilcoxon signed-rank
    p < 0.001): better"."""
    return f"{difference_plain(c, digits, scale, unit)}: {c.verdict}"


def points(c: statistics.Comparison) -> str:
    """A difference of two fractions as a cell, in percentage points."""
    return difference(c, 1, 100.0, " points")


def held_under(meaning: str, verdicts: dict, where: str) -> str:
    """Whether a conclusion holds under every one of ``verdicts`` (name -> verdict), none, or which."""
    held = [k for k, v in verdicts.items() if v == statistics.BETTER]
    against = [k for k, v in verdicts.items() if v == statistics.WORSE]
    if len(held) == len(verdicts):
        return f"That {meaning} holds under every {where} ({listing(verdicts)})."
    if not held:
        tail = f"; the opposite holds under {listing(against)}" if against else ""
        return f"That {meaning} holds under no {where}{tail}."
    return (f"That {meaning} holds under {listing(held)}, not under "
            f"{listing(k for k in verdicts if k not in held)}.")


# --------------------------------------------------------------------------- criterion


def criterion(table, images: int) -> str:
    """The threshold under each criterion, each ranking's smallest sufficient n, and which conclusions hold."""
    rows = table.table
    thresholds = [f"{CRITERION_WORDS[c]} {r['threshold']:.3f} (of {r['full_image']:.3f})" for c, r in rows.iterrows()]
    out = [f"On {images:,} explained images the threshold is two thirds of the full images' score: "
           f"{listing(thresholds)}."]
    for name in [r for r in RANKING_NAMES if r in rows.columns]:
        ns = [f"{n_cell(r[name])} by {CRITERION_WORDS[c].split(' (')[0]}" for c, r in rows.iterrows()]
        out.append(f"With {RANKING_NAMES[name]} the explanation images first reach it at n = {listing(ns)}.")
    if any(getattr(v, "value", None) == "all" or getattr(v, "high", None) == "all"
           for _, r in rows.iterrows() for v in r.values):
        out.append("“all” means that no tested n reaches the threshold: only the full image does.")
    for key in dict.fromkeys(k for _, k in table.comparisons):
        verdicts = {CRITERION_WORDS[c].split(" (")[0]: table.comparisons[(c, key)].verdict for c in rows.index}
        out.append(held_under(FINDING_WORDS[key], verdicts, "criterion"))
    out.append("Each verdict compares the criterion's curve averaged over n, paired over images "
               "(a bootstrap interval and a paired permutation test).")
    return " ".join(out)


# --------------------------------------------------------------------------- Grad-CAM's layer


def layer_choice(choice, images: int, side: int) -> str:
    """Which layer Grad-CAM is read on, on what evidence, and what it fails when nothing passes every check."""
    checks = listing(choice.checks)
    where = (f"Grad-CAM is read on {choice.layer} ({choice.block}, a {side} × {side} map), chosen on {images:,} "
             "explained images outside the subset on which this page reads its combined score and its randomisation")
    if choice.passed:
        return (f"{where}: the finest convolution block whose map passes every check ({checks}; a check passes when "
                "its interval and its test agree).")
    failed = listing(choice.failed) if choice.failed else "none"
    return (f"{where}. No block passes every check ({checks}) on these images, so the finest of those passing the "
            f"most is used; it fails {failed}: read its Grad-CAM with that in mind.")


def localisation(rows: dict, images: int) -> str:
    """How often each ranking's top superpixel lies in the synthetic cell, against a random superpixel's chance."""
    out = []
    for name, (hits, chance, c) in rows.items():
        verdict = {statistics.BETTER: "more often than chance", statistics.WORSE: "less often than chance"}.get(
            c.verdict, "not told apart from chance on these images")
        out.append(f"{name} {100 * hits:.0f} % against {100 * chance:.0f} %, {verdict} "
                   f"(difference {difference_plain(c, 2)})")
    return (f"On {images:,} synthetic cells whose masks are known and which the layer choice did not see, the top "
            "superpixel lies in the cell as follows (a superpixel counts when half its area does; chance is the share "
            "of the image's superpixels that do; exact Poisson-binomial test): " + "; ".join(out) + ".")


def no_masks() -> str:
    return ("These are real images: there are no cell masks, so whether Grad-CAM's top superpixel lies in the cell "
            "cannot be checked here; the layer was chosen by the checks that need no masks.")


# --------------------------------------------------------------------------- robustness


def robustness(result) -> str:
    """The finding in every setting: k of m, and where it fails, each comparison's verdict there."""
    k, m = result.holds_in
    failing = []
    for name, row in result.table.iterrows():
        if not row["holds"]:
            failing.append(f"{name} (predicted − class 0: {row['predicted_vs_first'].verdict}; LIME − random: "
                           f"{row['lime_vs_random'].verdict})")
    head = (f"On {result.images:,} images, the finding — {FINDING_WORDS['predicted_vs_first']} and "
            f"{FINDING_WORDS['lime_vs_random']}, each by the accuracy of the explanation images averaged over n, "
            f"paired over images — holds in {k} of {m} settings")
    tail = f"; not under {listing(failing)}. " if failing else ". "
    return head + tail + ("A setting counts only when both comparisons are called better (interval above zero and the "
                          "signed-rank test agreeing).")


def agreement(result) -> str:
    """How far the other settings' rankings agree with the study's: same superpixels, then other segmentations."""
    out = []
    same = result.agreement[result.agreement["feature_agreement_images"] > 0]
    other = result.agreement[result.agreement["feature_agreement_images"] == 0]
    for name, r in same.iterrows():
        top = share(r["feature_agreement"], r["feature_agreement_low"], r["feature_agreement_high"])
        out.append(f"{name}: top-5 feature agreement {top}, Spearman of the weights "
                   f"{number(r['spearman'], r['spearman_low'], r['spearman_high'])}")
    text = ("Against the study's setting (LIME seed, 128 perturbations, quickshift), "
            + ("; ".join(out) + "." if out else "no setting shares its superpixels."))
    if len(other):
        parts = [f"{name} {share(r['pixel_agreement'], r['pixel_agreement_low'], r['pixel_agreement_high'])} against "
                 f"{share(r['pixel_chance'], r['pixel_chance_low'], r['pixel_chance_high'])} by chance"
                 for name, r in other.iterrows()]
        text += (" Other segmentations share no superpixels, so their top five are compared by area (the pixels of "
                 f"the study's top five found among the other setting's top pixels): {'; '.join(parts)}.")
    return text + " Intervals are Student-t over images (Krishna et al.'s top-k agreement)."


# --------------------------------------------------------------------------- fills


def fill_distance(result, order: list, versus: dict, hidden: float) -> str:
    """Which fill changes what the model sees least, with paired verdicts against each other fill, and so which
    fills' verdicts weigh most."""
    table = result.table.xs(hidden, level="share")
    first = order[0]
    r = table.loc[first]
    clearly = [k for k, c in versus.items() if c.verdict == statistics.WORSE]  # first - k < 0: first moves less
    unclear = [k for k, c in versus.items() if c.verdict != statistics.WORSE]
    out = [f"With {100 * hidden:.0f} % of the superpixels hidden (the same ones for every fill), the {first} fill "
           f"moves images least from their originals in the network's penultimate features: by "
           f"{number(r['shift'], r['shift_low'], r['shift_high'])} of the mean distance between class centroids."]
    if versus:
        calls = [f"{k}: {difference_plain(c)}" for k, c in versus.items()]
        what = (f"clearly less than under {listing(clearly)}" if clearly else "not clearly less than under any other")
        what += f"; not clearly less than under {listing(unclear)}" if clearly and unclear else ""
        out.append(f"That is {what} ({first} minus each, paired over images: {'; '.join(calls)}).")
    full = result.table.xs(1.0, level="share") if 1.0 in result.table.index.get_level_values("share") else None
    if full is not None:
        real = result.real["absorbed"]
        absorbers = " or ".join(result.absorbers) if result.absorbers else "an absorbing class"
        parts = [f"{kind} {share(v['absorbed'], v['absorbed_low'], v['absorbed_high'])}"
                 for kind, v in full.iterrows()]
        out.append(f"Fully filled images are called {absorbers}: {'; '.join(parts)}, against "
                   f"{share(real['value'], *real['ci95'])} of the real images.")
    closest = [first] + unclear
    last = order[-1]
    if len(order) > 1 and last in clearly:
        out.append(f"So the verdicts under {listing(closest)} rest on the images closest to those the network was "
                   f"trained on and weigh most; those under {last}, whose images move furthest (by the mean, and "
                   f"clearly more than under {first}), weigh least.")
    else:
        out.append("These images cannot tell the fills apart clearly enough to weigh one fill's verdicts above "
                   "another's.")
    return " ".join(out)


# --------------------------------------------------------------------------- SRG


def combined_score(result, pairs) -> str:
    """Per comparison, under which fills it is called better (the SRG's paired verdicts)."""
    out = []
    for a, b in pairs:
        verdicts = {fill: result.comparisons[(fill, f"{a}_vs_{b}")].verdict for fill in result.images}
        out.append(held_under(f"{a}'s SRG beats {b}'s", verdicts, "fill"))
    images = listing(f"{fill} {n}" for fill, n in result.images.items())
    return (" ".join(out) + f" (images per fill: {images}; each verdict a paired mean over images, its Student-t "
            "interval and a signed-rank test).")


# --------------------------------------------------------------------------- independent randomisation


#: How a sentence lists the steps of each verdict of the independent randomisation.
DEPENDENCE_WORDS = {"depends on it": "depends on", "does not depend on it": "does not depend on",
                    "inconclusive": "is inconclusive for", "not measured": "is not measured for"}


def independent(result, layer: str) -> str:
    """Which layers each method's explanation depends on when that layer alone is randomised."""
    out = []
    for method, steps in result.dependence().items():
        parts = [f"{phrase} {listing(s for s, v in steps.items() if v == verdict)}"
                 for verdict, phrase in DEPENDENCE_WORDS.items() if verdict in steps.values()]
        shown = f"Grad-CAM (on {layer})" if method == "Grad-CAM" else method
        out.append(f"{shown} {'; '.join(parts) if parts else 'has no randomised step'}")
    return (f"With one layer at a time re-initialised (every other weight the trained model's), on "
            f"{result.images:,} images: " + ". ".join(out) + ". A step counts when the whole interval of the "
            "Spearman correlation with the trained explanation lies below half the lower end of the method's "
            "agreement with itself (depends on it), or at or above it (does not).")


def sizes(n_images: int, robust: int, subset: int, imputed: int, independent: int, choice: int) -> str:
    """Which images each check of the robustness sections runs on."""
    again = "all of them" if independent == subset else f"{independent:,} of them"
    return (f"The settings and the fills' distance run on a stratified subset of {robust:,} of the {n_images:,} "
            f"explained images; the combined score on the chapter's subset of {subset:,} ({imputed:,} of them under "
            "imputation, which solves a linear system per point of each curve); the independent randomisation "
            f"explains {again} again with each layer randomised; Grad-CAM's layer is chosen on {choice:,} other "
            "explained images.")
