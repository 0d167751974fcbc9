"""The ``cytokit`` command: generate data, validate a dataset, run and build the book.

A mistake in what a user typed or pointed at (a missing folder, an output that would
overwrite an input, a value out of range, a folder another run holds) ends with one
line, ``cytokit <command>: error: <what and what to do>``, and exit code 2, before
anything is written. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from pathlib import Path

import yaml

from cytokit import arguments, data, io, native, paths
from cytokit.arguments import OneLineParser, UsageError
from cytokit.book import build, cluster, runner
from cytokit.book.build import BookError
from cytokit.book.parameters import ParameterError
from cytokit.book.profiles import ProfileError
from cytokit.book.runner import RunError
from cytokit.data import synthetic, tree
from cytokit.data.outputs import OutputError, check_file_output
from cytokit.data.tree import DatasetError, printable, shown
from cytokit.models import study_fetch, study_import
from cytokit.data.validation import MAX_FILE_BYTES
from cytokit.models.distributed import ClusterError


#: What a user can cause by what they typed or pointed at; reported in one line, exit code 2.
USER_ERRORS = (UsageError, RunError, ProfileError, ParameterError, BookError, ClusterError, DatasetError,
               OutputError, io.LockError, ValueError, OSError)


def _synth(args) -> int:
    arguments.rule("--n-images", args.n_images, "synth_images")
    arguments.rule("--size", args.size, "image_size")
    arguments.rule("--difficulty", args.difficulty, "synth_difficulty")
    arguments.rule("--seed", args.seed, "synth_seed")
    arguments.resolved("OUT_DIR", args.out_dir)
    synthetic.main_synth(args.out_dir, n_images=args.n_images, seed=args.seed, size=args.size,
                         difficulty=args.difficulty, progress=not args.quiet)
    return 0


def _validate(args) -> int:
    if not args.any_size:
        arguments.rule("--size", args.size, "expected_size")
    max_bytes = arguments.mebibytes("--max-file-mb", args.max_file_mb)
    if args.report:
        arguments.resolved("--report", args.report)
    root = tree.dataset_root(args.data_dir)
    if args.report:
        check_file_output(args.report, "--report", data_dirs=[root], force=args.force)
    idx = data.index(root, progress=not args.quiet)
    checked = data.validate(root, idx, expected_size=None if args.any_size else (args.size, args.size),
                            progress=not args.quiet, max_bytes=max_bytes)
    bad = checked[checked["status"] == "bad"]
    converted = checked[checked["status"] == "converted"]
    n_ok = int((checked["status"] != "bad").sum())
    print(f"{shown(root)}: {len(checked)} image files in {checked['cls'].nunique()} classes; "
          f"{n_ok} valid, {len(bad)} bad (excluded), {len(converted)} usable after conversion")
    for row in bad.itertuples():
        print(f"  BAD  {shown(row.path)}: {printable(row.reason)}")
    for row in converted.itertuples():
        print(f"  NOTE {shown(row.path)}: {printable(row.reason)}")
    for cls in idx.attrs.get("empty_classes", []):
        print(f"  EMPTY class folder {shown(cls)}/: no images in it")
    for path, reason in idx.attrs.get("skipped", {}).items():
        print(f"  SKIP {path}: {reason}")
    plain = [p for p in idx.attrs.get("ignored", []) if p not in idx.attrs.get("skipped", {})]
    if plain:
        print(f"  ignored {len(plain)} non-image file(s): {', '.join(plain[:10])}"
              + (" ..." if len(plain) > 10 else ""))
    if args.report:
        io.write_csv(args.report, checked)
        print(f"report written to {shown(args.report)}")
    return 1 if (args.strict and len(bad)) else 0


def parse_overrides(items) -> dict | None:
    """``-p NAME=VALUE`` items as a mapping (values read as YAML), or None when none were given.

    A number YAML 1.1 reads as text (``1e-3``) is a number where the parameter wants one;
    a name given twice with different values is refused.
    """
    if not items:
        return None
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"-p expects NAME=VALUE, got {item!r}")
        try:
            parsed = arguments.number_text(key, yaml.safe_load(value))
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise UsageError(f"-p {item[:60]!r}: the value is not valid YAML ({problem}); write lists as [1, 2] and "
                             "quote text with spaces") from None
        except RecursionError:
            raise UsageError(f"-p {key}: the value nests too deep to be a parameter") from None
        if key in overrides and overrides[key] != parsed:
            raise UsageError(f"-p {key} given twice ({overrides[key]!r} and {parsed!r}): give it once")
        overrides[key] = parsed
    return overrides


def _folder_options(args, overrides: dict | None) -> tuple:
    """--data-dir and --study-models, each refused when a ``-p`` of its parameter names another folder (an agreeing
    ``-p`` is dropped), and the overrides left; every folder option is checked for links that loop."""
    overrides = None if overrides is None else dict(overrides)
    folders = {}
    for param, option, given in (("data_dir", "--data-dir", args.data_dir),
                                 ("study_models_dir", "--study-models", args.study_models)):
        if given is not None and overrides and param in overrides:
            value = overrides.pop(param)
            if not isinstance(value, str) or not value:
                raise UsageError(f"-p {param}={value!r} must be a folder path")
            given = arguments.same_folder(f"-p {param}", paths.project_root() / value, option, given)
        folders[option] = given
    for option, value in (("--out", args.out), *folders.items(), ("--resume", args.resume)):
        if value is not None:
            arguments.resolved(option, value)
    return folders["--data-dir"], folders["--study-models"], overrides


def _run(args) -> int:
    data_dir, study_models, overrides = _folder_options(args, parse_overrides(args.param))
    out, profile = args.out, args.profile
    if args.resume:
        if args.out and arguments.resolved("--out", args.out) != arguments.resolved("--resume", args.resume):
            raise UsageError("--resume RUN_DIR continues RUN_DIR: leave out --out, or give the same folder")
        out = args.resume
        profile = profile or runner.resume_profile(args.resume)
    runner.run(profile=profile or "demo", out=out, data_dir=data_dir, only=args.only,
               force=args.force, book=not args.no_book, overrides=overrides, resume=bool(args.resume),
               study_models=study_models)
    return 0


def _import(args) -> int:
    arguments.resolved("OUT", args.out)
    study_import.main_import(args.pickle, args.out, force=args.force)
    return 0


def _fetch_study_models(args) -> int:
    base_url = arguments.base_url("--base-url", args.base_url)
    limits = study_fetch.Limits(
        max_bytes=None if args.max_file_mb is None else arguments.mebibytes("--max-file-mb", args.max_file_mb),
        deadline=arguments.seconds("--deadline", args.deadline),
        stall=arguments.seconds("--stall-timeout", args.stall_timeout))
    arguments.resolved("OUT_DIR", args.out_dir)
    try:
        study_fetch.main_fetch(args.out_dir, base_url=base_url, force=args.force, progress=not args.quiet,
                               limits=limits)
    except study_fetch.FetchError as err:
        print(f"cytokit fetch-study-models: error: {error_line(err)}", file=sys.stderr)
        return 2
    return 0


def _tune(args) -> int:
    return cluster.main_tune(args)


def _book(args) -> int:
    print(build.main_book(args.run_dir))
    return 0


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="cytokit", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="write a synthetic marrow-cell dataset in the real layout")
    s.add_argument("out_dir", type=Path)
    s.add_argument("--n-images", type=int, default=3000, help="63 (3 per class) to 2,000,000 (default 3000)")
    s.add_argument("--seed", type=int, default=0, help="0 to 2,147,483,647 (default 0)")
    s.add_argument("--size", type=int, default=250, help="image side in pixels, 32 to 1024 (default 250)")
    s.add_argument("--difficulty", type=float, default=0.5)
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=_synth)

    v = sub.add_parser("validate", help="decode every image of a dataset and report bad files (read-only)")
    v.add_argument("data_dir", type=Path)
    v.add_argument("--size", type=int, default=250, help="expected width and height (default 250)")
    v.add_argument("--any-size", action="store_true", help="do not flag images of another size")
    v.add_argument("--report", type=Path, help="write the per-file report as CSV here (not inside the dataset)")
    v.add_argument("--force", action="store_true", help="replace an existing --report file")
    v.add_argument("--max-file-mb", type=float, default=MAX_FILE_BYTES / 2**20,
                   help=f"files larger than this are reported bad without being read (default {MAX_FILE_BYTES >> 20})")
    v.add_argument("--strict", action="store_true", help="exit 1 when any file is bad")
    v.add_argument("--quiet", action="store_true")
    v.set_defaults(func=_validate)

    r = sub.add_parser("run", help="execute the chapters with papermill and build the book")
    r.add_argument("--profile", help="smoke, demo (default), full, study, or a path to a YAML profile")
    r.add_argument("--data-dir", help="the dataset's top folder (default: embedded synthetic data)")
    r.add_argument("--out", help="run folder (default: runs/<profile>)")
    r.add_argument("--only", nargs="+", help="chapters to run, e.g. 01 02_baseline")
    r.add_argument("--study-models", help="folder of the study's baseline/tuned/augmented.keras (profile study)")
    r.add_argument("-p", "--param", action="append", help="override a notebook parameter, NAME=VALUE")
    r.add_argument("--force", action="store_true", help="re-run chapters already executed in --out")
    r.add_argument("--resume", metavar="RUN_DIR",
                   help="continue a run folder: execute only chapters whose outputs are missing or out of date, "
                        "with the first run's -p, --only, --data-dir and --study-models unless given again")
    r.add_argument("--no-book", action="store_true", help="execute the chapters only")
    r.set_defaults(func=_run)

    i = sub.add_parser("import-study-model",
                       help="convert one of the study's pickled Keras 2 models to a Keras 3 .keras file, safely")
    i.add_argument("pickle", type=Path, help="a *.model_pickle file from the study's code repository")
    i.add_argument("out", type=Path, help="where to write the .keras file")
    i.add_argument("--force", action="store_true", help="replace an existing OUT file")
    i.set_defaults(func=_import)

    f = sub.add_parser("fetch-study-models",
                       help="download the study's three trained models (pinned commit, SHA-256 checked) "
                            "and convert them to OUT_DIR/{baseline,tuned,augmented}.keras")
    f.add_argument("out_dir", type=Path, help="folder for the .keras files and PROVENANCE.json (not a dataset folder)")
    f.add_argument("--base-url", help="replaces the study repository's raw URL up to and including the commit "
                                      "(a mirror, or file:///path/to/a/checkout)")
    f.add_argument("--force", action="store_true", help="replace .keras files in OUT_DIR this command did not write")
    f.add_argument("--max-file-mb", type=float, help="stop a download after this many MiB (default: each file's "
                                                      "pinned size, about 1.3 MB: a larger file cannot match its "
                                                      "SHA-256)")
    f.add_argument("--deadline", type=float, default=study_fetch_defaults("DEADLINE_S"),
                   help="seconds the whole download may take (default %(default)g)")
    f.add_argument("--stall-timeout", type=float, default=study_fetch_defaults("STALL_S"),
                   help="seconds without a byte before a download is given up (default %(default)g)")
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    f.set_defaults(func=_fetch_study_models)

    t = cluster.add_arguments(sub.add_parser(
        "tune", help="run the chief or one worker of chapter 03's distributed random search"))
    t.set_defaults(func=_tune)

    b = sub.add_parser("book", help="rebuild the book of an existing run folder")
    b.add_argument("run_dir", type=Path)
    b.set_defaults(func=_book)
    return p


def study_fetch_defaults(name: str) -> float:
    """A default of ``fetch-study-models`` (from its module's constants)."""
    return getattr(study_fetch, name)


def error_line(err: BaseException) -> str:
    """What went wrong, printable whatever bytes a file name holds (escape codes shown escaped); an OSError names
    its file."""
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"{shown(err.filename)}: {err.strerror}"
    return printable(str(err).encode("utf-8", errors="replace").decode("utf-8"), keep="\n")


#: What an interrupted command leaves and how to go on, by command (only options the command has).
INTERRUPTED = {
    "run": "nothing half-written is left (run the same command again, or continue with --resume RUN_DIR)",
    "tune": "finished trials are kept (run the same command again to continue the search)",
    "book": "run `cytokit book RUN_DIR` again to rebuild the book",
}
INTERRUPTED_DEFAULT = "nothing half-written is left (run the same command again)"


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so that every atomic write and lock cleans up on the way out."""


def _terminate(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def _sigterm_cleans_up():
    """While the command runs in the main thread, SIGTERM unwinds it like Ctrl-C instead of killing it mid-write."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


#: Commands that load TensorFlow in this process: its C++ start-up lines are kept off the terminal.
LOADS_TENSORFLOW = ("import-study-model", "fetch-study-models", "tune")


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    quiet = args.command in LOADS_TENSORFLOW and argv is None  # a real process, not a test calling main()
    try:
        with _sigterm_cleans_up(), \
                native.stderr_to(os.devnull, keep_python=True) if quiet else contextlib.nullcontext():
            return args.func(args)
    except USER_ERRORS as err:
        print(f"cytokit {args.command}: error: {error_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        how = "terminated" if isinstance(stop, Terminated) else "interrupted"
        print(f"cytokit {args.command}: {how}; {INTERRUPTED.get(args.command, INTERRUPTED_DEFAULT)}",
              file=sys.stderr)
        return 143 if isinstance(stop, Terminated) else 130


if __name__ == "__main__":
    sys.exit(main())
