"""Chapter 06's robustness sections on hand-made results: facts under their keys, tables and sentences in words.

Every sentence must be true whatever the data (synthetic or real cells, a finding that holds or
not, intervals on one image) and show no NaN, None or Python's own repr.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from cytokit.book.chapter import Chapter
from cytokit.book.facts import checked_facts
from cytokit.evaluation import statistics
from cytokit.pages import xai_checks
from cytokit.pages import xai_robustness as xr
from cytokit.xai import criterion as criteria
from cytokit.xai import fill_distance as fd
from cytokit.xai import gradcam_layer, randomisation, robustness, srg
from test_xai_robustness import result_with

#: What a reader must never see in a sentence or a table cell.
RAW = re.compile(r"\bnan\b|\bNaN\b|\bNone\b|np\.|array\(|Interval\(|Comparison\(|SufficientN\(|\{|\}")


def comparison(d, low, high, p=0.001, n=40, a="a", b="b", test="Wilcoxon signed-rank") -> statistics.Comparison:
    return statistics.Comparison(a, b, "accuracy over n", d, low, high, p, test, 0.0, n)


BETTER = comparison(0.15, 0.10, 0.20)
UNCLEAR = comparison(0.02, -0.03, 0.07, p=0.4)
WORSE = comparison(-0.10, -0.15, -0.05)


def clean(result) -> dict:
    """The result's facts, checked against its keys, JSON-able, every sentence and table free of raw values."""
    facts = checked_facts(result)
    json.dumps(facts, allow_nan=False)
    for key, value in facts.items():
        if isinstance(value, str):
            assert not RAW.search(value), (key, value)
    for name in ("table", "counts", "agreement", "verdicts"):
        if hasattr(result, name):
            table = getattr(result, name)()
            if table is None:  # nothing to show (the sentence says why)
                continue
            assert not table.isna().any().any(), (name, table)
            assert not any(RAW.search(str(v)) for v in table.to_numpy().ravel()), (name, table)
    return facts


# --------------------------------------------------------------------------- the criterion


def criterion_table(verdicts: dict, all_high: bool = False) -> criteria.CriterionTable:
    rows = []
    for i, c in enumerate(("precision_weighted", "accuracy", "balanced_accuracy")):
        rows.append({"criterion": c, "full_image": 0.8 - 0.05 * i, "threshold": 2 / 3 * (0.8 - 0.05 * i),
                     "predicted": criteria.SufficientN(15, 5, 25), "first": criteria.SufficientN(35, 30, "all"
                                                                                                   if all_high else 40),
                     "random": criteria.SufficientN(30, 25, 40)})
    comparisons = {(c, k): v for (c, k), v in verdicts.items()}
    saved = {key: statistics.Interval(10.0, 5.0, 20.0) for key in comparisons}
    return criteria.CriterionTable(pd.DataFrame(rows).set_index("criterion"), comparisons, saved,
                                   {"predicted": {"1": 40, "all": 40}, "first": {"1": 40, "all": 40},
                                    "random": {"1": 40, "all": 40}})


def test_the_criterion_prints_the_thresholds_each_ranking_s_n_and_which_conclusions_hold_under_each():
    every = {(c, k): BETTER for c in ("precision_weighted", "accuracy", "balanced_accuracy")
             for k in ("predicted_vs_first", "predicted_vs_random")}
    facts = clean(xr.Criterion(criterion_table(every), 40))
    text = facts["criterion_statement"]
    assert facts["criterion_threshold"] == pytest.approx(2 / 3 * 0.8) and "0.533 (of 0.800)" in text
    assert "n = 15 (5–25) by weighted precision" in text and "35 (30–40) by accuracy" in text
    assert "explaining the predicted class beats explaining class 0 holds under every criterion" in text
    assert "“all”" not in text
    mixed = {**every, ("accuracy", "predicted_vs_first"): UNCLEAR, ("balanced_accuracy", "predicted_vs_first"): WORSE}
    text = clean(xr.Criterion(criterion_table(mixed, all_high=True), 40))["criterion_statement"]
    assert "beats explaining class 0 holds under weighted precision, not under accuracy and balanced accuracy" in text
    assert "“all” means that no tested n reaches the threshold" in text


