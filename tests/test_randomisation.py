"""The sanity check by cascading model randomisation: what each step re-initialises, the rank
correlations, the verdict rule, and that LIME's explanations of a randomised model differ from
the trained model's more than two LIME seeds' do."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

keras = pytest.importorskip("keras")

from cytokit.models.network import build_cnn  # noqa: E402
from cytokit.xai import randomisation as rnd  # noqa: E402
from cytokit.xai.explain import Explanation, explain_all  # noqa: E402
from cytokit.xai.images import at_resolution  # noqa: E402

SIZE = 32
STEPS = ["probs", "dense", "block4", "block3", "block2", "block1"]
#: The initializers' constant values: a re-initialised layer must hold exactly these.
CONSTANT = {"bias": 0.0, "gamma": 1.0, "beta": 0.0, "moving_mean": 0.0, "moving_variance": 1.0}


def grid_segments(size: int = SIZE, block: int = 8) -> np.ndarray:
    rows, cols = np.indices((size, size)) // block
    return (rows * (size // block) + cols).astype(np.int32)


def perturbed_cnn(seed: int = 0, dropout=0.4):
    """The study's network with every weight drawn at random, so none equals what its initializer gives."""
    model = build_cnn(2, SIZE, dropout=dropout)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.5, 0.1, w.shape).astype(w.dtype) for w in model.get_weights()])
    return model


def anonymous(model):
    """The same network with Keras' default layer names, as the study's saved models have them."""
    def clone(layer):
        config = layer.get_config()
        config.pop("name", None)
        return type(layer).from_config(config)
    out = keras.models.clone_model(model, clone_function=clone)
    out.set_weights(model.get_weights())
    return out


def weights_by_layer(model) -> dict:
    return {layer.name: [np.array(w) for w in layer.get_weights()] for layer in model.layers if layer.weights}


@pytest.fixture(scope="module")
def perturbed():
    return perturbed_cnn()


# --------------------------------------------------------------------------- the cascade


def test_steps_top_down_and_the_layers_of_each():
    steps = rnd.cascade_steps(build_cnn(2, SIZE, dropout=0.4))
    assert [name for name, _ in steps] == STEPS
    layers = dict(steps)
    assert layers["probs"] == ["probs"] and layers["dense"] == ["dense"]
    assert layers["block4"] == ["block4_conv1", "block4_bn1", "block4_conv2", "block4_bn2"]
    assert layers["block1"] == ["block1_conv1", "block1_bn1", "block1_conv2"]  # no BN after block 1's second conv


def test_steps_are_found_by_type_and_position_not_by_name():
    named = build_cnn(2, SIZE)
    expected = [(name, len(layers)) for name, layers in rnd.cascade_steps(named)]
    rescaled = anonymous(named)  # build_cnn's first layer is its Rescaling(1/255)
    assert type(rescaled.layers[0]).__name__ == "Rescaling"
    wrapped = at_resolution(rescaled, 48)  # Resizing, then Rescaling, then default-named layers
    assert [type(layer).__name__ for layer in wrapped.layers[:2]] == ["Resizing", "Rescaling"]
    steps = rnd.cascade_steps(wrapped)
    assert [(name, len(layers)) for name, layers in steps] == expected
    assert dict(steps)["probs"] == [wrapped.layers[-1].name]
    assert not any(name.startswith("block") for _, layers in steps for name in layers)  # Keras' own names
    assert [name for name, _ in rnd.cascade_steps(build_cnn(2, SIZE, dropout=None))] == STEPS


def test_several_hidden_dense_layers_are_numbered_from_the_bottom():
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3, name="c"),
                              keras.layers.Flatten(), keras.layers.Dense(4, name="h1"),
                              keras.layers.Dense(4, name="h2"), keras.layers.Dense(2, name="out")])
    assert rnd.cascade_steps(model) == [("probs", ["out"]), ("dense2", ["h2"]), ("dense1", ["h1"]),
                                        ("block1", ["c"])]


