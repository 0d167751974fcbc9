"""Hostile and careless inputs: how many end in a clear error, and how many bytes of user data change.

Runs the table of ``tests/test_hostile_inputs.py`` (command lines against files a user
could have: overwrites, outputs inside a dataset, cut JPEGs, links, locks, wrong layouts,
malformed archives, crafted HDF5 weights, huge files, servers that never finish, damaged
run records) and counts, per case, whether it gave the expected exit code with one clear
line and no traceback, whether it accepted a hostile input silently (exit 0 without naming
the problem), and how many bytes of the files it must not touch changed; then races 24
processes for one stale run lock. ``--code DIR`` runs the same table against another checkout of the project
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
import hostile_files  # noqa: E402
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
#: Largest file a case's process may write: an unbounded download stops there instead of filling the disk.
FILE_LIMIT = 512 * 2**20


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))


#: TensorFlow's C++ start-up lines on a fresh process's stderr (not the command's messages).
TF_NOISE = re.compile(r"^(WARNING: All log messages before absl|[IWE]\d{4} |To enable the following instructions)")


def run_table(code_dir: Path | None, timeout: float, cases=None) -> list[dict]:
    runner = table.run_cli if code_dir is None else subprocess_runner(code_dir, timeout)
    root = ROOT if code_dir is None else code_dir
    rows = []
    for case in cases or table.CASES:
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
            "silent": sum(r["code"] == 0 and not r["clear"] for r in rows),
            "changed": sum(r["changed_bytes"] for r in rows)}


#: Processes racing for one stale lock.
RACERS = 24


def race(code_dir: Path | None, n: int = RACERS) -> dict:
    """``n`` processes taking over one stale run.lock at once (:func:`hostile_files.lock_race`): how many won."""
    env = None if code_dir is None else {**os.environ, "PYTHONPATH": str(code_dir)}
    work = Path(tempfile.mkdtemp(prefix="cytokit-race-"))
    try:
        said = hostile_files.lock_race(work / "run", n=n, env=env)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"won": said.count("won"), "n": n}


def counts_table(rows: list[dict], against: list[dict] | None = None, against_name: str = "",
                 races: tuple = ()) -> tuple[list, list]:
    """The counts for this checkout (and for another one, side by side): header and rows of text."""
    mine, other = counts(rows), counts(against) if against else None
    for counted, raced in zip((mine, other), races):
        if counted is not None and raced is not None:
            counted["race"] = f"{raced['won']} of {raced['n']}"
    header = ["figure", "this checkout"] + ([against_name] if other else [])

    def line(what, key, fmt="{}"):
        return [what, fmt.format(mine[key])] + ([fmt.format(other.get(key, "–"))] if other else [])

    lines = [line("hostile inputs tried", "tried"),
             line("refused with one clear line, exit 2, no traceback", "refused"),
             line("usable inputs handled (exit 0, the problem named in the output)", "handled"),
             line("tracebacks", "tracebacks"),
             line("silently wrong results (exit 0, the problem not named)", "silent"),
             line("bytes of user data changed (goal: 0)", "changed", "{:,}")]
    if "race" in mine:
        lines.append(line(f"processes holding one stale run.lock after {RACERS} take it over at once (goal: 1)",
                          "race"))
    return header, lines


def notes(rows: list[dict], against: list[dict] | None, against_name: str, timeout: float) -> list[str]:
    """What the table does not say: the cases not as expected, how the other checkout ran, the cases' names."""
    out = [f"not as expected here: {r['case']} ({'; '.join(r['problems'])[:160]})" for r in rows if not r["clear"]]
    if against:
        out.append(f"{against_name}: the same table, each case in its own `python -m cytokit.cli` process "
                   f"(at most {timeout:.0f} s, {MEMORY_LIMIT >> 30} GiB of address space and {FILE_LIMIT >> 20} MiB "
                   "per file written; a case stopped there counts as not clear); as expected there: "
                   f"{', '.join(r['case'] for r in against if r['clear']) or 'none'}")
        silent = [r["case"] for r in against if r["code"] == 0 and not r["clear"]]
        if silent:
            out.append(f"{against_name}, silently wrong: {'; '.join(silent)}")
    return out + ["the cases: " + "; ".join(r["case"] for r in rows)]


def main() -> None:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--code", type=Path, help="a checkout of the project to run the table against (subprocesses)")
    p.add_argument("--against", type=Path, help="also run the table against this checkout, side by side")
    p.add_argument("--timeout", type=float, default=300, help="seconds per case with --code (default 300)")
    p.add_argument("--against-name", help="how the table names the --against checkout, e.g. 'release 550df80'")
    p.add_argument("--write", action="store_true", help="then rewrite bench/RESULTS.md from the results")
    p.add_argument("--cases", help="only the cases whose name holds this text (a quick look; never saved)")
    args = p.parse_args()
    cases = [c for c in table.CASES if args.cases in c.name] if args.cases else None
    report = _common.Report("hostile", SECTION[3:], quick=args.quick)
    print(f"== hostile inputs against {args.code or 'this checkout'}", flush=True)
    rows = run_table(args.code.resolve() if args.code else None, args.timeout, cases)
    against = None
    if args.against:
        print(f"== hostile inputs against {args.against}", flush=True)
        against = run_table(args.against.resolve(), args.timeout, cases)
    races = ()
    if cases is None:
        print("== a race for one stale lock", flush=True)
        races = (race(args.code.resolve() if args.code else None),
                 race(args.against.resolve()) if args.against else None)
        print(f"  won: {[r and r['won'] for r in races]}", flush=True)
    name = args.against_name or str(args.against)
    report.figure("hostile inputs tried", len(rows), "cases")
    report.figure("clear outcome", sum(r["clear"] for r in rows), "cases", ratio=sum(r["clear"] for r in rows) / len(rows),
                  ratio_of="of the cases", target="all", met=all(r["clear"] for r in rows))
    report.figure("bytes of user data changed", sum(r["changed_bytes"] for r in rows), "bytes", target="0",
                  met=not any(r["changed_bytes"] for r in rows))
    report.show_table(*counts_table(rows, against, name, races))
    for text in notes(rows, against, name, args.timeout):
        report.note(text)
    # a table of another checkout (--code) or of some cases only is not this checkout's result
    scratch = args.code is not None or cases is not None
    print(f"saved {report.save(_common.SCRATCH if scratch and not args.out else args.out)}")
    if args.write and not scratch:
        import run_all

        print(f"wrote {run_all.write_results(_common.result_dir(args.out, args.quick), args.quick)}")


if __name__ == "__main__":
    main()
