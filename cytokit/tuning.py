"""Chapter 03's random search with Keras Tuner, resumable and tabulated.

The search state lives in the chapter's folder; running the chapter again with the
same folder reloads it, keeps every finished trial and runs only the remaining ones
(Keras Tuner's own ``overwrite=False`` behaviour).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras
import keras_tuner
import pandas as pd

from cytokit import io, models, pipeline

OBJECTIVE = "val_accuracy"
PROJECT = "random_search"


_EPOCHS: dict[str, int] = {}  # module-level: Keras Tuner deep-copies the callbacks it is given


class _EpochCounter(keras.callbacks.Callback):
    def __init__(self, trial_id: str):
        super().__init__()
        self.trial_id = trial_id

    def on_epoch_end(self, epoch, logs=None):
        _EPOCHS[self.trial_id] = _EPOCHS.get(self.trial_id, 0) + 1


class TimedRandomSearch(keras_tuner.RandomSearch):
    """RandomSearch that also records each trial's wall time and epochs run beside the trial.

    Keras Tuner keeps only the best value of each metric per trial, not how long the
    trial trained before early stopping ended it.
    """

    def run_trial(self, trial, *args, **kwargs):
        _EPOCHS[trial.trial_id] = 0
        kwargs["callbacks"] = list(kwargs.get("callbacks", [])) + [_EpochCounter(trial.trial_id)]
        start = time.perf_counter()
        result = super().run_trial(trial, *args, **kwargs)
        io.write_json(Path(self.get_trial_dir(trial.trial_id)) / "seconds.json",
                      {"seconds": time.perf_counter() - start, "epochs": _EPOCHS.pop(trial.trial_id, 0)})
        return result


def random_search(hypermodel, directory, max_trials: int, seed: int = 0,
                  overwrite: bool = False) -> TimedRandomSearch:
    """A random search over the study's space, maximising validation accuracy."""
    tuner = TimedRandomSearch(hypermodel, objective=OBJECTIVE, max_trials=int(max_trials), seed=int(seed),
                              directory=str(directory), project_name=PROJECT, overwrite=overwrite)
    _keep_finished_trials(tuner.oracle)
    return tuner


def _keep_finished_trials(oracle) -> None:
    """Do not re-run a trial that finished just before a kill.

    Keras Tuner saves its oracle state before it removes a just-ended trial from the
    ongoing ones, and on reload it queues every ongoing trial for another run; a kill in
    that window would repeat a finished trial (up to 200 epochs in the full profile).
    The trial's own file already says COMPLETED, so such trials are taken off the queue.
    """
    queue = getattr(oracle, "_retry_queue", None)  # absent on a distributed worker's client
    if queue:
        done = {keras_tuner.engine.trial.TrialStatus.COMPLETED, keras_tuner.engine.trial.TrialStatus.FAILED}
        queue[:] = [t for t in queue if oracle.trials[t].status not in done]


def search_rows(manifest, data_dir, image_size: int, class_names, seed: int = 0, cache=False):
    """Unbatched (image, label) rows of the training and validation splits for the search.

    The training rows are reshuffled every epoch: the manifest lists images class by
    class, and a trial fed in that order sees one class per batch and learns nothing
    its validation score could rank. Each trial batches the rows with its own batch size.
    """
    import tensorflow as tf

    def rows(split, shuffle):
        n = len(pipeline.rows(manifest, split))
        ds = pipeline.dataset(manifest, data_dir, split, image_size, 256, class_names,
                              shuffle=shuffle, seed=seed, cache=cache).unbatch()
        return ds.apply(tf.data.experimental.assert_cardinality(n))  # so Keras knows where an epoch ends

    return rows("train", True), rows("val", False)


def search(tuner, train, val, max_epochs: int, patience: int = 5) -> None:
    """Run (or finish) the search; each trial stops early on validation loss."""
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=int(patience))
    tuner.search(train, validation_data=val, epochs=int(max_epochs), callbacks=[stop], verbose=0)


def _trial_row(tuner, trial) -> dict:
    hp = dict(trial.hyperparameters.values)
    timing_file = Path(tuner.get_trial_dir(trial.trial_id)) / "seconds.json"
    timing = json.loads(timing_file.read_text()) if timing_file.exists() else {}
    lr = hp.get("learning_rate")
    return {
        "trial": trial.trial_id, "status": str(trial.status), **hp,
        "effective_learning_rate": models.effective_learning_rate(hp.get("optimizer"), lr) if lr else lr,
        OBJECTIVE: trial.score, "best_epoch": None if trial.best_step is None else int(trial.best_step) + 1,
        "epochs_run": timing.get("epochs"), "seconds": timing.get("seconds", float("nan")),
    }


def trials_table(tuner) -> pd.DataFrame:
    """Every trial: hyperparameters, best validation accuracy, epochs run and seconds."""
    rows = [_trial_row(tuner, t) for t in tuner.oracle.trials.values()]
    df = pd.DataFrame(rows)
    return df.sort_values(OBJECTIVE, ascending=False, na_position="last").set_index("trial")


def completed(tuner) -> int:
    return sum(str(t.status) == "COMPLETED" for t in tuner.oracle.trials.values())


def best_hyperparameters(tuner) -> dict:
    return dict(tuner.get_best_hyperparameters(1)[0].values)
