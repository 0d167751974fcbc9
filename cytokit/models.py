"""Matek et al.'s small sequential CNN and the study's Keras Tuner search space.

Introduced in chapter 02 (baseline) and used again in 03 (tuning) and 04
(augmentation). :func:`build_cnn` reproduces the layer order of the study's three
trained models layer for layer, so their weights load into it unchanged
(:func:`load_study_weights`) and give the same predictions; that is the proof that
the architecture is the study's.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import keras
import keras_tuner

#: Pools of the study at 250 px: 250 -> 62 -> 15 -> 3 -> 1.
STUDY_POOLS = (4, 4, 4, 3)
#: Smallest image side :func:`pools_for` accepts.
MIN_IMAGE_SIZE = 32
#: Pool sets tried by :func:`pools_for`, most study-like first.
POOL_CANDIDATES = (
    STUDY_POOLS,
    (4, 4, 3, 3),
    (4, 4, 2, 3),
    (4, 4, 2, 2),
    (4, 3, 2, 2),
    (4, 2, 2, 2),
    (3, 2, 2, 2),
    (2, 2, 2, 2),
)
#: Filters of the four conv blocks (two 3x3 convs each).
FILTERS = (8, 16, 32, 64)
#: Blocks whose second conv is followed by BatchNorm (1-based, as in the study's models).
BN_AFTER_SECOND_CONV = (3, 4)
DENSE_UNITS = 256

#: The study's random-search space (report Table 4.6.1.1, training_facts.csv).
DROPOUT_CHOICES = (0.2, 0.3, 0.4, 0.5)
OPTIMIZER_CHOICES = ("adam", "sgd")
LEARNING_RATE_CHOICES = (1e-3, 1e-4, 1e-5)
BATCH_SIZE_CHOICES = (32, 64, 128)
#: The report's rule: with SGD a sampled learning rate of 1e-5 is trained at 1e-4.
SGD_LEARNING_RATE_REPLACEMENT = {1e-5: 1e-4}
#: The search's best trial (trial 07, val accuracy 0.7756), used for the tuned and augmented models.
STUDY_BEST = {"dropout": 0.4, "learning_rate": 1e-3, "optimizer": "adam", "batch_size": 128}


def _final_side(image_size: int, pools) -> int:
    """Side of the last feature map: 'same' convs keep the size, 'valid' pools floor it."""
    side = image_size
    for p in pools:
        side //= p
    return side


def pools_for(image_size: int) -> tuple[int, int, int, int]:
    """Max-pool sizes that keep the CNN valid and cheap at ``image_size``.

    Rule: among :data:`POOL_CANDIDATES` keep those whose last feature map is at least
    1x1, and take the one with the smallest last map, ties going to the earlier (more
    study-like) candidate. At 250 px this is the study's (4, 4, 4, 3) (map 1x1x64,
    96,509 parameters with 21 classes); 64 px gives (4, 4, 2, 2) and 96 or 128 px
    (4, 4, 2, 3). Every size from 32 to 383 px ends in a 1x1x64 map, so the parameter
    count stays the study's; larger sizes keep the study's pools and their map (and the
    first Dense layer) grows.
    """
    if int(image_size) != image_size or image_size < MIN_IMAGE_SIZE:
        raise ValueError(
            f"image_size must be an integer >= {MIN_IMAGE_SIZE} px for the four pooling "
            f"stages of the CNN; got {image_size!r}"
        )
    valid = [p for p in POOL_CANDIDATES if _final_side(image_size, p) >= 1]
    return min(valid, key=lambda p: _final_side(image_size, p))


#: Keras' default, the study's: moving averages over roughly the last 100 steps.
STUDY_BN_MOMENTUM = 0.99


def _conv_block(index: int, filters: int, pool: int, bn_momentum: float) -> list[keras.layers.Layer]:
    """One block as the study built it: Conv-BN-ReLU, Conv-[BN]-ReLU, MaxPool."""
    b = f"block{index}"
    layers = [
        keras.layers.Conv2D(filters, 3, padding="same", name=f"{b}_conv1"),
        keras.layers.BatchNormalization(momentum=bn_momentum, name=f"{b}_bn1"),
        keras.layers.Activation("relu", name=f"{b}_relu1"),
        keras.layers.Conv2D(filters, 3, padding="same", name=f"{b}_conv2"),
    ]
    if index in BN_AFTER_SECOND_CONV:
        layers.append(keras.layers.BatchNormalization(momentum=bn_momentum, name=f"{b}_bn2"))
    layers += [
        keras.layers.Activation("relu", name=f"{b}_relu2"),
        keras.layers.MaxPooling2D(pool, name=f"{b}_pool"),
    ]
    return layers


def build_cnn(
    n_classes: int = 21,
    image_size: int = 250,
    dropout: float | None = None,
    name: str = "matek_cnn",
    bn_momentum: float = STUDY_BN_MOMENTUM,
) -> keras.Sequential:
    """The study's sequential CNN for RGB images scaled to [0, 1].

    Layer order read from the study's saved models: each block is Conv2D 3x3 'same'
    (linear) -> BatchNorm -> ReLU -> Conv2D -> [BatchNorm, blocks 3 and 4 only] ->
    ReLU -> MaxPool, ReLU being a separate Activation layer after BatchNorm; then
    Flatten -> Dense 256 ReLU -> [Dropout] -> Dense softmax. ``dropout=None`` gives
    the baseline (no Dropout layer, as the study's first model); the tuned and
    augmented models used 0.4.

    ``bn_momentum`` only matters in training: batch normalisation's moving averages
    (used at inference) need a few hundred steps to settle at the study's 0.99, which
    the study's ~2,600 steps per epoch gave at once. Runs with a few dozen steps per
    epoch need a smaller momentum (0.9) or their validation predictions collapse onto
    one class while the training accuracy climbs.
    """
    layers: list[keras.layers.Layer] = [keras.Input((image_size, image_size, 3), name="image")]
    for i, (filters, pool) in enumerate(zip(FILTERS, pools_for(image_size)), start=1):
        layers += _conv_block(i, filters, pool, bn_momentum)
    layers += [
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(DENSE_UNITS, activation="relu", name="dense"),
    ]
    if dropout is not None:
        layers.append(keras.layers.Dropout(dropout, name="dropout"))
    layers.append(keras.layers.Dense(n_classes, activation="softmax", name="probs"))
    return keras.Sequential(layers, name=name)


def _optimizer(optimizer: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """The two optimizers of the study's search."""
    if optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate)
    if optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate)
    raise ValueError(f"optimizer must be one of {OPTIMIZER_CHOICES}; got {optimizer!r}")


