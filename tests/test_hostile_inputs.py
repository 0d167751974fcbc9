"""Careless and hostile inputs: each ends in one clear line (or is handled), and no user byte changes.

:data:`CASES` is a table of command lines a user could type against files a user could
have: each says the exit code it must give (2 for a refusal, 0 where the input is usable),
words the message must hold (what is wrong and what to do) and the folders and files that
must come out byte for byte the same; no output may carry a raw control character.
``bench/hostile.py`` runs the same table and counts the outcomes. Most of its newer rows
are built in ``tests/hostile_files.py`` (crafted model files, servers, damaged records).
The tests after the table cover what needs more than one command line: the run folder's
lock held by a live process and 24 processes racing for a stale one, a resume restoring
the first run's choices, early stopping across a resume, SIGTERM in the middle of a
download, a killed fetch's leftovers, what an interrupt suggests, model files refused
before a byte of their data is read, strict JPEG decoding, and the parameter rules.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import shared_dir

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(7)
KERAS_WRAPPER = ("keras.saving.pickle_utils", "deserialize_model_from_bytecode")


# --------------------------------------------------------------------------- files a user has


def jpeg_bytes(size: int = 64, **save) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90, **save)
    return buf.getvalue()


def dataset(root: Path, counts=None, size: int = 64) -> Path:
    """One folder per class of small JPEGs (``BLA/BLA_00001.jpg``)."""
    for cls, n in (counts or {"BLA": 3, "LYT": 3}).items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(1, n + 1):
            (root / cls / f"{cls}_{i:05d}.jpg").write_bytes(jpeg_bytes(size))
    return root


def cut_with_end_marker(data: bytes) -> bytes:
    """A JPEG cut in half with an end-of-image marker appended: decoders return it half grey."""
    return data[: len(data) // 2] + b"\xff\xd9"


def wrapper_pickle(archive: bytes, trailing: bytes = b"") -> bytes:
    """The shape of the study's pickles: the Keras wrapper called on the archive bytes."""
    module, name = KERAS_WRAPPER
    return (b"\x80\x04c" + f"{module}\n{name}\n".encode() + b"B" + len(archive).to_bytes(4, "little")
            + archive + b"\x85R." + trailing)


def archive(config, metadata=None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("metadata.json", json.dumps(metadata or {"keras_version": "2.12.0"}))
        zf.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n")
    return buf.getvalue()


def sequential(*layers) -> dict:
    inp = {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 250, 250, 3]}}
    return {"class_name": "Sequential", "config": {"layers": [inp, *layers]}}


def run_folder(folder: Path) -> Path:
    """What a run leaves: run.json and an executed chapter."""
    (folder / "01_data").mkdir(parents=True)
    (folder / "01_data" / "01_data.ipynb").write_text("{}")
    (folder / "run.json").write_text(json.dumps({"profile": "smoke", "chapters": []}))
    return folder


def profile_file(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mine.yaml"
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- the table


class Built(NamedTuple):
    """A case made concrete in a folder: the command, what must not change, what the message must name, and
    what to stop when the case is over (a server, a process holding a lock)."""

    argv: list
    protect: list
    names: list
    cleanup: Callable | None = None


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path, Path], Built]  # (work folder, project root) -> Built
    code: int                             # 2: refused; 0: usable, handled
    words: tuple = ()                     # in the error line (code 2) or the output (code 0)


def _import_into_itself(tmp, root):
    pkl = tmp / "baseline.model_pickle"
    pkl.write_bytes(wrapper_pickle(archive(sequential())))
    return Built(["import-study-model", str(pkl), str(pkl)], [pkl], [str(pkl)])


def _import_over_existing(tmp, root):
    pkl, out = tmp / "baseline.model_pickle", tmp / "mine.keras"
    pkl.write_bytes(wrapper_pickle(archive(sequential())))
    out.write_bytes(b"a model I trained myself")
    return Built(["import-study-model", str(pkl), str(out)], [pkl, out], [str(out)])


def _report_over_existing(tmp, root):
    data, report = dataset(tmp / "data"), tmp / "report.csv"
    report.write_text("my own notes\n")
    return Built(["validate", str(data), "--size", "64", "--report", str(report), "--quiet"], [data, report],
                 [str(report), "--report"])


def _book_src_not_ours(tmp, root):
    run = run_folder(tmp / "run")
    (run / "book_src").mkdir()
    (run / "book_src" / "notes.txt").write_text("my notes\n")
    return Built(["book", str(run)], [run], [str(run / "book_src")])


def _book_src_with_user_file(tmp, root):
    run = run_folder(tmp / "run")
    (run / "book_src").mkdir()
    (run / "book_src" / ".cytokit-staged.json").write_text(json.dumps(["_config.yml"]))
    (run / "book_src" / "_config.yml").write_text("title: x\n")
    (run / "book_src" / "notes.txt").write_text("added by hand\n")
    return Built(["book", str(run)], [run], ["notes.txt"])


def _book_missing(tmp, root):
    return Built(["book", str(tmp / "runs" / "demoo")], [tmp], [str(tmp / "runs" / "demoo")])


