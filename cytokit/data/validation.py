"""Check that every image file can be used, without ever changing it.

The study opened each image with OpenCV and deleted the failures; ``cv2.imread`` returns
a partial image for a truncated JPEG without raising, so truncated files slipped through,
and deleting altered the dataset. Here each file is decoded in full from its bytes with
Pillow and given a status: ``"bad"`` (excluded from every split, with the reason),
``"converted"`` (usable: the pipeline converts its format, mode or size; noted) or ``"ok"``.

libjpeg only warns when a JPEG's image data stops early and a marker follows (a cut file
with an end-of-image marker, a comment segment or zeros appended): OpenCV, TensorFlow and
Pillow all return the image with its missing part flat grey. A baseline JPEG is therefore
decoded from its own bytes up to where its scan's data ends (:mod:`cytokit.data.jpeg`),
with padding in place of what follows, so the decoder must finish every block from the
file's own data (:func:`_jpeg_data_ends_early`); bytes after the end-of-image marker are
not part of the image. Every image called usable decodes to the same pixels in the
training pipeline as here (:mod:`cytokit.data.pipeline`); EXIF orientation is ignored on
both paths, as the study's TensorFlow loader ignored it, and noted.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageFile, UnidentifiedImageError

from cytokit.data import jpeg
from cytokit.data.tree import dataset_root
from cytokit.progress import bar as progress_bar

#: File suffix -> the image format Pillow reports for it.
SUFFIX_FORMATS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".jfif": "JPEG", ".png": "PNG", ".bmp": "BMP",
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
#: What Pillow calls a JPEG file: MPO is a JPEG with more pictures after the first (cameras write it).
JPEG_FORMATS = ("JPEG", "MPO")

#: Largest file read to be checked; the real dataset's are about 40 KB. A bigger file is
#: reported as bad without being read (``cytokit validate --max-file-mb`` raises it).
MAX_FILE_BYTES = 64 * 2**20
#: Most pixels an image may have to be decoded (about 6,300 x 6,300): a small file declaring a huge
#: image would otherwise take gigabytes, once per checking thread. The dataset's are 250 x 250.
MAX_PIXELS = 40_000_000
#: What replaces a JPEG's end-of-image marker: zeros (not a marker) for the decoder's look-ahead.
_JPEG_PAD = b"\0" * 16


@dataclass(frozen=True)
class ImageCheck:
    """Outcome of checking one file: ``status`` is "ok", "bad" or "converted"."""

    status: str
    reason: str
    width: int = 0
    height: int = 0
    mode: str = ""
    format: str = ""


def check_image(path, expected_size=(250, 250), max_bytes: int = MAX_FILE_BYTES) -> ImageCheck:
    """Check one image file (read-only); ``expected_size`` is (width, height) or None."""
    data, problem = _read_limited(path, max_bytes)
    if problem:
        return ImageCheck("bad", problem)
    return check_bytes(data, Path(path).name, expected_size)


def _read_limited(path, max_bytes: int = MAX_FILE_BYTES) -> tuple[bytes, str]:
    """(bytes, "") of a regular file no larger than ``max_bytes``, else (b"", why it was not read).

    The size comes from ``fstat`` before anything is read, so a huge (or sparse) file
    costs no memory; opening does not block on a pipe put where an image was.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        return b"", f"unreadable file ({err.strerror or err})"
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return b"", "not a regular file"
        if st.st_size > max_bytes:
            return b"", _too_large(st.st_size, max_bytes)
        try:
            data = fh.read(max_bytes + 1)
        except OSError as err:
            return b"", f"unreadable file ({err.strerror or err})"
    if len(data) > max_bytes:  # grew since fstat
        return b"", _too_large(len(data), max_bytes)
    return data, ""


def _too_large(size: int, max_bytes: int) -> str:
    return (f"file of {size / 2**20:,.1f} MiB, over the {max_bytes / 2**20:g} MiB limit, not read "
            "(raise it with cytokit validate --max-file-mb if it is a real image)")


