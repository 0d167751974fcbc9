"""Checks of command-line values, one function per kind of option: each returns the value or names the option.

Every command checks what a user typed here, before anything is read, started or
written, so a refusal reads the same whichever command gives it. The parameter rules
of the profiles (:data:`cytokit.book.parameters.RULES`) are reused where an option sets a
notebook parameter.
"""

from __future__ import annotations

import argparse
import errno
import math
import re
from pathlib import Path
from urllib.parse import urlsplit

from cytokit.book.parameters import RULES
from cytokit.data.tree import printable, shown


class UsageError(ValueError):
    """A command-line value that cannot be used; the message names the option."""


def rule(option: str, value, name: str):
    """``value`` if it meets the parameter rule ``name`` (the profiles' rules), else a UsageError naming ``option``."""
    ok, expected = RULES[name]
    if not ok(value):
        raise UsageError(f"{option} {value!r} must be {expected}")
    return value


def count(option: str, value, low: int, high: int) -> int:
    """A whole number of things (processes, workers) from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UsageError(f"{option} must be at least {low:,} and at most {high:,}; got {value!r}")
    return value


def _number(value) -> bool:
    """A finite int or float (not a bool)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def seconds(option: str, value, most: float = 365 * 24 * 3600.0) -> float:
    """A duration: a finite number of seconds above 0 (at most a year)."""
    if not _number(value) or not 0 < value <= most:
        raise UsageError(f"{option} {value!r} must be a number of seconds above 0 and at most {most:,.0f}")
    return float(value)


def port(option: str, value) -> int:
    """A TCP port a process can listen on or connect to: 1 to 65,535."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise UsageError(f"{option} {value!r} must be a port number from 1 to 65,535")
    return value


def share(option: str, value) -> float:
    """A share of a resource: a number in (0, 1]."""
    if not _number(value) or not 0 < value <= 1:
        raise UsageError(f"{option} {value!r} must be a number above 0 and at most 1")
    return float(value)


def mebibytes(option: str, value, most: float = 1024 * 1024) -> int:
    """A size given in MiB, above 0; returned in bytes."""
    if not _number(value) or not 0 < value <= most:
        raise UsageError(f"{option} {value!r} must be a number of MiB above 0 and at most {most:,.0f}")
    return max(1, int(value * 2**20))


#: URL schemes a download may use.
URL_SCHEMES = ("https", "http", "file")


def base_url(option: str, value: str | None) -> str | None:
    """None (the default) or an http(s) or file URL: never empty, never another scheme, no spaces or control codes."""
    if value is None:
        return None
    if not value.strip():
        raise UsageError(f"{option} is empty: leave it out to use the study's repository on GitHub, or give a "
                         "mirror's URL (https://... or file:///path/to/a/checkout)")
    parts = urlsplit(value)
    if parts.scheme not in URL_SCHEMES or (parts.scheme != "file" and not parts.netloc) \
            or any(ch.isspace() or not ch.isprintable() for ch in value):
        raise UsageError(f"{option} {printable(value)!r} is not an https, http or file URL: give e.g. "
                         "https://mirror.example/study or file:///path/to/a/checkout")
    return value


def resolved(option: str, path) -> Path:
    """``path`` made absolute with links resolved; a link that loops back on itself is named, not followed forever."""
    try:
        return Path(path).expanduser().resolve()
    except RuntimeError:  # Python before 3.13: "Symlink loop from ..."
        pass
    except OSError as err:
        if err.errno != errno.ELOOP:
            raise
    raise UsageError(f"{option} {shown(path)} is a link that loops back on itself: give the real folder")


def same_folder(first: str, a, second: str, b):
    """The folder given by two options at once, refused when they name different folders."""
    if a is None or b is None:
        return a if b is None else b
    if resolved(first, a) != resolved(second, b):
        raise UsageError(f"{first} and {second} name different folders ({shown(a)} and {shown(b)}): give only one")
    return b


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def number_text(name: str, value):
    """A ``-p`` value YAML 1.1 read as text although it is a number (``1e-3``), as a float when the parameter's
    rule wants one; any other value unchanged."""
    check = RULES.get(name, (None,))[0]
    if isinstance(value, str) and check is not None and not check(value) and _NUMBER.fullmatch(value.strip()):
        number = float(value)
        if check(number):
            return number
    return value


class Once(argparse._StoreAction):
    """An option given once: given again with another value it is refused, never silently replaced."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = namespace.__dict__.setdefault(GIVEN, {})
        if self.dest in given and given[self.dest] != values:
            parser.error(f"{option_string} given twice ({_text(given[self.dest])} and {_text(values)}): give it "
                         "once" + (", with every value after it" if self.nargs in ("+", "*") else ""))
        given[self.dest] = values
        setattr(namespace, self.dest, values)


#: Where :class:`Once` keeps what it saw in a namespace; removed after parsing.
GIVEN = "_given_once"


def _text(value) -> str:
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


class OneLineParser(argparse.ArgumentParser):
    """argparse with :class:`Once` options and one-line errors (``cytokit run: error: ...``), exit code 2."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register("action", None, Once)
        self.register("action", "store", Once)

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        namespace.__dict__.pop(GIVEN, None)
        return namespace, extras

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {printable(message)} (see {self.prog} --help)\n")
