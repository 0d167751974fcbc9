"""Chapter 03's random search spread over processes or machines: one oracle, many workers.

This is Keras Tuner's own distributed mode. Every process builds the same tuner over
the same directory; the environment variables ``KERASTUNER_TUNER_ID``,
``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` decide its part. The chief
(``KERASTUNER_TUNER_ID=chief``) runs the oracle as a gRPC server and hands out trials;
each worker (``tuner0``, ``tuner1`` ...) asks for a trial, trains it, reports the
result and asks again until the oracle says the search is done. The oracle keeps its
state in the tuner directory, so finished trials are never run again, and chapter 03
later reads the finished search from that directory as if it had run it itself.

The settings are resolved like ``cytokit run`` resolves a chapter's parameters: the
defaults of chapter 03's ``parameters`` cell, overlaid by a profile, overlaid by the
flags given here. Workers must see the same manifest, dataset and tuner directory
(a shared filesystem).
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path

CHAPTER = "03_tuning"
ROLES = ("chief", "worker")
CHIEF_ID = "chief"
#: The tuner id a plain (non-distributed) search runs as: chapter 03's.
LOCAL_ID = "tuner0"
ENV_ID, ENV_IP, ENV_PORT = "KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"
#: Chapter 03 parameters the search depends on (``cache_images`` is called ``cache`` here).
SEARCH_PARAMETERS = ("image_size", "max_trials", "max_epochs", "patience", "seed", "bn_momentum")
LOG_TAIL_LINES = 40


class ClusterError(RuntimeError):
    """A tuner process failed or the cluster ran out of time; the message holds its log's tail."""


@dataclass
class TuneSettings:
    """Everything one tuner process needs; identical on every process but role and id."""

    role: str
    tuner_id: str
    oracle_ip: str
    oracle_port: int
    manifest: Path
    data_dir: Path
    directory: Path
    image_size: int
    max_trials: int
    max_epochs: int
    patience: int
    seed: int
    bn_momentum: float
    cache: bool


# --------------------------------------------------------------------------- settings


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``cytokit tune`` flags; unset ones come from the run folder and the profile."""
    p.add_argument("--role", choices=ROLES, required=True, help="chief: the oracle; worker: trains trials")
    p.add_argument("--tuner-id", help="'chief' for the chief (default); a unique 'tuner0', 'tuner1' ... per worker")
    p.add_argument("--oracle-ip", default="127.0.0.1",
                   help="chief: address to listen on (0.0.0.0 for every interface); worker: the chief's address")
    p.add_argument("--oracle-port", type=int, default=8000, help="the chief's gRPC port (default 8000)")
    p.add_argument("--run-dir", type=Path,
                   help="a run folder whose chapter 01 has run: sets --manifest, --data-dir and --directory")
    p.add_argument("--profile", help="profile whose chapter 03 parameters apply (default: the run's, else 'full')")
    p.add_argument("--manifest", type=Path, help="split manifest CSV (chapter 01's manifest.csv)")
    p.add_argument("--data-dir", type=Path, help="the dataset's top folder")
    p.add_argument("--directory", type=Path, help="tuner directory (chapter 03's: RUN_DIR/03_tuning/tuner)")
    p.add_argument("--image-size", type=int)
    p.add_argument("--max-trials", type=int)
    p.add_argument("--max-epochs", type=int)
    p.add_argument("--patience", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--bn-momentum", type=float)
    p.add_argument("--cache", action=argparse.BooleanOptionalAction, default=None,
                   help="keep decoded images in memory (chapter 03's cache_images)")
    return p


def parser() -> argparse.ArgumentParser:
    return add_arguments(argparse.ArgumentParser(prog="python -m cytokit.distributed", description=__doc__,
                                                 formatter_class=argparse.RawDescriptionHelpFormatter))


def settings(args: argparse.Namespace | None = None, **kwargs) -> TuneSettings:
    """Resolve flags (a Namespace and/or keywords) into complete settings, or raise ValueError."""
    from cytokit import params

    merged = _merged({k: v for k, v in {**vars(args or argparse.Namespace()), **kwargs}.items() if v is not None})
    missing = [f.name for f in fields(TuneSettings) if merged.get(f.name) is None]
    if missing:
        hint = " (--run-dir sets the paths)" if {"manifest", "data_dir", "directory"} & set(missing) else ""
        raise ValueError(f"missing {', '.join('--' + m.replace('_', '-') for m in missing)}{hint}")
    params.check({k: merged[k] for k in SEARCH_PARAMETERS}, "cytokit tune")
    return _checked(_typed(TuneSettings(**{f.name: merged[f.name] for f in fields(TuneSettings)})))


def _merged(given: dict) -> dict:
    """Chapter 03's defaults < the profile < the run folder's paths < the flags given."""
    run_dir = Path(given.pop("run_dir")) if "run_dir" in given else None
    profile = given.pop("profile", None) or _run_profile(run_dir) or "full"
    merged = {**chapter_defaults(profile), **(_run_paths(run_dir) if run_dir else {}), **given}
    merged.setdefault("role", "worker")
    merged.setdefault("tuner_id", CHIEF_ID if merged["role"] == "chief" else None)
    merged.setdefault("oracle_ip", "127.0.0.1")
    merged.setdefault("oracle_port", 8000)
    return merged


def chapter_defaults(profile: str) -> dict:
    """Chapter 03's search parameters as ``cytokit run --profile`` would pass them."""
    from cytokit import paths, profiles

    values = _notebook_defaults(paths.notebooks_dir() / f"{CHAPTER}.ipynb")
    values.update(profiles.chapter_parameters(profiles.load(profile), CHAPTER))
    out = {k: values[k] for k in SEARCH_PARAMETERS if k in values}
    if "cache_images" in values:
        out["cache"] = bool(values["cache_images"])
    return out


