"""The steps chapters 02-05 share, each one named call that also records what its page reports.

TensorFlow is imported inside the steps that train or predict, so that chapter 01 (which
imports :mod:`cytokit.book` too) starts without it.
"""

from __future__ import annotations

import time

import pandas as pd

from cytokit import io
from cytokit.book.chapter import MODEL_CHAPTERS, Chapter, ChapterData, MissingArtifact
from cytokit.evaluation import grouping, metrics, statistics, study
from cytokit.book import prose
from cytokit.data import embedded, image_cache
from cytokit.evaluation.predictions import Evaluation, predict, predict_timed
from cytokit.models import colour_control as control
from cytokit.models import distributed

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
    chapter.record("seed_sentence", prose.seed_spread(name, spreads["balanced_accuracy"]))
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
                   prose.difference_over_seeds(spread, names[0], names[1], metric))
    return spread


def claim(chapter: Chapter, key: str, text: str, comparison: str, spread: dict) -> str:
    """Records whether this run supports one of the study's claims, from a comparison and the seeds."""
    c = statistics.Comparison.from_dict(chapter.metrics[comparison])
    return chapter.record(key, prose.claim_over_seeds(text, c, spread))


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


# --------------------------------------------------------------------------- the search


def search(chapter: Chapter, tuner, train_rows, val_rows, max_epochs: int, patience: int) -> pd.DataFrame:
    """Run (or finish) the random search; save and record its trials."""
    from cytokit.models import tuning

    already_done = tuning.completed(tuner)
    tuning.search(tuner, train_rows, val_rows, max_epochs=max_epochs, patience=patience)
    return _record_trials(chapter, tuner, already_done)


def _record_trials(chapter: Chapter, tuner, already_done: int) -> pd.DataFrame:
    from cytokit.models import tuning

    trials = tuning.trials_table(tuner)
    io.write_csv(chapter.path("trials.csv"), trials, index=True)
    chapter.record("trials_completed", tuning.completed(tuner))
    chapter.record("trials_resumed", already_done)
    chapter.record("search_seconds", round(float(trials["seconds"].sum()), 1))
    chapter.keep("trials", trials.reset_index())
    return trials


def search_with_workers(chapter: Chapter, data: ChapterData, image_size: int, max_trials: int, max_epochs: int,
                        patience: int, seed: int = 0, bn_momentum: float = 0.99, cache=False, workers: int = 1,
                        precision: str = "float32"):
    """Chapter 03's whole random search, run by ``workers`` trials at a time on this machine; returns (tuner, trials).

    One worker searches in this process, as :func:`search` does. More run Keras Tuner's
    chief and that many worker processes over loopback, sharing this machine's GPU (each
    bounded to its share of the memory, :func:`cytokit.models.distributed.local_cluster`),
    on the rows this chapter would use; the finished search is then reloaded from the
    chapter's folder, and a search already begun there is finished, never restarted.
    Records the trials, the workers and the search's wall time.
    """
    from cytokit.models import network, tuning

    network.set_precision(precision)
    cache_dir = image_cache.run_folder(chapter.run_dir)
    start = time.perf_counter()
    if int(workers) <= 1:
        train_rows, val_rows = tuning.search_rows(data.manifest, data.root, image_size, data.class_names, seed=seed,
                                                  cache=cache, cache_dir=cache_dir)
        hypermodel = tuning.CellHyperModel(len(data.class_names), image_size, bn_momentum=bn_momentum)
        tuner = tuning.random_search(hypermodel, chapter.path("tuner"), max_trials=max_trials, seed=seed)
        trials = search(chapter, tuner, train_rows, val_rows, max_epochs, patience)
    else:
        cfg = distributed.TuneSettings(
            role="chief", tuner_id=distributed.CHIEF_ID, oracle_ip="127.0.0.1", oracle_port=0,
            manifest=chapter.upstream("01_data", "manifest.csv"), data_dir=data.root, directory=chapter.path("tuner"),
            image_size=image_size, max_trials=max_trials, max_epochs=max_epochs, patience=patience, seed=seed,
            bn_momentum=bn_momentum, cache=distributed.cache_value(cache), precision=precision).check()
        already_done = distributed.completed_before(cfg)
        if already_done < max_trials:
            distributed.local_cluster(cfg, int(workers), cache_dir=cache_dir)
        tuner = distributed.finished_search(cfg)
        trials = _record_trials(chapter, tuner, already_done)
        print(f"{int(workers)} workers; logs in {chapter.shown(cfg.directory / 'logs')}")
    chapter.record("tuner_workers", int(workers))
    chapter.record("search_wall_seconds", round(time.perf_counter() - start, 1))
    return tuner, trials


