"""Chapter 06's robustness checks: joint LIME fits, SLIC, criteria, SRG, agreement, fills, randomisation alone."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cytokit.evaluation import statistics
from cytokit.xai import agreement, criterion, explain, robustness, srg, superpixels
from cytokit.xai.sufficiency import SufficiencyResult
from test_xai import SIZE, grid_segments, toy_image  # the toy image and its 4x4 grid of superpixels

TOP_LEFT = [0, 1, 4, 5]  # the superpixels of the top-left quadrant


def toy_predict(images: np.ndarray) -> np.ndarray:
    """Three classes; P(class 1) rises with the top-left quadrant's brightness, class 0 and 2 share the rest."""
    tl = np.asarray(images, float)[:, : SIZE // 2, : SIZE // 2].mean(axis=(1, 2, 3))
    p1 = 1 / (1 + np.exp(-(tl - 160) / 15))
    return np.stack([(1 - p1) * 0.7, p1, (1 - p1) * 0.3], axis=1)


# --------------------------------------------------------------------------- one set of perturbations, several classes
def test_joint_explanations_equal_one_explanation_per_class():
    img, seg = toy_image(0), grid_segments()
    joint = explain.explain_labels(toy_predict, img, seg, ("predicted", "first", "true"), true_label=2,
                                   num_samples=64, seed=3)
    for mode in ("predicted", "first", "true"):
        alone = explain.explain(toy_predict, img, seg, mode, true_label=2, num_samples=64, seed=3)
        assert joint[mode].weights == alone.weights
        assert joint[mode].label == alone.label and joint[mode].label_mode == mode
        assert joint[mode].score == pytest.approx(alone.score)
        assert joint[mode].intercept == pytest.approx(alone.intercept)
    assert joint["predicted"].label == 1 and joint["first"].label == 0
    assert set(joint["predicted"].ranking[:4].tolist()) == set(TOP_LEFT)


def test_joint_explanations_cost_one_set_of_predictions():
    calls = []

    def counting(images):
        calls.append(len(images))
        return toy_predict(images)

    explain.explain_labels(counting, toy_image(1), grid_segments(), ("predicted", "first"), num_samples=48, seed=0)
    assert sum(calls) == 48


def test_lime_with_the_mean_colour_fill_is_lime_itself():
    from lime.lime_image import LimeImageExplainer

    img, seg = toy_image(2), grid_segments()
    ours = explain.explain_labels(toy_predict, img, seg, ("first",), num_samples=40, hide_color=None, seed=4)["first"]
    ref = LimeImageExplainer(random_state=4, feature_selection="none").explain_instance(
        img, toy_predict, labels=(0,), hide_color=None, top_labels=None, num_features=16, num_samples=40,
        batch_size=40, segmentation_fn=lambda _: seg, random_seed=4)
    assert ours.weights == pytest.approx(dict(ref.local_exp[0]), abs=1e-12)


def test_explanations_survive_plain_arrays(tmp_path):
    images, segs = [toy_image(i) for i in range(3)], [grid_segments()] * 3
    found = explain.explain_all_labels(toy_predict, images, segs, ("predicted", "first"), num_samples=32, seed=1,
                                       progress=False)
    np.savez(tmp_path / "x.npz", **explain.to_arrays(found["first"]))
    with np.load(tmp_path / "x.npz", allow_pickle=False) as z:
        back = explain.from_arrays({k: z[k] for k in z.files})
    for a, b in zip(found["first"], back):
        assert a.weights == b.weights and a.ranking.tolist() == b.ranking.tolist()
        assert (a.label, a.label_mode, a.seed, a.num_samples) == (b.label, b.label_mode, b.seed, b.num_samples)
        np.testing.assert_allclose(a.full_probs, b.full_probs)


# --------------------------------------------------------------------------- SLIC
def test_slic_makes_about_the_segments_asked_labelled_0_to_k():
    img = np.kron(np.random.default_rng(0).integers(0, 255, (8, 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    seg = superpixels.segment(img, "slic", n_segments=16)
    assert seg.dtype == np.int32 and np.array_equal(np.unique(seg), np.arange(seg.max() + 1))
    assert 8 <= seg.max() + 1 <= 32
    many = superpixels.superpixels_all([img, img], workers=1, progress=False, method="slic", n_segments=16)
    assert all(np.array_equal(seg, s) for s in many)
    with pytest.raises(ValueError, match="unknown segmentation"):
        superpixels.segment(img, "watershed")


# --------------------------------------------------------------------------- criteria
def result_with(hits_by_n: dict, y, n_superpixels: int = 20, classes=3, seed=0) -> SufficiencyResult:
    """A result whose explanation images are classified right with the given probability at each n."""
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    full = (np.eye(classes)[y] * 0.9 + 0.1 / classes).astype(np.float32)
    probs = {"all": full}
    for n, p in hits_by_n.items():
        right = rng.random(len(y)) < p
        probs[n] = np.eye(classes, dtype=np.float32)[np.where(right, y, (y + 1) % classes)]
    ns = [*hits_by_n, "all"]
    return SufficiencyResult(ns, y, full, probs, np.full(len(y), n_superpixels), ["A", "B", "C"][:classes])


def test_a_result_read_on_some_images_is_the_result_of_those_images():
    y = np.array([0, 1, 2, 0, 1, 2])
    whole = result_with({1: [1, 0, 1, 0, 1, 0], 5: [1] * 6}, y)
    part = whole.take([1, 3, 4])
    alone = result_with({1: [0, 0, 1], 5: [1] * 3}, y[[1, 3, 4]])
    assert part.ns == alone.ns and np.array_equal(part.y_true, alone.y_true)
    assert all(np.array_equal(part.predictions(n), alone.predictions(n)) for n in part.ns)
    np.testing.assert_array_equal(part.per_image_accuracy(), alone.per_image_accuracy())


def test_balanced_accuracy_is_scikit_learns():
    from sklearn.metrics import balanced_accuracy_score

    y = np.array([0] * 30 + [1] * 5 + [2] * 5)
    res = result_with({1: 0.5, 5: 0.9}, y)
    for n in (1, 5):
        assert res.summary().loc[str(n), "balanced_accuracy"] == pytest.approx(
            balanced_accuracy_score(y, res.predictions(n)))


def test_a_collapse_into_one_class_passes_weighted_precision_but_not_balanced_accuracy():
    """Most images of one big class, every explanation image called that class: weighted precision stays
    above two thirds of the full image's; balanced accuracy does not."""
    y = np.array([0] * 90 + [1] * 5 + [2] * 5)
    full = (np.eye(3)[y] * 0.9 + 0.03).astype(np.float32)
    collapsed = np.eye(3, dtype=np.float32)[np.zeros(100, int)]
    res = SufficiencyResult([5, "all"], y, full, {5: collapsed, "all": full}, np.full(100, 30), ["A", "B", "C"])
    assert criterion.sufficient_n(res, "precision_weighted", resamples=200).value == 5
    assert criterion.sufficient_n(res, "balanced_accuracy", resamples=200).value == "all"


def test_the_sufficient_n_is_the_full_image_when_no_tested_n_reaches_the_threshold():
    y = np.arange(60) % 3
    res = result_with({1: 0.1, 5: 0.2}, y)
    found = criterion.sufficient_n(res, "accuracy", resamples=200)
    assert found == criterion.SufficientN("all", "all", "all")
    assert criterion.grid(res).tolist() == [1, 5, 20]


def test_a_ranking_that_suffices_earlier_is_better_and_the_same_ranking_is_not():
    y = np.arange(90) % 3
    good, bad = result_with({1: 0.3, 5: 0.95, 15: 0.97}, y), result_with({1: 0.2, 5: 0.3, 15: 0.9}, y, seed=1)
    c = criterion.compare(good, bad, "accuracy", ("good", "bad"), resamples=300)
    expected = np.mean([np.mean(good.predictions(n) == y) - np.mean(bad.predictions(n) == y) for n in (1, 5, 15)])
    assert c.difference == pytest.approx(expected) and c.low > 0 and c.p_value < 0.01 and c.verdict == statistics.BETTER
    saved = criterion.n_saved(good, bad, "accuracy", resamples=300)
    assert (saved.estimate, saved.low, saved.high) == (10, 10, 10)
    same = criterion.compare(good, good, "accuracy", resamples=300)
    assert same.difference == 0 and same.low == same.high == 0 and same.verdict == statistics.UNCLEAR


def test_the_comparison_is_paired_a_permutation_of_noise_is_no_difference():
    y = np.arange(60) % 3
    a, b = result_with({1: 0.5, 5: 0.7}, y, seed=4), result_with({1: 0.5, 5: 0.7}, y, seed=5)
    c = criterion.compare(a, b, "balanced_accuracy", resamples=300)
    assert c.low < 0 < c.high and c.p_value > 0.05


def test_criterion_table_has_every_criterion_ranking_and_comparison():
    y = np.arange(60) % 3
    results = {"predicted": result_with({1: 0.5, 5: 0.95}, y), "first": result_with({1: 0.2, 5: 0.4}, y, seed=2),
               "random": result_with({1: 0.3, 5: 0.6}, y, seed=3)}
    table = criterion.criterion_table(results, resamples=200)
    assert list(table.table.index) == ["precision_weighted", "accuracy", "balanced_accuracy"]
    assert table.table.loc["accuracy", "predicted"].value == 5
    assert set(table.holds("predicted_vs_first")) == set(table.table.index)
    facts = json.loads(json.dumps(table.facts()))
    assert facts["criteria"]["accuracy"]["sufficient_n"]["first"]["value"] == "all"
    assert facts["criteria"]["accuracy"]["comparisons"]["predicted_vs_first"]["verdict"] == "better"


# --------------------------------------------------------------------------- SRG
def test_srg_is_high_for_the_model_s_region_reversed_for_its_reverse_and_near_zero_at_random():
    images, segs = [toy_image(i) for i in range(12)], [grid_segments()] * 12
    right = [np.array(TOP_LEFT + [i for i in range(16) if i not in TOP_LEFT])] * 12
    rankings = {"right": right, "reversed": [r[::-1] for r in right],
                "random": [np.random.default_rng(i).permutation(16) for i in range(12)]}
    tables = {kind: srg.removal_curves(toy_predict, images, segs, rankings, [1] * 12, kind, steps=8, progress=False)
              for kind in ("grey", "imputed")}  # blur and mean keep the bright quadrant bright: no test of a ranking
    score = srg.combined_score(tables, [("right", "random"), ("random", "reversed")])
    for kind in ("grey", "imputed"):
        s = score.scores.loc[kind]
        assert s.loc["right", "srg"] > 0.5 and s.loc["reversed", "srg"] == pytest.approx(-s.loc["right", "srg"])
        assert s.loc["random", "low"] < s.loc["right", "low"]
        assert score.comparisons[(kind, "right_vs_random")].verdict == statistics.BETTER
    assert score.order("grey") == ["right", "random", "reversed"] and score.consistent()
    json.dumps(score.facts())


def test_srg_curves_share_their_end_points_and_track_the_given_class():
    images, segs = [toy_image(0)], [grid_segments()]
    curves = srg.removal_curves(toy_predict, images, segs, {"a": [np.arange(16)]}, [1], "grey", steps=4,
                                progress=False)
    full, empty = toy_predict(np.stack(images))[0, 1], toy_predict(np.full((1, SIZE, SIZE, 3), 128, np.uint8))[0, 1]
    for order in srg.ORDERS:
        c = curves[curves["order"] == order].sort_values("removed")
        assert c["fraction"].tolist() == [0, 0.25, 0.5, 0.75, 1]
        assert c["prob"].iloc[0] == pytest.approx(full) and c["prob"].iloc[-1] == pytest.approx(empty)
    per = srg.per_image(curves)
    assert per.loc[0, "srg"] == pytest.approx(per.loc[0, "lif_auc"] - per.loc[0, "mif_auc"])


# --------------------------------------------------------------------------- agreement (Krishna et al.)
def test_feature_rank_and_pixel_agreement():
    a = np.array([3, 1, 2, 0, 4, 5])
    assert agreement.feature_agreement(a, a, 3) == 1 and agreement.rank_agreement(a, a, 3) == 1
    assert agreement.feature_agreement(a, [1, 3, 2, 5, 4, 0], 3) == 1
    assert agreement.rank_agreement(a, [1, 3, 2, 5, 4, 0], 3) == pytest.approx(1 / 3)
    assert agreement.feature_agreement(a, [0, 4, 5, 3, 1, 2], 3) == 0
    seg = grid_segments()
    fine = grid_segments(block=4)  # 64 superpixels: another segmentation of the same image
    first = np.array(TOP_LEFT + [i for i in range(16) if i not in TOP_LEFT])
    fine_ids = np.unique(fine[: SIZE // 2, : SIZE // 2])
    fine_first = np.concatenate([fine_ids, np.setdiff1d(np.arange(64), fine_ids)])
    assert agreement.top_area_share(seg, first, 4) == 0.25
    assert agreement.pixel_agreement(seg, first, fine, fine_first, 0.25) == 1
    assert agreement.pixel_agreement(seg, first, fine, fine_first[::-1], 0.25) == 0


# --------------------------------------------------------------------------- robustness
def test_robustness_table_reads_the_finding_in_every_setting():
    rng = np.random.default_rng(0)
    y = np.array([1] * 8 + [0] * 4)
    images = [toy_image(i) if label == 1 else rng.integers(0, 100, (SIZE, SIZE, 3)).astype(np.uint8)
              for i, label in enumerate(y)]
    settings = [robustness.Setting("grid", seed=0, num_samples=48), robustness.Setting("grid, seed 1", seed=1,
                                                                                        num_samples=48),
                robustness.Setting("SLIC", "slic", (("compactness", 20), ("n_segments", 16)), 0, 48)]
    grid = [grid_segments()] * len(y)
    runs = {s.name: robustness.run_setting(toy_predict, images, s, None if s.method == "slic" else grid,
                                           progress=False) for s in settings[:2]}
    result = robustness.robustness(toy_predict, images, y, ["A", "B", "C"], settings, runs, ns=(1, 4, 8, "all"),
                                   resamples=200, progress=False)
    assert list(result.table.index) == ["grid", "grid, seed 1", "SLIC"]
    assert result.holds_in[1] == 3 and 0 <= result.holds_in[0] <= 3
    assert result.table.loc["grid", "holds"]  # the toy model reads one quadrant: LIME finds it, class 0 does not
    assert result.table["holds"].tolist() == [
        all(r[k].verdict == statistics.BETTER for k, _, _ in robustness.FINDING) for _, r in result.table.iterrows()]
    same, other = result.agreement.loc["grid, seed 1"], result.agreement.loc["SLIC"]
    assert 0 <= same["feature_agreement"] <= 1 and same["feature_agreement_images"] == len(y)
    assert np.isnan(other["feature_agreement"]) and other["feature_agreement_images"] == 0  # no shared superpixels
    assert 0 <= other["pixel_agreement"] <= 1 and other["pixel_chance"] == pytest.approx(same["pixel_chance"])
    facts = json.loads(json.dumps(result.facts()))
    assert facts["settings_count"] == 3 and set(facts["verdicts"]) == {"grid", "grid, seed 1", "SLIC"}


def test_study_settings_vary_one_thing_each():
    settings = robustness.study_settings(seed=7, n_segments=44)
    names = [s.name for s in settings]
    assert names == ["study", "LIME seed 8", "LIME seed 9", "1,000 perturbations", "quickshift kernel 3",
                     "quickshift kernel 5", "SLIC, 44 segments"]
    study = settings[0]
    assert dict(study.params) == superpixels.QUICKSHIFT and study.seed == 7 and study.num_samples == 128
    for s in settings[1:]:
        changed = {f for f in ("segmentation", "seed", "num_samples") if getattr(s, f) != getattr(study, f)}
        assert len(changed) == 1, s


# --------------------------------------------------------------------------- fill distance
@pytest.fixture(scope="module")
def small_model():
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Rescaling(1 / 255),
                             keras.layers.Flatten(), keras.layers.Dense(16, activation="relu"),
                             keras.layers.Dense(3, activation="softmax")])


def test_fill_distance_measures_and_their_real_reference(small_model):
    from cytokit.xai import fill_distance as fd

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (SIZE, SIZE, 3)).astype(np.uint8) for _ in range(12)]
    segs = [grid_segments()] * 12
    y = np.arange(12) % 3
    found = fd.fill_distance(small_model, images, segs, y, ["ART", "B", "C"], kinds=("grey", "blur"),
                             resamples=200, progress=False)
    grey_all = found.table.loc[("grey", 1.0)]
    assert grey_all["spread"] == pytest.approx(0) and grey_all["absorbed"] in (0.0, 1.0)  # one image, twelve times
    blur_half = found.table.loc[("blur", 0.5)]
    assert 0 < blur_half["spread"] and blur_half["shift"] > 0
    feats = fd.features(fd.feature_model(small_model), images)
    assert found.between_class == pytest.approx(fd.between_class_distance(feats, y))
    assert found.real["distance"]["value"] == pytest.approx(np.mean(fd.nearest_other(feats, feats)) /
                                                            found.between_class)
    assert found.excess[("grey", 1.0)].b == "real" and found.absorbers == ("ART",)
    facts = json.loads(json.dumps(found.facts()))
    assert set(facts["by_fill"]) == {"grey", "blur"} and set(facts["by_fill"]["grey"]) == {"0.5", "1"}


def test_fill_distance_solves_imputations_in_processes_alike_and_pairs_fills_image_by_image(small_model):
    from cytokit.xai import fill_distance as fd

    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (SIZE, SIZE, 3)).astype(np.uint8) for _ in range(6)]
    segs, y = [grid_segments()] * 6, np.arange(6) % 3
    args = (small_model, images, segs, y, ["ART", "B", "C"])
    serial = fd.fill_distance(*args, kinds=("grey", "imputed"), shares=(0.5,), resamples=100, progress=False)
    pooled = fd.fill_distance(*args, kinds=("grey", "imputed"), shares=(0.5,), resamples=100, workers=2,
                              progress=False)
    pd_testing = pytest.importorskip("pandas.testing")
    pd_testing.assert_frame_equal(serial.table, pooled.table)
    c = serial.paired("imputed", "grey")
    shifts = serial.per_image[("imputed", 0.5)]["shift"] - serial.per_image[("grey", 0.5)]["shift"]
    assert (c.a, c.b, c.n) == ("imputed", "grey", 6) and c.difference == pytest.approx(shifts.mean())