def _notebook_defaults(notebook: Path) -> dict:
    """Literal assignments of a notebook's ``parameters`` cell (read directly: papermill costs 4 s)."""
    if not notebook.is_file():
        return {}
    import json

    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    source = next(("".join(c["source"]) for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])), "")
    out = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return out


def _run_profile(run_dir: Path | None) -> str | None:
    """The profile a run folder was made with (its ``run.json``), so the search matches it."""
    record = run_dir / "run.json" if run_dir else None
    if record is None or not record.is_file():
        return None
    from cytokit import io

    return io.read_json(record).get("profile")


def _run_paths(run_dir: Path) -> dict:
    """Manifest, dataset and tuner directory exactly where chapter 03 of ``run_dir`` looks."""
    from cytokit import io

    data = Path(run_dir) / "01_data"
    if not (data / "manifest.csv").is_file():
        raise ValueError(f"{data / 'manifest.csv'} is missing: run chapter 01 first "
                         f"(cytokit run --profile PROFILE --out {run_dir} --only 01 --no-book)")
    return {"manifest": data / "manifest.csv", "data_dir": Path(io.read_json(data / "metrics.json")["data_dir"]),
            "directory": Path(run_dir) / CHAPTER / "tuner"}


def _typed(cfg: TuneSettings) -> TuneSettings:
    for name in ("manifest", "data_dir", "directory"):
        setattr(cfg, name, Path(getattr(cfg, name)).expanduser().absolute())
    for name in ("oracle_port", "image_size", "max_trials", "max_epochs", "patience", "seed"):
        setattr(cfg, name, int(getattr(cfg, name)))
    cfg.bn_momentum, cfg.cache, cfg.tuner_id = float(cfg.bn_momentum), bool(cfg.cache), str(cfg.tuner_id)
    return cfg


