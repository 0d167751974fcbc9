"""End to end: the smoke profile through the runner, the book built, figures drawn in Chromium."""

import hashlib
import importlib
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import chromium
import pages
from conftest import ROOT
from method_on_page import METHOD

pytestmark = pytest.mark.slow

DATASET_STATE = {}  # the smoke run's dataset tree, hashed before and after the run


def tree_state(root: Path) -> dict:
    """Every file and folder under ``root`` (hidden ones too): type, size, mode, mtime, content hash."""
    state = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            st = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() and not path.is_symlink() else None
            state[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    st = root.stat()
    state["."] = (st.st_mode, st.st_size, st.st_mtime_ns, None)
    return state


def smoke_dataset() -> Path:
    """The embedded dataset the smoke profile reads (generated here if absent, as the run would)."""
    from cytokit.book import profiles
    from cytokit.data import embedded

    p = profiles.chapter_parameters(profiles.load("smoke"), "01_data")
    return embedded.resolve(None, synth_images=p["synth_images"], synth_seed=p["synth_seed"],
                            synth_difficulty=p["synth_difficulty"], progress=False)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke") / "run"
    dataset = smoke_dataset()
    DATASET_STATE.update(path=dataset, before=tree_state(dataset))
    # as a user runs it: the project's command from a plain shell's environment, not pytest's
    venv_bin = Path(sys.executable).parent
    cli = [str(venv_bin / "cytokit"), "run", "--profile", "smoke", "--out", str(out)]
    proc = subprocess.run(cli, cwd=ROOT, capture_output=True, text=True, timeout=1500,
                          env=pages.plain_shell_environment(venv_bin))
    DATASET_STATE["stderr"] = proc.stderr
    DATASET_STATE["after"] = tree_state(dataset)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def test_the_run_leaves_the_dataset_untouched(smoke_run):
    """Nothing lost: same files and folders, same bytes, same modification times."""
    before, after = DATASET_STATE["before"], DATASET_STATE["after"]
    assert json.loads((smoke_run / "01_data" / "metrics.json").read_text())["data_dir"] == str(DATASET_STATE["path"])
    assert len(before) > 800
    assert sorted(set(before) ^ set(after)) == [], "files or folders appeared in or vanished from the dataset"
    changed = [k for k in before if before[k] != after[k]]
    assert changed == [], f"the run changed {len(changed)} dataset entries, e.g. {changed[:5]}"


def test_every_chapter_executed_with_metrics(smoke_run):
    executed = sorted(p.name for p in smoke_run.glob("[0-9][0-9]_*/[0-9][0-9]_*.ipynb"))
    sources = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert executed == sources
    for nb in executed:
        metrics = json.loads((smoke_run / nb[:-6] / "metrics.json").read_text())
        assert metrics["chapter"] == nb[:-6]
    run = json.loads((smoke_run / "run.json").read_text())
    assert run["profile"] == "smoke" and "finished" in run


def test_pages_carry_no_warnings_or_progress_bars(smoke_run):
    """Warnings and progress bars printed while a chapter ran would be frozen into its page."""
    noisy = []
    for nb_path in sorted(smoke_run.glob("[0-9][0-9]_*/[0-9][0-9]_*.ipynb")):
        for i, cell in enumerate(json.loads(nb_path.read_text())["cells"]):
            for out in cell.get("outputs", []):
                text = "".join(out.get("text", "")) if out.get("output_type") == "stream" else ""
                if out.get("name") == "stderr" or "Warning" in text:
                    noisy.append(f"{nb_path.name} cell {i}: {text[:120]!r}")
    assert noisy == []


def test_built_pages_show_no_machine_noise_and_no_machine_paths(smoke_run):
    """The HTML a reader opens: no TensorFlow/absl/oneDNN lines, warnings, tracebacks, progress bars,
    nor an absolute path of the machine that built it (the run folder, the dataset, the project, home)."""
    html = smoke_run / "book" / "_build" / "html"
    machine = [smoke_run, DATASET_STATE["path"], ROOT, Path.home(), smoke_run.resolve()]
    found = pages.problems(html, machine)
    assert len(pages.pages(html)) >= 8
    assert found == [], "\n".join(found[:20])


def test_the_xai_page_has_the_full_structure_and_ground_truth_on_synthetic_cells(smoke_run):
    """The smoke run's chapter 06 has every section, fill, check and interval the study profile's has."""
    assert pages.xai_structure_problems(smoke_run) == []
    m = json.loads((smoke_run / "06_xai" / "metrics.json").read_text())
    assert "cannot be checked" not in m["ground_truth_statement"], m["ground_truth_statement"]


def test_the_terminal_shows_progress_not_library_noise(smoke_run):
    """TensorFlow's start-up lines go to each chapter's kernel.log, not to the user's terminal."""
    assert "absl::InitializeLog" not in DATASET_STATE["stderr"]
    assert (smoke_run / "02_baseline" / "kernel.log").is_file()


def test_source_notebooks_stay_clean():
    import nbformat

    for path in (ROOT / "notebooks").glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") and not c.get("execution_count")
                   for c in nb.cells if c.cell_type == "code"), f"{path} carries outputs"


def test_the_test_split_is_first_read_by_chapter_05(smoke_run):
    read = {d.name: set((d / "splits_read.txt").read_text().split()) if (d / "splits_read.txt").exists() else set()
            for d in smoke_run.glob("[0-9][0-9]_*") if d.is_dir()}
    assert read["02_baseline"] and read["04_augmentation"], "the split log was not written"
    for chapter, splits in read.items():
        if chapter < "05":
            assert "test" not in splits and "all" not in splits, f"{chapter} read {splits}"
    assert "test" in read["05_test_results"]


