"""Chapter 06's results and sentences, on hand-made results: true for synthetic and real cells, for small and large
samples, and never a NaN, None or a Python repr on the page."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from cytokit.book.facts import checked_facts
from cytokit.evaluation.statistics import Comparison, Interval
from cytokit.pages import xai, xai_checks
from cytokit.pages import xai_words as say
from cytokit.xai.explain import Explanation
from cytokit.xai.fills import FILLS
from cytokit.xai.sufficiency import SufficiencyResult

#: What must never reach a reader: NaN, None, a Python repr of a dict, list, array or numpy scalar.
RAW = re.compile(r"(?i:\bnan\b|\binf\b)|\bNone\b|\{'|\['|array\(|np\.\w+\(")


def sentences(result) -> list[str]:
    """Every string fact of a result (its sentences), checked against the keys its class declares."""
    return [v for v in checked_facts(result).values() if isinstance(v, str)]


def clean(text: str) -> str:
    assert text and not RAW.search(text), text
    assert text.count("(") == text.count(")"), f"unbalanced parentheses: {text}"
    return text


def comparison(difference=0.1, low=0.05, high=0.15, p=0.01, n=30, a="LIME", b="random") -> Comparison:
    return Comparison(a, b, "accuracy over n", difference, low, high, p, "Wilcoxon signed-rank", 0.0, n)


UNCLEAR = dict(difference=0.01, low=-0.05, high=0.07, p=0.6)
WORSE = dict(difference=-0.1, low=-0.15, high=-0.05, p=0.01)


# --------------------------------------------------------------------------- the sample


def sample(tmp_path, split="val", n=4) -> xai.XaiSample:
    segments = tuple(np.repeat(np.arange(k), 4).reshape(4, k) for k in (3, 5, 4, 6)[:n])
    chosen = pd.DataFrame({"path": [f"EBO/{i}.jpg" for i in range(n)], "cls": ["EBO", "EBO", "LYT", "PLM"][:n]})
    return xai.XaiSample(None, tuple(np.zeros((4, 4, 3), np.uint8) for _ in range(n)), segments,
                         np.array([0, 0, 1, 2][:n]), ("EBO", "LYT", "PLM"), chosen, np.array([0, 2]), split, tmp_path)


def test_the_sample_says_where_its_images_come_from_and_counts_their_superpixels(tmp_path):
    facts = checked_facts(sample(tmp_path))
    assert facts["explained_split"] == "the val split"
    assert checked_facts(sample(tmp_path, "all"))["explained_split"] == "all usable images of the folder"
    assert facts["n_images"] == 4 and facts["n_subset"] == 2 and facts["n_classes_explained"] == 3
    assert (facts["superpixels_min"], facts["superpixels_max"], facts["superpixels_mean"]) == (3, 6, 4.5)
    assert facts["explained_per_class"] == {"EBO": 2, "LYT": 1, "PLM": 1}
    json.dumps(facts)


def test_the_sample_hands_a_step_the_images_at_given_positions(tmp_path):
    s = sample(tmp_path)
    images, segments, y_true = s.at(s.subset)
    assert len(images) == 2 and segments[1] is s.segments[2] and list(y_true) == [0, 1]
    assert not s.is_synthetic  # a folder without the synthetic generator's mark is taken for real images


def explanation(label: int, ranking) -> Explanation:
    ranking = np.asarray(ranking)
    return Explanation(label, "predicted", ranking, {int(k): float(-i) for i, k in enumerate(ranking)},
                       np.eye(3, dtype=np.float32)[label], 0.5, 0.0, 32, 0)


def test_each_curve_ranks_the_superpixels_as_the_page_names_it():
    lime = xai.Explanations("predicted", (explanation(1, [2, 0, 1]),), (explanation(0, [0, 1, 2]),),
                            (np.array([1, 2, 0]),), np.array([1]))
    assert [list(lime.rankings(c)[0]) for c in xai.CURVES] == [[2, 0, 1], [0, 1, 2], [1, 0, 2], [1, 2, 0]]
    assert lime.labels == [1] and checked_facts(lime) == {"full_image_accuracy": 1.0}


# --------------------------------------------------------------------------- sufficiency and its verdicts


def fill_sufficiency(sufficient=(15, 5, 25), images=30, differences=None, precision=0.9,
                     correct=27) -> xai.FillSufficiency:
    table = pd.DataFrame({"images": [images, images], "accuracy": [0.5, 0.9], "accuracy_low": [0.3, 0.8],
                          "accuracy_high": [0.7, 0.95], "precision_weighted": [0.4, 0.9],
                          "precision_weighted_low": [0.2, 0.8], "precision_weighted_high": [0.6, 0.95]},
                         index=pd.Index(["15", "all"], name="n"))
    diffs = differences or {key: comparison() for key, *_ in xai.COMPARISONS}
    return xai.FillSufficiency({}, {k: {c: table for c in xai.CURVES} for k in FILLS},
                               {k: {c: sufficient for c in xai.CURVES} for k in FILLS},
                               {k: dict(diffs) for k in FILLS}, {k: images for k in FILLS}, precision, correct)


def test_sufficient_n_reads_with_its_interval_and_never_as_none():
    facts = checked_facts(fill_sufficiency())
    assert facts["sufficient_n_predicted"] == 15 and facts["sufficient_n_predicted_text"] == "15 (5–25)"
    never = checked_facts(fill_sufficiency((None, None, None)))
    assert never["sufficient_n_random"] is None  # null in metrics.json; the prose reads the text
    assert never["sufficient_n_random_text"] == "never (not within the n tested)"
    assert checked_facts(fill_sufficiency((40, 25, None)))["sufficient_n_first_text"] == "40 (25–none tested)"
    for text in sentences(fill_sufficiency((None, None, None))):
        clean(text)


def test_the_bar_is_said_with_the_full_images_scores_and_a_zero_precision_is_said_to_clear_every_n():
    text = clean(checked_facts(fill_sufficiency())["reference_statement"])
    assert text.startswith("On the full images the model calls 27 of 30 images right (accuracy 90.0 % (")
    assert "weighted precision of 90.0 %; a ranking suffices where its explanation images keep two thirds" in text
    assert "says nothing" not in text
    broken = clean(fill_sufficiency(images=1, precision=0.0, correct=0).reference_sentence())
    assert "calls 0 of 1 image right" in broken and "every n clears that bar" in broken


def test_metrics_keep_every_fill_with_its_curves_intervals_and_comparisons():
    fills = json.loads(json.dumps(checked_facts(fill_sufficiency())["fills"]))
    assert sorted(fills) == sorted(FILLS)
    grey = fills["grey"]
    assert grey["n_images"] == 30 and grey["sufficient_n_ci95"]["top"] == [5, 25]
    assert grey["curve_top"]["accuracy"]["15"] == {"value": 0.5, "ci95": [0.3, 0.7], "images": 30}
    assert grey["differences"]["lime_minus_random"]["verdict"] == "better"


def test_the_sufficient_n_table_marks_few_images_and_the_threshold_is_two_thirds():
    few = fill_sufficiency(images=6)
    assert few.table().loc[xai.CURVES["top"], "grey"] == "15 (5–25) (few images: 6)"
    assert list(few.table().columns) == list(FILLS) and list(few.table().index) == list(xai.CURVES.values())
    assert fill_sufficiency().table().loc[xai.CURVES["top"], "grey"] == "15 (5–25)"
    assert few.threshold == pytest.approx(0.6)


def test_the_sufficiency_step_is_recomputed_from_predictions_as_metrics_record_them():
    """FillSufficiency.of on hand-made predictions: a ranking that keeps the class suffices at the first n."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 8)
    full = np.eye(3, dtype=np.float32)[y]
    right = {n: full.copy() for n in (1, 5, "all")}
    wrong = {n: (full if n == "all" else np.eye(3, dtype=np.float32)[(y + 1) % 3]) for n in (1, 5, "all")}
    counts = rng.integers(6, 9, len(y))

    def result(probs):
        return SufficiencyResult([1, 5, "all"], y, full, probs, counts, ["EBO", "LYT", "PLM"])

    results = {k: {"top": result(right), "first": result(wrong), "bottom": result(wrong), "random": result(wrong)}
               for k in FILLS}
    suff = xai.FillSufficiency.of(results, seed=0)
    facts = checked_facts(suff)
    assert facts["sufficient_n_predicted"] == 1 and facts["sufficient_n_random"] is None
    assert facts["fills"]["imputed"]["differences"]["lime_minus_random"]["verdict"] == "better"
    verdicts = xai.fill_verdicts(suff)
    assert "That LIME's ranking beats a random one holds under every fill (grey, mean, blur, imputed)." in \
        verdicts.sentence()
    assert list(verdicts.table().columns) == list(FILLS)
    per_class = xai.per_class_curves(suff)
    assert per_class.table.empty  # 8 images a class, fewer than the 10 a class needs for its curve
    absorbed = xai.absorbers(suff)
    assert absorbed.table["share"].between(0, 1).all()
    wide = absorbed.wide()
    assert list(wide.index) == ["1", "5", "all"] and list(wide.columns) == ["most", "second", "third"]
    assert wide.loc["all", "most"] in ("EBO (33%)", "LYT (33%)", "PLM (33%)")


