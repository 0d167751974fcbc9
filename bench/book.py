"""Wall time of the whole book: the smoke, demo and study profiles, chapter by chapter.

Each profile runs exactly as a user runs it (``cytokit run --profile P``), into
``bench/out/runs/P``, and the chapters' own times are read back from its ``run.json``.
The book build is what is left of the wall time. Targets on a 2-core CPU: smoke within
5 minutes, demo within 20, and the study profile's chapter 06 (every robustness section,
on the 775-image real sample) within 25. ``--quick`` reads existing run folders
(``--from``) instead of running, since one smoke run alone takes most of the quick budget.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET_MINUTES = {"smoke": 5, "demo": 20}
#: Chapters with a target of their own: profile -> (chapter, minutes).
CHAPTER_TARGET_MINUTES = {"study": ("06_xai", 25)}


def run_profile(profile: str, out: Path) -> float:
    """Run one profile as the README does; returns the wall time in seconds."""
    cli = Path(sys.executable).with_name("cytokit")
    start = time.perf_counter()
    subprocess.run([str(cli), "run", "--profile", profile, "--out", str(out), "--force"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def report_run(report: _common.Report, profile: str, run_dir: Path, wall: float | None) -> None:
    record = json.loads((run_dir / "run.json").read_text())
    chapters = record["chapters"]
    total_chapters = sum(c["seconds"] for c in chapters)
    own = CHAPTER_TARGET_MINUTES.get(profile)
    for c in chapters:
        report.figure(f"{profile}: {c['chapter']}", c["seconds"], "s", ratio=c["seconds"] / total_chapters,
                      ratio_of="share of the chapters' time")
        if own and c["chapter"] == own[0]:
            report.figure(f"{profile}: {c['chapter']}, whole chapter", c["seconds"] / 60, "min",
                          ratio=c["seconds"] / (own[1] * 60), ratio_of=f"the {own[1]}-minute target",
                          target=f"<= {own[1]} min", met=c["seconds"] <= own[1] * 60)
    if wall is None:
        report.note(f"{profile}: times read from {run_dir}/run.json ({record.get('started')}); book build not timed")
        wall = total_chapters
    else:
        report.figure(f"{profile}: book build and start-up", wall - total_chapters, "s")
    if profile not in TARGET_MINUTES:
        report.figure(f"{profile}: whole run", wall / 60, "min")
        return
    limit = TARGET_MINUTES[profile] * 60
    report.figure(f"{profile}: whole run", wall / 60, "min", ratio=wall / limit,
                  ratio_of=f"the {TARGET_MINUTES[profile]}-minute target", target=f"<= {TARGET_MINUTES[profile]} min",
                  met=wall <= limit)


def main() -> None:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--from", dest="existing", type=Path, nargs="*", default=[],
                   help="existing run folders (named after their profile) to read instead of running")
    p.add_argument("--profiles", nargs="*", default=["smoke", "demo"])
    args = p.parse_args()
    report = _common.Report("book", "The book: smoke, demo and study profiles", args.quick)
    existing = {d.name: d for d in args.existing if (d / "run.json").exists()}
    for profile in args.profiles:
        if profile in existing:
            report_run(report, profile, existing[profile], None)
        elif args.quick:
            report.note(f"{profile}: not run in --quick mode (run bench/book.py without --quick)")
        else:
            run_dir = _common.SCRATCH / "runs" / profile  # kept: its book and metrics are worth a look
            wall = run_profile(profile, run_dir)
            report_run(report, profile, run_dir, wall)
    report.save(args.out)


if __name__ == "__main__":
    main()