def compile_model(model: keras.Model, optimizer: str = "adam", learning_rate: float = 1e-3) -> keras.Model:
    """Compile as the study did: integer labels, cross-entropy, accuracy."""
    model.compile(
        optimizer=_optimizer(optimizer, learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def param_count(model: keras.Model) -> int:
    """All parameters, trainable or not (the study's 96,509 counts BN statistics too)."""
    return int(model.count_params())


def _weighted_layers(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if layer.weights]


def load_study_weights(model: keras.Model, path: str | os.PathLike | keras.Model) -> keras.Model:
    """Copy a study ``.keras`` model's weights into ``model``, layer by layer.

    Layers with weights are paired in order; their types and weight shapes must agree
    (a clear ``ValueError`` names the first mismatch). Layers without weights
    (Activation, Dropout) are not compared, so the tuned model's weights also fit a
    network built without dropout.
    """
    source = path if isinstance(path, keras.Model) else keras.saving.load_model(Path(path), compile=False)
    src, dst = _weighted_layers(source), _weighted_layers(model)
    if len(src) != len(dst):
        raise ValueError(f"the study model has {len(src)} layers with weights, this network {len(dst)}")
    for i, (s, d) in enumerate(zip(src, dst)):
        s_shapes = [tuple(w.shape) for w in s.weights]
        d_shapes = [tuple(w.shape) for w in d.weights]
        if type(s) is not type(d) or s_shapes != d_shapes:
            raise ValueError(
                f"weighted layer {i} differs: study {type(s).__name__} {s.name} {s_shapes} "
                f"vs {type(d).__name__} {d.name} {d_shapes}"
            )
    for s, d in zip(src, dst):
        d.set_weights(s.get_weights())
    return model


def effective_learning_rate(optimizer: str, learning_rate: float, replace_sgd_lr: bool = True) -> float:
    """The rate a trial trains at: SGD's 1e-5 becomes 1e-4 under the report's rule."""
    if optimizer == "sgd" and replace_sgd_lr:
        return SGD_LEARNING_RATE_REPLACEMENT.get(learning_rate, learning_rate)
    return learning_rate


def search_space(replace_sgd_lr: bool = True) -> dict:
    """The study's search space as plain data, for the book's table."""
    lrs = list(LEARNING_RATE_CHOICES)
    sgd = sorted({effective_learning_rate("sgd", lr, replace_sgd_lr) for lr in lrs}, reverse=True)
    return {
        "dropout": list(DROPOUT_CHOICES),
        "optimizer": list(OPTIMIZER_CHOICES),
        "learning_rate": {"adam": lrs, "sgd": sgd},
        "batch_size": list(BATCH_SIZE_CHOICES),
    }


def _unbatched_dataset(x) -> bool:
    """True for a tf.data.Dataset whose first element part is one image (rank 3).

    TensorFlow is looked up, not imported: without it loaded there can be no such
    dataset, and the network itself then runs on any Keras backend (the GPU benchmark
    uses JAX).
    """
    tf = sys.modules.get("tensorflow")
    if tf is None or not isinstance(x, tf.data.Dataset):
        return False
    return tf.nest.flatten(x.element_spec)[0].shape.rank == 3


class CellHyperModel(keras_tuner.HyperModel):
    """The study's tuner model: dropout, optimizer, learning rate and batch size.

    ``learning_rate`` is one Choice over (1e-3, 1e-4, 1e-5) for both optimizers; with
    SGD, 1e-5 trains at 1e-4 (the report's rule, Table 4.6.1.1), so SGD's effective
    space is {1e-3, 1e-4}. The study's published trials show SGD runs at 1e-5 all
    the same; ``replace_sgd_lr=False`` reproduces those. The study's tuner called the
    dropout hyperparameter ``dropout_rate`` (its trials table); here it is ``dropout``.

    ``fit`` honours the ``batch_size`` hyperparameter for numpy arrays and for
    *unbatched* ``tf.data.Dataset`` objects of (image, label), which it batches
    (validation data too, when it is an unbatched dataset).
    """

    def __init__(self, n_classes: int = 21, image_size: int = 250, replace_sgd_lr: bool = True,
                 bn_momentum: float = STUDY_BN_MOMENTUM, **kwargs):
        super().__init__(**kwargs)
        self.n_classes = n_classes
        self.image_size = image_size
        self.replace_sgd_lr = replace_sgd_lr
        self.bn_momentum = bn_momentum

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        dropout = hp.Choice("dropout", list(DROPOUT_CHOICES))
        optimizer = hp.Choice("optimizer", list(OPTIMIZER_CHOICES))
        lr = hp.Choice("learning_rate", list(LEARNING_RATE_CHOICES))
        hp.Choice("batch_size", list(BATCH_SIZE_CHOICES))
        model = build_cnn(self.n_classes, self.image_size, dropout=dropout, bn_momentum=self.bn_momentum)
        return compile_model(model, optimizer, effective_learning_rate(optimizer, lr, self.replace_sgd_lr))

    def fit(self, hp, model, x, y=None, validation_data=None, **kwargs):
        """Train with the trial's batch size, which Keras Tuner would otherwise ignore."""
        batch_size = hp.get("batch_size")
        tf = sys.modules.get("tensorflow")
        if _unbatched_dataset(x):
            x = x.batch(batch_size).prefetch(tf.data.AUTOTUNE)
        elif tf is not None and isinstance(x, tf.data.Dataset):
            raise ValueError(
                "pass an unbatched tf.data.Dataset of (image, label) so the trial's "
                f"batch_size applies; got elements {x.element_spec}"
            )
        else:
            kwargs["batch_size"] = batch_size
        if tf is not None and isinstance(x, tf.data.Dataset):
            kwargs.setdefault("shuffle", False)  # the dataset shuffles itself; Keras would warn
        if _unbatched_dataset(validation_data):
            validation_data = validation_data.batch(batch_size).prefetch(tf.data.AUTOTUNE)
        return model.fit(x, y, validation_data=validation_data, **kwargs)
