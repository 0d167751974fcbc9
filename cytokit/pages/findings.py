"""The book's first page: what this copy found, with intervals and verdicts, and how it was built.

Everything here is read from the run folder (each chapter's ``metrics.json`` and
``run.json``); a chapter that did not run is named as such, never filled in.
"""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

import pandas as pd

from cytokit import io
from cytokit.pages import words

CHAPTERS = ("01_data", "02_baseline", "03_tuning", "04_augmentation", "05_test_results", "06_xai")
#: Packages whose versions decide the numbers, as the page lists them.
PACKAGES = ("tensorflow-cpu", "tensorflow", "keras", "keras-tuner", "numpy", "scipy", "scikit-learn",
            "scikit-image", "lime", "opencv-python-headless", "plotly", "papermill", "jupyter-book")
NOT_RUN = "not run in this copy"


def collect(run_dir) -> dict[str, dict]:
    """Each chapter's ``metrics.json`` in the run folder, by chapter (absent chapters left out)."""
    out = {}
    for name in CHAPTERS:
        path = Path(run_dir) / name / "metrics.json"
        if path.is_file():
            out[name] = io.read_json(path)
    return out


def _comparison_row(chapter: str, label: str, c: dict | None) -> dict:
    if not c:
        return {"chapter": chapter, "result": label, "value": NOT_RUN, "verdict": ""}
    value = f"{words.points(c['difference'])} points ({words.points(c['ci95'][0])} to {words.points(c['ci95'][1])})"
    return {"chapter": chapter, "result": label, "value": value, "verdict": c["verdict"]}


def _value_row(chapter: str, label: str, m: dict, key: str) -> dict:
    text = m.get(f"{key}_text")
    return {"chapter": chapter, "result": label, "value": text if text else NOT_RUN, "verdict": ""}


def key_results(found: dict[str, dict]) -> pd.DataFrame:
    """One row per headline result of chapters 02-06: its value with a 95 % interval, and a verdict."""
    m2, m3, m4 = found.get("02_baseline", {}), found.get("03_tuning", {}), found.get("04_augmentation", {})
    m5, m6 = found.get("05_test_results", {}), found.get("06_xai", {})
    rows = [
        _value_row("2", "baseline, validation accuracy", m2, "val_accuracy"),
        _value_row("2", "baseline, validation balanced accuracy", m2, "val_balanced_accuracy"),
        _comparison_row("3", "tuned − baseline, validation accuracy", m3.get("tuned_vs_baseline_accuracy")),
        _comparison_row("4", "augmented − baseline, validation balanced accuracy",
                        m4.get("augmented_vs_baseline_balanced_accuracy")),
        _seed_row(m4),
    ]
    for model in ("baseline", "tuned", "augmented"):
        rows.append(_value_row("5", f"{model}, test accuracy", m5, f"{model}_test_accuracy"))
        rows.append(_value_row("5", f"{model}, test balanced accuracy", m5, f"{model}_test_balanced_accuracy"))
    for c in m5.get("comparisons", []):
        if c["metric"] == "balanced_accuracy":
            rows.append(_comparison_row("5", f"{c['a']} − {c['b']}, test balanced accuracy", c))
    rows.append(_value_row("5", "neutrophil lineage: test images kept in the lineage", m5, "neu_recall"))
    rows += _xai_rows(m6)
    return pd.DataFrame(rows).set_index(["chapter", "result"])


def _seed_row(m4: dict) -> dict:
    spread = m4.get("augmented_minus_baseline_balanced_accuracy_seeds")
    if not spread or not spread.get("n"):
        return {"chapter": "4", "result": "augmented − baseline over training seeds", "value": NOT_RUN,
                "verdict": ""}
    value = (f"{words.points(spread['min'])} to {words.points(spread['max'])} points over {spread['n']} seed(s), "
             f"mean {words.points(spread['mean'])}")
    held = "same sign every seed" if spread["min"] > 0 or spread["max"] < 0 else "sign changes with the seed"
    return {"chapter": "4", "result": "augmented − baseline over training seeds", "value": value,
            "verdict": held if spread["n"] > 1 else ""}


def _xai_rows(m6: dict) -> list[dict]:
    rows = []
    for key, label in (("predicted", "LIME, predicted class"), ("first", "LIME, class index 0 (study's code)"),
                       ("random", "random superpixels")):
        text = m6.get(f"sufficient_n_{key}_text")
        rows.append({"chapter": "6", "result": f"smallest sufficient n, {label}",
                     "value": text if text else NOT_RUN, "verdict": ""})
    return rows


def summary(found: dict[str, dict]) -> str:
    """The first paragraph of the book: the data, then the chapters' conclusions as they were glued."""
    parts = [found.get("01_data", {}).get("data_source", "Chapter 1 did not run in this copy, so the data are "
                                                             "not described.")]
    m5, m6 = found.get("05_test_results", {}), found.get("06_xai", {})
    if "best_model_statement" in m5:
        parts.append(m5["best_model_statement"])
    if "conclusion" in m6:
        parts.append(m6["conclusion"])
    return "\n\n".join(parts)


def provenance(run_dir) -> pd.DataFrame:
    """Profile, data, machine and package versions of this copy."""
    record = io.read_json(Path(run_dir) / "run.json") if (Path(run_dir) / "run.json").is_file() else {}
    data = collect(run_dir).get("01_data", {})
    rows = {"profile": record.get("profile", "?"), "profile description": record.get("description", ""),
            "data": "synthetic (embedded default)" if data.get("is_synthetic") else
            ("real images" if data else NOT_RUN),
            "images": f"{data['n_files']:,}" if "n_files" in data else NOT_RUN,
            "started": record.get("started", "?"), "python": platform.python_version(),
            "machine": record.get("machine", platform.platform())}
    for package in PACKAGES:
        try:
            rows[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return pd.DataFrame({"value": rows})


def chapter_times(run_dir) -> pd.DataFrame:
    """Seconds each chapter took in the run that made it (chapters kept from an earlier run say so)."""
    record = io.read_json(Path(run_dir) / "run.json") if (Path(run_dir) / "run.json").is_file() else {}
    seconds = {c["chapter"]: c["seconds"] for c in record.get("chapters", [])}
    kept = {c["chapter"]: c["seconds"] for c in record.get("kept", [])}
    present = collect(run_dir)
    rows = [{"chapter": name, "seconds": seconds.get(name, kept.get(name)),
             "note": "" if name in seconds else ("kept from an earlier run" if name in present else NOT_RUN)}
            for name in CHAPTERS]
    return pd.DataFrame(rows).set_index("chapter")