def best_trial(chapter: Chapter, tuner) -> dict:
    """The search's best hyperparameters, saved for chapter 04 and recorded for the prose."""
    from cytokit.models import tuning

    best = tuning.best_hyperparameters(tuner)
    io.write_json(chapter.path("best_hyperparameters.json"), best)
    chapter.record_all(best, prefix="best_")
    return best


def study_trials_caption() -> str:
    """Caption of the study's own trials figure, or why it is absent."""
    if study.study_trials() is None:
        return ("The study's own trials are not shown: its reference files "
                "(`../shared/reference`) are not beside this copy of the project.")
    return "**Figure 3.2.** For comparison, the study's 60 trials on the real data."


# --------------------------------------------------------------------------- evaluation


def evaluate(chapter: Chapter, model, data: ChapterData, split: str, ds) -> Evaluation:
    """Predict a split, save the predictions for later chapters, and record the headline metrics."""
    rows = data.rows(split)
    ev = Evaluation(data.labels(split), predict(model, ds), data.class_names, list(rows["path"]))
    ev.save(chapter.path(f"{split}_predictions.npz"))
    record_scores(chapter, ev, f"{split}_")
    chapter.keep(f"{split}_per_class_intervals", ev.per_class_intervals())
    return ev


def record_scores(chapter: Chapter, ev: Evaluation, prefix: str) -> None:
    """Record each headline metric, its 95 % interval (``<metric>_ci95``) and both as text for the prose."""
    for name, iv in ev.intervals().items():
        if name in metrics.HEADLINE_KEYS or name == "macro_f1":
            chapter.record(f"{prefix}{name}", iv.estimate)
            chapter.record(f"{prefix}{name}_ci95", iv.as_list())
            chapter.record(f"{prefix}{name}_text", prose.with_interval(iv.estimate, iv.low, iv.high))
    chapter.record(f"{prefix}classes", ev.classes_present)


def compare(chapter: Chapter, key: str, a: Evaluation, b: Evaluation, names: tuple[str, str], metric: str,
            images: str = "validation images") -> statistics.Comparison:
    """Two models on the same images for one metric: keeps the comparison, records its sentence."""
    if not a.same_images(b):
        raise ValueError(f"{names[0]} and {names[1]} were not evaluated on the same images; cannot pair them")
    c = statistics.compare(a.y_true, a.y_pred, b.y_pred, len(a.class_names), metric, names)
    chapter.keep(key, c.as_dict())
    chapter.record(f"{key}_sentence", prose.comparison(c, a.scores[metric], b.scores[metric], images))
    return c


def earlier(chapter: Chapter, model: str) -> Evaluation:
    """The validation predictions of an earlier chapter's model (``baseline``, ``tuned``)."""
    return Evaluation.load(chapter.upstream(MODEL_CHAPTERS[model], "val_predictions.npz"))


def earlier_models(chapter: Chapter, names=("baseline", "tuned")) -> dict[str, Evaluation]:
    """Earlier models' validation predictions that exist; records their balanced accuracy."""
    out = {}
    for name in names:
        try:
            out[name] = earlier(chapter, name)
        except MissingArtifact as err:
            print(err)
            continue
        chapter.record(f"{name}_val_balanced_accuracy", out[name].scores["balanced_accuracy"])
    return out


