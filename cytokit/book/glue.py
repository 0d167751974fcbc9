"""Numbers and sentences pasted into the prose from the run (myst-nb ``glue``), never typed."""

from __future__ import annotations


def glue(key: str, value, display: bool = False):
    """myst-nb ``glue`` when running in a kernel; a no-op elsewhere (tests, scripts)."""
    try:
        from IPython import get_ipython

        if get_ipython() is None:
            return value
        from myst_nb import glue as _glue

        if isinstance(value, str):
            _glue(key, Markdown(value), display=display)
        else:
            _glue(key, value, display=display)
    except ImportError:
        pass
    return value


class Markdown:
    """Text glued as Markdown (IPython's ``Markdown`` would open a string that looks like a path)."""

    def __init__(self, text: str):
        self.text = text

    def _repr_markdown_(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text
