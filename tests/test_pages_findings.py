"""The first page's sentences and tables on hand-made results shaped like each profile's run, in seconds.

smoke and demo: every chapter ran on synthetic cells, models trained here, chapter 5 on the test
split; study: chapters 01, 05 and 06 only, real images, the study's imported models scored on
every image of the folder. The loader is checked on hand-written run folders, damaged ones too.
"""

from __future__ import annotations

import json

import pytest

import pages
from cytokit.pages import findings as fp
from cytokit.pages import realism
from cytokit.evaluation.statistics import Comparison, Interval
from cytokit.pages.findings import SeedSpread


def iv(v, lo, hi):
    return Interval(v, lo, hi)


def paired(a, b, metric, d, lo, hi, verdict):
    """A comparison whose interval and test give ``verdict``."""
    made = Comparison(a, b, metric, d, lo, hi, 0.5 if verdict == "no clear difference" else 0.01, "paired test")
    assert made.verdict == verdict
    return made


SYNTHETIC = fp.DataFound("**These are synthetic cells.** This copy of the book ran on the embedded default.", True,
                         800, 800, 21)
REAL = fp.DataFound("This copy of the book ran on the image folder `real-sample`.", False, 775, 775, 14)
BASELINE = fp.BaselineFound(iv(0.47, 0.39, 0.55), iv(0.215, 0.084, 0.345))
TUNING = fp.TuningFound(paired("tuned", "baseline", "accuracy", -0.333, -0.429, -0.237, "worse"))


def augmentation(seeds):
    return fp.AugmentationFound(paired("augmented", "baseline", "balanced_accuracy", -0.167, -0.319, -0.015,
                                       "worse"), seeds)


def comparisons(verdicts):
    pairs = (("tuned", "baseline"), ("augmented", "baseline"), ("augmented", "tuned"))
    bounds = {"better": (0.1, 0.01, 0.2), "worse": (-0.1, -0.2, -0.01), "no clear difference": (-0.1, -0.2, 0.05)}
    return tuple(paired(a, b, "balanced_accuracy", *bounds[v], v) for (a, b), v in zip(pairs, verdicts))


def chapter5(source="run", split="test", n=243, verdicts=("worse", "worse", "no clear difference")):
    scores = {m: iv(0.47, 0.41, 0.53) for m in fp.MODELS}
    return fp.TestFound(source, split, n, scores, scores, comparisons(verdicts), iv(0.588, 0.482, 0.687))


def xai(verdict="no clear difference"):
    fills = ("grey", "mean", "blur", "imputed")
    return fp.XaiFound({"predicted": "5 (5–15)", "first": "35 (30–40)", "random": "25 (25–40)"},
                       {key: dict.fromkeys(fills, verdict) for key, _ in fp.XAI_MEANINGS})


SMOKE = fp.Findings(SYNTHETIC, BASELINE, TUNING, augmentation(SeedSpread(1, -0.167, -0.167, -0.167)), chapter5(),
                    xai(), fp.RunFound("smoke", "Toy scale", "2026-12-05T03:32:10+0000", "Linux",
                                       {c: 30.0 for c in fp.CHAPTERS}))
DEMO = fp.Findings(SYNTHETIC, BASELINE, TUNING, augmentation(SeedSpread(3, -0.05, 0.12, 0.04)),
                   chapter5(verdicts=("worse", "no clear difference", "better")), xai("better"),
                   fp.RunFound("demo", seconds={"03_tuning": 90.0}, kept={"01_data": 20.0, "02_baseline": 3700.0}))
STUDY = fp.Findings(REAL, None, None, None, chapter5("study", "all", 775, ("no clear difference",) * 3),
                    xai("better"), fp.RunFound("study", "The study's trained models on real images",
                                               seconds={"01_data": 15.3, "05_test_results": 60.7, "06_xai": 2671.9}))
PROFILES = {"smoke": SMOKE, "demo": DEMO, "study": STUDY}


