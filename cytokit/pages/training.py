"""Chapters 02 and 04 (and 03's refit) on the page: build and fit the network, train it over seeds, its inputs.

Each step returns a frozen result that carries its facts (``KEYS``, for ``metrics.json`` and
glue) and its sentence (:mod:`cytokit.pages.training_words`); the notebook records it once.
How the models score and compare is :mod:`cytokit.pages.validation`. TensorFlow is imported
inside the steps that train or predict, so that a page that only reads results starts
without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from cytokit import io
from cytokit.book.chapter import Chapter, ChapterData, MissingArtifact
from cytokit.data import manifest as manifests
from cytokit.evaluation import statistics
from cytokit.evaluation.predictions import Evaluation, predict
from cytokit.pages import training_words as say

#: Training curves kept in ``metrics.json``.
HISTORY_KEYS = ("accuracy", "val_accuracy", "loss", "val_loss")


# --------------------------------------------------------------------------- the network and its training


@dataclass(frozen=True)
class SplitSizes:
    """How many images the training and validation splits hold."""

    n_train: int
    n_val: int
    KEYS: ClassVar[tuple[str, ...]] = ("n_train", "n_val")

    def facts(self) -> dict:
        return {"n_train": self.n_train, "n_val": self.n_val}


def split_sizes(data: ChapterData) -> SplitSizes:
    """The sizes of the training and validation splits."""
    return SplitSizes(data.count("train"), data.count("val"))


def train_and_val(data: ChapterData, image_size: int, batch_size: int, seed: int = 0, cache=False):
    """The shuffled training batches and the validation batches of the split."""
    train_ds = data.batches("train", image_size, batch_size, shuffle=True, seed=seed, cache=cache)
    return train_ds, data.batches("val", image_size, batch_size, cache=cache)


@dataclass(frozen=True)
class NetworkSize:
    """The network's parameter count, its pooling sizes and the batch-norm momentum it was built with."""

    parameters: int
    pools: tuple[int, ...]
    bn_momentum: float
    KEYS: ClassVar[tuple[str, ...]] = ("parameters", "pools", "bn_momentum")

    def facts(self) -> dict:
        return {"parameters": self.parameters, "pools": list(self.pools), "bn_momentum": self.bn_momentum}


def network(n_classes: int, image_size: int, *, dropout: float | None, bn_momentum: float, optimizer: str = "adam",
            learning_rate: float = 1e-3, distribute="auto", show: bool = True):
    """The study's network, compiled, built on every device ``distribute`` asks for."""
    from cytokit.models import devices, tuning
    from cytokit.models.network import build_cnn, compile_model

    strategy = devices.resolve(distribute)
    if show:
        print(devices.describe(strategy))
    rate = tuning.effective_learning_rate(optimizer, learning_rate)
    return devices.build_in_scope(strategy, lambda: compile_model(
        build_cnn(n_classes, image_size, dropout=dropout, bn_momentum=bn_momentum), optimizer, rate))


def layer_table(model) -> pd.DataFrame:
    """The network's layers as a reader checks them: type, output shape of one image, and parameters."""
    return pd.DataFrame([{"layer": layer.name, "type": type(layer).__name__,
                          "output (one image)": " × ".join(str(d) for d in layer.output.shape[1:]),
                          "parameters": f"{layer.count_params():,}"} for layer in model.layers]).set_index("layer")


def network_size(model, image_size: int, bn_momentum: float) -> NetworkSize:
    """How large the network is at ``image_size``."""
    from cytokit.models.network import param_count, pools_for

    return NetworkSize(param_count(model), tuple(pools_for(image_size)), bn_momentum)


@dataclass(frozen=True)
class Training:
    """One fit: its curves, how long it ran, and what early stopping did."""

    history: dict
    max_epochs: int
    patience: int | None
    seconds: float
    images_per_epoch: int
    KEYS: ClassVar[tuple[str, ...]] = ("epochs_run", "train_seconds", "train_images_per_second", "history",
                                       "stopping_sentence")

    @property
    def epochs_run(self) -> int:
        return int(self.history["epochs_run"])

    @property
    def stopped_early(self) -> bool:
        return self.patience is not None and self.epochs_run < self.max_epochs

    @property
    def best_epoch(self) -> int | None:
        """The epoch (from 1) of the lowest validation loss, whose weights early stopping keeps."""
        losses = np.asarray(self.history.get("val_loss", []), dtype=float)
        return int(np.nanargmin(losses)) + 1 if np.isfinite(losses).any() else None

    @property
    def curves(self) -> dict:
        return {k: self.history[k] for k in HISTORY_KEYS if k in self.history}

    def facts(self) -> dict:
        rate = self.epochs_run * self.images_per_epoch / max(self.seconds, 1e-9)
        return {"epochs_run": self.epochs_run, "train_seconds": round(self.seconds, 1),
                "train_images_per_second": round(rate, 1), "history": self.curves,
                "stopping_sentence": say.stopping(self)}


