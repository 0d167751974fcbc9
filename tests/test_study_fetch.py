"""``cytokit fetch-study-models``: the study's three models from a (local) copy of its repository.

The pickles are served over HTTP on loopback, laid out as in the study's repository,
by a small server that counts requests and can tamper, withhold or cut a file short.
"""

from __future__ import annotations

import shutil
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, require_study_file, shared_dir, study_models_dir
from cytokit import cli

keras = pytest.importorskip("keras")

from cytokit.models import study_fetch  # noqa: E402  (loads TensorFlow)

STUDY_MODELS = study_models_dir()
#: Where each published pickle sits in the study's repository, by model name.
REPO_PATHS = {f.name: f.path for f in study_fetch.STUDY_FILES}
N_IMAGES = 8


class StudyRepo:
    """The repository's files served under ``/<commit>/``, with faults to order."""

    def __init__(self, files: dict[str, bytes]):
        self.files = dict(files)
        self.requests: list[str] = []
        self.missing: set[str] = set()
        self.cut_short: set[str] = set()

    def handler(self):
        repo = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                repo.requests.append(self.path)
                path = self.path.removeprefix(f"/{study_fetch.STUDY_COMMIT}/")
                if path not in repo.files or path in repo.missing:
                    self.send_error(404, "Not Found")
                    return
                data = repo.files[path]
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if path in repo.cut_short:  # half the file, then the connection drops
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler


@contextmanager
def serving(repo: StudyRepo):
    """Serve ``repo`` on a free loopback port; yields the base URL (up to and including the commit)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), repo.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{study_fetch.STUDY_COMMIT}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def repo() -> StudyRepo:
    """The study's pickles (``../shared/reference/study-models/pickled``) at their repository paths."""
    pickled = STUDY_MODELS / "pickled"
    files = {path: require_study_file(pickled / f"{name}.model_pickle").read_bytes()
             for name, path in REPO_PATHS.items()}
    return StudyRepo(files)


def fetch(out: Path, base_url: str, *extra: str) -> int:
    return cli.main(["fetch-study-models", str(out), "--base-url", base_url, "--quiet", *extra])


