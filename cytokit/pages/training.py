"""Chapters 02 and 04 on the page: build and fit the network, train over seeds, read the seeds' spread.

TensorFlow is imported inside the steps that train or predict, so that a page that only reads
results starts without it.
"""

from __future__ import annotations


import pandas as pd

from cytokit import io
from cytokit.book.chapter import Chapter, ChapterData, MissingArtifact
from cytokit.evaluation import statistics
from cytokit.pages import words
from cytokit.evaluation.predictions import Evaluation, predict

#: Training curves kept in ``metrics.json``.
HISTORY_KEYS = ("accuracy", "val_accuracy", "loss", "val_loss")


# --------------------------------------------------------------------------- training


def train_and_val(chapter: Chapter, data: ChapterData, image_size: int, batch_size: int, seed: int = 0,
                  cache=False):
    """The shuffled training batches and the validation batches of the split; records their sizes."""
    chapter.record("n_train", data.count("train"))
    chapter.record("n_val", data.count("val"))
    return _batches(data, image_size, batch_size, seed, cache)


def _batches(data: ChapterData, image_size: int, batch_size: int, seed: int, cache):
    train_ds = data.batches("train", image_size, batch_size, shuffle=True, seed=seed, cache=cache)
    return train_ds, data.batches("val", image_size, batch_size, cache=cache)


def network(chapter: Chapter, n_classes: int, image_size: int, *, dropout: float | None, bn_momentum: float,
            optimizer: str = "adam", learning_rate: float = 1e-3, distribute="auto"):
    """The study's network, compiled, built on every device ``distribute`` asks for; records its size."""
    from cytokit.models.network import param_count, pools_for

    model = _network(n_classes, image_size, dropout, bn_momentum, optimizer, learning_rate, distribute, show=True)
    chapter.record("parameters", param_count(model))
    chapter.record("pools", list(pools_for(image_size)))
    chapter.record("bn_momentum", bn_momentum)
    return model


def _network(n_classes, image_size, dropout, bn_momentum, optimizer, learning_rate, distribute, show=False):
    from cytokit.models import devices, tuning
    from cytokit.models.network import build_cnn, compile_model

    strategy = devices.resolve(distribute)
    if show:
        print(devices.describe(strategy))
    rate = tuning.effective_learning_rate(optimizer, learning_rate)
    return devices.build_in_scope(strategy, lambda: compile_model(
        build_cnn(n_classes, image_size, dropout=dropout, bn_momentum=bn_momentum), optimizer, rate))


def fit(chapter: Chapter, model, train_ds, val_ds, epochs: int, patience: int | None = None) -> dict:
    """Train with a backup beside the chapter (a killed run resumes), save the model and its history."""
    from cytokit.models import training

    history = _fit(model, train_ds, val_ds, epochs, patience, chapter.path("backup"))
    training.save_model(model, chapter.path("model.keras"))
    training.save_history(chapter.path("history.json"), history)
    chapter.record("epochs_run", history["epochs_run"])
    chapter.record("train_seconds", round(history["seconds"], 1))
    if "n_train" in chapter.metrics:
        rate = history["epochs_run"] * chapter.metrics["n_train"] / max(history["seconds"], 1e-9)
        chapter.record("train_images_per_second", round(rate, 1))
    chapter.keep("history", {k: history[k] for k in HISTORY_KEYS if k in history})
    return history


def _fit(model, train_ds, val_ds, epochs, patience, backup_dir) -> dict:
    from cytokit.models import training

    callbacks = [training.early_stopping(patience)] if patience is not None else []
    return training.fit(model, train_ds, val_ds, epochs, callbacks=callbacks, backup_dir=backup_dir)


# --------------------------------------------------------------------------- seeds


def baseline_seeds(chapter: Chapter, data: ChapterData, seeds, image_size: int, batch_size: int, epochs: int,
                   learning_rate: float, bn_momentum: float, distribute="auto", cache=False) -> dict[int, Evaluation]:
    """The baseline trained again from each further seed (same split; other weights and batch order)."""
    from cytokit.models import training

    out = {}
    for seed in seeds:
        training.set_seed(seed)
        train_ds, val_ds = _batches(data, image_size, batch_size, seed, cache)
        model = _network(len(data.class_names), image_size, None, bn_momentum, "adam", learning_rate, distribute)
        _fit(model, train_ds, val_ds, epochs, None, chapter.path(f"backup-seed{seed}"))
        out[int(seed)] = _seed_evaluation(chapter, model, data, val_ds, seed)
    return out


