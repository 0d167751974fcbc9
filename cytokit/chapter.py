"""A chapter's place in a run: its artifact folder, its upstream inputs, its metrics.

Every chapter writes under ``RUN_DIR/<NN_name>/`` and reads earlier chapters'
artifacts from their folders, so a notebook behaves the same in JupyterLab (default
run folder ``runs/demo``) and under the runner (``run_dir`` injected by papermill).
"""

from __future__ import annotations

from pathlib import Path

from cytokit import io, paths


class MissingArtifact(FileNotFoundError):
    """An earlier chapter's output is absent: the message says which chapter to run."""


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

    def dataset(self):
        """Chapter 01's split: ``(manifest, data_dir, class_names)`` for later chapters."""
        from cytokit import data

        manifest = data.read_manifest(self.upstream("01_data", "manifest.csv"))
        root = Path(self.upstream_metrics("01_data")["data_dir"])
        if not root.is_dir():
            raise MissingArtifact(f"the dataset folder {root} used by chapter 01 is gone; run chapter 01 again")
        return manifest, root, data.class_names(manifest)

    def record(self, key: str, value):
        """Keep a headline number for ``metrics.json`` and glue it for the prose.

        Numbers are pasted with ``{glue:text}`key:.1%``` (a format spec is optional);
        strings are glued as Markdown and pasted with ``{glue:md}`key```.
        """
        if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            value = value.item()  # numpy scalars would paste as "np.float64(...)"
        self.metrics[key] = value
        glue(key, value)
        return value

    def keep(self, key: str, value):
        """Put a table or curve into ``metrics.json`` without gluing it into the prose."""
        from cytokit.metrics import to_jsonable

        self.metrics[key] = to_jsonable(value)
        return value

    def save_metrics(self) -> Path:
        """Write ``metrics.json`` (atomically) with every recorded number."""
        return io.write_json(self.path("metrics.json"), {"chapter": self.name, **self.metrics})


def glue(key: str, value, display: bool = False):
    """myst-nb ``glue`` when running in a kernel; a no-op elsewhere (tests, scripts)."""
    try:
        from IPython import get_ipython

        if get_ipython() is None:
            return value
        from myst_nb import glue as _glue

        if isinstance(value, str):
            _glue(key, _Markdown(value), display=display)
        else:
            _glue(key, value, display=display)
    except ImportError:
        pass
    return value


class _Markdown:
    """Text glued as Markdown (IPython's ``Markdown`` would open a string that looks like a path)."""

    def __init__(self, text: str):
        self.text = text

    def _repr_markdown_(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text
