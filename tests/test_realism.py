"""Real beside synthetic cells (chapter 1) and the sim-to-real paragraph (the first page)."""

from __future__ import annotations

import copy
import shutil

import numpy as np
import pytest

from cytokit import data
from cytokit.pages import realism as prose
from cytokit.pages.figures import realism as figures
from cytokit.data import realism
from cytokit.data import synthetic as synth


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """A small synthetic tree, and a copy without SYNTH.json standing in for a folder of real images."""
    base = tmp_path_factory.mktemp("realism")
    fake = synth.generate(base / "synthetic", 84, seed=5, size=64, progress=False, workers=1)
    real = base / "real"
    shutil.copytree(fake, real)
    (real / synth.META_FILE).unlink()
    return fake, real


def checked(root):
    return data.validate(root, data.index(root, progress=False), expected_size=(64, 64), progress=False)


def test_synthetic_data_are_set_beside_the_real_folder_and_classes_need_three_real_images(trees):
    fake, real = trees
    pair = realism.pair(fake, checked(fake), real_dir=real, per_class=2, colour_images=4)
    counts = checked(real)["cls"].value_counts()
    assert sorted(pair.classes) == sorted(counts[counts >= realism.MIN_REAL].index)
    assert pair.real_source == "real" and pair.synthetic_source == "this dataset"
    reals, fakes = pair.shown["NGS"]
    assert len(reals) == len(fakes) == 2 and reals[0].shape == (64, 64, 3)
    assert realism.pair(fake, checked(fake), real_dir=real.parent / "absent") is None


def test_real_data_are_set_beside_cells_drawn_by_the_generator(trees):
    _, real = trees
    pair = realism.pair(real, checked(real), per_class=1, colour_images=2)
    assert pair.synthetic_source == "drawn by the generator" and pair.real_source == "this dataset"
    assert pair.shown["BLA"][1][0].shape == (250, 250, 3)


def test_colour_distributions_are_shares_and_identical_colours_are_at_distance_zero(trees):
    fake, real = trees
    pair = realism.pair(fake, checked(fake), real_dir=real, per_class=1, colour_images=3)
    table = realism.colour_distributions(pair)
    sums = table.groupby(["code", "source", "channel"])["share"].sum()
    np.testing.assert_allclose(sums, 1.0, atol=1e-9)
    distance = realism.colour_distance(table)
    assert ((distance >= 0) & (distance <= 1)).all()
    same = copy.copy(pair)
    same.colour = {c: (r, r) for c, (r, _) in pair.colour.items()}
    np.testing.assert_allclose(realism.colour_distance(realism.colour_distributions(same)), 0.0, atol=1e-12)
    assert figures.side_by_side(pair) is not None and figures.colour_distributions(pair) is not None
    assert figures.side_by_side(None) is None and figures.colour_distributions(None) is None


def test_the_statements_say_what_was_compared(trees):
    fake, real = trees
    pair = realism.pair(fake, checked(fake), real_dir=real, per_class=1, colour_images=2)
    beside = prose.compare(pair, synthetic_data=True)
    text = beside.sentence()
    assert "beside three real ones from the real sample `real`" in text and "nan" not in text
    assert set(beside.classes) == set(pair.classes) and beside.facts()["real_source"] == "real"
    assert "drawn by the book's synthetic generator" in prose.compare(pair, synthetic_data=False).sentence()
    assert "found no real images" in prose.compare(None, synthetic_data=True).sentence()
    assert "Figure 1." not in text and "{numref}`fig-real-colours`" in text


def test_property_table_puts_this_datasets_medians_beside_the_real_ones(trees):
    fake, _ = trees
    table = realism.property_table(fake, checked(fake), per_class=2)
    assert set(table.columns) <= {"ART", "BLA", "EOS", "LYT", "MON", "NGS", "NIF", "PMO"} and "BLA" in table.columns
    assert len(table) == 2 * len(realism.TABLE_PROPERTIES)
    assert not table.apply(lambda col: col.str.contains("nan")).any().any()


def published(low=0.19, high=0.26, digest=None) -> dict:
    ba = {"estimate": (low + high) / 2, "low": low, "high": high}
    c = {"difference": 0.05, "ci95": [0.01, 0.09], "test": "paired permutation", "p_value": 0.01, "verdict": "better"}
    return {"command": "python bench/sim_to_real.py --publish", "measured": "2026-12-05",
            "generator_digest": digest or synth.writer.generator_digest(), "classes": ["BLA", "LYT"],
            "settings": {"image_size": 64, "epochs": 12},
            "synthetic": {"balanced_accuracy": ba, "n_images": 100, "chance": 0.125, "n_train": 1678},
            "synthetic_before": {"balanced_accuracy": ba}, "real": {"balanced_accuracy": ba, "n_train": 385},
            "real_steps": {"balanced_accuracy": ba, "epochs": 52}, "colour": {"balanced_accuracy": ba},
            "after_vs_before": c, "after_vs_real": {**c, "verdict": "no clear difference"}}


def test_the_sim_to_real_paragraph_follows_the_intervals_and_names_a_stale_figure():
    text = prose.sim_to_real_paragraph(published())
    assert "22.5 % (95 % interval 19.0–26.0 %)" in text and "above chance" in text
    assert "+5.0 points (95 % interval +1.0 to +9.0" in text and "with this version of the generator" in text
    assert "not clearly above chance" in prose.sim_to_real_paragraph(published(low=0.10, high=0.2))
    assert "earlier version of the generator" in prose.sim_to_real_paragraph(published(digest="0" * 64))


def test_the_shipped_figures_have_every_key_the_page_reads():
    assert prose.sim_to_real_paragraph(prose.published())
