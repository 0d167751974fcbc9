"""Chapters 02-04's results and their sentences, on hand-made results: seconds, no kernel, no training."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from cytokit.book import parameters, profiles
from cytokit.book.facts import checked_facts
from cytokit.evaluation import statistics
from cytokit.evaluation.predictions import Evaluation
from cytokit.pages import training, validation
from conftest import ROOT

NAMES = ["ABE", "BLA", "EOS", "LYT"]
#: What no sentence may show a reader.
RAW = re.compile(r"\b(?i:nan|inf)\b|\bNone\b(?! is )|[\[\]{}]|np\.|\(s\)")


def _clean(text: str) -> str:
    assert text and not RAW.search(text), text
    return text


def _history(val_loss, epochs_run=None) -> dict:
    n = len(val_loss)
    return {"accuracy": [0.5] * n, "val_accuracy": [0.4] * n, "loss": [1.0] * n, "val_loss": list(val_loss),
            "seconds": 12.0, "epochs_run": epochs_run or n}


# --------------------------------------------------------------------------- training


def test_without_early_stopping_the_fit_says_it_ran_every_epoch():
    fit = training.Training(_history([2.0, 1.5, 1.2, 1.1]), 4, None, 8.0, 440)
    facts = checked_facts(fit)
    assert facts["epochs_run"] == 4 and facts["train_images_per_second"] == 220.0
    assert _clean(facts["stopping_sentence"]) == ("It trained all 4 epochs, without early stopping, as the study's "
                                                  "baseline did.")


def test_early_stopping_that_fired_names_the_last_epoch_and_the_best_kept():
    fit = training.Training(_history([2.0, 1.4, 1.6, 1.7, 1.8]), 8, 3, 5.0, 100)
    assert fit.stopped_early and fit.best_epoch == 2
    text = _clean(checked_facts(fit)["stopping_sentence"])
    assert "ended training after epoch 5 of at most 8" in text and "weights of epoch 2" in text


def test_early_stopping_that_could_have_fired_but_did_not_says_so():
    text = _clean(training.Training(_history([2.0, 1.8, 1.5, 1.4]), 4, 1, 5.0, 100).facts()["stopping_sentence"])
    assert "did not fire" in text and "all 4 epochs" in text and "epoch 4" in text


def test_early_stopping_that_cannot_act_in_so_few_epochs_is_not_said_to_have_been_waiting():
    text = _clean(training.Training(_history([2.0, 2.1, 2.2]), 3, 5, 5.0, 100).facts()["stopping_sentence"])
    assert "could not end training sooner" in text and "all 3 epochs" in text


def test_a_resumed_fit_without_losses_still_reads_cleanly():
    text = training.Training(_history([np.nan, np.nan]), 5, 2, 5.0, 100).facts()["stopping_sentence"]
    assert "lowest validation loss were kept" in _clean(text)


def test_the_demo_lets_early_stopping_end_a_fit_sooner():
    """In the demo, every fit with early stopping has more epochs than patience + 1, so it can stop before its last."""
    demo = profiles.load("demo")
    fits = {"03_tuning": ("max_epochs", "refit_max_epochs"), "04_augmentation": ("max_epochs",)}
    for chapter, epochs in fits.items():
        values = {**parameters.declared(ROOT / "notebooks" / f"{chapter}.ipynb"),
                  **profiles.chapter_parameters(demo, chapter)}
        for key in epochs:
            assert values["patience"] + 1 < values[key], f"{chapter}: patience {values['patience']} of {key}"


# --------------------------------------------------------------------------- seeds


def _evaluation(y_true, y_pred) -> Evaluation:
    return Evaluation.from_labels(np.asarray(y_true), np.asarray(y_pred), NAMES)


def _seed_table(values) -> pd.DataFrame:
    rows = {s: {"accuracy": v, "accuracy_low": v - 0.1, "accuracy_high": v + 0.1, "balanced_accuracy": v,
                "balanced_accuracy_low": v - 0.1, "balanced_accuracy_high": v + 0.1} for s, v in values.items()}
    return pd.DataFrame(rows).T.rename_axis("seed")


def test_one_seed_says_the_spread_is_unknown_and_several_give_their_range():
    one = checked_facts(training.SeedSpread("baseline", _seed_table({0: 0.5})))
    assert one["seeds_run"] == [0] and "Only one training seed" in _clean(one["seed_sentence"])
    three = checked_facts(training.SeedSpread("baseline", _seed_table({0: 0.5, 1: 0.6, 2: 0.4})))
    assert "Over 3 training seeds" in _clean(three["seed_sentence"]) and "40.0 % to 60.0 %" in three["seed_sentence"]


def test_a_difference_over_seeds_pairs_only_the_seeds_both_chapters_trained():
    good, bad = _evaluation([0, 1, 2, 3], [0, 1, 2, 3]), _evaluation([0, 1, 2, 3], [0, 0, 0, 0])
    diff = training.seed_difference({0: good, 1: good, 5: good}, {0: bad, 1: good}, ("augmented", "baseline"))
    assert diff.seeds == (0, 1) and diff.values == (0.75, 0.0)
    facts = checked_facts(diff)
    assert "over 2 seeds" in _clean(facts["seeds_sentence"]) and "did not keep one sign" in facts["seeds_sentence"]
    none = checked_facts(training.seed_difference({0: good}, {3: bad}, ("augmented", "baseline")))
    assert none["balanced_accuracy_seeds"]["n"] == 0 and "is unknown" in _clean(none["seeds_sentence"])


# --------------------------------------------------------------------------- scores and verdicts


def test_scores_give_every_headline_metric_with_its_interval_and_text():
    facts = checked_facts(validation.scored(_evaluation([0, 1, 2, 3] * 10, [0, 1, 2, 0] * 10)))
    assert facts["accuracy"] == 0.75 and facts["classes"] == 4
    assert facts["accuracy_ci95"][0] < 0.75 < facts["accuracy_ci95"][1]
    assert re.fullmatch(r"75\.0 % \(\d+\.\d–\d+\.\d\)", facts["accuracy_text"])


def _paired(n_per_class=(20, 20, 1, 1)):
    y = np.repeat(np.arange(4), n_per_class)
    rng = np.random.default_rng(0)
    a = np.where(rng.random(len(y)) < 0.8, y, (y + 1) % 4)
    a[y >= 2] = y[y >= 2]                      # the augmented model gets both one-image classes right
    b = np.where(rng.random(len(y)) < 0.7, y, (y + 1) % 4)
    b[y >= 2] = (y[y >= 2] + 1) % 4            # the baseline gets both wrong
    return _evaluation(y, a), _evaluation(y, b)


def test_the_part_of_a_difference_from_one_image_classes_adds_up_with_the_rest():
    a, b = _paired()
    p = validation.compare(a, b, ("augmented", "baseline"), "balanced_accuracy")
    count, share = p.tiny_classes
    recall = {m: [np.mean(ev.y_pred[ev.y_true == c] == c) for c in range(4)] for m, ev in (("a", a), ("b", b))}
    assert count == 2 and share == pytest.approx(0.5)  # two classes, each +100 points, over four classes
    assert p.comparison.difference == pytest.approx(np.mean(np.subtract(recall["a"], recall["b"])))
    text = _clean(checked_facts(p)["sentence"])
    assert "The 2 classes with only one or two of these images contribute +50.0 points of the difference" in text


def test_a_comparison_with_a_model_whose_chapter_did_not_run_says_so():
    p = validation.compare(_evaluation([0, 1], [0, 1]), None, ("augmented", "tuned"), "balanced_accuracy")
    assert p.as_dict() is None
    assert _clean(p.facts()["sentence"]) == "The tuned model's chapter has not run, so it is not compared here."
    assert validation.family([p]).facts() == {"family": ""}


def test_models_evaluated_on_other_images_are_not_paired():
    with pytest.raises(ValueError, match="same images"):
        validation.compare(_evaluation([0, 1], [0, 1]), _evaluation([1, 0], [1, 0]), ("a", "b"), "accuracy")


def _claim(verdict_low, values, synthetic, tiny=(0, 0.0)):
    c = statistics.Comparison("augmented", "baseline", "balanced_accuracy", 0.17, verdict_low, verdict_low + 0.2,
                              0.001, "permutation test", n=100, classes=21)
    paired = validation.Paired(c, (0.6, 0.43), tiny_classes=tiny)
    seeds = training.SeedDifference(("augmented", "baseline"), tuple(range(len(values))), tuple(values))
    return checked_facts(validation.Claim("augmentation raises balanced accuracy", paired, seeds, synthetic))["claim"]


def test_a_claim_is_supported_only_by_a_verdict_and_every_seed_and_says_when_cells_are_synthetic():
    supported = _clean(_claim(0.05, [0.1, 0.2, 0.15], synthetic=True))
    assert supported.startswith("**This run supports the claim") and "synthetic cells" in supported
    assert "synthetic" not in _clean(_claim(0.05, [0.1, 0.2, 0.15], synthetic=False))
    assert "leans towards" in _clean(_claim(0.05, [0.1, -0.02], synthetic=False))
    assert "only one training seed" in _clean(_claim(0.05, [0.1], synthetic=False))
    assert "cannot tell" in _clean(_claim(-0.05, [0.1, 0.2], synthetic=False))


def test_a_claim_resting_mostly_on_one_image_classes_says_so():
    text = _clean(_claim(0.05, [0.1, 0.2], synthetic=False, tiny=(3, 0.143)))
    assert "Most of the difference (+14.3 of +17.0 points) comes from 3 classes" in text
    assert "Most of" not in _claim(0.05, [0.1, 0.2], synthetic=False, tiny=(3, 0.02))


def test_the_page_family_counts_only_the_comparisons_that_ran():
    a, b = _paired()
    ran = validation.compare(a, b, ("augmented", "baseline"), "balanced_accuracy")
    absent = validation.compare(a, None, ("augmented", "tuned"), "balanced_accuracy")
    two = validation.family([ran, validation.compare(a, b, ("augmented", "baseline"), "accuracy"), absent])
    assert "Each of the 2 comparisons" in _clean(two.facts()["family"])


def test_top_confusions_and_improvements_read_as_words():
    ev = _evaluation([0, 0, 1, 1, 2, 3], [1, 1, 0, 1, 2, 3])
    assert checked_facts(validation.top_confusions(ev))["top_confusion"] == "ABE↔BLA"
    assert checked_facts(validation.top_confusions(_evaluation([0, 1], [0, 1])))["top_confusion"] == "none"
    better = validation.improvements(ev, _evaluation([0, 0, 1, 1, 2, 3], [0, 0, 1, 1, 2, 3]), ("baseline", "tuned"))
    assert checked_facts(better) == {"classes_improved": 2, "improved_sentence": "The F1 of 2 classes rose."}
    assert validation.improvements(ev, ev, ("a", "b")).facts()["improved_sentence"] == "The F1 of no class rose."


# --------------------------------------------------------------------------- chapter 04's inputs


def test_hyperparameters_read_as_a_sentence_not_a_dict():
    hp = training.Hyperparameters(0.4, "adam", 1e-3, 128, "the best trial of chapter 3's search")
    facts = checked_facts(hp)
    assert facts["batch_size"] == 128 and facts["source"] == "the best trial of chapter 3's search"
    assert _clean(facts["sentence"]) == ("The network trains with the hyperparameters of the best trial of chapter "
                                         "3's search: dropout 0.4, the Adam optimiser, a learning rate of 10⁻³ "
                                         "and batches of 128.")


def test_the_stream_draws_the_target_of_every_class_in_training():
    size = training.StreamSize(30, pd.Series({"NGS": 120, "ABE": 2, "BLA": 40}))
    assert checked_facts(size) == {"target_per_class": 30, "classes_in_training": 3, "stream_images_per_epoch": 90,
                                   "smallest_training_class": 2, "smallest_class_text": "2 distinct training images"}
    one = training.StreamSize(30, pd.Series({"NGS": 120, "ABE": 1}))
    assert one.facts()["smallest_class_text"] == "1 distinct training image"
    assert checked_facts(training.Example("ABE", np.zeros((4, 4, 3), np.uint8))) == {"example_class": "ABE"}