def test_the_trained_model_is_never_changed(perturbed):
    before = [w.copy() for w in perturbed.get_weights()]
    steps = list(rnd.cascade(perturbed, seed=0))
    assert all(model is not perturbed for _, model in steps)
    assert all(np.array_equal(a, b) for a, b in zip(before, perturbed.get_weights()))


def test_step_k_reinitialises_exactly_its_own_and_the_earlier_steps_layers(perturbed):
    trained = weights_by_layer(perturbed)
    steps = rnd.cascade_steps(perturbed)
    seen = {}
    for k, (name, model) in enumerate(rnd.cascade(perturbed, seed=0)):
        assert name == steps[k][0]
        randomised = {layer for _, layers in steps[: k + 1] for layer in layers}
        now = weights_by_layer(model)
        assert set(now) == set(trained)
        for layer_name, weights in now.items():
            layer = model.get_layer(layer_name)
            if layer_name not in randomised:
                assert all(np.array_equal(a, b) for a, b in zip(weights, trained[layer_name])), (name, layer_name)
                continue
            for variable, w, old in zip(layer.weights, weights, trained[layer_name]):
                assert not np.array_equal(w, old), (name, layer_name, variable.name)
                if variable.name in CONSTANT:
                    assert np.all(w == CONSTANT[variable.name]), (name, layer_name, variable.name)
                else:  # Glorot uniform, the layers' own kernel initializer
                    receptive = int(np.prod(w.shape[:-2]))
                    limit = math.sqrt(6 / (w.shape[-2] * receptive + w.shape[-1] * receptive))
                    assert np.abs(w).max() <= limit and w.std() > limit / 4, (name, layer_name)
            if layer_name in seen:  # re-initialised at an earlier step: kept as it was drawn then
                assert all(np.array_equal(a, b) for a, b in zip(weights, seen[layer_name]))
            seen[layer_name] = weights


def test_a_step_is_the_same_for_the_same_seed_and_differs_for_another(perturbed):
    first = [weights_by_layer(m) for _, m in rnd.cascade(perturbed, seed=0)]
    again = [weights_by_layer(m) for _, m in rnd.cascade(perturbed, seed=0)]
    other = [weights_by_layer(m) for _, m in rnd.cascade(perturbed, seed=1)]
    for a, b, c in zip(first, again, other):
        assert all(np.array_equal(x, y) for name in a for x, y in zip(a[name], b[name]))
    assert not np.array_equal(first[0]["probs"][0], other[0]["probs"][0])
    renamed = [weights_by_layer(m) for _, m in rnd.cascade(anonymous(perturbed), seed=0)]
    assert np.array_equal(next(iter(renamed[-1].values()))[0], first[-1]["block1_conv1"][0])  # by position, not name


def test_randomised_models_predict_at_the_wrapped_resolution(perturbed):
    wrapped = at_resolution(perturbed, 48)
    x = np.random.default_rng(0).random((2, 48, 48, 3), dtype=np.float32)
    for _, model in rnd.cascade(wrapped, seed=0):
        probs = model.predict_on_batch(x)
        assert probs.shape == (2, 2)
        np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)


# --------------------------------------------------------------------------- rank correlations


def lime_like(weights: dict) -> Explanation:
    return Explanation(0, "true", np.array(sorted(weights, key=weights.get)[::-1]), weights, np.ones(2) / 2,
                       0.0, 0.0, 16, 0)


def test_spearman_is_one_for_identical_and_minus_one_for_reversed_explanations():
    w = {i: float(v) for i, v in enumerate(np.random.default_rng(0).normal(size=12))}
    reversed_ = {i: -v for i, v in w.items()}
    shuffled = dict(reversed(list(w.items())))  # same ids, another insertion order
    rho = rnd.spearman_per_image([w, lime_like(w), w], [shuffled, lime_like(w), reversed_])
    np.testing.assert_allclose(rho, [1.0, 1.0, -1.0])
    heat = np.random.default_rng(1).random((8, 8))
    np.testing.assert_allclose(rnd.spearman_per_image([heat, heat], [heat, 1 - heat]), [1.0, -1.0])


