"""Check that every image file can be used, without ever changing it.

The study's preprocessing opened each image with OpenCV and deleted the ones that
failed. ``cv2.imread`` returns a partial image for a truncated JPEG without raising,
so that check missed truncated files; and deleting files alters the dataset. Here each
file is fully decoded from its bytes with Pillow (which raises on truncation) and
classified; nothing is written anywhere.

Policy (the ``status`` of :class:`ImageCheck`):

* ``"bad"`` -- excluded from every split, listed in the manifest with its reason:
  zero-byte files, truncated or otherwise undecodable images, files that are not
  images at all (text, HTML error pages, Git LFS pointers, unknown data).
* ``"converted"`` -- usable, with a note, because the input pipeline fixes it:
  image data whose format does not match the file name (e.g. PNG data named ``.jpg``;
  the pipeline decodes by content), grayscale / palette / RGBA / CMYK / 16-bit images
  (converted to 8-bit RGB), multi-frame files (first frame used) and images of another
  size than ``expected_size`` (resized by the pipeline).
* ``"ok"`` -- an RGB image of the expected size in the format its name says.

A full decode costs about 1 ms for a 250x250 JPEG; :func:`cytokit.data.validate`
runs the checks in parallel threads.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

#: File suffix -> the image format Pillow reports for it.
SUFFIX_FORMATS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP",
    ".tif": "TIFF", ".tiff": "TIFF", ".gif": "GIF", ".webp": "WEBP",
}

_MODE_NOTES = {
    "L": "grayscale (converted to RGB)",
    "1": "black-and-white (converted to RGB)",
    "LA": "grayscale with alpha (converted to RGB)",
    "P": "palette (converted to RGB)",
    "PA": "palette with alpha (converted to RGB)",
    "RGBA": "RGBA (converted)",
    "CMYK": "CMYK (converted)",
}
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")


@dataclass(frozen=True)
class ImageCheck:
    """Outcome of checking one file: ``status`` is "ok", "bad" or "converted"."""

    status: str
    reason: str
    width: int = 0
    height: int = 0
    mode: str = ""
    format: str = ""


def check_image(path, expected_size=(250, 250)) -> ImageCheck:
    """Check one image file (read-only); ``expected_size`` is (width, height) or None."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        return ImageCheck("bad", f"unreadable file ({err.strerror or err})")
    return check_bytes(data, path.name, expected_size)


def check_bytes(data: bytes, name: str = "", expected_size=(250, 250)) -> ImageCheck:
    """Check the bytes of an image file called ``name`` (the suffix is compared to the content)."""
    if not data:
        return ImageCheck("bad", "zero-byte file")
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        return ImageCheck("bad", _not_an_image(data))
    except Exception as err:  # noqa: BLE001 - any header error makes the file unusable
        return ImageCheck("bad", f"unreadable image header ({err})")
    fmt, mode, (width, height) = im.format or "", im.mode, im.size
    failure = _decode_failure(im, data, fmt)
    if failure:
        return ImageCheck("bad", failure, width, height, mode, fmt)
    notes = _notes(im, name, fmt, mode, (width, height), expected_size)
    return ImageCheck("converted" if notes else "ok", ", ".join(notes), width, height, mode, fmt)


def _not_an_image(data: bytes) -> str:
    """Say what a file that no image decoder recognises seems to be."""
    head = data[:1024]
    if head.startswith(b"version https://git-lfs"):
        return "not an image (Git LFS pointer; run `git lfs pull`)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "not an image (unrecognised data)"
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return "not an image (text)" if printable >= 0.95 * len(text) else "not an image (unrecognised data)"


def _decode_failure(im, data: bytes, fmt: str) -> str:
    """Fully decode ``im``; return why it failed, or "" when the whole image decoded."""
    try:
        im.load()
    except OSError as err:
        if "truncated" in str(err).lower():
            return f"truncated {fmt or 'image'}"
        return f"undecodable {fmt or 'image'} ({err})"
    except Exception as err:  # noqa: BLE001 - decoder errors of every kind mean "bad"
        return f"undecodable {fmt or 'image'} ({err})"
    if fmt == "JPEG" and data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda"):
        # Catches truncation even when Pillow was told to tolerate it
        # (ImageFile.LOAD_TRUNCATED_IMAGES = True somewhere else in the process).
        return "truncated JPEG (no end-of-image marker)"
    return ""


def _notes(im, name: str, fmt: str, mode: str, size, expected_size) -> list[str]:
    """What the pipeline will convert for this (fully decodable) image."""
    notes = []
    suffix = Path(name).suffix.lower()
    if suffix in SUFFIX_FORMATS and fmt and SUFFIX_FORMATS[suffix] != fmt:
        notes.append(f"{fmt} data named {suffix}")
    if mode in _SIXTEEN_BIT:
        notes.append(f"16-bit grayscale {mode} (converted to 8-bit RGB)")
    elif mode != "RGB":
        notes.append(_MODE_NOTES.get(mode, f"{mode} (converted to RGB)"))
    if getattr(im, "n_frames", 1) > 1:
        notes.append(f"{im.n_frames} frames (first frame used)")
    if expected_size is not None and tuple(size) != tuple(expected_size):
        ew, eh = expected_size
        notes.append(f"wrong size {size[0]}x{size[1]} (expected {ew}x{eh}; resized by the pipeline)")
    return notes


def read_rgb(path) -> np.ndarray:
    """The image at ``path`` as a uint8 RGB array (H, W, 3), whatever its format or mode."""
    return decode_rgb(Path(path).read_bytes())


def decode_rgb(data: bytes) -> np.ndarray:
    """Decode image bytes to uint8 RGB, converting modes the way the tf.data pipeline does."""
    im = Image.open(io.BytesIO(data))
    im.load()
    return to_rgb_array(im)


def to_rgb_array(im) -> np.ndarray:
    """uint8 RGB array of a Pillow image: alpha dropped, 16-bit scaled down (as TensorFlow does)."""
    if im.mode in _SIXTEEN_BIT:
        grey = (np.asarray(im).astype(np.int64) >> 8).clip(0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if im.mode == "F":
        grey = np.asarray(im).clip(0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        return np.ascontiguousarray(np.asarray(im.convert("RGBA"))[..., :3])
    return np.asarray(im.convert("RGB"))
