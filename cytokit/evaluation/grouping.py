"""Classes scored as one: the neutrophil maturation series as a single NEU class, as the study did."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from cytokit.data.taxonomy import NEUTROPHIL_SERIES
from cytokit.evaluation.metrics import check_labels

#: The study's grouping of the neutrophil maturation series into one class.
NEU_GROUP: dict[str, list[str]] = {"NEU": list(NEUTROPHIL_SERIES)}


def group_classes(
    y_true, y_pred, class_names, mapping: Mapping[str, Sequence[str]]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Merge groups of classes into one, in labels and predictions alike.

    Used to score the neutrophil series as a single NEU class (:data:`NEU_GROUP`), as the
    study does: a PMO predicted as MYB then counts as correct. The merged class takes the
    position of its earliest member in ``class_names``; the other classes keep their
    relative order. Returns ``(y_true, y_pred, class_names)`` re-indexed to the new list;
    the number of samples is unchanged. Raises ``ValueError`` if a code is unknown, appears
    in two groups, a group is empty, or a group name clashes with a class left ungrouped.
    """
    names = list(class_names)
    t, p = check_labels(y_true, y_pred, names)
    group_of: dict[str, str] = {}
    for group, members in mapping.items():
        members = list(members)
        if not members:
            raise ValueError(f"group {group!r} has no members")
        for code in members:
            if code not in names:
                raise ValueError(f"group {group!r}: unknown class {code!r}; known: {', '.join(names)}")
            if code in group_of:
                raise ValueError(
                    f"class {code!r} is in two groups: {group_of[code]!r} and {group!r}"
                )
            group_of[code] = group
    for group in mapping:
        if group in names and group not in group_of:
            raise ValueError(f"group name {group!r} clashes with an ungrouped class")

    new_names: list[str] = []
    old_to_new = np.empty(len(names), dtype=np.int64)
    for i, code in enumerate(names):
        target = group_of.get(code, code)
        if target not in new_names:
            new_names.append(target)
        old_to_new[i] = new_names.index(target)
    return old_to_new[t], old_to_new[p], new_names