def fit(model, train_ds, val_ds, epochs: int, images_per_epoch: int, folder, patience: int | None = None) -> Training:
    """Train with a backup in ``folder`` (a killed run resumes); save the model and its history there."""
    from cytokit.models import training

    folder = Path(folder)
    history = _fit(model, train_ds, val_ds, epochs, patience, folder / "backup")
    training.save_model(model, folder / "model.keras")
    training.save_history(folder / "history.json", history)
    return Training(history, int(epochs), patience, float(history["seconds"]), int(images_per_epoch))


def _fit(model, train_ds, val_ds, epochs, patience, backup_dir) -> dict:
    from cytokit.models import training

    callbacks = [training.early_stopping(patience)] if patience is not None else []
    return training.fit(model, train_ds, val_ds, epochs, callbacks=callbacks, backup_dir=backup_dir)


# --------------------------------------------------------------------------- predictions and seeds


def evaluate(model, data: ChapterData, split: str, ds, path) -> Evaluation:
    """Predict a split and save the predictions at ``path`` for later chapters."""
    ev = Evaluation(data.labels(split), predict(model, ds), data.class_names, list(data.rows(split)["path"]))
    ev.save(path)
    return ev




def baseline_seeds(data: ChapterData, seeds, image_size: int, batch_size: int, epochs: int, learning_rate: float,
                   bn_momentum: float, folder, distribute="auto", cache=False) -> dict[int, Evaluation]:
    """The baseline trained again from each further seed (same split; other weights and batch order)."""
    from cytokit.models import training

    out = {}
    for seed in seeds:
        training.set_seed(seed)
        train_ds, val_ds = train_and_val(data, image_size, batch_size, seed, cache)
        model = network(len(data.class_names), image_size, dropout=None, bn_momentum=bn_momentum,
                        learning_rate=learning_rate, distribute=distribute, show=False)
        _fit(model, train_ds, val_ds, epochs, None, Path(folder) / f"backup-seed{seed}")
        out[int(seed)] = evaluate(model, data, "val", val_ds, Path(folder) / f"val_predictions_seed{seed}.npz")
    return out


def augmented_seeds(data: ChapterData, seeds, hp: Hyperparameters, image_size: int, target_per_class: int,
                    max_epochs: int, patience: int, bn_momentum: float, folder, distribute="auto",
                    cache=False) -> dict[int, Evaluation]:
    """The augmented model trained again from each further seed (same split; other weights, batches, warps)."""
    from cytokit.models import augmentation, training

    out = {}
    for seed in seeds:
        training.set_seed(seed)
        stream = augmentation.upsampled_dataset(data.manifest, data.root, image_size, hp.batch_size,
                                                target_per_class, data.class_names,
                                                augmentation.augmenter(seed=seed), seed=seed, cache=cache,
                                                cache_dir=data.cache_dir)
        val_ds = data.batches("val", image_size, hp.batch_size, cache=cache)
        model = network(len(data.class_names), image_size, dropout=hp.dropout, bn_momentum=bn_momentum,
                        optimizer=hp.optimizer, learning_rate=hp.learning_rate, distribute=distribute, show=False)
        _fit(model, stream, val_ds, max_epochs, patience, Path(folder) / f"backup-seed{seed}")
        out[int(seed)] = evaluate(model, data, "val", val_ds, Path(folder) / f"val_predictions_seed{seed}.npz")
    return out


def seed_table(runs: dict[int, Evaluation]) -> pd.DataFrame:
    """Each seed's validation accuracy and balanced accuracy with their 95 % intervals."""
    rows = {}
    for seed, ev in runs.items():
        ivs = ev.intervals()
        rows[seed] = {f"{m}{end}": getattr(ivs[m], attr) for m in ("accuracy", "balanced_accuracy")
                      for end, attr in (("", "estimate"), ("_low", "low"), ("_high", "high"))}
    table = pd.DataFrame(rows).T
    table.index.name = "seed"
    return table


@dataclass(frozen=True)
class SeedSpread:
    """One model's validation scores over training seeds, and how far they moved."""

    name: str
    table: pd.DataFrame
    KEYS: ClassVar[tuple[str, ...]] = ("seeds_run", "seed_runs", "val_accuracy_seeds", "val_balanced_accuracy_seeds",
                                       "seed_sentence")

    def spread(self, metric: str = "balanced_accuracy") -> dict:
        return statistics.spread(self.table[metric])

    def facts(self) -> dict:
        return {"seeds_run": [int(s) for s in self.table.index],
                "seed_runs": io.to_jsonable(self.table.reset_index().to_dict(orient="records")),
                "val_accuracy_seeds": self.spread("accuracy"),
                "val_balanced_accuracy_seeds": self.spread("balanced_accuracy"),
                "seed_sentence": say.seed_spread(self.name, self.spread())}


def seed_spread(runs: dict[int, Evaluation], name: str) -> SeedSpread:
    """Each seed's validation scores and their spread."""
    return SeedSpread(name, seed_table(runs))


