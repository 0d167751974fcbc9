"""Chapter 06's sentences, from plain numbers and verdicts, so each is tested on hand-made values."""

from __future__ import annotations

import math

from cytokit.evaluation.statistics import FEW_IMAGES, Comparison, Interval
from cytokit.pages.words import few_images, p_value, points, with_interval

#: How a randomisation verdict reads, and why.
RANDOMISATION_WORDS = {
    "passes": ("passes", "with the weights randomised, the explanations no longer resemble those of the trained "
                         "model, as an explanation of the model must"),
    "fails": ("fails", "their explanations of the randomised model still resemble the trained model's, so they say "
                       "little about what the model learned"),
    "inconclusive": ("is inconclusive", "the drop after randomisation is not clear against the method's own "
                                        "seed-to-seed agreement on this subset"),
    "not measured": ("is not measured", "no correlation could be computed (constant explanations)"),
}


def images(n: int) -> str:
    """A count of images with its noun in the right number."""
    return f"{n:,} image" if n == 1 else f"{n:,} images"


def decimals(*values: float) -> int:
    """Decimals that show the largest of ``values`` with two significant digits, at least three (AUCs of a model
    whose probabilities barely move differ in the fourth decimal)."""
    largest = max((abs(v) for v in values if v == v), default=0.0)
    return 3 if largest == 0 or largest >= 0.01 else min(6, 1 - math.floor(math.log10(largest)))


def signed(c: Comparison) -> str:
    """A difference of AUCs with its interval: "-0.021 (95 % interval -0.030 to -0.012"."""
    d = decimals(c.difference, c.low, c.high)
    return f"{c.difference:+.{d}f} (95 % interval {c.low:+.{d}f} to {c.high:+.{d}f}"


def reference(correct: int, total: int, low: float, high: float, precision: float, share: str) -> str:
    """The full images' scores that the study's bar is a share of, and whether the bar can tell rankings apart."""
    out = (f"On the full images the model calls {correct} of {images(total)} right (accuracy "
           f"{with_interval(correct / total, low, high)}), with a weighted precision of {100 * precision:.1f} %; "
           f"a ranking suffices where its explanation images keep {share} of that precision.")
    if precision == 0:
        out += (" With a full-image precision of 0 every n clears that bar, so the sufficient n of this run says "
                "nothing about the rankings.")
    return out


def sufficient_n_with_interval(n, low, high) -> str:
    """A smallest sufficient n with its interval over images: "15 (5–25)", "never (…)"."""
    def show(k):
        return "none tested" if k is None else str(k)
    if n is None and low is None:
        return "never (not within the n tested)"
    return f"{show(n) if n is not None else 'never'} ({show(low)}–{show(high)})"


def difference_cell(c: Comparison) -> str:
    """A paired difference in a table cell: "+12.3 points (+4.1 to +20.0; p = 0.002): better", marked when it
    rests on few images."""
    few = f"; {few_images(c.n)}" if few_images(c.n) else ""
    return f"{points(c.difference)} points ({points(c.low)} to {points(c.high)}; {p_value(c.p_value, c.p_floor)}{few}): " \
           f"{c.verdict}"


def across_fills(meaning: str, verdicts: dict[str, str]) -> str:
    """Whether a conclusion holds under every fill, or which fills it depends on."""
    held = [k for k, v in verdicts.items() if v == "better"]
    if len(held) == len(verdicts):
        return f"That {meaning} holds under every fill ({', '.join(verdicts)})."
    if not held:
        against = [k for k, v in verdicts.items() if v == "worse"]
        tail = f"; the opposite holds under {', '.join(against)}" if against else ""
        return f"That {meaning} holds under no fill{tail}."
    return (f"That {meaning} depends on the fill: it holds under {', '.join(held)}, not under "
            f"{', '.join(k for k in verdicts if k not in held)}.")


def randomisation(verdicts: dict[str, str]) -> str:
    """Which explanation methods pass the model-randomisation sanity check, and which cannot be judged."""
    if not verdicts:
        return "The randomisation check did not run."
    out = []
    for verdict, (head, why) in RANDOMISATION_WORDS.items():
        methods = [m for m, v in verdicts.items() if v == verdict]
        if methods:
            out.append(f"{' and '.join(methods)}: the sanity check {head} — {why}.")
    return " ".join(out)


