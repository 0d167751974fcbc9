"""Chapter 5's results and sentences on hand-made predictions: true for a held-out split of this run's models and
for a whole folder of real images scored by the study's imported models, never NaN, None or a raw repr."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from cytokit.book.facts import checked_facts
from cytokit.data.taxonomy import CODES
from cytokit.evaluation import statistics
from cytokit.evaluation.predictions import Evaluation
from cytokit.pages import results, scores

RAW = re.compile(r"\bnan\b|\bNone\b|\bNaN\b|np\.|array\(|\{'|Interval\(|Evaluation\(")


def evaluation(y_true, y_pred, seconds=1.0) -> Evaluation:
    probs = np.eye(len(CODES), dtype=np.float32)[np.asarray(y_pred)]
    return Evaluation(np.asarray(y_true), probs, list(CODES), [f"{i}.jpg" for i in range(len(y_true))], seconds)


def labels(counts: dict[str, int]) -> np.ndarray:
    return np.concatenate([np.full(k, CODES.index(code)) for code, k in counts.items()])


def predictions(y_true, right: float, seed: int) -> np.ndarray:
    """Each image right with probability ``right``, else one class along."""
    rng = np.random.default_rng(seed)
    return np.where(rng.random(len(y_true)) < right, y_true, (y_true + 1) % len(CODES))


#: A synthetic split as the smoke profile makes it: every class, a few tiny.
SPLIT = {code: (1 if i < 3 else 12 + 3 * i) for i, code in enumerate(CODES)}
#: The real sample as the study profile reads it: 15 of the 21 classes, six of them with a single image.
FOLDER = {"ART": 120, "BLA": 110, "EBO": 100, "LYT": 90, "NGS": 95, "NGB": 60, "MYB": 50, "PMO": 40, "PLM": 30,
          "ABE": 1, "BAS": 1, "FGC": 1, "HAC": 1, "KSC": 1, "LYI": 1}


def made(counts, split, source, synthetic, rights=(0.8, 0.5, 0.5), with_validation=True) -> results.Evaluated:
    y = labels(counts)
    models = {name: evaluation(y, predictions(y, r, i)) for i, (name, r) in enumerate(zip(results.MODEL_CHAPTERS,
                                                                                            rights))}
    validation = {name: evaluation(y, predictions(y, r, 10 + i)) for i, (name, r) in
                  enumerate(zip(results.MODEL_CHAPTERS, rights))} if with_validation else {}
    files = {name: ("model.keras" if source == "run" else f"{name}.keras") for name in models}
    return results.Evaluated(models, split, source, synthetic, files, validation)


@pytest.fixture(scope="module")
def held_out():
    """This run's three models on a held-out test split of synthetic cells."""
    return made(SPLIT, "test", "run", True)


@pytest.fixture(scope="module")
def folder():
    """The study's three imported models on every image of a folder of real images."""
    return made(FOLDER, None, "study", False, with_validation=False)


def sentences(result) -> list[str]:
    return [v for v in checked_facts(result).values() if isinstance(v, str)]


def assert_clean(result):
    for text in sentences(result):
        assert not RAW.search(text), f"{type(result).__name__}: {text!r}"


def test_a_held_out_split_is_called_a_test_looked_at_once(held_out):
    facts = checked_facts(held_out)
    assert facts["n_test"] == sum(SPLIT.values()) and facts["model_source"] == "run" and facts["is_synthetic"]
    assert f"The {sum(SPLIT.values()):,} test images, set aside in chapter 1" in facts["eval_statement"]
    assert "upper bound" not in facts["eval_statement"]
    assert facts["eval_phrase"] == "the held-out test split, looked at once"
    assert facts["eval_images"] == "test images"
    assert_clean(held_out)


def test_a_whole_folder_of_imported_models_is_called_an_upper_bound_never_a_test(folder):
    facts = checked_facts(folder)
    assert f"Every usable image of the folder ({sum(FOLDER.values())}) was evaluated, not a held-out test split" in facts["eval_statement"]
    assert "the study's models may have been trained on some of its images" in facts["eval_statement"]
    assert "15 classes present" in facts["eval_statement"]
    assert "looked at once" not in facts["eval_phrase"] and "upper bound" in facts["eval_phrase"]
    assert facts["eval_images"] == "images of the folder"
    assert_clean(folder)


def test_the_studys_models_on_this_books_test_split_may_have_trained_on_it():
    t = made(SPLIT, "test", "study", False, with_validation=False)
    assert "may have been trained on some of these images" in t.statement()
    assert "looked at once" not in t.phrase()


@pytest.mark.parametrize("split,words", [("val", "chose the hyperparameters"), ("train", "learned from"),
                                         (None, "trained and tuned on")])