def shown(table) -> str:
    return pages.text_of_html(table.to_html())


def clean(text: str) -> str:
    for label, pattern in pages.RAW.items():
        assert not pattern.search(text), f"{label} in {text!r}"
    return text


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_no_sentence_or_table_shows_a_missing_value_or_python_on_any_profile(profile):
    found = PROFILES[profile]
    for text in list(found.facts().values()) + [shown(fp.key_results(found)), shown(fp.chapter_times(found)),
                                                shown(fp.provenance(found))]:
        clean(text)
    assert set(found.facts()) == set(fp.Findings.KEYS)


def test_the_study_profile_is_said_to_score_every_image_of_the_folder_not_a_test_split_looked_at_once():
    measured = STUDY.measured()
    assert "every usable image of the folder (775), not on a held-out split" in measured
    assert "may have been trained on some of these images" in measured and "upper bound" in measured
    assert "held-out test split" not in measured and "looked at once" not in measured
    assert "validation" not in measured  # chapters 2-4 did not run, so no validation figures are spoken of
    summary = STUDY.summary()
    assert "nothing was trained in this copy" in summary and "study's own three trained models" in summary
    assert "no model's balanced accuracy is clearly higher" in summary and "model card" not in summary
    assert "Chapters 2, 3 and 4 did not run in this copy" in STUDY.not_run()


def test_the_smoke_and_demo_profiles_are_said_to_score_the_held_out_test_images():
    for found in (SMOKE, DEMO):
        measured = found.measured()
        assert "Chapters 2, 3 and 4 report figures on the validation images" in measured
        assert "chapter 3 also chose its hyperparameters on them" in measured
        assert "on the 243 test images, held out from every earlier chapter" in measured
        assert "Chapters 2–4 trained the study's three models" in found.summary()
        assert found.not_run() == "Every chapter ran in this copy."
    assert "model card" not in SMOKE.summary() + DEMO.summary()


def test_a_best_model_is_named_only_when_it_beats_both_others():
    assert "the **baseline** model's balanced accuracy is higher than each other model's" in SMOKE.summary()
    # demo: baseline and augmented each beat tuned, but not each other: no best model
    assert "no model's balanced accuracy is clearly higher than both others'" in DEMO.summary()
    assert STUDY.test.best_on("balanced_accuracy") is None and SMOKE.test.best_on("accuracy") is None


def test_chapter_6s_verdicts_are_said_across_the_fills():
    assert "holds under every fill (grey, mean, blur, imputed)" in STUDY.summary()
    assert "holds under no fill" in SMOKE.summary()
    assert "Chapter 6" not in fp.Findings(SYNTHETIC).summary()


def test_the_key_results_have_rows_only_for_chapters_that_ran_and_name_the_images():
    study = shown(fp.key_results(STUDY))
    assert "not run" not in study and "validation" not in study and "baseline, accuracy (whole folder)" in study
    assert "+10.0 points (+1.0 to +20.0)" not in study and "-10.0 points (-20.0 to +5.0) no clear difference" in study
    smoke = shown(fp.key_results(SMOKE))
    assert "baseline, validation accuracy 47.0 % (39.0–55.0)" in smoke
    assert "baseline, accuracy (test)" in smoke and "-16.7 points, one seed only" in smoke
    assert "seed(s)" not in smoke
    demo = shown(fp.key_results(DEMO))
    assert "-5.0 to +12.0 points over 3 seeds, mean +4.0 sign changes with the seed" in demo
    assert fp.key_results(fp.Findings()) is None


def test_the_timing_table_says_which_chapters_did_not_run_or_were_kept():
    study = shown(fp.chapter_times(STUDY))
    assert "02_baseline not run in this copy" in study and "06_xai 44 min 32 s" in study
    assert "01_data 15 s" in study
    demo = shown(fp.chapter_times(DEMO))
    assert "01_data 20 s (kept from an earlier run)" in demo and "02_baseline 1 h 1 min (kept" in demo
    assert "06_xai time not recorded" in demo  # it ran, but the run record has no time for it
    no_record = shown(fp.chapter_times(fp.Findings(SYNTHETIC)))
    assert "01_data time not recorded" in no_record


