"""Where native libraries' output goes: TensorFlow's C++ start-up lines belong in a log, not on a page or a terminal.

TensorFlow writes them to file descriptor 2 from C++, below Python's ``sys.stderr``, so
they can only be moved by pointing that descriptor elsewhere.
"""

from __future__ import annotations

import io
import os
import sys
from contextlib import contextmanager


@contextmanager
def stderr_to(target, keep_python: bool = False):
    """Point file descriptor 2 at ``target`` (a path, appended to, or ``os.devnull``) for the block.

    Child processes started meanwhile inherit it. With ``keep_python`` Python's own
    ``sys.stderr`` (error lines, progress bars) keeps writing where it wrote before.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    python_stderr = sys.stderr
    try:
        with open(target, "ab") as fh:
            os.dup2(fh.fileno(), 2)
            if keep_python and _writes_to_fd2(python_stderr):  # else it already writes elsewhere: left as is
                sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(saved), "wb", buffering=0), encoding="utf-8",
                                              errors="replace", write_through=True)
            yield
    finally:
        if sys.stderr is not python_stderr:
            sys.stderr.flush()
            sys.stderr.close()
            sys.stderr = python_stderr
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _writes_to_fd2(stream) -> bool:
    """True when ``stream`` writes to file descriptor 2 itself (and so would follow it)."""
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):  # pytest's capture, a StringIO: not fd 2
        return False
