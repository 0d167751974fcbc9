"""Hostile and careless inputs: how many end in a clear error, and how many bytes of user data change.

Runs the table of ``tests/test_hostile_inputs.py`` (command lines against files a user
could have: overwrites, outputs inside a dataset, cut JPEGs, links, locks, wrong layouts,
malformed archives, huge files) and counts, per case, whether it gave the expected exit
code with one clear line and no traceback, and how many bytes of the files it must not
touch changed. ``--code DIR`` runs the same table against another checkout of the project
(each case in its own ``python -m cytokit.cli`` process), e.g. an earlier release, to see
the table fail there. The counts are saved as ``bench/results/hostile.json`` (``--write``
then rewrites ``bench/RESULTS.md``, as ``bench/run_all.py --write-only`` does).
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))

import _common  # noqa: E402
import test_hostile_inputs as table  # noqa: E402

SECTION = "## Hostile inputs: clear errors and user bytes changed"


def subprocess_runner(code_dir: Path, timeout: float):
    """Run ``cytokit ARGV`` from the checkout ``code_dir`` in a fresh process."""
    def run(argv):
        env = {**os.environ, "PYTHONPATH": str(code_dir), "CYTOKIT_HOME": str(code_dir), "TQDM_DISABLE": "1"}
        try:
            proc = subprocess.run([sys.executable, "-m", "cytokit.cli", *map(str, argv)], cwd=code_dir, env=env,
                                  capture_output=True, text=True, errors="replace", timeout=timeout,
                                  preexec_fn=_limit_memory)
        except subprocess.TimeoutExpired:
            return 124, "", f"timed out after {timeout:.0f} s"
        return proc.returncode, proc.stdout, "".join(ln for ln in proc.stderr.splitlines(keepends=True)
                                                     if not TF_NOISE.match(ln))
    return run


#: Address space a case's process may take: an unbounded command fails there instead of
#: drawing the machine into the kernel's out-of-memory killer.
MEMORY_LIMIT = 12 * 2**30


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


#: TensorFlow's C++ start-up lines on a fresh process's stderr (not the command's messages).
TF_NOISE = re.compile(r"^(WARNING: All log messages before absl|[IWE]\d{4} |To enable the following instructions)")


def run_table(code_dir: Path | None, timeout: float) -> list[dict]:
    runner = table.run_cli if code_dir is None else subprocess_runner(code_dir, timeout)
    root = ROOT if code_dir is None else code_dir
    rows = []
    for case in table.CASES:
        work = Path(tempfile.mkdtemp(prefix="cytokit-hostile-"))
        try:
            built, outcome = table.run_case(case, work, root=root, runner=runner)
            problems = table.clear_message(case, built, outcome)
        except Exception as err:  # noqa: BLE001 - a case that cannot even be run counts as failed
            problems, outcome = [f"the case could not run: {type(err).__name__}: {err}"], None
        finally:
            shutil.rmtree(work, ignore_errors=True)
        rows.append({"case": case.name, "expected": case.code, "code": outcome.code if outcome else None,
                     "clear": not problems, "problems": problems, "traceback": bool(outcome and
                                                                                  "Traceback" in outcome.err),
                     "changed_bytes": outcome.changed_bytes if outcome else 0})
        mark = "ok  " if not problems else "FAIL"
        print(f"  {mark} {case.name}: exit {rows[-1]['code']}" + (f"  ({'; '.join(problems)[:200]})" if problems else ""),
              flush=True)
    return rows


def counts(rows: list[dict]) -> dict:
    refused = [r for r in rows if r["expected"] == 2]
    usable = [r for r in rows if r["expected"] == 0]
    return {"tried": len(rows),
            "refused": f"{sum(r['clear'] for r in refused)} of {len(refused)}",
            "handled": f"{sum(r['clear'] for r in usable)} of {len(usable)}",
            "tracebacks": sum(r["traceback"] for r in rows),
            "changed": sum(r["changed_bytes"] for r in rows)}


def counts_table(rows: list[dict], against: list[dict] | None = None, against_name: str = "") -> tuple[list, list]:
    """The counts for this checkout (and for another one, side by side): header and rows of text."""
    mine, other = counts(rows), counts(against) if against else None
    header = ["figure", "this checkout"] + ([against_name] if other else [])

    def line(what, key, fmt="{}"):
        return [what, fmt.format(mine[key])] + ([fmt.format(other[key])] if other else [])

    return header, [line("hostile inputs tried", "tried"),
                    line("refused with one clear line, exit 2, no traceback", "refused"),
                    line("usable inputs handled (exit 0, the problem named in the output)", "handled"),
                    line("tracebacks", "tracebacks"),
                    line("bytes of user data changed (goal: 0)", "changed", "{:,}")]


def notes(rows: list[dict], against: list[dict] | None, against_name: str, timeout: float) -> list[str]:
    """What the table does not say: the cases not as expected, how the other checkout ran, the cases' names."""
    out = [f"not as expected here: {r['case']} ({'; '.join(r['problems'])[:160]})" for r in rows if not r["clear"]]
    if against:
        out.append(f"{against_name}: the same table, each case in its own `python -m cytokit.cli` process "
                   f"({timeout:.0f} s and {MEMORY_LIMIT // 2**30} GiB of address space at most; a case cut there "
                   f"counts as not clear); as expected there: "
                   f"{', '.join(r['case'] for r in against if r['clear']) or 'none'}")
    return out + ["the cases: " + "; ".join(r["case"] for r in rows)]


def main() -> None:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--code", type=Path, help="a checkout of the project to run the table against (subprocesses)")
    p.add_argument("--against", type=Path, help="also run the table against this checkout, side by side")
    p.add_argument("--timeout", type=float, default=300, help="seconds per case with --code (default 300)")
    p.add_argument("--against-name", help="how the table names the --against checkout, e.g. 'release 550df80'")
    p.add_argument("--write", action="store_true", help="then rewrite bench/RESULTS.md from the results")
    args = p.parse_args()
    report = _common.Report("hostile", SECTION[3:], quick=args.quick)
    print(f"== hostile inputs against {args.code or 'this checkout'}", flush=True)
    rows = run_table(args.code.resolve() if args.code else None, args.timeout)
    against = None
    if args.against:
        print(f"== hostile inputs against {args.against}", flush=True)
        against = run_table(args.against.resolve(), args.timeout)
    name = args.against_name or str(args.against)
    report.figure("hostile inputs tried", len(rows), "cases")
    report.figure("clear outcome", sum(r["clear"] for r in rows), "cases", ratio=sum(r["clear"] for r in rows) / len(rows),
                  ratio_of="of the cases", target="all", met=all(r["clear"] for r in rows))
    report.figure("bytes of user data changed", sum(r["changed_bytes"] for r in rows), "bytes", target="0",
                  met=not any(r["changed_bytes"] for r in rows))
    report.show_table(*counts_table(rows, against, name))
    for text in notes(rows, against, name, args.timeout):
        report.note(text)
    # a table of another checkout (--code) is not this checkout's result
    print(f"saved {report.save(args.out if args.out or args.code is None else _common.SCRATCH)}")
    if args.write and args.code is None:
        import run_all

        print(f"wrote {run_all.write_results(_common.result_dir(args.out, args.quick), args.quick)}")


if __name__ == "__main__":
    main()
