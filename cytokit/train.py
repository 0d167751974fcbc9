"""Fitting and the artifacts a trained model leaves for later chapters.

Chapters 02-04 train; chapter 05 and 06 only load. Everything a later chapter reads is
written atomically: the model (``.keras``), its history (JSON) and its validation
predictions (``.npz``). Training can resume after a crash from the last finished epoch
(``keras.callbacks.BackupAndRestore``).
"""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from cytokit import io

# Predicting several models in one notebook makes TensorFlow warn about retracing; the
# warning is about speed, not correctness, and would be frozen into the book's pages.
tf.get_logger().setLevel("ERROR")


def set_seed(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and TensorFlow; optionally make TF ops deterministic (slower)."""
    keras.utils.set_random_seed(int(seed))
    if deterministic:
        tf.config.experimental.enable_op_determinism()


class EpochLog(keras.callbacks.Callback):
    """Print one short line per epoch: readable in notebooks, logs and CI output."""

    def __init__(self, every: int = 1):
        super().__init__()
        self.every = max(1, int(every))

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        shown = "  ".join(f"{k} {v:.4f}" for k, v in (logs or {}).items() if k != "learning_rate")
        print(f"epoch {epoch + 1:3d}  {shown}  ({time.perf_counter() - self.start:.0f} s)", flush=True)


def early_stopping(patience: int, monitor: str = "val_loss"):
    """Stop after ``patience`` epochs without improvement and keep the best weights."""
    return keras.callbacks.EarlyStopping(monitor=monitor, patience=patience,
                                         restore_best_weights=True, verbose=0)


def fit(model, train_ds, val_ds, epochs: int, callbacks=(), backup_dir=None,
        log_every: int = 1) -> dict:
    """Train and return the history as plain lists, plus seconds and epochs run.

    With ``backup_dir`` an interrupted fit resumes from its last finished epoch when
    called again with the same folder.
    """
    cbs = list(callbacks) + [EpochLog(log_every)]
    if backup_dir is not None:
        cbs.append(keras.callbacks.BackupAndRestore(str(backup_dir), delete_checkpoint=True))
    start = time.perf_counter()
    hist = model.fit(train_ds, validation_data=val_ds, epochs=int(epochs), callbacks=cbs, verbose=0)
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    history["seconds"] = time.perf_counter() - start
    history["epochs_run"] = len(next(iter(hist.history.values()), []))
    return history


def save_model(model, path) -> Path:
    with io.atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
    return Path(path)


def load_model(path):
    return keras.saving.load_model(str(path), compile=False)


def predict(model, ds) -> np.ndarray:
    """Class probabilities for every image of a (non-shuffled) dataset, batched."""
    return np.asarray(model.predict(ds, verbose=0))


def save_predictions(path, y_true, probs, paths, class_names) -> Path:
    """Labels, probabilities and file paths of one split, for later chapters."""
    with io.atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, y_true=np.asarray(y_true), probs=np.asarray(probs, dtype=np.float32),
                            paths=np.asarray(list(paths)), class_names=np.asarray(list(class_names)))
    return Path(path)


def load_predictions(path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        out = {k: z[k] for k in z.files}
    out["y_pred"] = out["probs"].argmax(axis=1)
    out["class_names"] = [str(c) for c in out["class_names"]]
    out["paths"] = [str(p) for p in out["paths"]]
    return out


def save_history(path, history: dict) -> Path:
    return io.write_json(path, history)
