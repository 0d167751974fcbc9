"""Chapter 03's random search over several processes: one oracle (the chief), many workers.

This is Keras Tuner's own distributed mode. Every process builds chapter 03's tuner over
the same directory; ``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP`` and
``KERASTUNER_ORACLE_PORT`` decide its part. The chief serves the oracle over gRPC and
hands out trials; each worker trains the trials it is given on chapter 03's own rows
(:func:`cytokit.models.tuning.search_rows`) until the oracle says the search is done.
Finished trials live in the directory and are never run again.

Settings here are complete (:class:`~cytokit.models.search_settings.TuneSettings`);
``cytokit tune`` fills them from a run folder and a profile (:mod:`cytokit.book.cluster`).
TensorFlow is imported inside the functions that train, so a chief can refuse a busy port
before paying for that import. Chapter 03 runs its search through :mod:`cytokit.models.search`.

:func:`local_cluster` runs the chief and N workers on one machine. Workers sharing one
GPU each get a bounded share of its memory (:func:`share_gpu_env`, applied by the worker
at start with :func:`apply_gpu_share`), so N small trials train side by side where one
would leave the GPU mostly idle.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from cytokit import io
from cytokit.data import image_cache
from cytokit.data import manifest as manifests
from cytokit.models.search_settings import CHIEF_ID, LOCAL_ID, PROJECT, TuneSettings, add_arguments

ENV_ID, ENV_IP, ENV_PORT = "KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"
LOG_TAIL_LINES = 40
#: Environment variable a worker reads at start: the share (0-1] of each visible GPU's memory it may use.
ENV_GPU_SHARE = "CYTOKIT_GPU_SHARE"
#: Share of one GPU's memory the workers sharing it get together; the rest is left to the driver.
GPU_SHARED_TOTAL = 0.9
#: Seconds a local cluster may run before it is stopped: the study's own search took six days.
SEARCH_TIMEOUT = 7 * 24 * 3600


class ClusterError(RuntimeError):
    """A tuner process failed or the cluster ran out of time; the message holds its log's tail."""


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


def tune(cfg: TuneSettings) -> int:
    """Run one chief or one worker of a distributed chapter-03 search."""
    cfg.check()
    print(f"{cfg.tuner_id}: {cfg.role} of the search in {cfg.directory} "
          f"(oracle {cfg.oracle_ip}:{cfg.oracle_port}, {cfg.max_trials} trials, {cfg.image_size} px)", flush=True)
    with oracle_env(cfg):
        (run_chief if cfg.role == "chief" else run_worker)(cfg)
    return 0


def _class_names(cfg: TuneSettings) -> list[str]:
    return manifests.class_names(manifests.read_manifest(cfg.manifest))


def _project(directory: Path) -> Path:
    return Path(directory) / PROJECT


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
    from cytokit.models import tuning

    ensure_reloadable(cfg.directory, CHIEF_ID)
    tuner = tuning.tuner_for(cfg, len(_class_names(cfg)))
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
    from cytokit.models import tuning

    tuner.save()
    io.write_csv(Path(directory) / "trials.csv", tuning.trials_table(tuner), index=True)
    io.write_json(Path(directory) / "best_hyperparameters.json", tuning.best_hyperparameters(tuner))
    ensure_reloadable(directory, LOCAL_ID)


def share_gpu_env(share: float | None) -> dict:
    """Environment of a worker that may use ``share`` of each visible GPU's memory (None: no limit).

    TensorFlow's worker reads :data:`ENV_GPU_SHARE` at start (:func:`apply_gpu_share`);
    JAX (the Keras backend the GPU benchmark uses) takes its own variable before it starts.
    """
    if share is None:
        return {}
    share = float(share)
    if not 0 < share <= 1:
        raise ValueError(f"a worker's GPU memory share must be in (0, 1]; got {share}")
    return {ENV_GPU_SHARE: f"{share:.4f}", "XLA_PYTHON_CLIENT_MEM_FRACTION": f"{share:.4f}"}


def gpu_memory_limit_mb(share: float, total_mb: int) -> int:
    """Megabytes a worker may use of a GPU with ``total_mb``."""
    return max(1, int(float(share) * int(total_mb)))


