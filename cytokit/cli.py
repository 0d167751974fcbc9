"""The ``cytokit`` command: generate data, validate a dataset, run and build the book."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _synth(args) -> int:
    from cytokit import synth

    synth.main_synth(args.out_dir, n_images=args.n_images, seed=args.seed, size=args.size,
                     difficulty=args.difficulty, progress=not args.quiet)
    return 0


def _validate(args) -> int:
    from cytokit import data

    idx = data.index(args.data_dir, progress=not args.quiet)
    checked = data.validate(args.data_dir, idx, expected_size=None if args.any_size else (args.size, args.size),
                            progress=not args.quiet)
    bad = checked[checked["status"] == "bad"]
    converted = checked[checked["status"] == "converted"]
    n_ok = int((checked["status"] != "bad").sum())
    print(f"{args.data_dir}: {len(checked)} image files in {checked['cls'].nunique()} classes; "
          f"{n_ok} valid, {len(bad)} bad (excluded), {len(converted)} usable after conversion")
    for row in bad.itertuples():
        print(f"  BAD  {row.path}: {row.reason}")
    for row in converted.itertuples():
        print(f"  NOTE {row.path}: {row.reason}")
    ignored = idx.attrs.get("ignored", [])
    if ignored:
        print(f"  ignored {len(ignored)} non-image file(s): {', '.join(ignored[:10])}"
              + (" ..." if len(ignored) > 10 else ""))
    if args.report:
        from cytokit import io

        io.write_csv(args.report, checked)
        print(f"report written to {args.report}")
    return 1 if (args.strict and len(bad)) else 0


def _run(args) -> int:
    from cytokit import run

    overrides = {}
    for item in args.param or []:
        key, _, value = item.partition("=")
        if not _:
            raise SystemExit(f"-p expects NAME=VALUE, got {item!r}")
        import yaml

        overrides[key] = yaml.safe_load(value)
    if args.study_models:
        overrides["study_models_dir"] = str(Path(args.study_models).resolve())
    out, profile = args.out, args.profile
    if args.resume:
        out = args.resume
        profile = profile or run.resume_profile(args.resume)
    run.run(profile=profile or "demo", out=out, data_dir=args.data_dir, only=args.only,
            force=args.force, book=not args.no_book, overrides=overrides, resume=bool(args.resume))
    return 0


def _import(args) -> int:
    from cytokit import study_import

    study_import.main_import(args.pickle, args.out)
    return 0


def _tune(args) -> int:
    from cytokit import distributed

    return distributed.main_tune(args)


def _book(args) -> int:
    from cytokit import book

    print(book.build(args.run_dir))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cytokit", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="write a synthetic marrow-cell dataset in the real layout")
    s.add_argument("out_dir", type=Path)
    s.add_argument("--n-images", type=int, default=3000)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--size", type=int, default=250)
    s.add_argument("--difficulty", type=float, default=0.5)
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=_synth)

    v = sub.add_parser("validate", help="decode every image of a dataset and report bad files (read-only)")
    v.add_argument("data_dir", type=Path)
    v.add_argument("--size", type=int, default=250, help="expected width and height (default 250)")
    v.add_argument("--any-size", action="store_true", help="do not flag images of another size")
    v.add_argument("--report", type=Path, help="write the per-file report as CSV here")
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
                   help="continue a run folder: execute only chapters whose outputs are missing or out of date")
    r.add_argument("--no-book", action="store_true", help="execute the chapters only")
    r.set_defaults(func=_run)

    i = sub.add_parser("import-study-model",
                       help="convert one of the study's pickled Keras 2 models to a Keras 3 .keras file, safely")
    i.add_argument("pickle", type=Path, help="a *.model_pickle file from the study's code repository")
    i.add_argument("out", type=Path, help="where to write the .keras file")
    i.set_defaults(func=_import)

    from cytokit import distributed

    t = distributed.add_arguments(sub.add_parser(
        "tune", help="run the chief or one worker of chapter 03's distributed random search"))
    t.set_defaults(func=_tune)

    b = sub.add_parser("book", help="rebuild the book of an existing run folder")
    b.add_argument("run_dir", type=Path)
    b.set_defaults(func=_book)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    from cytokit.book import BookError
    from cytokit.distributed import ClusterError
    from cytokit.params import ParameterError
    from cytokit.profiles import ProfileError
    from cytokit.run import RunError

    try:
        return args.func(args)
    except (RunError, ProfileError, ParameterError, BookError, ClusterError, FileNotFoundError,
            ValueError) as err:
        print(f"cytokit {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
