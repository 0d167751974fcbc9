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

import contextlib
import hashlib
import http.client
import importlib.metadata
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cytokit import __version__, arguments, io
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
#: Seconds without a byte before a download is given up (``--stall-timeout``).
STALL_S = 60.0
#: Seconds the whole download may take (``--deadline``): the three files are 3.8 MB together.
DEADLINE_S = 900.0
CHUNK_BYTES = 1 << 16


@dataclass(frozen=True)
class StudyFile:
    """One published model: its name here, its path in the repository, its pinned SHA-256 and size."""

    name: str
    path: str
    sha256: str
    size: int


STUDY_FILES = (
    StudyFile("baseline", "pickle/model/model_pickle",
              "b0a97c8e2d95368ce9bfa40f27b0994efc65251c2985b9ffb569de33757f563a", 1_274_640),
    StudyFile("tuned", "pickle/optimised/model_pickle",
              "8356594e231d17dbdb2553b7cce02c3c4d31a2d84cbbf8b2e03f67a26a4736b1", 1_276_710),
    StudyFile("augmented", "pickle/augmented/model_pickle",
              "2bd60fbdd7b0c409e807bb2721c112eeb7e18bf7d73fabab923d0e8773e491fa", 1_276_710),
)


@dataclass(frozen=True)
class Limits:
    """Bounds of a download: bytes per file (None: its pinned size, the only size its hash can match), seconds
    for the whole download, seconds without a byte."""

    max_bytes: int | None = None
    deadline: float = DEADLINE_S
    stall: float = STALL_S


#: Temporary files of this command (``io.atomic_path``'s names) that a killed run can leave behind.
_LEFTOVER = re.compile(r"\.(?:(?:baseline|tuned|augmented)\.(?:model_pickle\.[a-z0-9_]{8}\.part|keras\.[a-z0-9_]{8}"
                       r"\.keras)|PROVENANCE\.json\.[a-z0-9_]{8}\.json)")


class FetchError(RuntimeError):
    """A model could not be fetched or written; the one-line message says what to do."""


def _url_of(study_file: StudyFile, base_url: str | None = None) -> str:
    """``BASE/<path in the repository>``; the base defaults to the pinned commit on GitHub."""
    return f"{(base_url or DEFAULT_BASE_URL).rstrip('/')}/{study_file.path}"


def sha256_of(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK_BYTES), b""):
            h.update(chunk)
    return h.hexdigest()


def _manual_hint(study_file: StudyFile, out_dir: Path) -> str:
    """What to do by hand: the file's URL on GitHub, its hash, and the import command."""
    return (f"download {_url_of(study_file)} by hand (SHA-256 {study_file.sha256}) and convert it with "
            f"`cytokit import-study-model model_pickle {out_dir / study_file.name}.keras`")


def _content_length(response) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None


