"""Run the book: execute chapter notebooks with papermill, then build the book.

Each chapter runs in its own folder ``RUN_DIR/<NN_name>/`` (executed notebook,
artifacts, ``metrics.json``); the source notebooks in ``notebooks/`` are only read.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from cytokit import __version__, io, params as params_mod, paths, profiles


class RunError(RuntimeError):
    """A run that cannot start or did not finish; the message says what to do."""


class ChapterFailed(RunError):
    """A chapter raised: names the notebook, the cell and the error; keeps the partial notebook."""


@dataclass(frozen=True)
class Chapter:
    name: str      # "01_data"
    source: Path   # notebooks/01_data.ipynb

    @property
    def number(self) -> str:
        return self.name.split("_", 1)[0]


@dataclass
class RunResult:
    run_dir: Path
    chapters: list[dict] = field(default_factory=list)
    book_index: Path | None = None


def chapters(notebooks_dir=None) -> list[Chapter]:
    """The book's chapters: ``notebooks/NN_name.ipynb`` in order."""
    folder = Path(notebooks_dir or paths.notebooks_dir())
    found = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    return [Chapter(p.stem, p) for p in found]


def select(all_chapters: list[Chapter], only=None) -> list[Chapter]:
    """Chapters named by ``only`` (``01``, ``01_data``); all when ``only`` is empty."""
    if not only:
        return list(all_chapters)
    wanted = [str(o) for o in only]
    picked = [c for c in all_chapters if c.name in wanted or c.number in wanted]
    unknown = [w for w in wanted if not any(w in (c.name, c.number) for c in all_chapters)]
    if unknown:
        names = ", ".join(c.name for c in all_chapters)
        raise RunError(f"unknown chapter(s) {', '.join(unknown)}; the chapters are: {names}")
    return picked


def declared_parameters(notebook: Path) -> dict:
    """Names and defaults of a notebook's ``parameters`` cell."""
    import papermill

    return papermill.inspect_notebook(str(notebook))


def _check_run_dir(run_dir: Path, todo: list[Chapter], force: bool) -> None:
    """Refuse to overwrite an earlier chapter's outputs unless ``force`` says so."""
    done = [c.name for c in todo if (run_dir / c.name / f"{c.name}.ipynb").exists()]
    if done and not force:
        raise RunError(
            f"{run_dir} already holds executed chapters ({', '.join(done)}). Nothing was changed. "
            "Pass --force to run them again in place, or --out NEW_FOLDER for a separate run."
        )


def _execute(chapter: Chapter, params: dict, run_dir: Path, log) -> dict:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    out_dir = run_dir / chapter.name
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / f"{chapter.name}.ipynb"
    split_log = out_dir / "splits_read.txt"
    split_log.unlink(missing_ok=True)
    os.environ["CYTOKIT_SPLIT_LOG"] = str(split_log)  # inherited by the chapter's kernel
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(chapter.source), str(executed), parameters=params, cwd=str(out_dir),
            kernel_name="python3", progress_bar=False, log_output=False,
        )
    except PapermillExecutionError as err:
        raise ChapterFailed(
            f"chapter {chapter.name} ({chapter.source}) failed in cell {err.cell_index} "
            f"(execution count {err.exec_count}): {err.ename}: {err.evalue}\n"
            f"The partial executed notebook is kept at {executed}"
        ) from None
    seconds = time.perf_counter() - start
    if not (out_dir / "metrics.json").exists():
        log(f"  note: {chapter.name} wrote no metrics.json")
    return {"chapter": chapter.name, "seconds": round(seconds, 1), "notebook": str(executed),
            "parameters": params}


RECORD = "chapter-run.json"


def _upstream(run_dir: Path, chapter: Chapter) -> dict:
    """Fingerprints of the earlier chapters' ``metrics.json`` in the run folder."""
    import hashlib

    out = {}
    for metrics in sorted(run_dir.glob("[0-9][0-9]_*/metrics.json")):
        name = metrics.parent.name
        if name < chapter.name:
            out[name] = hashlib.sha256(metrics.read_bytes()).hexdigest()
    return out


ATTEMPT = "attempt.json"
#: What a killed chapter leaves to continue from: its training backup (last finished
#: epoch) and Keras Tuner's trial folder (finished trials are not run again).
RESUMABLE = ("backup", "tuner")