def test_test_chapter_reports_all_three_models(smoke_run):
    m = json.loads((smoke_run / "05_test_results" / "metrics.json").read_text())
    for model in ("baseline", "tuned", "augmented"):
        for key in ("accuracy", "balanced_accuracy", "precision", "recall", "f1"):
            assert 0.0 <= m[f"{model}_test_{key}"] <= 1.0
    # a best model is named only when the paired comparisons support it; the model card's is always one
    assert m["clearly_best_model"] in (None, "baseline", "tuned", "augmented")
    assert m["card_model"] in ("baseline", "tuned", "augmented")
    assert 0.0 <= m["neu_recall_ci95"][0] <= m["neu_recall"] <= m["neu_recall_ci95"][1] <= 1.0
    assert m["grouped_accuracy_ci95"][0] <= m["grouped_accuracy"] <= m["grouped_accuracy_ci95"][1]
    assert "study's best model's 91.4 %" in m["neu_against_study"]


@pytest.mark.parametrize("chapter,min_figures", [("01_data", 4), ("02_baseline", 4), ("03_tuning", 3),
                                                 ("04_augmentation", 4), ("05_test_results", 4)])
def test_chapter_pages_render_their_figures_offline(smoke_run, chapter, min_figures):
    if chromium.executable() is None:
        pytest.skip("Debian chromium is not installed (apt-get install chromium); .ci/run installs it")
    page = smoke_run / "book" / "_build" / "html" / "notebooks" / f"{chapter}.html"
    dom, console = chromium.render(page)
    assert chromium.count_figures(dom) >= min_figures, "plotly figures did not render"
    assert console == [], f"console messages: {console}"


def test_data_chapter_renders_its_figures_offline(smoke_run):
    if chromium.executable() is None:
        pytest.skip("Debian chromium is not installed (apt-get install chromium); .ci/run installs it")
    page = smoke_run / "book" / "_build" / "html" / "notebooks" / "01_data.html"
    assert page.is_file()
    dom, console = chromium.render(page)
    assert chromium.count_figures(dom) >= 4, "plotly figures did not render"
    assert console == [], f"console messages: {console}"
    assert "These are synthetic cells" in dom


def test_real_and_synthetic_cells_side_by_side_and_the_sim_to_real_figure_on_the_pages(smoke_run):
    """Chapter 1 sets the real sample's cells beside the synthetic ones (or says it found none); the first page
    gives the benchmark's sim-to-real figure with its interval, as the built pages show them."""
    from cytokit.pages import realism
    from cytokit.data.realism import default_real_sample

    m1 = json.loads((smoke_run / "01_data" / "metrics.json").read_text())
    expected = "beside three real ones" if default_real_sample().is_dir() else "found no real images"
    assert expected in m1["realism_statement"]
    html = smoke_run / "book" / "_build" / "html" / "notebooks"
    assert "optical density" in (html / "01_data.html").read_text(encoding="utf-8")
    found = json.loads((smoke_run / "findings" / "metrics.json").read_text())["sim_to_real"]
    ba = realism.published()["synthetic"]["balanced_accuracy"]
    assert f"{100 * ba['low']:.1f}–{100 * ba['high']:.1f} %" in found
    assert "What the embedded data can and cannot say" in (html / "findings.html").read_text(encoding="utf-8")


def _page(smoke_run, chapter: str) -> Path:
    return smoke_run / "book" / "_build" / "html" / "notebooks" / f"{chapter}.html"


def _unspaced(text: str) -> str:
    """Text without any whitespace: highlighted code reaches the page's text with spaces between its tokens."""
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize("chapter", sorted(METHOD))
def test_each_chapter_shows_the_code_of_its_method_as_the_package_runs_it(smoke_run, chapter):
    assert METHOD[chapter], f"{chapter} names no function of its method to show"
    text = _unspaced(pages.text_of(_page(smoke_run, chapter)))
    for module, name in METHOD[chapter]:
        source = inspect.getsource(getattr(importlib.import_module(module), name))
        missing = [line for line in source.splitlines() if line.strip() and _unspaced(line) not in text]
        assert missing == [], f"{chapter} does not show {module}.{name} as it is: {missing[:3]}"


@pytest.mark.parametrize("chapter", ["01_data", "02_baseline", "03_tuning", "04_augmentation", "05_test_results",
                                     "06_xai"])
def test_every_figure_is_numbered_by_sphinx_with_a_caption_and_the_chapter_ends_with_a_summary(smoke_run, chapter):
    raw = _page(smoke_run, chapter).read_text(encoding="utf-8")
    figures = re.findall(r"(?s)<figure\b.*?</figure>", raw)
    assert figures, f"{chapter} has no numbered figure"
    unnumbered = [f[:200] for f in figures if not re.search(r'class="caption-number">Fig\. \d+', f)]
    assert unnumbered == [], f"{chapter}: figures without a Sphinx number and caption: {unnumbered[:2]}"
    assert not re.search(r"\bFigure \d+\.\d+\b", pages.text_of(_page(smoke_run, chapter))), \
        f"{chapter} types a figure number by hand"
    assert re.search(r'<h2>Summary<a class="headerlink"', raw), f"{chapter} has no Summary section"
