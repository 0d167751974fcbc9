"""The embedded default dataset: synthetic marrow cells generated on demand.

The real 6.8 GB dataset cannot ship with the book, so every chapter falls back to a
synthetic tree in the real layout, generated once per (size, seed, difficulty) into
``data/synthetic/`` and reused afterwards.
"""

from __future__ import annotations

from pathlib import Path

from cytokit import paths
from cytokit.data import synthetic


def _synthetic_dir(n_images: int, seed: int = 0, difficulty: float = 0.5, size: int = 250) -> Path:
    """The cache folder for one synthetic dataset's settings (and the generator's version: a new drawing
    never meets an old one's folder)."""
    name = f"v{synthetic.VERSION}-n{n_images}-seed{seed}-d{difficulty:g}-px{size}"
    return paths.synthetic_root() / name


def resolve(data_dir=None, *, synth_images: int = 3000, synth_seed: int = 0,
            synth_difficulty: float = 0.5, progress: bool = True) -> Path:
    """The dataset a chapter reads: ``data_dir`` when given, else the embedded data.

    A given folder is checked to exist (it is never written to); the embedded data is
    generated the first time it is asked for.
    """
    if data_dir not in (None, ""):
        folder = Path(data_dir).expanduser().resolve()
        if not folder.is_dir():
            raise FileNotFoundError(
                f"data_dir {folder} does not exist or is not a folder; point it at the dataset's "
                "top folder (the one holding ART/, BLA/, ...), see data/README.md"
            )
        return folder
    target = _synthetic_dir(synth_images, synth_seed, synth_difficulty)
    synthetic.generate(target, n_images=synth_images, seed=synth_seed,
                   difficulty=synth_difficulty, progress=progress)
    return target


def is_synthetic(data_dir) -> bool:
    """True for a tree written by :mod:`cytokit synth` (it carries SYNTH.json)."""
    return (Path(data_dir) / synthetic.META_FILE).is_file()
