"""A training run killed part-way resumes from its last finished epoch, with its whole history.

A subprocess trains the study CNN through ``cytokit.models.training.fit`` (the call chapters 02-04
make, with a ``backup_dir``) and logs every epoch's begin and end to a file. The test
SIGKILLs it twice, each time running the same script again: first in the middle of writing
the backup of epoch 2 (a half-written weights file must not break the resume), then, in
the resumed run, as epoch 5 begins. Each run must train only the epochs after the last
backed-up one, and the saved history must cover all six epochs.
"""

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.slow

EPOCHS = 6

SCRIPT = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    import keras, numpy as np, tensorflow as tf
    from cytokit.models import network, training

    out, run, epochs = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    stall_where, stall_at = sys.argv[4], int(sys.argv[5])   # where the test will kill it
    ended = []

    def event(**kw):
        with open(out / "events.jsonl", "a") as f:
            f.write(json.dumps({"run": run, **kw}) + "\\n")

    class Events(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            event(begin=epoch)
            if stall_where == "epoch" and epoch == stall_at:
                time.sleep(600)
        def on_epoch_end(self, epoch, logs=None):
            ended.append(epoch)
            event(end=epoch, logs={k: float(v) for k, v in (logs or {}).items()})

    keras_save_weights = keras.Model.save_weights
    def save_weights(self, filepath, *args, **kwargs):
        if stall_where == "save" and ended and ended[-1] == stall_at:   # half-write this backup
            with open(filepath, "wb") as f:
                f.write(b"\\x89HDF\\r\\n\\x1a\\n half-written")
            event(saving=stall_at)
            time.sleep(600)
        return keras_save_weights(self, filepath, *args, **kwargs)
    keras.Model.save_weights = save_weights

    training.set_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((64, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 3, 64).astype(np.int32)
    train_ds = tf.data.Dataset.from_tensor_slices((x[:48], y[:48])).batch(16)
    val_ds = tf.data.Dataset.from_tensor_slices((x[48:], y[48:])).batch(16)
    model = network.compile_model(network.build_cnn(3, 32, bn_momentum=0.9), "adam", 1e-3)
    history = training.fit(model, train_ds, val_ds, epochs, callbacks=[Events()], backup_dir=out / "backup")
    training.save_history(out / "history.json", history)
    print("finished", history["epochs_run"], flush=True)
""")


def _start(tmp_path, run, stall_where="none", stall_at=-1):
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    cmd = [sys.executable, str(script), str(tmp_path), run, str(EPOCHS), stall_where, str(stall_at)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _events(tmp_path, run):
    path = tmp_path / "events.jsonl"
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in lines if e["run"] == run]


def _kill_when(proc, tmp_path, run, seen):
    deadline = time.time() + 240
    while not any(seen(e) for e in _events(tmp_path, run)) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, f"run {run} ended before it could be killed:\n" + proc.communicate()[0][-3000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return [e for e in _events(tmp_path, run) if "end" in e]


def _begun(tmp_path, run):
    return [e["begin"] for e in _events(tmp_path, run) if "begin" in e]


def test_killed_training_resumes_from_its_last_finished_epoch(tmp_path):
    # 1st run: killed while writing the backup after epoch index 1; the backup holds epoch 0 only
    first = _kill_when(_start(tmp_path, "first", "save", 1), tmp_path, "first", lambda e: e.get("saving") == 1)
    assert [e["end"] for e in first] == [0, 1]
    assert (tmp_path / "backup").is_dir() and not (tmp_path / "history.json").exists()

    # 2nd run: resumes at epoch index 1; killed as epoch index 4 begins (0-3 backed up)
    second = _kill_when(_start(tmp_path, "second", "epoch", 4), tmp_path, "second", lambda e: e.get("begin") == 4)
    assert _begun(tmp_path, "second") == [1, 2, 3, 4], "the resumed run did not start after the last backup"
    assert [e["end"] for e in second] == [1, 2, 3]

    # 3rd run: resumes at epoch index 4 and finishes
    third = _start(tmp_path, "third")
    out, _ = third.communicate(timeout=300)
    assert third.returncode == 0, out[-3000:]
    assert _begun(tmp_path, "third") == [4, 5], "the resumed run did not start after the last backup"
    assert "epoch   5 " in out and "epoch   1 " not in out

    history = json.loads((tmp_path / "history.json").read_text())
    logs = first[:1] + second + [e for e in _events(tmp_path, "third") if "end" in e]
    assert [e["end"] for e in logs] == list(range(EPOCHS))
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert history[key] == [e["logs"][key] for e in logs], f"history[{key!r}] lost or mixed up epochs"
    assert history["epochs_run"] == EPOCHS
    assert not (tmp_path / "backup").exists(), "the backup folder outlived a finished fit"