def test_which_conclusions_survive_the_fill_is_said_per_comparison():
    mixed = {k: {key: comparison(**(UNCLEAR if k == "imputed" else {})) for key, *_ in xai.COMPARISONS}
             for k in FILLS}
    text = clean(xai.FillVerdicts(mixed).sentence())
    assert "That LIME's ranking beats a random one depends on the fill: it holds under grey, mean, blur, not " \
           "under imputed." in text
    assert "Holm" in text  # twelve comparisons read at 0.05: the family's chance is said
    against = {k: {key: comparison(**WORSE) for key, *_ in xai.COMPARISONS} for k in FILLS}
    assert "holds under no fill; the opposite holds under grey, mean, blur, imputed" in \
        xai.FillVerdicts(against).sentence()
    cell = xai.FillVerdicts(mixed).table().loc[xai.COMPARISONS[0][3], "imputed"]
    assert cell == "+1.0 points (-5.0 to +7.0; p = 0.6): no clear difference"


def test_a_difference_on_few_images_is_marked_in_its_cell():
    assert say.difference_cell(comparison(n=6)) == "+10.0 points (+5.0 to +15.0; p = 0.01; few images: 6): better"


# --------------------------------------------------------------------------- per class


def test_the_per_class_sentence_names_the_classes_drawn_or_says_none_has_enough_images():
    empty = xai.PerClassCurves(pd.DataFrame(columns=["code", "n", "images", "accuracy", "low", "high"]),
                               pd.Series({"PLM": 2, "LYT": 3}))
    assert clean(empty.sentence()).startswith("No class has 10 or more explained images in this run")
    assert checked_facts(empty)["per_class_curves"] == {}
    rows = pd.DataFrame({"code": ["PLM", "PLM", "LYT"], "n": ["1", "all", "1"], "images": [12, 12, 11],
                         "accuracy": [0.5, 0.9, 0.4], "low": [0.2, 0.6, 0.1], "high": [0.8, 1.0, 0.7]})
    text = clean(xai.PerClassCurves(rows, pd.Series({"PLM": 12, "LYT": 11})).sentence())
    assert "2 classes have 10 or more explained images and their own curve: PLM, LYT." in text
    assert "PLM, the class the study follows throughout, is drawn thick." in text
    one = clean(xai.PerClassCurves(rows[rows["code"] == "LYT"], pd.Series({"LYT": 11})).sentence())
    assert one == "1 class has 10 or more explained images and its own curve: LYT."


