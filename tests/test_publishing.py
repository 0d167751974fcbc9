"""The GitHub Actions workflow that publishes the book: it lints clean, and does what the README says.

Two linters from the test extras check it offline: zizmor (security: actions pinned to a
commit, least privilege, no credentials left in the checkout) and check-jsonschema with the
GitHub workflow schema it ships (structure: keys, types, event names). Either one absent
skips its test with the reason; ``make env`` installs both.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
BOOK = WORKFLOWS / "book.yml"


def tool(name: str) -> str:
    """The linter installed beside this Python (the venv), else on PATH; skips when absent."""
    here = Path(sys.executable).with_name(name)
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        pytest.skip(f"{name} not installed: `make env` installs the test extras (pip install -e '.[test]')")
    return found


def lint(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def test_zizmor_finds_nothing_even_pedantic():
    out = lint([tool("zizmor"), "--offline", "--pedantic", "--no-progress", str(WORKFLOWS)])
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_workflow_matches_githubs_workflow_schema():
    files = sorted(WORKFLOWS.glob("*.y*ml"))
    assert files, f"no workflow in {WORKFLOWS}"
    out = lint([tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, files)])
    assert out.returncode == 0, out.stdout + out.stderr


def _jobs() -> dict:
    return yaml.safe_load(BOOK.read_text())["jobs"]


def _runs(job: dict) -> list[str]:
    return [s["run"] for s in job["steps"] if "run" in s]


def _uses(job: dict, action: str) -> list[dict]:
    return [s for s in job["steps"] if s.get("uses", "").split("@")[0] == action]


def test_the_fast_tests_gate_the_book_and_the_book_gates_the_deployment():
    jobs = _jobs()
    tests = [name for name, job in jobs.items() if "make test-fast" in _runs(job)]
    builds = [name for name, job in jobs.items() if "make book" in _runs(job)]
    deploys = [name for name, job in jobs.items() if _uses(job, "actions/deploy-pages")]
    assert len(tests) == len(builds) == len(deploys) == 1, (tests, builds, deploys)
    assert jobs[builds[0]]["needs"] == tests[0] and jobs[deploys[0]]["needs"] == builds[0]


def test_it_uploads_the_folder_make_book_builds():
    from cytokit.book import build

    makefile = (ROOT / "Makefile").read_text()
    profile = re.search(r"^PROFILE \?= (\S+)$", makefile, re.M).group(1)
    run_dir = re.search(r"^RUN_DIR \?= (\S+)$", makefile, re.M).group(1).replace("$(PROFILE)", profile)
    upload = [s for job in _jobs().values() for s in _uses(job, "actions/upload-pages-artifact")]
    assert [s["with"]["path"] for s in upload] == [f"{run_dir}/book/{build.BUILT}/html"]


def test_only_the_deployment_may_write_and_only_from_main():
    jobs = _jobs()
    assert yaml.safe_load(BOOK.read_text())["permissions"] == {}
    for name, job in jobs.items():
        if _uses(job, "actions/deploy-pages"):
            assert job["permissions"] == {"pages": "write", "id-token": "write"}
            assert job["environment"]["name"] == "github-pages"
            assert "refs/heads/main" in job["if"] and "pull_request" in job["if"]
        else:
            assert job["permissions"] == {"contents": "read"}, name