def earlier_seed_runs(chapter: Chapter, upstream: str) -> dict[int, Evaluation]:
    """An earlier chapter's validation predictions of every seed it trained (its first seed's are its model's)."""
    seeds = chapter.upstream_metrics(upstream).get("seeds_run", [])
    names = {s: "val_predictions.npz" if s == seeds[0] else f"val_predictions_seed{s}.npz" for s in seeds}
    return {s: Evaluation.load(chapter.upstream(upstream, name)) for s, name in names.items()}


@dataclass(frozen=True)
class SeedDifference:
    """Seed by seed, one model's balanced accuracy minus another's trained from the same seed."""

    names: tuple[str, str]
    seeds: tuple[int, ...]
    values: tuple[float, ...]
    KEYS: ClassVar[tuple[str, ...]] = ("balanced_accuracy_seeds", "seeds_sentence")

    @property
    def spread(self) -> dict:
        if not self.values:
            return {"mean": float("nan"), "sd": float("nan"), "min": float("nan"), "max": float("nan"), "n": 0}
        return statistics.spread(self.values)

    def facts(self) -> dict:
        return {"balanced_accuracy_seeds": {**self.spread, "seeds": list(self.seeds), "values": list(self.values)},
                "seeds_sentence": say.difference_over_seeds(self.spread, *self.names)}


def seed_difference(ours: dict[int, Evaluation], theirs: dict[int, Evaluation],
                    names: tuple[str, str]) -> SeedDifference:
    """This chapter's model minus an earlier one in balanced accuracy, over the seeds both trained."""
    shared = [s for s in ours if s in theirs]
    diffs = [ours[s].scores["balanced_accuracy"] - theirs[s].scores["balanced_accuracy"] for s in shared]
    return SeedDifference(names, tuple(shared), tuple(float(d) for d in diffs))


# --------------------------------------------------------------------------- chapter 04's inputs


@dataclass(frozen=True)
class Hyperparameters:
    """The four hyperparameters a tuned network trains with, and where they come from."""

    dropout: float
    optimizer: str
    learning_rate: float
    batch_size: int
    source: str
    KEYS: ClassVar[tuple[str, ...]] = ("dropout", "optimizer", "learning_rate", "batch_size", "source", "sentence")

    def as_dict(self) -> dict:
        return {"dropout": self.dropout, "optimizer": self.optimizer, "learning_rate": self.learning_rate,
                "batch_size": self.batch_size}

    def facts(self) -> dict:
        return {**self.as_dict(), "source": self.source, "sentence": say.hyperparameters(self)}


def hyperparameters(chapter: Chapter) -> Hyperparameters:
    """Chapter 03's best trial, or the study's published one when chapter 03 has not run."""
    from cytokit.models import tuning

    try:
        hp = io.read_json(chapter.upstream("03_tuning", "best_hyperparameters.json"))
        source = "the best trial of chapter 3's search"
    except MissingArtifact:
        hp, source = dict(tuning.STUDY_BEST), "the study's published best trial (chapter 3 has not been run)"
    return Hyperparameters(float(hp["dropout"]), str(hp["optimizer"]), float(hp["learning_rate"]),
                           int(hp["batch_size"]), source)


@dataclass(frozen=True)
class Example:
    """One training image of the rarest class, uint8 as the pipeline feeds it to the model."""

    code: str
    image: np.ndarray
    KEYS: ClassVar[tuple[str, ...]] = ("example_class",)

    def facts(self) -> dict:
        return {"example_class": self.code}


def rarest_training_image(data: ChapterData, image_size: int) -> Example:
    """The first training image of the class with the fewest training images."""
    from cytokit.data import pipeline

    rows = data.rows("train")
    code = rows["cls"].value_counts().idxmin()
    path = str(data.root / rows.loc[rows["cls"] == code, "path"].iloc[0])
    return Example(str(code), pipeline.load_image(path, image_size).numpy())


@dataclass(frozen=True)
class StreamSize:
    """What one epoch of the balanced stream holds."""

    target_per_class: int
    counts: pd.Series
    KEYS: ClassVar[tuple[str, ...]] = ("target_per_class", "classes_in_training", "stream_images_per_epoch",
                                       "smallest_training_class", "smallest_class_text")

    @property
    def images_per_epoch(self) -> int:
        return int(self.target_per_class * self.counts.size)

    def facts(self) -> dict:
        return {"target_per_class": self.target_per_class, "classes_in_training": int(self.counts.size),
                "stream_images_per_epoch": self.images_per_epoch, "smallest_training_class": int(self.counts.min()),
                "smallest_class_text": say.images(int(self.counts.min()), "distinct training image")}


def stream_size(data: ChapterData, target_per_class: int) -> StreamSize:
    """The classes of the training split and the images one epoch of the balanced stream draws."""
    return StreamSize(int(target_per_class), manifests.rows(data.manifest, "train")["cls"].value_counts())