def scores_table(evaluations: dict, study_model: str | None = None, split: str = "validation") -> pd.DataFrame:
    """Headline metrics per model with their 95 % intervals, then the study's published figures for ``study_model``."""
    rows = {}
    for name, ev in evaluations.items():
        ivs = ev.intervals()
        rows[name] = {m: prose.with_interval(ivs[m].estimate, ivs[m].low, ivs[m].high)
                      for m in (*metrics.HEADLINE_KEYS, "macro_f1")}
        rows[name]["images"] = f"{len(ev.y_true):,}"
        rows[name]["classes"] = str(ev.classes_present)
    if study_model:
        published = study.study_headline(study_model, split)
        rows[f"study {study_model} (real data, published)"] = {m: f"{100 * v:.1f} %" for m, v in published.items()}
    table = pd.DataFrame.from_dict(rows, orient="index").fillna("–")
    table.index.name = "model"
    return table


def against_study(chapter: Chapter, ev: Evaluation, model: str, split: str = "validation") -> pd.DataFrame:
    """Per-class scores beside the study's F1 for the same model and split."""
    theirs = study.study_per_class(model, split)[["f1"]].rename(columns={"f1": "study_f1"})
    return ev.per_class().join(theirs)


def improvements(chapter: Chapter, before: Evaluation, after: Evaluation, names: tuple[str, str]) -> pd.DataFrame:
    """Per-class precision, recall and F1 of two models with their difference; records how many improved."""
    table = metrics.difference(before.per_class(), after.per_class(), columns=["precision", "recall", "f1"],
                               suffixes=names)
    table["improved"] = metrics.improved(before.per_class(), after.per_class(), "f1")
    chapter.record("classes_improved", int(table["improved"].sum()))
    return table


def against_latest(chapter: Chapter, earlier: dict[str, Evaluation], after: Evaluation, name: str) -> pd.DataFrame:
    """:func:`improvements` over the latest earlier model (tuned, else baseline)."""
    latest = list(earlier)[-1]
    return improvements(chapter, earlier[latest], after, (latest, name))


def rarest_training_image(chapter: Chapter, data: ChapterData, image_size: int):
    """The first training image of the rarest class in training, uint8 as the pipeline feeds it to the model."""
    from cytokit.data import pipeline

    rows = data.rows("train")
    code = rows["cls"].value_counts().idxmin()
    path = str(data.root / rows.loc[rows["cls"] == code, "path"].iloc[0])
    chapter.record("example_class", code)
    return code, pipeline.load_image(path, image_size).numpy()


def top_confusions(chapter: Chapter, ev: Evaluation, k: int = 8) -> pd.DataFrame:
    """The pairs of classes most often mixed up; records the first."""
    top = metrics.top_pair_confusions(ev.y_true, ev.y_pred, ev.class_names, k=k)
    chapter.record("top_confusion", f"{top.iloc[0]['class_a']}↔{top.iloc[0]['class_b']}" if len(top) else "none")
    return top


def compare_if_present(chapter: Chapter, key: str, ev: Evaluation, earlier: dict[str, Evaluation], other: str,
                       names: tuple[str, str], metric: str) -> statistics.Comparison | None:
    """:func:`compare` with an earlier model when its chapter ran; otherwise records why there is no sentence."""
    if other in earlier:
        return compare(chapter, key, ev, earlier[other], names, metric)
    chapter.record(f"{key}_sentence", f"The {other} model's chapter has not run, so it is not compared here.")
    return None


def colour_control(chapter: Chapter, data: ChapterData, image_size: int, seed: int = 0) -> Evaluation:
    """A logistic regression on colour histograms alone, on the validation images; records its scores."""
    hx_train, hy_train = control.dataset_histograms(data.batches("train", image_size, 256))
    hx_val, hy_val = control.dataset_histograms(data.batches("val", image_size, 256))
    ev = Evaluation.from_labels(hy_val, control.fit_predict(hx_train, hy_train, hx_val, seed=seed), data.class_names,
                                data.rows("val")["path"])
    record_scores(chapter, ev, "colour_")
    return ev


# --------------------------------------------------------------------------- chapter 05