class _Deadline:
    """The whole download's deadline: at that moment the sockets of the download under way are shut, so a read
    blocked in one (a server that drips a byte at a time, or never ends its headers) returns at once."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.until = time.monotonic() + seconds
        self.expired = False
        self._sockets: list = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()

    def watch(self, sock) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def passed(self) -> bool:
        return self.expired or time.monotonic() > self.until


def _shut(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _opener(deadline: _Deadline):
    """urllib's opener (proxies, redirects, file:// URLs as usual) whose HTTP(S) sockets ``deadline`` can shut."""

    class Connection(http.client.HTTPConnection):
        def connect(self):
            super().connect()
            deadline.watch(self.sock)

    class SecureConnection(http.client.HTTPSConnection):
        def connect(self):
            super().connect()
            deadline.watch(self.sock)

    class Handler(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(Connection, req)

    class SecureHandler(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(SecureConnection, req, context=self._context)

    return urllib.request.build_opener(Handler, SecureHandler)


def download(study_file: StudyFile, url: str, dest: Path, progress: bool = True,
             out_dir: Path | None = None, limits: Limits = Limits(), deadline: _Deadline | None = None) -> Path:
    """Stream ``url`` into ``dest`` only if every byte arrives in time and the SHA-256 is the pinned one.

    The bytes go to a temporary file beside ``dest`` that is renamed into place after the
    check, and removed on any failure or interruption, so ``dest`` is either absent or
    verified. A download stops at ``limits.max_bytes`` (default: the pinned size), after
    ``limits.stall`` seconds without a byte, and when ``deadline`` (the whole command's;
    default ``limits.deadline`` from now) passes.
    """
    own = deadline is None
    deadline = deadline or _Deadline(limits.deadline)
    try:
        with deadline if own else contextlib.nullcontext(), io.atomic_path(dest, suffix=".part") as tmp:
            why = _stream(study_file, url, tmp, limits.max_bytes or study_file.size, limits.stall, deadline, progress)
            if why is not None:
                raise FetchError(why)
    except FetchError as err:
        raise FetchError(f"{err}. Nothing was written for it: run the command again once the file is reachable, or "
                         f"{_manual_hint(study_file, out_dir or dest.parent)}") from None
    return dest


def _stream(study_file: StudyFile, url: str, tmp: Path, cap: int, stall: float, deadline: _Deadline,
            progress: bool) -> str | None:
    """Copy ``url`` into ``tmp`` within the bounds; None when it arrived whole with the pinned hash, else why not."""
    digest, received, expected, why = hashlib.sha256(), 0, None, None
    late = (f"the download did not finish within its {deadline.seconds:g} s deadline (--deadline): "
            f"{{}} bytes of {url} had arrived")
    try:
        with _opener(deadline).open(url, timeout=stall) as response, open(tmp, "wb") as fh, \
                bar(total=_content_length(response), unit="B", unit_scale=True,
                    desc=study_file.name, enabled=progress) as shown:
            expected = _content_length(response)
            if expected is not None and expected > cap:
                return (f"{url} announces {expected:,} bytes; the study's {study_file.name} model is "
                        f"{study_file.size:,} (limit {cap:,}, --max-file-mb): not downloaded")
            read = getattr(response, "read1", response.read)
            while True:
                if deadline.passed():
                    return late.format(f"{received:,}")
                chunk = read(CHUNK_BYTES)
                if not chunk:
                    break
                received += len(chunk)
                if received > cap:
                    return (f"{url} sent more than {cap:,} bytes; the study's {study_file.name} model is "
                            f"{study_file.size:,} (--max-file-mb): stopped there")
                fh.write(chunk)
                digest.update(chunk)
                shown.update(len(chunk))
    except urllib.error.HTTPError as err:
        why = f"the server answered HTTP {err.code} {err.reason} for {url}"
    except urllib.error.URLError as err:
        why = f"could not reach {url} ({err.reason}); check the network or --base-url"
    except TimeoutError:
        why = f"{url} sent nothing for {stall:g} s after {received:,} bytes (--stall-timeout)"
    except (http.client.HTTPException, ConnectionError, OSError) as err:
        why = f"the download of {url} broke off after {received:,} bytes ({type(err).__name__}: {err})"
    whole = why is None and (expected is None or received == expected) and digest.hexdigest() == study_file.sha256
    if deadline.expired and not whole:  # the deadline shut the connection under a read
        return late.format(f"{received:,}")
    if why is None and expected is not None and received != expected:
        why = f"the download of {url} broke off after {received:,} of {expected:,} bytes"
    if why is None and digest.hexdigest() != study_file.sha256:
        why = (f"{url} is not the study's {study_file.name} model: its SHA-256 is {digest.hexdigest()}, "
               f"expected {study_file.sha256}; nothing from it was read")
    return why


def _verified_pickle(study_file: StudyFile, out_dir: Path, base_url: str | None, progress: bool, log,
                    limits: Limits = Limits(), deadline: _Deadline | None = None) -> Path:
    """The pinned pickle in ``OUT_DIR/.pickles/``, downloaded only when no verified copy is there."""
    cached = out_dir / PICKLE_CACHE / f"{study_file.name}{PICKLE_SUFFIX}"
    if cached.is_file() and cached.stat().st_size == study_file.size and sha256_of(cached) == study_file.sha256:
        return cached
    url = _url_of(study_file, base_url)
    log(f"fetching the {study_file.name} model from {url}")
    return download(study_file, url, cached, progress=progress, out_dir=out_dir, limits=limits, deadline=deadline)


def _remove_leftovers(out_dir: Path, log) -> list[Path]:
    """Delete temporary files an earlier, killed run of this command left in OUT_DIR (its own names only)."""
    gone = []
    for folder in (out_dir, out_dir / PICKLE_CACHE):
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if _LEFTOVER.fullmatch(path.name) and path.is_file() and not path.is_symlink():
                    path.unlink()
                    gone.append(path)
    if gone:
        log(f"removed {len(gone)} temporary file(s) an interrupted earlier run left in {out_dir}")
    return gone


def read_provenance(out_dir: Path) -> dict:
    path = out_dir / PROVENANCE
    if not path.is_file():
        return {}
    fix = "move it away or pass --force to write a new one"
    if path.stat().st_size > MAX_PROVENANCE_BYTES:
        raise FetchError(f"{path} is {path.stat().st_size:,} bytes, over the {MAX_PROVENANCE_BYTES:,}-byte limit of "
                         f"a provenance record: not read; {fix}")
    try:
        record = io.read_json(path)
    except (ValueError, RecursionError) as err:
        raise FetchError(f"{path} is unreadable ({str(err)[:80]}); {fix}") from None
    return record if isinstance(record, dict) else {}


#: Largest PROVENANCE.json read (the ones written are about 1.5 KB).
MAX_PROVENANCE_BYTES = 2**20


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


def _fetch_study_models(out_dir, base_url: str | None = None, force: bool = False, progress: bool = True,
                       log=print, limits: Limits = Limits()) -> dict[str, Path]:
    """Write ``OUT_DIR/{baseline,tuned,augmented}.keras`` and ``PROVENANCE.json``, fetching what is missing.

    With ``force`` every model is converted again (from the verified pickles when they are
    kept) and existing ``.keras`` files are replaced; without it a ``.keras`` file this
    command did not write is never touched. OUT_DIR is locked while the command writes
    into it; temporary files a killed earlier run left there are removed first.
    """
    out_dir = arguments.resolved("OUT_DIR", out_dir)
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
        with io.folder_lock(out_dir, log=log, advice="wait for the other fetch to finish, or choose another OUT_DIR"), \
                _Deadline(limits.deadline) as deadline:
            _remove_leftovers(out_dir, log)
            for f in todo:
                record["models"][f.name] = _fetch_one(f, out_dir, base_url, progress, log, limits, deadline)
                record.update(written=time.strftime("%Y-%m-%dT%H:%M:%S%z"), cytokit=__version__,
                              keras=importlib.metadata.version("keras"))
                io.write_json(out_dir / PROVENANCE, record)
    except BaseException:
        for folder in reversed(created):  # only folders this call made, and only when left empty
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    return outputs


def _fetch_one(f: StudyFile, out_dir: Path, base_url: str | None, progress: bool, log, limits: Limits,
               deadline: _Deadline) -> dict:
    """Fetch (or reuse) one verified pickle, convert it, and return its provenance entry."""
    pickle_path = _verified_pickle(f, out_dir, base_url, progress, log, limits, deadline)
    target = out_dir / f"{f.name}.keras"
    try:
        import_study_model(pickle_path, target)
    except (StudyModelError, OSError) as err:
        raise FetchError(f"converting {pickle_path} to {target} failed ({err}); {_manual_hint(f, out_dir)}") from None
    log(f"{target}: the study's {f.name} model (pickle SHA-256 {f.sha256[:12]}...)")
    return {"source_url": _url_of(f, base_url), "github_url": _url_of(f), "pickle_sha256": f.sha256,
            "keras_file": target.name, "keras_sha256": sha256_of(target)}


def main_fetch(out_dir, base_url: str | None = None, force: bool = False, progress: bool = True,
               limits: Limits = Limits()) -> dict[str, Path]:
    """``cytokit fetch-study-models OUT_DIR``: fetch, check, convert; one line per model written."""
    outputs = _fetch_study_models(out_dir, base_url=base_url, force=force, progress=progress, limits=limits)
    print(f"models ready in {Path(out_dir)}: use `cytokit run --profile study --study-models {Path(out_dir)}`")
    return outputs

