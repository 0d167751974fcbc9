"""How a page records a step's frozen result, its facts under the keys its class declares, glued once.

A step returns a result object; the notebook records it with ``chapter.record(result)`` (or
``chapter.record(result, "val_")`` when a page records two results of one kind). The keys
a result can produce are declared on its class (``KEYS``), so a test can check, without a
kernel, that every number the prose glues is produced by some recorded result.
"""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable


@runtime_checkable
class Result(Protocol):
    """A frozen step result: ``facts()`` maps each of its class's ``KEYS`` (or some of them) to a JSON-able value."""

    KEYS: ClassVar[tuple[str, ...]]

    def facts(self) -> dict: ...


def checked_facts(result: Result) -> dict:
    """``result.facts()``, refusing keys its class does not declare (a typo would glue nothing)."""
    facts = result.facts()
    unknown = sorted(set(facts) - set(type(result).KEYS))
    if unknown:
        raise KeyError(f"{type(result).__name__}.facts() gives keys its KEYS do not declare: {unknown}")
    return facts
