"""bench/RESULTS.md is generated from the benchmarks' results alone, and names every benchmark the prose quotes."""

from __future__ import annotations

import json
import re
import sys

import pytest

from conftest import ROOT

BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

import _common  # noqa: E402
import run_all  # noqa: E402

#: Where the project's prose quotes benchmark scripts.
PROSE = [ROOT / "README.md", ROOT / "data" / "README.md", BENCH / "README.md", *sorted((ROOT / "book").glob("*.md"))]


def test_results_md_is_exactly_what_the_results_render():
    assert (BENCH / "RESULTS.md").read_text(encoding="utf-8") == run_all.render(_common.RESULTS), (
        "bench/RESULTS.md differs from its results: regenerate it with `python bench/run_all.py --write-only`; "
        "a note belongs in its benchmark's script")


def test_every_result_is_in_order_and_every_name_has_a_maker():
    results = {p.stem for p in _common.RESULTS.glob("*.json")}
    assert results <= set(run_all.ORDER), f"results missing from run_all.ORDER: {sorted(results - set(run_all.ORDER))}"
    for name in run_all.ORDER:
        assert (BENCH / f"{name}.py").is_file() or name in run_all.ELSEWHERE, f"nothing makes {name}"
    assert len(run_all.ORDER) == len(set(run_all.ORDER))


def test_every_benchmark_the_prose_quotes_is_in_order():
    quoted = {m for f in PROSE if f.is_file() for m in re.findall(r"bench/(\w+)\.py", f.read_text(encoding="utf-8"))}
    plumbing = {"run_all", "_common"}
    assert quoted - plumbing, "no benchmark quoted at all: the pattern is wrong"
    missing = sorted(q for q in quoted - plumbing if q not in run_all.ORDER)
    assert not missing, f"quoted but not in bench/run_all.py's ORDER: {missing}"


@pytest.mark.parametrize("path", sorted(_common.RESULTS.glob("*.json")), ids=lambda p: p.stem)
def test_every_result_says_when_and_how_it_was_measured(path):
    result = json.loads(path.read_text(encoding="utf-8"))
    assert result["name"] == path.stem and not result["quick"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", result.get("date") or ""), "no date of measurement"
    assert re.match(r"(KERAS_BACKEND=\w+ )?python bench/\w+\.py", result["command"]) and result["machine"]["cpu"]
    assert result["rows"], "a result without figures"


def test_a_new_benchmark_plugs_in_by_its_name_and_its_result(tmp_path, monkeypatch, capsys):
    """What a new benchmark does: add its name to ORDER, save a Report; RESULTS.md then shows it in place."""
    monkeypatch.setattr(_common, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(_common, "SCRATCH", tmp_path / "scratch")
    monkeypatch.setattr(run_all, "ORDER", ["coverage", "pipeline"])
    monkeypatch.setattr(sys, "argv", [str(BENCH / "coverage.py"), "--replicates", "400"])
    report = _common.Report("coverage", "Interval coverage on simulated splits")
    report.figure("coverage of the 95 % interval", 0.947, "fraction", target=">= 0.93", met=True)
    report.note("400 simulated splits shaped like the real sample")
    saved = report.save()
    assert saved == tmp_path / "results" / "coverage.json"
    quick = _common.Report("coverage", "Interval coverage on simulated splits", quick=True).save()
    assert quick.parent == tmp_path / "scratch", "a quick run must not replace a measurement"

    text = run_all.render(_common.RESULTS)
    coverage, pipeline = text.index("## Interval coverage on simulated splits"), text.index("## Input pipeline")
    assert coverage < pipeline, "sections follow ORDER"
    section = text[coverage:pipeline]
    date = json.loads(saved.read_text())["date"]
    assert f"Measured {date}" in section and "`python bench/coverage.py --replicates 400`" in section
    assert "| coverage of the 95 % interval | 0.947 fraction |  | >= 0.93: met |" in section
    assert "- 400 simulated splits shaped like the real sample" in section
    assert "Not measured yet. It is measured by `python bench/pipeline.py`." in text[pipeline:]


def test_a_table_of_two_checkouts_replaces_the_figures():
    result = {"title": "Hostile inputs", "quick": False, "date": "2026-12-04", "commit": "abc1234",
              "machine": {"cpu": "CPU", "cores": 2, "python": "3.11.7", "load_avg_1m": 1.0, "nice": -15},
              "seconds": 12.0, "command": "python bench/hostile.py", "rows": [{"what": "x"}], "notes": [],
              "table": {"header": ["figure", "this checkout", "release"], "rows": [["tracebacks", "0", "10"]]}}
    section = run_all.section(result)
    assert "| figure | this checkout | release |\n|---|---:|---:|\n| tracebacks | 0 | 10 |" in section
    assert "Measured 2026-12-04 at commit abc1234 with `python bench/hostile.py`" in section
    assert "load 1.0 at the end, at nice -15;" in section  # a run given priority over other jobs says so


def test_figures_from_numpy_are_saved(tmp_path):
    """A bar checked on numpy numbers (numpy's bool) is saved as JSON, not lost at the end of a long run."""
    import numpy as np

    report = _common.Report("numpy_figures", "numpy figures")
    report.figure("coverage", np.float64(0.95), "share", target=">= 0.92", met=np.float64(0.95) >= 0.92)
    saved = json.loads(report.save(tmp_path).read_text())
    assert saved["rows"][0]["met"] is True