# --------------------------------------------------------------------------- the reviewer's checks


def randomisation(verdicts: dict, n=3) -> xai_checks.Randomisation:
    summary = pd.DataFrame({"order": [0, 1], "step": ["trained, explained again", "probs"],
                            "method": ["LIME", "LIME"], "mean": [0.8, 0.1], "low": [0.6, float("nan")],
                            "high": [0.9, float("nan")], "n": [n, 1], "undefined": [0, 0]})
    return xai_checks.Randomisation(summary, verdicts)


def test_randomisation_names_each_methods_verdict_and_why():
    text = clean(randomisation({"LIME": "inconclusive", "Grad-CAM": "passes"}).sentence())
    assert text.startswith("Grad-CAM: the sanity check passes — ")
    assert "LIME: the sanity check is inconclusive — " in text
    assert clean(randomisation({}).sentence()) == "The randomisation check did not run."
    both = randomisation({"LIME": "fails", "Grad-CAM": "fails"}).sentence()
    assert both.startswith("LIME and Grad-CAM: the sanity check fails")


def test_the_randomisation_table_marks_few_images_and_a_single_image_has_no_interval():
    table = randomisation({"LIME": "passes"}).table()
    assert table.loc[("trained, explained again", "LIME"), "spearman"] == "0.80 (0.60–0.90) (few images: 3)"
    assert table.loc[("probs", "LIME"), "spearman"] == "0.10 (one image: no interval) (few images: 1)"
    steps = json.loads(json.dumps(checked_facts(randomisation({"LIME": "passes"}))["randomisation"]))["steps"]
    assert steps[1]["ci95"] == [None, None]  # NaN is null in metrics.json, never on the page


