"""More rows of the hostile-input table: crafted model files, images that decoders disagree on, servers that
never finish, damaged run records, links that loop, flags out of range.

Each ``_name(tmp, root)`` builds one case in the folder ``tmp`` and returns a
:class:`test_hostile_inputs.Built` (the command, what must not change, what the message
must name, and what to stop afterwards); ``tests/hostile_cases.yaml`` lists them.
Everything is crafted here, from the study's published baseline pickle where a case
needs a real model file (``../shared/reference``), or from scratch.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import pickletools
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import require_study_file, shared_dir

STUDY_COMMIT = "7a3e1d3f5b4000c34f3c46e1af1d4cfdf63ad8c3"
BASELINE_PATH = "pickle/model/model_pickle"
#: The last Dense layer's bias and the first Dense layer's kernel in the study's ``model.weights.h5``.
BIAS = "_layer_checkpoint_dependencies/dense_2/vars/1"
KERNEL = "_layer_checkpoint_dependencies/dense/vars/0"


# --------------------------------------------------------------------------- crafted study models


@functools.lru_cache(maxsize=1)
def study_members() -> dict:
    """The members of the study's baseline archive, taken out of its pickle as bytes (nothing unpickled)."""
    pickled = require_study_file(shared_dir() / "reference" / "study-models" / "pickled" / "baseline.model_pickle")
    data = pickled.read_bytes()
    archive = next(arg for _op, arg, _pos in pickletools.genops(data) if isinstance(arg, bytes))
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def zipped(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def crafted_weights(edit) -> bytes:
    """The study's ``model.weights.h5`` copied object by object, then changed by ``edit(h5)`` (h5py, in memory)."""
    import h5py

    out = io.BytesIO()
    with h5py.File(io.BytesIO(study_members()["model.weights.h5"]), "r") as src, h5py.File(out, "w") as dst:
        for name in src:
            src.copy(src[name], dst, name=name)
        edit(dst)
    return out.getvalue()


def study_pickle(tmp: Path, name: str, weights: bytes | None = None, **members) -> Path:
    """A study-shaped pickle in ``tmp``: the baseline archive with its weights and members replaced."""
    files = dict(study_members())
    if weights is not None:
        files["model.weights.h5"] = weights
    files.update({k.replace("_", "."): v for k, v in members.items()})
    path = tmp / f"{name}.model_pickle"
    path.write_bytes(base.wrapper_pickle(zipped(files)))
    return path


def _import_case(tmp, name, weights=None, words=(), **members):
    pkl = study_pickle(tmp, name, weights, **members)
    return base.Built(["import-study-model", str(pkl), str(tmp / f"{name}.keras")], [tmp], [str(pkl), *words])


def _replace(path, **dataset):
    def edit(h5):
        del h5[path]
        h5.create_dataset(path, **dataset)
    return edit


def _h5_external_storage(tmp, root):
    return _import_case(tmp, "external", crafted_weights(
        _replace(BIAS, shape=(21,), dtype="<f4", external=[("/etc/passwd", 0, 84)])), ["/etc/passwd"])


def _h5_virtual_dataset(tmp, root):
    import h5py

    def edit(h5):
        layout = h5py.VirtualLayout(shape=(21,), dtype="<f4")
        layout[:] = h5py.VirtualSource("/etc/passwd", "x", shape=(21,))
        del h5[BIAS]
        h5.create_virtual_dataset(BIAS, layout)
    return _import_case(tmp, "virtual", crafted_weights(edit))


def _h5_external_link(tmp, root):
    import h5py

    def edit(h5):
        group = BIAS.rsplit("/", 1)[0]
        del h5[group]
        h5[group] = h5py.ExternalLink("/etc/hostname.h5", "/vars")
    return _import_case(tmp, "linked", crafted_weights(edit), ["/etc/hostname.h5"])


def _h5_soft_link(tmp, root):
    import h5py

    def edit(h5):
        del h5[BIAS]
        h5[BIAS] = h5py.SoftLink("/_layer_checkpoint_dependencies/dense/vars/1")
    return _import_case(tmp, "soft", crafted_weights(edit))


def _h5_filter(tmp, root):
    bias = np.zeros(21, np.float32)
    return _import_case(tmp, "filtered", crafted_weights(_replace(BIAS, data=bias, compression="gzip")))


def _h5_declared_huge(tmp, root):
    return _import_case(tmp, "huge", crafted_weights(
        _replace(KERNEL, shape=(23000, 23000), dtype="<f4", chunks=(512, 512), fillvalue=0.5)))


def _h5_declared_terabytes(tmp, root):
    return _import_case(tmp, "terabytes", crafted_weights(
        _replace(KERNEL, shape=(10**6, 10**6), dtype="<f4", chunks=(1024, 1024), fillvalue=0.5)))


def _h5_group_for_dataset(tmp, root):
    def edit(h5):
        del h5[BIAS]
        h5.create_group(BIAS)
    return _import_case(tmp, "grouped", crafted_weights(edit))


def _h5_not_a_number(tmp, root):
    bias = np.zeros(21, np.float32)
    bias[3] = np.nan
    return _import_case(tmp, "nan", crafted_weights(_replace(BIAS, data=bias)))


def _h5_text_weights(tmp, root):
    return _import_case(tmp, "text", crafted_weights(_replace(BIAS, data=np.array([b"weights"] * 21))))


def _h5_many_objects(tmp, root):
    def edit(h5):
        junk = h5.create_group("junk")
        for i in range(6000):
            junk.create_group(str(i))
    return _import_case(tmp, "crowded", crafted_weights(edit))


def _config_nested_deep(tmp, root):
    return _import_case(tmp, "deep", config_json=b"[" * 100_000 + b"]" * 100_000)


def _metadata_nested_deep(tmp, root):
    return _import_case(tmp, "deepmeta", metadata_json=b'{"a":' * 10_000 + b"1" + b"}" * 10_000)


def _config_with(change) -> bytes:
    config = json.loads(study_members()["config.json"])
    change(config)
    return json.dumps(config).encode()


def _config_infinite_filters(tmp, root):
    def change(config):
        config["config"]["layers"][1]["config"]["filters"] = float("inf")
    return _import_case(tmp, "infinite", config_json=_config_with(change))


def _config_dropout_of_five(tmp, root):
    def change(config):
        layers = config["config"]["layers"]
        layers.insert(len(layers) - 2, {"class_name": "Dropout", "config": {"name": "dropout", "rate": 5}})
    return _import_case(tmp, "dropout", config_json=_config_with(change))


def _import_out_loops(tmp, root):
    pkl = tmp / "baseline.model_pickle"
    pkl.write_bytes(base.wrapper_pickle(base.archive(base.sequential())))
    loop = looping_link(tmp / "loop.keras")
    return base.Built(["import-study-model", str(pkl), str(loop)], [tmp], [str(loop), "loops"])


# --------------------------------------------------------------------------- images


def _validate(tmp, data, *extra):
    return ["validate", str(data), "--size", "64", "--quiet", *extra]


def _cut_then(ending: bytes, name: str):
    def build(tmp, root):
        data = base.dataset(tmp / "data")
        bad = data / "LYT" / "LYT_00002.jpg"
        whole = bad.read_bytes()
        bad.write_bytes(whole[: len(whole) // 2] + ending)
        return base.Built(_validate(tmp, data), [data], ["LYT/LYT_00002.jpg"])
    build.__name__ = name
    return build


_cut_then_two_end_markers = _cut_then(b"\xff\xd9\xff\xd9", "_cut_then_two_end_markers")
_cut_then_zeros = _cut_then(b"\0" * 4000 + b"\xff\xd9", "_cut_then_zeros")
_cut_then_comment = _cut_then(b"\xff\xfe\x00\x0dcut short!!" + b"\xff\xd9", "_cut_then_comment")


def _whole_with_trailer(tmp, root):
    data = base.dataset(tmp / "data")
    img = data / "BLA" / "BLA_00002.jpg"
    img.write_bytes(img.read_bytes() + b"camera trailer \xff\xda\x00\x08 more bytes")
    return base.Built(_validate(tmp, data), [data], [])


def _escape_codes_in_a_name(tmp, root):
    data = base.dataset(tmp / "data")
    whole = base.jpeg_bytes(64)
    (data / "LYT" / "LYT_\x1b[2J\x1b]0;pwned\x07.jpg").write_bytes(whole[: len(whole) // 2] + b"\xff\xd9")
    return base.Built(_validate(tmp, data), [data], [])


def _exif_rotated(tmp, root):
    data = base.dataset(tmp / "data")
    exif = Image.Exif()
    exif[0x0112] = 6
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    img.save(data / "BLA" / "BLA_00009.jpg", "JPEG", exif=exif)
    return base.Built(_validate(tmp, data), [data], ["BLA/BLA_00009.jpg"])


def png_declaring(width: int, height: int) -> bytes:
    """A small PNG whose header declares ``width`` x ``height`` RGB pixels (a few rows of data follow)."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    rows = zlib.compress(b"\0" * (1 + 3 * width) * 4, 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


def _pixel_bomb(tmp, root):
    data = base.dataset(tmp / "data")
    (data / "BLA" / "BLA_00010.png").write_bytes(png_declaring(9000, 9000))
    return base.Built(_validate(tmp, data), [data], ["BLA/BLA_00010.png"])


def _validate_data_loops(tmp, root):
    loop = looping_link(tmp / "data")
    return base.Built(["validate", str(loop), "--quiet"], [tmp], [str(loop)])


# --------------------------------------------------------------------------- links that loop


def looping_link(path: Path) -> Path:
    """A symbolic link at ``path`` that points at itself."""
    path.symlink_to(path.name)
    return path


def _run_out_loops(tmp, root):
    loop = looping_link(tmp / "run")
    return base.Built(["run", "--profile", "smoke", "--out", str(loop), "--only", "01", "--no-book"], [tmp],
                      ["--out", str(loop)])


def _run_data_dir_loops(tmp, root):
    loop = looping_link(tmp / "data")
    return base.Built(["run", "--profile", "smoke", "--data-dir", str(loop), "--out", str(tmp / "run"), "--only",
                       "01", "--no-book"], [tmp], ["--data-dir", str(loop)])


def _run_study_models_loop(tmp, root):
    loop = looping_link(tmp / "models")
    return base.Built(["run", "--profile", "study", "--study-models", str(loop), "--out", str(tmp / "run"),
                       "--no-book"], [tmp], ["--study-models", str(loop)])


def _fetch_into_a_loop(tmp, root):
    loop = looping_link(tmp / "models")
    return base.Built(["fetch-study-models", str(loop), "--quiet"], [tmp], [str(loop)])


def _synth_into_a_loop(tmp, root):
    loop = looping_link(tmp / "synthetic")
    return base.Built(["synth", str(loop), "--n-images", "63", "--size", "32", "--quiet"], [tmp], [str(loop)])


def _book_of_a_loop(tmp, root):
    loop = looping_link(tmp / "run")
    return base.Built(["book", str(loop)], [tmp], [str(loop)])


def _tune_run_dir_loops(tmp, root):
    loop = looping_link(tmp / "run")
    return base.Built(["tune", "--run-dir", str(loop), "--role", "chief"], [tmp], ["--run-dir", str(loop)])


# --------------------------------------------------------------------------- synthetic datasets


def _synth_mark(tmp, text: str):
    folder = tmp / "synthetic"
    folder.mkdir()
    (folder / "SYNTH.json").write_text(text)
    return base.Built(["synth", str(folder), "--n-images", "63", "--size", "32", "--quiet"], [folder],
                      [str(folder / "SYNTH.json")])


def _synth_mark_a_list(tmp, root):
    return _synth_mark(tmp, "[]")


def _synth_mark_corrupt(tmp, root):
    return _synth_mark(tmp, '{"generator": "cytokit.synth", "seed": ')


def _synth_negative_seed(tmp, root):
    return base.Built(["synth", str(tmp / "synthetic"), "--n-images", "63", "--size", "32", "--seed", "-1",
                       "--quiet"], [tmp], ["--seed"])


def _run_data_with_a_corrupt_synth_mark(tmp, root):
    data = base.dataset(tmp / "data")
    (data / "SYNTH.json").write_text("[1, 2")
    return base.Built(["run", "--profile", "smoke", "--data-dir", str(data), "--out", str(tmp / "run"), "--only",
                       "01", "--no-book"], [data], [str(data / "SYNTH.json")])


# --------------------------------------------------------------------------- parameters and options


def executed(run: Path, *chapters: str) -> Path:
    """A run folder whose ``chapters`` have run: any new run of them without --force is refused."""
    for name in chapters:
        (run / name).mkdir(parents=True, exist_ok=True)
        (run / name / f"{name}.ipynb").write_text("{}")
    (run / "run.json").write_text(json.dumps({"profile": "smoke", "chapters": []}))
    return run


def _learning_rate_in_e_notation(tmp, root):
    run = executed(tmp / "run", "02_baseline")
    return base.Built(["run", "--profile", "smoke", "--out", str(run), "--only", "02", "-p", "learning_rate=1e-3",
                       "--no-book"], [run], [])


def _seed_beyond_uint32(tmp, root):
    run = executed(tmp / "run", "02_baseline")
    return base.Built(["run", "--profile", "smoke", "--out", str(run), "--only", "02", "-p", "seeds=[4294967296]",
                       "--no-book"], [run], [])


def _data_dir_twice(tmp, root):
    run, one, two = executed(tmp / "run", "01_data"), base.dataset(tmp / "one"), base.dataset(tmp / "two")
    return base.Built(["run", "--profile", "smoke", "--out", str(run), "--only", "01", "-p", f"data_dir={one}",
                       "--data-dir", str(two), "--no-book"], [run, one, two], [str(one), str(two)])


def _only_twice(tmp, root):
    run = executed(tmp / "run", "05_test_results")
    return base.Built(["run", "--profile", "smoke", "--out", str(run), "--only", "01", "--only", "05", "--no-book"],
                      [run], [])


def _parameter_twice(tmp, root):
    run = executed(tmp / "run", "02_baseline")
    return base.Built(["run", "--profile", "smoke", "--out", str(run), "--only", "02", "-p", "epochs=3", "-p",
                       "epochs=30", "--no-book"], [run], [])


def _profile_nested_deep(tmp, root):
    prof = base.profile_file(tmp / "profiles", "[" * 100_000 + "]" * 100_000)
    return base.Built(["run", "--profile", str(prof), "--out", str(tmp / "run"), "--no-book"], [tmp], [str(prof)])


def _parameter_nested_deep(tmp, root):
    return base.Built(["run", "--profile", "smoke", "--out", str(tmp / "run"), "-p",
                       "seeds=" + "[" * 20_000 + "]" * 20_000, "--no-book"], [tmp], ["-p seeds"])


def _data_dir_parameter_not_a_path(tmp, root):
    run = executed(tmp / "run", "01_data")
    return base.Built(["run", "--profile", "smoke", "--out", str(run), "--only", "01", "-p", "data_dir=5",
                       "--no-book"], [run], [])


# --------------------------------------------------------------------------- damaged run records


def resumable(run: Path, record: dict) -> Path:
    """A run folder of profile smoke whose chapter 01 ran, with ``record`` merged into its run.json."""
    executed(run, "01_data")
    (run / "01_data" / "metrics.json").write_text("{}")
    (run / "01_data" / "chapter-run.json").write_text(json.dumps({"parameters": {}, "upstream": {}}))
    full = {"profile": "smoke", "command": {"only": ["01"]}, "chapters": [], "kept": []}
    for key, value in record.items():
        if key in ("overrides", "only", "data_dir", "study_models"):
            full["command"][key] = value
        else:
            full[key] = value
    (run / "run.json").write_text(json.dumps(full))
    return run


def _resume_damaged(field, value, name):
    def build(tmp, root):
        run = resumable(tmp / "run", {field: value})
        return base.Built(["run", "--resume", str(run), "--no-book"], [run], [str(run / "run.json"), f"'{field}'"])
    build.__name__ = name
    return build


_resume_only_a_number = _resume_damaged("only", 5, "_resume_only_a_number")
_resume_data_dir_a_number = _resume_damaged("data_dir", 5, "_resume_data_dir_a_number")
_resume_kept_a_number = _resume_damaged("kept", 5, "_resume_kept_a_number")
_resume_overrides_text = _resume_damaged("overrides", "epochs=3", "_resume_overrides_text")
_resume_study_models_a_number = _resume_damaged("study_models", 5, "_resume_study_models_a_number")
_resume_command_a_list = _resume_damaged("command", [], "_resume_command_a_list")


def _resume_chapter_record_a_list(tmp, root):
    run = resumable(tmp / "run", {})
    record = run / "01_data" / "chapter-run.json"
    record.write_text("[]")
    return base.Built(["run", "--resume", str(run), "--no-book"], [run], [str(record)])


def _resume_record_nested_deep(tmp, root):
    run = resumable(tmp / "run", {})
    (run / "run.json").write_text("[" * 100_000 + "]" * 100_000)
    return base.Built(["run", "--resume", str(run), "--no-book"], [run], [str(run / "run.json")])


def _resume_record_of_a_gigabyte(tmp, root):
    run = resumable(tmp / "run", {})
    with open(run / "run.json", "r+b") as fh:
        fh.truncate(2**30)
    return base.Built(["run", "--resume", str(run), "--no-book"], [run], [str(run / "run.json")])


# --------------------------------------------------------------------------- the study profile


def _study_with_an_extra_folder(tmp, root):
    data = base.dataset(tmp / "data", {"BLA": 2, "LYT": 2, "misc": 2})
    models = tmp / "models"
    models.mkdir()
    for name in ("baseline", "tuned", "augmented"):
        (models / f"{name}.keras").write_bytes(b"a model")
    return base.Built(["run", "--profile", "study", "--data-dir", str(data), "--study-models", str(models),
                       "--out", str(tmp / "run"), "--no-book"], [tmp], ["misc/"])


# --------------------------------------------------------------------------- the book


def _book_src_edited_by_hand(tmp, root):
    run = base.run_folder(tmp / "run")
    src = run / "book_src"
    (src / "notebooks").mkdir(parents=True)
    staged = {"_config.yml": "title: x\n", "notebooks/01_data.ipynb": "{}"}
    for rel, text in staged.items():
        (src / rel).write_text(text)
    marker = {rel: hashlib.sha256(text.encode()).hexdigest() for rel, text in staged.items()}
    (src / ".cytokit-staged.json").write_text(json.dumps(marker))
    (src / "notebooks" / "01_data.ipynb").write_text('{"edited": "by hand"}')
    return base.Built(["book", str(run)], [run], ["notebooks/01_data.ipynb", "changed since"])


def _book_marker_nested_deep(tmp, root):
    run = base.run_folder(tmp / "run")
    (run / "book_src").mkdir()
    (run / "book_src" / ".cytokit-staged.json").write_text("[" * 100_000 + "]" * 100_000)
    return base.Built(["book", str(run)], [run], [".cytokit-staged.json"])


# --------------------------------------------------------------------------- tune


def tune_run(run: Path, data_dir: Path | None, metrics: dict | None = None) -> Path:
    """A run folder whose chapter 01 ran: a manifest and the metrics naming its dataset."""
    (run / "01_data").mkdir(parents=True)
    (run / "01_data" / "manifest.csv").write_text("path,cls,status,split\n")
    record = {"chapter": "01_data", "data_dir": str(data_dir)} if metrics is None else metrics
    (run / "01_data" / "metrics.json").write_text(json.dumps(record))
    (run / "run.json").write_text(json.dumps({"profile": "smoke", "chapters": []}))
    return run


def _tune_flag(*flags, manifest: bool = True):
    """A tune command with ``flags`` on a run folder; ``manifest=False`` leaves chapter 01's outputs out, so a
    version that starts processes before checking the flags stops before starting any."""
    def build(tmp, root):
        run = tune_run(tmp / "run", base.dataset(tmp / "data")) if manifest else tmp / "run"
        run.mkdir(exist_ok=True)
        return base.Built(["tune", "--run-dir", str(run), *flags], [tmp], [flags[-2]])
    return build


_tune_a_hundred_thousand_workers = _tune_flag("--local-workers", "100000", manifest=False)
_tune_negative_timeout = _tune_flag("--local-workers", "1", "--timeout", "-5", manifest=False)
_tune_timeout_nan = _tune_flag("--local-workers", "1", "--timeout", "nan", manifest=False)
_tune_port_beyond_65535 = _tune_flag("--role", "chief", "--oracle-port", "70000")
_tune_gpu_share_zero = _tune_flag("--local-workers", "1", "--gpu-share", "0")


def _tune_cache_bogus(tmp, root):
    run = tune_run(tmp / "run", base.dataset(tmp / "data"))
    return base.Built(["tune", "--run-dir", str(run), "--role", "chief", "--cache", "bogus"], [tmp], ["--cache"])


def _validate_size_not_a_number(tmp, root):
    data = base.dataset(tmp / "data")
    return base.Built(["validate", str(data), "--size", "big", "--quiet"], [data], ["--size", "'big'"])


def _tune_metrics_without_data_dir(tmp, root):
    run = tune_run(tmp / "run", None, metrics={"chapter": "01_data"})
    return base.Built(["tune", "--run-dir", str(run), "--role", "chief"], [tmp],
                      [str(run / "01_data" / "metrics.json"), "data_dir"])


def _tune_missing_run_dir(tmp, root):
    missing = tmp / "runs" / "smok"
    return base.Built(["tune", "--run-dir", str(missing), "--local-workers", "1"], [tmp], [str(missing)])


def hold_lock(folder: Path):
    """Another process holding ``folder``'s lock; returns (its pid, a function that ends it)."""
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from cytokit import io
        with io.folder_lock({str(folder)!r}, log=lambda m: None):
            print("held", flush=True)
            time.sleep(300)
    """)], stdout=subprocess.PIPE, text=True, cwd=folder)
    if holder.stdout.readline().strip() != "held":
        holder.kill()
        raise RuntimeError("the lock holder did not start")

    def stop():
        holder.kill()
        holder.wait()
    return holder.pid, stop


def _tune_into_a_locked_run(tmp, root):
    run = tune_run(tmp / "run", base.dataset(tmp / "data"))
    pid, stop = hold_lock(run)
    return base.Built(["tune", "--run-dir", str(run), "--local-workers", "1", "--timeout", "2"], [tmp],
                      [f"pid {pid}"], cleanup=stop)


# --------------------------------------------------------------------------- downloads


class HostileServer:
    """A loopback HTTP server answering every path in one hostile way (``mode``) until stopped."""

    def __init__(self, mode: str, size: int = 1_274_640):
        self.mode, self.size, self.stopped = mode, size, threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                try:
                    server.answer(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{STUDY_COMMIT}"

    def answer(self, handler) -> None:
        if self.mode == "missing":
            handler.send_error(404, "Not Found")
            return
        handler.send_response(200)
        if self.mode == "forever":  # no length, bytes until the client gives up
            handler.end_headers()
            chunk = b"\0" * 65536
            while not self.stopped.is_set():
                handler.wfile.write(chunk)
        elif self.mode == "huge":
            handler.send_header("Content-Length", str(10**12))
            handler.end_headers()
            handler.wfile.write(b"\0" * 65536)
        elif self.mode == "drip":  # the right length, a byte at a time
            handler.send_header("Content-Length", str(self.size))
            handler.end_headers()
            while not self.stopped.wait(0.2):
                handler.wfile.write(b"\0")
                handler.wfile.flush()
        elif self.mode == "stall":  # headers, then nothing
            handler.send_header("Content-Length", str(self.size))
            handler.end_headers()
            handler.wfile.flush()
            self.stopped.wait(60)

    def stop(self) -> None:
        self.stopped.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def _fetch_from(mode: str, *flags, words=()):
    def build(tmp, root):
        server = HostileServer(mode)
        return base.Built(["fetch-study-models", str(tmp / "models"), "--base-url", server.base_url, "--quiet",
                           *flags], [tmp], list(words), cleanup=server.stop)
    return build


_fetch_a_server_that_never_ends = _fetch_from("forever", words=["1,274,640"])
_fetch_a_server_announcing_a_terabyte = _fetch_from("huge", words=["1,000,000,000,000"])
_fetch_a_server_that_drips = _fetch_from("drip", "--deadline", "2", words=["--deadline"])
_fetch_a_server_that_stalls = _fetch_from("stall", "--stall-timeout", "1", words=["--stall-timeout"])


def _fetch_empty_base_url(tmp, root):
    return base.Built(["fetch-study-models", str(tmp / "models"), "--base-url", "", "--quiet"], [tmp],
                      ["--base-url"])


def _fetch_ftp_base_url(tmp, root):
    return base.Built(["fetch-study-models", str(tmp / "models"), "--base-url", "ftp://mirror.example/study",
                       "--quiet"], [tmp], ["--base-url", "ftp://mirror.example/study"])


def _fetch_deadline_zero(tmp, root):
    return base.Built(["fetch-study-models", str(tmp / "models"), "--deadline", "0", "--quiet"], [tmp],
                      ["--deadline"])


def _fetch_provenance_nested_deep(tmp, root):
    out = tmp / "models"
    out.mkdir()
    (out / "PROVENANCE.json").write_text("[" * 100_000 + "]" * 100_000)
    return base.Built(["fetch-study-models", str(out), "--quiet"], [tmp], [str(out / "PROVENANCE.json")])


def wait_for(check, timeout: float = 30.0, every: float = 0.05) -> bool:
    """Poll ``check()`` until it is true or ``timeout`` seconds pass."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(every)
    return False



# --------------------------------------------------------------------------- a race for one stale lock


#: One racer: waits for the word, then tries to take the folder's lock and holds it a while. A lock's
#: record is handed back 50 ms after it was read (a busy machine), which widens the window a
#: read-then-delete takeover leaves open.
RACER = textwrap.dedent("""
    import sys, time
    from cytokit import io
    read = io.read_lock
    def slow(path):
        record = read(path)
        time.sleep(0.05)
        return record
    io.read_lock = slow
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        with io.folder_lock(sys.argv[1], log=lambda message: None):
            print("won", flush=True)
            time.sleep(3)
    except io.LockError:
        print("refused", flush=True)
""")


def lock_race(folder: Path, n: int = 24, env: dict | None = None) -> list[str]:
    """``n`` processes taking over one stale ``run.lock`` at once; what each said ("won", "refused", ...).

    ``env`` (e.g. ``PYTHONPATH``) chooses the cytokit the racers import."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid names a process that no longer runs
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.lock").write_text(json.dumps({"pid": gone.pid, "host": socket.gethostname(),
                                                 "started": "2030-01-01T00:00:00", "command": "cytokit run"}))
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(folder)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                              cwd=folder.parent)  # not a checkout: `python -c` puts the working folder first
             for _ in range(n)]
    try:
        ready = [p.stdout.readline().strip() for p in procs]
        if ready != ["ready"] * n:
            raise RuntimeError(f"racers did not start: {ready}")
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        return [p.communicate(timeout=120)[0].strip() for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


# Last, so that either module can be imported first: the table's module looks its builders up here.
import test_hostile_inputs as base  # noqa: E402
