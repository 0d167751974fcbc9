"""Notebook parameters: what each chapter declares, and the rule every value must meet.

A typo in a profile or on the command line should cost seconds, not the hour a chapter
ran before it tripped over ``epochs: -5``; the runner checks every value first.
"""

from __future__ import annotations

import ast
import json
import numbers
from pathlib import Path

from cytokit.data.synthetic.writer import MAX_IMAGES, MIN_IMAGES


class ParameterError(ValueError):
    """A parameter value that no chapter could use; names the parameter and the rule."""


def declared(notebook) -> dict:
    """Names and default values of a notebook's ``parameters`` cell (literal assignments)."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    source = next(("".join(c["source"]) for c in cells
                   if "parameters" in c.get("metadata", {}).get("tags", [])), "")
    out = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                out[node.targets[0].id] = None
    return out


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _int_at_least(low, high=None):
    top = f" and <= {high:,}" if high is not None else ""
    return (lambda v: _is_int(v) and v >= low and (high is None or v <= high)), f"an integer >= {low}{top}"



def _in_open_closed(low, high):
    return (lambda v: _is_real(v) and low < v <= high), f"a number in ({low}, {high}]"


def _in_open(low, high):
    return (lambda v: _is_real(v) and low < v < high), f"a number in ({low}, {high})"


def _in_closed(low, high):
    return (lambda v: _is_real(v) and low <= v <= high), f"a number in [{low}, {high}]"


def _one_of(*choices):
    return (lambda v: v in choices), "one of " + ", ".join(repr(c) for c in choices)


def _cache():
    return (lambda v: isinstance(v, bool) or v in ("memory", "disk", "auto")), \
        "true, false, 'memory', 'disk' (a file in the run folder) or 'auto' (memory when it fits, else disk)"


def _text():
    return (lambda v: isinstance(v, str) and v != ""), "a non-empty string"


def _folder():
    return (lambda v: v is None or (isinstance(v, str) and v != "")), "a folder path or None"


def _int_list(low, high):
    def check(v):
        return isinstance(v, list) and len(v) >= 1 and all(_is_int(x) and low <= x <= high for x in v) \
            and len(set(v)) == len(v)
    return check, f"a list of distinct integers from {low} to {high:,}, e.g. [0, 1, 2]"


#: Largest seed: NumPy's and scikit-learn's generators take seeds below 2**32, and chapters add small
#: offsets to a seed (seed + k for LIME's repeats, augmentation rows), so seeds stop at 2**31 - 1.
MAX_SEED = 2**31 - 1
#: Most tuner processes on one machine (chapter 03's ``tuner_workers``, ``cytokit tune --local-workers``).
MAX_TUNER_WORKERS = 64


#: Smallest image side the network's four pooling stages accept (cytokit.models.network.MIN_IMAGE_SIZE).
MIN_IMAGE_SIZE = 32
#: Largest image side any chapter accepts: the study's 250 px with room for larger scans.
MAX_IMAGE_SIZE = 1024

RULES = {
    "profile": _text(),
    "run_dir": _folder(),
    "data_dir": _folder(),
    "study_models_dir": _folder(),
    "image_size": _int_at_least(MIN_IMAGE_SIZE, MAX_IMAGE_SIZE),
    "expected_size": _int_at_least(1, 100_000),
    # chapter 01 needs at least 3 images in each of the 21 classes to split them train/val/test
    "synth_images": _int_at_least(MIN_IMAGES, MAX_IMAGES),
    "synth_seed": _int_at_least(0, MAX_SEED),
    "synth_difficulty": _in_closed(0, 1),
    "seed": _int_at_least(0, MAX_SEED),
    "seeds": _int_list(0, MAX_SEED),
    "examples_per_class": _int_at_least(1, 50),
    "epochs": _int_at_least(1),
    "max_epochs": _int_at_least(1),
    "refit_max_epochs": _int_at_least(1),
    "max_trials": _int_at_least(1),
    "patience": _int_at_least(0),
    "batch_size": _int_at_least(1, 65_536),
    "target_per_class": _int_at_least(1),
    "learning_rate": _in_open_closed(0, 10),
    "bn_momentum": _in_open(0, 1),
    "n_images": _int_at_least(1),
    "n_subset": _int_at_least(2),
    "lime_seeds": _int_at_least(2, 20),
    "more_samples": _int_at_least(2, 100_000),
    # chapter 06's robustness sections: images for the settings and the fills' distance; of the subset, images read
    # under imputation by the combined score and explained again by the independent randomisation; images Grad-CAM's
    # layer is chosen on (paired intervals need two)
    "n_robust": _int_at_least(2),
    "n_imputed": _int_at_least(2),
    "n_independent": _int_at_least(2),
    "n_layer_choice": _int_at_least(2),
    "xai_split": _one_of("train", "val", "test", "all"),
    "num_samples": _int_at_least(2),
    "cache_images": _cache(),
    "tuner_workers": _int_at_least(1, MAX_TUNER_WORKERS),
    "precision": _one_of("float32", "mixed_bfloat16"),
    "distribute": _one_of("auto", "off", "mirrored"),
    "model_source": _one_of("run", "study"),
    "eval_split": _one_of("train", "val", "test", "all"),
    "label_mode": _one_of("predicted", "true", "first"),
}


def check(params: dict, where: str = "") -> None:
    """Raise :class:`ParameterError` for a value outside its rule, or a parameter with no rule."""
    place = f" for {where}" if where else ""
    for name, value in params.items():
        rule = RULES.get(name)
        if rule is None:
            raise ParameterError(f"parameter {name}{place} has no rule in cytokit.book.parameters.RULES; "
                                 "nothing was run")
        ok, expected = rule
        if not ok(value):
            raise ParameterError(f"parameter {name}={value!r}{place} must be {expected}; nothing was run")
    if "num_samples" in params and "more_samples" in params and params["more_samples"] <= params["num_samples"]:
        raise ParameterError(f"parameter more_samples={params['more_samples']!r}{place} must be more than "
                             f"num_samples={params['num_samples']!r}: chapter 06 compares LIME with more "
                             "perturbations against the study's number; nothing was run")
