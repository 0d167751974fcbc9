"""Superpixels, LIME, the sufficiency experiment and its controls (chapter 06)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cytokit.data.validation import read_rgb
from cytokit.xai.controls import (localisation, localisation_summary, localisation_table, perturbation_count,
                                  random_ranking, random_rankings)
from cytokit.xai.deletion import deletion_insertion
from cytokit.xai.explain import _BatchedLime, explain, explain_all
from cytokit.xai.gradcam import gradcam, rank_by_heat, target_layer
from cytokit.xai.gradcam import rankings as gradcam_rankings
from cytokit.xai.occlusion import grey_top, keep_top
from cytokit.xai.sufficiency import SufficiencyResult, sufficiency
from cytokit.xai.superpixels import QUICKSHIFT, counts, superpixel_stats, superpixels, superpixels_all

SIZE = 32
BLOCK = 8  # a 4x4 grid of 8x8 superpixels: ids 0..15, row-major
TOP_LEFT = {0, 1, 4, 5}  # the superpixels of the top-left quadrant


def grid_segments(size: int = SIZE, block: int = BLOCK) -> np.ndarray:
    rows, cols = np.indices((size, size)) // block
    return (rows * (size // block) + cols).astype(np.int32)


def toy_image(seed: int) -> np.ndarray:
    """Dark random background, bright top-left quadrant: the toy model's evidence for class 1."""
    img = np.random.default_rng(seed).integers(0, 100, (SIZE, SIZE, 3)).astype(np.uint8)
    img[: SIZE // 2, : SIZE // 2] = 250
    return img


def toy_predict(images: np.ndarray) -> np.ndarray:
    """Two classes; P(class 1) rises with the mean of the top-left quadrant only."""
    tl = np.asarray(images, float)[:, : SIZE // 2, : SIZE // 2].mean(axis=(1, 2, 3))
    p1 = 1 / (1 + np.exp(-(tl - 160) / 15))
    return np.stack([1 - p1, p1], axis=1)


# --------------------------------------------------------------------------- superpixels
def test_superpixels_label_0_to_k_and_refuse_floats():
    img = np.kron(np.random.default_rng(0).integers(0, 255, (4, 4, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    seg = superpixels(img)
    assert seg.shape == (SIZE, SIZE) and seg.dtype == np.int32
    assert np.array_equal(np.unique(seg), np.arange(seg.max() + 1))
    with pytest.raises(TypeError, match="uint8"):
        superpixels(img.astype(np.float32) / 255)


def test_quickshift_settings_are_the_studys():
    assert QUICKSHIFT == {"kernel_size": 4, "max_dist": 200, "ratio": 0.2}
    img = np.kron(np.random.default_rng(0).integers(0, 255, (4, 4, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    assert np.array_equal(superpixels(img), superpixels(img, **QUICKSHIFT))  # the defaults are those settings


def test_superpixels_all_in_processes_equals_serial():
    rng = np.random.default_rng(0)
    images = [np.kron(rng.integers(0, 255, (6, 6, 3)), np.ones((8, 8, 1))).astype(np.uint8) for _ in range(6)]
    serial = superpixels_all(images, workers=1, progress=False)
    pooled = superpixels_all(images, workers=2, progress=False)
    assert all(np.array_equal(a, b) for a, b in zip(serial, pooled))


def test_superpixel_stats_by_class():
    stats = superpixel_stats([40, 50, 30], [0, 0, 2], ["ABE", "ART", "BAS"])
    assert list(stats.index) == ["ABE", "BAS", "all"]
    assert stats.loc["ABE"].tolist() == [2, 45.0, 40, 50]
    assert stats.loc["all", "mean"] == 40.0


# --------------------------------------------------------------------------- occlusion
def test_keep_top_shows_exactly_n_superpixels():
    img = np.random.default_rng(1).integers(0, 100, (SIZE, SIZE, 3)).astype(np.uint8)  # never 128
    seg = grid_segments()
    ranking = random_ranking(seg, seed=3)
    for n in (1, 5, 16):
        out = keep_top(img, seg, ranking, n)
        visible = np.isin(seg, ranking[:n])
        assert np.array_equal(out[visible], img[visible])
        assert np.all(out[~visible] == 128)
        shown = [s for s in np.unique(seg) if np.array_equal(out[seg == s], img[seg == s])]
        assert sorted(shown) == sorted(ranking[:n].tolist())
    deleted = grey_top(img, seg, ranking, 5)
    assert np.all(deleted[np.isin(seg, ranking[:5])] == 128)
    assert np.array_equal(deleted[~np.isin(seg, ranking[:5])], img[~np.isin(seg, ranking[:5])])


def test_random_ranking_is_seeded_permutation():
    seg = grid_segments()
    a, b, c = (random_ranking(seg, s) for s in (7, 7, 8))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert sorted(a.tolist()) == list(range(16))
    many = random_rankings([seg, seg], seed=7)
    assert not np.array_equal(many[0], many[1])  # each image has its own seed
    assert all(np.array_equal(x, y) for x, y in zip(many, random_rankings([seg, seg], seed=7)))


def test_ranking_must_cover_every_superpixel():
    with pytest.raises(ValueError, match="exactly once"):
        keep_top(toy_image(0), grid_segments(), [0, 1, 2], 2)


# --------------------------------------------------------------------------- LIME
def test_batched_lime_equals_lime_itself():
    from lime.lime_image import LimeImageExplainer

    img, seg = toy_image(0), grid_segments()
    ours = explain(toy_predict, img, seg, label_mode="true", true_label=1, num_samples=64, seed=5)
    ref = LimeImageExplainer(random_state=5, feature_selection="none").explain_instance(
        img, toy_predict, labels=(1,), hide_color=128, top_labels=None, num_features=16, num_samples=64,
        batch_size=64, segmentation_fn=lambda _: seg, random_seed=5)
    assert ours.weights == pytest.approx(dict(ref.local_exp[1]), abs=1e-12)


def irregular_segments() -> np.ndarray:
    """11 diagonal-band superpixels (ids 0..10), none of them a block, so the gather is tested in full."""
    return (np.add.outer(np.arange(SIZE) // 3, np.arange(SIZE) // 5) % 11).astype(np.int32)


def test_batched_lime_feeds_lime_own_perturbed_images_in_big_batches():
    from lime.lime_image import LimeImageExplainer

    img, seg = toy_image(1), irregular_segments()

    def recorder(batches):
        def predict(batch):
            assert batch.dtype == np.uint8 and batch.flags.c_contiguous
            batches.append(batch.copy())
            return toy_predict(batch)
        return predict

    for hide in (128, None):  # grey, and lime's mean colour of each superpixel
        ours, theirs = [], []
        explainer = _BatchedLime(random_state=3, feature_selection="none")
        explainer.explain_instance(img, recorder(ours), labels=(1,), hide_color=hide, top_labels=None,
                                   num_samples=50, batch_size=16, segmentation_fn=lambda _: seg, random_seed=3)
        LimeImageExplainer(random_state=3, feature_selection="none").explain_instance(
            img, recorder(theirs), labels=(1,), hide_color=hide, top_labels=None, num_samples=50, batch_size=16,
            segmentation_fn=lambda _: seg, random_seed=3)
        assert [len(b) for b in ours] == [16, 16, 16, 2]
        np.testing.assert_array_equal(np.concatenate(ours), np.concatenate(theirs))


def test_batched_lime_ranking_is_unchanged_for_a_fixed_seed():
    """Rankings of the builder before the np.take rewrite (bench/lime_speed.py), pinned."""
    img, seg = toy_image(2), irregular_segments()
    grey = explain(toy_predict, img, seg, num_samples=64, seed=11)
    black = explain(toy_predict, img, seg, num_samples=64, seed=11, hide_color=0)
    assert grey.label == black.label == 1
    assert grey.ranking.tolist() == [4, 3, 2, 5, 1, 6, 0, 7, 8, 9, 10]
    assert black.ranking.tolist() == [3, 2, 4, 5, 1, 0, 7, 6, 10, 9, 8]


def test_label_modes_pick_what_they_say():
    img, seg = toy_image(0), grid_segments()
    assert toy_predict(img[None]).argmax() == 1
    first = explain(toy_predict, img, seg, label_mode="first", num_samples=32)
    true = explain(toy_predict, img, seg, label_mode="true", true_label=0, num_samples=32)
    predicted = explain(toy_predict, img, seg, num_samples=32)
    assert (first.label, true.label, predicted.label) == (0, 0, 1)
    assert predicted.predicted == 1 and first.predicted == 1
    np.testing.assert_allclose(predicted.full_probs, toy_predict(img[None])[0], rtol=1e-6)
    with pytest.raises(ValueError, match="true_label"):
        explain(toy_predict, img, seg, label_mode="true")
    with pytest.raises(ValueError, match="label_mode"):
        explain(toy_predict, img, seg, label_mode="last")


def test_lime_finds_the_region_the_model_reads_and_beats_random():
    images = [toy_image(s) for s in range(4)]
    segs = [grid_segments()] * len(images)
    exps = explain_all(toy_predict, images, segs, num_samples=128, seed=0, progress=False)
    assert all(e.ranking[0] in TOP_LEFT for e in exps)
    assert all(set(e.ranking[:4].tolist()) == TOP_LEFT for e in exps)
    curves = deletion_insertion(toy_predict, images, segs,
                                    {"LIME": exps, "random": random_rankings(segs, seed=0)},
                                    labels=[e.label for e in exps], steps=16, progress=False)
    mean = curves.summary()["mean"]
    assert mean.loc["LIME", "deletion"] < mean.loc["random", "deletion"]
    assert mean.loc["LIME", "insertion"] > mean.loc["random", "insertion"]
    pts = curves.points.query("image == 0 and method == 'LIME'")
    full, grey = toy_predict(images[0][None])[0, 1], toy_predict(np.full((1, SIZE, SIZE, 3), 128))[0, 1]
    d = pts[pts.kind == "deletion"].set_index("fraction")["prob"]
    assert d.loc[0.0] == pytest.approx(full) and d.loc[1.0] == pytest.approx(grey)
    assert set(curves.to_dict()) == {"LIME", "random"}


def test_explain_feeds_keras_models_their_uint8_pixels():
    keras = pytest.importorskip("keras")
    from cytokit.models.network import build_cnn, study_layers

    keras.utils.set_random_seed(0)
    model = build_cnn(21, 64)
    img = np.random.default_rng(0).integers(0, 256, (64, 64, 3)).astype(np.uint8)
    seg = grid_segments(64, 16)
    e = explain(model, img, seg, num_samples=16)
    expected = model.predict_on_batch(img[None])[0]  # the pipeline's uint8; the network scales it
    np.testing.assert_allclose(e.full_probs, expected, rtol=1e-5, atol=1e-7)
    study_scaling = keras.Sequential([keras.Input((64, 64, 3)), *study_layers(model)])  # the study: pixel/255 before the network
    np.testing.assert_allclose(e.full_probs, study_scaling.predict_on_batch(img[None] / np.float32(255))[0],
                               rtol=1e-5, atol=1e-6)
    assert e.label == int(np.argmax(expected)) and len(e.ranking) == 16


# --------------------------------------------------------------------------- sufficiency
def test_images_with_fewer_superpixels_than_n_are_left_out():
    images = [toy_image(0), toy_image(1)]
    segs = [grid_segments(), grid_segments(SIZE, 16)]  # 16 and 4 superpixels
    ranks = random_rankings(segs, seed=0)
    res = sufficiency(toy_predict, images, segs, ranks, [1, 1], ns=(1, 4, 5, 16, "all"),
                          class_names=["A", "B"], progress=False)
    assert res.images_per_n()["images"].to_dict() == {"1": 2, "4": 2, "5": 1, "16": 1, "all": 2}
    assert res.predictions(5)[1] == -1 and res.predictions(16)[1] == -1
    # n equal to an image's count is that full image
    np.testing.assert_allclose(res.probs[4][1], res.full[1])
    assert res.summary().loc["5", "images"] == 1


def _result(preds_by_n, y_true, full_pred):
    eye = np.eye(2, dtype=np.float32)
    probs = {n: np.array([eye[p] if p >= 0 else [np.nan, np.nan] for p in preds], np.float32)
             for n, preds in preds_by_n.items()}
    probs["all"] = eye[full_pred]
    return SufficiencyResult(list(preds_by_n) + ["all"], np.array(y_true), eye[full_pred], probs,
                             np.full(len(y_true), 10), ["A", "B"])


def test_two_thirds_precision_rule():
    y = [0, 0, 0, 1, 1, 1]
    res = _result({1: [1, 1, 1, 1, 1, 1], 5: [0, 0, 1, 1, 1, 1]}, y, full_pred=y)
    table = res.summary()
    assert table.loc["1", "precision_weighted"] == pytest.approx(0.25)
    assert table.loc["5", "precision_weighted"] == pytest.approx(0.5 * 1 + 0.5 * 0.75)
    assert list(table["sufficient"]) == [False, True, True]
    assert res.sufficient_n() == 5
    assert res.thresholds().loc["accuracy", "sufficient_n"] == 5
    pcs = res.per_class_sufficiency()
    assert pcs.loc["A", "sufficient_ns"] == [5] and pcs.loc["B", "sufficient_ns"] == [5]
    assert res.absorbing()["1"].to_dict() == {"A": 0, "B": 6}
    assert table.loc["1", "agreement"] == pytest.approx(0.5)
    assert res.confusion(5).to_numpy().tolist() == [[2, 1], [0, 3]]
    as_dict = res.to_dict()
    assert as_dict["sufficient_n"] == 5 and as_dict["images_per_n"] == {"1": 6, "5": 6, "all": 6}
    json.dumps(as_dict, allow_nan=False)


def test_curve_points_get_intervals_over_the_images_each_n_used():
    """Every curve point: its estimate inside its interval, the images it rests on, NaN where none was used."""
    y = [0, 0, 0, 1, 1, 1]
    res = _result({1: [1, 1, 1, 1, 1, 1], 5: [0, 0, 1, 1, -1, -1], 9: [-1] * 6}, y, full_pred=y)
    table = res.curve_intervals(resamples=400)
    assert table["images"].to_dict() == {"1": 6, "5": 4, "9": 0, "all": 6}
    for n in ("1", "5", "all"):
        for m in ("accuracy", "precision_weighted"):
            assert table.loc[n, f"{m}_low"] <= table.loc[n, m] <= table.loc[n, f"{m}_high"]
    assert table.loc["all", "accuracy"] == 1.0 and table.loc["all", "accuracy_low"] < 1.0  # six right: not certain
    assert table.loc["9"].drop("images").isna().all()


def test_unpredicted_classes_are_not_judged():
    y = [0, 0, 1, 1]
    res = _result({1: [0, 0, 0, 0]}, y, full_pred=[0, 0, 0, 0])  # B never predicted on full images
    pcs = res.per_class_sufficiency()
    assert not pcs.loc["B", "judged"] and pcs.loc["B", "smallest_sufficient_n"] is None


# --------------------------------------------------------------------------- Grad-CAM
def test_gradcam_heatmap_in_unit_range_at_image_size():
    keras = pytest.importorskip("keras")
    from cytokit.models.network import build_cnn

    keras.utils.set_random_seed(0)
    model = build_cnn(21, 64)
    assert target_layer(model) == "block4_relu2"
    imgs = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3)).astype(np.uint8)
    heat = gradcam(model, imgs, [3, 5])
    assert heat.shape == (2, 64, 64) and heat.min() >= 0 and heat.max() <= 1
    one = gradcam(model, imgs[0], 3, layer_name="block3_relu2")
    assert one.shape == (64, 64) and 0 <= one.min() and one.max() <= 1
    assert one.max() == pytest.approx(1.0) or one.max() == 0
    ranks = gradcam_rankings(model, imgs, [grid_segments(64, 16)] * 2, [3, 5], progress=False)
    assert [sorted(r.tolist()) for r in ranks] == [list(range(16))] * 2
    np.testing.assert_array_equal(ranks[0], rank_by_heat(heat[0], grid_segments(64, 16)))
    with pytest.raises(TypeError, match="uint8"):  # inputs scaled for the study's model are refused
        gradcam(model, imgs / np.float32(255), [3, 5])


def test_gradcam_on_several_layers_in_one_pass_is_gradcam_on_each():
    keras = pytest.importorskip("keras")
    from cytokit.models.network import build_cnn
    from cytokit.xai.gradcam import heatmaps, heatmaps_by_layer

    keras.utils.set_random_seed(1)
    model = build_cnn(21, 64)
    imgs = np.random.default_rng(1).integers(0, 256, (3, 64, 64, 3)).astype(np.uint8)
    layers = ["block1_relu2", "block3_relu2", "block4_relu2"]
    together = heatmaps_by_layer(model, imgs, [3, 5, 0], layers, batch_size=2)
    for layer in layers:
        np.testing.assert_allclose(together[layer], heatmaps(model, imgs, [3, 5, 0], layer), atol=1e-5)
        np.testing.assert_allclose(together[layer][1], gradcam(model, imgs[1], 5, layer_name=layer), atol=1e-5)


def test_rank_by_heat_orders_by_mean_heat():
    seg = grid_segments(SIZE, 16)  # ids 0 1 / 2 3
    heat = np.zeros((SIZE, SIZE))
    heat[:16, 16:] = 0.9  # id 1
    heat[16:, :16] = 0.5  # id 2
    heat[:16, :16] = 0.1  # id 0
    heat[16:24, 16:] = 0.8  # half of id 3: mean 0.4
    assert rank_by_heat(heat, seg).tolist() == [1, 2, 3, 0]


# --------------------------------------------------------------------------- ground truth
def test_localisation_shares_of_cell_and_nucleus():
    seg = grid_segments()
    cell = np.zeros((SIZE, SIZE), bool)
    cell[:16, :16] = True  # the top-left quadrant: ids 0, 1, 4, 5
    nucleus = seg == 0
    ranking = np.array([0, 1, 4, 5] + [i for i in range(16) if i not in TOP_LEFT])
    assert localisation(seg, ranking, 1, cell, nucleus)["nucleus"] == 1.0
    two = localisation(seg, ranking, 2, cell, nucleus)
    assert (two["cell"], two["nucleus"], two["cell_chance"]) == (1.0, 0.5, 0.25)
    assert localisation(seg, ranking, 8, cell, nucleus)["cell"] == 0.5
    table = localisation_table([seg], {"LIME": [ranking], "random": [random_ranking(seg, 0)]},
                                   [(cell, nucleus)], ns=(1, 4, 20))
    assert set(table["n"]) == {1, 4}  # 20 > 16 superpixels: left out
    summary = localisation_summary(table)
    assert summary.loc[("LIME", 4), "cell"] == 1.0


def test_perturbation_count_compares_both_sample_sizes():
    images = [toy_image(s) for s in range(3)]
    segs = [grid_segments()] * 3
    out = perturbation_count(toy_predict, images, segs, [1, 1, 1], samples=(32, 64), ns=(1, 4, "all"),
                                 class_names=["A", "B"], progress=False)
    assert set(out["results"]) == {32, 64}
    assert isinstance(out["curves"], pd.DataFrame) and set(out["curves"].index.get_level_values(0)) == {32, 64}
    assert 0 <= out["top5_overlap"] <= 1
    assert out["sufficient_n"][64] in (1, 4)


# --------------------------------------------------------------------------- real images
@pytest.mark.slow
def test_real_sample_superpixel_count_matches_study(real_sample):
    """The study reports 43 superpixels per 250 px image on average (quickshift 4/200/0.2)."""
    paths = sorted(real_sample.rglob("*.jpg"))
    if not paths:
        pytest.skip(f"no JPEG images under {real_sample}")
    pick = np.random.default_rng(0).choice(len(paths), size=min(24, len(paths)), replace=False)
    images = [read_rgb(paths[i]) for i in sorted(pick)]
    segs = superpixels_all(images, workers=1, progress=False)  # ~0.5-1 s per image
    mean = counts(segs).mean()
    assert 40 <= mean <= 55, f"mean superpixels {mean:.1f} on {len(images)} real images"
