"""The random search: its table, and resuming after a kill without re-running finished trials."""

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest


SCRIPT = textwrap.dedent("""
    import sys, numpy as np
    from cytokit.models import tuning
    directory, max_trials = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(0)
    x = rng.random((48, 32, 32, 3), dtype=np.float32); y = rng.integers(0, 3, 48)
    tuner = tuning.random_search(tuning.CellHyperModel(3, 32, bn_momentum=0.9), directory, max_trials, seed=1)
    tuner.search(x[:32], y[:32], validation_data=(x[32:], y[32:]), epochs=2, verbose=0)
    print("completed", tuning.completed(tuner), flush=True)
""")


def _run(tmp_path, max_trials, **kw):
    script = tmp_path / "search.py"
    script.write_text(SCRIPT)
    return subprocess.Popen([sys.executable, str(script), str(tmp_path / "tuner"), str(max_trials)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _timing_files(tmp_path):
    return sorted((tmp_path / "tuner" / "random_search").glob("trial_*/seconds.json"))


def _finished(tmp_path):
    """Timing records of the trials the tuner itself had marked COMPLETED."""
    out = {}
    for f in _timing_files(tmp_path):
        trial = f.parent / "trial.json"
        try:
            if json.loads(trial.read_text())["status"] == "COMPLETED":
                out[f.parent.name] = f.read_text()
        except (OSError, ValueError, KeyError):
            pass  # being written at the moment of the kill
    return out


@pytest.mark.slow
def test_table_and_resume_after_kill(tmp_path):
    proc = _run(tmp_path, 3)
    deadline = time.time() + 240
    while not _finished(tmp_path) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert _finished(tmp_path), proc.communicate()[0][-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = _finished(tmp_path)
    assert 1 <= len(first) < 3, "the kill came too late to test resuming"

    out, _ = _run(tmp_path, 3).communicate(timeout=300)
    assert "completed 3" in out, out[-2000:]
    after = {f.parent.name: f.read_text() for f in _timing_files(tmp_path)}
    assert len(after) == 3
    for trial, text in first.items():  # finished trials were not run again
        assert after[trial] == text

    from cytokit.models import tuning

    tuner = tuning.random_search(tuning.CellHyperModel(3, 32), tmp_path / "tuner", 3, seed=1)
    table = tuning.trials_table(tuner)
    assert len(table) == 3 and (table["status"] == "COMPLETED").all()
    assert set(table.columns) >= {"dropout", "optimizer", "learning_rate", "batch_size",
                                  "val_accuracy", "epochs_run", "seconds", "best_epoch"}
    assert (table["epochs_run"] == 2).all() and (table["seconds"] > 0).all()
    assert table["val_accuracy"].is_monotonic_decreasing
    assert set(tuning.best_hyperparameters(tuner)) == {"dropout", "optimizer", "learning_rate", "batch_size"}


@pytest.mark.slow
def test_a_trial_that_ended_just_before_a_kill_is_not_run_again(tmp_path):
    """Keras Tuner saves its state while the ended trial is still listed as ongoing."""
    out, _ = _run(tmp_path, 1).communicate(timeout=300)
    assert "completed 1" in out, out[-2000:]
    oracle_file = tmp_path / "tuner" / "random_search" / "oracle.json"
    state = json.loads(oracle_file.read_text())
    state["ongoing_trials"] = {"tuner0": "0"}  # the state a kill in that window leaves behind
    oracle_file.write_text(json.dumps(state))
    before = {f.parent.name: f.read_text() for f in _timing_files(tmp_path)}

    out, _ = _run(tmp_path, 2).communicate(timeout=300)
    assert "completed 2" in out, out[-2000:]
    after = {f.parent.name: f.read_text() for f in _timing_files(tmp_path)}
    assert set(after) == {"trial_0", "trial_1"}
    assert after["trial_0"] == before["trial_0"]


def test_search_rows_are_shuffled_every_epoch_not_class_by_class(tmp_path):
    """A trial fed class-sorted rows learns nothing its validation score could rank."""
    import cv2
    import numpy as np
    import pandas as pd

    from cytokit.models import tuning

    rows = []
    for c, cls in enumerate(["ABE", "BLA", "EOS"]):
        for i in range(12):
            rel = f"{cls}/{cls}_{i:05d}.jpg"
            (tmp_path / cls).mkdir(exist_ok=True)
            cv2.imwrite(str(tmp_path / rel), np.full((16, 16, 3), 40 + 80 * c, np.uint8))
            rows.append({"path": rel, "cls": cls, "status": "ok", "split": "train" if i < 9 else "val"})
    manifest = pd.DataFrame(rows)  # class by class, as a manifest lists them
    train, val = tuning.search_rows(manifest, tmp_path, 16, ["ABE", "BLA", "EOS"], seed=0, cache=True)
    epochs = [np.array([int(y) for _, y in train]) for _ in range(2)]
    for labels in epochs:
        assert sorted(labels.tolist()) == [0] * 9 + [1] * 9 + [2] * 9
        assert (np.diff(labels) != 0).sum() > 4  # mixed, not three blocks
    assert not np.array_equal(epochs[0], epochs[1])
    assert [int(y) for _, y in val] == [0] * 3 + [1] * 3 + [2] * 3


def test_the_same_seed_draws_the_same_trials_even_seed_0(tmp_path):
    """Keras Tuner reads a seed of 0 as "no seed"; chapter 03's seed 0 must still draw the same trials every run."""
    from cytokit.models import tuning

    def drawn(folder, seed):
        tuner = tuning.random_search(tuning.CellHyperModel(3, 32), tmp_path / folder, 6, seed=seed)
        return [tuner.oracle.create_trial("tuner0").hyperparameters.values for _ in range(4)]

    assert drawn("a", 0) == drawn("b", 0) and drawn("c", 3) == drawn("d", 3)
    assert drawn("e", 0) != drawn("f", 1)
    with pytest.raises(ValueError, match="0 or more"):
        tuning.oracle_seed(-1)
