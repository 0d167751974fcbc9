"""The CNN is the study's: shapes, parameters, and the study's own weights."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
keras_tuner = pytest.importorskip("keras_tuner")

from conftest import require_study_file, study_models_dir  # noqa: E402
from cytokit import models, resources  # noqa: E402
from cytokit.classes import CODES  # noqa: E402

STUDY_MODELS = study_models_dir()
STUDY_PARAMS = 96_509


def _study_model(name: str) -> Path:
    return require_study_file(STUDY_MODELS / f"{name}.keras")


@pytest.fixture(scope="module")
def real_images(real_sample) -> np.ndarray:
    """One real image from each of 8 classes, read as the study did: RGB, 250x250, pixel/255."""
    cv2 = pytest.importorskip("cv2")
    paths = [sorted(d.rglob("*.jpg"))[0] for d in sorted(real_sample.iterdir()) if d.is_dir()][:8]
    images = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]
    batch = np.stack(images).astype("float32") / 255.0
    assert batch.shape == (len(paths), 250, 250, 3)
    return batch


@pytest.mark.parametrize("dropout", [None, 0.4])
def test_study_parameter_count(dropout):
    assert models.param_count(models.build_cnn(21, 250, dropout=dropout)) == STUDY_PARAMS


def test_baseline_has_no_dropout_layer():
    baseline = models.build_cnn(dropout=None)
    tuned = models.build_cnn(dropout=0.4)
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in baseline.layers)
    (drop,) = [layer for layer in tuned.layers if isinstance(layer, keras.layers.Dropout)]
    assert drop.rate == 0.4


@pytest.mark.parametrize("size", [64, 96, 128, 250])
def test_output_shape_and_softmax(size):
    model = models.build_cnn(21, size, dropout=0.4)
    x = np.random.default_rng(0).random((2, size, size, 3), dtype="float32")
    probs = model.predict(x, verbose=0)
    assert probs.shape == (2, 21)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert model.get_layer("flatten").output.shape[-1] == 64
    assert models.param_count(model) == STUDY_PARAMS


def test_pools_rule():
    assert models.pools_for(250) == models.STUDY_POOLS == (4, 4, 4, 3)
    assert models.pools_for(64) == (4, 4, 2, 2)
    assert models.pools_for(96) == (4, 4, 2, 3)
    for size in range(models.MIN_IMAGE_SIZE, 384):
        side = size
        for p in models.pools_for(size):
            side //= p
        assert side == 1, size


@pytest.mark.parametrize("size", [31, 16, 0, -5, 64.5])
def test_too_small_image_is_refused(size):
    with pytest.raises(ValueError, match="image_size"):
        models.pools_for(size)


def test_layer_order_is_the_studys():
    kinds = [type(layer).__name__ for layer in models.build_cnn(dropout=0.4).layers]
    conv_bn_relu = ["Conv2D", "BatchNormalization", "Activation"]
    block_a = conv_bn_relu + ["Conv2D", "Activation", "MaxPooling2D"]
    block_b = conv_bn_relu + conv_bn_relu + ["MaxPooling2D"]
    head = ["Flatten", "Dense", "Dropout", "Dense"]
    assert kinds == block_a * 2 + block_b * 2 + head


@pytest.mark.parametrize("name", ["baseline", "tuned", "augmented"])
def test_study_layers_match(name):
    study = keras.saving.load_model(_study_model(name), compile=False)
    ours = models.build_cnn(len(CODES), 250, dropout=None if name == "baseline" else 0.4)
    assert [type(x).__name__ for x in ours.layers] == [type(x).__name__ for x in study.layers]
    assert [w.shape for w in ours.weights] == [w.shape for w in study.weights]


@pytest.mark.parametrize("name,dropout", [("baseline", None), ("augmented", 0.4)])
def test_study_weights_give_identical_predictions(name, dropout, real_images):
    study = keras.saving.load_model(_study_model(name), compile=False)
    ours = models.load_study_weights(models.build_cnn(21, 250, dropout=dropout), _study_model(name))
    expected = study.predict(real_images, verbose=0)
    got = ours.predict(real_images, verbose=0)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    # the study's model is confident on these real cells, so this is not a trivially equal output
    assert expected.max(axis=1).mean() > 0.5


def test_load_study_weights_rejects_other_architectures():
    small = models.build_cnn(21, 64)
    other = models.build_cnn(10, 64)
    with pytest.raises(ValueError, match="differs"):
        models.load_study_weights(small, other)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_compile(optimizer):
    model = models.compile_model(models.build_cnn(21, 64), optimizer, 1e-4)
    assert type(model.optimizer).__name__.lower() == optimizer
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-4)
    x = np.random.default_rng(1).random((4, 64, 64, 3), dtype="float32")
    loss = model.train_on_batch(x, np.array([0, 1, 2, 20]), return_dict=True)
    assert set(loss) >= {"loss", "accuracy"}


def test_compile_rejects_unknown_optimizer():
    with pytest.raises(ValueError, match="optimizer"):
        models.compile_model(models.build_cnn(21, 64), "rmsprop")


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
    hm = models.CellHyperModel(n_classes=21, image_size=64)
    model = hm.build(_hp(dropout=dropout, optimizer=optimizer, learning_rate=lr, batch_size=64))
    assert model.get_layer("dropout").rate == dropout
    assert type(model.optimizer).__name__.lower() == optimizer
    assert float(model.optimizer.learning_rate) == pytest.approx(expected_lr)


def test_hypermodel_without_sgd_rule_keeps_1e5():
    hm = models.CellHyperModel(21, 64, replace_sgd_lr=False)
    model = hm.build(_hp(dropout=0.2, optimizer="sgd", learning_rate=1e-5, batch_size=32))
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-5)


def test_hypermodel_registers_the_studys_space():
    hp = keras_tuner.HyperParameters()
    models.CellHyperModel(21, 64).build(hp)
    space = {p.name: list(p.values) for p in hp.space}
    assert space == {
        "dropout": [0.2, 0.3, 0.4, 0.5],
        "optimizer": ["adam", "sgd"],
        "learning_rate": [1e-3, 1e-4, 1e-5],
        "batch_size": [32, 64, 128],
    }


def test_search_space_matches_the_report():
    space = models.search_space()
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
    best = models.STUDY_BEST
    assert (best["dropout"], best["learning_rate"], best["optimizer"], best["batch_size"]) == (
        float(facts["best_dropout"]),
        float(facts["best_lr"]),
        facts["best_optimizer"],
        int(facts["best_batch_size"]),
    )


class _Recorder(keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        self.batches = batch + 1


def test_hypermodel_fit_honours_batch_size():
    import tensorflow as tf

    rng = np.random.default_rng(2)
    x = rng.random((20, 32, 32, 3), dtype="float32")
    y = rng.integers(0, 3, 20)
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    hm = models.CellHyperModel(n_classes=3, image_size=32)
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
    hm = models.CellHyperModel(n_classes=3, image_size=32)
    hp = _hp(dropout=0.2, optimizer="adam", learning_rate=1e-3, batch_size=8)
    with pytest.raises(ValueError, match="unbatched"):
        hm.fit(hp, hm.build(hp), ds, epochs=1, verbose=0)


def test_artifact_round_trip(tmp_path):
    model = models.compile_model(models.build_cnn(21, 32, dropout=0.4))
    x = np.random.default_rng(3).random((3, 32, 32, 3), dtype="float32")
    model.train_on_batch(x, np.array([0, 5, 9]))  # a trained model, optimizer state included
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
