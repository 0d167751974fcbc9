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


class _Backup(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` that also keeps the finished epochs' logs beside the weights.

    Keras restores the weights and the epoch number, but the ``History`` of a resumed
    ``fit`` starts empty; the epochs run before the interruption come from
    ``epoch_logs.json``. The logs are written before the weights, and only the epochs the
    restored backup covers are kept, so a kill between the two writes loses nothing. Every
    file is replaced atomically, so a kill while saving leaves the previous backup usable.
    """

    LOG = "epoch_logs.json"

    def __init__(self, backup_dir):
        super().__init__(str(backup_dir), delete_checkpoint=True)
        self.log_path = Path(backup_dir) / self.LOG
        self.earlier: list[dict] = []     # logs of the epochs finished before a restart
        self.seconds_before = 0.0         # their training time
        self._epochs: list[dict] = []
        self._start = time.perf_counter()

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)     # restores weights and sets the model's initial epoch
        self._start = time.perf_counter()
        start = int(getattr(self.model, "_initial_epoch", None) or 0)
        saved = io.read_json(self.log_path) if start and self.log_path.is_file() else []
        if len(saved) < start:  # a backup written without the logs: their values are unknown
            print(f"note: resuming after epoch {start}, but the logs of epochs {len(saved) + 1}-{start} "
                  f"are not in {self.log_path}; the history shows them as NaN", flush=True)
            saved = list(saved) + [{"logs": {}, "seconds": saved[-1]["seconds"] if saved else 0.0}
                                   for _ in range(start - len(saved))]
        self._epochs = list(saved[:start])
        self.earlier = [e["logs"] for e in self._epochs]
        self.seconds_before = float(self._epochs[-1]["seconds"]) if self._epochs else 0.0

    def on_epoch_end(self, epoch, logs=None):
        elapsed = self.seconds_before + time.perf_counter() - self._start
        self._epochs.append({"logs": {k: float(v) for k, v in (logs or {}).items()}, "seconds": elapsed})
        io.write_json(self.log_path, self._epochs)
        super().on_epoch_end(epoch, logs)

    def _save_model(self):
        """Keras' backup, but each file is written beside its place and renamed onto it.

        Keras overwrites the weights file in place, so a kill while it is being written
        leaves a file that cannot be opened and the resume fails; here a kill at any moment
        leaves the previous epoch's backup whole. (Relies on the private attributes of
        Keras' ``BackupAndRestore``; the resume tests check it with the pinned Keras.)
        """
        Path(self.backup_dir).mkdir(parents=True, exist_ok=True)
        with io.atomic_path(self._weights_path, suffix=".weights.h5") as tmp:
            self.model.save_weights(str(tmp), overwrite=True)
        io.write_json(self._training_metadata_path, {"epoch": self._current_epoch, "batch": self._last_batch_seen})


def fit(model, train_ds, val_ds, epochs: int, callbacks=(), backup_dir=None,
        log_every: int = 1) -> dict:
    """Train and return the history as plain lists, plus seconds and epochs run.

    With ``backup_dir`` an interrupted fit resumes from its last finished epoch when
    called again with the same folder; the history then still covers every epoch, and
    ``seconds`` adds the finished epochs' time before the interruption.
    """
    cbs = list(callbacks) + [EpochLog(log_every)]
    backup = _Backup(backup_dir) if backup_dir is not None else None
    if backup is not None:
        cbs.append(backup)
    start = time.perf_counter()
    hist = model.fit(train_ds, validation_data=val_ds, epochs=int(epochs), callbacks=cbs, verbose=0,
                     shuffle=not isinstance(train_ds, tf.data.Dataset))  # a dataset shuffles itself
    earlier = backup.earlier if backup is not None else []
    keys = list(hist.history) or next((list(e) for e in earlier if e), [])
    history = {k: [float(e.get(k, np.nan)) for e in earlier] + [float(v) for v in hist.history.get(k, [])]
               for k in keys}
    history["seconds"] = (backup.seconds_before if backup is not None else 0.0) + time.perf_counter() - start
    history["epochs_run"] = len(earlier) + len(next(iter(hist.history.values()), []))
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
