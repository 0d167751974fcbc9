"""Grad-CAM heatmaps (Selvaraju et al., 2017) as a second ranking of superpixels.

Chapter 06 uses Grad-CAM as a control for LIME: if another explanation method orders
the same superpixels differently and deletes the prediction faster, LIME's ranking is
not the best available. The heatmap is taken on the last convolutional block (the ReLU
after the last Conv2D of :func:`cytokit.models.network.build_cnn`), whose map is small -- 3x3
at 250 px, 2x2 at 64 px -- so the heatmap is coarse; ``layer_name`` picks an earlier,
finer block (e.g. ``"block3_relu2"``). TensorFlow is imported only when a heatmap is made.
"""

from __future__ import annotations

import numpy as np

from cytokit.progress import bar as progress_bar
from cytokit.xai.explain import image_seed

#: Layers that may follow a Conv2D inside the same block and are still "the conv output".
_BLOCK_TAIL = ("BatchNormalization", "Activation", "ReLU", "LeakyReLU")


def target_layer(model, layer_name: str | None = None) -> str:
    """Name of the layer Grad-CAM reads: ``layer_name``, or the activation after the last Conv2D."""
    names = [layer.name for layer in model.layers]
    if layer_name is not None:
        if layer_name not in names:
            raise ValueError(f"no layer {layer_name!r} in the model (layers: {', '.join(names)})")
        return layer_name
    convs = [i for i, layer in enumerate(model.layers) if type(layer).__name__ == "Conv2D"]
    if not convs:
        raise ValueError("the model has no Conv2D layer for Grad-CAM")
    i = convs[-1]
    while i + 1 < len(model.layers) and type(model.layers[i + 1]).__name__ in _BLOCK_TAIL:
        i += 1
    return names[i]


def _is_softmax_dense(layer) -> bool:
    act = getattr(layer, "activation", None)
    return type(layer).__name__ == "Dense" and getattr(act, "__name__", "") == "softmax"


def cam_model(model, layer_name=None):
    """A functional model image -> (feature map(s), input of the last layer), sharing the weights.

    ``layer_name`` is one layer (the output is ``[feature, penultimate]``) or a list of
    layers (``[feature of each, ..., penultimate]``): one forward pass serves them all. A
    Sequential model has no addressable intermediate tensors once built, so it is re-wired:
    its layers are called again on a new Input. The last layer is left out so that
    :func:`gradcam` can take the class score before the softmax.
    """
    import keras

    names = [target_layer(model, n) for n in ([layer_name] if layer_name is None or isinstance(layer_name, str)
                                              else layer_name)]
    if isinstance(model, keras.Sequential):
        inputs = keras.Input(shape=model.input_shape[1:])
        x, features = inputs, {}
        for layer in model.layers[:-1]:
            x = layer(x)
            if layer.name in names:
                features[layer.name] = x
        return keras.Model(inputs, [features[n] for n in names] + [x])
    return keras.Model(model.inputs, [model.get_layer(n).output for n in names] + [model.layers[-1].input])


def gradcam(model, images_uint8: np.ndarray, class_index, layer_name: str | None = None,
            use_logits: bool = True, cam=None) -> np.ndarray:
    """Grad-CAM heatmap(s) in [0, 1] at the image size for ``class_index``.

    ``images_uint8`` is one uint8 RGB image (H, W, 3) or a batch, as the pipeline reads
    them: the network scales its pixels itself (:func:`cytokit.models.network.build_cnn`).
    ``class_index`` is an int or one per image. The score is the class logit (the last
    Dense layer without its softmax, as in the paper) when ``use_logits`` and the last
    layer is a softmax Dense; otherwise the probability. Each map is divided by its own
    maximum; a map with no positive evidence is all zeros. Pass a prebuilt ``cam``
    (:func:`cam_model`) to avoid re-wiring the model for every batch.
    """
    x = np.asarray(images_uint8)
    single = x.ndim == 3
    cam = cam if cam is not None else cam_model(model, layer_name)
    heat = gradcam_layers(model, x[None] if single else x, class_index, [layer_name], use_logits, cam)[layer_name]
    return heat[0] if single else heat