def test_the_criterion_table_reads_the_chapter_s_own_results_without_predicting():
    y = np.array([0, 1, 2] * 6)
    results = {"predicted": result_with({1: 0.2, 5: 1.0}, y, seed=1), "first": result_with({1: 0.1, 5: 0.3}, y, seed=2),
               "random": result_with({1: 0.1, 5: 0.5}, y, seed=3)}
    for r in results.values():  # the same images: one truth and one full-image prediction
        r.full, r.y_true = results["predicted"].full, results["predicted"].y_true
    found = xr.criterion(results, seed=0)
    assert found.images == 18 and set(found.result.table.index) == {"precision_weighted", "accuracy",
                                                                    "balanced_accuracy"}
    assert ("accuracy", "predicted_vs_first") in found.result.comparisons
    facts = clean(found)
    assert set(facts["criterion"]["criteria"]) == {"precision_weighted", "accuracy", "balanced_accuracy"}
    assert list(found.counts().columns) == ["1", "5", "all"]


# --------------------------------------------------------------------------- Grad-CAM's layer and localisation


def evidence(masks: bool, passes: tuple) -> pd.DataFrame:
    rows = []
    for i, (block, ok) in enumerate(zip(("block1", "block2"), passes)):
        row = {"block": block, "layer": f"{block}_relu2", "map_side": 64 // 4 ** i, "empty_maps": 0.1 * i,
               "randomisation": "passes", "randomisation_passes": True, "randomised_spearman": 0.0,
               "srg": 0.2, "srg_minus_random": 0.1 if ok else 0.0, "srg_minus_random_ci95": [0.05, 0.15] if ok else
               [-0.05, 0.05], "srg_p_value": 0.01, "faithfulness": "better" if ok else "no clear difference",
               "faithfulness_passes": ok}
        if masks:
            row.update({"top_in_cell": 0.45, "chance": 0.25, "in_cell_minus_chance": 0.2,
                        "in_cell_minus_chance_ci95": [0.1, 0.3], "localisation_passes": ok,
                        "localisation": "better" if ok else "no clear difference"})
        checks = ("randomisation_passes", "faithfulness_passes") + (("localisation_passes",) if masks else ())
        row["checks_passed"] = sum(row[c] for c in checks)
        rows.append(row)
    return pd.DataFrame(rows).set_index("block")


@pytest.mark.parametrize("masks", [True, False], ids=["synthetic", "real"])
def test_the_layer_s_sentence_says_which_checks_it_passed_or_which_it_fails(masks):
    checks = ["randomisation", "faithfulness"] + (["localisation"] if masks else [])
    passed = gradcam_layer.pick(evidence(masks, (True, False)), checks)
    facts = clean(xr.GradcamLayer(passed, 40, 64))
    assert facts["gradcam_layer_name"] == "block1_relu2" and "passes every check" in facts["gradcam_layer_statement"]
    failed = gradcam_layer.pick(evidence(masks, (False, False)), checks)
    text = clean(xr.GradcamLayer(failed, 40, 64))["gradcam_layer_statement"]
    assert "No block passes every check" in text and "it fails faithfulness" in text
    assert ("top superpixel in the cell vs chance" in xr.GradcamLayer(failed, 40, 64).table()) == masks


def test_localisation_is_said_against_chance_on_cells_with_masks_and_said_unavailable_on_real_images():
    assert xr.Localisation(None, 40).table() is None  # no empty table on a page of real images
    real = clean(xr.Localisation(None, 40))
    assert real["gradcam_localisation"] is None and "no cell masks" in real["gradcam_localisation_statement"]
    rows = {"Grad-CAM on block1_relu2 (chosen)": (0.45, 0.25, comparison(0.2, 0.12, 0.28, test="exact")),
            "random": (0.27, 0.25, comparison(0.02, -0.05, 0.09, p=0.5, test="exact"))}
    text = clean(xr.Localisation(rows, 200))["gradcam_localisation_statement"]
    assert "(chosen) 45 % against 25 %, more often than chance" in text
    assert "random 27 % against 25 %, not told apart from chance" in text


