"""Chapter 03's results and their sentences on hand-made trials; the search's settings read in one place."""

from __future__ import annotations

import ast
import re

import pandas as pd
import pytest

from conftest import ROOT
from cytokit.book.facts import checked_facts
from cytokit.models import search_settings
from cytokit.pages import tuning

RAW = re.compile(r"\b(?i:nan|inf)\b|\bNone\b|[\[\]{}]|np\.|\(s\)")


def _trials(epochs_run, status="COMPLETED") -> pd.DataFrame:
    n = len(epochs_run)
    return pd.DataFrame({"trial": [f"{i:02d}" for i in range(n)], "status": [status] * n, "dropout": [0.2] * n,
                         "optimizer": ["adam"] * n, "learning_rate": [1e-3] * n, "batch_size": [32] * n,
                         "val_accuracy": [0.5] * n, "epochs_run": epochs_run, "seconds": [2.0] * n}).set_index("trial")


def _search(epochs_run, max_epochs, patience, **kw) -> tuning.Search:
    return tuning.Search(None, _trials(epochs_run, **kw), 1, 1, 9.5, max_epochs, patience)


def test_a_search_counts_the_trials_early_stopping_ended():
    facts = checked_facts(_search([3, 2, 3, 2], max_epochs=3, patience=1))
    assert (facts["trials_completed"], facts["trials_stopped_early"], facts["search_seconds"]) == (4, 2, 8.0)
    assert facts["search_stopping_sentence"] == ("Of the completed trials, early stopping (a patience of 1 epoch on "
                                                 "the validation loss) ended 2 of the 4 before epoch 3.")
    assert "ended none" in _search([3, 3], max_epochs=3, patience=1).stopping_sentence()


def test_a_search_whose_trials_are_too_short_for_its_patience_says_early_stopping_could_not_act():
    text = _search([3, 3, None], max_epochs=3, patience=5).stopping_sentence()
    assert not RAW.search(text) and "could not end any trial sooner" in text


def test_only_completed_trials_are_counted():
    search = _search([1, 1], max_epochs=3, patience=1, status="FAILED")
    assert checked_facts(search)["trials_completed"] == 0 and search.stopped_early == 0


def test_the_search_space_table_reads_as_words_not_python():
    table = tuning.space_table()
    assert list(table.index) == ["dropout", "optimizer", "learning rate", "batch size"]
    assert not any(RAW.search(v) or "'" in v or "e-0" in v for v in table["values"]), list(table["values"])
    assert table.loc["optimizer", "values"] == "Adam, SGD"
    assert table.loc["learning rate", "values"] == "10⁻³, 10⁻⁴, 10⁻⁵ (with SGD, 10⁻⁵ trains at 10⁻⁴)"
    assert (tuning.power_of_ten(1e-3), tuning.power_of_ten(0.5), tuning.power_of_ten(100)) == ("10⁻³", "0.5", "10²")


def test_the_studys_trials_are_drawn_only_when_they_are_here():
    absent = tuning.StudyTrials(None)
    assert absent.figure() is None and "are not shown" in checked_facts(absent)["study_trials_note"]
    present = tuning.StudyTrials(_trials([3, 3]))
    assert "the study's 2 trials" in present.facts()["study_trials_note"]
    assert present.figure().layout.xaxis.title.text == "dropout"


def test_search_settings_are_parsed_once_with_their_defaults_and_checks(tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,cls,split\n")
    cfg = search_settings.on_this_machine(manifest, tmp_path, tmp_path / "tuner", image_size="48", max_trials=2,
                                          max_epochs=3, patience=1, seed=0, bn_momentum=0.9, cache="true")
    assert (cfg.role, cfg.tuner_id, cfg.image_size, cfg.cache, cfg.precision) == ("chief", "chief", 48, True, "float32")
    with pytest.raises(ValueError, match="missing --bn-momentum"):
        search_settings.on_this_machine(manifest, tmp_path, tmp_path / "tuner", image_size=48, max_trials=2,
                                        max_epochs=3, patience=1, seed=0, cache=True)
    with pytest.raises(ValueError, match="manifest .* not found"):
        search_settings.on_this_machine(tmp_path / "none.csv", tmp_path, tmp_path, image_size=48, max_trials=2,
                                        max_epochs=3, patience=1, seed=0, bn_momentum=0.9, cache=True)


def _imported(module: str) -> set[str]:
    """The cytokit modules ``module`` imports, at its top or inside its functions."""
    tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cytokit"):
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


def test_the_search_modules_import_each_other_in_one_direction_only():
    assert "cytokit.models.distributed" not in _imported("cytokit.models.tuning")
    assert "cytokit.models.search" not in _imported("cytokit.models.tuning") | _imported("cytokit.models.distributed")
    assert "cytokit.book.cluster" not in _imported("cytokit.models.search")