def stability(n=3, more_n=3) -> xai_checks.Stability:
    return xai_checks.Stability(Interval(0.12, 0.0, 0.43, n), Interval(0.18, -0.40, 0.76, n),
                         Interval(0.23, 0.1, 0.5, more_n) if more_n > 1 else Interval(0.23, float("nan"),
                                                                                         float("nan"), more_n),
                         Interval(0.6, 0.4, 0.8, more_n), 2, 32, 64)


def test_stability_reads_with_intervals_and_marks_few_images():
    text = clean(stability().sentence())
    assert text.startswith("On 3 images (few images), the predicted class's top five superpixels overlap by 12 % "
                           "on average across 2 LIME seeds (95 % interval 0–43 %)")
    assert "Spearman 0.18 (-0.40–0.76); with" in text
    assert "with 64 perturbations instead of 32 the top five overlap by 23 % (10–50 %)." in text
    many = clean(stability(n=25, more_n=25).sentence())
    assert "few images" not in many


def test_stability_on_one_image_says_it_cannot_judge_in_the_right_number():
    assert clean(stability(n=1, more_n=1).sentence()).startswith("Only 1 image could be compared across 2 LIME")
    assert say.images(0) == "0 images" and say.images(1) == "1 image" and say.images(1200) == "1,200 images"


def test_stability_keeps_fixed_keys_whatever_the_sample_sizes():
    record = checked_facts(stability())["stability"]
    assert set(record) == {"lime_seed_top5_overlap", "lime_seed_spearman", "samples_top5_overlap",
                           "samples_spearman", "samples_compared"}
    assert record["samples_compared"] == [32, 64]
    assert list(stability().table().index)[2] == "top-5 overlap, 32 vs 64 perturbations"


def deletion(deletion_c: Comparison, insertion_c: Comparison) -> xai_checks.DeletionInsertion:
    aucs = {m: {"deletion": Interval(0.2, 0.1, 0.3, 30), "insertion": Interval(0.6, 0.5, 0.7, 30)}
            for m in xai_checks.AUC_METHODS}
    return xai_checks.DeletionInsertion(aucs, {"deletion": deletion_c, "insertion": insertion_c}, pd.DataFrame())


def test_deletion_wins_when_lime_is_lower_and_insertion_when_it_is_higher():
    text = clean(deletion(comparison(**WORSE), comparison()).sentence())
    assert text.count("LIME's ranking moves the probability faster than a random one") == 2
    unclear = clean(deletion(comparison(**UNCLEAR, n=6), comparison(**WORSE)).sentence())
    assert "this sample cannot tell LIME's ranking from a random one" in unclear and "few images: 6" in unclear
    assert "In insertion, LIME − random AUC is -0.100" in unclear
    assert unclear.endswith("a random ranking does better than LIME's.")


def test_auc_differences_show_the_digits_that_tell_their_interval_apart():
    tiny = comparison(difference=-0.00045, low=-0.0007, high=-0.0002)
    assert "LIME − random AUC is -0.00045 (95 % interval -0.00070 to -0.00020; " in deletion(tiny, tiny).sentence()
    assert say.decimals(-0.2, 0.1) == 3 and say.decimals(0.0, float("nan")) == 3 and say.decimals(0.004) == 4
    checks = say.checks({"LIME": "passes"}, comparison(difference=-0.00045, low=-0.0007, high=-0.0002, n=1),
                        Interval(0.5, 0.4, 0.6, 3), 2)
    assert "(LIME − random deletion AUC -0.00045 (95 % interval -0.00070 to -0.00020; few images: 1)); and" in checks


def test_deletion_records_each_methods_auc_under_a_fixed_key():
    facts = checked_facts(deletion(comparison(**WORSE), comparison()))
    assert {k for k in facts if "_auc_" in k} == {f"{kind}_auc_{m}" for kind in ("deletion", "insertion")
                                                  for m in ("lime", "gradcam", "random")}
    assert facts["deletion_insertion"]["lime_minus_random_deletion"]["verdict"] == "worse"
    table = deletion(comparison(**WORSE), comparison()).table()
    assert table.loc["Grad-CAM", "insertion"] == "0.600 (0.500–0.700)"


