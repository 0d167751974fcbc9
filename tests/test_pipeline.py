"""The tf.data pipeline: shapes, uint8 pixels, label order, odd files, bad rows left out, decoded-image caches."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

tf = pytest.importorskip("tensorflow")

from cytokit import data  # noqa: E402
from cytokit.data import pipeline  # noqa: E402
from cytokit.data.taxonomy import CODES  # noqa: E402

RNG = np.random.default_rng(2)


def save(path, img, mode="RGB", fmt="JPEG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).convert(mode).save(path, format=fmt)


def rgb(h=250, w=250):
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Three classes of plain JPEGs, plus one odd file of each kind in EOS."""
    root = tmp_path_factory.mktemp("ds")
    for cls, n in {"BLA": 12, "NGS": 9, "PMO": 5}.items():
        for i in range(n):
            save(root / cls / "0001-1000" / f"{cls}_{i:05d}.jpg", rgb())
    odd = root / "EOS"
    save(odd / "EOS_00001.jpg", rgb(), fmt="PNG")           # PNG named .jpg
    save(odd / "EOS_00002.jpg", rgb(), mode="L")            # grayscale JPEG
    save(odd / "EOS_00003.png", rgb(), mode="RGBA", fmt="PNG")
    save(odd / "EOS_00004.jpg", rgb(), mode="CMYK")
    save(odd / "EOS_00005.jpg", rgb(180, 200))              # wrong size
    save(odd / "EOS_00006.tif", rgb(), fmt="TIFF")          # not decodable by TensorFlow
    save(odd / "EOS_00007.jpg", rgb())
    cut = odd / "EOS_00007.jpg"
    cut.write_bytes(cut.read_bytes()[:1000])                # truncated: must be left out
    (odd / "EOS_00008.jpg").write_bytes(b"")
    return root


@pytest.fixture(scope="module")
def manifest(tree):
    return data.build_manifest(tree, seed=0, progress=False)