def _book_project_root(tmp, root):
    return Built(["book", str(root)], [root / "book"], [str(root)])


def _book_not_a_run(tmp, root):
    folder = tmp / "papers"
    folder.mkdir()
    (folder / "draft.md").write_text("# draft\n")
    return Built(["book", str(folder)], [folder], [str(folder)])


def _report_onto_an_image(tmp, root, force=False):
    data = dataset(tmp / "data")
    target = data / "BLA" / "BLA_00001.jpg"
    return Built(["validate", str(data), "--size", "64", "--report", str(target), "--quiet"]
                 + (["--force"] if force else []), [data], [str(target)])


def _report_onto_an_image_forced(tmp, root):
    return _report_onto_an_image(tmp, root, force=True)


def _report_beside_the_classes(tmp, root):
    data = dataset(tmp / "data")
    return Built(["validate", str(data), "--size", "64", "--report", str(data / "report.csv"), "--quiet"], [data],
                 [str(data / "report.csv")])


def _run_into_data_dir(tmp, root):
    data = dataset(tmp / "data")
    out = data / "runs" / "x"
    return Built(["run", "--profile", "smoke", "--data-dir", str(data), "--out", str(out), "--only", "01",
                  "--no-book"], [data], [str(out), "--out"])


def _run_into_a_dataset(tmp, root):
    other = dataset(tmp / "other_dataset")
    out = other / "BLA" / "run"
    return Built(["run", "--profile", "smoke", "--out", str(out), "--only", "01", "--no-book"], [other],
                 [str(out), str(other)])


def _synth_into_a_class_folder(tmp, root):
    data = dataset(tmp / "data")
    return Built(["synth", str(data / "BLA" / "more"), "--n-images", "63", "--size", "32", "--quiet"], [data],
                 [str(data)])


def _truncated_with_end_marker(tmp, root):
    data = dataset(tmp / "data")
    bad = data / "LYT" / "LYT_00002.jpg"
    bad.write_bytes(cut_with_end_marker(bad.read_bytes()))
    return Built(["validate", str(data), "--size", "64", "--quiet"], [data], ["LYT/LYT_00002.jpg"])


def _link_to_the_root(tmp, root):
    data = dataset(tmp / "data")
    (data / "BLA" / "up").symlink_to("..", target_is_directory=True)
    return Built(["validate", str(data), "--size", "64", "--quiet"], [data], ["BLA/up/"])


def _link_out_of_the_tree(tmp, root):
    data = dataset(tmp / "data")
    outside = dataset(tmp / "elsewhere", {"EOS": 2})
    (data / "LYT" / "more").symlink_to(outside / "EOS", target_is_directory=True)
    return Built(["validate", str(data), "--size", "64", "--quiet"], [data, outside], ["LYT/more/"])


def _link_loop(tmp, root):
    data = dataset(tmp / "data")
    (data / "BLA" / "loop").symlink_to("loop")
    return Built(["validate", str(data), "--size", "64", "--quiet"], [data], ["BLA/loop"])


def _run_into_a_locked_folder(tmp, root):
    run = run_folder(tmp / "run")
    holder = {"pid": os.getppid(), "host": socket.gethostname(), "started": "2030-01-01T00:00:00"}
    (run / "run.lock").write_text(json.dumps(holder))
    return Built(["run", "--profile", "smoke", "--out", str(run), "--only", "01", "--no-book", "--force"], [run],
                 [f"pid {os.getppid()}", str(run / "run.lock")])


def _split_tree(tmp, root):
    data = tmp / "data"
    dataset(data / "train")
    dataset(data / "test")
    return data


def _validate_split_tree(tmp, root):
    data = _split_tree(tmp, root)
    return Built(["validate", str(data), "--size", "64", "--quiet"], [data], ["train/", "test/", str(data / "test")])


def _run_split_tree(tmp, root):
    data = _split_tree(tmp, root)
    return Built(["run", "--profile", "smoke", "--data-dir", str(data), "--out", str(tmp / "run"), "--no-book"],
                 [data], ["train/", "test/"])


def _run_one_class(tmp, root):
    data = dataset(tmp / "data", {"BLA": 4})
    return Built(["run", "--profile", "smoke", "--data-dir", str(data), "--out", str(tmp / "run"), "--no-book"],
                 [data], ["BLA/"])


def _nas_metadata(tmp, root):
    data = dataset(tmp / "data")
    (data / "@eaDir" / "BLA_00001.jpg").mkdir(parents=True)
    (data / "@eaDir" / "BLA_00001.jpg" / "SYNOFILE_THUMB_M.jpg").write_bytes(jpeg_bytes(16))
    (data / "BLA" / "@eaDir").mkdir()
    (data / "BLA" / "@eaDir" / "SYNOFILE_THUMB_S.jpg").write_bytes(jpeg_bytes(16))
    (data / "__MACOSX").mkdir()
    return Built(["validate", str(data), "--size", "64", "--quiet"], [data], ["@eaDir/", "BLA/@eaDir/"])


def _empty_class(tmp, root):
    data = dataset(tmp / "data")
    (data / "KSC" / "0001-1000").mkdir(parents=True)
    return Built(["validate", str(data), "--size", "64", "--quiet"], [data], ["KSC/"])