def test_the_spread_has_an_interval_on_three_images_though_some_resamples_draw_one_image_only():
    from cytokit.xai.fill_distance import spread_interval

    real = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    iv = spread_interval(real / 2, real, resamples=500, seed=1)
    assert iv.estimate == pytest.approx(0.5) and iv.low == pytest.approx(0.5) and iv.high == pytest.approx(0.5)
    wider = spread_interval(real * [[1.0], [2.0], [1.0]], real, resamples=500, seed=1)
    assert np.isfinite([wider.low, wider.high]).all() and wider.low <= wider.estimate <= wider.high


def test_hidden_masks_are_seeded_and_hide_the_share_asked():
    from cytokit.xai.fill_distance import hidden_mask, nearest_other

    seg = grid_segments()
    half = hidden_mask(seg, 0.5, seed=3)
    assert len(np.unique(seg[~half])) == 8 and np.array_equal(half, hidden_mask(seg, 0.5, seed=3))
    assert not hidden_mask(seg, 1.0, seed=3).any()
    points = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]])
    assert nearest_other(points, points).tolist() == [1.0, 1.0, 4.0]  # never the point itself


def test_the_between_class_distance_uses_classes_with_two_images_or_every_class_of_a_toy_sample():
    from cytokit.xai.fill_distance import between_class_distance

    feats = np.array([[0.0], [2.0], [10.0], [10.0], [20.0]])
    assert between_class_distance(feats, np.array([0, 0, 1, 1, 2])) == 9  # centroids 1 and 10; the single 20 left out
    assert between_class_distance(feats[[0, 2, 4]], np.array([0, 1, 2])) == pytest.approx(40 / 3)
    with pytest.raises(ValueError, match="two classes"):
        between_class_distance(feats[:2], np.array([0, 0]))


