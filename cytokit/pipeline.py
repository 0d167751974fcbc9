"""tf.data input pipeline fed from a split manifest (never from folder moves).

The study loaded images with ``image_dataset_from_directory`` from folders it had
rearranged on disk. Here the rows of one split of the manifest are read in place:
decoded by content (a PNG named ``.jpg``, grayscale, RGBA and CMYK images all become
8-bit RGB), resized to ``image_size`` only when needed, and scaled to [0, 1] as
``pixel / 255`` -- the study's preprocessing. JPEGs are decoded with libjpeg's
accurate integer DCT, so at full size pixels equal ``cv2.imread`` / Pillow's exactly
(TensorFlow's default fast DCT differs by up to ~20 grey levels); a JPEG read at a
half, quarter or eighth of its size is scaled down inside the decoder first. Formats
TensorFlow cannot decode (TIFF ...) go through Pillow. Introduced in chapter 02 (baseline).
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from cytokit import data as _data
from cytokit.validation import decode_rgb

AUTOTUNE = tf.data.AUTOTUNE
# Formats tf.io.decode_image handles natively (besides JPEG, decoded separately).
_NATIVE_MAGIC = (b"\x89PNG", b"GIF8", b"BM")


def _note_read(split) -> None:
    """Append the split to ``$CYTOKIT_SPLIT_LOG``: the runner's record of who read what.

    The book promises that nothing before chapter 05 looks at the test split; the
    runner gives each chapter its own log file so a test can check that promise.
    """
    log = os.environ.get("CYTOKIT_SPLIT_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"{split if split is not None else 'all'}\n")


def rows(manifest, split):
    """Usable manifest rows of one split (``split=None``: every usable row), in manifest order."""
    _note_read(split)
    usable = manifest["status"].ne("bad") if "status" in manifest else np.ones(len(manifest), bool)
    if split is None:
        return manifest[usable]
    if "split" not in manifest:
        raise ValueError("the manifest has no 'split' column: run cytokit.data.split first, "
                         "or pass split=None")
    chosen = manifest[usable & manifest["split"].eq(split)]
    if chosen.empty:
        found = sorted(set(manifest["split"]))
        raise ValueError(f"no usable images in split {split!r} (the manifest has {', '.join(found)})")
    return chosen


def labels(manifest, split, class_names=None) -> np.ndarray:
    """int32 class indices of a split, in the order :func:`dataset` yields with shuffle=False."""
    names = list(class_names) if class_names is not None else _data.class_names(manifest)
    lookup = {c: i for i, c in enumerate(names)}
    chosen = rows(manifest, split)
    unknown = sorted(set(chosen["cls"]) - set(lookup))
    if unknown:
        raise ValueError(f"classes {unknown} are not in class_names ({', '.join(names)})")
    return np.array([lookup[c] for c in chosen["cls"]], dtype=np.int32)


def dataset(manifest, data_dir, split, image_size: int, batch_size: int, class_names=None,
            shuffle: bool = False, seed: int = 0, cache=False, repeat: bool = False) -> tf.data.Dataset:
    """Batches of (images float32 [0,1] of image_size x image_size x 3, int32 labels) for a split.

    ``split`` is "train", "val", "test" or None (every usable row, e.g. to predict a whole
    dataset); bad rows are never fed. ``cache`` is True (in memory) or a file path prefix; the order is deterministic when
    ``shuffle`` is False, and reproducible for a given ``seed`` when it is True.
    """
    y = labels(manifest, split, class_names)
    chosen = rows(manifest, split)
    files = [os.path.join(str(data_dir), p) for p in chosen["path"]]
    load = loader(chosen, image_size)
    ds = tf.data.Dataset.from_tensor_slices((files, y))
    if shuffle and not cache:  # shuffling file names is cheap: the whole split is the buffer
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda f, label: (load(f), label), num_parallel_calls=AUTOTUNE, deterministic=True)
    if cache:
        ds = ds.cache("" if cache is True else str(cache))
        if shuffle:
            ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds.batch(batch_size).prefetch(AUTOTUNE)


def load_image(path, image_size: int) -> tf.Tensor:
    """Read, decode and scale one image file to float32 [0, 1], image_size x image_size x 3."""
    return to_model_input(decode(tf.io.read_file(path), image_size), image_size)


def loader(chosen, image_size: int):
    """``path -> model input`` for the files of ``chosen`` manifest rows.

    When the manifest says every file is a JPEG of one size (the real dataset: 250 x 250),
    the decode scale and the resize are fixed once, with no per-image branching
    (bench/pipeline.py measures the difference); the pixels equal :func:`load_image`'s. Otherwise
    each file is dispatched on its content by :func:`load_image`.
    """
    shape = uniform_jpeg_shape(chosen)
    if shape is None:
        return lambda path: load_image(path, image_size)
    ratio = JPEG_SCALES[scale_index_for(min(shape), image_size)]
    decoded = tuple(-(-side // ratio) for side in shape)

    def load(path):
        img = _decode_jpeg(tf.io.read_file(path), ratio)
        img.set_shape([*decoded, 3])
        return to_model_input(img, image_size)
    return load


def uniform_jpeg_shape(chosen) -> tuple[int, int] | None:
    """(height, width) when the manifest rows are all JPEGs of one size, else None."""
    if chosen.empty or not {"format", "width", "height"} <= set(chosen.columns):
        return None
    if set(chosen["format"]) != {"JPEG"}:
        return None
    shapes = set(zip(chosen["height"].astype(int), chosen["width"].astype(int)))
    return shapes.pop() if len(shapes) == 1 else None


def decode(raw, image_size: int | None = None) -> tf.Tensor:
    """uint8 RGB (H, W, 3) from encoded bytes, dispatching on the content, not the file name.

    With ``image_size``, a JPEG is decoded straight at the smallest of libjpeg's
    1/2, 1/4, 1/8 scales that still covers ``image_size`` on its shorter side (or at
    full size): the scaled inverse DCT is itself a low-pass downscale, and a 250 px
    cell read at 64 px costs about a quarter of a full decode.
    """
    is_jpeg = tf.equal(tf.strings.substr(raw, 0, 3), b"\xff\xd8\xff")

    def jpeg():
        if image_size is None:
            return _decode_jpeg(raw, 1)
        return tf.switch_case(jpeg_scale_index(tf.image.extract_jpeg_shape(raw), image_size),
                              [lambda r=r: _decode_jpeg(raw, r) for r in JPEG_SCALES])

    def other():  # the magic-number tests run only for the rare non-JPEG file
        native = tf.reduce_any([tf.equal(tf.strings.substr(raw, 0, len(m)), m) for m in _NATIVE_MAGIC])
        native = native | _is_webp(raw)
        return tf.cond(native, lambda: tf.io.decode_image(raw, channels=3, expand_animations=False,
                                                          dtype=tf.uint8),
                       lambda: _decode_with_pillow(raw))

    img = tf.cond(is_jpeg, jpeg, other)
    img.set_shape([None, None, 3])
    return img


#: libjpeg's decode-time downscaling ratios, as ``tf.io.decode_jpeg(ratio=...)`` takes them.
JPEG_SCALES = (1, 2, 4, 8)


def scale_index_for(short_side, image_size: int):
    """Index into :data:`JPEG_SCALES` of the largest ratio whose output covers ``image_size``.

    libjpeg writes ``ceil(side / ratio)`` pixels per side; the shorter side decides.
    Works on Python ints and on tensors alike.
    """
    covers = [(short_side + r - 1) // r >= image_size for r in JPEG_SCALES[1:]]
    return sum(covers) if isinstance(short_side, int) else tf.add_n([tf.cast(c, tf.int32) for c in covers])


def jpeg_scale_index(shape, image_size: int) -> tf.Tensor:
    """:func:`scale_index_for` the shorter side of a JPEG header's (height, width, channels)."""
    return scale_index_for(tf.minimum(shape[0], shape[1]), image_size)


