"""A training run killed part-way resumes from its last finished epoch, with its whole history.

A subprocess trains the study CNN through ``cytokit.train.fit`` (the call chapters 02-04
make, with a ``backup_dir``) and logs every epoch's begin and end to a file; the test
SIGKILLs it while it waits at the start of epoch 4 (epochs 1-3 finished), runs the same
script again and checks that it trained epochs 4-6 only and that the saved history still
covers all six epochs.
"""

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.slow

EPOCHS, KILL_AT = 6, 3  # 0-based: killed while epoch index 3 (the 4th) begins

SCRIPT = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    import keras, numpy as np, tensorflow as tf
    from cytokit import models, train

    out, run, stall_at, epochs = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

    def event(**kw):
        with open(out / "events.jsonl", "a") as f:
            f.write(json.dumps({"run": run, **kw}) + "\\n")

    class Events(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            event(begin=epoch)
            if epoch == stall_at:
                time.sleep(600)  # the test kills the process here
        def on_epoch_end(self, epoch, logs=None):
            event(end=epoch, logs={k: float(v) for k, v in (logs or {}).items()})

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


def _start(tmp_path, run, stall_at):
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    return subprocess.Popen([sys.executable, str(script), str(tmp_path), run, str(stall_at), str(EPOCHS)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _events(tmp_path, run):
    path = tmp_path / "events.jsonl"
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in lines if e["run"] == run]


def test_killed_training_resumes_from_its_last_finished_epoch(tmp_path):
    first = _start(tmp_path, "first", KILL_AT)
    deadline = time.time() + 240
    while (not any(e.get("begin") == KILL_AT for e in _events(tmp_path, "first"))
           and time.time() < deadline and first.poll() is None):
        time.sleep(0.2)
    assert first.poll() is None, "the first run ended before it could be killed:\n" + first.communicate()[0][-3000:]
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed = _events(tmp_path, "first")
    ended = [e for e in killed if "end" in e]
    assert [e["end"] for e in ended] == list(range(KILL_AT)), killed
    assert (tmp_path / "backup").is_dir() and not (tmp_path / "history.json").exists()

    second = _start(tmp_path, "second", -1)
    out, _ = second.communicate(timeout=300)
    assert second.returncode == 0, out[-3000:]
    resumed = _events(tmp_path, "second")
    assert [e["begin"] for e in resumed if "begin" in e] == list(range(KILL_AT, EPOCHS)), \
        "the resumed run did not start at the epoch after the last finished one"
    assert f"epoch {KILL_AT + 1:3d}" in out and "epoch   1 " not in out

    history = json.loads((tmp_path / "history.json").read_text())
    logs = ended + [e for e in resumed if "end" in e]
    assert [e["end"] for e in logs] == list(range(EPOCHS))
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert history[key] == [e["logs"][key] for e in logs], f"history[{key!r}] lost epochs"
    assert history["epochs_run"] == EPOCHS
    assert not (tmp_path / "backup").exists(), "the backup folder outlived a finished fit"