# --------------------------------------------------------------------------- the finding in other settings


def robustness_result(holds: tuple) -> robustness.RobustnessResult:
    names = ["study", "LIME seed 1", "SLIC, 45 segments"][:len(holds)]
    rows = []
    for name, ok in zip(names, holds):
        row = {"setting": name, "superpixels": 44.6}
        for c in ("precision_weighted", "accuracy", "balanced_accuracy"):
            for r in ("predicted", "first", "random"):
                row[f"n_{c}_{r}"] = criteria.SufficientN(15, 5, "all")
        row.update({"predicted_vs_first": BETTER, "lime_vs_random": BETTER if ok else UNCLEAR, "holds": ok})
        rows.append(row)
    nan = float("nan")
    agree = [{"setting": "LIME seed 1", "feature_agreement": 0.39, "feature_agreement_low": 0.34,
              "feature_agreement_high": 0.45, "feature_agreement_images": 40, "rank_agreement": 0.15,
              "rank_agreement_low": nan, "rank_agreement_high": nan, "rank_agreement_images": 1, "spearman": 0.26,
              "spearman_low": 0.2, "spearman_high": 0.32, "spearman_images": 40, "pixel_agreement": 0.41,
              "pixel_agreement_low": 0.36, "pixel_agreement_high": 0.48, "pixel_agreement_images": 40,
              "pixel_chance": 0.13, "pixel_chance_low": 0.12, "pixel_chance_high": 0.13, "pixel_chance_images": 40},
             {"setting": "SLIC, 45 segments", **{k: nan for k in ("feature_agreement", "feature_agreement_low",
                                                                   "feature_agreement_high", "rank_agreement",
                                                                   "rank_agreement_low", "rank_agreement_high",
                                                                   "spearman", "spearman_low", "spearman_high")},
              "feature_agreement_images": 0, "rank_agreement_images": 0, "spearman_images": 0,
              "pixel_agreement": 0.35, "pixel_agreement_low": 0.30, "pixel_agreement_high": 0.40,
              "pixel_agreement_images": 40, "pixel_chance": 0.13, "pixel_chance_low": 0.12, "pixel_chance_high": 0.13,
              "pixel_chance_images": 40}]
    settings = tuple(robustness.study_settings(n_segments=45))
    return robustness.RobustnessResult(pd.DataFrame(rows).set_index("setting"),
                                       pd.DataFrame(agree[:len(holds) - 1], columns=list(agree[0])).set_index(
                                           "setting"), settings, 40)


def test_the_robustness_table_says_k_of_m_and_names_where_and_why_the_finding_fails():
    facts = clean(xr.Robustness(robustness_result((True, True, False))))
    assert (facts["robustness_holds_in"], facts["robustness_settings_count"]) == (2, 3)
    text = facts["robustness_statement"]
    assert ("holds in 2 of 3 settings; not under SLIC, 45 segments (predicted − class 0: better; LIME − random: "
            "no clear difference)") in text
    assert "holds in 1 of 1 settings." in clean(xr.Robustness(robustness_result((True,))))["robustness_statement"]
    assert set(facts["robustness"]) >= {"images", "holds_in", "verdicts", "agreement_with_study"}


def test_agreement_says_when_a_measure_needs_the_same_superpixels_and_when_an_interval_rests_on_one_image():
    found = xr.Robustness(robustness_result((True, True, False)))
    table = found.agreement()
    assert table.loc["SLIC, 45 segments", "top-5 feature agreement"] == "other superpixels"
    assert table.loc["LIME seed 1", "top-5 rank agreement"] == "15 % (one image: no interval)"
    assert table.loc["LIME seed 1", "Spearman of the weights"] == "+0.26 (+0.20 to +0.32)"
    text = clean(found)["robustness_agreement_statement"]
    assert "LIME seed 1: top-5 feature agreement 39 % (34–45 %)" in text
    assert "SLIC, 45 segments 35 % (30–40 %) against 13 % (12–13 %) by chance" in text