def _decode_jpeg(raw, ratio: int):
    return tf.io.decode_jpeg(raw, channels=3, dct_method="INTEGER_ACCURATE", ratio=ratio)


def _is_webp(raw):
    return tf.equal(tf.strings.substr(raw, 0, 4), b"RIFF") & tf.equal(tf.strings.substr(raw, 8, 4), b"WEBP")


def _decode_with_pillow(raw):
    img = tf.numpy_function(lambda b: decode_rgb(bytes(b)), [raw], tf.uint8, stateful=False)
    img.set_shape([None, None, 3])
    return img


def to_model_input(img, image_size: int) -> tf.Tensor:
    """float32 pixel/255 of image_size x image_size, resized only if the size differs.

    Shrinking averages the covered pixels (``area``, OpenCV's ``INTER_AREA``: no
    aliasing, and cheaper than an antialiased bilinear resize);
    enlarging, or a mixed change, is bilinear and antialiased. A uint8 image already
    at ``image_size`` skips the clip: pixel/255 of 0..255 is in [0, 1] exactly, so the
    result is bit-identical, one pass over the image cheaper. When the image's size is
    known while tracing (:func:`loader`), no branch is built at all.
    """
    img = tf.convert_to_tensor(img)
    x = tf.cast(img, tf.float32)
    target = [image_size, image_size]

    def native():
        return x / 255.0 if img.dtype == tf.uint8 else _unit(x)

    def shrunk():
        return _unit(tf.image.resize(x, target, method="area"))

    def resized():
        return _unit(tf.image.resize(x, target, method="bilinear", antialias=True))

    h, w = img.shape[0], img.shape[1]
    if h is not None and w is not None:  # static: choose now
        out = native() if (h, w) == (image_size, image_size) else \
            shrunk() if min(h, w) >= image_size else resized()
    else:
        shape = tf.shape(x)
        same = tf.logical_and(tf.equal(shape[0], image_size), tf.equal(shape[1], image_size))
        shrink = tf.reduce_min(shape[:2]) >= image_size
        out = tf.cond(same, native, lambda: tf.cond(shrink, shrunk, resized))
    out.set_shape([image_size, image_size, 3])
    return out


def _unit(x):
    return tf.clip_by_value(x / 255.0, 0.0, 1.0)


def load_images(manifest, data_dir, split, image_size: int, batch_size: int = 64) -> np.ndarray:
    """All images of a (small) split as one float32 array in [0, 1], in manifest order."""
    ds = dataset(manifest, data_dir, split, image_size, batch_size)
    return np.concatenate([x.numpy() for x, _ in ds], axis=0)