def gradcam_layers(model, images_uint8: np.ndarray, class_index, layer_names, use_logits: bool = True,
                   cam=None) -> dict:
    """:func:`gradcam` of a batch on each of ``layer_names`` from one forward and one backward pass:
    ``{layer name: (N, H, W) heatmaps}``; ``cam`` is ``cam_model(model, layer_names)`` when given."""
    import tensorflow as tf

    x = np.asarray(images_uint8)
    if x.dtype != np.uint8:
        raise TypeError(f"gradcam takes uint8 images, as the pipeline reads them; got {x.dtype}")
    x = x.astype(np.float32)  # exact: the network's first layer scales 0..255 itself
    names = list(layer_names)
    classes = np.broadcast_to(np.asarray(class_index, dtype=np.int32), (len(x),))
    cam = cam if cam is not None else cam_model(model, names)
    last = model.layers[-1]
    with tf.GradientTape() as tape:
        *features, penultimate = cam(x, training=False)
        if use_logits and _is_softmax_dense(last):
            scores = tf.matmul(penultimate, last.kernel) + last.bias
        else:
            scores = last(penultimate, training=False)
        chosen = tf.gather(scores, classes, axis=1, batch_dims=1)
    grads = tape.gradient(chosen, features)
    out = {}
    for name, feature, grad in zip(names, features, grads):
        weights = tf.reduce_mean(grad, axis=(1, 2), keepdims=True)
        heat = tf.nn.relu(tf.reduce_sum(weights * feature, axis=-1))[..., None]
        heat = tf.image.resize(heat, x.shape[1:3], method="bilinear")[..., 0].numpy()
        peak = heat.reshape(len(x), -1).max(axis=1).reshape(-1, 1, 1)
        out[name] = np.divide(heat, peak, out=np.zeros_like(heat), where=peak > 0).clip(0, 1)
    return out


def rank_by_heat(heatmap: np.ndarray, segments: np.ndarray, seed: int | None = None) -> np.ndarray:
    """Superpixel ids ordered by their mean heat, hottest first.

    Ties go to the smaller id, or, with a ``seed``, to a seeded random order: a map with no
    positive evidence (all zeros, frequent on the coarse last block) then ranks like the
    random control instead of putting the top-left superpixel first.
    """
    segments = np.asarray(segments)
    ids, inverse = np.unique(segments, return_inverse=True)
    inverse = inverse.reshape(-1)
    sums = np.bincount(inverse, weights=np.asarray(heatmap, float).reshape(-1), minlength=len(ids))
    means = sums / np.bincount(inverse, minlength=len(ids))
    if seed is None:
        return ids[np.argsort(-means, kind="stable")]
    return ids[np.lexsort((np.random.default_rng(seed).permutation(len(ids)), -means))]


def heatmaps(model, images_uint8, class_indices, layer_name: str | None = None, batch_size: int = 64,
             progress: bool = False) -> np.ndarray:
    """(N, H, W) Grad-CAM heatmaps of many images, made ``batch_size`` at a time with one re-wired model."""
    return heatmaps_by_layer(model, images_uint8, class_indices, [layer_name], batch_size, progress)[layer_name]


def heatmaps_by_layer(model, images_uint8, class_indices, layer_names, batch_size: int = 64,
                      progress: bool = False) -> dict:
    """``{layer: (N, H, W) heatmaps}`` of many images on several layers, one forward and backward pass per batch
    serving every layer (a pass per layer would cost as many passes as layers)."""
    names = list(layer_names)
    cam = cam_model(model, names)
    classes = np.asarray(class_indices)
    out = {name: [] for name in names}
    for start in progress_bar(range(0, len(images_uint8), batch_size), enabled=progress, desc="Grad-CAM", leave=False):
        stop = min(start + batch_size, len(images_uint8))
        found = gradcam_layers(model, np.stack(images_uint8[start:stop]), classes[start:stop], names, cam=cam)
        for name in names:
            out[name].append(found[name])
    return {name: np.concatenate(h) if h else np.zeros((0, 0, 0), np.float32) for name, h in out.items()}


def rankings(model, images_uint8, segments_list, class_indices, layer_name: str | None = None,
             batch_size: int = 64, progress: bool = True, seed: int | None = None) -> list[np.ndarray]:
    """Grad-CAM superpixel rankings for many images (:func:`heatmaps`, :func:`rank_by_heat`).

    With a ``seed``, image ``i`` breaks ties in the order seeded ``image_seed(seed, i)``.
    """
    heat = heatmaps(model, images_uint8, class_indices, layer_name, batch_size, progress)
    return [rank_by_heat(h, segments_list[i], None if seed is None else image_seed(seed, i))
            for i, h in enumerate(heat)]
