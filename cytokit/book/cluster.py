"""``cytokit tune``: chapter 03's search as a chief and workers, its settings taken from a run folder.

Settings are resolved as ``cytokit run`` resolves a chapter's parameters: the defaults of
chapter 03's ``parameters`` cell, overlaid by a profile (the run folder's, else
``full``), overlaid by the run folder's paths, overlaid by the flags given. Workers must
see the same manifest, dataset and tuner directory (a shared filesystem).
``--local-workers N`` starts the chief and N workers on this machine at once, sharing its
GPU (:func:`cytokit.models.distributed.local_cluster`); ``--role`` runs one process of a
cluster spread over machines.
"""

from __future__ import annotations

import argparse
import os
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

from cytokit import arguments, io, paths
from cytokit.book import parameters, profiles, records
from cytokit.book.runner import RunError, resume_profile
from cytokit.data import image_cache
from cytokit.data.tree import shown
from cytokit.models import distributed, search_settings
from cytokit.models.search_settings import CHIEF_ID, SEARCH_PARAMETERS, TuneSettings

CHAPTER = "03_tuning"


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``cytokit tune`` flags: those of one tuner process, plus where to find them, or a local cluster."""
    search_settings.add_arguments(p, required=False)
    p.add_argument("--run-dir", type=Path,
                   help="a run folder whose chapter 01 has run: sets --manifest, --data-dir and --directory")
    p.add_argument("--profile", help="profile whose chapter 03 parameters apply (default: the run's, else 'full')")
    p.add_argument("--local-workers", type=int, metavar="N",
                   help="run the chief and N workers (1 to 64) on this machine, sharing its GPU, until the search is "
                        "done (instead of --role)")
    p.add_argument("--gpu-share", type=float, metavar="F",
                   help=f"with --local-workers: share of the GPU's memory each worker may use "
                        f"(default {distributed.GPU_SHARED_TOTAL:g} / N)")
    p.add_argument("--timeout", type=float, default=distributed.SEARCH_TIMEOUT,
                   help="with --local-workers: seconds before the cluster is stopped, above 0 (default a week)")
    return p


def settings(args: argparse.Namespace | None = None, **kwargs) -> TuneSettings:
    """Complete, checked settings from flags (a Namespace and/or keywords), or a ValueError."""
    given = {k: v for k, v in {**vars(args or argparse.Namespace()), **kwargs}.items()
             if v is not None and k not in LOCAL_FLAGS}
    run_dir = Path(given.pop("run_dir")) if "run_dir" in given else None
    profile = given.pop("profile", None) or _run_profile(run_dir) or "full"
    merged = {**chapter_defaults(profile), **(_run_paths(run_dir, given) if run_dir else {}), **given}
    merged.setdefault("role", "worker")
    merged.setdefault("tuner_id", CHIEF_ID if merged["role"] == "chief" else None)
    merged.setdefault("oracle_ip", "127.0.0.1")
    merged.setdefault("oracle_port", 8000)
    arguments.port("--oracle-port", merged["oracle_port"])
    missing = [f.name for f in fields(TuneSettings) if merged.get(f.name) is None and f.name != "precision"]
    if missing:
        hint = " (--run-dir sets the paths)" if {"manifest", "data_dir", "directory"} & set(missing) else ""
        raise ValueError(f"missing {', '.join('--' + m.replace('_', '-') for m in missing)}{hint}")
    parameters.check({k: merged[k] for k in SEARCH_PARAMETERS}, "cytokit tune")
    return TuneSettings.parse(merged)


#: ``cytokit tune`` flags of the local cluster, not of one tuner process.
LOCAL_FLAGS = ("local_workers", "gpu_share", "timeout", "func", "command")


def chapter_defaults(profile: str) -> dict:
    """Chapter 03's search parameters as ``cytokit run --profile`` would pass them."""
    values = parameters.declared(paths.notebooks_dir() / f"{CHAPTER}.ipynb")
    values.update(profiles.chapter_parameters(profiles.load(profile), CHAPTER))
    out = {k: values[k] for k in SEARCH_PARAMETERS if k in values}
    if "cache_images" in values:
        out["cache"] = search_settings.cache_value(values["cache_images"])
    if "precision" in values:
        out["precision"] = values["precision"]
    return out


def _run_profile(run_dir: Path | None) -> str | None:
    """The profile a run folder was made with, so the search matches it."""
    if run_dir is None:
        return None
    try:
        return resume_profile(run_dir)
    except RunError:
        return None