def test_ground_truth_is_claimed_only_where_masks_exist():
    real = xai_checks.GroundTruth(False, None)
    assert "cannot be checked" in clean(real.facts()["ground_truth_statement"]) and real.table() is None
    assert "localisation" not in real.facts()
    table = pd.DataFrame({"cell": [0.5]}, index=pd.MultiIndex.from_tuples([("LIME", 1)], names=["method", "n"]))
    synthetic = xai_checks.GroundTruth(True, table)
    assert "masks are known" in clean(synthetic.facts()["ground_truth_statement"])
    assert synthetic.facts()["localisation"] == {"0": {"method": "LIME", "n": 1, "cell": 0.5}}


# --------------------------------------------------------------------------- the conclusion


GREY = {"predicted": "15 (5–25)", "first": "40 (25–none tested)", "random": "never (not within the n tested)"}


@pytest.mark.parametrize("synthetic", [True, False])
def test_the_conclusion_says_synthetic_only_on_synthetic_cells(synthetic):
    ending = xai_checks.Conclusion(GREY, "That LIME's ranking beats a random one holds under no fill.", synthetic,
                            "Of the reviewer's checks ...")
    text = clean(ending.facts()["conclusion"])
    assert text.startswith("Under the study's grey fill, the explanation images reach two thirds of the full-image "
                           "weighted precision at n = 15 (5–25) when LIME explains the predicted class")
    assert ("These are synthetic cells" in text) is synthetic


@pytest.mark.parametrize("verdict", ["passes", "fails", "inconclusive", "not measured"])
@pytest.mark.parametrize("deleted", [WORSE, UNCLEAR, {}])
def test_the_checks_sentence_reads_for_every_verdict(verdict, deleted):
    text = clean(say.checks({"LIME": verdict}, comparison(**deleted), Interval(0.12, 0.0, 0.43, 3), 2))
    assert text.startswith(f"Of the reviewer's checks, LIME's randomisation check {say.RANDOMISATION_WORDS[verdict][0]};")
    assert "few images: 30" not in text and "overlap by 12 % (0–43 %)" in text
    alone = clean(say.checks({}, comparison(n=1), Interval(0.5, float("nan"), float("nan"), 1), 3))
    assert "too few images were compared across 3 LIME seeds" in alone and "few images: 1" in alone


def test_with_no_class_at_the_minimum_the_figure_shows_each_class_s_images_not_an_empty_plot():
    from cytokit.pages import figures

    fig = figures.per_class_curves(pd.DataFrame(columns=["code", "n", "images", "accuracy", "low", "high"]),
                                   least=10, counts=pd.Series({"PLM": 2, "LYT": 3}))
    assert list(fig.data[0].y) == [2, 3] and fig.layout.xaxis.title.text and fig.layout.yaxis.title.text


def _explanations(weights_per_image, seed=0, samples=32):
    return [Explanation(0, "predicted", np.array(sorted(w, key=lambda k: -w[k])), w, np.array([1.0]), 0.5, 0.0,
                        samples, seed) for w in weights_per_image]


def test_stability_reads_the_seeds_and_more_perturbations_from_the_settings_and_explains_nothing_again():
    from cytokit.xai import robustness as settings_lib

    settings = settings_lib.study_settings(seed=0, num_samples=32, more_samples=64, lime_seeds=3, n_segments=6)
    same = [{k: float(k) for k in range(6)}, {k: float(-k) for k in range(6)}]
    flipped = [{k: float(-k) for k in range(6)}, {k: float(k) for k in range(6)}]
    runs = {s.name: settings_lib.SettingRun(s, [], _explanations(flipped if s.name == "LIME seed 2" else same,
                                                                 s.seed, s.num_samples), [], [])
            for s in settings}
    lime_settings = xai_checks.LimeSettings((4, 9), tuple(settings), runs)
    assert [e[0].seed for e in lime_settings.seed_runs] == [0, 1, 2] and lime_settings.more.num_samples == 64
    stable = xai_checks.stability(lime_settings)
    # seeds 0 and 1 agree perfectly, seed 2 is reversed: pairs (0,1), (0,2), (1,2) give 1, -1, -1
    assert stable.seed_spearman.estimate == pytest.approx(-1 / 3) and stable.seed_spearman.n == 2
    assert stable.samples_spearman.estimate == pytest.approx(1.0) and stable.seeds == 3
    assert (stable.num_samples, stable.more_samples) == (32, 64)
    no_more = xai_checks.LimeSettings((4, 9), tuple(s for s in settings if s.num_samples == 32), runs)
    with pytest.raises(ValueError, match="more perturbations"):
        xai_checks.stability(no_more)


