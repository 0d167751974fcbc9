"""A chapter's place in a run: its artifact folder, earlier chapters' outputs, its headline numbers.

Every chapter writes under ``RUN_DIR/<NN_name>/`` and reads earlier chapters' artifacts
from their folders, so a notebook behaves the same in JupyterLab (default run folder
``runs/demo``) and under the runner (``run_dir`` injected by papermill).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cytokit import io, paths
from cytokit.book.facts import checked_facts
from cytokit.book.glue import glue
from cytokit.data import image_cache
from cytokit.data import manifest as manifests

#: Chapter that trains each of the study's three models, in the study's order.
MODEL_CHAPTERS = {"baseline": "02_baseline", "tuned": "03_tuning", "augmented": "04_augmentation"}
STUDY_MODEL_FILES = tuple(f"{name}.keras" for name in MODEL_CHAPTERS)


class MissingArtifact(FileNotFoundError):
    """An earlier chapter's output is absent: the message says which chapter to run."""


@dataclass
class ChapterData:
    """Chapter 01's split as later chapters use it: the manifest, the dataset folder, the classes."""

    manifest: pd.DataFrame
    root: Path
    class_names: list[str]
    #: Where this run keeps decoded images when ``cache_images`` is "disk" or "auto" (never in the dataset).
    cache_dir: Path | None = None

    def rows(self, split: str | None) -> pd.DataFrame:
        return manifests.rows(self.manifest, split)

    def count(self, split: str | None) -> int:
        return len(self.rows(split))

    def labels(self, split: str | None) -> np.ndarray:
        return manifests.labels(self.manifest, split, self.class_names)

    def batches(self, split: str | None, image_size: int, batch_size: int, shuffle: bool = False,
                seed: int = 0, cache=False):
        """A tf.data dataset of one split (TensorFlow is imported here, not with the chapter)."""
        from cytokit.data import pipeline

        return pipeline.dataset(self.manifest, self.root, split, image_size, batch_size, self.class_names,
                                shuffle=shuffle, seed=seed, cache=cache, cache_dir=self.cache_dir)


class Chapter:
    """Artifact folder and headline numbers of one chapter of one run."""

    def __init__(self, name: str, run_dir=None, profile: str = paths.DEFAULT_PROFILE):
        self.name = name
        self.run_dir = Path(run_dir).resolve() if run_dir else paths.default_run_dir(profile)
        self.dir = self.run_dir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.metrics: dict = {}

    def path(self, filename: str) -> Path:
        """Where this chapter writes ``filename``."""
        return self.dir / filename

    def shown(self, path) -> str:
        """``path`` as a page may print it: relative to the run folder or the project, never absolute."""
        path = Path(path).resolve()
        for base in (self.run_dir, paths.project_root()):
            if path.is_relative_to(base):
                return str(path.relative_to(base)) or "."
        return os.path.relpath(path, self.dir)

    def upstream(self, chapter: str, filename: str) -> Path:
        """An earlier chapter's artifact, or a clear error naming the chapter to run."""
        found = self.run_dir / chapter / filename
        if not found.exists():
            raise MissingArtifact(
                f"{found} is missing: run chapter {chapter} first, e.g. "
                f"`cytokit run --profile <profile> --out {self.run_dir} --only {chapter[:2]}` "
                f"or open notebooks/{chapter}.ipynb with run_dir = {str(self.run_dir)!r}"
            )
        return found

    def upstream_metrics(self, chapter: str) -> dict:
        """An earlier chapter's ``metrics.json``."""
        return io.read_json(self.upstream(chapter, "metrics.json"))

    def data(self) -> ChapterData:
        """Chapter 01's split, dataset folder and class names."""
        manifest = manifests.read_manifest(self.upstream("01_data", "manifest.csv"))
        root = Path(self.upstream_metrics("01_data")["data_dir"])
        if not root.is_dir():
            raise MissingArtifact(f"the dataset folder {root} used by chapter 01 is gone; run chapter 01 again")
        return ChapterData(manifest, root, manifests.class_names(manifest), image_cache.run_folder(self.run_dir))

    def models(self, source: str = "run", study_dir=None) -> dict[str, Path]:
        """The three models: this run's chapters 02-04 (``run``) or the study's ``.keras`` files (``study``)."""
        if source == "run":
            return {name: self.upstream(ch, "model.keras") for name, ch in MODEL_CHAPTERS.items()}
        if source != "study":
            raise ValueError(f"model_source must be 'run' or 'study', not {source!r}")
        folder = Path(study_dir) if study_dir else paths.shared_dir() / "reference" / "study-models"
        found = {name: folder / f"{name}.keras" for name in MODEL_CHAPTERS}
        missing = [n for n, p in found.items() if not p.is_file()]
        if missing:
            raise MissingArtifact(
                f"the study's models {missing} are not in {folder}: fetch them with "
                "`cytokit fetch-study-models DIR` and pass `--study-models DIR` (see data/README.md)")
        return found

    def record(self, key, value=None):
        """Keep a headline number for ``metrics.json`` and glue it for the prose.

        ``record(result)`` or ``record(result, "prefix_")`` records every fact of a step's
        result (:mod:`cytokit.book.facts`) under its declared keys, prefixed.
        """
        if not isinstance(key, str):
            prefix = value or ""
            return {k: self.record(prefix + k, v) for k, v in checked_facts(key).items()} and key
        if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            value = value.item()  # numpy scalars would paste as "np.float64(...)"
        self.metrics[key] = value
        glue(key, value)
        return value

    def record_all(self, values: dict, prefix: str = ""):
        """:meth:`record` every item of ``values``, each key prefixed."""
        for key, value in values.items():
            self.record(prefix + key, value)
        return values

    def keep(self, key: str, value):
        """Put a table or curve into ``metrics.json`` without gluing it into the prose."""
        self.metrics[key] = io.to_jsonable(value)
        return value

    def save_metrics(self) -> Path:
        """Write ``metrics.json`` (atomically) with every recorded number."""
        return io.write_json(self.path("metrics.json"), {"chapter": self.name, **self.metrics})
