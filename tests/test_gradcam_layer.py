"""Grad-CAM's layer, chosen by measurement on synthetic cells whose masks are known, beats chance on new cells."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

keras = pytest.importorskip("keras")

from cytokit.data.synthetic.scene import render  # noqa: E402
from cytokit.evaluation import statistics  # noqa: E402
from cytokit.models.network import build_cnn  # noqa: E402
from cytokit.xai import controls, gradcam, gradcam_layer, superpixels  # noqa: E402

SIZE = 64
CLASSES = ("BLA", "EOS", "LYT", "NGS")


def cells(first: int, count: int):
    """``count`` synthetic cells of every class from index ``first``: images, labels, cell masks."""
    drawn = [(c, render(code, first + i, 0, SIZE, 0.5)) for i in range(count) for c, code in enumerate(CLASSES)]
    return (np.stack([d.image for _, d in drawn]), np.array([c for c, _ in drawn]),
            [d.cell_mask for _, d in drawn])


@pytest.fixture(scope="module")
def trained():
    """The study's network at 64 px trained on synthetic cells until it tells the four classes apart."""
    keras.utils.set_random_seed(0)
    x, y, _ = cells(1, 60)
    model = build_cnn(len(CLASSES), SIZE, bn_momentum=0.9)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=32, epochs=10, verbose=0)
    xt, yt, _ = cells(500, 10)
    assert (model.predict_on_batch(xt).argmax(axis=1) == yt).mean() >= 0.7, "the toy model did not learn"
    return model


def segmented(images):
    return [superpixels.segment(im, "slic", n_segments=25) for im in images]


@pytest.fixture(scope="module")
def choice(trained):
    """The choice on 96 cells: on 32, no block's lift over chance or SRG gain over random is told from 0."""
    x, _, masks = cells(1000, 24)
    labels = trained.predict_on_batch(x).argmax(axis=1)
    return gradcam_layer.choose_layer(trained, list(x), segmented(x), labels, masks)


@pytest.fixture(scope="module")
def new_cells(trained):
    """96 cells the choice never saw: images, superpixels, predicted classes, cell masks."""
    x, _, masks = cells(2000, 24)
    return list(x), segmented(x), trained.predict_on_batch(x).argmax(axis=1), masks


def test_candidates_are_the_last_layer_of_every_block_finest_first(trained):
    assert gradcam_layer.candidate_layers(trained) == [(f"block{i}", f"block{i}_relu2") for i in range(1, 5)]
    assert [gradcam_layer.map_side(trained, f"block{i}_relu2") for i in range(1, 5)] == [64, 16, 4, 2]


def test_the_chosen_layer_passes_every_check_and_the_evidence_shows_each(choice):
    assert choice.passed and choice.checks == ("randomisation", "faithfulness", "localisation") and not choice.failed
    row = choice.evidence.loc[choice.block]
    assert row["layer"] == choice.layer and row["passes"]
    assert row["localisation"] == statistics.BETTER and row["faithfulness"] == statistics.BETTER
    assert row["in_cell_p_value"] < 0.05 and row["srg_p_value"] < 0.05  # the test agrees with the interval
    finer = choice.evidence.loc[: choice.block].iloc[:-1]
    assert not finer["passes"].any()  # the finest block that passes
    json.dumps(choice.facts())


def test_gradcam_s_top_superpixel_lies_in_the_cell_more_often_than_chance_on_new_cells(trained, choice, new_cells):
    """On cells the choice never saw; fails when Grad-CAM is read on a layer that localises below chance."""
    x, segs, labels, masks = new_cells
    ranks = gradcam.rankings(trained, x, segs, labels, choice.layer, progress=False, seed=0)
    hits, chance = controls.top_in_cell(segs, ranks, masks)
    found = controls.localisation_test(hits, chance)
    assert found.verdict == statistics.BETTER, (hits.mean(), chance.mean(), found.p_value)


def test_the_last_block_s_top_superpixel_lies_in_the_cell_less_often_than_chance(trained, new_cells):
    """The coarse map (2 x 2 at 64 px) puts its hottest pixels in a corner: the reason not to read it by habit."""
    x, segs, labels, masks = new_cells
    ranks = gradcam.rankings(trained, x, segs, labels, gradcam.target_layer(trained), progress=False)
    hits, chance = controls.top_in_cell(segs, ranks, masks)
    assert controls.localisation_test(hits, chance).verdict == statistics.WORSE, (hits.mean(), chance.mean())


def test_without_a_block_passing_every_check_the_finest_passing_most_is_chosen_and_its_failures_named():
    evidence = pd.DataFrame({"layer": [f"b{i}_relu" for i in range(1, 5)],
                             "randomisation_passes": [True, True, True, False],
                             "faithfulness_passes": [False, True, False, True],
                             "localisation_passes": [False, False, True, True]},
                            index=pd.Index([f"block{i}" for i in range(1, 5)], name="block"))
    found = gradcam_layer.pick(evidence, ("randomisation", "faithfulness", "localisation"))
    assert (found.block, found.layer, found.passed, found.failed) == ("block2", "b2_relu", False, ["localisation"])
    evidence.loc["block4", "randomisation_passes"] = True
    found = gradcam_layer.pick(evidence, ("randomisation", "faithfulness", "localisation"))
    assert (found.block, found.passed, found.failed) == ("block4", True, [])


def test_top_in_cell_counts_a_superpixel_mostly_inside_and_chance_is_their_share():
    seg = np.repeat(np.arange(4), 16).reshape(8, 8).T  # four vertical bands of two columns
    cell = np.zeros((8, 8), bool)
    cell[:, :3] = True  # band 0 whole, band 1 half
    hits, chance = controls.top_in_cell([seg, seg, seg], [[0, 1, 2, 3], [1, 0, 2, 3], [3, 2, 1, 0]], [cell] * 3)
    assert hits.tolist() == [1, 1, 0] and chance.tolist() == [0.5] * 3


def test_the_localisation_test_holds_its_level_and_finds_a_lift_a_signed_rank_test_misses():
    """Simulated top superpixels with a known truth, shaped like the synthetic cells (about a fifth of the
    superpixels in the cell, 32 images): a random top superpixel, and one lifted 0.2 above chance."""
    rng = np.random.default_rng(0)
    chance = rng.uniform(0.1, 0.35, 32)
    random_top = rng.random((300, 32)) < chance
    found = [controls.localisation_test(h, chance) for h in random_top]
    assert np.mean([f.verdict != statistics.UNCLEAR for f in found]) <= 0.05
    assert np.mean([f.low <= 0 <= f.high for f in found]) >= 0.92
    assert np.mean([stats.wilcoxon(h - chance).pvalue < 0.05 for h in random_top]) > 0.1  # rejects chance itself
    lifted = rng.random((300, 32)) < chance + 0.2
    power = np.mean([controls.localisation_test(h, chance).verdict == statistics.BETTER for h in lifted])
    assert power > np.mean([stats.wilcoxon(h - chance).pvalue < 0.05 and h.mean() > chance.mean() for h in lifted])
    with pytest.raises(ValueError, match="two or more"):
        controls.localisation_test([1.0], [0.2])