def _checked(cfg: TuneSettings) -> TuneSettings:
    """Refuse ids Keras Tuner would misread: it treats any id containing 'chief' as the chief."""
    if cfg.role not in ROLES:
        raise ValueError(f"--role must be one of {ROLES}; got {cfg.role!r}")
    if cfg.role == "chief" and cfg.tuner_id != CHIEF_ID:
        raise ValueError(f"the chief's --tuner-id must be {CHIEF_ID!r}; got {cfg.tuner_id!r}")
    if cfg.role == "worker" and (CHIEF_ID in cfg.tuner_id or not cfg.tuner_id):
        raise ValueError(f"a worker needs a unique --tuner-id without 'chief' in it (tuner0, tuner1 ...); "
                         f"got {cfg.tuner_id!r}")
    if not cfg.manifest.is_file():
        raise ValueError(f"manifest {cfg.manifest} not found")
    if not cfg.data_dir.is_dir():
        raise ValueError(f"dataset folder {cfg.data_dir} not found")
    return cfg


# ---------------------------------------------------------------------- one process


@contextmanager
def environ(**values):
    """Set (or, with None, remove) environment variables for the block, then restore them."""
    old = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            _setenv(k, v)
        yield
    finally:
        for k, v in old.items():
            _setenv(k, v)


def _setenv(key: str, value) -> None:
    if value is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = str(value)


def oracle_env(cfg: TuneSettings):
    """Keras Tuner reads these when the tuner is built and again when ``search`` runs."""
    return environ(**{ENV_ID: cfg.tuner_id, ENV_IP: cfg.oracle_ip, ENV_PORT: cfg.oracle_port})


def local_env():
    """No oracle variables: the tuner runs (or reloads) as chapter 03's plain search."""
    return environ(**{ENV_ID: None, ENV_IP: None, ENV_PORT: None})


def main_tune(args: argparse.Namespace | None = None, **kwargs) -> int:
    """``cytokit tune``: run one chief or one worker of a distributed chapter-03 search."""
    cfg = settings(args, **kwargs)
    print(f"{cfg.tuner_id}: {cfg.role} of the search in {cfg.directory} "
          f"(oracle {cfg.oracle_ip}:{cfg.oracle_port}, {cfg.max_trials} trials, {cfg.image_size} px)", flush=True)
    with oracle_env(cfg):
        (run_chief if cfg.role == "chief" else run_worker)(cfg)
    return 0


def _class_names(cfg: TuneSettings) -> list[str]:
    from cytokit import data

    return data.class_names(data.read_manifest(cfg.manifest))


def _tuner(cfg: TuneSettings, n_classes: int):
    """Chapter 03's tuner: the same hypermodel, objective, seed and project folder."""
    from cytokit import models, tuning

    hypermodel = models.CellHyperModel(n_classes, cfg.image_size, bn_momentum=cfg.bn_momentum)
    return tuning.random_search(hypermodel, cfg.directory, max_trials=cfg.max_trials, seed=cfg.seed)


def _project(directory: Path) -> Path:
    from cytokit import tuning

    return Path(directory) / tuning.PROJECT


def ensure_reloadable(directory: Path, tuner_id: str) -> None:
    """Let ``tuner_id`` reload an existing search.

    Keras Tuner reloads a project only when the state file of the *current* tuner id
    (``chief.json``, ``tuner0.json``) exists; otherwise it starts a fresh oracle that
    would number its trials from 0 again over the finished ones. The file holds the
    tuner's (id-independent) state, so a sibling's copy serves.
    """
    project = _project(directory)
    target = project / f"{tuner_id}.json"
    if target.exists() or not (project / "oracle.json").exists():
        return
    siblings = sorted(p for p in project.glob("*.json") if p.name != "oracle.json")
    if siblings:
        shutil.copyfile(siblings[0], target)


def _hide_gpus() -> None:
    """The chief only serves the oracle: keep TensorFlow from claiming the GPUs' memory."""
    import tensorflow as tf

    try:
        tf.config.set_visible_devices([], "GPU")
    except RuntimeError:  # devices already initialised by the caller: nothing to save
        pass