def test_this_runs_models_on_images_they_saw_are_no_test(split, words):
    t = made(SPLIT, split, "run", True)
    assert words in t.statement() and "not" in t.statement()
    assert "looked at once" not in t.phrase()


def test_sparse_classes_are_named_from_the_images_not_from_a_list(held_out, folder):
    real = folder.sparse_classes()
    assert real.startswith("6 of the 21 classes have fewer than 20 images of the folder (ABE (1), BAS (1)")
    assert "6 of the 21 classes have no image here (EOS, LYI" not in real  # LYI has one image
    assert "no image here (EOS, MMZ, MON, NIF, OTH, PEB)" in real
    synthetic = held_out.sparse_classes()
    assert "ABE (1)" in synthetic and "no image here" not in synthetic
    plenty = made({code: 25 for code in CODES}, "test", "run", True)
    assert plenty.sparse_classes().startswith("Every class has at least 20 test images")


def test_model_files_are_named_by_file_and_option_never_by_a_path(held_out, folder):
    for t, option in ((held_out, "model_source = run"), (folder, "model_source = study")):
        table = t.models_table()
        assert set(table["option"]) == {option}
        assert not any("/" in str(v) or ".." in str(v) for v in table.to_numpy().ravel())
    assert list(folder.models_table()["file"]) == ["baseline.keras", "tuned.keras", "augmented.keras"]
    assert held_out.models_table().loc["tuned", "from"] == "chapter 03_tuning of this run"


def test_scores_are_recorded_under_the_keys_their_class_declares(held_out):
    facts = checked_facts(scores.scores_of(held_out["baseline"]))
    assert set(facts) == set(scores.Scores.KEYS)
    low, high = facts["accuracy_ci95"]
    assert low <= facts["accuracy"] <= high
    assert facts["classes"] == 21
    assert checked_facts(results.validation_scores(made(FOLDER, None, "study", False, with_validation=False),
                                                   "baseline")) == {}


def test_without_validation_the_headline_shows_no_empty_column(folder, held_out):
    headline = results.validation_and_test(folder)
    shown = headline.text()
    assert list(shown.columns) == ["every image"]
    assert not shown.isin(["–"]).any().any()
    assert "come without validation predictions" in headline.statement()
    both = results.validation_and_test(held_out)
    assert list(both.text().columns) == ["validation", "test"]
    assert "from the chapter that trained it" in both.statement()
    assert_clean(headline)


def comparison(a, b, metric, low, high, p=0.001):
    return statistics.Comparison(a, b, metric, (low + high) / 2, low, high, p, "paired permutation", 1 / 2001, 300, 21)


def pairs_of(verdicts: dict) -> results.Pairwise:
    """A hand-made family: (a, b) -> (low, high) of balanced accuracy; accuracy no clear difference."""
    out = []
    for a, b in results.PAIRS:
        low, high = verdicts[(a, b)]
        out.append(scores.Verdict(comparison(a, b, "balanced_accuracy", low, high), 0.5, 0.4, "test images"))
        out.append(scores.Verdict(comparison(a, b, "accuracy", -0.1, 0.1, 0.4), 0.5, 0.5, "test images"))
    return results.Pairwise(tuple(out))


def test_the_card_describes_the_clearly_best_model_and_says_why(held_out):
    pairs = pairs_of({("tuned", "baseline"): (-0.3, -0.1), ("augmented", "baseline"): (-0.3, -0.1),
                      ("augmented", "tuned"): (-0.05, 0.05)})
    chosen = results.choose_card_model(pairs, held_out)
    assert (chosen.best, chosen.model) == ("baseline", "baseline")
    assert "**baseline** model is better than each of the other two" in chosen._repr_markdown_()
    facts = checked_facts(chosen)
    assert facts["card_test_accuracy"] == held_out["baseline"].scores["accuracy"]
    assert "below" not in facts["best_model_statement"]  # the findings page quotes it, with no card below
    assert "78.3 % test accuracy" in facts["study_choice_statement"]


def test_without_a_clearly_best_model_the_card_describes_the_studys_final_one(held_out):
    pairs = pairs_of({("tuned", "baseline"): (0.1, 0.3), ("augmented", "baseline"): (0.1, 0.3),
                      ("augmented", "tuned"): (-0.05, 0.05)})
    chosen = results.choose_card_model(pairs, held_out)
    assert (chosen.best, chosen.model) == (None, "augmented")
    assert "No model is clearly best" in chosen.statement() and "not because it is better" in chosen.statement()
    assert checked_facts(chosen)["clearly_best_model"] is None


