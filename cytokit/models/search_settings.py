"""Chapter 03's search settings, read in one place: the flags of a tuner process and the checks on their values.

``cytokit tune`` (:mod:`cytokit.book.cluster`), each tuner process a local cluster starts
(:mod:`cytokit.models.distributed`), chapter 03 and the benchmarks all make their
:class:`TuneSettings` with :meth:`TuneSettings.parse`. The module loads no TensorFlow, so a
process can refuse bad settings before paying for that import.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

from cytokit.data import image_cache

ROLES = ("chief", "worker")
CHIEF_ID = "chief"
#: The tuner id a plain (non-distributed) search runs as: chapter 03's.
LOCAL_ID = "tuner0"
#: Chapter 03 parameters the search depends on (``cache_images`` is called ``cache`` here).
SEARCH_PARAMETERS = ("image_size", "max_trials", "max_epochs", "patience", "seed", "bn_momentum")
#: Where the search state lives in a run folder, and its Keras Tuner project name.
PROJECT = "random_search"
#: Dtype policies a worker can train under (cytokit.models.network.PRECISIONS).
PRECISIONS = ("float32", "mixed_bfloat16")


@dataclass
class TuneSettings:
    """Everything one tuner process needs; identical on every process but role and id."""

    role: str
    tuner_id: str
    oracle_ip: str
    oracle_port: int
    manifest: Path
    data_dir: Path
    directory: Path
    image_size: int
    max_trials: int
    max_epochs: int
    patience: int
    seed: int
    bn_momentum: float
    cache: bool | str
    precision: str = "float32"

    def __post_init__(self):
        for name in ("manifest", "data_dir", "directory"):
            setattr(self, name, Path(getattr(self, name)).expanduser().absolute())
        for name in ("oracle_port", "image_size", "max_trials", "max_epochs", "patience", "seed"):
            setattr(self, name, int(getattr(self, name)))
        self.bn_momentum, self.tuner_id = float(self.bn_momentum), str(self.tuner_id)
        self.cache = cache_value(self.cache)

    @classmethod
    def parse(cls, values) -> TuneSettings:
        """Checked settings from named values (parsed flags, a profile's and chapter 03's parameters), or a
        ValueError naming what is missing or wrong."""
        values = {k: v for k, v in dict(values).items() if v is not None}
        defaults = {f.name: f.default for f in fields(cls) if f.default is not MISSING}
        missing = [f.name for f in fields(cls) if f.name not in values and f.name not in defaults]
        if missing:
            raise ValueError(f"missing {', '.join('--' + m.replace('_', '-') for m in missing)}")
        return cls(**{f.name: values.get(f.name, defaults.get(f.name)) for f in fields(cls)}).check()

    def check(self) -> TuneSettings:
        """Refuse ids Keras Tuner would misread (it treats any id containing 'chief' as the chief)."""
        if self.role not in ROLES:
            raise ValueError(f"--role must be one of {ROLES}; got {self.role!r}")
        if self.role == "chief" and self.tuner_id != CHIEF_ID:
            raise ValueError(f"the chief's --tuner-id must be {CHIEF_ID!r}; got {self.tuner_id!r}")
        if self.role == "worker" and (CHIEF_ID in self.tuner_id or self.tuner_id in ("", "None")):
            raise ValueError("a worker needs a unique --tuner-id without 'chief' in it (tuner0, tuner1 ...); "
                             f"got {self.tuner_id!r}")
        if not self.manifest.is_file():
            raise ValueError(f"manifest {self.manifest} not found")
        if not self.data_dir.is_dir():
            raise ValueError(f"dataset folder {self.data_dir} not found")
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}")
        return self

    def flags(self, **changes) -> list[str]:
        """These settings (with ``changes``) as the command-line flags :func:`add_arguments` reads."""
        argv = []
        for f in fields(self):
            value = changes.get(f.name, getattr(self, f.name))
            flag = "--" + f.name.replace("_", "-")
            if isinstance(value, bool):
                argv.append(flag if value else "--no-" + flag[2:])
            else:
                argv += [flag, str(value)]
        return argv


def on_this_machine(manifest, data_dir, directory, **search) -> TuneSettings:
    """Settings of a search run on this machine (in this process, or as the chief of a local cluster).

    ``search`` holds :data:`SEARCH_PARAMETERS`, ``cache`` and optionally ``precision``.
    """
    return TuneSettings.parse({"role": "chief", "tuner_id": CHIEF_ID, "oracle_ip": "127.0.0.1", "oracle_port": 0,
                               "manifest": manifest, "data_dir": data_dir, "directory": directory, **search})


def cache_value(value) -> bool | str:
    """``cache_images`` as given on a command line or in settings: True, False, "memory", "disk" or "auto"."""
    if isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    if isinstance(value, os.PathLike):
        raise ValueError(f"cache must be true, false or one of {', '.join(image_cache.MODES)}; a disk cache's "
                         f"folder comes from ${image_cache.CACHE_DIR_ENV}")
    return False if image_cache.mode(value) is None else value


def add_arguments(p: argparse.ArgumentParser, required: bool = True) -> argparse.ArgumentParser:
    """One flag per field of :class:`TuneSettings`."""
    p.add_argument("--role", choices=ROLES, required=required, help="chief: the oracle; worker: trains trials")
    p.add_argument("--tuner-id", help="'chief' for the chief (default); a unique 'tuner0', 'tuner1' ... per worker")
    p.add_argument("--oracle-ip", default="127.0.0.1",
                   help="chief: address to listen on (0.0.0.0 for every interface); worker: the chief's address")
    p.add_argument("--oracle-port", type=int, help="the chief's gRPC port (default 8000; with --local-workers "
                                                    "a free one)")
    p.add_argument("--manifest", type=Path, required=required, help="split manifest CSV (chapter 01's manifest.csv)")
    p.add_argument("--data-dir", type=Path, required=required, help="the dataset's top folder")
    p.add_argument("--directory", type=Path, required=required,
                   help="tuner directory (chapter 03's: RUN_DIR/03_tuning/tuner)")
    for name, kind in (("image-size", int), ("max-trials", int), ("max-epochs", int), ("patience", int),
                       ("seed", int), ("bn-momentum", float)):
        p.add_argument(f"--{name}", type=kind, required=required)
    p.add_argument("--cache", nargs="?", const=True, default=None, type=cache_value,
                   help="keep decoded images: in memory (--cache, --cache memory), in a file (--cache disk: in "
                        f"RUN_DIR/{image_cache.RUN_FOLDER}, or ${image_cache.CACHE_DIR_ENV}) or either (--cache auto); "
                        "chapter 03's cache_images")
    p.add_argument("--no-cache", dest="cache", action="store_const", const=False, help="decode every epoch")
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="Keras dtype policy of the workers (default float32; mixed_bfloat16 on GPUs)")
    return p