def _run_paths(run_dir: Path, given: dict) -> dict:
    """Manifest, dataset and tuner directory exactly where chapter 03 of ``run_dir`` looks (those not ``given``)."""
    run_dir = Path(run_dir).resolve()
    manifest = run_dir / "01_data" / "manifest.csv"
    if not manifest.is_file():
        raise RunError(f"{shown(manifest)} is missing: run chapter 01 first, e.g. "
                       f"`cytokit run --only 01 --out {shown(run_dir)}`")
    found = {"manifest": manifest, "directory": run_dir / CHAPTER / "tuner"}
    if given.get("data_dir") is None:
        metrics = manifest.parent / "metrics.json"
        try:
            data_dir = records.read(metrics, "run chapter 01 again, or pass --data-dir").get("data_dir")
        except records.RecordError as err:
            raise RunError(str(err)) from None
        if not isinstance(data_dir, str) or not data_dir:
            raise RunError(f"{shown(metrics)} records no data_dir (the dataset chapter 01 read): run chapter 01 "
                           "again, or pass --data-dir")
        found["data_dir"] = Path(data_dir)
    return found


def check_run_dir(run_dir) -> Path:
    """``--run-dir`` if it is a run folder whose chapter 01 has run (checked before anything is written there)."""
    folder = arguments.resolved("--run-dir", run_dir)
    if not folder.is_dir():
        raise RunError(f"--run-dir {shown(run_dir)} is not a folder: pass the --out folder of a `cytokit run` "
                       "whose chapter 01 has run")
    if not (folder / "01_data" / "manifest.csv").is_file():
        raise RunError(f"--run-dir {shown(run_dir)} holds no 01_data/manifest.csv: run chapter 01 there first "
                       f"(`cytokit run --only 01 --out {shown(run_dir)}`)")
    return folder


def check_flags(given: dict) -> None:
    """The local cluster's flags and the chief's port, each checked before anything starts."""
    if given.get("local_workers") is not None:
        arguments.count("--local-workers", given["local_workers"], 1, parameters.MAX_TUNER_WORKERS)
    if given.get("timeout") is not None:
        arguments.seconds("--timeout", given["timeout"], most=distributed.SEARCH_TIMEOUT * 52)
    if given.get("gpu_share") is not None:
        arguments.share("--gpu-share", given["gpu_share"])
    if given.get("oracle_port") is not None:
        arguments.port("--oracle-port", given["oracle_port"])



@contextmanager
def _run_folder_kept(run_dir: Path | None, given: dict):
    """The run folder held while this process serves or runs the search; a worker only checks who holds it.

    A chief (or a whole local cluster) takes the run folder's lock, so no ``cytokit run``
    writes there meanwhile and none is already; a worker of a cluster runs beside its
    chief and is refused only when a process other than a tune holds the folder.
    """
    if run_dir is None:
        yield
        return
    if given.get("local_workers") is not None or given.get("role") == "chief":
        with io.folder_lock(run_dir, advice=TUNE_ADVICE):
            yield
        return
    holder = io.lock_holder(run_dir)
    if holder and " tune" not in str(holder.get("command", "")):
        raise io.LockError(io.held_message(run_dir / io.LOCK_NAME, holder, TUNE_ADVICE))
    yield


#: What a refused ``cytokit tune`` may do instead.
TUNE_ADVICE = "wait for it to finish, or tune in another run folder"


def main_tune(args: argparse.Namespace | None = None, **kwargs) -> int:
    """``cytokit tune``: one chief or worker of a distributed chapter-03 search, or all of them here.

    With ``--run-dir``, a disk cache of decoded images goes into the run folder
    (``RUN_DIR/image_cache``) unless ``$CYTOKIT_CACHE_DIR`` names another.
    """
    given = {**vars(args or argparse.Namespace()), **kwargs}
    check_flags(given)
    run_dir = check_run_dir(given["run_dir"]) if given.get("run_dir") else None
    cache_env = {}
    if run_dir and not os.environ.get(image_cache.CACHE_DIR_ENV):
        cache_env[image_cache.CACHE_DIR_ENV] = str(image_cache.run_folder(run_dir))
    with distributed.environ(**cache_env), _run_folder_kept(run_dir, given):
        return _tune(given, args, kwargs)


def _tune(given: dict, args, kwargs) -> int:
    workers = given.get("local_workers")
    if workers is None:
        if given.get("role") is None:
            raise ValueError("pass --local-workers N to run the whole search on this machine, "
                             "or --role chief|worker for one process of a cluster")
        return distributed.tune(settings(args, **kwargs))
    if given.get("role") not in (None, "chief") or given.get("tuner_id") not in (None, CHIEF_ID):
        raise ValueError("--local-workers starts the chief and the workers itself: leave out --role and --tuner-id")
    cfg = settings(args, **{**kwargs, "role": "chief", "tuner_id": CHIEF_ID})
    print(f"cytokit tune: {workers} worker(s) and a chief on this machine; logs in {cfg.directory / 'logs'}",
          flush=True)
    table = distributed.local_cluster(cfg, workers, port=given.get("oracle_port"),
                                      timeout=given.get("timeout") or distributed.SEARCH_TIMEOUT,
                                      gpu_share=given.get("gpu_share"))
    done = int((table["status"] == "COMPLETED").sum())
    print(f"cytokit tune: {done} of {cfg.max_trials} trials completed; results in {cfg.directory / 'trials.csv'}")
    return 0