def test_the_pairwise_table_bounds_a_holm_p_whose_test_sat_at_its_floor():
    floor = 1 / 2001
    pairs = results.Pairwise((scores.Verdict(statistics.Comparison("tuned", "baseline", "balanced_accuracy", 0.2, 0.1,
                                                                   0.3, floor, "paired permutation", floor, 300, 21),
                                             0.6, 0.4, "test images"),
                              scores.Verdict(statistics.Comparison("augmented", "baseline", "accuracy", 0.0, -0.1,
                                                                   0.1, 0.5, "exact McNemar", 0.0, 300), 0.5, 0.5,
                                             "test images")))
    table = pairs.table()
    assert table.loc[0, "p-value"].startswith("p ≤ 0.0005 (floor)")
    assert table.loc[0, "Holm-adjusted p"] == "p ≤ 0.001"
    assert table.loc[1, "Holm-adjusted p"] == "p = 0.5"
    assert table.loc[0, "95 % interval"] == "+10.0 to +30.0"
    assert "2 comparisons of this section" in pairs.family()


def test_the_real_pairwise_step_records_every_declared_comparison(held_out):
    pairs = results.pairwise(held_out)
    facts = checked_facts(pairs)
    assert set(facts) == set(results.Pairwise.KEYS)
    assert facts["augmented_vs_baseline_balanced_accuracy"]["verdict"] in ("better", "worse", "no clear difference")
    assert "On the test images the augmented model's balanced accuracy" in \
        facts["augmented_vs_baseline_balanced_accuracy_sentence"]
    assert_clean(pairs)


def test_the_neutrophil_lineage_meets_the_studys_figure_on_real_cells_only(held_out, folder):
    synthetic = results.neutrophil_lineage(held_out, "baseline")
    assert "study's best model's 91.4 %" in synthetic.against_study()
    assert "not set against" in synthetic.against_study()
    real = results.neutrophil_lineage(folder, "baseline")
    assert re.search(r"lies (inside|above|below) this interval", real.against_study())
    assert "neutrophil-lineage images of the folder" in real.statement()
    assert_clean(synthetic)
    assert_clean(real)


def test_a_folder_without_neutrophils_gives_no_nan():
    t = made({"ART": 30, "LYT": 30, "BLA": 30}, None, "study", False, with_validation=False)
    lineage = results.neutrophil_lineage(t, "baseline")
    facts = checked_facts(lineage)
    assert facts["neu_support"] == 0 and "neu_recall" not in facts
    assert "No neutrophil-lineage image" in facts["lineage_statement"]
    assert_clean(lineage)


def test_per_class_leaves_out_classes_without_an_image_and_says_so(folder, held_out):
    per_class = results.per_class_tables(folder)
    shown = per_class.table()
    assert set(shown.index.get_level_values("code")) == set(FOLDER)
    assert "beside validation" not in per_class.statement()
    assert set(checked_facts(per_class)) == set(results.PerClass.KEYS)
    assert "(test − validation)" in results.per_class_tables(held_out).statement()


def test_literature_gives_no_f1_to_a_class_without_images(folder):
    lit = results.literature(folder, "augmented")
    column = lit.table["this run (augmented)"]
    assert column[["EOS", "MON"]].isna().all() and column[["ART", "ABE"]].notna().all()
    assert "measured on real images" in lit.statement()


def test_the_model_card_says_why_a_value_is_missing():
    card = pd.Series({"model": "augmented", "file": "augmented.keras", "parameters": 96509, "test accuracy": 0.772,
                      "inference speed (images/s, this machine)": 120.5, "training time (s)": None})
    shown = results.Card(card, 64, "study", "images of the folder").table()
    assert shown.loc["training time (s)", "value"] == "not recorded (imported model)"
    assert shown.loc["accuracy on the images of the folder", "value"] == "0.772"
    assert not shown["value"].str.contains("None|nan").any()
    facts = checked_facts(results.Card(card, 64, "study", "images of the folder"))
    assert "batches of 64 images" in facts["speed_statement"]
    assert facts["model_card"]["training time (s)"] is None  # metrics.json keeps the fact as it was
    assert facts["model_card"]["test accuracy"] == 0.772


def test_the_summary_is_true_for_a_split_and_for_a_folder(held_out, folder):
    for t, wanted, unwanted in ((held_out, ["test images", "synthetic cells"], ["upper bound"]),
                                (folder, ["images of the folder", "upper bound"], ["synthetic", "test images"])):
        pairs = pairs_of({p: (-0.05, 0.05) for p in results.PAIRS})
        chosen = results.choose_card_model(pairs, t)
        text = results.summary(t, chosen, results.neutrophil_lineage(t, chosen.model)).sentence()
        assert all(w in text for w in wanted), text
        assert not any(w in text for w in unwanted), text
        assert "No model is clearly better" in text and "Chapter 6 takes the augmented model" in text
        assert not RAW.search(text)
