"""The intervals keep their promise on simulated test sets shaped like the book's splits (a seeded, small
``bench/coverage.py``): coverage of balanced accuracy, macro F1 and accuracy, and no excess of false verdicts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import coverage  # noqa: E402

#: Populations with classes of one image, where the old bootstrap covered 0.56-0.72.
QUICK = ("real sample", "one 1-image class", "demo validation")
REPLICATES = 100


@pytest.fixture(scope="module")
def rows():
    pops = {p.name: p for p in coverage.populations()}
    out = []
    for name in QUICK:
        out += coverage.measure(pops[name], REPLICATES, resamples=300, paired=("balanced_accuracy",))
    return out


@pytest.mark.parametrize("metric", ["accuracy", "balanced accuracy", "macro F1",
                                    "difference of balanced accuracy, identical models",
                                    "difference of balanced accuracy, 3-point gap"])
def test_intervals_cover_on_populations_with_one_image_classes(rows, metric):
    measured = {r["population"]: r["coverage"] for r in rows if r["metric"] == metric}
    assert set(measured) == set(QUICK)
    assert all(c >= 0.92 for c in measured.values()), measured


def test_identical_models_are_rarely_called_better_or_worse(rows):
    false = {r["population"]: r["false_verdicts"] for r in rows
             if r["metric"] == "difference of balanced accuracy, identical models"}
    assert all(f <= 0.06 for f in false.values()), false
