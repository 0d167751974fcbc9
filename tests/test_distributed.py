"""Chapter 03's search over a chief and workers on loopback (Keras Tuner's distributed mode)."""

from __future__ import annotations

import argparse
import json
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cytokit.book import cluster
from cytokit.models import distributed, search_settings
from cytokit.models.search_settings import TuneSettings

# One epoch per trial with batch-norm averages that settle within it: on the shuffled rows the
# best trial separates the colours, on class-sorted rows every trial stays near chance.
SEARCH = dict(image_size=32, max_trials=4, max_epochs=1, patience=5, seed=0, bn_momentum=0.5, cache=True)
#: Four classes, each a solid colour under noise: learnable in one epoch, but only from mixed batches.
COLOURS = {"BLA": (200, 60, 60), "EOS": (60, 200, 60), "LYT": (60, 60, 200), "NGS": (200, 200, 60)}
PER_CLASS = 500


def _settings(tiny, directory, **changes) -> TuneSettings:
    """Complete settings of the tiny search (a chief on loopback unless ``changes`` say otherwise)."""
    values = dict(role="chief", tuner_id="chief", oracle_ip="127.0.0.1", oracle_port=8000, directory=directory,
                  **tiny, **SEARCH)
    return TuneSettings(**{**values, **changes})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """2,000 solid-colour-plus-noise 32-px JPEGs of four classes in the real layout, and their split manifest.

    The manifest lists the images class by class, as chapter 01 writes it.
    """
    from cytokit import data

    root = tmp_path_factory.mktemp("tiny")
    images = root / "data"
    rng = np.random.default_rng(0)
    for cls, rgb in COLOURS.items():
        folder = images / cls / "0001-1000"
        folder.mkdir(parents=True)
        for i in range(1, PER_CLASS + 1):
            pixels = np.clip(np.array(rgb) + rng.normal(0, 30, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{cls}_{i:05d}.jpg", quality=95)
    manifest = data.build_manifest(images, seed=0, expected_size=(32, 32), progress=False)
    return {"manifest": data.write_manifest(manifest, root / "manifest.csv"), "data_dir": images}


def _majority_share(manifest_path, split: str = "val") -> float:
    from cytokit import data

    counts = data.rows(data.read_manifest(manifest_path), split)["cls"].value_counts()
    return float(counts.max() / counts.sum())


def test_flags_round_trip_through_the_parser(tiny, tmp_path):
    given = _settings(tiny, tmp_path, role="worker", tuner_id="tuner3")
    args = search_settings.add_arguments(argparse.ArgumentParser()).parse_args(given.flags())
    back = TuneSettings.parse(vars(args))  # as main() does
    assert back == given
    # the same flags through ``cytokit tune`` (the oracle port left to its default)
    argv = given.flags()
    at = argv.index("--oracle-port")
    del argv[at:at + 2]
    cfg = cluster.settings(cluster.add_arguments(argparse.ArgumentParser()).parse_args(argv))
    assert (cfg.role, cfg.tuner_id, cfg.oracle_port, cfg.directory) == ("worker", "tuner3", 8000, tmp_path)
    assert {k: getattr(cfg, k) for k in SEARCH} == SEARCH


def test_unset_settings_come_from_chapter_03_and_the_profile(tiny, tmp_path):
    cfg = cluster.settings(role="chief", directory=tmp_path, profile="smoke", **tiny)
    assert (cfg.tuner_id, cfg.image_size, cfg.max_trials, cfg.max_epochs) == ("chief", 48, 2, 3)
    assert cfg.bn_momentum == 0.9 and cfg.patience == 5 and cfg.cache is True
    full = cluster.settings(role="chief", directory=tmp_path, **tiny)
    assert (full.image_size, full.max_trials, full.bn_momentum, full.cache) == (250, 60, 0.99, "auto")


@pytest.mark.parametrize("role, tuner_id", [("worker", "chief2"), ("worker", None), ("chief", "tuner0")])
def test_ids_keras_tuner_would_misread_are_refused(tiny, tmp_path, role, tuner_id):
    with pytest.raises(ValueError, match="tuner-id"):
        cluster.settings(role=role, tuner_id=tuner_id, directory=tmp_path, **tiny, **SEARCH)
    with pytest.raises(ValueError, match="tuner-id"):
        _settings(tiny, tmp_path, role=role, tuner_id=tuner_id).check()


def test_a_failing_process_stops_the_cluster_and_shows_its_log(tiny, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(distributed.ClusterError, match=r"(?s)chief exited with code 2.*cannot listen"):
            distributed.local_cluster(_settings(tiny, tmp_path / "tuner"), 1, port=port, timeout=60)
    assert (tmp_path / "tuner" / "logs" / "chief.log").is_file()
    assert (tmp_path / "tuner" / "logs" / "tuner0.log").is_file()


def test_reloading_needs_the_tuner_state_file_of_its_own_id(tmp_path):
    project = tmp_path / "random_search"
    project.mkdir()
    distributed.ensure_reloadable(tmp_path, "tuner0")
    assert not (project / "tuner0.json").exists()  # no search yet: nothing to reload
    (project / "oracle.json").write_text("{}")
    (project / "chief.json").write_text("{}")
    distributed.ensure_reloadable(tmp_path, "tuner0")
    assert (project / "tuner0.json").read_text() == "{}"


@pytest.mark.slow
def test_chief_and_two_workers_run_every_trial_once_on_chapter_03s_rows(tiny, tmp_path):
    """Every trial exactly once, results collected, and trained on shuffled rows: the best trial learns.

    A worker fed the manifest's class-sorted rows sees one class per batch, and every
    trial scores near chance (the majority class's share of the validation images).
    """
    from cytokit.models import tuning

    directory = tmp_path / "tuner"
    cfg = _settings(tiny, directory)
    table = distributed.local_cluster(cfg, 2, port=distributed.free_port(), timeout=240)

    assert len(table) == 4 and set(table.index) == {"0", "1", "2", "3"}
    assert set(table["status"]) == {"COMPLETED"}
    chance = _majority_share(tiny["manifest"])
    assert table["val_accuracy"].max() > 2 * chance, (table["val_accuracy"].tolist(), chance)
    runs = distributed.runs(directory)
    assert sorted(runs) == ["0", "1", "2", "3"]
    assert all(len(ids) == 1 for ids in runs.values()), runs
    assert len({ids[0] for ids in runs.values()}) == 2, runs  # both workers trained
    oracle = json.loads((directory / "random_search" / "oracle.json").read_text())
    assert oracle["run_times"] == {t: 1 for t in runs} and oracle["ongoing_trials"] == {}
    for worker in ("tuner0", "tuner1"):
        assert "no trials left; exiting" in (directory / "logs" / f"{worker}.log").read_text()

    tuner = distributed.finished_search(cfg)  # what chapter 03 does with its folder
    top = table[table["val_accuracy"] == table["val_accuracy"].max()]  # tiny data: ties are likely
    best_sets = [{k: row[k] for k in tuning.search_space()} for _, row in top.iterrows()]
    assert tuning.best_hyperparameters(tuner) in best_sets
    assert json.loads((directory / "best_hyperparameters.json").read_text()) in best_sets
    tuning.search(tuner, None, None, max_epochs=1)  # finished: chapter 03 trains nothing again
    assert tuning.completed(tuner) == 4 and distributed.runs(directory) == runs
    assert Path(directory / "trials.csv").is_file()


def _run_folder(tiny, tmp_path) -> Path:
    """A run folder whose chapter 01 has run: its manifest and the dataset it names."""
    from cytokit import io

    run = tmp_path / "run"
    (run / "01_data").mkdir(parents=True)
    (run / "01_data" / "manifest.csv").write_bytes(Path(tiny["manifest"]).read_bytes())
    io.write_json(run / "01_data" / "metrics.json", {"chapter": "01_data", "data_dir": str(tiny["data_dir"])})
    return run


def test_tune_needs_a_role_or_local_workers(tiny, tmp_path):
    from cytokit import cli

    run = _run_folder(tiny, tmp_path)
    with pytest.raises(ValueError, match="--local-workers N"):
        cluster.main_tune(run_dir=run)
    with pytest.raises(ValueError, match="at least 1"):
        cluster.main_tune(run_dir=run, local_workers=0)
    with pytest.raises(ValueError, match="leave out --role"):
        cluster.main_tune(run_dir=run, local_workers=2, role="worker")
    args = cli.parser().parse_args(["tune", "--local-workers", "3", "--run-dir", str(run), "--gpu-share", "0.2",
                                    "--cache", "disk", "--precision", "mixed_bfloat16"])
    assert (args.local_workers, args.gpu_share, args.cache, args.precision) == (3, 0.2, "disk", "mixed_bfloat16")
    assert cli.parser().parse_args(["tune", "--role", "chief", "--no-cache"]).cache is False
    assert cli.parser().parse_args(["tune", "--role", "chief", "--cache"]).cache is True


def test_workers_sharing_a_gpu_get_a_bounded_share_of_its_memory(monkeypatch):
    assert distributed.share_gpu_env(None) == {}
    env = distributed.share_gpu_env(0.225)
    assert env == {distributed.ENV_GPU_SHARE: "0.2250", "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.2250"}
    assert distributed.gpu_memory_limit_mb(0.225, 143_771) == 32_348
    for bad in (0, 1.5, -0.1):
        with pytest.raises(ValueError, match="share"):
            distributed.share_gpu_env(bad)
    monkeypatch.delenv(distributed.ENV_GPU_SHARE, raising=False)
    assert distributed.apply_gpu_share() == "no GPU memory limit"
    monkeypatch.setenv(distributed.ENV_GPU_SHARE, "0.3")
    assert "share 0.300" in distributed.apply_gpu_share()  # a limit, or no GPU visible on this machine


def test_a_disk_cache_for_local_workers_needs_a_folder(tiny, tmp_path, monkeypatch):
    from cytokit.data import image_cache

    monkeypatch.delenv(image_cache.CACHE_DIR_ENV, raising=False)
    with pytest.raises(distributed.ClusterError, match=image_cache.CACHE_DIR_ENV):
        distributed.local_cluster(_settings(tiny, tmp_path / "tuner", cache="auto"), 2, timeout=10)
    assert not (tmp_path / "tuner" / "logs").exists()  # refused before any process started


@pytest.mark.slow
def test_cytokit_tune_local_workers_then_chapter_03_finishes_nothing_twice(tiny, tmp_path, capsys):
    """``cytokit tune --local-workers 2 --run-dir RUN``; then chapter 03 with two workers reloads the finished search.

    The workers share one disk cache of the decoded images in the run folder, filled once.
    """
    from cytokit import cli
    from cytokit.data import image_cache
    from cytokit.pages import tuning

    run = _run_folder(tiny, tmp_path)
    flags = ["--image-size", "32", "--max-trials", "3", "--max-epochs", "1", "--patience", "5", "--seed", "0",
             "--bn-momentum", "0.5", "--cache", "disk"]
    assert cli.main(["tune", "--local-workers", "2", "--run-dir", str(run), "--timeout", "240", *flags]) == 0
    assert "3 of 3 trials completed" in capsys.readouterr().out
    directory = run / "03_tuning" / "tuner"
    runs = distributed.runs(directory)
    assert sorted(runs) == ["0", "1", "2"] and all(len(ids) == 1 for ids in runs.values()), runs
    caches = sorted(p.name for p in (run / "image_cache").glob("*.npy"))
    assert [c.split("-")[0] for c in caches] == ["train", "val"], caches  # one file per split, both workers'
    for worker in ("tuner0", "tuner1"):
        log = (directory / "logs" / f"{worker}.log").read_text()
        assert "GPU memory share 0.450" in log and "--cache disk" in log

    found = tuning.search(_chapter_settings(run), 2, image_cache.run_folder(run), run / "03_tuning" / "trials.csv")
    assert distributed.runs(directory) == runs  # nothing trained again
    facts = found.facts()
    assert len(found.trials) == 3 and facts["trials_completed"] == 3 == facts["trials_resumed"]
    assert facts["tuner_workers"] == 2 and (run / "03_tuning" / "trials.csv").is_file()


def _chapter_settings(run: Path, max_trials: int = 3) -> TuneSettings:
    """The settings chapter 03 of ``run`` makes for the tiny search (``on_this_machine``, as its page does)."""
    data_dir = json.loads((run / "01_data" / "metrics.json").read_text())["data_dir"]
    return search_settings.on_this_machine(run / "01_data" / "manifest.csv", data_dir, run / "03_tuning" / "tuner",
                                           image_size=32, max_trials=max_trials, max_epochs=1, patience=5, seed=0,
                                           bn_momentum=0.5, cache="disk")


def _process(code: str):
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", code])


def test_the_search_ends_with_the_chief_not_with_a_late_worker(tmp_path):
    """A worker that starts after the chief ended cannot reach it and fails; the search is done all the same."""
    logs = {n: tmp_path / f"{n}.log" for n in ("chief", "tuner0", "tuner1")}
    procs = {"chief": _process("pass"), "tuner0": _process("pass"),
             "tuner1": _process("import sys, time; time.sleep(1); sys.exit(1)")}  # too late for the chief
    procs["chief"].wait()
    try:
        distributed._wait(procs, logs, timeout=60)
    finally:
        distributed._stop(procs)
    procs = {"chief": _process("import time; time.sleep(30)"), "tuner0": _process("import sys; sys.exit(3)")}
    try:
        with pytest.raises(distributed.ClusterError, match="tuner0 exited with code 3"):
            distributed._wait(procs, logs, timeout=60)  # while the chief serves, a failing worker is a failure
    finally:
        distributed._stop(procs)


@pytest.mark.slow
def test_chapter_03_with_one_worker_searches_in_its_own_process(tiny, tmp_path, monkeypatch):
    from cytokit.pages import tuning
    from cytokit.data import image_cache

    monkeypatch.delenv(image_cache.CACHE_DIR_ENV, raising=False)
    run = _run_folder(tiny, tmp_path)
    found = tuning.search(_chapter_settings(run, max_trials=1), 1, image_cache.run_folder(run))
    facts = found.facts()
    assert len(found.trials) == 1 and facts["trials_completed"] == 1 and facts["tuner_workers"] == 1
    assert not (run / "03_tuning" / "tuner" / "logs").exists()  # no cluster was started
    assert sorted(p.name.split("-")[0] for p in (run / "image_cache").glob("*.npy")) == ["train", "val"]