class _StrictDecoding:
    """Holds ``ImageFile.LOAD_TRUNCATED_IMAGES`` False while any check runs, in any thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.users = 0
        self.saved = False

    @contextmanager
    def __call__(self):
        with self.lock:
            if self.users == 0:
                self.saved = ImageFile.LOAD_TRUNCATED_IMAGES
                ImageFile.LOAD_TRUNCATED_IMAGES = False
            self.users += 1
        try:
            yield
        finally:
            with self.lock:
                self.users -= 1
                if self.users == 0:
                    ImageFile.LOAD_TRUNCATED_IMAGES = self.saved


#: ``with strict_decoding(): ...`` - Pillow raises on a truncated image however the process set it.
strict_decoding = _StrictDecoding()


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
    if width * height > MAX_PIXELS:
        return ImageCheck("bad", f"{width:,} x {height:,} pixels, over the {MAX_PIXELS / 1e6:g}-megapixel limit: not "
                                 "decoded (the dataset's images are 250 x 250)", width, height, mode, fmt)
    with strict_decoding():
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
    if fmt in JPEG_FORMATS:
        return _jpeg_failure(im, data)
    return _load_failure(im, fmt)


def _load_failure(im, fmt: str) -> str:
    try:
        im.load()
    except OSError as err:
        if "truncated" in str(err).lower():
            return f"truncated {fmt or 'image'}"
        return f"undecodable {fmt or 'image'} ({err})"
    except Exception as err:  # noqa: BLE001 - decoder errors of every kind mean "bad"
        return f"undecodable {fmt or 'image'} ({err})"
    return ""


def _jpeg_failure(im, data: bytes) -> str:
    """Why a JPEG cannot be used: its markers, its coding, no end marker, image data that ends early."""
    try:
        found = jpeg.layout(data)
    except jpeg.JpegStructureError as err:
        return f"unreadable JPEG ({err})"
    if found.frame not in jpeg.HUFFMAN_8_BIT or found.precision != 8:
        return (f"{found.kind} JPEG of {found.precision} bits: the training pipeline (TensorFlow) reads only 8-bit "
                "baseline, extended and progressive JPEGs; convert it to one of those, or to PNG")
    if found.eoi is None or not found.scans:
        return "truncated JPEG (no end-of-image marker)"
    if found.progressive:
        failure = _load_failure(im, "JPEG")
        gap = "" if failure else jpeg.scans_missing(found)
        return failure or (f"truncated JPEG ({gap})" if gap else "")
    last = found.scans[-1]
    zeros = jpeg.trailing_zeros(data, last.start, last.end)
    if zeros <= len(_JPEG_PAD):  # as many zeros as the padding: the same bytes reach the decoder
        zeros = 0
    if _jpeg_data_ends_early(data[:last.end]):
        return "truncated JPEG (its image data ends early; the rest would decode as flat grey)"
    if zeros and _jpeg_data_ends_early(data[:last.end - zeros]) and not _single_colour(im):
        return (f"truncated JPEG padded with zeros (its image data ends in {zeros:,} zero bytes that the image "
                "needs, as in a file cut short and padded: the rest decodes as filler; re-save it from the original "
                "if it is whole)")
    return ""


def _single_colour(im) -> bool:
    """True for an image of one colour (its scan data may end in zero bytes that mean "the same again")."""
    if _load_failure(im, "JPEG"):
        return False
    pixels = np.asarray(im)
    return bool((pixels == pixels.reshape(-1, *pixels.shape[2:])[0]).all())


def _jpeg_data_ends_early(body: bytes) -> bool:
    """True when a baseline JPEG's blocks run out before the end of ``body``, its bytes up to where its
    scan's data ends.

    ``body`` is decoded (strictly) with zero padding after it and no marker: a complete
    file's decoder finishes every block from the file's own data and stops; a cut file's
    decoder waits for data and Pillow reports it truncated. A cut in the last few bytes
    can pass, costing a block or two at the image's bottom edge. Zero bytes that end
    the scan's data are left out of ``body`` by the caller (a cut file padded with
    zeros decodes them as blocks). Raises nothing; an image that fails to decode for
    another reason counts as ending early.
    """
    try:
        with strict_decoding():
            Image.open(io.BytesIO(body + _JPEG_PAD)).load()
    except Exception:  # noqa: BLE001 - truncation and any other decoder error alike
        return True
    return False


def _notes(im, name: str, fmt: str, mode: str, size, expected_size) -> list[str]:
    """What the pipeline will convert for this (fully decodable) image."""
    notes = []
    suffix = Path(name).suffix.lower()
    if suffix in SUFFIX_FORMATS and fmt and SUFFIX_FORMATS[suffix] != ("JPEG" if fmt in JPEG_FORMATS else fmt):
        notes.append(f"{fmt} data named {suffix}")
    orientation = _exif_orientation(im)
    if orientation not in (None, 1):
        notes.append(f"EXIF orientation {orientation} ignored: its pixels are used as stored, as the study's "
                     "TensorFlow loader read them")
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


def _exif_orientation(im):
    """The EXIF orientation tag (1-8), or None without one (or with unreadable EXIF data)."""
    try:
        return im.getexif().get(0x0112)
    except Exception:  # noqa: BLE001 - broken EXIF is no reason to refuse pixels that decode
        return None


def read_rgb(path) -> np.ndarray:
    """The image at ``path`` as a uint8 RGB array (H, W, 3), whatever its format or mode."""
    return decode_rgb(Path(path).read_bytes())


def decode_rgb(data: bytes) -> np.ndarray:
    """Decode image bytes to uint8 RGB, converting modes the way the tf.data pipeline does."""
    im = Image.open(io.BytesIO(data))
    im.load()
    return _to_rgb_array(im)


def _to_rgb_array(im) -> np.ndarray:
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


# --------------------------------------------------------------------- a whole tree


def validate(data_dir, idx: pd.DataFrame, expected_size=(250, 250), progress=True,
             workers=None, max_bytes: int = MAX_FILE_BYTES) -> pd.DataFrame:
    """Check every indexed image (read-only) and add its status, reason, size, mode and sha1.

    Each file is read once, hashed (``sha1`` of its bytes, for leakage checks) and fully
    decoded in a thread pool (Pillow and hashlib release the GIL). See
    :mod:`cytokit.data.validation` for what counts as bad or converted. Memory stays at the
    manifest's own columns: files are checked in chunks, a bounded number in flight, and
    each chunk's outcomes go straight into the columns.
    """
    root = dataset_root(data_dir)
    with strict_decoding():
        cols = _run_checks(str(root), idx["path"].tolist(), (expected_size, max_bytes), progress,
                           workers or min(32, 4 * (os.cpu_count() or 1)))
    out = idx.copy()
    for name in _CHECK_COLUMNS:
        values = cols[name]
        out[name] = np.array(values, dtype="int64") if name in ("width", "height") else values
    return out


#: Columns :func:`validate` adds, in the order :func:`_check_chunk` returns them.
_CHECK_COLUMNS = ("status", "reason", "width", "height", "mode", "format", "sha1")
_CHUNK = 128  # files per task of the thread pool


def _check_file(path: str, limits) -> tuple[ImageCheck, str]:
    expected_size, max_bytes = limits
    data, problem = _read_limited(path, max_bytes)
    if problem:
        return ImageCheck("bad", problem), ""
    return check_bytes(data, path, expected_size), hashlib.sha1(data).hexdigest()


def _check_chunk(root: str, paths: list, limits) -> list[tuple]:
    """The :data:`_CHECK_COLUMNS` of each relative path, as one tuple per column."""
    rows = []
    for rel in paths:
        c, sha1 = _check_file(os.path.join(root, rel), limits)
        rows.append((c.status, c.reason, c.width, c.height, c.mode, c.format, sha1))
    return list(zip(*rows))


def _run_checks(root: str, paths: list, limits, progress: bool, workers: int) -> dict:
    """Check files in chunks on a thread pool, in order, with a tqdm bar; returns column lists.

    At most ``4 * workers`` chunks are queued or finished-but-unread at a time, so memory
    beyond the columns does not grow with the number of files.
    """
    cols = {name: [] for name in _CHECK_COLUMNS}
    window = 4 * max(1, workers)
    pending = deque()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, \
            progress_bar(total=len(paths), desc="validating images", unit="img", enabled=progress,
                         mininterval=1.0) as bar:

        def collect():
            part = pending.popleft().result()
            for name, values in zip(_CHECK_COLUMNS, part):
                cols[name].extend(values)
            bar.update(len(part[0]) if part else 0)

        for i in range(0, len(paths), _CHUNK):
            pending.append(pool.submit(_check_chunk, root, paths[i:i + _CHUNK], limits))
            if len(pending) >= window:
                collect()
        while pending:
            collect()
    return cols
