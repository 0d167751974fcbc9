"""Training with backups: a killed fit resumes from its last finished epoch, nothing half-written.

Chapters 02-04 train; 05 and 06 only load. The model (``.keras``) and its history
(JSON) are written atomically.
"""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from cytokit import io
from cytokit.models.network import with_pixel_scaling

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

    Keras' ``EarlyStopping`` starts its patience afresh in every ``fit``; a resumed fit
    would train ``patience`` more epochs than an uninterrupted one. Its counters are a
    function of the monitored values, so they are replayed from the restored epochs'
    logs; its best weights (``restore_best_weights``) are kept as ``best-<i>-epoch<N>.npz``
    in the backup folder, the previous best removed only once a later backup is whole.
    """

    LOG = "epoch_logs.json"

    def __init__(self, backup_dir, stoppers=()):
        super().__init__(str(backup_dir), delete_checkpoint=True)
        self.stoppers = list(stoppers)   # the fit's EarlyStopping callbacks, in order
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
        if start:
            self._restore_stoppers()

    def on_epoch_end(self, epoch, logs=None):
        elapsed = self.seconds_before + time.perf_counter() - self._start
        self._epochs.append({"logs": {k: float(v) for k, v in (logs or {}).items()}, "seconds": elapsed})
        io.write_json(self.log_path, self._epochs)
        self._save_best_weights(epoch)
        super().on_epoch_end(epoch, logs)
        self._drop_older_best_weights()

    def _best_path(self, i: int, epoch: int) -> Path:
        return Path(self.backup_dir) / f"best-{i}-epoch{epoch}.npz"

    def _save_best_weights(self, epoch: int) -> None:
        """Keep a stopper's best weights when this epoch became its best (written before the backup)."""
        for i, stopper in enumerate(self.stoppers):
            if stopper.restore_best_weights and stopper.best_weights is not None and stopper.best_epoch == epoch:
                Path(self.backup_dir).mkdir(parents=True, exist_ok=True)
                with io.atomic_path(self._best_path(i, epoch), suffix=".npz") as tmp:
                    with open(tmp, "wb") as fh:
                        np.savez(fh, *stopper.best_weights)

    def _drop_older_best_weights(self) -> None:
        """Once the backup of this epoch is whole, remove best weights no stopper points at any more."""
        keep = {self._best_path(i, s.best_epoch).name for i, s in enumerate(self.stoppers)}
        for old in Path(self.backup_dir).glob("best-*-epoch*.npz"):
            if old.name not in keep:
                old.unlink(missing_ok=True)

    def _restore_stoppers(self) -> None:
        """Give each EarlyStopping the state an uninterrupted fit would have after the restored epochs."""
        for i, stopper in enumerate(self.stoppers):
            for epoch, logs in enumerate(self.earlier):
                if logs:
                    stopper.on_epoch_end(epoch, dict(logs))
            self.model.stop_training = False
            if stopper.restore_best_weights and stopper.best_weights is not None:
                best = self._best_path(i, stopper.best_epoch)
                if best.is_file():
                    with np.load(best) as saved:
                        stopper.best_weights = [saved[f"arr_{k}"] for k in range(len(saved.files))]
                else:
                    print(f"note: the best weights of epoch {stopper.best_epoch + 1} are not in {self.backup_dir}; "
                          "early stopping keeps the resumed weights as its best so far", flush=True)
                    stopper.best_weights = self.model.get_weights()

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
    stoppers = [cb for cb in callbacks if isinstance(cb, keras.callbacks.EarlyStopping)]
    backup = _Backup(backup_dir, stoppers) if backup_dir is not None else None
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
    """A saved model that takes uint8 pixels, also when it was saved for inputs in [0, 1] (the study's files)."""
    return with_pixel_scaling(keras.saving.load_model(str(path), compile=False))


def save_history(path, history: dict) -> Path:
    return io.write_json(path, history)
