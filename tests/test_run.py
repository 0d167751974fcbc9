"""The runner on a toy book: parameters reach the notebooks, failures are named, nothing is overwritten."""

import json
import shutil

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from conftest import ROOT
from cytokit.book import build, runner


def _notebook(path, *codes, params="epochs = 1\nrun_dir = None\nprofile = 'demo'"):
    cells = [new_markdown_cell(f"# {path.stem}")]
    p = new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    cells.append(p)
    cells += [new_code_cell(c) for c in codes]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def toy_project(tmp_path, monkeypatch):
    """A project root with two chapters, a findings page, a profile and the real book configuration."""
    root = tmp_path / "proj"
    (root / "notebooks").mkdir(parents=True)
    (root / "profiles").mkdir()
    shutil.copy(ROOT / "_config.yml", root / "_config.yml")
    shutil.copytree(ROOT / "book", root / "book")
    (root / "_toc.yml").write_text(  # the real book's shape: the findings page first, book/ pages around
        "format: jb-book\nroot: notebooks/findings\nparts:\n"
        "  - caption: About\n    chapters:\n      - file: book/intro\n"
        "  - caption: Toy\n    chapters:\n      - file: notebooks/01_first\n      - file: notebooks/02_second\n"
        "  - caption: Later\n    chapters:\n      - file: notebooks/09_absent\n"
        "      - file: book/reproduce\n      - file: book/scale_out\n      - file: book/references\n")
    (root / "profiles" / "toy.yaml").write_text(
        "description: toy\nparameters: {epochs: 5, unused: 3}\nchapters:\n  '02': {epochs: 7}\n")
    write = ("import json, pathlib\nfrom cytokit.book.chapter import Chapter\n"
             "c = Chapter(pathlib.Path.cwd().name, run_dir, profile)\nc.record('epochs', epochs)\nc.save_metrics()")
    _notebook(root / "notebooks" / "01_first.ipynb", write)
    _notebook(root / "notebooks" / "02_second.ipynb", write)
    _notebook(root / "notebooks" / "findings.ipynb", "print('what this run found')",
              params="run_dir = None\nprofile = 'demo'")
    monkeypatch.setenv("CYTOKIT_HOME", str(root))
    return root


def test_select_by_number_or_name_and_unknown_is_refused(toy_project):
    chs = runner.chapters()
    assert [c.name for c in runner.select(chs, ["02"])] == ["02_second"]
    assert [c.name for c in runner.select(chs, ["01_first"])] == ["01_first"]
    with pytest.raises(runner.RunError, match="unknown chapter"):
        runner.select(chs, ["07"])