def stability(seed_top5: Interval, seed_spearman: Interval, samples_top5: Interval, seeds: int, samples: int,
              more: int) -> str:
    """How far LIME's own randomness moves its ranking: across seeds, and against more perturbations."""
    if seed_top5.n < 2 or seed_spearman.n < 2:
        return (f"Only {images(min(seed_top5.n, seed_spearman.n))} could be compared across {seeds} LIME seeds: "
                "too few for an interval, so this page cannot say how stable LIME is.")
    few = " (few images)" if seed_top5.n < FEW_IMAGES else ""
    return (f"On {images(seed_top5.n)}{few}, the predicted class's top five superpixels overlap by "
            f"{100 * seed_top5.estimate:.0f} % on average across {seeds} LIME seeds (95 % interval "
            f"{100 * seed_top5.low:.0f}–{100 * seed_top5.high:.0f} %) and the weights correlate at Spearman "
            f"{seed_spearman.estimate:.2f} ({seed_spearman.low:.2f}–{seed_spearman.high:.2f}); with "
            f"{more:,} perturbations instead of {samples} the top five overlap by "
            f"{100 * samples_top5.estimate:.0f} %{_percent_interval(samples_top5)}.")


def _percent_interval(iv: Interval) -> str:
    return "" if iv.low != iv.low else f" ({100 * iv.low:.0f}–{100 * iv.high:.0f} %)"


def deletion(differences: dict[str, Comparison]) -> str:
    """Deletion and insertion of LIME's ranking against a random one, with verdicts (lower is better in deletion)."""
    out = []
    for kind in ("deletion", "insertion"):
        c = differences[kind]
        wins = c.verdict == ("worse" if kind == "deletion" else "better")
        verdict = ("LIME's ranking moves the probability faster than a random one" if wins else
                   "this sample cannot tell LIME's ranking from a random one" if c.verdict == "no clear difference"
                   else "a random ranking does better than LIME's")
        few = f"; {few_images(c.n)}" if few_images(c.n) else ""
        out.append(f"In {kind}, LIME − random AUC is {signed(c)}; {c.test} {p_value(c.p_value, c.p_floor)}{few}): "
                   f"{verdict}.")
    return " ".join(out)


def ground_truth(is_synthetic: bool) -> str:
    """What the localisation check can say on this data."""
    if is_synthetic:
        return ("On synthetic cells the true cell and nucleus masks are known. The table gives the share of the "
                "top-n superpixels' area that lies inside the cell and inside its nucleus, beside the share a "
                "random choice of superpixels gets.")
    return ("These are real images: there are no cell or nucleus masks, so the localisation of the "
            "explanations cannot be checked against ground truth here.")


def per_class(codes: list[str], least: int, highlight: str) -> str:
    """Which classes have their own curve in the per-class figure."""
    if not codes:
        return (f"No class has {least} or more explained images in this run, so the figure shows how many each "
                "class has instead of curves; a larger sample (more images explained) gives each common class its "
                "own.")
    thick = f" {highlight}, the class the study follows throughout, is drawn thick." if highlight in codes else ""
    return (f"{len(codes)} {'class has' if len(codes) == 1 else 'classes have'} {least} or more explained images "
            f"and {'its' if len(codes) == 1 else 'their'} own curve: {', '.join(codes)}.{thick}")


def conclusion(grey: dict[str, str], fills_statement: str, share: str, is_synthetic: bool) -> str:
    """Chapter 06's closing sentences: the study's criterion under the grey fill, then what holds across fills.

    ``grey`` maps "predicted", "first" and "random" to the smallest sufficient n with its interval, as text.
    """
    out = [f"Under the study's grey fill, the explanation images reach {share} of the full-image weighted "
           f"precision at n = {grey['predicted']} when LIME explains the predicted class, "
           f"n = {grey['first']} when it explains class 0 as the study's code did, and "
           f"n = {grey['random']} with random superpixels (95 % intervals over images).", fills_statement]
    if is_synthetic:
        out.append("These are synthetic cells: the numbers show the method, not a finding about real marrow cells.")
    return " ".join(x for x in out if x)


def checks(randomisation_verdicts: dict[str, str], deletion_difference: Comparison, seed_top5: Interval,
           seeds: int) -> str:
    """The reviewer's checks in one sentence: LIME's randomisation verdict, deletion against random, LIME's seeds."""
    head = RANDOMISATION_WORDS[randomisation_verdicts.get("LIME", "not measured")][0]
    c = deletion_difference
    deletion_words = {"worse": "greying LIME's top superpixels first lowers the explained class's probability "
                               "faster than greying random ones",
                      "no clear difference": "this sample cannot tell LIME's ranking from a random one in deletion",
                      "better": "greying random superpixels first lowers the probability faster than LIME's ranking"}
    few = f"; {few_images(c.n)}" if few_images(c.n) else ""
    seeds_part = (f"across {seeds} LIME seeds its top five superpixels overlap by {100 * seed_top5.estimate:.0f} % "
                  f"({100 * seed_top5.low:.0f}–{100 * seed_top5.high:.0f} %)" if seed_top5.n >= 2 else
                  f"too few images were compared across {seeds} LIME seeds to say how stable LIME is")
    return (f"Of the reviewer's checks, LIME's randomisation check {head}; {deletion_words[c.verdict]} (LIME − "
            f"random deletion AUC {signed(c)}{few})); and {seeds_part}.")