# --------------------------------------------------------------------------- fills


def fill_result(shifts: dict) -> fd.FillDistance:
    """Per fill, per-image shifts at half hidden (the table's means from them), every fill fully filled too."""
    rows, excess, per_image = [], {}, {}
    for kind, values in shifts.items():
        for share in (0.5, 1.0):
            v = np.asarray(values, float) * (1 + share)
            iv = statistics.mean_interval(v)
            per_image[(kind, share)] = {"distance": v / 2, "shift": v}
            excess[(kind, share)] = statistics.paired_mean_difference(v / 2, np.full(len(v), 0.4) + np.arange(
                len(v)) / 100, (kind, "real"), "distance to the data")
            rows.append({"fill": kind, "share": share, "images": len(v), "distance": iv.estimate / 2,
                         "distance_low": iv.low / 2, "distance_high": iv.high / 2, "shift": iv.estimate,
                         "shift_low": iv.low, "shift_high": iv.high, "spread": 0.0 if kind == "grey" else 0.8,
                         "spread_low": 0.0, "spread_high": 0.9, "absorbed": 1.0 if kind == "grey" else 0.3,
                         "absorbed_low": 0.9, "absorbed_high": 1.0})
    return fd.FillDistance(pd.DataFrame(rows).set_index(["fill", "share"]), excess,
                           {"distance": {"value": 0.9, "ci95": [0.85, 0.95]}, "absorbed": {"value": 0.19,
                                                                                           "ci95": [0.12, 0.28]}},
                           2.57, ("ART", "NIF"), per_image)


def fills_step(found: fd.FillDistance) -> xr.FillDistances:
    order = tuple(found.closest(xr.HIDDEN, "shift"))
    return xr.FillDistances(found, order, {k: found.paired(order[0], k, xr.HIDDEN) for k in order[1:]})


def test_the_fills_are_ordered_by_how_little_they_change_what_the_model_sees_with_paired_verdicts():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.5, 1.0, 30)
    found = fills_step(fill_result({"grey": base + 0.6, "mean": base, "blur": base + 0.01 * rng.normal(size=30),
                                    "imputed": base + 0.3}))
    facts = clean(found)
    assert facts["fill_closest"] in ("mean", "blur") and found.order[-1] == "grey"
    text = facts["fill_distance_statement"]
    assert "clearly less than under imputed and grey" in text
    assert "weigh most; those under grey, whose images move furthest" in text
    assert "called ART or NIF: grey 100 % (90–100 %)" in text
    assert "against 19 % (12–28 %) of the real images" in text
    assert facts["fill_distance"]["order_by_shift"] == list(found.order)


def test_fills_that_these_images_cannot_tell_apart_are_weighed_alike():
    rng = np.random.default_rng(1)
    found = fills_step(fill_result({k: rng.uniform(0.5, 1.0, 8) for k in ("grey", "mean", "blur", "imputed")}))
    text = clean(found)["fill_distance_statement"]
    assert "not clearly less than under any other" in text
    assert "cannot tell the fills apart clearly enough" in text


# --------------------------------------------------------------------------- SRG and the independent randomisation


def combined(verdicts: dict) -> srg.CombinedScore:
    rows, comparisons = [], {}
    for fill in ("grey", "imputed"):
        for m, v in (("LIME", 0.36), ("Grad-CAM", 0.04), ("random", 0.03), ("class 0", -0.06)):
            rows.append({"fill": fill, "method": m, "srg": v, "low": v - 0.1, "high": v + 0.1, "mif_auc": 0.3,
                         "lif_auc": 0.3 + v, "images": 40 if fill == "grey" else 1})
        for pair in xr.SRG_PAIRS:
            comparisons[(fill, f"{pair[0]}_vs_{pair[1]}")] = verdicts.get((fill, pair), UNCLEAR)
    return srg.CombinedScore(pd.DataFrame(rows).set_index(["fill", "method"]), comparisons,
                             {"grey": 40, "imputed": 10})


