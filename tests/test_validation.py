"""Every kind of bad or odd image file is recognised, with its reason, and nothing is written."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

from cytokit.data.validation import check_bytes, check_image, read_rgb

RNG = np.random.default_rng(0)


def rgb(h=250, w=250):
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def write_jpeg(path, img=None, **kw):
    Image.fromarray(rgb() if img is None else img).save(path, format="JPEG", quality=90, **kw)
    return path


def cut(path, keep):
    """Keep the first ``keep`` bytes of a file (a truncated download)."""
    data = path.read_bytes()
    path.write_bytes(data[:keep])
    return path


def test_plain_rgb_jpeg_is_ok(tmp_path):
    c = check_image(write_jpeg(tmp_path / "BLA_00001.jpg"))
    assert (c.status, c.reason, c.width, c.height, c.mode, c.format) == ("ok", "", 250, 250, "RGB", "JPEG")


def test_zero_byte_file_is_bad(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"")
    c = check_image(tmp_path / "a.jpg")
    assert (c.status, c.reason) == ("bad", "zero-byte file")


def test_jpeg_cut_in_half_is_bad_although_cv2_reads_it(tmp_path):
    path = write_jpeg(tmp_path / "a.jpg")
    cut(path, path.stat().st_size // 2)
    assert cv2.imread(str(path)) is not None  # the trap: OpenCV returns a partial image
    c = check_image(path)
    assert c.status == "bad" and c.reason.startswith("truncated JPEG")
    assert (c.width, c.height) == (250, 250)


def test_jpeg_missing_only_its_end_marker_is_bad(tmp_path):
    path = write_jpeg(tmp_path / "a.jpg")
    cut(path, path.stat().st_size - 2)
    assert check_image(path).reason.startswith("truncated JPEG")


def test_truncation_caught_even_when_pillow_tolerates_it(tmp_path, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    path = write_jpeg(tmp_path / "a.jpg")
    cut(path, path.stat().st_size // 2)
    c = check_image(path)
    assert (c.status, c.reason) == ("bad", "truncated JPEG (no end-of-image marker)")


def test_truncated_png_is_bad(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(rgb()).save(path)
    cut(path, path.stat().st_size // 2)
    c = check_image(path)
    assert c.status == "bad" and "PNG" in c.reason


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"<html><body>404 Not Found</body></html>\n", "not an image (text)"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n",
         "not an image (Git LFS pointer; run `git lfs pull`)"),
        (bytes(range(256)) * 8, "not an image (unrecognised data)"),
    ],
)
def test_non_images_named_jpg_are_bad(tmp_path, content, reason):
    (tmp_path / "a.jpg").write_bytes(content)
    c = check_image(tmp_path / "a.jpg")
    assert (c.status, c.reason) == ("bad", reason)


def test_png_named_jpg_is_converted(tmp_path):
    Image.fromarray(rgb()).save(tmp_path / "a.jpg", format="PNG")
    c = check_image(tmp_path / "a.jpg")
    assert (c.status, c.reason, c.format, c.mode) == ("converted", "PNG data named .jpg", "PNG", "RGB")


@pytest.mark.parametrize(
    "mode, fmt, name, reason",
    [
        ("L", "JPEG", "a.jpg", "grayscale (converted to RGB)"),
        ("RGBA", "PNG", "a.png", "RGBA (converted)"),
        ("CMYK", "JPEG", "a.jpg", "CMYK (converted)"),
        ("P", "PNG", "a.png", "palette (converted to RGB)"),
    ],
)
def test_other_colour_modes_are_converted(tmp_path, mode, fmt, name, reason):
    Image.fromarray(rgb()).convert(mode).save(tmp_path / name, format=fmt)
    c = check_image(tmp_path / name)
    assert (c.status, c.reason, c.mode) == ("converted", reason, mode)


def test_sixteen_bit_png_is_converted_and_read_scaled(tmp_path):
    grey16 = RNG.integers(0, 65536, (250, 250), dtype=np.uint16)
    Image.fromarray(grey16).save(tmp_path / "a.png")
    c = check_image(tmp_path / "a.png")
    assert c.status == "converted" and "16-bit" in c.reason
    img = read_rgb(tmp_path / "a.png")
    assert img.dtype == np.uint8 and img.shape == (250, 250, 3)
    np.testing.assert_array_equal(img[..., 1], grey16 >> 8)


def test_wrong_size_is_converted_unless_disabled(tmp_path):
    path = write_jpeg(tmp_path / "a.jpg", rgb(180, 200))
    c = check_image(path)
    assert c.status == "converted"
    assert c.reason == "wrong size 200x180 (expected 250x250; resized by the pipeline)"
    assert check_image(path, expected_size=None).status == "ok"
    assert check_image(path, expected_size=(200, 180)).status == "ok"


def test_several_notes_are_joined(tmp_path):
    Image.fromarray(rgb(100, 100)).convert("L").save(tmp_path / "a.jpg", format="PNG")
    c = check_image(tmp_path / "a.jpg")
    assert c.reason.split(", ") == [
        "PNG data named .jpg", "grayscale (converted to RGB)",
        "wrong size 100x100 (expected 250x250; resized by the pipeline)",
    ]


def test_missing_file_is_bad_not_an_exception(tmp_path):
    c = check_image(tmp_path / "gone.jpg")
    assert c.status == "bad" and c.reason.startswith("unreadable file")


def test_check_bytes_needs_no_file():
    assert check_bytes(b"", "x.jpg").reason == "zero-byte file"


@pytest.mark.parametrize("mode, fmt", [("RGB", "JPEG"), ("L", "JPEG"), ("RGBA", "PNG"), ("CMYK", "JPEG"),
                                       ("P", "PNG"), ("RGB", "TIFF"), ("LA", "PNG")])
def test_read_rgb_gives_uint8_rgb_for_every_mode(tmp_path, mode, fmt):
    src = rgb(60, 80)
    path = tmp_path / f"a.{fmt.lower()}"
    Image.fromarray(src).convert(mode).save(path, format=fmt)
    img = read_rgb(path)
    assert img.dtype == np.uint8 and img.shape == (60, 80, 3)
    if mode == "RGBA" or (mode, fmt) == ("RGB", "TIFF"):
        np.testing.assert_array_equal(img, src)  # lossless: alpha dropped, colours kept


def test_a_check_is_fast(tmp_path):
    path = write_jpeg(tmp_path / "a.jpg")
    check_image(path)
    start = time.perf_counter()
    for _ in range(50):
        check_image(path)
    per_image = (time.perf_counter() - start) / 50
    assert per_image < 0.01, f"{per_image * 1e3:.1f} ms per 250x250 JPEG"
