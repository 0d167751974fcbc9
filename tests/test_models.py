"""The CNN is the study's: shapes, parameters, and the study's own weights."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
keras_tuner = pytest.importorskip("keras_tuner")

from conftest import require_study_file, study_models_dir  # noqa: E402
from cytokit import resources  # noqa: E402
from cytokit.data.taxonomy import CODES  # noqa: E402
from cytokit.models import network, tuning  # noqa: E402

STUDY_MODELS = study_models_dir()
STUDY_PARAMS = 96_509


def _study_model(name: str) -> Path:
    return require_study_file(STUDY_MODELS / f"{name}.keras")


@pytest.fixture(scope="module")
def real_images(real_sample) -> np.ndarray:
    """One real image from each of 8 classes, read as the study did: RGB, 250x250, uint8 (scaled by each model)."""
    cv2 = pytest.importorskip("cv2")
    paths = [sorted(d.rglob("*.jpg"))[0] for d in sorted(real_sample.iterdir()) if d.is_dir()][:8]
    batch = np.stack([cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths])
    assert batch.shape == (len(paths), 250, 250, 3) and batch.dtype == np.uint8
    return batch


def _study_input(images: np.ndarray) -> np.ndarray:
    """What the study fed its models: ``image / 255`` in float32."""
    return images.astype("float32") / np.float32(255)


def _rescaled(images: np.ndarray) -> np.ndarray:
    """What ``Rescaling(1/255)`` computes: ``image * float32(1/255)``, one float32 step off ``/ 255`` for
    126 of the 256 levels."""
    return images.astype("float32") * np.float32(1 / 255)


@pytest.mark.parametrize("dropout", [None, 0.4])
def test_study_parameter_count(dropout):
    assert network.param_count(network.build_cnn(21, 250, dropout=dropout)) == STUDY_PARAMS


def test_baseline_has_no_dropout_layer():
    baseline = network.build_cnn(dropout=None)
    tuned = network.build_cnn(dropout=0.4)
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in baseline.layers)
    (drop,) = [layer for layer in tuned.layers if isinstance(layer, keras.layers.Dropout)]
    assert drop.rate == 0.4


@pytest.mark.parametrize("size", [64, 96, 128, 250])
def test_output_shape_and_softmax(size):
    model = network.build_cnn(21, size, dropout=0.4)
    x = np.random.default_rng(0).integers(0, 256, (2, size, size, 3)).astype(np.uint8)
    probs = model.predict(x, verbose=0)
    assert probs.shape == (2, 21)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert model.get_layer("flatten").output.shape[-1] == 64
    assert network.param_count(model) == STUDY_PARAMS


def test_pools_rule():
    assert network.pools_for(250) == network.STUDY_POOLS == (4, 4, 4, 3)
    assert network.pools_for(64) == (4, 4, 2, 2)
    assert network.pools_for(96) == (4, 4, 2, 3)
    for size in range(network.MIN_IMAGE_SIZE, 384):
        side = size
        for p in network.pools_for(size):
            side //= p
        assert side == 1, size


@pytest.mark.parametrize("size", [31, 16, 0, -5, 64.5])
def test_too_small_image_is_refused(size):
    with pytest.raises(ValueError, match="image_size"):
        network.pools_for(size)


def test_layer_order_is_the_studys():
    kinds = [type(layer).__name__ for layer in network.build_cnn(dropout=0.4).layers]
    conv_bn_relu = ["Conv2D", "BatchNormalization", "Activation"]
    block_a = conv_bn_relu + ["Conv2D", "Activation", "MaxPooling2D"]
    block_b = conv_bn_relu + conv_bn_relu + ["MaxPooling2D"]
    head = ["Flatten", "Dense", "Dropout", "Dense"]
    assert kinds == ["Rescaling"] + block_a * 2 + block_b * 2 + head


@pytest.mark.parametrize("name", ["baseline", "tuned", "augmented"])
def test_study_layers_match(name):
    study = keras.saving.load_model(_study_model(name), compile=False)
    ours = network.build_cnn(len(CODES), 250, dropout=None if name == "baseline" else 0.4)
    assert [type(x).__name__ for x in network.study_layers(ours)] == [type(x).__name__ for x in study.layers]
    assert [w.shape for w in ours.weights] == [w.shape for w in study.weights]
    assert not network.scales_pixels(study) and network.scales_pixels(ours)


@pytest.mark.parametrize("name,dropout", [("baseline", None), ("augmented", 0.4)])
def test_study_weights_give_identical_predictions(name, dropout, real_images):
    study = keras.saving.load_model(_study_model(name), compile=False)
    ours = network.load_study_weights(network.build_cnn(21, 250, dropout=dropout), _study_model(name))
    got = ours.predict(real_images, verbose=0)  # uint8: the network scales it
    np.testing.assert_allclose(got, study.predict(_rescaled(real_images), verbose=0), rtol=0, atol=1e-7)
    expected = study.predict(_study_input(real_images), verbose=0)  # the study's own division
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(got.argmax(axis=1), expected.argmax(axis=1))
    wrapped = network.with_pixel_scaling(study)  # a file saved for [0, 1] inputs, fed uint8
    np.testing.assert_allclose(wrapped.predict(real_images, verbose=0), got, atol=1e-6)
    # the study's model is confident on these real cells, so this is not a trivially equal output
    assert expected.max(axis=1).mean() > 0.5


def test_the_network_scales_uint8_pixels_itself():
    """Feeding uint8 pixels to build_cnn equals feeding pixel/255 to the same layers without the first."""
    model = network.build_cnn(21, 64, dropout=0.4)
    assert network.scales_pixels(model) and model.layers[0].name == network.PIXEL_LAYER and not model.layers[0].weights
    bare = keras.Sequential([keras.Input((64, 64, 3)), *network.study_layers(model)])
    x = np.random.default_rng(4).integers(0, 256, (3, 64, 64, 3)).astype(np.uint8)
    np.testing.assert_allclose(model.predict_on_batch(x), bare.predict_on_batch(_rescaled(x)), rtol=0, atol=1e-7)
    assert network.with_pixel_scaling(model) is model
    wrapped = network.with_pixel_scaling(bare)
    assert network.scales_pixels(wrapped) and len(wrapped.layers) == len(model.layers)
    np.testing.assert_allclose(wrapped.predict_on_batch(x), model.predict_on_batch(x), atol=1e-6)


def test_a_saved_model_loads_taking_uint8(tmp_path):
    """training.load_model gives every model uint8 input: ours as saved, one saved for [0, 1] inputs wrapped."""
    from cytokit.models import training

    model = network.build_cnn(21, 32)
    bare = keras.Sequential([keras.Input((32, 32, 3)), *network.study_layers(model)])
    x = np.random.default_rng(5).integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
    for saved in (model, bare):
        training.save_model(saved, tmp_path / "m.keras")
        loaded = training.load_model(tmp_path / "m.keras")
        assert network.scales_pixels(loaded)
        np.testing.assert_allclose(loaded.predict_on_batch(x), model.predict_on_batch(x), atol=1e-6)


def test_bfloat16_keeps_float32_probabilities():
    try:
        network.set_precision("mixed_bfloat16")
        model = network.build_cnn(21, 32, dropout=0.4)
        assert model.get_layer("block1_conv1").compute_dtype == "bfloat16"
        assert model.get_layer("block1_conv1").variable_dtype == "float32"
        assert model.get_layer("probs").compute_dtype == "float32"
        x = np.random.default_rng(6).integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
        probs = np.asarray(model.predict_on_batch(x))
        assert probs.dtype == np.float32
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    finally:
        network.set_precision("float32")
    assert network.build_cnn(21, 32).get_layer("block1_conv1").compute_dtype == "float32"
    with pytest.raises(ValueError, match="precision"):
        network.set_precision("float16")


def test_load_study_weights_rejects_other_architectures():
    small = network.build_cnn(21, 64)
    other = network.build_cnn(10, 64)
    with pytest.raises(ValueError, match="differs"):
        network.load_study_weights(small, other)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_compile(optimizer):
    model = network.compile_model(network.build_cnn(21, 64), optimizer, 1e-4)
    assert type(model.optimizer).__name__.lower() == optimizer
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-4)
    x = np.random.default_rng(1).random((4, 64, 64, 3), dtype="float32")
    loss = model.train_on_batch(x, np.array([0, 1, 2, 20]), return_dict=True)
    assert set(loss) >= {"loss", "accuracy"}


def test_compile_rejects_unknown_optimizer():
    with pytest.raises(ValueError, match="optimizer"):
        network.compile_model(network.build_cnn(21, 64), "rmsprop")


def _hp(**values) -> keras_tuner.HyperParameters:
    hp = keras_tuner.HyperParameters()
    for key, value in values.items():
        hp.Fixed(key, value)
    return hp


@pytest.mark.parametrize(
    "dropout,optimizer,lr,expected_lr",
    [(0.2, "adam", 1e-5, 1e-5), (0.5, "sgd", 1e-5, 1e-4), (0.3, "sgd", 1e-3, 1e-3), (0.4, "adam", 1e-3, 1e-3)],
)
def test_hypermodel_builds_across_the_space(dropout, optimizer, lr, expected_lr):
    hm = tuning.CellHyperModel(n_classes=21, image_size=64)
    model = hm.build(_hp(dropout=dropout, optimizer=optimizer, learning_rate=lr, batch_size=64))
    assert model.get_layer("dropout").rate == dropout
    assert type(model.optimizer).__name__.lower() == optimizer
    assert float(model.optimizer.learning_rate) == pytest.approx(expected_lr)


def test_hypermodel_without_sgd_rule_keeps_1e5():
    hm = tuning.CellHyperModel(21, 64, replace_sgd_lr=False)
    model = hm.build(_hp(dropout=0.2, optimizer="sgd", learning_rate=1e-5, batch_size=32))
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-5)


def test_hypermodel_registers_the_studys_space():
    hp = keras_tuner.HyperParameters()
    tuning.CellHyperModel(21, 64).build(hp)
    space = {p.name: list(p.values) for p in hp.space}
    assert space == {
        "dropout": [0.2, 0.3, 0.4, 0.5],
        "optimizer": ["adam", "sgd"],
        "learning_rate": [1e-3, 1e-4, 1e-5],
        "batch_size": [32, 64, 128],
    }


def test_search_space_matches_the_report():
    space = tuning.search_space()
    assert space == {
        "dropout": [0.2, 0.3, 0.4, 0.5],
        "optimizer": ["adam", "sgd"],
        "learning_rate": {"adam": [1e-3, 1e-4, 1e-5], "sgd": [1e-3, 1e-4]},
        "batch_size": [32, 64, 128],
    }
    with resources.path("training_facts.csv").open(encoding="utf-8") as fh:
        facts = {r["key"]: r["value"] for r in csv.DictReader(fh)}
    assert [float(v) for v in facts["search_space_dropout"].split(";")] == space["dropout"]
    assert [float(v) for v in facts["search_space_lr"].split(";")] == space["learning_rate"]["adam"]
    assert [int(v) for v in facts["search_space_batch_size"].split(";")] == space["batch_size"]
    assert facts["search_space_optimizer"].split(";") == space["optimizer"]
    best = tuning.STUDY_BEST
    assert (best["dropout"], best["learning_rate"], best["optimizer"], best["batch_size"]) == (
        float(facts["best_dropout"]),
        float(facts["best_lr"]),
        facts["best_optimizer"],
        int(facts["best_batch_size"]),
    )


class _Recorder(keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        self.batches = batch + 1


@pytest.mark.slow
def test_hypermodel_fit_honours_batch_size():
    import tensorflow as tf

    rng = np.random.default_rng(2)
    x = rng.random((20, 32, 32, 3), dtype="float32")
    y = rng.integers(0, 3, 20)
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    hm = tuning.CellHyperModel(n_classes=3, image_size=32)
    hp = _hp(dropout=0.2, optimizer="adam", learning_rate=1e-3, batch_size=8)
    model = hm.build(hp)
    for data in ({"x": x, "y": y, "validation_data": (x, y)}, {"x": ds, "validation_data": ds}):
        rec = _Recorder()
        history = hm.fit(hp, model, epochs=1, verbose=0, shuffle=False, callbacks=[rec], **data)
        assert rec.batches == 3  # ceil(20 / 8)
        assert "val_accuracy" in history.history


def test_hypermodel_fit_refuses_batched_dataset():
    import tensorflow as tf

    x = np.zeros((4, 32, 32, 3), "float32")
    ds = tf.data.Dataset.from_tensor_slices((x, np.zeros(4, "int64"))).batch(2)
    hm = tuning.CellHyperModel(n_classes=3, image_size=32)
    hp = _hp(dropout=0.2, optimizer="adam", learning_rate=1e-3, batch_size=8)
    with pytest.raises(ValueError, match="unbatched"):
        hm.fit(hp, hm.build(hp), ds, epochs=1, verbose=0)


@pytest.mark.slow
def test_artifact_round_trip(tmp_path):
    model = network.compile_model(network.build_cnn(21, 32, dropout=0.4))
    x = np.random.default_rng(3).random((3, 32, 32, 3), dtype="float32")
    model.train_on_batch(x, np.array([0, 5, 9]))  # a trained model, optimizer state included
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