def test_imputation_solved_ahead_in_processes_gives_the_images_solved_one_by_one():
    from cytokit.xai import fills, occlusion

    rng = np.random.default_rng(3)
    images = [rng.integers(0, 255, (24, 24, 3), dtype=np.uint8) for _ in range(2)]
    rows, cols = np.indices((24, 24)) // 8
    segments = [(3 * rows + cols).astype(np.int32)] * 2  # nine 8 x 8 squares
    rankings = [rng.permutation(9) for _ in range(2)]
    one_by_one = xai._filler("imputed", images, segments, seed=5)
    with fills.processes(2) as pool:
        ahead = xai._solved_ahead(images, segments, rankings, 5, pool, ns=(1, 5, "all"))
        for i in range(2):
            for n in (1, 5, 7):  # 7 was not asked ahead: solved on the spot, the same way
                visible = occlusion.rank_map(segments[i], rankings[i]) < n
                assert np.array_equal(ahead(i, images[i], segments[i], visible),
                                      one_by_one(i, images[i], segments[i], visible))


def test_the_explorer_shows_every_setting_of_a_few_images_whatever_the_number_of_classes(tmp_path):
    from cytokit.xai import robustness as settings_lib

    n, codes = 70, tuple(f"C{k}" for k in range(7))  # seven classes of ten images: more than the explorer shows
    rng = np.random.default_rng(0)
    images = tuple(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8) for _ in range(n))
    segments = tuple(np.repeat(np.arange(4), 16).reshape(8, 8) for _ in range(n))
    y = np.arange(n) % 7
    chosen = pd.DataFrame({"path": [f"{i}.jpg" for i in range(n)], "cls": [codes[k] for k in y]})
    s = xai.XaiSample(lambda batch: np.full((len(batch), 7), 1 / 7), images, segments, y, codes, chosen,
                      np.arange(14), "all", tmp_path)
    lime = xai.Explanations("predicted", tuple(explanation(0, [3, 2, 1, 0]) for _ in range(n)), (), (), y)
    settings = settings_lib.study_settings(0, 32, 64, 2, n_segments=4)
    runs = {x.name: settings_lib.SettingRun(x, list(segments), list(lime.lime), [], []) for x in settings}
    fig = xai.explorer(s, lime, xai_checks.LimeSettings(tuple(range(n)), tuple(settings), runs), n=12)
    titles = [b["label"] for b in fig.layout.updatemenus[0].buttons]
    assert len(titles) == 6 * len(settings) and titles[0].endswith(" · study") and "LIME seed 1" in titles[1]
    assert len({t.split(" #")[0] for t in titles}) == 6  # six images, six classes
    assert len(xai.explorer(s, lime, n=12).layout.updatemenus[0].buttons) == 12


def test_each_image_s_fill_is_made_once_per_fill_not_once_per_ranking(tmp_path, monkeypatch):
    from collections import Counter

    from cytokit.xai import fills

    made, real = [], fills.filler
    monkeypatch.setattr(fills, "filler", lambda *a, **k: made.append(a[2]) or real(*a, **k))
    monkeypatch.setattr(fills, "FILLS", ("grey", "mean", "blur"))  # the imputed fill is solved ahead in processes
    rng = np.random.default_rng(0)
    rows, cols = np.indices((16, 16)) // 8
    s = xai.XaiSample(lambda batch: np.full((len(batch), 3), 1 / 3),
                      tuple(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8) for _ in range(4)),
                      tuple((2 * rows + cols).astype(np.int32) for _ in range(4)), np.array([0, 1, 0, 1]),
                      ("A", "B", "C"), pd.DataFrame({"path": [f"{i}.jpg" for i in range(4)], "cls": list("ABAB")}),
                      np.array([0, 1]), "all", tmp_path)
    ex = tuple(explanation(0, [3, 2, 1, 0]) for _ in range(4))
    lime = xai.Explanations("predicted", ex, ex, tuple(np.arange(4) for _ in range(4)), s.y_true)
    xai.sufficiency_under_fills(s, lime, 0)
    assert Counter(made) == {"grey": 4, "mean": 4, "blur": 4}  # one per image, shared by the four rankings
