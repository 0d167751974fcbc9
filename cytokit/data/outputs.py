"""Where the project may write a file or folder a user named, checked before any work starts.

Never over an input, never into a dataset (the folder given as data, or any folder that
looks like one: class folders of images), never over an existing file without
``--force``. Every command that writes a user-named path asks here first, so each refusal
reads the same and nothing has been computed, or written, when it comes.
"""

from __future__ import annotations

import os
from pathlib import Path

from cytokit.data.tree import enclosing_dataset, shown


class OutputError(ValueError):
    """An output path the project will not write; the message names it and says what to do."""


def check_file_output(path, option: str, inputs=(), data_dirs=(), force: bool = False) -> Path:
    """``path`` if a file may be written there: not a folder, not an input, not in a dataset, new unless ``force``."""
    path = Path(path).expanduser()
    named = f"{option} {shown(path)}"
    if path.is_dir():
        raise OutputError(f"{named} is a folder: give the path of a file to write (e.g. report.csv in another "
                          "folder); nothing was written")
    for source in inputs:
        if _same_path(path, source):
            raise OutputError(f"{named} is the input {shown(source)}: writing it would destroy the input; "
                              "choose another output path; nothing was written")
    _check_outside_datasets(path.parent, option, data_dirs, shown_as=path)
    if (path.exists() or path.is_symlink()) and not force:
        raise OutputError(f"{named} already exists: pass --force to replace it, or choose another path; "
                          "nothing was written")
    return path


def check_folder_output(path, option: str, data_dirs=()) -> Path:
    """``path`` if a folder of outputs may be written there: not a file, not in (or being) a dataset."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option} {shown(path)} is a file, not a folder: give a folder for the outputs; "
                          "nothing was written")
    _check_outside_datasets(path, option, data_dirs)
    return path


def _check_outside_datasets(folder, option: str, data_dirs=(), shown_as=None) -> None:
    """Refuse ``folder`` when it is, or is inside, a given dataset folder or one that looks like a dataset."""
    folder = Path(folder).expanduser()
    named = f"{option} {shown(shown_as if shown_as is not None else folder)}"
    for data in data_dirs:
        if data is not None and _is_within(folder, data):
            raise OutputError(f"{named} is inside the dataset folder {shown(data)}: the project never writes into a "
                              "dataset; choose a path outside it; nothing was written")
    found = enclosing_dataset(folder)
    if found is not None:
        raise OutputError(f"{named} is inside {shown(found)}, which looks like a dataset (class folders of images): "
                          "the project never writes into a dataset; choose a path outside it; nothing was written")


def _same_path(a, b) -> bool:
    """True when ``a`` and ``b`` name the same file or folder (links and ``..`` resolved)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return _resolved(a) == _resolved(b)


def _is_within(path, folder) -> bool:
    """True when ``path`` is ``folder`` or lies below it (links resolved)."""
    inner, outer = _resolved(path), _resolved(folder)
    return inner == outer or outer in inner.parents


def _resolved(path) -> Path:
    return Path(os.path.realpath(Path(path).expanduser()))