def _gpu_total_mb() -> list[int]:
    """Each GPU's memory in MB, as ``nvidia-smi`` reports it; empty when it cannot say."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
        return [int(line) for line in out.split()]
    except (OSError, subprocess.SubprocessError, ValueError):
        return []


def apply_gpu_share(share: float | None = None) -> str:
    """Bound this process's TensorFlow to ``share`` (default ``$CYTOKIT_GPU_SHARE``) of each GPU; says what it did.

    Must run before TensorFlow initialises its devices. With each GPU's size known, a
    logical device with that memory limit; otherwise memory growth (allocate as used).
    """
    share = share if share is not None else os.environ.get(ENV_GPU_SHARE)
    if not share:
        return "no GPU memory limit"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return f"GPU memory share {float(share):.3f}: no GPU visible"
    totals = _gpu_total_mb()
    try:
        if len(totals) >= len(gpus):
            limits = [gpu_memory_limit_mb(float(share), t) for t in totals[:len(gpus)]]
            for gpu, mb in zip(gpus, limits):
                tf.config.set_logical_device_configuration(gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=mb)])
            return f"GPU memory share {float(share):.3f}: at most {', '.join(f'{mb:,} MB' for mb in limits)}"
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
        return f"GPU memory share {float(share):.3f}: GPU sizes unknown, memory growth instead"
    except RuntimeError as err:  # devices already initialised
        return f"GPU memory share not applied: {err}"


def run_worker(cfg: TuneSettings):
    """Train trials handed out by the oracle until it answers that the search is done."""
    print(f"{cfg.tuner_id}: {apply_gpu_share()}", flush=True)
    from cytokit.models import network, training, tuning

    network.set_precision(cfg.precision)
    training.set_seed(cfg.seed)
    manifest = manifests.read_manifest(cfg.manifest)
    names = manifests.class_names(manifest)
    train_rows, val_rows = tuning.search_rows(manifest, cfg.data_dir, cfg.image_size, names, seed=cfg.seed,
                                              cache=cfg.cache)
    tuner = tuning.tuner_for(cfg, len(names))
    record_runs(tuner)
    tuning.search(tuner, train_rows, val_rows, max_epochs=cfg.max_epochs, patience=cfg.patience)
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


def completed_before(cfg: TuneSettings) -> int:
    """Trials a search in ``cfg.directory`` has already completed (0 when none began there)."""
    from cytokit.models import tuning

    if not (_project(cfg.directory) / "oracle.json").exists():
        return 0
    return tuning.completed(finished_search(cfg))


def finished_search(cfg: TuneSettings):
    """Reload a search from its directory as chapter 03 does (no oracle, nothing trained)."""
    from cytokit.models import tuning

    if not (_project(cfg.directory) / "oracle.json").exists():
        raise ClusterError(f"no search state in {_project(cfg.directory)}: run the chief and the workers first")
    ensure_reloadable(cfg.directory, LOCAL_ID)
    with local_env():
        return tuning.tuner_for(cfg, len(_class_names(cfg)))


# ------------------------------------------------------------------ a local cluster


def free_port(ip: str = "127.0.0.1") -> int:
    """A port the OS reports free right now (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def _spawn(cfg: TuneSettings, log: Path, env: dict) -> subprocess.Popen:
    """Start one tuner process with stdout and stderr (TensorFlow's C++ logs too) in ``log``."""
    argv = [sys.executable, "-m", "cytokit.models.distributed", *cfg.flags()]
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
    """Wait until the chief has exited 0; on a failure or the timeout stop all and raise.

    The chief ends only when no trial runs and a worker was told the search is done, so
    whatever still runs then trains nothing: a worker that started too late to be told
    fails to reach the chief, and is stopped rather than counted as a failure.
    """
    deadline = time.monotonic() + timeout
    while any(p.poll() is None for p in procs.values()):
        if procs[CHIEF_ID].poll() == 0:
            return
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
    if failed and procs[CHIEF_ID].returncode != 0:
        name = failed[0]
        raise ClusterError(f"tuner process {name} exited with code {procs[name].returncode}; "
                           f"last lines of {logs[name]}:\n{log_tail(logs[name])}")


def local_cluster(cfg: TuneSettings, n_workers: int = 2, port: int | None = None, timeout: float = SEARCH_TIMEOUT,
                  pin_gpus: bool = False, gpu_share: float | None = None, cache_dir=None):
    """Run a chief and ``n_workers`` workers on this machine (loopback); return the trials table.

    ``cfg`` holds the search's settings (its role and id are set here). Each process
    logs to ``DIRECTORY/logs/<tuner id>.log``. With ``pin_gpus`` worker *i* sees only
    GPU *i*; otherwise the workers share the machine's GPU, each bounded to
    ``gpu_share`` of its memory (default :data:`GPU_SHARED_TOTAL` / ``n_workers``). The
    chief never uses a GPU. Several workers cache decoded images on disk, in
    ``cache_dir`` (default ``$CYTOKIT_CACHE_DIR``), where they share one copy through
    the page cache, rather than one copy each in memory (``cache="auto"``). A process
    that exits non-zero, or the timeout, stops every process and raises
    :class:`ClusterError` with the log's tail.
    """
    from cytokit.models import tuning

    n_workers = int(n_workers)
    if n_workers < 1:
        raise ValueError(f"a local cluster needs at least one worker; got {n_workers}")
    if gpu_share is None and not pin_gpus:
        gpu_share = GPU_SHARED_TOTAL / n_workers
    shared = {**share_gpu_env(None if pin_gpus else gpu_share)}
    if cache_dir is not None:
        shared[image_cache.CACHE_DIR_ENV] = str(Path(cache_dir).absolute())
    cache = "disk" if cfg.cache == "auto" and n_workers > 1 else cfg.cache
    if image_cache.mode(cache) in ("disk", "auto"):
        try:
            image_cache.folder(cache, cache_dir)
        except image_cache.CacheError as err:
            raise ClusterError(str(err)) from None
    port = int(port or free_port())
    ids = [CHIEF_ID] + [f"tuner{i}" for i in range(n_workers)]
    logs = {i: cfg.directory / "logs" / f"{i}.log" for i in ids}
    procs = {}
    try:
        for i, tuner_id in enumerate(ids):
            role = "chief" if tuner_id == CHIEF_ID else "worker"
            one = TuneSettings(**{**cfg.__dict__, "role": role, "tuner_id": tuner_id, "cache": cache,
                                  "oracle_ip": "127.0.0.1", "oracle_port": port})
            env = {"CUDA_VISIBLE_DEVICES": "" if role == "chief" else str(i - 1)} if pin_gpus else {}
            procs[tuner_id] = _spawn(one, logs[tuner_id], {**shared, **env} if role == "worker" else env)
        _wait(procs, logs, timeout)
    finally:
        _stop(procs)
    return tuning.trials_table(finished_search(cfg))


def main(argv=None) -> int:
    """Entry point of one tuner process started by :func:`local_cluster` (complete flags)."""
    args = add_arguments(argparse.ArgumentParser(prog="python -m cytokit.models.distributed")).parse_args(argv)
    try:
        return tune(TuneSettings.parse(vars(args)))
    except (ValueError, ClusterError, FileNotFoundError) as err:
        print(f"cytokit tune: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
