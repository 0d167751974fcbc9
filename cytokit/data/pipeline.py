"""tf.data batches of one split of the manifest, read in place (never from moved folders), as uint8 pixels.

Images are decoded by content (a PNG named ``.jpg``, grayscale, RGBA, CMYK: all become
8-bit RGB): JPEGs by TensorFlow, every other format by the Pillow code validation checks
them with, so an image validation calls usable has the same pixels here; they are resized
only when needed; they stay uint8 up to the model, whose first
layer applies the study's ``pixel / 255`` (:func:`cytokit.models.network.build_cnn`): a
batch is a quarter of float32's bytes and no float pass over it is made here. JPEGs use
libjpeg's accurate integer DCT, so full-size pixels equal ``cv2.imread``'s; read at a
half, quarter or eighth, they are scaled inside the decoder. With ``cache`` the decoded
images are kept after one pass, in memory or in a file (:mod:`cytokit.data.image_cache`).
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from cytokit.data import image_cache
from cytokit.data.manifest import labels, rows
from cytokit.data.validation import decode_rgb

AUTOTUNE = tf.data.AUTOTUNE


def dataset(manifest, data_dir, split, image_size: int, batch_size: int, class_names=None,
            shuffle: bool = False, seed: int = 0, cache=False, repeat: bool = False,
            cache_dir=None) -> tf.data.Dataset:
    """Batches of (uint8 images of image_size x image_size x 3, int32 labels) for a split.

    ``split`` is "train", "val", "test" or None (every usable row, e.g. to predict a whole
    dataset); bad rows are never fed. ``cache`` is ``cache_images``
    (:func:`cytokit.data.image_cache.mode`): the split is decoded once, into memory or a
    file in ``cache_dir``, and every epoch reads it from there. The order is deterministic
    when ``shuffle`` is False, and reproducible for a given ``seed`` when it is True.
    """
    y = labels(manifest, split, class_names)
    chosen = rows(manifest, split)
    if image_cache.mode(cache) is not None:
        images = decoded(manifest, data_dir, split, image_size, cache, cache_dir)
        ds = tf.data.Dataset.from_tensor_slices((np.arange(len(chosen)), y))
        if shuffle:
            ds = ds.shuffle(len(chosen), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        ds = ds.batch(batch_size).map(lambda i, label: (gather(images, i), label),
                                      num_parallel_calls=AUTOTUNE, deterministic=True)
        return ds.prefetch(AUTOTUNE)
    files = [os.path.join(str(data_dir), p) for p in chosen["path"]]
    load = loader(chosen, image_size)
    ds = tf.data.Dataset.from_tensor_slices((files, y))
    if shuffle:  # shuffling file names is cheap: the whole split is the buffer
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda f, label: (load(f), label), num_parallel_calls=AUTOTUNE, deterministic=True)
    if repeat:
        ds = ds.repeat()
    return ds.batch(batch_size).prefetch(AUTOTUNE)


def decoded(manifest, data_dir, split, image_size: int, cache=True, cache_dir=None) -> np.ndarray:
    """Every image of a split, uint8 (n, size, size, 3) in manifest order, decoded once and kept.

    ``cache`` decides where (:func:`cytokit.data.image_cache.choose`): an array in memory,
    or a read-only memory map of a file in the cache folder, reused when another call
    (another chapter, a parallel worker, a later run) asks for the same images.
    """
    chosen = rows(manifest, split)
    shape = (len(chosen), image_size, image_size, 3)

    def fill(out):
        at = 0
        for x in dataset(manifest, data_dir, split, image_size, 64).map(lambda x, _: x).as_numpy_iterator():
            out[at:at + len(x)] = x
            at += len(x)
        if at != len(out):
            raise RuntimeError(f"decoded {at} images of split {split!r}, expected {len(out)}")

    if image_cache.choose(cache, len(chosen), image_size) == "memory":
        return image_cache.in_memory(shape, fill)
    digest = image_cache.key(_content_ids(chosen, data_dir), image_size)
    where = image_cache.path_for(image_cache.folder(cache, cache_dir), split, image_size, len(chosen), digest)
    return image_cache.on_disk(where, shape, fill)


def _content_ids(chosen, data_dir):
    """(path, content id) per row: the manifest's SHA-1 of the bytes, else size and modification time."""
    if "sha1" in chosen.columns and chosen["sha1"].astype(str).str.fullmatch(r"[0-9a-f]{40}").all():
        return zip(chosen["path"], chosen["sha1"])
    stats = (os.stat(os.path.join(str(data_dir), p)) for p in chosen["path"])
    return zip(chosen["path"], (f"{st.st_size}:{st.st_mtime_ns}" for st in stats))


