"""Chapter 03 on the page: the search space, the random search, its trials and its best hyperparameters.

Each step returns a frozen result carrying its facts (``KEYS``) and sentence; the notebook
records it once. TensorFlow is imported inside the steps that train, so that a page that
only reads results starts without it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

import pandas as pd

from cytokit import io
from cytokit.evaluation import study
from cytokit.models.search_settings import TuneSettings
from cytokit.pages import figures
from cytokit.pages.training_words import epochs, power_of_ten
from cytokit.pages.training import Hyperparameters

#: The four hyperparameters the study searched, in its order (as the trials table names them).
HYPERPARAMETERS = ("dropout", "optimizer", "learning_rate", "batch_size")
#: How the optimisers read in the search-space table.
OPTIMIZER_NAMES = {"adam": "Adam", "sgd": "SGD"}


def space_table() -> pd.DataFrame:
    """The study's search space as the page shows it: one row per hyperparameter, its values in words."""
    from cytokit.models import tuning

    rule = "; ".join(f"with SGD, {power_of_ten(lr)} trains at {power_of_ten(to)}"
                     for lr, to in tuning.SGD_LEARNING_RATE_REPLACEMENT.items())
    values = {
        "dropout": ", ".join(f"{d:g}" for d in tuning.DROPOUT_CHOICES),
        "optimizer": ", ".join(OPTIMIZER_NAMES[o] for o in tuning.OPTIMIZER_CHOICES),
        "learning rate": f"{', '.join(power_of_ten(lr) for lr in tuning.LEARNING_RATE_CHOICES)} ({rule})",
        "batch size": ", ".join(str(b) for b in tuning.BATCH_SIZE_CHOICES),
    }
    return pd.DataFrame({"hyperparameter": list(values), "values": list(values.values())}).set_index("hyperparameter")


# --------------------------------------------------------------------------- the search


@dataclass(frozen=True)
class Search:
    """A finished random search: its tuner and trials, the trials an earlier run had finished, its workers."""

    tuner: object
    trials: pd.DataFrame
    resumed: int
    workers: int
    wall_seconds: float
    max_epochs: int
    patience: int
    KEYS: ClassVar[tuple[str, ...]] = ("trials_completed", "trials_resumed", "search_seconds", "trials",
                                       "tuner_workers", "search_wall_seconds", "trials_stopped_early",
                                       "search_stopping_sentence")

    @property
    def completed(self) -> pd.DataFrame:
        return self.trials[self.trials["status"] == "COMPLETED"]

    @property
    def stopped_early(self) -> int:
        """Completed trials that early stopping ended before their last epoch."""
        epochs = pd.to_numeric(self.completed["epochs_run"], errors="coerce")
        return int((epochs < self.max_epochs).sum())

    def stopping_sentence(self) -> str:
        """What early stopping did to the trials, true whether it could act or not."""
        n, k = len(self.completed), self.stopped_early
        rule = f"early stopping (a patience of {epochs(self.patience)} on the validation loss)"
        if k == 0 and self.patience + 1 >= self.max_epochs:
            return (f"With at most {epochs(self.max_epochs)} a trial, {rule} could not end any trial sooner: "
                    "each trained all its epochs.")
        ended = "none" if k == 0 else f"{k} of the {n}"
        return f"Of the completed trials, {rule} ended {ended} before epoch {self.max_epochs}."

    def facts(self) -> dict:
        return {"trials_completed": len(self.completed), "trials_resumed": self.resumed,
                "search_seconds": round(float(self.trials["seconds"].sum()), 1),
                "trials": io.to_jsonable(self.trials.reset_index()), "tuner_workers": self.workers,
                "search_wall_seconds": self.wall_seconds, "trials_stopped_early": self.stopped_early,
                "search_stopping_sentence": self.stopping_sentence()}


def search(cfg: TuneSettings, workers: int = 1, cache_dir=None, trials_csv=None) -> Search:
    """Chapter 03's random search, run (or finished) on this machine ``workers`` trials at a time; its trials are
    written to ``trials_csv``."""
    from cytokit.models import search as searching
    from cytokit.models import tuning

    start = time.perf_counter()
    tuner, resumed = searching.run(cfg, workers, cache_dir)
    trials = tuning.trials_table(tuner)
    if trials_csv is not None:
        io.write_csv(trials_csv, trials, index=True)
    if int(workers) > 1:
        print(f"{int(workers)} workers; their logs are in {cfg.directory.name}/logs")
    return Search(tuner, trials, int(resumed), int(workers), round(time.perf_counter() - start, 1), cfg.max_epochs,
                  cfg.patience)


def best_trial(found: Search, path=None) -> Hyperparameters:
    """The search's best hyperparameters, saved at ``path`` for chapter 04."""
    from cytokit.models import tuning

    best = tuning.best_hyperparameters(found.tuner)
    if path is not None:
        io.write_json(path, best)
    return Hyperparameters(float(best["dropout"]), str(best["optimizer"]), float(best["learning_rate"]),
                           int(best["batch_size"]), "the best trial of this search")


# --------------------------------------------------------------------------- the study's own trials


@dataclass(frozen=True)
class StudyTrials:
    """The study's 60 trials on the real data, when its reference files are beside this copy."""

    trials: pd.DataFrame | None
    KEYS: ClassVar[tuple[str, ...]] = ("study_trials_note",)

    def facts(self) -> dict:
        if self.trials is None:
            return {"study_trials_note": "The study's own trials are not shown: its reference files "
                                         "(`../shared/reference`) are not beside this copy of the project."}
        return {"study_trials_note": f"For comparison, the figure below shows the study's {len(self.trials)} "
                                     "trials on the real data, each scored by its best validation accuracy."}

    def figure(self):
        """The study's trials against each hyperparameter, or None (nothing drawn) when they are absent."""
        if self.trials is None:
            return None
        return figures.hyperparameter_scatter(self.trials, list(HYPERPARAMETERS),
                                              title="For comparison: the study's trials on the real data")


def study_trials() -> StudyTrials:
    """The study's own trials, named as this run's trials table."""
    return StudyTrials(study.study_trials_for_scatter() if study.study_trials() is not None else None)