def _report_is_a_folder(tmp, root):
    data, folder = dataset(tmp / "data"), tmp / "reports"
    folder.mkdir()
    return Built(["validate", str(data), "--size", "64", "--report", str(folder), "--quiet"], [data, folder],
                 [str(folder)])


def _synth_into_nonempty(tmp, root):
    folder = tmp / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("\\documentclass{article}\n")
    return Built(["synth", str(folder), "--n-images", "63", "--size", "32", "--quiet"], [folder], [str(folder)])


def _run_out_is_a_file(tmp, root):
    out = tmp / "results.txt"
    out.write_text("keep me\n")
    return Built(["run", "--profile", "smoke", "--out", str(out), "--only", "01", "--no-book"], [out], [str(out)])


def _run_bad_yaml_value(tmp, root):
    return Built(["run", "--profile", "smoke", "--out", str(tmp / "run"), "-p", "seeds=[1, 2"], [tmp], ["seeds=[1, 2"])


def _import_malformed_config(tmp, root):
    pkl = tmp / "odd.model_pickle"
    pkl.write_bytes(wrapper_pickle(archive({"class_name": "Sequential", "config": {"layers": ["conv", 3]}})))
    return Built(["import-study-model", str(pkl), str(tmp / "odd.keras")], [tmp], ["config"])


def _resume_without_profile(tmp, root):
    run = tmp / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"chapters": []}))
    return Built(["run", "--resume", str(run), "--no-book"], [run], [str(run / "run.json"), "--profile"])


def _resume_unreadable_record(tmp, root):
    run = tmp / "run"
    run.mkdir()
    (run / "run.json").write_text("{ not json")
    return Built(["run", "--resume", str(run), "--no-book"], [run], [str(run / "run.json")])


def _non_utf8_name(tmp, root):
    data = dataset(tmp / "data")
    with open(os.path.join(os.fsencode(data / "BLA"), b"BLA_\xff\xfe.jpg"), "wb") as fh:
        fh.write(jpeg_bytes(64))
    report = tmp / "report.csv"
    return Built(["validate", str(data), "--size", "64", "--report", str(report), "--quiet"], [data],
                 ["BLA/BLA_\ufffd\ufffd.jpg"])


def _validate_missing(tmp, root):
    return Built(["validate", str(tmp / "no_such_dataset"), "--quiet"], [tmp], [str(tmp / "no_such_dataset")])


def _sparse_30_gb(tmp, root):
    data = dataset(tmp / "data")
    with open(data / "LYT" / "LYT_09999.jpg", "wb") as fh:
        fh.truncate(30 * 2**30)
    return Built(["validate", str(data), "--size", "64", "--quiet"], [data], ["LYT/LYT_09999.jpg", "--max-file-mb"])


def _synth_a_billion(tmp, root):
    return Built(["synth", str(tmp / "big"), "--n-images", "1000000000", "--quiet"], [tmp], ["--n-images"])


def _synth_huge_images(tmp, root):
    return Built(["synth", str(tmp / "big"), "--size", "100000", "--quiet"], [tmp], ["--size"])


def _import_huge_pickle(tmp, root):
    pkl = tmp / "huge.model_pickle"
    with open(pkl, "wb") as fh:
        fh.truncate(2 * 2**30)
    return Built(["import-study-model", str(pkl), str(tmp / "huge.keras")], [tmp], [str(pkl)])


def _import_dense_of_a_million(tmp, root):
    pkl = tmp / "wide.model_pickle"
    wide = sequential({"class_name": "Flatten", "config": {"name": "flatten"}},
                      {"class_name": "Dense", "config": {"name": "dense", "units": 1_000_000}})
    pkl.write_bytes(wrapper_pickle(archive(wide)))
    return Built(["import-study-model", str(pkl), str(tmp / "wide.keras")], [tmp], ["dense", "1,000,000"])


def _run_unknown_parameter(tmp, root):
    return Built(["run", "--profile", "smoke", "--out", str(tmp / "run"), "-p", "epoks=3"], [tmp],
                 ["epoks", "epochs"])


def _run_unknown_chapter_in_profile(tmp, root):
    prof = profile_file(tmp / "profiles", "parameters: {seed: 1}\nchapters:\n  '09': {epochs: 2}\n")
    return Built(["run", "--profile", str(prof), "--out", str(tmp / "run")], [tmp], ["09", "01_data"])


def _other_decodable_formats(tmp, root):
    data = dataset(tmp / "data")
    img = Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    img.save(data / "BLA" / "BLA_00010.gif")
    img.save(data / "BLA" / "BLA_00011.webp")
    (data / "LYT" / "LYT_00010.jfif").write_bytes(jpeg_bytes(64))
    return Built(["validate", str(data), "--size", "64", "--quiet"], [data], ["9 image files"])


def _synth_size_zero(tmp, root):
    return Built(["synth", str(tmp / "d"), "--size", "0", "--quiet"], [tmp], ["--size"])


