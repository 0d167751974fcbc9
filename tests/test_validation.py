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


def jpeg_of(img, **kw) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", **{"quality": 90, **kw})
    return buf.getvalue()


#: What may follow a JPEG cut short so that every decoder reads it "successfully", its missing part grey.
ENDINGS = {"two end markers": b"\xff\xd9\xff\xd9", "16 zeros": b"\0" * 16 + b"\xff\xd9",
           "4,000 zeros": b"\0" * 4000 + b"\xff\xd9", "50,000 zeros": b"\0" * 50_000 + b"\xff\xd9",
           "a comment": b"\xff\xfe\x00\x06cut!" + b"\xff\xd9",
           "an app segment": b"\xff\xe1\x00\x04ok\xff\xd9", "fill bytes": b"\xff\xff\xff\xd9"}
ENCODINGS = {"baseline": {}, "optimised": {"optimize": True}, "4:4:4": {"subsampling": 0},
             "progressive": {"progressive": True}, "restarts": {"restart_marker_blocks": 4}}


@pytest.mark.parametrize("ending", sorted(ENDINGS))
@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_a_cut_jpeg_is_bad_whatever_ends_it(encoding, ending):
    whole = jpeg_of(rgb(), **ENCODINGS[encoding])
    assert check_bytes(whole, "a.jpg").status == "ok"
    for keep in (0.3, 0.5, 0.8):
        cut_short = whole[: int(len(whole) * keep)] + ENDINGS[ending]
        found = check_bytes(cut_short, "a.jpg")
        assert found.status == "bad" and "truncated JPEG" in found.reason, (keep, found)


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_bytes_after_the_end_marker_are_not_part_of_the_image(encoding):
    whole = jpeg_of(rgb(), **ENCODINGS[encoding])
    for trailer in (b"\xff\xda\x00\x08 a scan header", b"\xff\xd8\xff\xdaanother start", b"\0" * 300):
        assert check_bytes(whole + trailer, "a.jpg").status == "ok", trailer


@pytest.mark.parametrize("size", [16, 64, 250])
@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_one_colour_images_are_whole(size, encoding):
    """Their scan data can end in zero bytes (the same block again), as a cut file padded with zeros does."""
    for value in (0, 128, 255):
        img = np.full((size, size, 3), value, np.uint8)
        assert check_bytes(jpeg_of(img, **ENCODINGS[encoding]), "a.jpg", None).status == "ok", value
        ok, encoded = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_OPTIMIZE, 1])
        assert check_bytes(encoded.tobytes(), "a.jpg", None).status == "ok", value


def test_jpegs_the_training_decoder_reads_otherwise_are_refused():
    whole = bytearray(jpeg_of(rgb(64, 64)))
    frame = whole.index(b"\xff\xc0")
    for marker, kind in ((0xC9, "arithmetic-coded"), (0xC3, "lossless")):
        other = bytearray(whole)
        other[frame + 1] = marker
        found = check_bytes(bytes(other), "a.jpg", None)
        assert found.status == "bad" and kind in found.reason, found
    twelve = bytearray(whole)
    twelve[frame + 4] = 12  # the frame's sample precision
    assert check_bytes(bytes(twelve), "a.jpg", None).status == "bad"


def test_an_image_too_large_to_decode_is_bad_before_decoding():
    from hostile_files import png_declaring

    started = time.perf_counter()
    found = check_bytes(png_declaring(9000, 9000), "a.png", None)
    assert found.status == "bad" and "megapixel" in found.reason
    assert time.perf_counter() - started < 5
