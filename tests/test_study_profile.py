"""The study profile: the study's own models on the real sample, through chapters 01, 05 and 06."""

import json
import subprocess
import sys

import pytest

from conftest import ROOT, shared_dir

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def study_run(tmp_path_factory, real_sample):
    models = shared_dir() / "reference" / "study-models"
    if not (models / "augmented.keras").is_file():
        pytest.skip(f"the study's models are not at {models}")
    out = tmp_path_factory.mktemp("study") / "run"
    cli = [sys.executable, "-m", "cytokit.cli", "run", "--profile", "study", "--out", str(out),
           "--data-dir", str(real_sample), "--study-models", str(models),
           "-p", "n_images=24", "-p", "n_subset=4", "-p", "lime_seeds=2", "-p", "more_samples=200"]
    proc = subprocess.run(cli, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def test_only_the_study_chapters_ran(study_run):
    assert sorted(p.name for p in study_run.glob("[0-9][0-9]_*") if p.is_dir()) == \
        ["01_data", "05_test_results", "06_xai"]
    assert (study_run / "book" / "_build" / "html" / "notebooks" / "06_xai.html").is_file()


def test_the_xai_page_has_the_same_structure_on_real_images(study_run):
    import pages

    assert pages.xai_structure_problems(study_run) == []
    m = json.loads((study_run / "06_xai" / "metrics.json").read_text())
    assert "cannot be checked" in m["ground_truth_statement"]  # no masks for real cells, said so


def test_study_models_score_as_published_on_the_real_sample(study_run):
    m = json.loads((study_run / "05_test_results" / "metrics.json").read_text())
    assert m["model_source"] == "study" and m["n_test"] == 775
    assert abs(m["augmented_test_accuracy"] - 0.772) < 0.006  # 77.2 % measured with the study's model


def test_predicted_class_curve_beats_the_reference_codes_class_0(study_run):
    m = json.loads((study_run / "06_xai" / "metrics.json").read_text())
    grey = m["fills"]["grey"]  # the study's own fill
    predicted, first = grey["curve_top"]["accuracy"], grey["curve_first"]["accuracy"]
    for n in ("15", "25"):
        assert predicted[n]["value"] > first[n]["value"], (n, predicted[n], first[n])
    assert 40 <= m["superpixels_mean"] <= 55


def test_every_page_of_the_reduced_book_shows_values_not_reprs_no_empty_sections_and_labelled_figures(study_run):
    """The study profile's book (chapters 01, 05, 06 and the first page) read as the smoke book is: no NaN, None or
    Python repr, no heading or column over absent data (no validation figures exist here), no unlabelled figure."""
    import pages

    found = pages.reader_problems(study_run / "book" / "_build" / "html")
    assert found == [], f"{len(found)} problems:\n" + "\n".join(found[:40])