def test_the_combined_score_says_under_which_fills_each_comparison_holds():
    found = xr.CombinedScores(combined({("grey", ("LIME", "random")): BETTER, ("imputed", ("LIME", "random")): BETTER,
                                        ("grey", ("LIME", "Grad-CAM")): BETTER}), xr.SRG_PAIRS)
    text = clean(found)["combined_score_statement"]
    assert "That LIME's SRG beats random's holds under every fill (grey and imputed)" in text
    assert "That LIME's SRG beats Grad-CAM's holds under grey, not under imputed" in text
    assert "images per fill: grey 40 and imputed 10" in text
    assert found.table().loc["LIME", "imputed"] == "+0.360 (+0.260 to +0.460) (few images: 1)"


def independent_summary() -> pd.DataFrame:
    nan = float("nan")
    rows = [(0, randomisation.BASELINE, "Grad-CAM", 1.0, 1.0, 1.0, 36), (0, randomisation.BASELINE, "LIME", 0.25,
                                                                          0.18, 0.31, 40),
            (1, "probs", "Grad-CAM", 0.18, 0.01, 0.35, 33), (1, "probs", "LIME", -0.06, -0.15, 0.04, 40),
            (2, "dense", "Grad-CAM", 0.6, 0.55, 0.65, 30), (2, "dense", "LIME", 0.08, 0.02, 0.14, 40),
            (3, "block1", "Grad-CAM", nan, nan, nan, 0), (3, "block1", "LIME", 0.01, -0.03, 0.05, 40)]
    return pd.DataFrame(rows, columns=["order", "step", "method", "mean", "low", "high", "n"]).assign(undefined=0)


def test_independent_randomisation_sits_beside_the_cascade_with_each_layer_s_verdict():
    summary = independent_summary()
    cascade = summary[summary["step"] != "dense"].assign(mean=lambda d: d["mean"] / 2)
    found = xr.Independent(randomisation.IndependentRandomisation(summary, 40), "block1_relu2", cascade)
    facts = clean(found)
    table = found.table()
    assert table.loc[("dense", "LIME"), "in cascade (every layer above too)"] == "not run"
    assert table.loc[("probs", "LIME"), "verdict"] == randomisation.DEPENDS
    assert table.loc[("block1", "Grad-CAM"), "this layer alone"] == "not measured"
    text = facts["independent_statement"]
    assert "Grad-CAM (on block1_relu2) depends on probs; does not depend on dense; is not measured for block1" in text
    assert "LIME depends on probs and block1; is inconclusive for dense" in text
    assert set(facts["randomisation.independent"]) >= {"steps", "dependence", "gradcam_layer"}
    alone = xr.Independent(randomisation.IndependentRandomisation(summary, 40), "block1_relu2")
    assert "in cascade (every layer above too)" not in alone.table()


# --------------------------------------------------------------------------- all sections: subsets and metrics.json


def test_the_subsets_keep_the_layer_choice_off_the_images_grad_cam_is_reported_on():
    chosen = pd.DataFrame({"path": [f"{c}/{i}.jpg" for c in "ABCD" for i in range(10)],
                           "cls": [c for c in "ABCD" for _ in range(10)]})
    subset = np.arange(0, 40, 4)  # ten images
    s = xr.sizes(chosen, subset, n_robust=20, n_imputed=4, n_layer_choice=12, n_independent=6, seed=0)
    assert sorted(s.subset) == sorted(subset) and s.imputed == 4 and len(s.robust) == 20 and len(s.choice) == 12
    assert s.independent == 6 and xr.sizes(chosen, subset, 20, 4, 12).independent == 10
    assert not set(s.choice) & set(subset) and len(set(s.robust)) == 20
    assert chosen["cls"].iloc[list(s.subset[:4])].nunique() == 4  # the imputed images are stratified too
    everything = xr.sizes(chosen, subset, n_robust=99, n_imputed=99, n_layer_choice=99)
    assert len(everything.robust) == 40 and everything.imputed == 10 and len(everything.choice) == 30
    facts = clean(s)
    assert "stratified subset of 20 of the 40 explained images" in facts["robustness_sizes_statement"]
    assert "explains 6 of them again" in facts["robustness_sizes_statement"]
    with pytest.raises(ValueError, match="outside the subset"):
        xr.sizes(chosen, np.arange(39), 10, 2, 2)


