"""The SYNTH.json mark that says a dataset folder was drawn by ``cytokit synth``, read as hostile input."""

from __future__ import annotations

import json
from numbers import Integral
from pathlib import Path

GENERATOR = "cytokit.synth"  # recorded in SYNTH.json; identifies the format, not a module
META_FILE = "SYNTH.json"


def read_meta(data_dir) -> dict | None:
    """The dataset's SYNTH.json, or None for a real (non-synthetic) dataset; a ValueError naming the file
    when it is not one that ``cytokit synth`` wrote (unreadable, too large, or a field of the wrong kind)."""
    path = Path(data_dir) / META_FILE
    if not path.is_file():
        return None
    fix = "it is not a SYNTH.json that `cytokit synth` wrote: move it away, or choose another folder"
    if path.stat().st_size > MAX_META_BYTES:
        raise ValueError(f"{path} is {path.stat().st_size:,} bytes (a SYNTH.json is under 2 KB): {fix}")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as err:
        raise ValueError(f"{path} is unreadable ({str(err)[:80]}): {fix}") from None
    problem = _meta_problem(meta)
    if problem:
        raise ValueError(f"{path} {problem}: {fix}")
    return meta


#: Largest SYNTH.json read; the ones written are a few hundred bytes.
MAX_META_BYTES = 64 * 2**10


def _meta_problem(meta) -> str:
    """What is wrong with a SYNTH.json's content, or "" (the fields :func:`masks` and the chapters read)."""
    if not isinstance(meta, dict):
        return f"holds a {type(meta).__name__}, not a mapping"
    ints = {"seed": meta.get("seed"), "size": meta.get("size"), "n_images": meta.get("n_images")}
    bad = [k for k, v in ints.items() if isinstance(v, bool) or not isinstance(v, Integral) or v < 0]
    difficulty = meta.get("difficulty")
    if isinstance(difficulty, bool) or not isinstance(difficulty, (int, float)) or not 0 <= difficulty <= 1:
        bad.append("difficulty")
    counts = meta.get("counts")
    if not isinstance(counts, dict) or not all(isinstance(k, str) and isinstance(v, Integral)
                                               and not isinstance(v, bool) and v >= 0 for k, v in counts.items()):
        bad.append("counts")
    if meta.get("generator") != GENERATOR:
        bad.append("generator")
    return f"has no valid {', '.join(bad)}" if bad else ""
