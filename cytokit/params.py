"""Checks on notebook parameters, applied by the runner before any chapter starts.

A typo in a profile or on the command line should cost seconds, not the hour a
chapter ran before it tripped over ``epochs: -5``.
"""

from __future__ import annotations

import numbers


class ParameterError(ValueError):
    """A parameter value that no chapter could use; names the parameter and the rule."""


def _int_at_least(low):
    def check(v):
        return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= low
    return check, f"an integer >= {low}"


def _in_open_closed(low, high):
    def check(v):
        return isinstance(v, numbers.Real) and not isinstance(v, bool) and low < v <= high
    return check, f"a number in ({low}, {high}]"


def _in_open(low, high):
    def check(v):
        return isinstance(v, numbers.Real) and not isinstance(v, bool) and low < v < high
    return check, f"a number in ({low}, {high})"


def _in_closed(low, high):
    def check(v):
        return isinstance(v, numbers.Real) and not isinstance(v, bool) and low <= v <= high
    return check, f"a number in [{low}, {high}]"


def _one_of(*choices):
    return (lambda v: v in choices), "one of " + ", ".join(repr(c) for c in choices)


def _min_image_size() -> int:
    return 32  # cytokit.models.MIN_IMAGE_SIZE, without importing TensorFlow here


RULES = {
    "image_size": _int_at_least(_min_image_size()),
    "expected_size": _int_at_least(1),
    "synth_images": _int_at_least(21),
    "synth_seed": _int_at_least(0),
    "synth_difficulty": _in_closed(0, 1),
    "seed": _int_at_least(0),
    "examples_per_class": _int_at_least(1),
    "epochs": _int_at_least(1),
    "max_epochs": _int_at_least(1),
    "refit_max_epochs": _int_at_least(1),
    "max_trials": _int_at_least(1),
    "patience": _int_at_least(0),
    "batch_size": _int_at_least(1),
    "target_per_class": _int_at_least(1),
    "learning_rate": _in_open_closed(0, 10),
    "bn_momentum": _in_open(0, 1),
    "fraction": _in_open_closed(0, 1),
    "num_samples": _int_at_least(1),
    "model_source": _one_of("run", "study"),
    "eval_split": _one_of("train", "val", "test", "all"),
    "label_mode": _one_of("predicted", "true", "first"),
}


def check(params: dict, where: str = "") -> None:
    """Raise :class:`ParameterError` for the first value outside its rule."""
    for name, value in params.items():
        rule = RULES.get(name)
        if rule is None or value is None:
            continue
        ok, expected = rule
        if not ok(value):
            place = f" for {where}" if where else ""
            raise ParameterError(f"parameter {name}={value!r}{place} must be {expected}; nothing was run")
