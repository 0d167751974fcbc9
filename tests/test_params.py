import pytest

from cytokit.book import parameters, runner


@pytest.mark.parametrize("name,value", [
    ("epochs", -1), ("epochs", 0), ("epochs", 2.5), ("image_size", 16), ("n_images", 0),
    ("n_images", 1.5), ("bn_momentum", 1.0), ("learning_rate", 0), ("model_source", "mine"),
    ("label_mode", "random"), ("max_trials", True), ("synth_difficulty", 2), ("n_robust", 1), ("n_imputed", 1),
    ("n_independent", 0), ("n_layer_choice", 2.0),
])
def test_bad_values_are_refused_with_the_rule(name, value):
    with pytest.raises(parameters.ParameterError, match=name):
        parameters.check({name: value}, "02_baseline")


@pytest.mark.parametrize("name,value", [
    ("epochs", 1), ("image_size", 32), ("image_size", 250), ("n_images", 1), ("n_images", 40),
    ("bn_momentum", 0.99), ("learning_rate", 1e-5), ("label_mode", "first"), ("data_dir", None), ("n_robust", 100),
    ("n_imputed", 2), ("n_independent", 12), ("n_layer_choice", 40),
])
def test_good_values_pass(name, value):
    parameters.check({name: value})


def test_a_parameter_without_a_rule_is_refused():
    with pytest.raises(parameters.ParameterError, match="unknown_knob.*no rule"):
        parameters.check({"unknown_knob": "anything"})


def test_every_declared_parameter_has_a_rule():
    for chapter in runner.chapters():
        missing = set(parameters.declared(chapter.source)) - set(parameters.RULES)
        assert not missing, f"{chapter.name}: no rule for {sorted(missing)}"


def test_runner_refuses_before_any_chapter_runs(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(parameters.ParameterError, match="epochs=-3"):
        runner.run("smoke", out=out, overrides={"epochs": -3}, book=False, log=lambda *a, **k: None)
    assert not out.exists()


def test_runner_refuses_an_unknown_override_listing_the_known_ones(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(runner.RunError, match="unknown parameter.*unknown_knob.*known ones are: .*epochs"):
        runner.run("smoke", out=out, overrides={"unknown_knob": 1}, book=False, log=lambda *a, **k: None)
    assert not out.exists()


@pytest.mark.parametrize("value", [True, False, "memory", "disk", "auto"])
def test_cache_images_takes_a_flag_or_where_to_keep_the_images(value):
    parameters.check({"cache_images": value})


@pytest.mark.parametrize("name,value", [
    ("cache_images", "yes"), ("cache_images", 1), ("cache_images", "/tmp/cache"), ("tuner_workers", 0),
    ("tuner_workers", 2.0), ("tuner_workers", True), ("precision", "float16"),
])
def test_cache_workers_and_precision_refuse_other_values(name, value):
    with pytest.raises(parameters.ParameterError, match=name):
        parameters.check({name: value}, "03_tuning")
    parameters.check({"tuner_workers": 8, "precision": "mixed_bfloat16"})


def test_more_samples_must_be_more_than_num_samples():
    parameters.check({"num_samples": 128, "more_samples": 1000})
    for more in (128, 64):
        with pytest.raises(parameters.ParameterError, match="more_samples.*more than num_samples"):
            parameters.check({"num_samples": 128, "more_samples": more}, "06_xai")