def gather(images: np.ndarray, index) -> tf.Tensor:
    """The uint8 images at ``index`` (a batch of row numbers) of a decoded split, inside tf.data."""
    out = tf.numpy_function(lambda i: images[np.asarray(i)], [index], tf.uint8, stateful=False)
    out.set_shape([None, *images.shape[1:]])
    return out


def load_image(path, image_size: int) -> tf.Tensor:
    """Read and decode one image file to uint8 RGB, image_size x image_size x 3 (resized if needed)."""
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

    img = tf.cond(is_jpeg, jpeg, lambda: _decode_with_pillow(raw))
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


def _decode_with_pillow(raw):
    """Every format but JPEG, decoded by :func:`cytokit.data.validation.decode_rgb`: the pixels validation checked.

    TensorFlow's own BMP, GIF and WebP decoders disagree with Pillow (palette BMPs come out
    as other colours, 1-bit BMPs and animated WebPs fail), so validation and training read
    such files with one decoder.
    """
    img = tf.numpy_function(lambda b: decode_rgb(_as_bytes(b)), [raw], tf.uint8, stateful=False)
    img.set_shape([None, None, 3])
    return img


def _as_bytes(value) -> bytes:
    """A string tensor's value as numpy_function hands it over: bytes in a graph, a 0-d array when eager."""
    if isinstance(value, np.ndarray):
        value = value.item()
    return bytes(value)


def to_model_input(img, image_size: int) -> tf.Tensor:
    """uint8 image_size x image_size x 3, resized only if the size differs.

    A uint8 image already at ``image_size`` passes through untouched: at the dataset's own
    size the pipeline only decodes. Shrinking averages the covered pixels (``area``,
    OpenCV's ``INTER_AREA``: no aliasing, and cheaper than an antialiased bilinear
    resize); enlarging, or a mixed change, is bilinear and antialiased; a resized image
    (or a float one, on the 0-255 scale) is rounded to the nearest grey level. When the
    image's size is known while tracing (:func:`loader`), no branch is built at all.
    """
    img = tf.convert_to_tensor(img)
    target = [image_size, image_size]

    def native():
        return img if img.dtype == tf.uint8 else _to_uint8(tf.cast(img, tf.float32))

    def shrunk():
        return _to_uint8(tf.image.resize(tf.cast(img, tf.float32), target, method="area"))

    def resized():
        return _to_uint8(tf.image.resize(tf.cast(img, tf.float32), target, method="bilinear", antialias=True))

    h, w = img.shape[0], img.shape[1]
    if h is not None and w is not None:  # static: choose now
        out = native() if (h, w) == (image_size, image_size) else \
            shrunk() if min(h, w) >= image_size else resized()
    else:
        shape = tf.shape(img)
        same = tf.logical_and(tf.equal(shape[0], image_size), tf.equal(shape[1], image_size))
        shrink = tf.reduce_min(shape[:2]) >= image_size
        out = tf.cond(same, native, lambda: tf.cond(shrink, shrunk, resized))
    out.set_shape([image_size, image_size, 3])
    return out


def _to_uint8(x):
    """Float pixels on the 0-255 scale to uint8: rounded to the nearest level, clipped to 0..255."""
    return tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)


def load_images(manifest, data_dir, split, image_size: int, batch_size: int = 256) -> np.ndarray:
    """The usable images of a (small) split, or of all the rows given with ``split=None``, as one uint8
    array (n, size, size, 3), in the rows' order."""
    ds = dataset(manifest, data_dir, split, image_size, batch_size)
    return np.concatenate([x.numpy() for x, _ in ds], axis=0)
