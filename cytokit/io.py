"""Atomic writes and folder locks: a killed run never leaves a half-written artifact behind.

Everything is written to a temporary file in the destination folder and renamed
into place, so a later chapter sees either the old file or the complete new one. A
folder being written by one process carries a lock file (held with ``flock``), so a
second one says who holds it instead of mixing its files in.
"""

from __future__ import annotations

import errno
import fcntl
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
#: What a refusal suggests by default (``cytokit run``'s way out); other commands pass their own.
RUN_ADVICE = "wait for it to finish, or choose another folder with --out"


class LockError(RuntimeError):
    """Another process holds the folder's lock; the message names it and says what to do."""


@contextmanager
def folder_lock(folder, log=print, advice: str = RUN_ADVICE):
    """Hold ``folder/run.lock`` (pid, host, start time, command) while the block runs.

    The lock is an exclusive ``flock`` on the open lock file: the kernel gives it to one
    process at a time and takes it back when that process ends, however it ends, so
    of any number of processes starting at once exactly one holds it, and a lock left
    by a killed run is taken over atomically (with a note), never by deleting a file
    another process may have just created. A record naming a live process that holds
    no ``flock`` (a run of an older version) is respected as well. The file is removed
    at the end while still locked; ``advice`` ends a refusal's message.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    mine = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": " ".join(sys.argv)}
    fd = _acquire(path, log, advice)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(mine).encode("utf-8"), 0)
        yield path
    finally:
        try:
            if _is_current(fd, path):
                path.unlink()
        finally:
            os.close(fd)


def _acquire(path: Path, log, advice: str) -> int:
    """An open descriptor of ``path`` holding its exclusive flock, or a LockError naming the holder."""
    for _ in range(100):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise LockError(held_message(path, _read_settled(path), advice)) from None
        if not _is_current(fd, path):  # its holder removed it between our open and our lock: try the new one
            os.close(fd)
            continue
        left = _read_fd(fd)
        if left and _runs_without_flock(left):
            os.close(fd)
            raise LockError(f"{held_message(path, left, advice)}; if no run is active, delete {path}")
        if left:
            log(f"note: taking over {path}: the run that left it ({_who(left)}) is no longer running")
        return fd
    raise LockError(f"could not take the lock {path}: other processes keep replacing it; {advice}")


def _is_current(fd: int, path: Path) -> bool:
    """True while ``path`` still names the file open as ``fd`` (not removed, not replaced)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    here = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (here.st_dev, here.st_ino)


def _runs_without_flock(record: dict) -> bool:
    """A record of another process that may still be writing: alive on this host, or on another host."""
    pid, host = record.get("pid"), record.get("host")
    if host != socket.gethostname():
        return True  # cannot be checked from here
    return isinstance(pid, int) and pid != os.getpid() and _alive(pid)


def _read_fd(fd: int) -> dict:
    """The record in an open lock file, or {} when it is empty or unreadable."""
    try:
        record = json.loads(os.pread(fd, 1 << 16, 0).decode("utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _read_settled(path: Path) -> dict:
    """The holder's record, waiting a moment for a holder that has locked but not yet written it."""
    for _ in range(10):
        holder = read_lock(path)
        if holder:
            return holder
        time.sleep(0.05)
    return {}


def _who(holder: dict) -> str:
    if not holder:
        return "a process that has not written its record"
    return f"pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('started', '?')}"


def held_message(path: Path, holder: dict, advice: str) -> str:
    """A refusal naming the lock ``path``, its holder and what to do."""
    return f"{path.parent} is being written by another run ({_who(holder)}, holding {path}): {advice}"


def read_lock(path) -> dict:
    """A lock file's record, or {} when it is gone or unreadable (being written)."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def lock_holder(folder) -> dict | None:
    """The record of the process holding ``folder``'s lock now, or None when no process holds it."""
    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return _read_settled(path)
        left = _read_fd(fd)
        return left if left and _runs_without_flock(left) else None
    finally:
        os.close(fd)


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
