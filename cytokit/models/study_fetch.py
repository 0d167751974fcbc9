"""Fetch the study's three trained models from its public repository, check them, convert them.

The study's code repository (pinned at :data:`STUDY_COMMIT`) holds its baseline, tuned and
augmented models as pickles. Each download streams to a temporary file and is checked
against its pinned SHA-256 before anything reads it; only then does the restricted
importer of :mod:`cytokit.models.study_import` turn it into a Keras 3 ``.keras`` file.
Verified pickles are kept in ``OUT_DIR/.pickles/`` and finished models are listed in
``OUT_DIR/PROVENANCE.json``, so a rerun fetches and converts only what is missing.
Used by ``cytokit fetch-study-models OUT_DIR``.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.metadata
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cytokit import __version__, io
from cytokit.data import outputs
from cytokit.models.study_import import PICKLE_SUFFIX, StudyModelError, import_study_model
from cytokit.progress import bar

STUDY_REPOSITORY = "https://github.com/ejml1/Deep-Learning-for-Cancer-Detection"
STUDY_COMMIT = "7a3e1d3f5b4000c34f3c46e1af1d4cfdf63ad8c3"
#: Raw files of the repository at the pinned commit; ``--base-url`` replaces this prefix.
DEFAULT_BASE_URL = f"https://raw.githubusercontent.com/ejml1/Deep-Learning-for-Cancer-Detection/{STUDY_COMMIT}"
PROVENANCE = "PROVENANCE.json"
#: Hidden sub-folder of OUT_DIR keeping the verified pickles between runs.
PICKLE_CACHE = ".pickles"
TIMEOUT_S = 60
CHUNK_BYTES = 1 << 16


@dataclass(frozen=True)
class StudyFile:
    """One published model: its name here, its path in the repository, its pinned SHA-256."""

    name: str
    path: str
    sha256: str


STUDY_FILES = (
    StudyFile("baseline", "pickle/model/model_pickle",
              "b0a97c8e2d95368ce9bfa40f27b0994efc65251c2985b9ffb569de33757f563a"),
    StudyFile("tuned", "pickle/optimised/model_pickle",
              "8356594e231d17dbdb2553b7cce02c3c4d31a2d84cbbf8b2e03f67a26a4736b1"),
    StudyFile("augmented", "pickle/augmented/model_pickle",
              "2bd60fbdd7b0c409e807bb2721c112eeb7e18bf7d73fabab923d0e8773e491fa"),
)


class FetchError(RuntimeError):
    """A model could not be fetched or written; the one-line message says what to do."""


def url_of(study_file: StudyFile, base_url: str | None = None) -> str:
    """``BASE/<path in the repository>``; the base defaults to the pinned commit on GitHub."""
    return f"{(base_url or DEFAULT_BASE_URL).rstrip('/')}/{study_file.path}"


def sha256_of(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK_BYTES), b""):
            h.update(chunk)
    return h.hexdigest()


def manual_hint(study_file: StudyFile, out_dir: Path) -> str:
    """What to do by hand: the file's URL on GitHub, its hash, and the import command."""
    return (f"download {url_of(study_file)} by hand (SHA-256 {study_file.sha256}) and convert it with "
            f"`cytokit import-study-model model_pickle {out_dir / study_file.name}.keras`")


def _content_length(response) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None


def download(study_file: StudyFile, url: str, dest: Path, progress: bool = True,
             out_dir: Path | None = None) -> Path:
    """Stream ``url`` into ``dest`` only if every byte arrives and the SHA-256 is the pinned one.

    The bytes go to a temporary file beside ``dest`` that is renamed into place after the
    check, and removed on any failure, so ``dest`` is either absent or verified.
    """
    why = None
    try:
        with io.atomic_path(dest, suffix=".part") as tmp:
            digest, received, expected = hashlib.sha256(), 0, None
            try:
                with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, open(tmp, "wb") as fh, \
                        bar(total=_content_length(response), unit="B", unit_scale=True,
                            desc=study_file.name, enabled=progress) as shown:
                    expected = _content_length(response)
                    for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                        fh.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        shown.update(len(chunk))
            except urllib.error.HTTPError as err:
                why = f"the server answered HTTP {err.code} {err.reason} for {url}"
            except urllib.error.URLError as err:
                why = f"could not reach {url} ({err.reason}); check the network or --base-url"
            except (http.client.HTTPException, ConnectionError, TimeoutError, OSError) as err:
                why = f"the download of {url} broke off after {received:,} bytes ({type(err).__name__}: {err})"
            if why is None and expected is not None and received != expected:
                why = f"the download of {url} broke off after {received:,} of {expected:,} bytes"
            if why is None and digest.hexdigest() != study_file.sha256:
                why = (f"{url} is not the study's {study_file.name} model: its SHA-256 is {digest.hexdigest()}, "
                       f"expected {study_file.sha256}; nothing from it was read")
            if why is not None:
                raise FetchError(why)
    except FetchError as err:
        raise FetchError(f"{err}. Nothing was written for it: run the command again once the file is reachable, or "
                         f"{manual_hint(study_file, out_dir or dest.parent)}") from None
    return dest