# --------------------------------------------------------------------------- independent randomisation
def test_each_independent_step_changes_only_its_own_layers():
    keras = pytest.importorskip("keras")
    from cytokit.models.network import build_cnn
    from cytokit.xai import randomisation as rnd

    keras.utils.set_random_seed(0)
    model = build_cnn(3, 32)
    rng = np.random.default_rng(0)  # every weight away from its initial value, as training leaves it
    model.set_weights([w + rng.normal(0, 0.1, w.shape).astype(w.dtype) for w in model.get_weights()])
    trained = {layer.name: [w.copy() for w in layer.get_weights()] for layer in model.layers}
    steps = dict(rnd.cascade_steps(model))
    for name, clone in rnd.independent(model, seed=1):
        for layer in clone.layers:
            same = all(np.array_equal(a, b) for a, b in zip(layer.get_weights(), trained[layer.name]))
            assert same == (layer.name not in steps[name]) or not layer.get_weights(), (name, layer.name)
    cascade = dict(rnd.cascade(model, seed=1))
    alone = dict(rnd.independent(model, seed=1))
    for layer in steps["block1"]:  # the same draws as the cascade's step
        np.testing.assert_array_equal(alone["block1"].get_layer(layer).get_weights()[0],
                                      cascade["block1"].get_layer(layer).get_weights()[0])


