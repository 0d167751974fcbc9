"""Run the book: execute chapter notebooks with papermill, then build the book.

Each chapter runs in its own folder ``RUN_DIR/<NN_name>/`` (executed notebook,
artifacts, ``metrics.json``); the source notebooks in ``notebooks/`` are only read.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from cytokit import __version__, arguments, io, native, paths
from cytokit.book import build, parameters, profiles, records
from cytokit.book.records import RecordError
from cytokit.data import synthetic, taxonomy
from cytokit.data.outputs import check_folder_output
from cytokit.data.tree import check_dataset, class_folders, shown


class RunError(RuntimeError):
    """A run that cannot start or did not finish; the message says what to do."""


class ChapterFailed(RunError):
    """A chapter raised: names the notebook, the cell and the error; keeps the partial notebook."""


@dataclass(frozen=True)
class Notebook:
    """A chapter's source notebook: ``notebooks/01_data.ipynb`` is chapter ``01_data``."""

    name: str
    source: Path

    @property
    def number(self) -> str:
        return self.name.split("_", 1)[0]


@dataclass
class RunResult:
    run_dir: Path
    chapters: list[dict] = field(default_factory=list)
    book_index: Path | None = None


def chapters(notebooks_dir=None) -> list[Notebook]:
    """The book's chapters: ``notebooks/NN_name.ipynb`` in order."""
    folder = Path(notebooks_dir or paths.notebooks_dir())
    found = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    return [Notebook(p.stem, p) for p in found]


def select(all_chapters: list[Notebook], only=None) -> list[Notebook]:
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


def _check_run_dir(run_dir: Path, todo: list[Notebook], force: bool) -> None:
    """Refuse to overwrite an earlier chapter's outputs unless ``force`` says so."""
    done = [c.name for c in todo if (run_dir / c.name / f"{c.name}.ipynb").exists()]
    if done and not force:
        raise RunError(
            f"{run_dir} already holds executed chapters ({', '.join(done)}). Nothing was changed. "
            "Pass --force to run them again in place, or --out NEW_FOLDER for a separate run."
        )


