"""Chapter 03's random search on this machine: in this process, or by several worker processes sharing its GPU.

One worker searches here, as a plain Keras Tuner search. More run Keras Tuner's chief and
that many worker processes over loopback (:func:`cytokit.models.distributed.local_cluster`),
each bounded to its share of the GPU's memory; the finished search is then reloaded from its
folder. Either way a search already begun in the folder is finished, never restarted.
"""

from __future__ import annotations

from cytokit.data import manifest as manifests
from cytokit.models import distributed, network, tuning
from cytokit.models.search_settings import TuneSettings


def run(cfg: TuneSettings, workers: int = 1, cache_dir=None):
    """Run (or finish) the search ``cfg`` describes, ``workers`` trials at a time; returns the finished tuner and
    how many trials were already complete before this call."""
    network.set_precision(cfg.precision)
    if int(workers) <= 1:
        return _in_this_process(cfg, cache_dir)
    already_done = distributed.completed_before(cfg)
    if already_done < cfg.max_trials:
        distributed.local_cluster(cfg, int(workers), cache_dir=cache_dir)
    return distributed.finished_search(cfg), already_done


def _in_this_process(cfg: TuneSettings, cache_dir):
    manifest = manifests.read_manifest(cfg.manifest)
    names = manifests.class_names(manifest)
    train_rows, val_rows = tuning.search_rows(manifest, cfg.data_dir, cfg.image_size, names, seed=cfg.seed,
                                              cache=cfg.cache, cache_dir=cache_dir)
    tuner = tuning.tuner_for(cfg, len(names))
    already_done = tuning.completed(tuner)
    tuning.search(tuner, train_rows, val_rows, max_epochs=cfg.max_epochs, patience=cfg.patience)
    return tuner, already_done
