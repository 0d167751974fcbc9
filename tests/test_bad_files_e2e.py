"""A dataset with broken files runs through chapter 01: each is named, excluded, and nothing is written."""

import hashlib
import subprocess
import sys

import nbformat
import pandas as pd
import pytest

from conftest import ROOT
from cytokit.data import synthetic as synth

pytestmark = pytest.mark.slow


def tree_digest(folder):
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*")):
        h.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            h.update(path.read_bytes())
            h.update(str(path.stat().st_mtime_ns).encode())
    return h.hexdigest()


def test_injected_bad_files_are_reported_and_excluded(tmp_path):
    data = synth.generate(tmp_path / "data", n_images=120, seed=3, progress=False)
    good = next(data.glob("NGS/*/NGS_00001.jpg"))
    bad = {
        "BLA/0001-1000/BLA_09001.jpg": b"",                                  # zero bytes
        "LYT/0001-1000/LYT_09001.jpg": good.read_bytes()[: good.stat().st_size // 2],  # truncated
        "EBO/0001-1000/EBO_09001.jpg": b"this is a text file, not a JPEG\n",  # text named .jpg
    }
    for rel, payload in bad.items():
        (data / rel).write_bytes(payload)
    before = tree_digest(data)

    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "cytokit.cli", "run", "--profile", "smoke", "--only", "01",
                           "--data-dir", str(data), "--out", str(out), "--no-book"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert tree_digest(data) == before, "the dataset folder was changed"

    manifest = pd.read_csv(out / "01_data" / "manifest.csv")
    for rel in bad:
        row = manifest[manifest["path"] == rel].iloc[0]
        assert row["status"] == "bad" and row["split"] == "excluded", row.to_dict()
    reasons = manifest.set_index("path").loc[list(bad), "reason"].str.lower().tolist()
    assert "zero" in reasons[0] and "truncat" in reasons[1] and "not an image" in reasons[2]

    executed = nbformat.read(out / "01_data" / "01_data.ipynb", as_version=4)
    shown = "".join(str(o.get("data", {}).get("text/html", "")) + str(o.get("text", ""))
                    for c in executed.cells for o in c.get("outputs", []))
    for rel in bad:
        assert rel in shown, f"{rel} is not named in the chapter's report"
