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

from cytokit import io, models

OBJECTIVE = "val_accuracy"
PROJECT = "random_search"


class TimedRandomSearch(keras_tuner.RandomSearch):
    """RandomSearch that also records each trial's wall time beside the trial."""

    def run_trial(self, trial, *args, **kwargs):
        start = time.perf_counter()
        result = super().run_trial(trial, *args, **kwargs)
        io.write_json(Path(self.get_trial_dir(trial.trial_id)) / "seconds.json",
                      {"seconds": time.perf_counter() - start})
        return result


def random_search(hypermodel, directory, max_trials: int, seed: int = 0,
                  overwrite: bool = False) -> TimedRandomSearch:
    """A random search over the study's space, maximising validation accuracy."""
    return TimedRandomSearch(hypermodel, objective=OBJECTIVE, max_trials=int(max_trials), seed=int(seed),
                             directory=str(directory), project_name=PROJECT, overwrite=overwrite)


def search(tuner, train, val, max_epochs: int, patience: int = 5) -> None:
    """Run (or finish) the search; each trial stops early on validation loss."""
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=int(patience))
    tuner.search(train, validation_data=val, epochs=int(max_epochs), callbacks=[stop], verbose=0)


def _trial_row(tuner, trial) -> dict:
    hp = dict(trial.hyperparameters.values)
    history = trial.metrics.get_history(OBJECTIVE) if trial.metrics.exists(OBJECTIVE) else []
    seconds_file = Path(tuner.get_trial_dir(trial.trial_id)) / "seconds.json"
    seconds = json.loads(seconds_file.read_text())["seconds"] if seconds_file.exists() else float("nan")
    lr = hp.get("learning_rate")
    return {
        "trial": trial.trial_id, "status": str(trial.status), **hp,
        "effective_learning_rate": models.effective_learning_rate(hp.get("optimizer"), lr) if lr else lr,
        OBJECTIVE: trial.score, "epochs_run": len(history), "seconds": seconds,
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