def test_absolute_spearman_ranks_magnitudes_so_a_sign_flip_is_the_same_ranking():
    w = {i: float(v) for i, v in enumerate(np.random.default_rng(0).normal(size=12))}
    flipped = {i: -v for i, v in w.items()}
    assert rnd.spearman(w, flipped) == pytest.approx(-1.0)
    assert rnd.spearman(w, flipped, absolute=True) == pytest.approx(1.0)
    np.testing.assert_allclose(rnd.spearman_per_image([w], [flipped], absolute=True), [1.0])


def test_spearman_is_nan_for_a_constant_explanation_and_refuses_misaligned_ones():
    w = {0: 0.1, 1: 0.5, 2: -0.2}
    assert np.isnan(rnd.spearman(w, {0: 0.0, 1: 0.0, 2: 0.0}))
    with pytest.raises(ValueError, match="same superpixel ids"):
        rnd.spearman(w, {0: 0.1, 1: 0.5, 3: -0.2})
    with pytest.raises(ValueError, match="one of each per image"):
        rnd.spearman_per_image([w, w], [w])
    with pytest.raises(ValueError, match="differ in size"):
        rnd.spearman(np.zeros(3), np.zeros(4))


def test_superpixel_heat_is_the_mean_heat_of_each_superpixel():
    seg = grid_segments(8, 4) + 3  # ids 3..6
    heat = np.arange(64, dtype=float).reshape(8, 8)
    expected = {int(s): float(heat[seg == s].mean()) for s in np.unique(seg)}
    assert rnd.superpixel_heat(heat, seg) == pytest.approx(expected)


# --------------------------------------------------------------------------- summary and verdict


def table(values: dict) -> pd.DataFrame:
    """A check's table from {(order, step, method): per-image values}."""
    rows = [{"step": step, "order": order, "image": i, "method": method, "spearman": v}
            for (order, step, method), vs in values.items() for i, v in enumerate(vs)]
    return pd.DataFrame(rows)


def spread(centre: float, n: int = 20, seed: int = 0) -> np.ndarray:
    return np.clip(centre + np.random.default_rng(seed).normal(0, 0.05, n), -1, 1)


def test_summary_has_intervals_in_cascade_order_and_counts_constant_maps():
    t = table({(0, rnd.BASELINE, "LIME"): spread(0.8), (1, "probs", "LIME"): spread(0.5),
               (1, "probs", "Grad-CAM"): [*spread(0.6, 18), np.nan, np.nan], (2, "dense", "LIME"): spread(0.1)})
    s = rnd.summarise(t)
    assert s["step"].tolist() == [rnd.BASELINE, "probs", "probs", "dense"]
    assert (s["low"] <= s["mean"]).all() and (s["mean"] <= s["high"]).all()
    assert s.attrs["column"] == "spearman"
    cam = s[s["method"] == "Grad-CAM"].iloc[0]
    assert (cam["n"], cam["undefined"]) == (18, 2)
    assert cam["mean"] == pytest.approx(np.mean(spread(0.6, 18)))