def test_every_section_lands_in_metrics_json_under_its_name(tmp_path):
    every = {(c, k): BETTER for c in ("precision_weighted", "accuracy", "balanced_accuracy")
             for k in ("predicted_vs_first", "predicted_vs_random")}
    chosen = pd.DataFrame({"path": [f"{i}.jpg" for i in range(12)], "cls": list("AB") * 6})
    rng = np.random.default_rng(2)
    sections = xr.XaiRobustness(
        xr.sizes(chosen, np.arange(6), 8, 2, 4), xr.Criterion(criterion_table(every), 12),
        xr.GradcamLayer(gradcam_layer.pick(evidence(False, (True, True)), ["randomisation", "faithfulness"]), 4, 64),
        xr.Localisation(None, 8), xr.Robustness(robustness_result((True, True))),
        fills_step(fill_result({k: rng.uniform(0.5, 1, 8) for k in ("grey", "mean")})),
        xr.CombinedScores(combined({}), xr.SRG_PAIRS),
        xr.Independent(randomisation.IndependentRandomisation(independent_summary(), 6), "block1_relu2"))
    chapter = Chapter("06_xai", tmp_path)
    chapter.record(sections)
    assert {"robustness", "fill_distance", "combined_score", "randomisation.independent", "criterion",
            "gradcam_layer", "robustness_sizes"} <= set(chapter.metrics)
    saved = json.loads(chapter.save_metrics().read_text())
    assert saved["robustness"]["holds_in"] == 2 and saved["gradcam_localisation"] is None


# --------------------------------------------------------------------------- figures


def test_every_figure_has_a_title_and_titled_axes_and_draws_the_intervals():
    from cytokit.pages.figures import xai_robustness as figs

    every = {(c, k): BETTER for c in ("precision_weighted", "accuracy", "balanced_accuracy")
             for k in ("predicted_vs_first", "predicted_vs_random")}
    rng = np.random.default_rng(3)
    summary = independent_summary()
    figures = [figs.criterion_figure(xr.Criterion(criterion_table(every, all_high=True), 40)),
               figs.layer_figure(xr.GradcamLayer(gradcam_layer.pick(evidence(True, (True, False)),
                                                                    ["randomisation", "faithfulness",
                                                                     "localisation"]), 40, 64)),
               figs.robustness_figure(xr.Robustness(robustness_result((True, True, False)))),
               figs.agreement_figure(xr.Robustness(robustness_result((True, True, False)))),
               figs.fill_distance_figure(fills_step(fill_result({k: rng.uniform(0.5, 1, 8)
                                                                 for k in ("grey", "mean")}))),
               figs.srg_figure(xr.CombinedScores(combined({}), xr.SRG_PAIRS)),
               figs.independent_figure(xr.Independent(randomisation.IndependentRandomisation(summary, 40),
                                                      "block1_relu2", summary))]
    for fig in figures:
        assert fig.layout.title.text
        axes = [k for k in fig.layout.to_plotly_json() if k.startswith(("xaxis", "yaxis"))]
        titled = [k for k in axes if fig.layout[k].title.text]
        assert {k[0] for k in titled} == {"x", "y"}, (fig.layout.title.text, axes, titled)
        assert any(getattr(t, "error_y", None) is not None and t.error_y.array is not None
                   or getattr(t, "error_x", None) is not None and t.error_x.array is not None for t in fig.data)
    assert "all" in figures[0].layout.yaxis.ticktext  # the full image has its own tick
    assert len(figures[1].data) == 2  # faithfulness and, with masks, localisation


# --------------------------------------------------------------------------- every section on a toy network


