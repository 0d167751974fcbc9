"""A run folder's own records, read back as a user may have left them: every field checked, the file named.

``run.json`` (the run's profile, its command-line choices and its chapters' times) and
each chapter's ``chapter-run.json`` (the parameters and inputs it ran with) are written
by the runner, but a user can edit, truncate or replace them. A resumed run reads them
here: a field of the wrong kind is refused with the file and the field named, never
turned into a traceback or silently replaced by a default.
"""

from __future__ import annotations

import math
from pathlib import Path

from cytokit import io
from cytokit.data.tree import shown

RUN_RECORD = "run.json"
CHAPTER_RECORD = "chapter-run.json"


class RecordError(ValueError):
    """A run folder's record that cannot be used as it is; the message names the file and what to do."""


#: Largest record read (the runner's are a few KB).
MAX_RECORD_BYTES = 16 * 2**20


def read(path: Path, what: str) -> dict:
    """The mapping in the JSON file ``path`` (at most :data:`MAX_RECORD_BYTES`), or a RecordError naming it."""
    try:
        size = Path(path).stat().st_size
    except OSError as err:
        raise RecordError(f"{shown(path)} is unreadable ({err.strerror}): {what}") from None
    if size > MAX_RECORD_BYTES:
        raise RecordError(f"{shown(path)} is {size:,} bytes, over the {MAX_RECORD_BYTES:,}-byte limit of a run "
                          f"record: not read; {what}")
    try:
        data = io.read_json(path)
    except (OSError, ValueError, RecursionError) as err:
        raise RecordError(f"{shown(path)} is unreadable ({str(err)[:120]}): {what}") from None
    if not isinstance(data, dict):
        raise RecordError(f"{shown(path)} holds a {type(data).__name__}, not a run record: {what}")
    return data


#: What to do about a damaged ``run.json``.
_RUN_FIX = ("pass --profile NAME and the run's other options again instead of --resume, with --force, or restore "
            "the file")


def run_record(run_dir) -> dict:
    """A run folder's ``run.json`` with its choices and chapter entries checked."""
    path = Path(run_dir) / RUN_RECORD
    if not path.is_file():
        raise RecordError(f"{shown(path)} not found: {shown(run_dir)} is not a run folder to resume "
                          "(pass the --out folder of an earlier `cytokit run`)")
    record = read(path, _RUN_FIX)
    command = record.get("command", {})
    if not isinstance(command, dict):
        raise RecordError(f"{shown(path)}: its 'command' is a {type(command).__name__}, not a mapping: {_RUN_FIX}")
    _check_choices(path, command)
    for key in ("chapters", "kept"):
        _check_entries(path, key, record.get(key, []))
    return record


def _check_choices(path: Path, command: dict) -> None:
    overrides, only = command.get("overrides"), command.get("only")
    if overrides is not None and not (isinstance(overrides, dict) and all(isinstance(k, str) for k in overrides)):
        raise RecordError(f"{shown(path)}: its 'overrides' are {overrides!r}, not a mapping of parameter names: "
                          f"give -p again, or {_RUN_FIX}")
    if only is not None and not (isinstance(only, list) and only
                                 and all(isinstance(c, (str, int)) and not isinstance(c, bool) for c in only)):
        raise RecordError(f"{shown(path)}: its 'only' is {only!r}, not a list of chapters: give --only again, or "
                          f"{_RUN_FIX}")
    for key, option in (("data_dir", "--data-dir"), ("study_models", "--study-models")):
        value = command.get(key)
        if value is not None and not (isinstance(value, str) and value):
            raise RecordError(f"{shown(path)}: its '{key}' is {value!r}, not a folder: give {option} again, or "
                              f"{_RUN_FIX}")


def _check_entries(path: Path, key: str, entries) -> None:
    """``chapters`` and ``kept``: a list of {chapter: name, seconds: time} entries."""
    if not isinstance(entries, list):
        raise RecordError(f"{shown(path)}: its '{key}' is {entries!r}, not a list of chapter entries: {_RUN_FIX}")
    for entry in entries:
        seconds = entry.get("seconds") if isinstance(entry, dict) else None
        if not (isinstance(entry, dict) and isinstance(entry.get("chapter"), str)
                and isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
                and math.isfinite(seconds) and seconds >= 0):
            raise RecordError(f"{shown(path)}: an entry of its '{key}' is {str(entry)[:80]}, not a chapter with its "
                              f"seconds: {_RUN_FIX}")


def chapter_record(folder: Path) -> dict:
    """A chapter folder's ``chapter-run.json``: the parameters (a mapping) and upstream fingerprints it ran with."""
    path = Path(folder) / CHAPTER_RECORD
    fix = f"delete it to run chapter {Path(folder).name} again"
    record = read(path, fix)
    parameters, upstream = record.get("parameters"), record.get("upstream")
    if not isinstance(parameters, dict) or not isinstance(upstream, dict):
        raise RecordError(f"{shown(path)} lacks its 'parameters' and 'upstream' mappings: {fix}")
    return record


def same_attempt(path: Path, attempt: dict) -> bool:
    """True when ``path`` records exactly ``attempt`` (an unreadable record is another attempt: start afresh)."""
    try:
        return io.read_json(path) == io.to_jsonable(attempt)
    except (OSError, ValueError, RecursionError):
        return False