def _validate_size_zero(tmp, root):
    data = dataset(tmp / "data")
    return Built(["validate", str(data), "--size", "0", "--quiet"], [data], ["--size"])


def _import_data_after_stop(tmp, root):
    pkl = tmp / "smuggler.model_pickle"
    pkl.write_bytes(wrapper_pickle(archive(sequential()), trailing=b"\x80\x04cos\nsystem\n."))
    return Built(["import-study-model", str(pkl), str(tmp / "smuggler.keras")], [tmp], ["STOP"])


def _run_into_a_foreign_folder(tmp, root):
    folder = tmp / "home"
    folder.mkdir()
    (folder / "taxes.xlsx").write_bytes(b"PK\x03\x04 spreadsheet")
    return Built(["run", "--profile", "smoke", "--out", str(folder), "--only", "01", "--no-book"], [folder],
                 [str(folder), "--force"])


def _resume_into_another_out(tmp, root):
    run = run_folder(tmp / "run")
    return Built(["run", "--resume", str(run), "--out", str(tmp / "other"), "--no-book"], [run], ["--resume", "--out"])


def _max_file_zero(tmp, root):
    data = dataset(tmp / "data")
    return Built(["validate", str(data), "--max-file-mb", "0", "--quiet"], [data], ["--max-file-mb"])


import hostile_files  # noqa: E402  (its builders use the helpers above)


def _builder(name: str) -> Callable:
    return getattr(hostile_files, name, None) or globals()[name]


#: The table itself is data: tests/hostile_cases.yaml, one row per case, naming its builder above or in
#: tests/hostile_files.py.
CASES = [Case(row["name"], _builder(row["build"]), row["code"], tuple(row["words"]))
         for row in yaml.safe_load((Path(__file__).parent / "hostile_cases.yaml").read_text(encoding="utf-8"))]


# --------------------------------------------------------------------------- running a case


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    changed: list          # protected paths added, removed or changed
    changed_bytes: int     # their bytes (sizes of what appeared, vanished or changed)


def state(root: Path) -> dict:
    """Every entry under ``root`` (or ``root`` itself, a file): type, size, mtime and a content hash.

    Files over 64 MiB (sparse test files) are compared by size, inode and mtime, not read.
    """
    out = {}
    paths = [root]
    if root.is_dir() and not root.is_symlink():
        for folder, dirs, files in os.walk(root):
            paths += [Path(folder) / n for n in dirs + files]
    for path in paths:
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue
        digest = None
        if path.is_file() and not path.is_symlink() and st.st_size <= 64 * 2**20:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_symlink():
            digest = os.readlink(path)
        out[str(path)] = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino, digest)
    return out


def _changes(before: dict, after: dict) -> tuple[list, int]:
    keys = sorted(set(before) | set(after))
    changed = [k for k in keys if before.get(k) != after.get(k) and not os.path.isdir(k)
               or (k in before) != (k in after)]
    size = sum(max((before.get(k) or (0, 0))[1], (after.get(k) or (0, 0))[1]) for k in changed)
    return changed, size