def _execute(chapter: Notebook, params: dict, run_dir: Path, log) -> dict:
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
        # The kernel inherits fd 2, so its C++ lines stay off the page; the cell bar stays on the terminal.
        with native.stderr_to(out_dir / KERNEL_LOG, keep_python=True):
            papermill.execute_notebook(
                str(chapter.source), str(executed), parameters=params, cwd=str(out_dir),
                kernel_name="python3", progress_bar=_cell_bar(chapter.name), log_output=False,
                extra_arguments=["--IPKernelApp.capture_fd_output=False"],
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


def _cell_bar(name: str) -> dict:
    """Papermill's per-cell bar, on a terminal only: a long chapter shows that it moves, a log stays clean."""
    return {"file": sys.stderr, "desc": f"  {name}", "leave": False, "mininterval": 1.0,
            "disable": not sys.stderr.isatty()}


#: A chapter's kernel writes what C++ libraries print (TensorFlow's start-up lines) here.
KERNEL_LOG = "kernel.log"


RECORD = "chapter-run.json"
#: The book's first page, written from every chapter's results after they have run.
FINDINGS = "findings"


def _upstream(run_dir: Path, chapter: Notebook) -> dict:
    """Fingerprints of the earlier chapters' ``metrics.json`` in the run folder."""
    import hashlib

    out = {}
    for metrics in sorted(run_dir.glob("[0-9][0-9]_*/metrics.json")):
        name = metrics.parent.name
        if name < chapter.name:
            out[name] = hashlib.sha256(metrics.read_bytes()).hexdigest()
    return out


ATTEMPT = "attempt.json"
#: What a killed chapter leaves to continue from: its training backups (last finished
#: epoch, one per training seed) and Keras Tuner's trial folder (finished trials).
RESUMABLE = ("backup", "backup-seed*", "tuner")


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
    same = resume and record.exists() and records.same_attempt(record, attempt)
    for pattern in RESUMABLE:
        for state in sorted(folder.glob(pattern)):
            if state.is_dir() and not same:
                log(f"  note: removing {state}: it belongs to an earlier attempt with other settings")
                shutil.rmtree(state)
    folder.mkdir(parents=True, exist_ok=True)
    io.write_json(record, attempt)


def _is_current(run_dir: Path, chapter: Notebook, params: dict) -> bool:
    """True when the chapter's outputs exist and were made from these parameters and inputs."""
    folder = run_dir / chapter.name
    if not _has_outputs(run_dir, chapter):
        return False
    done = records.chapter_record(folder)
    return done["parameters"] == io.to_jsonable(params) and done["upstream"] == _upstream(run_dir, chapter)


def _has_outputs(run_dir: Path, chapter: Notebook) -> bool:
    folder = run_dir / chapter.name
    return all((folder / name).exists() for name in (f"{chapter.name}.ipynb", "metrics.json", RECORD))


def _plans(prof: dict, todo: list[Notebook], run_dir: Path, data_dir, overrides: dict) -> list:
    """Each chapter with the parameters it declares, checked; unknown names are refused."""
    names = [c.name for c in chapters()]
    strays = [key for key in prof["chapters"] if not any(key in (n, n[:2]) for n in names)]
    if strays:
        raise RunError(f"profile {prof['name']!r} has settings for unknown chapter(s) {', '.join(map(str, strays))}; "
                       f"the chapters are: {', '.join(names)}")
    declared = {chapter.name: parameters.declared(chapter.source) for chapter in todo}
    known = sorted(set().union(*declared.values()) - {"run_dir", "profile"})
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise RunError(f"unknown parameter(s) {', '.join(unknown)} for chapters "
                       f"{', '.join(c.name for c in todo)}; the known ones are: {', '.join(known)}")
    plans = []
    for chapter in todo:
        wanted = {**profiles.chapter_parameters(prof, chapter.name), **overrides}
        folder = run_dir / chapter.name
        wanted.update({"profile": prof["name"], "run_dir": ".."})  # the kernel runs in the chapter folder
        parameters.check({k: wanted[k] for k in ("data_dir", "study_models_dir") if k in wanted}, chapter.name)
        if data_dir is not None:
            wanted["data_dir"] = os.path.relpath(data_dir, folder)
        elif wanted.get("data_dir"):
            wanted["data_dir"] = os.path.relpath(
                arguments.resolved("data_dir", paths.project_root() / wanted["data_dir"]), folder)
        if wanted.get("study_models_dir"):
            wanted["study_models_dir"] = os.path.relpath(
                arguments.resolved("study_models_dir", paths.project_root() / wanted["study_models_dir"]), folder)
        chosen = {k: v for k, v in wanted.items() if k in declared[chapter.name]}
        parameters.check(chosen, chapter.name)
        plans.append((chapter, chosen))
    return plans


def _earlier_chapters(run_dir: Path, names: list[str]) -> list[dict]:
    """The run record's entries of chapters a resumed run may keep (their times stay on the findings page)."""
    if not (run_dir / "run.json").is_file():
        return []
    old = _run_record(run_dir)
    entries = [*old.get("kept", []), *old.get("chapters", [])]
    return [e for e in entries if e["chapter"] in names]


def _run_record(run_dir) -> dict:
    """A run folder's ``run.json``, every field checked, or a RunError saying why it cannot be resumed."""
    try:
        return records.run_record(run_dir)
    except RecordError as err:
        raise RunError(str(err)) from None


def resume_profile(run_dir) -> str:
    """The profile a run folder was made with (from its ``run.json``)."""
    record = _run_record(run_dir)
    profile = record.get("profile")
    if not isinstance(profile, str) or not profile:
        raise RunError(f"{shown(Path(run_dir) / 'run.json')} records no profile: pass --profile NAME with --resume")
    return profile


def recorded_choices(run_dir) -> dict:
    """The command-line choices of the run that wrote ``run_dir`` (``-p``, ``--only``, ``--data-dir``,
    ``--study-models``), or {} for a run recorded before they were kept."""
    choices = _run_record(run_dir).get("command", {})
    return choices if isinstance(choices, dict) else {}


def _choices_for(run_dir: Path, resume: bool, given: dict) -> dict:
    """The choices this run uses: those given, else (when resuming) those the run folder recorded."""
    earlier = recorded_choices(run_dir) if resume else {}
    out = {}
    for name in ("overrides", "only", "data_dir", "study_models"):
        value = given[name]
        absent = value is None if name == "overrides" else value in (None, "", [], ())  # -p {} is given
        out[name] = earlier.get(name) if absent else value
    out["overrides"] = dict(out["overrides"] or {})
    out["only"] = [str(c) for c in out["only"]] if out["only"] else None
    for name, option in (("data_dir", "--data-dir"), ("study_models", "--study-models")):
        out[name] = str(arguments.resolved(option, out[name])) if out[name] not in (None, "") else None
    return out


def _is_run_folder(folder: Path) -> bool:
    """True for a folder a run wrote (its record, lock or chapter folders), or an empty or absent one."""
    if not folder.is_dir():
        return True
    names = [p.name for p in folder.iterdir()]
    return not names or "run.json" in names or io.LOCK_NAME in names or FINDINGS in names \
        or any(n[:2].isdigit() and n[2:3] == "_" for n in names)


def _check_places(run_dir: Path, plans: list, data_dir, force: bool) -> None:
    """Refuse a run folder that is a file, inside a dataset, or a folder of something else."""
    data_dirs = [data_dir] if data_dir is not None else []
    data_dirs += [Path(os.path.normpath(run_dir / c.name / p["data_dir"])) for c, p in plans if p.get("data_dir")]
    check_folder_output(run_dir, "--out", data_dirs=data_dirs)
    if not force and not _is_run_folder(run_dir):
        raise RunError(f"--out {shown(run_dir)} holds other files and is not a run folder: choose a new or empty "
                       "folder, or pass --force to write the run into it; nothing was written")


def _check_study_inputs(plans: list, run_dir: Path) -> None:
    """Refuse a run of the study's own models that lacks them or its images, saying how to get each.

    Chapters get ``data_dir`` and ``study_models_dir`` relative to their folder
    (``RUN_DIR/<chapter>``); an unset ``study_models_dir`` means the chapters' default,
    ``<shared>/reference/study-models`` (:meth:`cytokit.book.chapter.Chapter.models`).
    """
    study = [(chapter, params) for chapter, params in plans if params.get("model_source") == "study"]
    if not study:
        return

    def absolute(chapter, value) -> Path:
        return Path(os.path.normpath(run_dir / chapter.name / value))

    model_files = ("baseline.keras", "tuned.keras", "augmented.keras")  # Chapter.models' study files
    problems = []
    folders = {absolute(c, p["study_models_dir"]) if p.get("study_models_dir")
               else paths.shared_dir() / "reference" / "study-models" for c, p in study}
    for folder in sorted(folders):
        missing = [name for name in model_files if not (folder / name).is_file()]
        if missing:
            problems.append(f"the study's trained models ({', '.join(missing)}) are not in {folder}: get them with "
                            "`cytokit fetch-study-models DIR` and pass --study-models DIR (see data/README.md)")
    images = {absolute(c, p["data_dir"]) for c, p in plans if p.get("data_dir")}
    for folder in sorted(images):
        if not folder.is_dir():
            problems.append(f"the images folder {folder} does not exist: pass --data-dir with a folder of real "
                            "images, one folder per class (how to get the real dataset: data/README.md)")
        else:
            _check_study_classes(folder)
    if problems:
        raise RunError(f"the study's own models cannot run: {'; '.join(problems)}. Nothing was run.")


def _check_synth_mark(data_dir: Path) -> None:
    """A dataset's SYNTH.json, when it has one, must be one ``cytokit synth`` wrote (the chapters read it)."""
    try:
        synthetic.read_meta(data_dir)
    except ValueError as err:
        raise RunError(f"--data-dir: {err}") from None


def _check_study_classes(folder: Path) -> None:
    """Refuse class folders the study's models have no output for: their 21 classes are fixed."""
    unknown = [name for name in class_folders(folder) if not taxonomy.is_known(name)]
    if unknown:
        listed = ", ".join(f"{shown(n)}/" for n in unknown[:8]) + (" ..." if len(unknown) > 8 else "")
        raise RunError(f"the images folder {shown(folder)} holds folder(s) {listed} that are not classes of the "
                       f"study's models, which have exactly the {len(taxonomy.CODES)} outputs "
                       f"{', '.join(taxonomy.CODES)}: move them out of the dataset folder (or point --data-dir at a copy without them); "
                       "nothing was run")


def run(profile: str = paths.DEFAULT_PROFILE, out=None, data_dir=None, only=None,
        force: bool = False, book: bool = True, overrides: dict | None = None,
        log=print, resume: bool = False, study_models=None) -> RunResult:
    """Execute the chosen chapters of the book under a profile, then build the book.

    Profile, parameter, dataset and folder problems are reported before anything runs or
    is written; a failing chapter stops the run with :class:`ChapterFailed`. The run
    folder is locked while the run writes into it. With ``resume`` only chapters whose
    outputs are missing, or whose parameters or upstream chapters' results changed, are
    executed again (a chapter re-run makes every later chapter stale), and the choices
    not given again (``overrides``, ``only``, ``data_dir``, ``study_models``; None means
    not given) are those recorded in the folder's ``run.json``.
    """
    prof = profiles.load(profile)
    run_dir = arguments.resolved("--out", out) if out else paths.default_run_dir(prof["name"])
    choices = _choices_for(run_dir, resume, {"overrides": overrides, "only": only, "data_dir": data_dir,
                                             "study_models": study_models})
    todo = select(chapters(), choices["only"] or prof["only"])
    if not todo:
        raise RunError(f"no chapter notebooks found in {paths.notebooks_dir()}")
    data_dir = choices["data_dir"]
    if data_dir is not None:
        data_dir = Path(data_dir)
        if not data_dir.is_dir():
            raise RunError(f"--data-dir {shown(data_dir)} does not exist or is not a folder (see data/README.md)")
        check_dataset(data_dir)
        _check_synth_mark(data_dir)
    every_override = dict(choices["overrides"])
    if choices["study_models"]:
        every_override["study_models_dir"] = choices["study_models"]
    plans = _plans(prof, todo, run_dir, data_dir, every_override)
    _check_study_inputs(plans, run_dir)
    _check_places(run_dir, plans, data_dir, force)
    with io.folder_lock(run_dir, log=log):
        _check_run_dir(run_dir, todo, force or resume)
        if resume:
            _check_records(run_dir, plans)
        return _run_locked(prof, plans, run_dir, choices, book, log, resume)


def _check_records(run_dir: Path, plans: list) -> None:
    """Every record a resume reads, checked before any chapter runs: a damaged one is named, nothing is run."""
    try:
        for chapter, _ in plans:
            if _has_outputs(run_dir, chapter):
                records.chapter_record(run_dir / chapter.name)
    except RecordError as err:
        raise RunError(f"{err}; nothing was run") from None


def _run_locked(prof: dict, plans: list, run_dir: Path, choices: dict, book: bool, log, resume: bool) -> RunResult:
    """The chapters, the findings page and the book, once every check has passed and the lock is held."""
    os.environ["CYTOKIT_BOOK"] = "1"           # plotly figures as offline HTML for the book
    os.environ.setdefault("TQDM_DISABLE", "1")   # progress bars would freeze into the pages
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    result = RunResult(run_dir=run_dir)
    earlier = _earlier_chapters(run_dir, [c.name for c, _ in plans]) if resume else []
    record = {"profile": prof["name"], "description": prof["description"], "cytokit": __version__,
              "python": platform.python_version(), "machine": platform.platform(),
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": choices, "chapters": result.chapters,
              "kept": earlier}
    log(f"Running {len(plans)} chapter(s) with profile '{prof['name']}' into {run_dir}")
    for i, (chapter, params) in enumerate(plans, start=1):
        if resume and _is_current(run_dir, chapter, params):
            log(f"[{i}/{len(plans)}] {chapter.name} is up to date, kept")
            continue
        log(f"[{i}/{len(plans)}] {chapter.name} ...")
        upstream = _upstream(run_dir, chapter)
        (run_dir / chapter.name / RECORD).unlink(missing_ok=True)  # a failed re-run is never "current"
        _keep_resumable_state_only_if_same_attempt(run_dir / chapter.name, params, upstream, resume, log)
        io.write_json(run_dir / "run.json", record)  # a killed run can be resumed with its choices
        result.chapters.append(_execute(chapter, params, run_dir, log))
        io.write_json(run_dir / chapter.name / RECORD, {"parameters": params, "upstream": upstream})
        io.write_json(run_dir / "run.json", record)
        log(f"[{i}/{len(plans)}] {chapter.name} done in {result.chapters[-1]['seconds']:.0f} s")
    summary = Notebook(FINDINGS, paths.notebooks_dir() / f"{FINDINGS}.ipynb")
    if summary.source.is_file():
        log("Writing the findings page ...")
        _execute(summary, {"profile": prof["name"], "run_dir": ".."}, run_dir, log)
    record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    io.write_json(run_dir / "run.json", record)
    if book:
        log("Building the book ...")
        result.book_index = build.build(run_dir, log=log)
        log(f"Book: {result.book_index}")
    return result
