"""Chapter 03's random search with Keras Tuner, resumable and tabulated.

The search state lives in the chapter's folder; running the chapter again with the
same folder reloads it, keeps every finished trial and runs only the remaining ones
(Keras Tuner's own ``overwrite=False`` behaviour).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import keras
import keras_tuner
import pandas as pd

from cytokit import io
from cytokit.data import manifest as manifest_rows
from cytokit.data import pipeline
from cytokit.models.search_settings import PROJECT, TuneSettings
from cytokit.models.network import STUDY_BN_MOMENTUM, build_cnn, compile_model

OBJECTIVE = "val_accuracy"

#: The study's random-search space (report Table 4.6.1.1, training_facts.csv).
DROPOUT_CHOICES = (0.2, 0.3, 0.4, 0.5)
OPTIMIZER_CHOICES = ("adam", "sgd")
LEARNING_RATE_CHOICES = (1e-3, 1e-4, 1e-5)
BATCH_SIZE_CHOICES = (32, 64, 128)
#: The report's rule: with SGD a sampled learning rate of 1e-5 is trained at 1e-4.
SGD_LEARNING_RATE_REPLACEMENT = {1e-5: 1e-4}
#: The search's best trial (trial 07, val accuracy 0.7756), used for the tuned and augmented models.
STUDY_BEST = {"dropout": 0.4, "learning_rate": 1e-3, "optimizer": "adam", "batch_size": 128}


def effective_learning_rate(optimizer: str, learning_rate: float, replace_sgd_lr: bool = True) -> float:
    """The rate a trial trains at: SGD's 1e-5 becomes 1e-4 under the report's rule."""
    if optimizer == "sgd" and replace_sgd_lr:
        return SGD_LEARNING_RATE_REPLACEMENT.get(learning_rate, learning_rate)
    return learning_rate


def search_space(replace_sgd_lr: bool = True) -> dict:
    """The study's search space as plain data, for the book's table."""
    lrs = list(LEARNING_RATE_CHOICES)
    sgd = sorted({effective_learning_rate("sgd", lr, replace_sgd_lr) for lr in lrs}, reverse=True)
    return {
        "dropout": list(DROPOUT_CHOICES),
        "optimizer": list(OPTIMIZER_CHOICES),
        "learning_rate": {"adam": lrs, "sgd": sgd},
        "batch_size": list(BATCH_SIZE_CHOICES),
    }


#: The four hyperparameters the study searched, in its order.
HYPERPARAMETERS = ("dropout", "optimizer", "learning_rate", "batch_size")


def _unbatched_dataset(x) -> bool:
    """True for a tf.data.Dataset whose first element part is one image (rank 3).

    TensorFlow is looked up, not imported: without it loaded there can be no such
    dataset, and the network itself then runs on any Keras backend (the GPU benchmark
    uses JAX).
    """
    tf = sys.modules.get("tensorflow")
    if tf is None or not isinstance(x, tf.data.Dataset):
        return False
    return tf.nest.flatten(x.element_spec)[0].shape.rank == 3


def trial_network(hp: keras_tuner.HyperParameters, n_classes: int, image_size: int, bn_momentum: float,
                  replace_sgd_lr: bool = True) -> keras.Model:
    """One trial's network: each hyperparameter drawn from the study's choices, then the CNN built and compiled."""
    dropout = hp.Choice("dropout", list(DROPOUT_CHOICES))
    optimizer = hp.Choice("optimizer", list(OPTIMIZER_CHOICES))
    learning_rate = hp.Choice("learning_rate", list(LEARNING_RATE_CHOICES))
    hp.Choice("batch_size", list(BATCH_SIZE_CHOICES))  # applied when the trial fits (CellHyperModel.fit)
    model = build_cnn(n_classes, image_size, dropout=dropout, bn_momentum=bn_momentum)
    return compile_model(model, optimizer, effective_learning_rate(optimizer, learning_rate, replace_sgd_lr))


class CellHyperModel(keras_tuner.HyperModel):
    """The study's tuner model: dropout, optimizer, learning rate and batch size.

    With SGD a learning rate of 1e-5 trains at 1e-4 (the report's Table 4.6.1.1);
    ``replace_sgd_lr=False`` reproduces the study's published trials, which ran it as is.
    ``fit`` batches unbatched (image, label) datasets with the trial's ``batch_size``,
    which Keras Tuner would otherwise ignore.
    """

    def __init__(self, n_classes: int = 21, image_size: int = 250, replace_sgd_lr: bool = True,
                 bn_momentum: float = STUDY_BN_MOMENTUM, **kwargs):
        super().__init__(**kwargs)
        self.n_classes = n_classes
        self.image_size = image_size
        self.replace_sgd_lr = replace_sgd_lr
        self.bn_momentum = bn_momentum

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        return trial_network(hp, self.n_classes, self.image_size, self.bn_momentum, self.replace_sgd_lr)

    def fit(self, hp, model, x, y=None, validation_data=None, **kwargs):
        """Train with the trial's batch size, which Keras Tuner would otherwise ignore."""
        batch_size = hp.get("batch_size")
        tf = sys.modules.get("tensorflow")
        if _unbatched_dataset(x):
            x = x.batch(batch_size).prefetch(tf.data.AUTOTUNE)
        elif tf is not None and isinstance(x, tf.data.Dataset):
            raise ValueError(
                "pass an unbatched tf.data.Dataset of (image, label) so the trial's "
                f"batch_size applies; got elements {x.element_spec}"
            )
        else:
            kwargs["batch_size"] = batch_size
        if tf is not None and isinstance(x, tf.data.Dataset):
            kwargs.setdefault("shuffle", False)  # the dataset shuffles itself; Keras would warn
        if _unbatched_dataset(validation_data):
            validation_data = validation_data.batch(batch_size).prefetch(tf.data.AUTOTUNE)
        return model.fit(x, y, validation_data=validation_data, **kwargs)


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
    """Keras Tuner's random search over the study's space, keeping the trial of best validation accuracy; the same
    ``seed`` draws the same trials in every run."""
    tuner = TimedRandomSearch(hypermodel, objective=OBJECTIVE, max_trials=int(max_trials), seed=oracle_seed(seed),
                              directory=str(directory), project_name=PROJECT, overwrite=overwrite)
    _keep_finished_trials(tuner.oracle)
    return tuner


def oracle_seed(seed: int) -> int:
    """The oracle's seed for the run's ``seed``: Keras Tuner takes 0 for "no seed" (``seed or random.randint``) and
    would draw other trials in every run at the profiles' seed 0, so every seed is shifted by one."""
    if int(seed) < 0:
        raise ValueError(f"seed must be 0 or more; got {seed}")
    return int(seed) + 1


def tuner_for(cfg: TuneSettings, n_classes: int) -> TimedRandomSearch:
    """Chapter 03's tuner for ``cfg``: the same hypermodel, objective, seed and project folder in every process."""
    hypermodel = CellHyperModel(n_classes, cfg.image_size, bn_momentum=cfg.bn_momentum)
    return random_search(hypermodel, cfg.directory, max_trials=cfg.max_trials, seed=cfg.seed)


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


def search_rows(manifest, data_dir, image_size: int, class_names, seed: int = 0, cache=False, cache_dir=None):
    """Unbatched (uint8 image, label) rows of the training and validation splits for the search.

    The training rows are reshuffled every epoch: the manifest lists images class by
    class, and a trial fed in that order sees one class per batch and learns nothing
    its validation score could rank. Each trial batches the rows with its own batch size.
    ``cache`` is ``cache_images`` (:func:`cytokit.data.pipeline.dataset`).
    """
    import tensorflow as tf

    def rows(split, shuffle):
        n = len(manifest_rows.rows(manifest, split))
        ds = pipeline.dataset(manifest, data_dir, split, image_size, 256, class_names,
                              shuffle=shuffle, seed=seed, cache=cache, cache_dir=cache_dir).unbatch()
        return ds.apply(tf.data.experimental.assert_cardinality(n))  # so Keras knows where an epoch ends

    return rows("train", True), rows("val", False)


def search(tuner, train, val, max_epochs: int, patience: int = 5) -> None:
    """Run (or finish) the search: each trial trains until its validation loss stops falling for ``patience`` epochs."""
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=int(patience))
    tuner.search(train, validation_data=val, epochs=int(max_epochs), callbacks=[stop], verbose=0)


def _trial_row(tuner, trial) -> dict:
    hp = dict(trial.hyperparameters.values)
    timing_file = Path(tuner.get_trial_dir(trial.trial_id)) / "seconds.json"
    timing = json.loads(timing_file.read_text()) if timing_file.exists() else {}
    lr = hp.get("learning_rate")
    return {
        "trial": trial.trial_id, "status": str(trial.status), **hp,
        "effective_learning_rate": effective_learning_rate(hp.get("optimizer"), lr) if lr else lr,
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
