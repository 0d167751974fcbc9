"""Chapter 1's sentences on hand-made results shaped like each profile's data, in seconds, no images read."""

from __future__ import annotations

import pandas as pd
import pytest

import pages
from cytokit.data import census
from cytokit.pages import data as page
from cytokit.pages import realism as realism_page

SYNTHETIC = page.DataSource("/runs/data/synthetic/v2-n800-seed0-d0.5-px250", True, 800, 0, 0.5)
REAL = page.DataSource("/data/real-sample", False)
#: The smoke profile's 800 synthetic images; the real sample: eight classes of 100 and six of one image.
SMOKE_COUNTS = {"ABE": 3, "ART": 90, "BLA": 55, "EBO": 125, "LYT": 120, "NGS": 135, "PEB": 13}
REAL_COUNTS = {**{c: 100 for c in ("ART", "BLA", "EOS", "LYT", "MON", "NGS", "NIF")}, "PMO": 69,
               **{c: 1 for c in ("EBO", "MMZ", "MYB", "NGB", "PEB", "PLM")}, "ABE": 0}


def census_of(counts: dict) -> page.ClassCensus:
    return page.ClassCensus(tuple(counts.items()), 171_374)


def split_of(n_train, n_val, n_test, deviation=0.017, checked=10, duplicates=0) -> page.SplitCheck:
    return page.SplitCheck(n_train, n_val, n_test, checked, deviation, duplicates)


def files_of(n, bad=0, converted=0, ignored=1) -> page.FileCheck:
    return page.FileCheck(n + bad, bad, converted, ignored, n)


def clean(text: str) -> str:
    """``text``, after checking it carries no NaN, None or Python repr."""
    for label, pattern in pages.RAW.items():
        assert not pattern.search(text), f"{label} in {text!r}"
    return text


def test_the_source_says_synthetic_or_real_plainly():
    assert clean(SYNTHETIC.sentence()).startswith("**These are synthetic cells.**")
    assert "800 images drawn by `cytokit synth` (seed 0, difficulty 0.5)" in SYNTHETIC.sentence()
    assert "`real-sample`" in clean(REAL.sentence()) and "synthetic" not in REAL.sentence().split("(")[0]
    unmarked = page.DataSource("/x", True)  # a mark without its counts reads without them, never "None"
    assert "images drawn by `cytokit synth` in" in clean(unmarked.sentence())
    assert REAL.facts()["data_dir"] == "/data/real-sample" and REAL.facts()["is_synthetic"] is False


@pytest.mark.parametrize("ignored,expected", [(0, "no other file was found"),
                                              (1, "1 other file (not an image) was ignored"),
                                              (3, "3 other files (not images) were ignored")])
def test_the_file_counts_read_in_the_right_number(ignored, expected):
    text = clean(files_of(800, ignored=ignored).files_sentence())
    assert expected in text and "0 were unusable" in text and text.endswith("800 images take part in the study.")
    assert "1 was unusable" in files_of(10, bad=1).files_sentence()
    assert files_of(1, ignored=0).files_sentence().endswith("One image takes part in the study.")
    assert files_of(800).problems_sentence().startswith("No problem found")
    assert files_of(800, bad=2).problems_sentence().startswith("The table above lists")


def test_the_class_sentence_names_the_imbalance_and_the_classes_too_small_for_an_interval():
    smoke = clean(census_of(SMOKE_COUNTS).sentence())
    assert "7 classes; the largest, NGS, has 45 times as many images as the smallest, ABE (3 images)" in smoke
    assert "2 classes have fewer than 20 images (ABE, PEB)" in smoke
    real = clean(census_of(REAL_COUNTS).sentence())
    assert "14 classes" in real and "100 times" in real and "(1 image)" in real
    assert "6 classes have fewer than 20 images (EBO, MMZ, MYB, NGB, PEB, PLM)" in real
    assert "rare" not in smoke + real  # small in this copy, not rare in nature
    assert "of about equal size (from 50 images to 52)" in census_of({"BLA": 50, "LYT": 52}).sentence()
    assert "1.5 times" in census_of({"BLA": 40, "LYT": 60}).sentence()
    assert clean(census_of({"BLA": 1}).sentence()).startswith("The data hold one class, BLA (1 image).")
    facts = census_of(REAL_COUNTS).facts()
    assert facts["n_classes"] == 14 and facts["largest_class"] == "ART" and facts["imbalance_ratio"] == 100.0
    assert facts["classes"]["ABE"] == 0 and facts["study_images"] == 171_374


