import pytest

from cytokit import params, run


@pytest.mark.parametrize("name,value", [
    ("epochs", -1), ("epochs", 0), ("epochs", 2.5), ("image_size", 16), ("fraction", 0.0),
    ("fraction", 1.5), ("bn_momentum", 1.0), ("learning_rate", 0), ("model_source", "mine"),
    ("label_mode", "random"), ("max_trials", True), ("synth_difficulty", 2),
])
def test_bad_values_are_refused_with_the_rule(name, value):
    with pytest.raises(params.ParameterError, match=name):
        params.check({name: value}, "02_baseline")


@pytest.mark.parametrize("name,value", [
    ("epochs", 1), ("image_size", 32), ("image_size", 250), ("fraction", 1.0), ("fraction", 0.3),
    ("bn_momentum", 0.99), ("learning_rate", 1e-5), ("label_mode", "first"), ("data_dir", None),
    ("unknown_knob", "anything"),
])
def test_good_values_pass(name, value):
    params.check({name: value})


def test_runner_refuses_before_any_chapter_runs(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(params.ParameterError, match="epochs=-3"):
        run.run("smoke", out=out, overrides={"epochs": -3}, book=False, log=lambda *a, **k: None)
    assert not out.exists()