@pytest.mark.slow
def test_run_injects_profile_parameters_and_builds_the_book(toy_project, tmp_path):
    out = tmp_path / "run"
    result = runner.run("toy", out=out, log=lambda *a, **k: None)
    m1 = json.loads((out / "01_first" / "metrics.json").read_text())
    m2 = json.loads((out / "02_second" / "metrics.json").read_text())
    assert (m1["epochs"], m2["epochs"]) == (5, 7)
    executed = nbformat.read(out / "01_first" / "01_first.ipynb", as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "unused" not in injected[0].source and "epochs = 5" in injected[0].source
    assert 'run_dir = ".."' in injected[0].source  # relative to the chapter folder the kernel runs in
    source = nbformat.read(toy_project / "notebooks" / "01_first.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in source.cells if c.cell_type == "code")
    assert result.book_index.is_file() and (result.book_index.parent / "notebooks" / "02_second.html").is_file()
    assert (result.book_index.parent / "_static" / "plotly.min.js").is_file()
    staged_toc = (out / "book_src" / "_toc.yml").read_text()
    assert "09_absent" not in staged_toc and "02_second" in staged_toc


@pytest.mark.slow
def test_existing_outputs_are_not_overwritten_without_force(toy_project, tmp_path):
    out = tmp_path / "run"
    runner.run("toy", out=out, only=["01"], book=False, log=lambda *a, **k: None)
    before = (out / "01_first" / "01_first.ipynb").read_bytes()
    with pytest.raises(runner.RunError, match="--force"):
        runner.run("toy", out=out, only=["01"], book=False, log=lambda *a, **k: None)
    assert (out / "01_first" / "01_first.ipynb").read_bytes() == before
    runner.run("toy", out=out, only=["02"], book=False, log=lambda *a, **k: None)  # a new chapter is fine
    runner.run("toy", out=out, only=["01"], book=False, force=True, log=lambda *a, **k: None)


@pytest.mark.slow
def test_a_failing_chapter_names_notebook_cell_and_error(toy_project, tmp_path):
    _notebook(toy_project / "notebooks" / "02_second.ipynb", "y = 2", "1 / 0")
    out = tmp_path / "run"
    with pytest.raises(runner.ChapterFailed) as err:
        runner.run("toy", out=out, book=False, log=lambda *a, **k: None)
    msg = str(err.value)
    assert "02_second" in msg and "ZeroDivisionError" in msg and "cell" in msg
    assert (out / "02_second" / "02_second.ipynb").is_file()
    assert str(out / "02_second" / "02_second.ipynb") in msg


def test_cli_exits_non_zero_on_failure(toy_project, tmp_path, capsys):
    from cytokit import cli

    _notebook(toy_project / "notebooks" / "01_first.ipynb", "raise ValueError('broken data')")
    code = cli.main(["run", "--profile", "toy", "--out", str(tmp_path / "r"), "--no-book"])
    assert code != 0
    assert "01_first" in capsys.readouterr().err


def test_toc_filter_drops_absent_pages_and_empty_parts():
    toc = {"root": "book/intro", "parts": [
        {"caption": "A", "chapters": [{"file": "notebooks/01"}, {"file": "notebooks/02"}]},
        {"caption": "B", "chapters": [{"file": "notebooks/05"}]}]}
    out = build._filter_toc(toc, {"book/intro", "notebooks/01"})
    assert out["root"] == "book/intro"
    assert out["parts"] == [{"caption": "A", "chapters": [{"file": "notebooks/01"}]}]
    rootless = build._filter_toc(toc, {"notebooks/01", "notebooks/02"})  # the root page absent
    assert rootless["root"] == "notebooks/01"
    assert rootless["parts"] == [{"caption": "A", "chapters": [{"file": "notebooks/02"}]}]


@pytest.mark.slow
def test_resume_runs_only_missing_or_changed_chapters(toy_project, tmp_path):
    out = tmp_path / "run"
    quiet = lambda *a, **k: None  # noqa: E731
    runner.run("toy", out=out, book=False, log=quiet)
    first = {n: (out / n / "metrics.json").read_bytes() for n in ("01_first", "02_second")}

    (out / "02_second" / "metrics.json").unlink()               # a chapter killed before it finished
    done = runner.run("toy", out=out, book=False, log=quiet, resume=True)
    assert [c["chapter"] for c in done.chapters] == ["02_second"]
    assert (out / "01_first" / "metrics.json").read_bytes() == first["01_first"]

    nothing = runner.run("toy", out=out, book=False, log=quiet, resume=True)
    assert nothing.chapters == []

    changed = runner.run("toy", out=out, book=False, log=quiet, resume=True, overrides={"epochs": 9})
    assert [c["chapter"] for c in changed.chapters] == ["01_first", "02_second"]
    assert json.loads((out / "01_first" / "metrics.json").read_text())["epochs"] == 9


@pytest.mark.slow
def test_cli_resume_reads_the_profile_from_the_run_folder(toy_project, tmp_path, capsys):
    from cytokit import cli

    out = tmp_path / "run"
    assert cli.main(["run", "--profile", "toy", "--out", str(out), "--no-book"]) == 0
    assert cli.main(["run", "--resume", str(out), "--no-book"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert cli.main(["run", "--resume", str(tmp_path / "nowhere"), "--no-book"]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("state", ["backup", "tuner"])
def test_a_training_backup_resumes_only_the_attempt_that_wrote_it(toy_project, tmp_path, state):
    """The same holds for a training backup and for a search's finished trials."""
    out = tmp_path / "run"
    quiet = lambda *a, **k: None  # noqa: E731
    runner.run("toy", out=out, book=False, log=quiet)
    backup = out / "02_second" / state

    def killed_mid_training():
        backup.mkdir(exist_ok=True)
        (backup / "weights.h5").write_text("last finished epoch")
        (out / "02_second" / "metrics.json").unlink()

    killed_mid_training()
    runner.run("toy", out=out, book=False, log=quiet, resume=True)   # same settings: the backup is used
    assert (backup / "weights.h5").exists()

    killed_mid_training()
    runner.run("toy", out=out, book=False, log=quiet, resume=True, overrides={"epochs": 8})
    assert not backup.exists()                                    # other settings: start afresh

    killed_mid_training()
    runner.run("toy", out=out, book=False, log=quiet, force=True)    # a plain re-run never restores
    assert not backup.exists()


def _cli_run(out, stderr, env):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "cytokit.cli", "run", "--profile", "toy", "--out", str(out),
                           "--no-book"], stdout=subprocess.PIPE, stderr=stderr, env=env, timeout=300)


@pytest.mark.slow
def test_a_terminal_sees_each_chapters_cell_bar_and_a_log_does_not(toy_project, tmp_path):
    import fcntl
    import os
    import pty
    import struct
    import termios
    import threading

    env = {**os.environ, "CYTOKIT_HOME": str(toy_project)}
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty is 0 columns wide
    seen = []

    def read_terminal():  # drained while the run writes, so a full terminal buffer never stalls it
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO once the run has closed the terminal
                return
            if not chunk:
                return
            seen.append(chunk)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        done = _cli_run(tmp_path / "tty", follower, env)
    finally:
        os.close(follower)
        reader.join(timeout=30)
        os.close(leader)
    terminal = b"".join(seen).decode(errors="replace")
    assert done.returncode == 0, terminal
    assert "01_first" in terminal and "cell" in terminal, terminal
    piped = _cli_run(tmp_path / "log", -1, env)  # -1: subprocess.PIPE
    assert piped.returncode == 0
    assert b"cell" not in piped.stderr and b"Executing" not in piped.stderr, piped.stderr.decode()