def run_cli(argv: list) -> tuple[int, str, str]:
    """``cytokit ARGV`` in this process: (exit code, stdout, stderr)."""
    from cytokit import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main([str(a) for a in argv])
        except SystemExit as stop:  # argparse
            code = stop.code if isinstance(stop.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def run_case(case: Case, work: Path, root: Path = ROOT, runner=run_cli) -> tuple[Built, Outcome]:
    """Build the case in ``work``, run it, and compare the protected files before and after."""
    built = case.build(work, root)
    try:
        before = {str(p): state(p) for p in built.protect}
        code, out, err = runner(built.argv)
        after = {str(p): state(p) for p in built.protect}
    finally:
        if built.cleanup is not None:
            built.cleanup()
    changed, size = [], 0
    for p in before:
        c, s = _changes(before[p], after[p])
        changed += c
        size += s
    return built, Outcome(code, out, err, changed, size)


def clear_message(case: Case, built: Built, outcome: Outcome) -> list[str]:
    """What is wrong with the outcome (empty when the case behaved): code, one line, words, names, no traceback."""
    problems = []
    if outcome.code != case.code:
        problems.append(f"exit code {outcome.code}, expected {case.code}")
    if "Traceback" in outcome.err:
        problems.append("a traceback")
    text = outcome.err if case.code else outcome.out
    if case.code:
        lines = [ln for ln in outcome.err.splitlines() if ln.strip()]
        if len(lines) != 1 or not lines[0].startswith(f"cytokit {built.argv[0]}: error: "):
            problems.append(f"not one 'cytokit {built.argv[0]}: error:' line: {outcome.err[-300:]!r}")
    for word in (*case.words, *built.names):
        if word not in text:
            problems.append(f"{word!r} not in the message")
    raw = sorted({repr(ch) for ch in outcome.out + outcome.err if not ch.isprintable() and ch not in "\n\r\t"})
    if raw:
        problems.append(f"control characters reach the terminal raw: {', '.join(raw)}")
    if outcome.changed:
        problems.append(f"user files changed: {outcome.changed[:3]}")
    return problems


@pytest.fixture(autouse=True)
def _quiet_umask():
    mask = os.umask(0o022)
    yield
    os.umask(mask)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(case, tmp_path):
    built, outcome = run_case(case, tmp_path)
    problems = clear_message(case, built, outcome)
    assert problems == [], f"{case.name}: {problems}\nstdout: {outcome.out[-1500:]}\nstderr: {outcome.err[-1500:]}"


# --------------------------------------------------------------------------- beyond one command line


def test_a_link_never_relabels_or_doubles_images(tmp_path):
    from cytokit import data

    root = dataset(tmp_path / "data")
    (root / "BLA" / "up").symlink_to("..", target_is_directory=True)
    (root / "BLA" / "lyt").symlink_to("../LYT", target_is_directory=True)
    (root / "LYT" / "copy.jpg").symlink_to("../BLA/BLA_00001.jpg")
    os.link(root / "BLA" / "BLA_00002.jpg", root / "LYT" / "LYT_hard.jpg")
    idx = data.index(root, progress=False)
    assert idx["cls"].value_counts().to_dict() == {"BLA": 3, "LYT": 3}
    assert {"BLA/up/", "BLA/lyt/", "LYT/copy.jpg", "LYT/LYT_hard.jpg"} <= set(idx.attrs["skipped"])


def test_layout_notes_name_what_the_index_left_out(tmp_path):
    """What chapter 01 can show beside its counts: empty class folders, and each entry skipped with its reason."""
    from cytokit import data
    from cytokit.data import tree

    root = dataset(tmp_path / "data")
    (root / "KSC").mkdir()
    (root / "@eaDir").mkdir()
    (root / "BLA" / "up").symlink_to("..", target_is_directory=True)
    notes = tree.layout_notes(data.index(root, progress=False))
    assert notes[0] == "class folder KSC/ holds no images"
    assert any(n.startswith("@eaDir/: metadata") for n in notes) and any(n.startswith("BLA/up/: a link") for n in notes)


def test_a_live_process_holding_the_lock_refuses_a_second_run(tmp_path, capsys):
    """Two processes: the first holds the run folder's lock; the second is refused, naming it."""
    from cytokit import cli
    from cytokit import io as cio

    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from cytokit import io
        with io.folder_lock({str(run)!r}):
            print("held", flush=True)
            time.sleep(120)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert cio.read_lock(run / cio.LOCK_NAME)["pid"] == holder.pid
        code = cli.main(["run", "--profile", "smoke", "--out", str(run), "--only", "01", "--no-book"])
        err = capsys.readouterr().err
        assert code == 2 and f"pid {holder.pid}" in err and "another run" in err
    finally:
        holder.kill()
        holder.wait()
    notes = []
    with cio.folder_lock(run, log=notes.append) as lock:  # the holder died: its lock is stale
        assert cio.read_lock(lock)["pid"] == os.getpid()
    assert notes and "no longer running" in notes[0] and str(holder.pid) in notes[0]
    assert not (run / cio.LOCK_NAME).exists()


def test_the_lock_is_exclusive_and_removed_at_the_end(tmp_path):
    from cytokit import io as cio

    with cio.folder_lock(tmp_path) as lock:
        record = cio.read_lock(lock)
        assert record["pid"] == os.getpid() and record["host"] and record["started"]
        with pytest.raises(cio.LockError, match="another run"):
            with cio.folder_lock(tmp_path):
                pass
        assert lock.exists()
    assert not lock.exists()


def _toy_project(root: Path, monkeypatch) -> Path:
    """Two chapters that record their ``epochs`` and ``data_dir``, and a profile."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    (root / "notebooks").mkdir(parents=True)
    (root / "profiles").mkdir()
    (root / "profiles" / "toy.yaml").write_text("description: toy\nparameters: {epochs: 5}\n")
    body = ("import pathlib\nfrom cytokit.book.chapter import Chapter\n"
            "c = Chapter(pathlib.Path.cwd().name, run_dir, profile)\nc.record('epochs', epochs)\n"
            "c.record('data_dir', str(data_dir))\nc.save_metrics()")
    for name in ("01_first", "02_second"):
        params = new_code_cell("epochs = 1\ndata_dir = None\nrun_dir = None\nprofile = 'demo'")
        params.metadata["tags"] = ["parameters"]
        nb = new_notebook(cells=[params, new_code_cell(body)])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, root / "notebooks" / f"{name}.ipynb")
    monkeypatch.setenv("CYTOKIT_HOME", str(root))
    return root


@pytest.mark.slow
def test_resume_keeps_the_first_runs_choices(tmp_path, monkeypatch, capsys):
    """--resume restores -p, --only and --data-dir from run.json unless given again."""
    from cytokit import cli

    _toy_project(tmp_path / "proj", monkeypatch)
    data = dataset(tmp_path / "data")
    out = tmp_path / "run"
    first = ["run", "--profile", "toy", "--out", str(out), "--only", "01", "-p", "epochs=3", "--data-dir", str(data),
             "--no-book"]
    assert cli.main(first) == 0
    metrics = out / "01_first" / "metrics.json"
    before = metrics.read_bytes()
    capsys.readouterr()
    assert cli.main(["run", "--resume", str(out), "--no-book"]) == 0
    said = capsys.readouterr().out
    assert "01_first is up to date" in said and "02_second" not in said
    assert metrics.read_bytes() == before and not (out / "02_second").exists()
    recorded = json.loads((out / "run.json").read_text())["command"]
    assert recorded["overrides"] == {"epochs": 3} and recorded["only"] == ["01"]
    assert recorded["data_dir"] == str(data.resolve())
    assert cli.main(["run", "--resume", str(out), "-p", "epochs=4", "--no-book"]) == 0  # given again: used
    assert json.loads(metrics.read_text())["epochs"] == 4


def test_early_stopping_survives_a_resume(tmp_path):
    """A fit killed mid-run and resumed stops at the same epoch, with the same best weights, as one never killed."""
    keras = pytest.importorskip("keras")
    tf = pytest.importorskip("tensorflow")
    from cytokit.models import training

    scales = [1.0, 0.5, 0.8, 0.9, 0.95, 0.7, 0.6, 0.55, 0.52, 0.51]  # val_loss is 4 x scale^2: best at epoch 2

    class Weights(keras.callbacks.Callback):  # the learning rate is 0: each epoch's weights are set here
        def on_epoch_begin(self, epoch, logs=None):
            self.model.layers[-1].set_weights([np.full((2, 1), scales[epoch], np.float32), np.zeros(1, np.float32)])

    class Kill(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 3:
                raise KeyboardInterrupt("killed as epoch 4 begins")

    x = np.ones((8, 2), np.float32)
    ds = tf.data.Dataset.from_tensor_slices((x, np.zeros(8, np.float32))).batch(4)

    def fit(backup, *extra):
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="mse")
        history = training.fit(model, ds, ds, len(scales), callbacks=[Weights(), training.early_stopping(3), *extra],
                               backup_dir=backup)
        return history["epochs_run"], float(model.layers[-1].get_weights()[0][0, 0])

    whole = fit(tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "killed", Kill())
    assert (tmp_path / "killed" / "best-0-epoch1.npz").is_file()
    assert fit(tmp_path / "killed") == whole == (5, 0.5)


# --------------------------------------------------------------------------- decoding, names, modes


def test_strict_decoding_holds_even_when_pillow_was_told_to_tolerate(monkeypatch):
    from PIL import ImageFile

    from cytokit.data.validation import check_bytes

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    good = jpeg_bytes(250)
    assert check_bytes(good, "a.jpg").status == "ok"
    bad = check_bytes(cut_with_end_marker(good), "a.jpg")
    assert bad.status == "bad" and "ends early" in bad.reason
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the process's setting is given back


@pytest.mark.parametrize("save", [{}, {"optimize": True}, {"subsampling": 0}, {"progressive": True}],
                         ids=["baseline", "optimised", "4:4:4", "progressive"])
def test_cut_jpegs_are_bad_whole_ones_ok(save):
    from cytokit.data.validation import check_bytes

    whole = jpeg_bytes(250, **save)
    assert check_bytes(whole, "a.jpg").status == "ok"
    for keep in (0.2, 0.5, 0.8):
        cut = whole[: int(len(whole) * keep)] + b"\xff\xd9"
        assert check_bytes(cut, "a.jpg").status == "bad", (save, keep)


def test_no_real_sample_image_becomes_bad(real_sample):
    from cytokit import data

    checked = data.validate(real_sample, data.index(real_sample, progress=False), progress=False)
    assert len(checked) == 775 and checked["status"].eq("ok").all()


def test_a_name_that_is_not_utf8_is_named_and_left_out_of_the_manifest(tmp_path):
    from cytokit import data

    root = dataset(tmp_path / "data")
    with open(os.path.join(os.fsencode(root / "LYT"), b"LYT_\xe9.jpg"), "wb") as fh:
        fh.write(jpeg_bytes(64))
    idx = data.index(root, progress=False)
    assert len(idx) == 6 and "LYT/LYT_\ufffd.jpg" in idx.attrs["skipped"]
    manifest = data.split(data.validate(root, idx, expected_size=(64, 64), progress=False))
    data.write_manifest(manifest, tmp_path / "manifest.csv")  # no codec error
    assert len(data.read_manifest(tmp_path / "manifest.csv")) == 6


def test_a_one_class_manifest_is_refused(tmp_path):
    from cytokit import data

    root = dataset(tmp_path / "data", {"BLA": 5})
    manifest = data.split(data.validate(root, data.index(root, progress=False), expected_size=None, progress=False))
    with pytest.raises(data.DatasetError, match="at least 2 classes"):
        data.write_manifest(manifest, tmp_path / "manifest.csv")
    assert not (tmp_path / "manifest.csv").exists()


def test_outputs_get_the_permissions_of_a_new_file(tmp_path):
    from cytokit import io as cio

    for mask in (0o022, 0o077):
        os.umask(mask)
        path = cio.write_text(tmp_path / f"a{mask}.txt", "x")
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_archive_metadata_is_printable():
    pytest.importorskip("keras")
    from cytokit.models import study_import

    meta = {"keras_version": "2.12.0\x1b]0;pwned\x07\x1b[2J", "date_saved": "x" * 500}
    read = study_import.read_archive(archive(sequential(), meta)).metadata
    assert all(ch.isprintable() for value in read.values() for ch in value)
    assert "\\x1b" in read["keras_version"] and len(read["date_saved"]) < 100


# --------------------------------------------------------------------------- parameters


def test_every_notebook_parameter_has_a_rule():
    from cytokit.book import parameters

    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert any(nb.stem == "findings" for nb in notebooks)
    for notebook in notebooks:
        missing = set(parameters.declared(notebook)) - set(parameters.RULES)
        assert not missing, f"{notebook.name}: no rule for {sorted(missing)}"


def test_the_synth_images_rule_is_what_chapter_01_needs():
    """Its smallest value gives every class a train, a val and a test image; one less is refused."""
    from cytokit import data
    from cytokit.book import parameters
    from cytokit.data.synthetic import class_counts

    pd = pytest.importorskip("pandas")
    ok, _ = parameters.RULES["synth_images"]
    smallest = next(n for n in range(1, 200) if ok(n))
    rows = [(f"{c}/{c}_{i}.jpg", c, "ok") for c, n in class_counts(smallest).items() for i in range(n)]
    split = data.split(pd.DataFrame(rows, columns=["path", "cls", "status"]))
    per_class = pd.crosstab(split["cls"], split["split"])
    assert len(per_class) == 21 and (per_class[["train", "val", "test"]] >= 1).all().all()
    assert not ok(smallest - 1) and ok(2_000_000) and not ok(2_000_001)


@pytest.mark.slow
def test_commands_that_load_tensorflow_keep_its_start_up_lines_off_the_terminal(tmp_path):
    """From a shell, import-study-model prints its one line; TensorFlow's C++ lines do not reach the terminal."""
    pickled = shared_dir() / "reference" / "study-models" / "pickled" / "baseline.model_pickle"
    if not pickled.is_file():
        pytest.skip(f"the study's pickled model is not at {pickled}")
    cytokit = Path(sys.executable).parent / "cytokit"
    proc = subprocess.run([str(cytokit), "import-study-model", str(pickled), str(tmp_path / "baseline.keras")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "absl" not in proc.stderr and "oneDNN" not in proc.stderr, proc.stderr
    assert "96,509 parameters" in proc.stdout


# --------------------------------------------------------------------------- races, signals, interrupts


def test_many_processes_taking_over_one_stale_lock_leave_exactly_one_holder(tmp_path):
    """24 processes start at once on a run folder whose lock a killed run left: one holds it, 23 are refused."""
    said = hostile_files.lock_race(tmp_path / "run", n=24)
    assert sorted(said) == ["refused"] * 23 + ["won"], said
    assert not (tmp_path / "run" / "run.lock").exists()


def test_a_tune_worker_runs_beside_its_chief_but_not_beside_another_run(tmp_path, monkeypatch):
    from cytokit import io as cio
    from cytokit.book import cluster

    run = hostile_files.tune_run(tmp_path / "run", dataset(tmp_path / "data"))
    pid, stop = hostile_files.hold_lock(run)
    try:
        assert cio.lock_holder(run)["pid"] == pid
        with pytest.raises(cio.LockError, match=f"pid {pid}"):
            cluster.main_tune(run_dir=run, role="worker", tuner_id="tuner1")
    finally:
        stop()
    assert cio.lock_holder(run) is None
    monkeypatch.setattr(sys, "argv", ["cytokit", "tune", "--run-dir", str(run), "--role", "chief"])
    with cio.folder_lock(run):  # a chief of this search holds the folder: its workers go ahead
        with pytest.raises(Exception) as reached:
            cluster.main_tune(run_dir=run, role="worker", tuner_id="tuner1", manifest=tmp_path / "absent.csv")
    assert "manifest" in str(reached.value)


def test_sigterm_in_the_middle_of_a_download_leaves_no_part_file(tmp_path):
    server = hostile_files.HostileServer("drip")
    out = tmp_path / "models"
    cytokit = Path(sys.executable).parent / "cytokit"
    proc = subprocess.Popen([str(cytokit), "fetch-study-models", str(out), "--base-url", server.base_url, "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert hostile_files.wait_for(lambda: any(out.rglob("*.part")), timeout=120), "no download started"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.stop()
    assert proc.returncode == 143, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines == ["cytokit fetch-study-models: terminated; nothing half-written is left (run the same command "
                     "again)"], err
    assert not out.exists(), sorted(p.name for p in out.rglob("*"))


def test_temporary_files_of_a_killed_fetch_are_removed_and_nothing_else(tmp_path):
    from cytokit import cli

    out = tmp_path / "models"
    (out / ".pickles").mkdir(parents=True)
    ours = [out / ".pickles" / ".baseline.model_pickle.ab12_x9z.part", out / ".tuned.keras.q1w2e3r4.keras",
            out / ".PROVENANCE.json.zz00yy11.json"]
    theirs = [out / ".pickles" / "notes.part", out / ".pickles" / ".baseline.model_pickle.mine.part",
              out / "tuned.keras.part"]
    for path in ours + theirs:
        path.write_bytes(b"\0" * 1000)
    server = hostile_files.HostileServer("missing")
    try:
        assert cli.main(["fetch-study-models", str(out), "--base-url", server.base_url, "--quiet"]) == 2
    finally:
        server.stop()
    assert [p.exists() for p in ours] == [False] * 3 and [p.exists() for p in theirs] == [True] * 3


COMMAND_LINES = {
    "synth": ("_synth", ["synth", "x", "--quiet"]),
    "validate": ("_validate", ["validate", "x", "--quiet"]),
    "run": ("_run", ["run", "--profile", "smoke"]),
    "import-study-model": ("_import", ["import-study-model", "a.model_pickle", "a.keras"]),
    "fetch-study-models": ("_fetch_study_models", ["fetch-study-models", "x", "--quiet"]),
    "tune": ("_tune", ["tune", "--local-workers", "1"]),
    "book": ("_book", ["book", "x"]),
}


@pytest.mark.parametrize("command", sorted(COMMAND_LINES))
def test_an_interrupt_suggests_only_options_the_command_has(command, monkeypatch, capsys):
    from cytokit import cli

    func, argv = COMMAND_LINES[command]

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, func, interrupted)
    assert cli.main(argv) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"cytokit {command}: interrupted; ") and "\n" not in err
    sub = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    suggested = set(re.findall(r"--[a-z][a-z-]+", err))
    assert suggested <= set(sub._option_string_actions), (err, suggested)


def test_refused_model_files_are_refused_before_a_byte_of_their_data_is_read(tmp_path, monkeypatch):
    h5py = pytest.importorskip("h5py")
    pytest.importorskip("keras")
    from cytokit.models import study_import

    reads = []
    for name in ("__getitem__", "read_direct", "__array__"):
        real = getattr(h5py.Dataset, name)

        def spy(self, *args, _real=real, **kwargs):
            reads.append(self.name)
            return _real(self, *args, **kwargs)
        monkeypatch.setattr(h5py.Dataset, name, spy)
    for build in (hostile_files._h5_external_storage, hostile_files._h5_virtual_dataset, hostile_files._h5_filter,
                  hostile_files._h5_external_link, hostile_files._h5_soft_link, hostile_files._h5_declared_huge,
                  hostile_files._h5_declared_terabytes, hostile_files._h5_group_for_dataset,
                  hostile_files._h5_text_weights):
        folder = tmp_path / build.__name__
        folder.mkdir()
        pickled = Path(build(folder, ROOT).argv[1])
        with pytest.raises(study_import.StudyModelError):
            study_import.load_study_pickle(pickled)
    assert reads == []


# --------------------------------------------------------------------------- parameters as typed


def test_numbers_yaml_reads_as_text_are_numbers_where_a_parameter_wants_one():
    from cytokit import cli

    parsed = cli.parse_overrides(["learning_rate=1e-3", "bn_momentum=9.9e-1", "data_dir=1e3", "seeds=[0, 1]"])
    assert parsed == {"learning_rate": 0.001, "bn_momentum": 0.99, "data_dir": "1e3", "seeds": [0, 1]}
    assert isinstance(parsed["learning_rate"], float)
    assert cli.parse_overrides(["epochs=3", "epochs=3"]) == {"epochs": 3}
    with pytest.raises(cli.UsageError, match="given twice"):
        cli.parse_overrides(["epochs=3", "epochs=4"])


def test_seeds_stop_where_numpy_and_lime_still_take_them():
    from cytokit.book import parameters

    for name in ("seed", "synth_seed"):
        ok, _ = parameters.RULES[name]
        assert ok(parameters.MAX_SEED) and not ok(parameters.MAX_SEED + 1) and not ok(2**32)
    ok, _ = parameters.RULES["seeds"]
    assert ok([0, parameters.MAX_SEED]) and not ok([4294967296])
    np.random.RandomState(parameters.MAX_SEED + 20)  # the largest seed plus the offsets chapters add


def test_an_option_given_twice_is_refused_in_one_line(capsys):
    from cytokit import cli

    with pytest.raises(SystemExit) as stop:
        cli.main(["validate", "data", "--size", "250", "--size", "64"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1
    assert err.startswith("cytokit validate: error: --size given twice (250 and 64)")


def test_a_rebuild_replaces_what_the_build_staged_and_refuses_a_hand_edit(tmp_path):
    from cytokit.book import build

    run = run_folder(tmp_path / "run")
    src = build.stage(run)
    staged = json.loads((src / build.STAGED).read_text())
    assert isinstance(staged, dict) and staged["_config.yml"] == hashlib.sha256(
        (src / "_config.yml").read_bytes()).hexdigest()
    assert build.stage(run) == src  # untouched: removed and staged again
    page = src / "notebooks" / "01_data.ipynb"
    page.write_text(page.read_text() + " ")
    with pytest.raises(build.BookError, match="changed since the build wrote them") as refused:
        build.stage(run)
    assert "notebooks/01_data.ipynb" in str(refused.value) and page.read_text().endswith(" ")