def test_the_split_sentence_holds_without_a_large_class_and_with_copies_across_splits():
    text = clean(split_of(440, 117, 243).sentence())
    assert "The training set holds 440 images, validation 117 and test 243." in text
    assert "Among the 10 classes of at least 20 images" in text and "1.7 percentage points" in text
    assert "No image has an exact copy" in text
    tiny = clean(split_of(5, 2, 3, deviation=None, checked=0).sentence())
    assert "No class has 20 images or more" in tiny and "percentage points" not in tiny
    assert "1 image has an exact copy" in split_of(440, 117, 243, duplicates=1).sentence()
    assert "Among the one class" in split_of(20, 5, 6, checked=1).sentence()
    assert split_of(5, 2, 3, deviation=None).facts()["max_share_deviation"] is None  # JSON null, never NaN


def test_the_split_steps_on_a_hand_made_manifest():
    paths = [f"{c}/{i}.jpg" for c, n in (("BLA", 30), ("EOS", 2)) for i in range(n)]
    manifest = pd.DataFrame({"path": paths, "cls": ["BLA"] * 30 + ["EOS"] * 2, "status": "ok", "sha1": paths,
                             "reason": ""})
    from cytokit import data

    split = data.split(manifest, seed=0)
    checked = page.check_split(split, census.split_table(split), census.STUDY_SHARES)
    assert (checked.n_train, checked.n_val, checked.n_test) == (18, 4, 10)
    assert checked.checked_classes == 1 and 0 <= checked.max_share_deviation < 0.05
    assert "EOS" in checked.notes_markdown()
    table = census.class_table(split)
    assert page.class_census(table).present == {"BLA": 30, "EOS": 2}
    unknown = census.class_table(pd.concat([split, split.head(1).assign(cls="XYZ")]))  # no study figures for XYZ
    shown = pages.text_of_html(page.styled_class_table(unknown).to_html())
    assert "XYZ (not in the taxonomy) other 1" in shown and "—" in shown and "nan" not in shown
    assert page.problems_table(manifest) is None  # nothing to list: no empty table on the page


def summary(source=SYNTHETIC, counts=SMOKE_COUNTS, split=(440, 117, 243), model_source="run", eval_split="test"):
    n = sum(counts.values())
    return page.summary(source, files_of(n), census_of(counts), split_of(*split), model_source, eval_split)


def test_the_summary_says_what_the_data_are_and_what_the_next_chapters_take_on_each_profile():
    smoke = clean(summary().sentence())
    assert "synthetic cells drawn by the book's generator, not real marrow cells" in smoke
    assert "440 training, 117 validation and 243 test images, listed in `manifest.csv`" in smoke
    assert "Chapter 2 trains" in smoke and "No chapter before chapter 5 reads the test images." in smoke
    study = clean(summary(REAL, REAL_COUNTS, (436, 108, 231), "study", "all").sentence())
    assert "real images from the folder `real-sample`" in study and "Chapter 2" not in study
    assert "Nothing is trained in this copy" in study and "every usable image of the folder (775)" in study
    assert "may have seen some of these images" in study and "not held-out results" in study
    assert "No chapter before chapter 5" not in study  # it reads every image, test ones included
    imported_on_synthetic = summary(model_source="study").sentence()
    assert "trained on real images, none of them these" in imported_on_synthetic
    assert "the 117 validation images" in summary(eval_split="val").sentence()
    with pytest.raises(ValueError, match="eval_split"):
        summary(eval_split="tests")


def test_the_real_and_synthetic_comparison_refers_to_its_figures_by_name_and_says_when_there_is_none():
    beside = realism_page.RealBeside(True, ("BLA", "LYT"), "real-sample", "this dataset", 200,
                                     (("BLA", 0.2), ("LYT", 0.4)), 385, "shared/real-sample")
    text = clean(beside.sentence())
    assert text.startswith("{numref}`fig-real-synthetic` sets three of this copy's synthetic cells")
    assert "{numref}`fig-real-colours`" in text and "30.0 %" in text and "most for LYT: 40.0 %" in text
    assert "Figure 1." not in text and "fitted to 385 real images" in text
    none = clean(realism_page.RealBeside(True, looked_in="shared/real-sample").sentence())
    assert "found no real images" in none and "numref" not in none  # no reference to a figure not drawn
    real = clean(realism_page.RealBeside(False).sentence())
    assert "real images and found no class with 3 real images" in real
    facts = realism_page.RealBeside(True).facts()
    assert facts["real_source"] == "none" and facts["min_real_images"] == 3