def test_the_provenance_names_the_data_and_never_truncates_the_profile():
    text = shown(fp.provenance(STUDY))
    assert "real images" in text and "775" in text and "The study's trained models on real images" in text
    assert "not run in this copy" in shown(fp.provenance(fp.Findings()))


@pytest.mark.parametrize("synthetic,expected", [(True, "the other numbers of this copy describe the method"),
                                                (False, "this copy, though, ran on real images"),
                                                (None, "")])
def test_the_sim_to_real_paragraph_is_said_for_this_copys_data(synthetic, expected):
    text = clean(realism.sim_to_real(synthetic).sentence())
    assert expected in text
    assert ("synthetic cells, not how well" in text) == bool(synthetic)


# --------------------------------------------------------------------------- the loader


def write(folder, chapter, metrics):
    (folder / chapter).mkdir(parents=True, exist_ok=True)
    (folder / chapter / "metrics.json").write_text(json.dumps({"chapter": chapter, **metrics}))


def comparison(a, b, metric, verdict="no clear difference"):
    return {"a": a, "b": b, "metric": metric, "difference": -0.1, "ci95": [-0.2, 0.05], "p_value": 0.3,
            "test": "paired permutation", "verdict": verdict}


def study_folder(tmp_path):
    write(tmp_path, "01_data", {"data_source": "real", "is_synthetic": False, "n_files": 775, "n_usable": 775,
                                "n_classes": 14})
    scores = {f"{m}_test_{k}{s}": v for m in fp.MODELS for k in ("accuracy", "balanced_accuracy")
              for s, v in (("", 0.7), ("_ci95", [0.6, 0.8]))}
    write(tmp_path, "05_test_results", {"model_source": "study", "n_test": 775, **scores, "neu_recall": 0.88,
                                        "neu_recall_ci95": [0.82, 0.92],
                                        "comparisons": [comparison("tuned", "baseline", "balanced_accuracy")]})
    (tmp_path / "05_test_results" / "chapter-run.json").write_text(json.dumps(
        {"parameters": {"eval_split": "all"}, "upstream": {}}))
    (tmp_path / "run.json").write_text(json.dumps({"profile": "study", "chapters": [
        {"chapter": "05_test_results", "seconds": 60.7}, {"chapter": "01_data", "seconds": float("nan")}]}))
    return tmp_path


def test_the_loader_reads_the_chapters_that_ran_and_names_the_others_none(tmp_path):
    found = fp.load(study_folder(tmp_path))
    assert found.baseline is None and found.tuning is None and found.augmentation is None and found.xai is None
    assert found.test.eval_split == "all" and found.test.model_source == "study" and found.is_synthetic is False
    assert found.run.seconds == {"05_test_results": 60.7}  # a NaN time is not a time
    assert "every usable image of the folder (775)" in found.measured()
    assert fp.load(tmp_path / "empty") == fp.Findings()


def test_the_loader_says_which_split_is_unknown_when_nothing_records_it(tmp_path):
    (study_folder(tmp_path) / "05_test_results" / "chapter-run.json").unlink()
    found = fp.load(tmp_path)
    assert found.test.eval_split is None
    assert "does not record which split" in found.measured()
    (tmp_path / "05_test_results" / "chapter-run.json").write_text(json.dumps({"parameters": {}, "upstream": {}}))
    assert fp.load(tmp_path).test.eval_split == "test"  # the runner passed none: the notebook's default


