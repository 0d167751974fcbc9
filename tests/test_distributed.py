"""Chapter 03's search over a chief and workers on loopback (Keras Tuner's distributed mode)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from cytokit import distributed, models

SEARCH = dict(image_size=32, max_trials=4, max_epochs=1, patience=5, seed=0, bn_momentum=0.9, cache=True)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """150 synthetic 32-px images and their split manifest."""
    from cytokit import data, synth

    root = tmp_path_factory.mktemp("tiny")
    images = synth.generate(root / "data", 150, seed=0, size=32, progress=False)
    manifest = data.build_manifest(images, seed=0, expected_size=(32, 32), progress=False)
    return {"manifest": data.write_manifest(manifest, root / "manifest.csv"), "data_dir": images}


def test_flags_round_trip_through_the_parser(tiny, tmp_path):
    argv = ["--role", "worker", "--tuner-id", "tuner3"] + distributed._flags(
        directory=tmp_path, **tiny, **SEARCH)
    cfg = distributed.settings(distributed.parser().parse_args(argv))
    assert (cfg.role, cfg.tuner_id, cfg.oracle_port, cfg.directory) == ("worker", "tuner3", 8000, tmp_path)
    assert {k: getattr(cfg, k) for k in SEARCH} == SEARCH


def test_unset_settings_come_from_chapter_03_and_the_profile(tiny, tmp_path):
    cfg = distributed.settings(role="chief", directory=tmp_path, profile="smoke", **tiny)
    assert (cfg.tuner_id, cfg.image_size, cfg.max_trials, cfg.max_epochs) == ("chief", 48, 2, 3)
    assert cfg.bn_momentum == 0.9 and cfg.patience == 5 and cfg.cache is True
    full = distributed.settings(role="chief", directory=tmp_path, **tiny)
    assert (full.image_size, full.max_trials, full.bn_momentum, full.cache) == (250, 60, 0.99, False)


@pytest.mark.parametrize("role, tuner_id", [("worker", "chief2"), ("worker", None), ("chief", "tuner0")])
def test_ids_keras_tuner_would_misread_are_refused(tiny, tmp_path, role, tuner_id):
    with pytest.raises(ValueError, match="tuner-id"):
        distributed.settings(role=role, tuner_id=tuner_id, directory=tmp_path, **tiny, **SEARCH)


def test_a_failing_process_stops_the_cluster_and_shows_its_log(tiny, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(distributed.ClusterError, match=r"(?s)chief exited with code 2.*cannot listen"):
            distributed.local_cluster(1, port=port, timeout=60, directory=tmp_path / "tuner", **tiny, **SEARCH)
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
def test_chief_and_two_workers_run_every_trial_once(tiny, tmp_path):
    from cytokit import tuning

    directory = tmp_path / "tuner"
    kwargs = dict(directory=directory, **tiny, **SEARCH)
    table = distributed.local_cluster(2, port=distributed.free_port(), timeout=170, **kwargs)

    assert len(table) == 4 and set(table.index) == {"0", "1", "2", "3"}
    assert set(table["status"]) == {"COMPLETED"}
    runs = distributed.runs(directory)
    assert sorted(runs) == ["0", "1", "2", "3"]
    assert all(len(ids) == 1 for ids in runs.values()), runs
    assert len({ids[0] for ids in runs.values()}) == 2, runs  # both workers trained
    oracle = json.loads((directory / "random_search" / "oracle.json").read_text())
    assert oracle["run_times"] == {t: 1 for t in runs} and oracle["ongoing_trials"] == {}
    for worker in ("tuner0", "tuner1"):
        assert "no trials left; exiting" in (directory / "logs" / f"{worker}.log").read_text()

    tuner = distributed.finished_search(**kwargs)  # what chapter 03 does with its folder
    top = table[table["val_accuracy"] == table["val_accuracy"].max()]  # tiny data: ties are likely
    best_sets = [{k: row[k] for k in models.search_space()} for _, row in top.iterrows()]
    assert tuning.best_hyperparameters(tuner) in best_sets
    assert json.loads((directory / "best_hyperparameters.json").read_text()) in best_sets
    tuning.search(tuner, None, None, max_epochs=1)  # finished: chapter 03 trains nothing again
    assert tuning.completed(tuner) == 4 and distributed.runs(directory) == runs
    assert Path(directory / "trials.csv").is_file()
