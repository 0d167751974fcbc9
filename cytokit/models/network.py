"""Matek et al.'s small sequential CNN, built layer for layer as the study's trained models.

Introduced in chapter 02 and trained again in 03 and 04. The study's three published
models load into :func:`build_cnn` unchanged (:func:`load_study_weights`) and predict
identically: the proof that the architecture is the study's.

The network takes uint8 pixels (0-255) and scales them itself, as its first layer
(:data:`PIXEL_SCALE`): batches cross from the input pipeline to the device at a quarter
of float32's bytes, and no float copy of each batch is made on the way (the study scaled
its batches before the model; the layer has no weights). ``dropout=None`` is the baseline,
whose network had no Dropout layer; ``bn_momentum`` below the study's 0.99 lets batch-norm
averages settle in the few steps of a small profile. The softmax layer computes in float32
whatever the global dtype policy (:func:`set_precision`), so probabilities and the loss keep
float32's precision under bfloat16.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras

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
#: The study's preprocessing, pixel/255, done by the network's first layer.
PIXEL_SCALE = 1 / 255
#: Name of that layer.
PIXEL_LAYER = "pixels"
#: Keras dtype policies :func:`set_precision` accepts: float32 (the study's) and bfloat16 for GPUs.
PRECISIONS = ("float32", "mixed_bfloat16")


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
    """The study's CNN layer for layer (its saved models load into it), fed uint8 pixels it scales itself."""
    layers = [keras.Input((image_size, image_size, 3), name="image"),
              keras.layers.Rescaling(PIXEL_SCALE, name=PIXEL_LAYER)]
    for i, (filters, pool) in enumerate(zip(FILTERS, pools_for(image_size)), start=1):
        layers += _conv_block(i, filters, pool, bn_momentum)
    layers += [keras.layers.Flatten(name="flatten"),
               keras.layers.Dense(DENSE_UNITS, activation="relu", name="dense")]
    if dropout is not None:  # the baseline has none
        layers.append(keras.layers.Dropout(dropout, name="dropout"))
    # float32 probabilities and loss whatever the dtype policy (set_precision)
    layers.append(keras.layers.Dense(n_classes, activation="softmax", name="probs", dtype="float32"))
    return keras.Sequential(layers, name=name)


def scales_pixels(model: keras.Model) -> bool:
    """True when ``model``'s first layer is the pixel/255 layer of :func:`build_cnn`."""
    first = model.layers[0] if model.layers else None
    return isinstance(first, keras.layers.Rescaling) and float(first.offset) == 0.0 \
        and abs(float(first.scale) - PIXEL_SCALE) < 1e-12


def with_pixel_scaling(model: keras.Model) -> keras.Model:
    """``model`` fed uint8 pixels: unchanged when it scales them itself, else behind a pixel/255 layer.

    Models saved for inputs in [0, 1] -- the study's ``.keras`` files, runs made before
    the network scaled its own input -- get :func:`build_cnn`'s first layer in front,
    sharing their weights, so every model of a run takes the pipeline's uint8 batches.
    """
    if scales_pixels(model):
        return model
    scale = keras.layers.Rescaling(PIXEL_SCALE, name=PIXEL_LAYER)
    if isinstance(model, keras.Sequential):
        return keras.Sequential([keras.Input(model.input_shape[1:], name="image"), scale, *model.layers],
                                name=model.name)
    inputs = keras.Input(model.input_shape[1:], name="image")
    return keras.Model(inputs, model(scale(inputs)), name=model.name)


def study_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers of the study's own network: ``model``'s, without the pixel/255 layer in front."""
    return list(model.layers[1:] if scales_pixels(model) else model.layers)


def set_precision(policy: str = "float32") -> str:
    """Set Keras' global dtype policy for the networks built afterwards: ``float32`` or ``mixed_bfloat16``.

    bfloat16 halves the bytes of every activation and runs on a GPU's tensor cores;
    variables stay float32 and the softmax layer computes in float32 (:func:`build_cnn`).
    Its effect on accuracy is measured in bench/RESULTS.md.
    """
    if policy not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {policy!r}")
    keras.mixed_precision.set_global_policy(policy)
    return policy


def _optimizer(optimizer: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """The two optimizers of the study's search."""
    if optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate)
    if optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate)
    raise ValueError(f"optimizer must be 'adam' or 'sgd'; got {optimizer!r}")


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
    (the pixel layer, Activation, Dropout) are not compared, so the study's models, which
    took pixels already scaled, fit :func:`build_cnn`, and the tuned model's weights also
    fit a network built without dropout.
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
