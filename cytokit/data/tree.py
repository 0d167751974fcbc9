"""A dataset tree as a list of image files, read-only: one folder per class at the top.

Images sit directly in a class folder (``PMO/PMO_00001.jpg``) or in sub-folders at any
depth (``BLA/0001-1000/BLA_00001.jpg``, the TCIA layout); the top folder names the class.
Links are never followed: one pointing outside the dataset would read files that are not
part of it, and one pointing inside would count its images twice, or under another class
(``BLA/up -> ..`` turns every lymphocyte into a blast). Each file is counted once, however
many hard links reach it.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import pandas as pd

from cytokit.data import taxonomy
from cytokit.progress import bar as progress_bar

#: Suffixes indexed as images: every format the input pipeline decodes.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".jfif", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp")
#: Entries that file managers, archivers and NAS boxes leave beside the images (lower case).
METADATA_NAMES = frozenset({
    "@eadir", "__macosx", "thumbs.db", "ehthumbs.db", "ehthumbs_vista.db", "desktop.ini", "$recycle.bin",
    "system volume information", "lost+found", "#recycle", "#snapshot", "icon\r",
})
#: Top-level folder names of a dataset already split for training (lower case): not classes.
SPLIT_NAMES = frozenset({"train", "training", "val", "valid", "validation", "dev", "test", "testing"})
#: Written by ``cytokit synth`` at the top of a synthetic dataset.
SYNTH_MARK = "SYNTH.json"
_RANGE_FOLDER = re.compile(r"^\d+-\d+$")
_INDEX_BAR_DELAY = 1.0  # seconds before the indexing bar appears (short listings print nothing)
_PEEK = 256  # entries looked at per folder by looks_like_dataset


class DatasetError(ValueError):
    """The dataset folder cannot be used as given; the message says what to do."""


def index(data_dir, progress=True) -> pd.DataFrame:
    """List every image under ``data_dir`` (read-only), one row per file.

    Columns ``path`` (POSIX, relative to ``data_dir``), ``cls`` (top-level folder) and
    ``bytes``, sorted by path. Hidden entries and non-image files are not indexed; their
    relative paths go to ``df.attrs["ignored"]`` (folders with a trailing ``/``, not
    entered). Entries left out for a reason a user should see (links, metadata folders,
    file names that are not UTF-8, special files, a second name of the same file) are
    also in ``df.attrs["skipped"]``, a mapping of relative path to reason. Class folders
    without images go to ``df.attrs["empty_classes"]``. With ``progress``, a tqdm count of
    files appears when the listing takes more than a second.
    """
    root = dataset_root(data_dir)
    real_root = os.path.realpath(root)
    walk = _Walk(real_root)
    class_dirs = []
    for entry in _scan(root):
        kind = walk.classify(entry, entry.name)
        if kind == "dir":
            class_dirs.append(entry)
        elif kind:  # a file at the top: not in any class
            walk.ignore(entry.name)
    if not class_dirs:
        _raise_no_classes(root, walk)
    _check_top_level(root, [e.name for e in class_dirs])
    with progress_bar(desc="indexing", unit="file", enabled=progress, delay=_INDEX_BAR_DELAY,
                      mininterval=1.0) as bar:
        for entry in class_dirs:
            walk.class_folder(entry, bar)
    df = pd.DataFrame(walk.rows, columns=["path", "cls", "bytes"])
    df = df.astype({"path": str, "cls": str, "bytes": "int64"}).sort_values("path", ignore_index=True)
    present = set(df["cls"])
    df.attrs.update(data_dir=str(root), ignored=sorted(walk.ignored), skipped=dict(sorted(walk.skipped.items())),
                    empty_classes=sorted(e.name for e in class_dirs if e.name not in present))
    _check_layout(root, df, class_dirs)
    return df


def dataset_root(data_dir) -> Path:
    """``data_dir`` as a Path, or a DatasetError saying why it cannot be a dataset."""
    if data_dir is None or str(data_dir) == "":
        raise DatasetError("no dataset folder given: pass data_dir, the folder holding one folder per class")
    root = Path(data_dir).expanduser()
    if not root.exists() and os.path.islink(root):
        raise DatasetError(f"dataset folder {shown(root)} is a link that loops back on itself or points nowhere: "
                           "give the real folder")
    if not root.exists():
        raise DatasetError(f"dataset folder {shown(root)} does not exist: check the path "
                           "(data/README.md says how to get the real data)")
    if not root.is_dir():
        raise DatasetError(f"dataset path {shown(root)} is a file, not a folder: pass the folder "
                           "that holds one folder per class")
    return root


def shown(path) -> str:
    """A path as text that can always be printed: bytes that are not UTF-8 become U+FFFD, and control
    characters (a terminal's escape codes, a newline) are shown as escapes (``\\x1b``)."""
    return printable(os.fsencode(os.fspath(path)).decode("utf-8", errors="replace"))


def printable(text: str, keep: str = "") -> str:
    """``text`` with every character that is not printable (but those in ``keep``) written as its escape."""
    return "".join(ch if ch.isprintable() or ch in keep else ascii(ch)[1:-1] for ch in str(text))


def _is_utf8_name(name: str) -> bool:
    """False for a name whose bytes are not UTF-8 (Python keeps them as surrogate escapes)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_top_level(root, names) -> None:
    """Refuse top-level folders that are a split (``train/``, ``test/``), not classes, naming what to do."""
    splits = sorted(n for n in names if n.lower() in SPLIT_NAMES)
    if splits:
        listed = ", ".join(f"{n}/" for n in splits)
        raise DatasetError(
            f"{shown(root)} holds {listed}: a dataset already split for training, not one folder per class; "
            f"point data_dir at the folder holding the class folders (e.g. {shown(Path(root) / splits[0])}), "
            "or merge the splits into one folder per class (the book makes its own split)")


def check_dataset(data_dir) -> Path:
    """The quick checks of a dataset folder's top level, before any chapter runs; returns the folder.

    Lists the top level only (and one level below to name a folder given one level too
    high or too low), so a wrong ``--data-dir`` costs a second, not a chapter.
    """
    root = dataset_root(data_dir)
    walk = _Walk(os.path.realpath(root))
    class_dirs = [e for e in _scan(root) if walk.classify(e, e.name) == "dir"]
    if not class_dirs:
        _raise_no_classes(root, walk)
    _check_top_level(root, [e.name for e in class_dirs])
    _check_nesting(root, class_dirs)
    if len(class_dirs) == 1 and not _RANGE_FOLDER.match(class_dirs[0].name):
        raise DatasetError(f"{shown(root)} holds a single class folder, {shown(class_dirs[0].name)}/: a classifier "
                           "needs at least 2 classes; point data_dir at a folder holding one folder per class")
    return root


def class_folders(data_dir) -> list[str]:
    """Names of the top-level folders an index treats as classes (hidden, metadata and linked entries left out)."""
    root = dataset_root(data_dir)
    walk = _Walk(os.path.realpath(root))
    return [e.name for e in _scan(root) if walk.classify(e, e.name) == "dir"]


class _Walk:
    """The state of one listing: rows, what was left out and why, and the files already counted."""

    def __init__(self, real_root: str):
        self.real_root = real_root
        self.rows: list[tuple] = []
        self.ignored: list[str] = []
        self.skipped: dict[str, str] = {}
        self.files: set[tuple] = set()
        self.folders: set[tuple] = set()

    def ignore(self, rel: str) -> None:
        self.ignored.append(shown(rel))

    def skip(self, rel: str, reason: str) -> None:
        self.ignored.append(shown(rel))
        self.skipped[shown(rel)] = reason

    def classify(self, entry, rel: str) -> str:
        """``"dir"`` to enter, ``"image"`` to index, ``"file"`` to ignore quietly, ``""`` when skipped."""
        is_dir = _is_dir(entry)
        slash = "/" if is_dir else ""
        if entry.is_symlink():
            self.skip(rel + ("/" if _is_dir(entry, follow=True) else ""), _link_reason(entry, self.real_root))
            return ""
        if not _is_utf8_name(entry.name):
            self.skip(rel + slash, "its name is not valid UTF-8 (shown with U+FFFD): rename it to use it")
            return ""
        if entry.name.lower() in METADATA_NAMES:
            self.skip(rel + slash, "metadata of a file manager, archiver or NAS, not data")
            return ""
        if entry.name.startswith("."):
            self.ignore(rel + slash)
            return ""
        if is_dir:
            return "dir"
        if not _is_regular(entry):
            self.skip(rel, "not a regular file (a device, pipe or socket)")
            return ""
        if os.path.splitext(entry.name)[1].lower() not in IMAGE_SUFFIXES:
            return "file"
        return "image"

    def class_folder(self, top, bar=None) -> None:
        """Append (path, cls, bytes) for every image below the class folder ``top``, each file once."""
        cls = top.name
        stack = [(top, cls)]
        while stack:
            folder, rel = stack.pop()
            key = _key(folder)
            if key in self.folders:  # the same folder mounted twice
                self.skip(rel + "/", "the same folder as one already indexed")
                continue
            self.folders.add(key)
            before = len(self.rows)
            for entry in _scan(folder.path):
                child = f"{rel}/{entry.name}"
                kind = self.classify(entry, child)
                if kind == "dir":
                    stack.append((entry, child))
                elif kind == "file":
                    self.ignore(child)
                elif kind == "image":
                    st = entry.stat(follow_symlinks=False)
                    if (st.st_dev, st.st_ino) in self.files:
                        self.skip(child, "a second name (hard link) of a file already indexed")
                        continue
                    self.files.add((st.st_dev, st.st_ino))
                    self.rows.append((child, cls, st.st_size))
            if bar is not None:
                bar.update(len(self.rows) - before)


def _is_dir(entry, follow: bool = False) -> bool:
    """A folder (``follow``: or a link to one), False when it cannot be looked at."""
    try:
        return entry.is_dir(follow_symlinks=follow)
    except OSError:
        return False


def _is_regular(entry) -> bool:
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def _key(entry) -> tuple:
    st = entry.stat(follow_symlinks=False)
    return (st.st_dev, st.st_ino)


def _link_reason(entry, real_root: str) -> str:
    """Why a link is not followed: where it points, and what to do instead."""
    try:
        os.stat(entry.path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "a link that loops back on itself; not followed"
        return "a broken link (its target does not exist); not followed"
    target = os.path.realpath(entry.path)
    if target == real_root or target.startswith(real_root.rstrip(os.sep) + os.sep):
        inside = os.path.relpath(target, real_root)
        where = "the dataset folder itself" if inside == "." else shown(inside)
        return (f"a link to {where}, inside the dataset; not followed, so no image is counted twice "
                "or under another class")
    return (f"a link to {shown(target)}, outside the dataset folder; not followed: copy the files in, "
            "or point data_dir at the real folder")


def _scan(folder):
    """Entries of ``folder`` sorted by name; unreadable folders are a DatasetError."""
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as err:
        raise DatasetError(f"cannot list {shown(folder)} ({err.strerror or err}): check its permissions") from None


def _raise_no_classes(root: Path, walk: _Walk) -> None:
    if not walk.ignored:
        raise DatasetError(f"dataset folder {shown(root)} is empty: it should hold one folder per class "
                           "(e.g. BLA/0001-1000/BLA_00001.jpg)")
    ignored = [f"{p} ({walk.skipped[p]})" if p in walk.skipped else p for p in walk.ignored]
    listed = ", ".join(ignored[:5]) + (" ..." if len(ignored) > 5 else "")
    raise DatasetError(f"dataset folder {shown(root)} has no class folders (found only {listed}): "
                       "put the images in one folder per class, e.g. BLA/BLA_00001.jpg")


def _check_nesting(root: Path, class_dirs: list) -> None:
    """Catch a data_dir one level too deep or too shallow before it becomes a 1-class model."""
    names = [e.name for e in class_dirs]
    if names and all(_RANGE_FOLDER.match(n) for n in names):
        listed = ", ".join(names[:3])
        raise DatasetError(f"{shown(root)} looks like a single class folder (its sub-folders are {listed} ...): "
                           f"point data_dir at its parent, {shown(root.parent)}")
    if len(names) == 1 and not taxonomy.is_known(names[0]):
        inner = [e.name for e in _scan(root / names[0]) if _is_dir(e) and taxonomy.is_known(e.name)]
        if len(inner) >= 2:
            raise DatasetError(f"{shown(root)} holds one folder, {names[0]!r}, whose sub-folders are class folders "
                               f"({', '.join(inner[:4])} ...): point data_dir at {shown(root / names[0])}")


def _check_layout(root: Path, df: pd.DataFrame, class_dirs: list) -> None:
    _check_nesting(root, class_dirs)
    if df.empty:
        raise DatasetError(f"no images found in the class folders of {shown(root)} (looked for "
                           f"{', '.join(IMAGE_SUFFIXES)} files): check the path and the file types")


def layout_notes(idx: pd.DataFrame) -> list[str]:
    """Sentences on what the index left out and why: empty class folders, links, metadata, odd names."""
    notes = [f"class folder {c}/ holds no images" for c in idx.attrs.get("empty_classes", [])]
    notes += [f"{path}: {reason}" for path, reason in idx.attrs.get("skipped", {}).items()]
    return notes


# ------------------------------------------------------------------ what a dataset looks like


def _looks_like_dataset(folder) -> bool:
    """True for a folder of class folders of images (or a synthetic dataset's top), from a quick look.

    A class folder is named as a class of the study (``BLA``) or keeps its images in
    ``0001-1000``-style range folders, and holds images; two of them make a dataset. A
    folder of other folders of images (photos by event, test folders) is not one: any
    dataset, whatever its class names, is protected anyway when it is the ``data_dir``
    of the command. A run folder (``run.json``) never counts. Looks at no more than a few
    hundred entries per folder.
    """
    folder = Path(folder)
    try:
        if (folder / SYNTH_MARK).is_file():
            return True
        if (folder / "run.json").is_file():
            return False
        subs = [e for e in _peek(folder) if _is_dir(e) and not e.name.startswith(".")]
    except OSError:
        return False
    classes = 0
    for entry in subs[:64]:
        if taxonomy.is_known(entry.name) and _holds_images(entry.path) or _holds_images(entry.path, ranges_only=True):
            classes += 1
            if classes >= 2:
                return True
    return False


def enclosing_dataset(path) -> Path | None:
    """The nearest folder at or above ``path`` that looks like a dataset, or None."""
    here = Path(os.path.abspath(Path(path).expanduser()))
    for folder in [here, *here.parents]:
        if folder.is_dir() and _looks_like_dataset(folder):
            return folder
    return None


def _peek(folder) -> list:
    with os.scandir(folder) as it:
        out = []
        for entry in it:
            out.append(entry)
            if len(out) >= _PEEK:
                break
        return out


def _holds_images(folder: str, depth: int = 1, ranges_only: bool = False) -> bool:
    """True when ``folder`` holds image files (directly, unless ``ranges_only``, or in range folders)."""
    try:
        entries = _peek(folder)
    except OSError:
        return False
    if not ranges_only:
        for e in entries:
            if not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES \
                    and _is_regular(e):
                return True
    return depth > 0 and any(_RANGE_FOLDER.match(e.name) and _is_dir(e) and _holds_images(e.path, depth - 1)
                             for e in entries)