def test_layer_dependence_reads_each_step_against_the_method_s_own_agreement():
    import pandas as pd

    from cytokit.xai import randomisation as rnd

    summary = pd.DataFrame([
        {"order": 0, "step": rnd.BASELINE, "method": "LIME", "mean": 0.8, "low": 0.7, "high": 0.9, "n": 20},
        {"order": 1, "step": "probs", "method": "LIME", "mean": 0.1, "low": 0.0, "high": 0.2, "n": 20},
        {"order": 2, "step": "dense", "method": "LIME", "mean": 0.7, "low": 0.6, "high": 0.8, "n": 20},
        {"order": 3, "step": "block1", "method": "LIME", "mean": 0.35, "low": 0.2, "high": 0.5, "n": 20},
        {"order": 3, "step": "block2", "method": "LIME", "mean": np.nan, "low": np.nan, "high": np.nan, "n": 0}])
    assert rnd.layer_dependence(summary) == {"LIME": {"probs": rnd.DEPENDS, "dense": rnd.NO_DEPENDENCE,
                                                      "block1": rnd.INCONCLUSIVE, "block2": rnd.NOT_MEASURED}}
    facts = rnd.IndependentRandomisation(summary.assign(undefined=0), 20).facts()
    assert [s["verdict"] for s in facts["steps"]] == ["reference", rnd.DEPENDS, rnd.NO_DEPENDENCE, rnd.INCONCLUSIVE,
                                                      rnd.NOT_MEASURED]


def test_imputations_in_processes_are_the_serial_ones():
    from cytokit.xai import fills

    img, seg = toy_image(3), grid_segments()
    masks = [seg < k for k in (2, 6, 11)]
    serial = fills.fill_many(img, seg, masks, "imputed", seed=5)
    with fills.processes(2) as pool:
        pooled = fills.fill_many(img, seg, masks, "imputed", seed=5, executor=pool)
    assert all(np.array_equal(a, b) for a, b in zip(serial, pooled))
    assert all(np.array_equal(a, fills.fill(img, seg, m, "imputed", seed=5)) for a, m in zip(serial, masks))
    images, segs = [toy_image(0), toy_image(1)], [seg, seg]
    args = ({"a": [np.arange(16)] * 2}, [1, 1], "imputed", 4, 0)
    pd_serial = srg.removal_curves(toy_predict, images, segs, *args, progress=False)
    pd_pooled = srg.removal_curves(toy_predict, images, segs, *args, workers=2, progress=False)
    assert pd_serial.equals(pd_pooled)