def predict_models(chapter: Chapter, data: ChapterData, paths: dict, eval_split: str, image_size: int,
                   batch_size: int, model_source: str) -> dict[str, Evaluation]:
    """Each model's predictions on the evaluated images, timed; records what was evaluated."""
    from cytokit.models.training import load_model

    split = None if eval_split == "all" else eval_split
    ds = data.batches(split, image_size, batch_size)
    out = {}
    for name, path in paths.items():
        probs, seconds = predict_timed(load_model(path), ds)
        out[name] = Evaluation(data.labels(split), probs, data.class_names, list(data.rows(split)["path"]), seconds)
    chapter.record("model_source", model_source)
    chapter.record("is_synthetic", embedded.is_synthetic(data.root))
    chapter.record("n_test", len(data.labels(split)))
    chapter.record("eval_statement", prose.evaluated(len(data.labels(split)), split,
                                                     next(iter(out.values())).classes_present if out else None))
    print({name: chapter.shown(p) for name, p in paths.items()})
    return out


def _validation_of(paths: dict, name: str) -> Evaluation | None:
    """A model's validation predictions, saved by the chapter that trained it (none for the study's models)."""
    val_file = paths[name].parent / "val_predictions.npz"
    return Evaluation.load(val_file) if paths[name].name == "model.keras" and val_file.is_file() else None


def validation_and_test(chapter: Chapter, tested: dict[str, Evaluation], paths: dict) -> pd.DataFrame:
    """Each model's headline metrics with 95 % intervals on validation (when saved) and test; records them."""
    rows = []
    for name, ev in tested.items():
        record_scores(chapter, ev, f"{name}_test_")
        val = _validation_of(paths, name)
        if val is not None:
            record_scores(chapter, val, f"{name}_val_")
        for metric in (*metrics.HEADLINE_KEYS, "macro_f1"):
            t = ev.intervals()[metric]
            v = val.intervals()[metric] if val is not None else statistics.Interval(*[float("nan")] * 3)
            rows.append({"model": name, "metric": metric, "validation": v.estimate, "validation_low": v.low,
                         "validation_high": v.high, "test": t.estimate, "test_low": t.low, "test_high": t.high})
    return pd.DataFrame(rows).set_index(["model", "metric"])


def headline_text(table: pd.DataFrame) -> pd.DataFrame:
    """The validation/test table with each value written beside its interval."""
    out = pd.DataFrame(index=table.index.set_levels(
        [prose.METRIC_WORDS.get(m, m) for m in table.index.levels[1]], level="metric"))
    for split in ("validation", "test"):
        out[split] = [prose.with_interval(r[split], r[f"{split}_low"], r[f"{split}_high"])
                      if r[split] == r[split] else "–" for _, r in table.iterrows()]
    return out


#: The pairs of models chapter 05 compares, later model first.
PAIRS = (("tuned", "baseline"), ("augmented", "baseline"), ("augmented", "tuned"))
#: The metrics they are compared on; the first decides which model is clearly best.
PAIR_METRICS = ("balanced_accuracy", "accuracy")
#: The model the card describes when none is clearly best: the study's final model.
DEFAULT_CARD_MODEL = "augmented"


def pairwise(chapter: Chapter, tested: dict[str, Evaluation], eval_split: str) -> pd.DataFrame:
    """Every pair of models on the same images, for each metric; records the comparisons and their sentences."""
    images = "test images" if eval_split == "test" else "evaluated images"
    found = []
    for a, b in PAIRS:
        for metric in PAIR_METRICS:
            found.append(compare(chapter, f"{a}_vs_{b}_{metric}", tested[a], tested[b], (a, b), metric, images))
    chapter.keep("comparisons", [c.as_dict() for c in found])
    family(chapter, "comparisons", [c.as_dict() for c in found], "comparisons of this section")
    holm = statistics.holm([c.p_value for c in found])
    return pd.DataFrame([{"a": c.a, "b": c.b, "metric": prose.METRIC_WORDS[c.metric] + prose.class_set(c),
                          "a − b (points)": prose.points(c.difference),
                          "95 % interval": f"{prose.points(c.low)} to {prose.points(c.high)}",
                          "p-value": f"{prose.p_value(c.p_value, c.p_floor, short=True)} ({c.test})",
                          "Holm-adjusted p": prose.p_value(h), "verdict": c.verdict} for c, h in zip(found, holm)])


def family(chapter: Chapter, key: str, comparisons: list[dict], what: str) -> str:
    """Records the sentence on what α means for a page's family of comparisons (``<key>_family``)."""
    return chapter.record(f"{key}_family", prose.family(comparisons, what))