def test_a_method_passes_when_its_last_step_keeps_under_half_its_own_agreement():
    base = {(0, rnd.BASELINE, "LIME"): spread(0.8), (0, rnd.BASELINE, "Grad-CAM"): [1.0] * 20}  # bars 0.39, 0.5
    t = table({**base, (1, "probs", "LIME"): spread(0.9), (1, "probs", "Grad-CAM"): spread(0.1),  # earlier: not read
               (2, "block1", "LIME"): spread(0.05, seed=1), (2, "block1", "Grad-CAM"): spread(0.78, seed=1)})
    summary = rnd.summarise(t)
    assert rnd.verdicts(summary) == summary.attrs["verdicts"] == {"LIME": rnd.PASSES, "Grad-CAM": rnd.FAILS}
    t = table({**base, (1, "probs", "LIME"): np.linspace(-0.2, 0.9, 20),  # mean 0.35 < 0.39, its interval across
               (1, "probs", "Grad-CAM"): spread(0.4)})  # under 0.5 although far from 0: kept less than half
    assert rnd.summarise(t).attrs["verdicts"] == {"LIME": rnd.INCONCLUSIVE, "Grad-CAM": rnd.PASSES}
    t = table({(0, rnd.BASELINE, "LIME"): spread(0.0), (0, rnd.BASELINE, "Grad-CAM"): [np.nan] * 20,
               (1, "probs", "LIME"): spread(-0.9), (1, "probs", "Grad-CAM"): spread(0.1)})
    assert rnd.summarise(t).attrs["verdicts"] == {"LIME": rnd.INCONCLUSIVE, "Grad-CAM": rnd.NOT_MEASURED}


def test_a_reversed_lime_ranking_passes_signed_and_fails_on_magnitudes():
    t = table({(0, rnd.BASELINE, "LIME"): spread(0.8), (1, "block1", "LIME"): spread(-0.8, seed=2)})
    t["spearman_abs"] = t["spearman"].abs()  # the randomised LIME ranks the same superpixels, signs flipped
    assert rnd.summarise(t).attrs["verdicts"] == {"LIME": rnd.PASSES}
    assert rnd.summarise(t, column="spearman_abs").attrs["verdicts"] == {"LIME": rnd.FAILS}


# --------------------------------------------------------------------------- the check on a model that reads one region


