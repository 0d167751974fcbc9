"""Atomic writes and folder locks: a killed run never leaves a half-written artifact behind.

Everything is written to a temporary file in the destination folder and renamed
into place, so a later chapter sees either the old file or the complete new one. A
folder being written by one process carries a lock file, so a second one says who
holds it instead of mixing its files in.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path, suffix: str | None = None):
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The file gets the permissions of a newly created file (``0o666`` less the umask),
    not the private ``0o600`` of the temporary file it starts as.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix or ".tmp",
                               dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if os.path.isfile(tmp):
            os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------- locks

#: The lock file a run folder carries while a process writes into it.
LOCK_NAME = "run.lock"


class LockError(RuntimeError):
    """Another process holds the folder's lock; the message names it and says what to do."""


@contextmanager
def folder_lock(folder, log=print):
    """Hold ``folder/run.lock`` (pid, host, start time, command) while the block runs.

    The file is created with ``O_EXCL``, so of two processes exactly one gets it; the
    other raises :class:`LockError` naming the holder. A lock left by a process that
    is no longer running on this host is taken over with a note. The lock is removed at
    the end, if it is still this process's.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    mine = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": " ".join(sys.argv)}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            _take_over_if_stale(path, log)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(mine, fh)
        break
    else:
        raise LockError(f"could not take the lock {path}: another process keeps creating it; "
                        "wait for the other run to finish")
    try:
        yield path
    finally:
        if read_lock(path).get("pid") == mine["pid"]:
            path.unlink(missing_ok=True)


def read_lock(path) -> dict:
    """A lock file's record, or {} when it is gone or unreadable (being written)."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _take_over_if_stale(path: Path, log) -> None:
    """Remove a lock whose process is gone; raise :class:`LockError` for a live (or unknown) holder."""
    holder = read_lock(path)
    if not holder:  # created this instant and not written yet, or unreadable
        time.sleep(0.2)
        holder = read_lock(path)
    pid, host = holder.get("pid"), holder.get("host")
    who = f"pid {pid} on {host}, since {holder.get('started', '?')}" if holder else "an unreadable lock"
    if holder and host == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
        log(f"note: taking over {path}: the run that left it ({who}) is no longer running")
        path.unlink(missing_ok=True)
        return
    if not path.exists():
        return
    raise LockError(f"{path.parent} is being written by another run ({who}): wait for it to finish, or choose "
                    f"another folder with --out; if no run is active, delete {path}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as err:
        return err.errno == errno.EPERM  # exists, owned by someone else
    return True


def write_text(path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path, obj) -> Path:
    return write_text(path, json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n")


def read_json(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_csv(path, df, index: bool = False) -> Path:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=index)
    return Path(path)


def to_jsonable(obj):
    """Plain Python that strict JSON accepts: numpy and pandas values converted, NaN as null."""
    import math
    from collections.abc import Mapping

    import numpy as np
    import pandas as pd

    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, pd.DataFrame):
        cols = {str(c): obj[c].tolist() for c in obj.columns}  # column-wise keeps int columns int
        return {str(to_jsonable(idx)): {c: to_jsonable(vals[i]) for c, vals in cols.items()}
                for i, idx in enumerate(obj.index)}
    if isinstance(obj, pd.Series):
        return {str(to_jsonable(k)): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, Mapping):
        return {str(to_jsonable(k)): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if obj is pd.NA or obj is pd.NaT:
        return None
    if isinstance(obj, (pd.Timestamp, np.datetime64)):
        ts = pd.Timestamp(obj)
        return None if ts is pd.NaT else ts.isoformat()
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, int):
        return int(obj)
    if hasattr(obj, "__fspath__"):
        return str(obj)
    raise TypeError(f"cannot convert {type(obj).__name__} to JSON")
