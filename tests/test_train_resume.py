"""A training run killed part-way resumes from its last finished epoch, with its whole history.

A subprocess trains the study CNN through ``cytokit.train.fit`` (the call chapters 02-04
make, with a ``backup_dir``) and logs every epoch's begin and end to a file. The test
SIGKILLs it at a chosen point, runs the same script again and checks that it trained only
the epochs after the last backed-up one and that the saved history covers all six epochs.
Two kill points: between epochs (the 4th is starting), and in the middle of writing the
backup of epoch 3 (a half-written weights file must not break the resume).
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
    from cytokit import models, train

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

    train.set_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((64, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 3, 64).astype(np.int32)
    train_ds = tf.data.Dataset.from_tensor_slices((x[:48], y[:48])).batch(16)
    val_ds = tf.data.Dataset.from_tensor_slices((x[48:], y[48:])).batch(16)
    model = models.compile_model(models.build_cnn(3, 32, bn_momentum=0.9), "adam", 1e-3)
    history = train.fit(model, train_ds, val_ds, epochs, callbacks=[Events()], backup_dir=out / "backup")
    train.save_history(out / "history.json", history)
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


# (where the first run is killed, at which epoch index, how many epochs the backup then holds)
KILLS = {"between epochs": ("epoch", 3, 3),        # epoch 4 begins: epochs 1-3 are backed up
         "while saving a backup": ("save", 2, 2)}  # the backup of epoch 3 is half-written


@pytest.mark.parametrize("kill", list(KILLS))
def test_killed_training_resumes_from_its_last_finished_epoch(tmp_path, kill):
    where, at, backed_up = KILLS[kill]
    signal_seen = (lambda e: e.get("begin") == at) if where == "epoch" else (lambda e: e.get("saving") == at)
    first = _start(tmp_path, "first", where, at)
    deadline = time.time() + 240
    while (not any(signal_seen(e) for e in _events(tmp_path, "first"))
           and time.time() < deadline and first.poll() is None):
        time.sleep(0.2)
    assert first.poll() is None, "the first run ended before it could be killed:\n" + first.communicate()[0][-3000:]
    first.send_signal(signal.SIGKILL)
    first.wait()
    ended = [e for e in _events(tmp_path, "first") if "end" in e]
    assert [e["end"] for e in ended] == list(range(at + (where == "save")))
    assert (tmp_path / "backup").is_dir() and not (tmp_path / "history.json").exists()

    second = _start(tmp_path, "second")
    out, _ = second.communicate(timeout=300)
    assert second.returncode == 0, out[-3000:]
    resumed = _events(tmp_path, "second")
    assert [e["begin"] for e in resumed if "begin" in e] == list(range(backed_up, EPOCHS)), \
        "the resumed run did not start at the epoch after the last backed-up one"
    assert f"epoch {backed_up + 1:3d}" in out and "epoch   1 " not in out

    history = json.loads((tmp_path / "history.json").read_text())
    logs = ended[:backed_up] + [e for e in resumed if "end" in e]
    assert [e["end"] for e in logs] == list(range(EPOCHS))
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert history[key] == [e["logs"][key] for e in logs], f"history[{key!r}] lost epochs"
    assert history["epochs_run"] == EPOCHS
    assert not (tmp_path / "backup").exists(), "the backup folder outlived a finished fit"