def _check_port(ip: str, port: int) -> None:
    """Fail at once on a busy port: gRPC would otherwise leave the chief serving nothing."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((ip, port))
        except OSError as err:
            raise ClusterError(f"the chief cannot listen on {ip}:{port}: {err}") from None


def run_chief(cfg: TuneSettings):
    """Serve the oracle until every trial is done and every worker was told to stop.

    Keras Tuner's chief ``search()`` is the oracle server; it returns only after a
    worker has been refused a trial and no trial is still running (it checks every
    20 s). Then the results are written beside the project for chapter 03.
    """
    _check_port(cfg.oracle_ip, cfg.oracle_port)  # before the slow TensorFlow import
    _hide_gpus()
    from cytokit import tuning

    ensure_reloadable(cfg.directory, CHIEF_ID)
    tuner = _tuner(cfg, len(_class_names(cfg)))
    print(f"chief: {tuning.completed(tuner)} of {cfg.max_trials} trials already finished; serving", flush=True)
    tuner.search()
    publish(tuner, cfg.directory)
    print(f"chief: search done, {tuning.completed(tuner)} trials completed; best {tuning.best_hyperparameters(tuner)}",
          flush=True)
    return tuner


def publish(tuner, directory: Path) -> None:
    """Save the final oracle state, the trials table and the best hyperparameters.

    The chief's oracle last saved itself while ending the final trial, *before*
    dropping it from the running trials; reloaded as is, chapter 03 would send that
    trial for a retry and train it again. Saving once more records that nothing runs.
    """
    from cytokit import io, tuning

    tuner.save()
    io.write_csv(Path(directory) / "trials.csv", tuning.trials_table(tuner), index=True)
    io.write_json(Path(directory) / "best_hyperparameters.json", tuning.best_hyperparameters(tuner))
    ensure_reloadable(directory, LOCAL_ID)


def run_worker(cfg: TuneSettings):
    """Train trials handed out by the oracle until it answers that the search is done."""
    from cytokit import data, pipeline, train, tuning

    train.set_seed(cfg.seed)
    manifest = data.read_manifest(cfg.manifest)
    names = data.class_names(manifest)
    rows = {split: pipeline.dataset(manifest, cfg.data_dir, split, cfg.image_size, 256, names,
                                    cache=cfg.cache).unbatch() for split in ("train", "val")}
    tuner = _tuner(cfg, len(names))
    record_runs(tuner)
    tuning.search(tuner, rows["train"], rows["val"], max_epochs=cfg.max_epochs, patience=cfg.patience)
    print(f"{cfg.tuner_id}: the oracle has no trials left; exiting", flush=True)
    return tuner


def record_runs(tuner) -> None:
    """Note in each trial's folder which tuner ran it (``runs.txt``): Keras Tuner keeps no record of that."""
    begin = tuner.on_trial_begin

    def on_trial_begin(trial):
        trial_dir = Path(tuner.get_trial_dir(trial.trial_id))
        with open(trial_dir / "runs.txt", "a", encoding="utf-8") as fh:
            fh.write(f"{tuner.tuner_id}\t{time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
        print(f"{tuner.tuner_id}: trial {trial.trial_id} {dict(trial.hyperparameters.values)}", flush=True)
        return begin(trial)

    tuner.on_trial_begin = on_trial_begin


def runs(directory: Path) -> dict[str, list[str]]:
    """Trial id -> the tuner ids that started it, from :func:`record_runs`' files."""
    out = {}
    for path in sorted(_project(directory).glob("trial_*/runs.txt")):
        lines = path.read_text(encoding="utf-8").splitlines()
        out[path.parent.name.removeprefix("trial_")] = [line.split("\t")[0] for line in lines if line]
    return out


def finished_search(args: argparse.Namespace | None = None, **kwargs):
    """Reload a search from its directory as chapter 03 does (no oracle, nothing trained)."""
    cfg = settings(args, **{"role": "chief", **kwargs})
    if not (_project(cfg.directory) / "oracle.json").exists():
        raise ClusterError(f"no search state in {_project(cfg.directory)}: run the chief and the workers first")
    ensure_reloadable(cfg.directory, LOCAL_ID)
    with local_env():
        return _tuner(cfg, len(_class_names(cfg)))


# ------------------------------------------------------------------ a local cluster


def free_port(ip: str = "127.0.0.1") -> int:
    """A port the OS reports free right now (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def _flags(**search_kwargs) -> list[str]:
    """Keyword arguments as ``cytokit tune`` flags (True -> --flag, False -> --no-flag)."""
    argv = []
    for key, value in search_kwargs.items():
        if value is None:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        else:
            argv += [flag, str(value)]
    return argv


def _spawn(role: str, tuner_id: str, port: int, log: Path, env: dict, search_kwargs: dict) -> subprocess.Popen:
    """Start one tuner process with stdout and stderr (TensorFlow's C++ logs too) in ``log``."""
    argv = [sys.executable, "-m", "cytokit.distributed", "--role", role, "--tuner-id", tuner_id,
            "--oracle-ip", "127.0.0.1", "--oracle-port", str(port), *_flags(**search_kwargs)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n")
        fh.flush()
        return subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, "PYTHONUNBUFFERED": "1", **env})


def log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    if not Path(log).is_file():
        return "(no log)"
    return "\n".join(Path(log).read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def _stop(procs: dict) -> None:
    """Terminate what still runs, then kill what ignores it."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.terminate()
    for proc in procs.values():
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait(procs: dict, logs: dict, timeout: float) -> None:
    """Wait for every process to exit 0; on a failure or the timeout stop all and raise."""
    deadline = time.monotonic() + timeout
    while any(p.poll() is None for p in procs.values()):
        failed = [name for name, p in procs.items() if p.poll() not in (None, 0)]
        if failed:
            name = failed[0]
            raise ClusterError(f"tuner process {name} exited with code {procs[name].returncode}; "
                               f"last lines of {logs[name]}:\n{log_tail(logs[name])}")
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {logs[n]}:\n{log_tail(logs[n], 15)}" for n in procs)
            raise ClusterError(f"the search did not finish within {timeout:.0f} s\n{tails}")
        time.sleep(0.5)
    failed = [name for name, p in procs.items() if p.returncode != 0]
    if failed:
        name = failed[0]
        raise ClusterError(f"tuner process {name} exited with code {procs[name].returncode}; "
                           f"last lines of {logs[name]}:\n{log_tail(logs[name])}")


def local_cluster(n_workers: int = 2, port: int | None = None, timeout: float = 3600,
                  pin_gpus: bool = False, **search_kwargs):
    """Run a chief and ``n_workers`` workers on this machine (loopback) and return the trials table.

    ``search_kwargs`` are the ``cytokit tune`` settings (``directory``, ``manifest``,
    ``data_dir`` or ``run_dir``, ``max_trials`` ...). Each process logs to
    ``DIRECTORY/logs/<tuner id>.log``. With ``pin_gpus`` worker *i* sees only GPU *i*
    (one trial per GPU); the chief never uses a GPU. Raises :class:`ClusterError`
    with the failing process's log tail when a process exits non-zero or the timeout
    passes; every process is stopped either way.
    """
    cfg = settings(role="chief", **search_kwargs)
    port = int(port or free_port())
    ids = [CHIEF_ID] + [f"tuner{i}" for i in range(int(n_workers))]
    logs = {i: cfg.directory / "logs" / f"{i}.log" for i in ids}
    procs = {}
    try:
        for i, tuner_id in enumerate(ids):
            role = "chief" if tuner_id == CHIEF_ID else "worker"
            gpu = {"CUDA_VISIBLE_DEVICES": "" if role == "chief" else str(i - 1)} if pin_gpus else {}
            procs[tuner_id] = _spawn(role, tuner_id, port, logs[tuner_id], gpu, search_kwargs)
        _wait(procs, logs, timeout)
    finally:
        _stop(procs)
    from cytokit import tuning

    return tuning.trials_table(finished_search(**search_kwargs))


def main(argv=None) -> int:
    try:
        return main_tune(parser().parse_args(argv))
    except (ValueError, ClusterError, FileNotFoundError) as err:
        print(f"cytokit tune: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