@pytest.mark.parametrize("damage,message", [
    (lambda m: m.pop("neu_recall"), "'neu_recall' is missing, not a finite number"),
    (lambda m: m.update(n_test="775"), "'n_test' is '775', not a finite number"),
    (lambda m: m.update(baseline_test_accuracy_ci95=[0.6]), "baseline_test_accuracy_ci95"),
    (lambda m: m.update(comparisons=[{"a": "tuned"}]), "comparisons[0]"),
    (lambda m: m.update(model_source="elsewhere"), "'run' or 'study'"),
])
def test_a_damaged_metrics_file_is_refused_with_the_file_and_the_key_named(tmp_path, damage, message):
    path = study_folder(tmp_path) / "05_test_results" / "metrics.json"
    metrics = json.loads(path.read_text())
    damage(metrics)
    path.write_text(json.dumps(metrics))
    with pytest.raises(fp.FindingsError, match="metrics.json") as err:
        fp.load(tmp_path)
    assert message in str(err.value) and "run chapter 05_test_results again" in str(err.value)


def test_an_unreadable_or_oversized_metrics_file_is_refused(tmp_path, monkeypatch):
    folder = study_folder(tmp_path)
    (folder / "01_data" / "metrics.json").write_text("{not json")
    with pytest.raises(fp.records.RecordError, match="unreadable"):
        fp.load(folder)
    (folder / "01_data" / "metrics.json").write_text("[]")
    with pytest.raises(fp.records.RecordError, match="not a run record"):
        fp.load(folder)
    monkeypatch.setattr(fp.records, "MAX_RECORD_BYTES", 10)
    (folder / "01_data" / "metrics.json").write_text(json.dumps({"data_source": "x" * 100}))
    with pytest.raises(fp.records.RecordError, match="limit"):
        fp.load(folder)


def xai_metrics(fills=("grey", "mean")):
    better = {**comparison("LIME", "random", "accuracy over n"), "difference": 0.2, "ci95": [0.1, 0.3],
              "p_value": 0.001}
    return {**{f"sufficient_n_{k}_text": "5 (5–15)" for k in ("predicted", "first", "random")},
            "fills": {f: {"differences": {key: better for key, _ in fp.XAI_MEANINGS}} for f in fills}}


def test_chapter_6s_verdicts_are_read_under_every_fill_and_a_missing_one_is_refused(tmp_path):
    write(study_folder(tmp_path), "06_xai", xai_metrics())
    found = fp.load(tmp_path)
    assert found.xai.fill_verdicts["lime_minus_random"] == {"grey": "better", "mean": "better"}
    assert "That LIME's ranking beats a random one holds under every fill (grey, mean)." in found.summary()
    metrics = xai_metrics()
    del metrics["fills"]["mean"]["differences"]["top_minus_bottom"]
    write(tmp_path, "06_xai", metrics)
    with pytest.raises(fp.FindingsError, match="fills.mean.differences.top_minus_bottom"):
        fp.load(tmp_path)


def test_the_finding_s_robustness_is_said_when_chapter_6_ran_its_sections(tmp_path):
    metrics = {**xai_metrics(), "robustness_sizes": {"robustness": 100}, "robustness_holds_in": 7,
               "robustness_settings_count": 7, "fill_closest": "blur"}
    write(study_folder(tmp_path), "06_xai", metrics)
    text = fp.load(tmp_path).summary()
    assert "on 100 images, the finding (explaining the predicted class beats class 0 and LIME's ranking beats a " \
           "random one, both at once) holds in 7 of 7 settings." in text
    assert "Of the fills, blur leaves the images closest" in text
    write(tmp_path, "06_xai", {**metrics, "robustness_sizes": "lots"})
    with pytest.raises(fp.FindingsError, match="robustness_sizes.robustness"):
        fp.load(tmp_path)


def test_a_run_without_the_robustness_sections_says_nothing_of_them(tmp_path):
    write(study_folder(tmp_path), "06_xai", xai_metrics())
    assert "Varied over LIME's seed" not in fp.load(tmp_path).summary()