@pytest.mark.slow
def test_every_section_runs_on_the_chapter_s_sample_and_never_explains_the_study_s_setting_again(monkeypatch):
    keras = pytest.importorskip("keras")
    from cytokit.models.network import build_cnn
    from cytokit.xai import controls, explain
    from cytokit.xai.sufficiency import sufficiency
    from test_xai import grid_segments, toy_image

    keras.utils.set_random_seed(0)
    model = build_cnn(3, 32, bn_momentum=0.9)
    images = [toy_image(i) for i in range(7)]
    segments = [grid_segments()] * 7
    y = np.arange(7) % 3
    chosen = pd.DataFrame({"path": [f"{i}.jpg" for i in range(7)], "cls": [f"C{k}" for k in y]})
    lime = explain.explain_all_labels(model, images, segments, ("predicted", "first"), None, 8, progress=False)
    rankings = controls.random_rankings(segments, 0)
    full = explain.full_probs(lime["predicted"])
    results = {n: sufficiency(model, images, segments, r, y, ns=(1, 4, 8, "all"), class_names=["A", "B", "C"],
                              full_probs=full, progress=False)
               for n, r in (("predicted", lime["predicted"]), ("first", lime["first"]), ("random", rankings))}
    explained = []
    run_setting = robustness.run_setting
    monkeypatch.setattr(robustness, "run_setting", lambda m, ims, s, *a, **k: explained.append(s.name) or
                        run_setting(m, ims, s, *a, **k))
    masks = [np.indices((32, 32)).max(axis=0) < 16] * 7  # the bright top-left quadrant is the "cell"
    found = xr.robustness_sections(model, images, segments, y, ["A", "B", "C"], chosen, lime["predicted"],
                                   lime["first"], rankings, results, subset=[0, 1, 2], n_robust=3, n_imputed=2,
                                   n_layer_choice=2, n_independent=2, lime_seeds=2, more_samples=12, cell_masks=masks,
                                   workers=1)
    assert "study" not in explained and "LIME seed 1" in explained and "12 perturbations" in explained
    assert set(found.sizes.choice).isdisjoint(found.sizes.subset) and found.localisation.images == 5
    assert found.independent.result.images == 2 and found.combined.result.images["imputed"] == 2
    assert found.robustness.result.images == 3 and found.fills.result.table["images"].eq(3).all()
    clean(found)
    explained.clear()  # the settings made once (the chapter's stability step) serve the robustness section as they are
    settings = xr.settings_at(model, images, segments, lime["predicted"], lime["first"], rankings,
                              found.sizes.robust, 2, 12, 0)
    assert explained == ["LIME seed 1", "12 perturbations", "quickshift kernel 3", "quickshift kernel 5",
                         f"SLIC, {settings.settings[-1].as_dict()['n_segments']} segments"]
    again = xr.robustness_sections(model, images, segments, y, ["A", "B", "C"], chosen, lime["predicted"],
                                   lime["first"], rankings, results, subset=[0, 1, 2], n_robust=3, n_imputed=2,
                                   n_layer_choice=2, n_independent=2, cell_masks=masks, workers=1, settings=settings)
    assert len(explained) == 5 and again.robustness.facts() == found.robustness.facts()
    with pytest.raises(ValueError, match="more_samples=8 must be more than the 8"):
        xr.settings_at(model, images, segments, lime["predicted"], lime["first"], rankings, found.sizes.robust, 2, 8, 0)
    stable = xai_checks.stability(settings)
    assert stable.seed_top5.n == 3 and stable.seeds == 2 and stable.more_samples == 12
    with pytest.raises(ValueError, match="same n_robust"):
        xr.robustness_sections(model, images, segments, y, ["A", "B", "C"], chosen, lime["predicted"], lime["first"],
                               rankings, results, subset=[0, 1, 2], n_robust=4, n_imputed=2, n_layer_choice=2,
                               workers=1, settings=settings)
    panel = xr.maps_beside_lime(model, images, segments, lime["predicted"], found.gradcam.layer, y, ["A", "B", "C"])
    assert len(panel) == 3 and all(len(row) in (3, 4) and row[0].shape == (32, 32, 3) for row in panel.values())