def augmented_seeds(chapter: Chapter, data: ChapterData, seeds, hp: dict, image_size: int, target_per_class: int,
                    max_epochs: int, patience: int, bn_momentum: float, distribute="auto",
                    cache=False) -> dict[int, Evaluation]:
    """The augmented model trained again from each further seed (same split; other weights, batches, warps)."""
    from cytokit.models import augmentation, training

    out = {}
    for seed in seeds:
        training.set_seed(seed)
        stream = augmentation.upsampled_dataset(data.manifest, data.root, image_size, hp["batch_size"],
                                                target_per_class, data.class_names,
                                                augmentation.augmenter(seed=seed), seed=seed, cache=cache)
        val_ds = data.batches("val", image_size, hp["batch_size"], cache=cache)
        model = _network(len(data.class_names), image_size, hp["dropout"], bn_momentum, hp["optimizer"],
                         hp["learning_rate"], distribute)
        _fit(model, stream, val_ds, max_epochs, patience, chapter.path(f"backup-seed{seed}"))
        out[int(seed)] = _seed_evaluation(chapter, model, data, val_ds, seed)
    return out


def _seed_evaluation(chapter: Chapter, model, data: ChapterData, val_ds, seed: int) -> Evaluation:
    ev = Evaluation(data.labels("val"), predict(model, val_ds), data.class_names, list(data.rows("val")["path"]))
    ev.save(chapter.path(f"val_predictions_seed{seed}.npz"))
    return ev


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


def seed_summary(chapter: Chapter, runs: dict[int, Evaluation], name: str) -> pd.DataFrame:
    """Each seed's validation scores, their spread, and the sentence saying how far they moved."""
    table = seed_table(runs)
    chapter.record("seeds_run", [int(s) for s in runs])
    chapter.keep("seed_runs", table.reset_index().to_dict(orient="records"))
    spreads = {m: statistics.spread(table[m]) for m in ("accuracy", "balanced_accuracy")}
    for m, sp in spreads.items():
        chapter.keep(f"val_{m}_seeds", sp)
    chapter.record("seed_sentence", words.seed_spread(name, spreads["balanced_accuracy"]))
    return table


def earlier_seed_runs(chapter: Chapter, upstream: str) -> dict[int, Evaluation]:
    """An earlier chapter's validation predictions of every seed it trained."""
    seeds = chapter.upstream_metrics(upstream).get("seeds_run", [])
    return {s: seed_predictions(chapter, upstream, s, seeds[0]) for s in seeds}


def seed_predictions(chapter: Chapter, upstream: str, seed: int, first_seed: int) -> Evaluation:
    """An earlier chapter's validation predictions from one training seed."""
    name = "val_predictions.npz" if seed == first_seed else f"val_predictions_seed{seed}.npz"
    return Evaluation.load(chapter.upstream(upstream, name))


def difference_over_seeds(chapter: Chapter, runs: dict[int, Evaluation], upstream: str, names: tuple[str, str],
                          metric: str = "balanced_accuracy") -> dict:
    """Seed by seed, this chapter's model minus an earlier chapter's with the same seed; records the spread."""
    theirs = chapter.upstream_metrics(upstream).get("seeds_run", [])
    shared = [s for s in runs if s in theirs]
    diffs = [runs[s].scores[metric] - seed_predictions(chapter, upstream, s, theirs[0]).scores[metric] for s in shared]
    spread = statistics.spread(diffs) if diffs else {"mean": float("nan"), "sd": float("nan"), "min": float("nan"),
                                                      "max": float("nan"), "n": 0}
    chapter.keep(f"{names[0]}_minus_{names[1]}_{metric}_seeds", {**spread, "seeds": shared, "values": diffs})
    chapter.record(f"{names[0]}_minus_{names[1]}_seeds_sentence",
                   words.difference_over_seeds(spread, names[0], names[1], metric))
    return spread


def claim(chapter: Chapter, key: str, text: str, comparison: str, spread: dict) -> str:
    """Records whether this run supports one of the study's claims, from a comparison and the seeds."""
    c = statistics.Comparison.from_dict(chapter.metrics[comparison])
    return chapter.record(key, words.claim_over_seeds(text, c, spread))


def hyperparameters(chapter: Chapter) -> dict:
    """Chapter 03's best trial, or the study's published one when chapter 03 has not run; records which."""
    from cytokit.models import tuning

    try:
        hp = io.read_json(chapter.upstream("03_tuning", "best_hyperparameters.json"))
        source = "the best trial of chapter 3's search"
    except MissingArtifact:
        hp, source = dict(tuning.STUDY_BEST), "the study's published best trial (chapter 3 has not been run)"
    chapter.record("hp_source", source)
    print(f"hyperparameters from {source}: {hp}")
    return hp


