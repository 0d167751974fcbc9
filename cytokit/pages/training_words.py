"""The sentences of chapters 02-04, each from one result of :mod:`cytokit.pages.training` or
:mod:`cytokit.pages.validation`.

Every sentence is true for the run that printed it: synthetic or real cells, one seed or
several, early stopping that fired or not, an earlier chapter run or not.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from cytokit.pages import words

if TYPE_CHECKING:
    from cytokit.pages.training import Hyperparameters, Training
    from cytokit.pages.validation import Claim, Paired

#: How the optimisers of the study's search read in a sentence.
OPTIMIZER_WORDS = {"adam": "Adam", "sgd": "SGD"}


def epochs(n: int) -> str:
    """A count of epochs as a sentence reads it: "1 epoch", "5 epochs"."""
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def stopping(fit: Training) -> str:
    """How long a fit trained, and what early stopping did (or that there was none)."""
    if fit.patience is None:
        return f"It trained all {epochs(fit.epochs_run)}, without early stopping, as the study's baseline did."
    rule = f"Early stopping (a patience of {epochs(fit.patience)} on the validation loss)"
    best = (f"the weights of epoch {fit.best_epoch}, the lowest validation loss, were kept"
            if fit.best_epoch else "the weights of the lowest validation loss were kept")
    if fit.stopped_early:
        return f"{rule} ended training after epoch {fit.epochs_run} of at most {fit.max_epochs}, and {best}."
    if fit.patience + 1 >= fit.max_epochs:
        return (f"{rule} could not end training sooner: with at most {epochs(fit.max_epochs)} it needs a patience "
                f"below {epochs(fit.max_epochs - 1)} to act. It trained all {epochs(fit.epochs_run)}, and {best}.")
    return f"{rule} did not fire: training ran all {epochs(fit.epochs_run)}, and {best}."


def paired(p: Paired) -> str:
    """One sentence comparing two models, with the part of the difference that rests on tiny classes."""
    if p.comparison is None:
        return f"The {p.absent} model's chapter has not run, so it is not compared here."
    return words.comparison(p.comparison, *p.values, images=p.images) + tiny_classes(p)


def tiny_classes(p: Paired) -> str:
    """Which part of a balanced-accuracy difference comes from classes of one or two images, when any does."""
    count, share = p.tiny_classes
    if count == 0 or p.comparison is None or abs(share) < 0.0005:
        return ""
    return (f" The {_classes(count)} with only one or two of these images contribute {words.points(share)} points "
            "of the difference: a single image moves such a class's recall by 50 or 100 points.")


def _classes(n: int) -> str:
    return "1 class" if n == 1 else f"{n} classes"


def images(n: int, what: str = "image") -> str:
    """A count of images as a sentence reads it: "1 distinct training image", "12 distinct training images"."""
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def improved(n: int) -> str:
    """How many classes' F1 rose."""
    return "The F1 of no class rose." if n == 0 else f"The F1 of {_classes(n)} rose."


def seed_spread(name: str, spread: dict, metric: str = "balanced_accuracy") -> str:
    """How much a metric moved between training seeds (the split fixed)."""
    word = words.METRIC_WORDS.get(metric, metric)
    if spread["n"] < 2:
        return f"Only one training seed was run, so this page cannot say how much the {word} moves with the seed."
    return (f"Over {spread['n']} training seeds (the same split, other initial weights and batch order) the "
            f"{name} model's validation {word} ranged from {100 * spread['min']:.1f} % to "
            f"{100 * spread['max']:.1f} % (mean {100 * spread['mean']:.1f} %, standard deviation "
            f"{100 * spread['sd']:.1f} points).")


def difference_over_seeds(spread: dict, a: str, b: str, metric: str = "balanced_accuracy") -> str:
    """How a paired difference between two models moved between seeds, and whether its sign held."""
    word = words.METRIC_WORDS.get(metric, metric)
    if spread["n"] < 2:
        return f"With one seed, the spread of the {a} − {b} difference in {word} over seeds is unknown."
    held = ("it was positive for every seed" if spread["min"] > 0 else
            "it was negative for every seed" if spread["max"] < 0 else "it did not keep one sign over the seeds")
    return (f"Seed by seed, {a} − {b} in validation {word} ranged from {words.points(spread['min'])} to "
            f"{words.points(spread['max'])} points over {spread['n']} seeds (mean {words.points(spread['mean'])}): "
            f"{held}.")


def claim(cl: Claim) -> str:
    """Whether this run supports a claim that one model beats another, from one seed's verdict and the seeds."""
    return _verdict(cl) + _caveats(cl)


def _verdict(cl: Claim) -> str:
    c, spread = cl.paired.comparison, cl.seeds.spread
    if c is None:
        return f"**This run cannot weigh the claim that {cl.text}:** the model it compares against has not run."
    word = words.METRIC_WORDS.get(c.metric, c.metric)
    if c.verdict == "better" and spread["n"] > 1 and spread["min"] > 0:
        return (f"**This run supports the claim that {cl.text}:** the {word} of the {c.a} model is higher on these "
                f"images beyond the interval, and for every one of {spread['n']} training seeds.")
    if c.verdict == "better":
        caveat = ("but over the training seeds the difference changed sign, so a gap of this size also arises from "
                  "the seed alone" if spread["n"] > 1 else "but only one training seed was run")
        return f"**This run leans towards the claim that {cl.text}** on these images, {caveat}."
    if c.verdict == "worse":
        return (f"**This run does not support the claim that {cl.text}:** on these images the {c.a} model's {word} "
                "is lower beyond the interval.")
    return (f"**This run cannot tell whether {cl.text}:** the difference in {word} is no clear difference at this "
            "scale (its interval includes zero, or its test does not confirm it).")


def _caveats(cl: Claim) -> str:
    c, (count, share) = cl.paired.comparison, cl.paired.tiny_classes
    out = ""
    if c is not None and count and c.difference and share / c.difference > 0.5:
        out += (f" Most of the difference ({words.points(share)} of {words.points(c.difference)} points) comes from "
                f"{_classes(count)} with only one or two validation images.")
    if cl.synthetic:
        out += (" These are synthetic cells: the verdict shows the method at work, not evidence about real marrow "
                "cells.")
    return out


def power_of_ten(x: float) -> str:
    """A rate such as 1e-3 as the page prints it, "10⁻³" (other numbers as they are)."""
    exponent = round(math.log10(x)) if x > 0 else None
    if exponent is None or not math.isclose(x, 10.0 ** exponent):
        return f"{x:g}"
    return "10" + str(exponent).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))


def hyperparameters(hp: Hyperparameters) -> str:
    """Which hyperparameters a network trains with, and where they come from."""
    return (f"The network trains with the hyperparameters of {hp.source}: dropout {hp.dropout:g}, the "
            f"{OPTIMIZER_WORDS.get(hp.optimizer, hp.optimizer)} optimiser, a learning rate of "
            f"{power_of_ten(hp.learning_rate)} and batches of {hp.batch_size}.")