def page_family(chapter: Chapter, keys, what: str = "comparisons on this page") -> str:
    """:func:`family` over the comparisons this chapter kept under ``keys`` (those that ran)."""
    return family(chapter, "page", [chapter.metrics[k] for k in keys if k in chapter.metrics], what)


def choose_card_model(chapter: Chapter, tested: dict[str, Evaluation]) -> str:
    """The clearly best model if the comparisons name one, else the stated default; records which and why."""
    comparisons = chapter.metrics["comparisons"]
    winners = [m for m in tested if all(
        (c["verdict"] == "better" and c["a"] == m) or (c["verdict"] == "worse" and c["b"] == m)
        for c in comparisons if c["metric"] == PAIR_METRICS[0] and m in (c["a"], c["b"]))]
    best = winners[0] if len(winners) == 1 else None
    card = best or DEFAULT_CARD_MODEL
    chapter.record("clearly_best_model", best)
    chapter.record("card_model", card)
    chapter.record("card_test_accuracy", tested[card].scores["accuracy"])
    chapter.record("card_test_balanced_accuracy", tested[card].scores["balanced_accuracy"])
    chapter.record("best_model_statement", prose.best_model(best, card, PAIR_METRICS[0]))
    return card


def per_class_tables(chapter: Chapter, tested: dict[str, Evaluation], paths: dict) -> pd.DataFrame:
    """Per class and model, test scores beside validation (where saved) with test - validation."""
    tables = {}
    for name, ev in tested.items():
        after = ev.per_class()
        chapter.keep(f"{name}_test_per_class", after)
        val = _validation_of(paths, name)
        if val is not None:
            before = val.per_class()
            tables[name] = metrics.difference(before, after, columns=["precision", "recall", "f1"],
                                              suffixes=("validation", "test"))
        else:
            tables[name] = after
    return pd.concat(tables, names=["model"])


def neutrophil_lineage(chapter: Chapter, ev: Evaluation) -> pd.DataFrame:
    """The neutrophil series scored as one class, NEU; records its recall and the grouped accuracy."""
    gy, gp, names = grouping.group_classes(ev.y_true, ev.y_pred, ev.class_names, grouping.NEU_GROUP)
    neu = statistics.per_class_intervals(gy, gp, names).loc["NEU"]
    recall, low, high = float(neu["recall"]), float(neu["recall_low"]), float(neu["recall_high"])
    chapter.record_all({"neu_recall": recall, "neu_recall_ci95": [low, high], "neu_support": int(neu["support"]),
                        "neu_recall_text": prose.with_interval(recall, low, high)})
    acc = statistics.intervals(gy, gp, len(names), metrics=("accuracy",))["accuracy"]
    chapter.record_all({"grouped_accuracy": acc.estimate, "grouped_accuracy_ci95": acc.as_list(),
                        "grouped_accuracy_text": prose.with_interval(acc.estimate, acc.low, acc.high)})
    chapter.record("neu_against_study", prose.against_published(recall, low, high, study.neu_recall() / 100,
                                                                "the study's best model"))
    return metrics.confusion(gy, gp, names, normalize=True)


def literature(chapter: Chapter, ev: Evaluation, name: str):
    """Per-class F1 beside published systems, the best of each row marked, styled for the page."""
    lit = study.literature_comparison(ev.per_class()["f1"], label=f"this run ({name})")
    lit["best"] = study.best_per_class(lit)
    chapter.keep("literature", lit)
    return lit.style.format(precision=2, na_rep="–").highlight_max(axis=1, subset=lit.columns[:-1],
                                                                  props="font-weight:bold")


def model_card(chapter: Chapter, ev: Evaluation, name: str, path) -> pd.DataFrame:
    """The best model's card; records its inference speed."""
    from cytokit.evaluation.model_card import model_card as card_of
    from cytokit.models.training import load_model

    history = path.parent / "history.json"
    train_seconds = io.read_json(history).get("seconds") if history.exists() else None
    card = card_of(name, path, load_model(path), len(ev.y_true), ev.seconds, train_seconds, ev.scores)
    chapter.record("best_images_per_second", float(card["inference speed (images/s, this machine)"]))
    chapter.keep("model_card", card.to_dict())
    return card.to_frame("value")