def _keep_resumable_state_only_if_same_attempt(folder: Path, params: dict, upstream: dict, resume: bool, log) -> None:
    """Let a training backup or a search's finished trials resume only the attempt that wrote them.

    A killed chapter leaves ``backup/`` (the last finished epoch) and, in chapter 03,
    ``tuner/`` (the trials done so far); ``--resume`` with the same parameters and inputs
    continues from them. Any other run of the chapter - new parameters, changed earlier
    chapters, or a plain ``--force`` re-run - starts afresh instead of silently restoring
    weights or trial scores obtained under other settings.
    """
    attempt = {"parameters": params, "upstream": upstream}
    record = folder / ATTEMPT
    as_written = json.loads(json.dumps(attempt, default=io._jsonable))
    same = resume and record.exists() and io.read_json(record) == as_written
    for name in RESUMABLE:
        state = folder / name
        if state.exists() and not same:
            log(f"  note: removing {state}: it belongs to an earlier attempt with other settings")
            shutil.rmtree(state)
    folder.mkdir(parents=True, exist_ok=True)
    io.write_json(record, attempt)


def _is_current(run_dir: Path, chapter: Chapter, params: dict) -> bool:
    """True when the chapter's outputs exist and were made from these parameters and inputs."""
    folder = run_dir / chapter.name
    record = folder / RECORD
    if not ((folder / f"{chapter.name}.ipynb").exists() and (folder / "metrics.json").exists()
            and record.exists()):
        return False
    done = io.read_json(record)
    return done.get("parameters") == params and done.get("upstream") == _upstream(run_dir, chapter)


def resume_profile(run_dir) -> str:
    """The profile a run folder was made with (from its ``run.json``)."""
    record = Path(run_dir) / "run.json"
    if not record.is_file():
        raise RunError(f"{record} not found: {run_dir} is not a run folder to resume")
    return io.read_json(record)["profile"]


def run(profile: str = paths.DEFAULT_PROFILE, out=None, data_dir=None, only=None,
        force: bool = False, book: bool = True, overrides: dict | None = None,
        log=print, resume: bool = False) -> RunResult:
    """Execute the chosen chapters of the book under a profile, then build the book.

    Profile and chapter problems are reported before anything runs; a failing chapter
    stops the run with :class:`ChapterFailed`. With ``resume`` only chapters whose
    outputs are missing, or whose parameters or upstream chapters' results changed,
    are executed again (a chapter re-run makes every later chapter stale).
    """
    prof = profiles.load(profile)
    todo = select(chapters(), only or prof["only"])
    if not todo:
        raise RunError(f"no chapter notebooks found in {paths.notebooks_dir()}")
    run_dir = Path(out).resolve() if out else paths.default_run_dir(prof["name"])
    if data_dir not in (None, ""):
        data_dir = Path(data_dir).expanduser().resolve()
        if not data_dir.is_dir():
            raise RunError(f"--data-dir {data_dir} does not exist or is not a folder (see data/README.md)")
    _check_run_dir(run_dir, todo, force or resume)
    plans = []
    for chapter in todo:
        declared = declared_parameters(chapter.source)
        wanted = profiles.chapter_parameters(prof, chapter.name)
        wanted.update(overrides or {})
        wanted.update({"profile": prof["name"], "run_dir": str(run_dir)})
        if data_dir is not None:
            wanted["data_dir"] = str(data_dir)
        elif wanted.get("data_dir"):
            wanted["data_dir"] = str((paths.project_root() / wanted["data_dir"]).resolve())
        chosen = {k: v for k, v in wanted.items() if k in declared}
        params_mod.check(chosen, chapter.name)
        plans.append((chapter, chosen))
    run_dir.mkdir(parents=True, exist_ok=True)
    os.environ["CYTOKIT_BOOK"] = "1"           # plotly figures as offline HTML for the book
    os.environ.setdefault("TQDM_DISABLE", "1")   # progress bars would freeze into the pages
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    result = RunResult(run_dir=run_dir)
    record = {"profile": prof["name"], "description": prof["description"], "cytokit": __version__,
              "python": platform.python_version(), "machine": platform.platform(),
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "chapters": result.chapters}
    log(f"Running {len(plans)} chapter(s) with profile '{prof['name']}' into {run_dir}")
    for i, (chapter, params) in enumerate(plans, start=1):
        if resume and _is_current(run_dir, chapter, params):
            log(f"[{i}/{len(plans)}] {chapter.name} is up to date, kept")
            continue
        log(f"[{i}/{len(plans)}] {chapter.name} ...")
        upstream = _upstream(run_dir, chapter)
        (run_dir / chapter.name / RECORD).unlink(missing_ok=True)  # a failed re-run is never "current"
        _keep_resumable_state_only_if_same_attempt(run_dir / chapter.name, params, upstream, resume, log)
        result.chapters.append(_execute(chapter, params, run_dir, log))
        io.write_json(run_dir / chapter.name / RECORD, {"parameters": params, "upstream": upstream})
        io.write_json(run_dir / "run.json", record)
        log(f"[{i}/{len(plans)}] {chapter.name} done in {result.chapters[-1]['seconds']:.0f} s")
    record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    io.write_json(run_dir / "run.json", record)
    if book:
        from cytokit import book as book_mod

        log("Building the book ...")
        result.book_index = book_mod.build(run_dir, log=log)
        log(f"Book: {result.book_index}")
    return result
