"""Progress bars for long work that stay out of the book's pages.

The runner sets ``TQDM_DISABLE=1`` before executing chapters; tqdm honours that only
when ``disable`` is not passed explicitly, so every bar in cytokit goes through
:func:`bar`, which honours both the caller's ``enabled`` and the environment. The plain
(text) tqdm is used: ``tqdm.auto`` warns inside notebooks without ipywidgets.
"""

from __future__ import annotations

import os


def silenced() -> bool:
    """True when the environment asks for no progress bars (``TQDM_DISABLE``)."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() in {"1", "true", "yes", "on"}


def bar(iterable=None, *, enabled: bool = True, **kwargs):
    """A tqdm bar, shown only when ``enabled`` and not silenced."""
    from tqdm import tqdm

    return tqdm(iterable, disable=not enabled or silenced(), **kwargs)