def batches(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


def test_shapes_dtypes_range_and_label_order(tree, manifest):
    ds = pipeline.dataset(manifest, tree, "train", image_size=64, batch_size=4)
    assert ds.element_spec[0].shape.as_list() == [None, 64, 64, 3]
    assert ds.element_spec[0].dtype == tf.uint8
    x, y = batches(ds)
    assert x.dtype == np.uint8 and y.dtype == np.int32
    assert x.std() > 1
    np.testing.assert_array_equal(y, data.labels(manifest, "train", list(CODES)))
    expected = [CODES.index(c) for c in manifest.loc[manifest["split"] == "train", "cls"]]
    np.testing.assert_array_equal(y, expected)


def test_images_at_native_size_are_cv2_imreads_pixels(tree, manifest):
    x = pipeline.load_images(manifest, tree, "test", image_size=250)
    assert x.dtype == np.uint8
    paths = data.rows(manifest, "test")["path"]
    compared = 0
    for img, p in zip(x, paths):
        if not p.startswith("EOS"):
            np.testing.assert_array_equal(img, cv2.cvtColor(cv2.imread(str(tree / p)), cv2.COLOR_BGR2RGB))
            compared += 1
    assert compared >= 5


def test_odd_files_come_out_as_rgb_and_bad_files_are_left_out(tree, manifest):
    x, y = batches(pipeline.dataset(manifest, tree, None, image_size=250, batch_size=8))
    usable = manifest[manifest["status"] != "bad"]
    assert len(x) == len(usable) == len(manifest) - 2
    assert x.shape[1:] == (250, 250, 3)
    by_name = dict(zip(usable["path"].str.rsplit("/", n=1).str[1], x))
    for name in ("EOS_00001.jpg", "EOS_00003.png", "EOS_00006.tif"):  # lossless: exact
        expected = np.asarray(Image.open(tree / "EOS" / name).convert("RGB"))
        np.testing.assert_array_equal(by_name[name], expected)
    grey = by_name["EOS_00002.jpg"]
    np.testing.assert_array_equal(grey[..., 0], grey[..., 1])
    np.testing.assert_array_equal(grey[..., 0], np.asarray(Image.open(tree / "EOS" / "EOS_00002.jpg")))
    cmyk = by_name["EOS_00004.jpg"].astype(float)
    pil = np.asarray(Image.open(tree / "EOS" / "EOS_00004.jpg").convert("RGB")).astype(float)
    assert np.abs(cmyk - pil).mean() < 2


def test_wrong_size_is_resized_both_ways(tree, manifest):
    one = manifest[manifest["path"].str.endswith("EOS_00005.jpg")]
    for size in (64, 250):
        x, _ = batches(pipeline.dataset(one, tree, None, image_size=size, batch_size=1))
        assert x.shape == (1, size, size, 3) and x.dtype == np.uint8 and x.std() > 1


def test_shuffle_is_seeded_and_keeps_pairs(tree, manifest):
    plain = batches(pipeline.dataset(manifest, tree, "train", 32, 5))
    a = batches(pipeline.dataset(manifest, tree, "train", 32, 5, shuffle=True, seed=7))
    b = batches(pipeline.dataset(manifest, tree, "train", 32, 5, shuffle=True, seed=7, cache=True))
    again = batches(pipeline.dataset(manifest, tree, "train", 32, 5, shuffle=True, seed=7))
    np.testing.assert_array_equal(a[0], again[0])
    assert sorted(a[1].tolist()) == sorted(plain[1].tolist()) == sorted(b[1].tolist())
    assert a[1].tolist() != plain[1].tolist()
    # every image still carries its own label: match each shuffled image to the unshuffled one
    for img, label in zip(a[0], a[1]):
        match = np.flatnonzero(np.all(plain[0] == img, axis=(1, 2, 3)))
        assert plain[1][match[0]] == label


def test_repeat_and_cache(tree, manifest):
    n = len(data.rows(manifest, "val"))
    ds = pipeline.dataset(manifest, tree, "val", 32, 2, cache=True, repeat=True)
    assert sum(int(x.shape[0]) for x, _ in ds.take(n + 1)) > n


def test_custom_class_names_and_errors(tree, manifest):
    y = data.labels(manifest, "train", ["PMO", "NGS", "BLA", "EOS"])
    expected = manifest.loc[manifest["split"] == "train", "cls"].map({"PMO": 0, "NGS": 1, "BLA": 2, "EOS": 3})
    np.testing.assert_array_equal(y, expected.to_numpy())
    with pytest.raises(ValueError, match="not in class_names"):
        data.labels(manifest, "train", ["BLA"])
    with pytest.raises(ValueError, match="no usable images in split 'tset'"):
        pipeline.dataset(manifest, tree, "tset", 32, 2)


def _resized(img, size):
    """resize-if-needed(float(img)) on the 0-255 scale: area averaging to shrink, antialiased bilinear otherwise."""
    x = tf.cast(img, tf.float32)
    if min(x.shape[:2]) >= size and x.shape[:2] != (size, size):
        x = tf.image.resize(x, [size, size], method="area")
    elif x.shape[:2] != (size, size):
        x = tf.image.resize(x, [size, size], method="bilinear", antialias=True)
    return x.numpy()


def _plain_model_input(img, size):
    """The pipeline's formula without any shortcut: the resized pixels rounded and clipped to uint8."""
    return np.clip(np.round(_resized(img, size)), 0, 255).astype(np.uint8)


def test_model_input_is_the_plain_formula_in_uint8():
    """Native-size uint8 images pass untouched; resized or float ones are rounded; eagerly and in tf.data."""
    full = np.arange(250 * 250 * 3, dtype=np.int64).reshape(250, 250, 3) % 256  # every value 0..255
    cases = [full.astype(np.uint8), rgb(180, 200), rgb(40, 40), rgb(50, 90),
             np.linspace(-40, 300, 250 * 250 * 3, dtype=np.float32).reshape(250, 250, 3)]  # float: clipped
    for img in cases:
        for size in (64, 250):
            expected = _plain_model_input(img, size)
            np.testing.assert_array_equal(pipeline.to_model_input(img, size).numpy(), expected)
            ds = tf.data.Dataset.from_generator(lambda img=img: iter([img]),
                                                output_signature=tf.TensorSpec([None, None, 3], img.dtype))
            got = next(iter(ds.map(lambda x, size=size: pipeline.to_model_input(x, size))))
            assert got.dtype == tf.uint8
            np.testing.assert_array_equal(got.numpy(), expected)
            assert np.abs(expected - _resized(img, size).clip(0, 255)).max() <= 0.5  # only rounding
    np.testing.assert_array_equal(pipeline.to_model_input(full.astype(np.uint8), 250).numpy(), full)


def test_cached_epochs_repeat_the_first_exactly(tree, manifest):
    ds = pipeline.dataset(manifest, tree, None, 32, 4, cache=True)
    first, again = batches(ds), batches(ds)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    np.testing.assert_array_equal(first[0], batches(pipeline.dataset(manifest, tree, None, 32, 4))[0])


def _smooth(size=250):
    """A cell-like picture: a dark disc on a light gradient (JPEG-friendly, like a smear)."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.stack([200 - 60 * xx, 190 - 40 * yy, 210 - 30 * xx * yy], axis=-1)
    img[(yy - 0.5) ** 2 + (xx - 0.45) ** 2 < 0.08] = (110, 60, 150)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("size, ratio", [(250, 1), (126, 1), (125, 2), (63, 4), (64, 2), (32, 8)])
def test_jpegs_are_decoded_at_the_smallest_scale_that_covers_the_size(tmp_path, size, ratio):
    path = tmp_path / "cell.jpg"
    save(path, _smooth())
    raw = tf.io.read_file(str(path))
    assert pipeline.JPEG_SCALES[int(pipeline.jpeg_scale_index(tf.image.extract_jpeg_shape(raw), size))] == ratio
    scaled = tf.io.decode_jpeg(raw, channels=3, dct_method="INTEGER_ACCURATE", ratio=ratio)
    np.testing.assert_array_equal(pipeline.decode(raw, size).numpy(), scaled.numpy())
    if scaled.shape[0] == size:  # already at size: no resize after the scaled decode
        np.testing.assert_array_equal(pipeline.load_image(str(path), size).numpy(), scaled.numpy())


def test_scaled_decode_matches_a_full_decode_then_resize(tmp_path):
    """Decoding at 1/2 before the shrink to 64 px moves pixels by a fraction of a grey level on average."""
    path = tmp_path / "cell.jpg"
    save(path, _smooth())
    full = tf.io.decode_jpeg(tf.io.read_file(str(path)), channels=3, dct_method="INTEGER_ACCURATE")
    want = _plain_model_input(full.numpy(), 64).astype(float)
    got = pipeline.load_image(str(path), 64).numpy().astype(float)
    assert np.abs(got - want).mean() < 0.5
    assert np.abs(got - want).max() < 16


def test_shrinking_averages_and_enlarging_interpolates():
    img = np.zeros((8, 8, 3), np.uint8)
    img[::2, ::2] = 255  # a one-pixel grid: area averaging gives its mean, no aliasing
    np.testing.assert_array_equal(pipeline.to_model_input(img, 4).numpy(), 64)  # 255 / 4 = 63.75, rounded
    small = pipeline.to_model_input(np.full((4, 4, 3), 128, np.uint8), 8).numpy()
    np.testing.assert_array_equal(small, 128)


@pytest.mark.parametrize("size", [250, 125, 64, 40, 300])
def test_the_manifest_planned_loader_equals_the_dispatching_one(tree, manifest, size):
    """All-JPEG rows of one size get a loader fixed while tracing; its pixels are load_image's."""
    plain = manifest[manifest["cls"].isin(["BLA", "NGS"]) & manifest["status"].eq("ok")]
    assert pipeline.uniform_jpeg_shape(plain) == (250, 250)
    assert pipeline.uniform_jpeg_shape(manifest) is None  # PNG, TIFF and a 180 x 200 image among them
    files = [str(tree / p) for p in plain["path"]]
    planned = tf.data.Dataset.from_tensor_slices(files).map(pipeline.loader(plain, size))
    for f, x in zip(files, planned):
        np.testing.assert_array_equal(x.numpy(), pipeline.load_image(f, size).numpy())


def _formats(img: np.ndarray) -> dict:
    """One image in every format and mode a dataset may hold beside its JPEGs (name -> bytes)."""
    import io as _io

    def saved(picture, fmt, **kw):
        buf = _io.BytesIO()
        picture.save(buf, fmt, **kw)
        return buf.getvalue()

    base, other = Image.fromarray(img), Image.fromarray(255 - img)
    exif = Image.Exif()
    exif[0x0112] = 6
    return {
        "palette.bmp": saved(base.convert("P"), "BMP"),
        "one_bit.bmp": saved(base.convert("1"), "BMP"),
        "grey.bmp": saved(base.convert("L"), "BMP"),
        "animated.webp": saved(base, "WEBP", save_all=True, append_images=[other], lossless=True),
        "lossy.webp": saved(base, "WEBP", quality=80),
        "scan.tiff": saved(base, "TIFF"),
        "grey16.png": saved(Image.fromarray(img[..., 0].astype(np.uint16) * 257 + 3), "PNG"),
        "palette_transparent.png": saved(base.convert("P"), "PNG", transparency=0),
        "grey_alpha.png": saved(base.convert("LA"), "PNG"),
        "animated.gif": saved(base, "GIF", save_all=True, append_images=[other]),
        "transparent.gif": saved(base.convert("P"), "GIF", transparency=0),
        "cmyk.jpg": saved(base.convert("CMYK"), "JPEG"),
        "grey.jpg": saved(base.convert("L"), "JPEG"),
        "progressive.jpg": saved(base, "JPEG", progressive=True),
        "rotated.jpg": saved(base, "JPEG", exif=exif),
    }


def test_every_usable_image_has_the_pixels_validation_checked_on_every_path(tmp_path):
    """What validate calls usable is, at its own size, Pillow's pixels (as validation decodes them) in the tf.data
    pipeline, the eager path (chapter 04's example image), the XAI images and the decoded-image cache."""
    from cytokit.data.validation import decode_rgb

    root = tmp_path / "data"
    for i in range(3):
        save(root / "BLA" / f"BLA_{i:05d}.jpg", rgb(64, 64))
    img = rgb(64, 64)
    img[:32] = img[:32] // 64 * 64  # flat patches: palettes and 1-bit images keep some structure
    for name, raw in _formats(img).items():
        (root / "LYT").mkdir(exist_ok=True)
        (root / "LYT" / f"LYT_{name}").write_bytes(raw)
    checked = data.validate(root, data.index(root, progress=False), expected_size=None, progress=False)
    assert not (checked["status"] == "bad").any(), checked[checked["status"] == "bad"][["path", "reason"]]
    usable = data.split(checked)
    rows = usable[usable["status"] != "bad"]
    expected = np.stack([decode_rgb((root / p).read_bytes()) for p in rows["path"]])
    names = list(rows["path"])

    def same(got, how):
        for name, want, have in zip(names, expected, got):
            gap = np.abs(want.astype(int) - have).mean()
            assert np.array_equal(want, have), f"{name}: {how} differs (mean |diff| {gap:.1f})"

    batches = pipeline.dataset(usable, root, None, 64, 8)
    same(np.concatenate([x.numpy() for x, _ in batches]), "tf.data")
    same([pipeline.load_image(str(root / p), 64).numpy() for p in names], "the eager path")
    same(pipeline.load_images(usable, root, None, 64), "the XAI images")
    same(pipeline.decoded(usable, root, None, 64, cache=True), "the decoded-image cache")
    assert any("EXIF orientation 6 ignored" in r for r in checked["reason"])