def verified_pickle(study_file: StudyFile, out_dir: Path, base_url: str | None, progress: bool, log) -> Path:
    """The pinned pickle in ``OUT_DIR/.pickles/``, downloaded only when no verified copy is there."""
    cached = out_dir / PICKLE_CACHE / f"{study_file.name}{PICKLE_SUFFIX}"
    if cached.is_file() and sha256_of(cached) == study_file.sha256:
        return cached
    url = url_of(study_file, base_url)
    log(f"fetching the {study_file.name} model from {url}")
    return download(study_file, url, cached, progress=progress, out_dir=out_dir)


def read_provenance(out_dir: Path) -> dict:
    path = out_dir / PROVENANCE
    if not path.is_file():
        return {}
    try:
        record = io.read_json(path)
    except ValueError as err:
        raise FetchError(f"{path} is unreadable ({err}); move it away or pass --force to write a new one") from None
    return record if isinstance(record, dict) else {}


def finished(out_dir: Path, record: dict) -> dict[str, bool]:
    """Per model: its ``.keras`` file is there and is the one this command wrote (hash in the record)."""
    models = record.get("models") if isinstance(record.get("models"), dict) else {}
    out = {}
    for f in STUDY_FILES:
        target, entry = out_dir / f"{f.name}.keras", models.get(f.name)
        entry = entry if isinstance(entry, dict) else {}
        out[f.name] = (target.is_file() and entry.get("pickle_sha256") == f.sha256
                       and entry.get("keras_sha256") == sha256_of(target))
    return out


def _check_out_dir(out_dir: Path, done: dict[str, bool], force: bool) -> None:
    """Refuse a dataset folder, a file, or a ``.keras`` file this command did not write (without force)."""
    try:
        outputs.check_folder_output(out_dir, "OUT_DIR")
    except outputs.OutputError as err:
        raise FetchError(str(err)) from None
    foreign = [f"{f.name}.keras" for f in STUDY_FILES if (out_dir / f"{f.name}.keras").exists() and not done[f.name]]
    if foreign and not force:
        raise FetchError(f"{out_dir} already holds {', '.join(foreign)} not written by this command (or changed "
                         f"since); nothing was changed: pass --force to replace them, or choose another OUT_DIR")


def fetch_study_models(out_dir, base_url: str | None = None, force: bool = False, progress: bool = True,
                       log=print) -> dict[str, Path]:
    """Write ``OUT_DIR/{baseline,tuned,augmented}.keras`` and ``PROVENANCE.json``, fetching what is missing.

    With ``force`` every model is converted again (from the verified pickles when they are
    kept) and existing ``.keras`` files are replaced; without it a ``.keras`` file this
    command did not write is never touched.
    """
    out_dir = Path(out_dir).expanduser().resolve()
    try:
        record = read_provenance(out_dir)
    except FetchError:
        if not force:
            raise
        record = {}
    done = finished(out_dir, record)
    _check_out_dir(out_dir, done, force)
    outputs = {f.name: out_dir / f"{f.name}.keras" for f in STUDY_FILES}
    todo = [f for f in STUDY_FILES if force or not done[f.name]]
    if not todo:
        log(f"{out_dir} already holds the study's three models, checked against {PROVENANCE}; nothing fetched")
        return outputs
    kept = record.get("models") if isinstance(record.get("models"), dict) else {}
    record = {"repository": STUDY_REPOSITORY, "commit": STUDY_COMMIT, "models": dict(kept)}
    created = [d for d in (out_dir, out_dir / PICKLE_CACHE) if not d.exists()]
    try:
        for f in todo:
            record["models"][f.name] = _fetch_one(f, out_dir, base_url, progress, log)
            record.update(written=time.strftime("%Y-%m-%dT%H:%M:%S%z"), cytokit=__version__,
                          keras=importlib.metadata.version("keras"))
            io.write_json(out_dir / PROVENANCE, record)
    except BaseException:
        for folder in reversed(created):  # only folders this call made, and only when left empty
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    return outputs


def _fetch_one(f: StudyFile, out_dir: Path, base_url: str | None, progress: bool, log) -> dict:
    """Fetch (or reuse) one verified pickle, convert it, and return its provenance entry."""
    pickle_path = verified_pickle(f, out_dir, base_url, progress, log)
    target = out_dir / f"{f.name}.keras"
    try:
        import_study_model(pickle_path, target)
    except (StudyModelError, OSError) as err:
        raise FetchError(f"converting {pickle_path} to {target} failed ({err}); {manual_hint(f, out_dir)}") from None
    log(f"{target}: the study's {f.name} model (pickle SHA-256 {f.sha256[:12]}...)")
    return {"source_url": url_of(f, base_url), "github_url": url_of(f), "pickle_sha256": f.sha256,
            "keras_file": target.name, "keras_sha256": sha256_of(target)}


def main_fetch(out_dir, base_url: str | None = None, force: bool = False, progress: bool = True) -> dict[str, Path]:
    """``cytokit fetch-study-models OUT_DIR``: fetch, check, convert; one line per model written."""
    outputs = fetch_study_models(out_dir, base_url=base_url, force=force, progress=progress)
    print(f"models ready in {Path(out_dir)}: use `cytokit run --profile study --study-models {Path(out_dir)}`")
    return outputs

