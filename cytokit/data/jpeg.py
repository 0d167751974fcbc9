"""A JPEG file's marker structure, read without decoding: its frame, where each scan's data ends, its end marker.

Decoders stop at the first end-of-image marker and treat a marker met inside a scan's
data as the end of that data (filling the rest of the image with flat grey), so a file
cut short and then ended with ``FF D9``, a comment segment or anything else that ends
in a marker decodes "successfully". Knowing where the last scan's data really stops
lets :mod:`cytokit.data.validation` check that those bytes alone complete the image;
bytes after the first end-of-image marker (a trailer, even one holding ``FF DA``) are
not part of the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SOI, EOI, SOS = 0xD8, 0xD9, 0xDA
#: Start-of-frame markers (baseline, extended, progressive, lossless; Huffman and arithmetic).
SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
#: Frames every decoder of the project reads the same way: 8-bit Huffman baseline, extended, progressive.
HUFFMAN_8_BIT = {0xC0: "baseline", 0xC1: "extended sequential", 0xC2: "progressive"}
FRAME_KINDS = {0xC3: "lossless", 0xC5: "differential sequential", 0xC6: "differential progressive",
               0xC7: "differential lossless", 0xC9: "arithmetic-coded sequential",
               0xCA: "arithmetic-coded progressive", 0xCB: "arithmetic-coded lossless",
               0xCD: "differential arithmetic-coded sequential", 0xCE: "differential arithmetic-coded progressive",
               0xCF: "differential arithmetic-coded lossless", **HUFFMAN_8_BIT}
#: Markers that stand alone, without a length (restart markers, TEM).
_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}


class JpegStructureError(ValueError):
    """The file's markers cannot be followed; the message says where."""


@dataclass
class Scan:
    """One scan: its header's component ids and spectral selection, and where its entropy-coded data lies."""

    components: list
    ss: int
    se: int
    al: int
    start: int
    end: int


@dataclass
class JpegLayout:
    """The markers of a JPEG file up to its first end-of-image marker."""

    frame: int | None = None
    precision: int = 0
    components: list = field(default_factory=list)
    scans: list = field(default_factory=list)
    eoi: int | None = None

    @property
    def kind(self) -> str:
        return FRAME_KINDS.get(self.frame, "unknown") if self.frame is not None else "frameless"

    @property
    def progressive(self) -> bool:
        return self.frame in (0xC2, 0xC6, 0xCA, 0xCE)


def layout(data: bytes) -> JpegLayout:
    """Follow the markers from the start-of-image marker to the first end-of-image marker (or the file's end)."""
    if data[:2] != b"\xff\xd8":
        raise JpegStructureError("no start-of-image marker")
    found, pos = JpegLayout(), 2
    while pos < len(data):
        if data[pos] != 0xFF:
            raise JpegStructureError(f"no marker at byte {pos:,} where one should be")
        marker = data[pos + 1] if pos + 1 < len(data) else None
        if marker is None:
            break
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker == EOI:
            found.eoi = pos
            break
        if marker in _STANDALONE:
            pos += 2
            continue
        if pos + 4 > len(data):
            break
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if length < 2:
            raise JpegStructureError(f"a segment of length {length} at byte {pos:,}")
        segment = data[pos + 4:pos + 2 + length]
        if marker in SOF and len(segment) >= 6:
            found.frame, found.precision = marker, segment[0]
            found.components = [segment[6 + 3 * i] for i in range(segment[5]) if 6 + 3 * i < len(segment)]
        if marker == SOS:
            start = pos + 2 + length
            end = _after_entropy_data(data, start)
            found.scans.append(_scan(segment, start, end))
            pos = end
            continue
        pos += 2 + length
    return found


def _scan(segment: bytes, start: int, end: int) -> Scan:
    ns = segment[0] if segment else 0
    if len(segment) < 4 + 2 * ns:
        raise JpegStructureError("an unreadable scan header")
    return Scan(components=[segment[1 + 2 * i] for i in range(ns)], ss=segment[1 + 2 * ns],
                se=segment[2 + 2 * ns], al=segment[3 + 2 * ns] & 0x0F, start=start, end=end)


def _after_entropy_data(data: bytes, pos: int) -> int:
    """Position of the first marker after entropy-coded data (0xFF then neither 0x00 nor a restart), or the end."""
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            return len(data)
        nxt = data[pos + 1]
        if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
            pos += 1 if nxt == 0xFF else 2
            continue
        return pos


def trailing_zeros(data: bytes, start: int, end: int) -> int:
    """How many zero bytes end ``data[start:end]`` that are not the 0x00 of a stuffed 0xFF data byte."""
    z = end
    while z > start and data[z - 1] == 0:
        z -= 1
    if z < end and z > start and data[z - 1] == 0xFF:
        z += 1
    return end - z


def scans_missing(found: JpegLayout) -> str:
    """"" when a progressive JPEG's scans refine every coefficient of every component to full
    precision, else which component lacks them (the file was cut before its last scans)."""
    done: dict = {}
    for scan in found.scans:
        if scan.al == 0:
            for c in scan.components:
                done.setdefault(c, set()).update(range(scan.ss, scan.se + 1))
    full = set(range(64))
    missing = [c for c in found.components if done.get(c, set()) != full]
    return f"scans missing for component {', '.join(map(str, missing))}" if missing else ""