def colour_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noise everywhere; the top-left quadrant reddish (class 0) or greenish (class 1), near the grey fill.

    The deciding patch differs from LIME's grey 128 by only 38 levels, the noise around it
    by up to 128, so a network that did not learn the patch has no reason to rank it first.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.integers(0, 256, (n, SIZE, SIZE, 3)).astype(np.uint8)
    colours = np.where(y[:, None] == 0, [[166, 90, 128]], [[90, 166, 128]]).astype(np.uint8)
    x[:, : SIZE // 2, : SIZE // 2] = colours[:, None, None, :]
    return x, y


@pytest.fixture(scope="module")
def colour_model():
    """The study's network at 32 px, trained until it tells the patch colours apart."""
    keras.utils.set_random_seed(0)
    model = build_cnn(2, SIZE, bn_momentum=0.9)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    x, y = colour_images(512, seed=0)
    model.fit(x, y, batch_size=32, epochs=6, verbose=0)  # uint8, as the pipeline feeds it
    xt, yt = colour_images(64, seed=1)
    assert (model.predict_on_batch(xt).argmax(axis=1) == yt).mean() >= 0.9, "the toy model did not learn"
    return model


@pytest.fixture(scope="module")
def check(colour_model):
    x, y = colour_images(10, seed=2)
    segs = [grid_segments()] * len(x)
    return rnd.randomisation_check(colour_model, list(x), segs, labels=y, num_samples=256, seed=0, progress=False)


@pytest.mark.slow
def test_the_check_table_has_every_step_image_and_method(check):
    assert list(check.columns) == ["step", "order", "image", "method", "spearman", "spearman_abs"]
    cam = check[check["method"] == "Grad-CAM"]
    pd.testing.assert_series_equal(cam["spearman"], cam["spearman_abs"], check_names=False)  # heat is >= 0
    steps = check.drop_duplicates("order").sort_values("order")["step"].tolist()
    assert steps == [rnd.BASELINE, *STEPS]
    assert check.groupby(["step", "method"]).size().to_dict() == {
        (s, m): 10 for s in [rnd.BASELINE, *STEPS] for m in rnd.METHODS}
    again = check[(check["step"] == rnd.BASELINE) & (check["method"] == "Grad-CAM")]["spearman"]
    assert (again.dropna() == 1).all() and again.notna().sum() >= 8  # Grad-CAM is deterministic
    seeds = check[(check["step"] == rnd.BASELINE) & (check["method"] == "LIME")]["spearman"]
    assert (seeds < 1).sum() >= 5  # LIME again with other seeds: other draws, other weights
    assert check[["spearman", "spearman_abs"]].stack().dropna().between(-1, 1).all()


@pytest.mark.slow
def test_lime_of_the_randomised_model_agrees_less_than_two_lime_seeds(check):
    lime = check[check["method"] == "LIME"]
    base = lime[lime["step"] == rnd.BASELINE]["spearman"]
    last = lime[lime["step"] == "block1"]["spearman"]
    assert last.mean() < base.mean() - 0.3
    assert rnd.verdicts(rnd.summarise(check))["LIME"] == rnd.PASSES


@pytest.mark.slow
def test_trained_explanations_are_reused_and_every_model_gets_their_draws(colour_model):
    x, _ = colour_images(4, seed=3)
    images, segs = list(x), [grid_segments()] * len(x)
    trained = explain_all(colour_model, images, segs, num_samples=64, seed=5, progress=False)  # predicted class
    labels = [e.label for e in trained]
    reused = rnd.randomisation_check(colour_model, images, segs, num_samples=64, seed=5, trained=trained,
                                     steps=["probs"], progress=False)
    fresh = rnd.randomisation_check(colour_model, images, segs, labels, num_samples=64, seed=5, steps=["probs"],
                                    progress=False)
    pd.testing.assert_frame_equal(reused, fresh)
    assert reused["step"].unique().tolist() == [rnd.BASELINE, "probs"]
    # a subset keeps each image's own seed, so its randomised explanations are the full run's
    subset = rnd.randomisation_check(colour_model, images[1:], segs[1:], trained=trained[1:], steps=["probs"],
                                     progress=False)
    rows = subset[subset["step"] == "probs"].assign(image=lambda t: t["image"] + 1).reset_index(drop=True)
    later = reused[(reused["step"] == "probs") & (reused["image"] > 0)].reset_index(drop=True)
    pd.testing.assert_frame_equal(rows, later)
    again = rnd.explain_like(colour_model, images, segs, trained, progress=False)
    assert all(a.weights == b.weights and a.label == b.label for a, b in zip(again, trained))


@pytest.mark.slow
def test_the_check_refuses_what_it_cannot_compare(colour_model):
    x, y = colour_images(2, seed=4)
    images, segs = list(x), [grid_segments()] * len(x)
    with pytest.raises(ValueError, match="no cascade steps"):
        rnd.randomisation_check(colour_model, images, segs, y, steps=["block9"], progress=False)
    with pytest.raises(ValueError, match="labels"):
        rnd.randomisation_check(colour_model, images, segs, progress=False)
    trained = explain_all(colour_model, images, segs, "true", y, num_samples=16, seed=1, progress=False)
    with pytest.raises(ValueError, match="labels differ"):
        rnd.randomisation_check(colour_model, images, segs, 1 - y, trained=trained, progress=False)
    with pytest.raises(ValueError, match="baseline_seed"):
        rnd.randomisation_check(colour_model, images, segs, trained=trained, baseline_seed=1, progress=False)


@pytest.mark.slow
def test_the_independent_check_reads_every_step_alone_for_both_methods(colour_model):
    x, _ = colour_images(4, seed=5)
    images, segs = list(x), [grid_segments()] * len(x)
    trained = explain_all(colour_model, images, segs, num_samples=64, seed=5, progress=False)
    found = rnd.independent_check(colour_model, images, segs, trained, seed=5, progress=False)
    assert found.summary.groupby("method")["step"].apply(list).to_dict() == {
        m: [rnd.BASELINE, *STEPS] for m in rnd.METHODS}
    assert set(found.dependence()) == set(rnd.METHODS) and found.images == 4
    json.dumps(found.facts())