def left_behind(folder: Path) -> list[str]:
    """Temporary files of interrupted writes anywhere under ``folder``."""
    return sorted(p.name for p in folder.rglob("*") if p.suffix in (".part", ".tmp") or p.name.startswith(".")
                  and p.is_file())


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, f"expected one line on stderr, got:\n{err}"
    assert "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def probe_images() -> np.ndarray:
    """A few real-sample images read as the study read them, or seeded noise when the sample is absent."""
    sample = shared_dir() / "real-sample"
    if sample.is_dir():
        from cytokit.data import pipeline

        paths = sorted(sample.rglob("*.jpg"))
        paths = paths[:: max(1, len(paths) // N_IMAGES)][:N_IMAGES]
        return np.stack([pipeline.load_image(str(p), 250).numpy() for p in paths])
    return np.random.default_rng(0).integers(0, 256, (N_IMAGES, 250, 250, 3)).astype(np.uint8)


@pytest.mark.slow
def test_fetch_converts_the_three_models_exactly(repo, tmp_path, probe_images, capsys):
    out = tmp_path / "models"
    with serving(repo) as base:
        assert fetch(out, base) == 0
    assert sorted(repo.requests) == sorted(f"/{study_fetch.STUDY_COMMIT}/{p}" for p in REPO_PATHS.values())
    record = study_fetch.read_provenance(out)
    assert record["commit"] == study_fetch.STUDY_COMMIT
    for f in study_fetch.STUDY_FILES:
        entry = record["models"][f.name]
        assert entry["pickle_sha256"] == f.sha256 and entry["source_url"] == f"{base}/{f.path}"
        assert entry["keras_sha256"] == study_fetch.sha256_of(out / f"{f.name}.keras")
        ours = keras.saving.load_model(out / f"{f.name}.keras", compile=False)
        key = keras.saving.load_model(require_study_file(STUDY_MODELS / f"{f.name}.keras"), compile=False)
        rescaled = probe_images.astype(np.float32) * np.float32(1 / 255)  # ours: uint8 through Rescaling(1/255)
        np.testing.assert_array_equal(ours.predict(probe_images, verbose=0), key.predict(rescaled, verbose=0))
    assert left_behind(out) == []
    assert "--study-models" in capsys.readouterr().out


def test_a_rerun_fetches_nothing_and_says_so(repo, tmp_path, capsys):
    out = tmp_path / "models"
    with serving(repo) as base:
        assert fetch(out, base) == 0
        before = {p: p.stat().st_mtime_ns for p in out.glob("*.keras")}
        repo.requests.clear()
        capsys.readouterr()
        assert fetch(out, base) == 0
    assert repo.requests == []
    assert "nothing fetched" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.glob("*.keras")} == before


def test_force_reconverts_from_the_kept_pickles_and_refetches_only_a_spoilt_one(repo, tmp_path):
    out = tmp_path / "models"
    with serving(repo) as base:
        assert fetch(out, base) == 0
        (out / ".pickles" / "tuned.model_pickle").write_bytes(b"spoilt")
        repo.requests.clear()
        assert fetch(out, base, "--force") == 0
    assert repo.requests == [f"/{study_fetch.STUDY_COMMIT}/{REPO_PATHS['tuned']}"]
    assert study_fetch.sha256_of(out / ".pickles" / "tuned.model_pickle") == study_fetch.STUDY_FILES[1].sha256


def test_a_tampered_file_is_refused_before_it_is_read(repo, tmp_path, capsys, monkeypatch):
    path = REPO_PATHS["baseline"]
    data = bytearray(repo.files[path])
    data[len(data) // 2] ^= 0xFF
    repo.files[path] = bytes(data)
    read = []
    monkeypatch.setattr(study_fetch, "import_study_model", lambda *a: read.append(a))
    out, base, err = failed_fetch(repo, tmp_path, capsys)
    assert "SHA-256" in err and study_fetch.STUDY_FILES[0].sha256 in err
    assert "import-study-model" in err and study_fetch.DEFAULT_BASE_URL in err
    assert read == [] and not out.exists()


def failed_fetch(repo, tmp_path, capsys):
    """Fetch into a new folder from the loopback repository; it must exit 2. Returns (out, base URL, message)."""
    out = tmp_path / "models"
    with serving(repo) as base:
        assert fetch(out, base) == 2
    return out, base, one_line_error(capsys)


def test_a_missing_file_exits_2_with_one_line(repo, tmp_path, capsys):
    repo.missing.add(REPO_PATHS["baseline"])
    out, base, err = failed_fetch(repo, tmp_path, capsys)
    assert "404" in err and f"{base}/{REPO_PATHS['baseline']}" in err
    assert f"{study_fetch.DEFAULT_BASE_URL}/{REPO_PATHS['baseline']}" in err and "import-study-model" in err
    assert not out.exists()


def test_a_dropped_connection_leaves_nothing_half_written_and_the_rerun_resumes(repo, tmp_path, capsys):
    repo.cut_short.add(REPO_PATHS["augmented"])
    out = tmp_path / "models"
    with serving(repo) as base:
        assert fetch(out, base) == 2
        err = one_line_error(capsys)
        assert "broke off" in err and "augmented" in err
        assert sorted(p.name for p in out.iterdir()) == [".pickles", "PROVENANCE.json", "baseline.keras", "tuned.keras"]
        assert sorted(p.name for p in (out / ".pickles").iterdir()) == ["baseline.model_pickle", "tuned.model_pickle"]
        assert sorted(study_fetch.read_provenance(out)["models"]) == ["baseline", "tuned"]
        repo.cut_short.clear()
        repo.requests.clear()
        assert fetch(out, base) == 0
    assert repo.requests == [f"/{study_fetch.STUDY_COMMIT}/{REPO_PATHS['augmented']}"]
    assert sorted(study_fetch.read_provenance(out)["models"]) == ["augmented", "baseline", "tuned"]


def test_no_network_exits_2_with_one_line(tmp_path, capsys):
    with serving(StudyRepo({})) as base:
        pass  # the port is closed again: nothing answers there
    assert fetch(tmp_path / "models", base) == 2
    err = one_line_error(capsys)
    assert "could not reach" in err and "import-study-model" in err


def test_a_keras_file_it_did_not_write_is_kept_unless_forced(repo, tmp_path, capsys):
    out = tmp_path / "models"
    out.mkdir()
    (out / "tuned.keras").write_bytes(b"a user's own model")
    with serving(repo) as base:
        assert fetch(out, base) == 2
        err = one_line_error(capsys)
        assert "tuned.keras" in err and "--force" in err
        assert (out / "tuned.keras").read_bytes() == b"a user's own model" and repo.requests == []
        assert fetch(out, base, "--force") == 0
    assert keras.saving.load_model(out / "tuned.keras", compile=False).output_shape == (None, 21)


def test_a_dataset_folder_is_refused(repo, tmp_path, capsys):
    dataset = tmp_path / "dataset"
    for code in ("BLA", "EOS"):
        (dataset / code / "0001-1000").mkdir(parents=True)
        (dataset / code / "0001-1000" / f"{code}_00001.jpg").write_bytes(b"\xff\xd8")
    with serving(repo) as base:
        assert fetch(dataset, base) == 2
    assert "dataset" in one_line_error(capsys) and repo.requests == []
    assert sorted(str(p.relative_to(dataset)) for p in dataset.rglob("*.jpg")) == [
        "BLA/0001-1000/BLA_00001.jpg", "EOS/0001-1000/EOS_00001.jpg"]


# --------------------------------------------------------------------------- the study profile on a bare clone


def test_the_study_profile_on_a_bare_clone_says_what_it_needs(tmp_path, monkeypatch, capsys):
    clone = tmp_path / "clone"
    clone.mkdir()
    shutil.copy(ROOT / "pyproject.toml", clone)
    for folder in ("notebooks", "profiles"):
        shutil.copytree(ROOT / folder, clone / folder)
    (tmp_path / "nothing").mkdir()
    monkeypatch.setenv("CYTOKIT_HOME", str(clone))  # ../shared beside this clone does not exist
    monkeypatch.setenv("CYTOKIT_SHARED", str(tmp_path / "nothing"))
    out = tmp_path / "run"
    assert cli.main(["run", "--profile", "study", "--out", str(out)]) == 2
    err = one_line_error(capsys)
    for hint in ("--study-models", "cytokit fetch-study-models DIR", "--data-dir", "data/README.md"):
        assert hint in err
    assert not out.exists()
