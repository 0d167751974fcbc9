"""The sentences of the pages that depend on a run's results, written here and glued there.

Every sentence that compares two numbers follows from a verdict (an interval), so no page
claims a difference its data do not support.
"""

from __future__ import annotations

from cytokit.evaluation.statistics import ALPHA, FEW_IMAGES, holm


#: How a metric reads in a sentence.
METRIC_WORDS = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy", "f1": "weighted F1",
                "macro_f1": "macro F1", "precision": "weighted precision", "recall": "weighted recall"}


def number_of(n: int, singular: str, plural: str | None = None) -> str:
    """A count with its noun in the right number: "1 image", "2 images", "1,203 classes"."""
    return f"{n:,} {singular if n == 1 else (plural or singular + 's')}"


def points(x: float) -> str:
    """A difference of two fractions in percentage points, signed."""
    return f"{100 * x:+.1f}"


def points_interval(low: float, high: float) -> str:
    """The 95 % interval of a difference in percentage points: "+4.1 to +20.0"."""
    return f"{points(low)} to {points(high)}"


def interval(low: float, high: float) -> str:
    """A 95 % interval of a fraction, in percent."""
    return f"{100 * low:.1f}–{100 * high:.1f} %"


def with_interval(value: float, low: float, high: float) -> str:
    """A fraction with its 95 % interval, as prose and tables show it: "81.8 % (78.0–85.3)"."""
    return f"{100 * value:.1f} % ({100 * low:.1f}–{100 * high:.1f})"


def number_with_interval(value: float, low: float, high: float, digits: int = 2) -> str:
    """A plain number with its 95 % interval: "0.62 (0.48–0.74)"; "0.62 (one image: no interval)"."""
    if low != low or high != high:
        return f"{value:.{digits}f} (one image: no interval)" if value == value else "not measured"
    return f"{value:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def against_published(value: float, low: float, high: float, published: float, whose: str) -> str:
    """Whether a published proportion lies inside this run's 95 % interval, said plainly."""
    where = ("inside this interval: these images agree with it" if low <= published <= high else
             "above this interval: these images do not reach it" if published > high else
             "below this interval: these images exceed it")
    return f"{whose.capitalize()}'s {100 * published:.1f} % lies {where}."


def verdict_clause(verdict: str, a: str, b: str) -> str:
    """What a comparison's verdict lets the page say."""
    if verdict == "better":
        return f"the {a} model is better on these images"
    if verdict == "worse":
        return f"the {a} model is worse on these images"
    return f"these images cannot tell the {a} and {b} models apart"


def p_value(p: float, floor: float = 0.0, short: bool = False) -> str:
    """A p-value as the page prints it: "p = 0.03", "p < 0.001", or at a permutation test's floor
    "p ≤ 0.0005, the smallest its 2,000 permutations can give" ("p ≤ 0.0005 (floor)" in a table)."""
    if floor and p <= floor * (1 + 1e-9):
        why = "(floor)" if short else f", the smallest its {round(1 / floor) - 1:,} permutations can give"
        return f"p ≤ {floor:.2g}{'' if why.startswith(',') else ' '}{why}"
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def adjusted_p(adjusted: float, p: float, floor: float = 0.0) -> str:
    """A Holm-adjusted p-value; a bound ("p ≤ 0.003") when the test's own p sat at its floor."""
    if floor and p <= floor * (1 + 1e-9):
        return f"p ≤ {adjusted:.2g}"
    return p_value(adjusted)


def listed(names) -> str:
    """Names in a sentence: "a", "a and b", "a, b and c"."""
    names = [str(n) for n in names]
    return " and ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + " and " + names[-1]


def why_unclear(c) -> str:
    """Why a comparison is no verdict although its interval or its test alone would call it."""
    if c.verdict != "no clear difference":
        return ""
    if c.low > 0 or c.high < 0:
        return " (the interval excludes zero but the test does not reach p < 0.05; a verdict needs both)"
    if c.p_value < ALPHA:
        return (" (the test finds that the two models call these images differently, but the interval, which "
                "carries the uncertainty of every class however few its images, includes zero; a verdict needs both)")
    return ""


def class_set(c, where: str = "") -> str:
    """The class set a class-averaged metric was averaged over: " over the 8 classes present (in them)"."""
    if c.metric in ("balanced_accuracy", "macro_f1") and getattr(c, "classes", 0):
        return f" over the {c.classes} classes present" + (f" {where}" if where else "")
    return ""


def few_images(n: int) -> str:
    """The mark of an interval built on fewer than 20 images."""
    return f"few images: {n}" if 0 < n < FEW_IMAGES else ""


def marked(text: str, n: int) -> str:
    """A value with its interval, marked when the interval rests on fewer than 20 images."""
    return f"{text} ({few_images(n)})" if few_images(n) else text


def comparison(c, value_a: float, value_b: float, images: str = "validation images") -> str:
    """One sentence comparing two models from a :class:`~cytokit.evaluation.statistics.Comparison`."""
    word = METRIC_WORDS.get(c.metric, c.metric)
    few = f"; {few_images(c.n)}" if few_images(c.n) else ""
    return (f"On the {images} the {c.a} model's {word}{class_set(c, 'in them')} is {100 * value_a:.1f} % against the {c.b} "
            f"model's {100 * value_b:.1f} %: a difference of {points(c.difference)} points (95 % interval "
            f"{points(c.low)} to {points(c.high)}; {c.test} {p_value(c.p_value, c.p_floor)}{few}), so "
            f"{verdict_clause(c.verdict, c.a, c.b)}{why_unclear(c)}.")


def family(comparisons: list[dict], what: str = "comparisons on this page") -> str:
    """What α = 0.05 means for a family of comparisons, and which verdicts survive Holm's correction."""
    called = [c for c in comparisons if c["verdict"] != "no clear difference"]
    if len(comparisons) < 2:
        return ""
    kept = [c for c, p in zip(comparisons, holm([c["p_value"] for c in comparisons]))
            if c["verdict"] != "no clear difference" and p < ALPHA]
    n = len(comparisons)
    chance = 1 - (1 - ALPHA) ** n
    head = (f"Each of the {n} {what} is read at α = {ALPHA:g}, so even if no difference were real the chance "
            f"that at least one is called better or worse would be up to {100 * chance:.0f} % (for independent "
            "tests).")
    if not called:
        return head + " None is called better or worse here."
    return (head + f" Here {len(called)} {'is' if len(called) == 1 else 'are'} called better or worse; with Holm's "
            f"correction for all {n}, which keeps that chance at 5 % or less, {len(kept)} of them still "
            f"{'is' if len(kept) == 1 else 'are'}.")
