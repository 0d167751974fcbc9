"""Chapter 03 on the page: the random search, its trials and its best hyperparameters.

TensorFlow is imported inside the steps that train or predict, so that a page that only reads
results starts without it.
"""

from __future__ import annotations

import time

import pandas as pd

from cytokit import io
from cytokit.book.chapter import Chapter, ChapterData
from cytokit.evaluation import study
from cytokit.data import image_cache
from cytokit.models import distributed


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
    """The search's best hyperparameters, saved for chapter 04 and recorded for the words."""
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


