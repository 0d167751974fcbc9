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
import sys
from pathlib import Path

import yaml

from cytokit import data, io, native
from cytokit.book import build, cluster, runner
from cytokit.book.build import BookError
from cytokit.book.parameters import RULES, ParameterError
from cytokit.book.profiles import ProfileError
from cytokit.book.runner import RunError
from cytokit.data import synthetic, tree
from cytokit.data.outputs import OutputError, check_file_output
from cytokit.data.tree import DatasetError, shown
from cytokit.data.validation import MAX_FILE_BYTES
from cytokit.models.distributed import ClusterError


class UsageError(ValueError):
    """A command-line value that cannot be used; the message names the option."""


#: What a user can cause by what they typed or pointed at; reported in one line, exit code 2.
USER_ERRORS = (UsageError, RunError, ProfileError, ParameterError, BookError, ClusterError, DatasetError,
               OutputError, io.LockError, ValueError, OSError)


def _check_option(option: str, value, rule: str):
    """``value`` if it meets the parameter rule ``rule`` (the profiles' rules), else a UsageError naming ``option``."""
    ok, expected = RULES[rule]
    if not ok(value):
        raise UsageError(f"{option} {value!r} must be {expected}")
    return value


def _synth(args) -> int:
    _check_option("--n-images", args.n_images, "synth_images")
    _check_option("--size", args.size, "image_size")
    _check_option("--difficulty", args.difficulty, "synth_difficulty")
    synthetic.main_synth(args.out_dir, n_images=args.n_images, seed=args.seed, size=args.size,
                         difficulty=args.difficulty, progress=not args.quiet)
    return 0


def _validate(args) -> int:
    if not args.any_size:
        _check_option("--size", args.size, "expected_size")
    if not 0 < args.max_file_mb <= 1024 * 1024:
        raise UsageError(f"--max-file-mb {args.max_file_mb:g} must be a number of MiB above 0")
    root = tree.dataset_root(args.data_dir)
    if args.report:
        check_file_output(args.report, "--report", data_dirs=[root], force=args.force)
    idx = data.index(root, progress=not args.quiet)
    checked = data.validate(root, idx, expected_size=None if args.any_size else (args.size, args.size),
                            progress=not args.quiet, max_bytes=int(args.max_file_mb * 2**20))
    bad = checked[checked["status"] == "bad"]
    converted = checked[checked["status"] == "converted"]
    n_ok = int((checked["status"] != "bad").sum())
    print(f"{shown(root)}: {len(checked)} image files in {checked['cls'].nunique()} classes; "
          f"{n_ok} valid, {len(bad)} bad (excluded), {len(converted)} usable after conversion")
    for row in bad.itertuples():
        print(f"  BAD  {row.path}: {row.reason}")
    for row in converted.itertuples():
        print(f"  NOTE {row.path}: {row.reason}")
    for cls in idx.attrs.get("empty_classes", []):
        print(f"  EMPTY class folder {cls}/: no images in it")
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
    """``-p NAME=VALUE`` items as a mapping (values read as YAML), or None when none were given."""
    if not items:
        return None
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"-p expects NAME=VALUE, got {item!r}")
        try:
            overrides[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise UsageError(f"-p {item!r}: the value is not valid YAML ({problem}); write lists as [1, 2] and "
                             "quote text with spaces") from None
    return overrides


def _run(args) -> int:
    overrides = parse_overrides(args.param)
    out, profile = args.out, args.profile
    if args.resume:
        if args.out and Path(args.out).expanduser().resolve() != Path(args.resume).expanduser().resolve():
            raise UsageError("--resume RUN_DIR continues RUN_DIR: leave out --out, or give the same folder")
        out = args.resume
        profile = profile or runner.resume_profile(args.resume)
    runner.run(profile=profile or "demo", out=out, data_dir=args.data_dir, only=args.only,
               force=args.force, book=not args.no_book, overrides=overrides, resume=bool(args.resume),
               study_models=args.study_models)
    return 0


def _import(args) -> int:
    from cytokit.models import study_import  # here, not above: it loads TensorFlow (seconds)

    study_import.main_import(args.pickle, args.out, force=args.force)
    return 0


def _fetch_study_models(args) -> int:
    from cytokit.models import study_fetch  # here, not above: converting loads TensorFlow (seconds)

    try:
        study_fetch.main_fetch(args.out_dir, base_url=args.base_url, force=args.force, progress=not args.quiet)
    except study_fetch.FetchError as err:
        print(f"cytokit fetch-study-models: error: {err}", file=sys.stderr)
        return 2
    return 0


def _tune(args) -> int:
    return cluster.main_tune(args)


def _book(args) -> int:
    print(build.main_book(args.run_dir))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cytokit", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="write a synthetic marrow-cell dataset in the real layout")
    s.add_argument("out_dir", type=Path)
    s.add_argument("--n-images", type=int, default=3000, help="63 (3 per class) to 2,000,000 (default 3000)")
    s.add_argument("--seed", type=int, default=0)
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
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    f.set_defaults(func=_fetch_study_models)

    t = cluster.add_arguments(sub.add_parser(
        "tune", help="run the chief or one worker of chapter 03's distributed random search"))
    t.set_defaults(func=_tune)

    b = sub.add_parser("book", help="rebuild the book of an existing run folder")
    b.add_argument("run_dir", type=Path)
    b.set_defaults(func=_book)
    return p


def error_line(err: BaseException) -> str:
    """What went wrong, printable whatever bytes a file name holds; an OSError names its file."""
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"{shown(err.filename)}: {err.strerror}"
    return str(err).encode("utf-8", errors="replace").decode("utf-8")


#: Commands that load TensorFlow in this process: its C++ start-up lines are kept off the terminal.
LOADS_TENSORFLOW = ("import-study-model", "fetch-study-models", "tune")


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    quiet = args.command in LOADS_TENSORFLOW and argv is None  # a real process, not a test calling main()
    try:
        with native.stderr_to(os.devnull, keep_python=True) if quiet else contextlib.nullcontext():
            return args.func(args)
    except USER_ERRORS as err:
        print(f"cytokit {args.command}: error: {error_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cytokit {args.command}: interrupted; nothing half-written is left (run again, or --resume)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
