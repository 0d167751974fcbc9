"""Tests of cytokit.data.synthetic: counts, the real layout, determinism, safety, masks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from cytokit.data import synthetic as synth
from cytokit.data.synthetic import layout, writer
from cytokit.data.taxonomy import CLASSES, CODES, get

REAL_SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "real-sample"
N_SMALL = 21 * 3 + 12  # every class at its floor plus a few for the big ones


def _tree_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory) -> Path:
    """One small synthetic dataset shared by the read-only tests (built in-process)."""
    return synth.generate(
        tmp_path_factory.mktemp("synth") / "data", N_SMALL, seed=3, progress=False, workers=1
    )


# --- class_counts ------------------------------------------------------------------


@pytest.mark.parametrize("n", [63, 75, 500, 3000, 10_000])
def test_class_counts_sum_floor_and_order(n):
    counts = synth.class_counts(n)
    assert list(counts) == list(CODES)
    assert sum(counts.values()) == n
    assert min(counts.values()) >= 3
    real = {c.code: c.study_images for c in CLASSES}
    for a in CODES:  # never more images for a class that is rarer in the real data
        for b in CODES:
            if real[a] > real[b]:
                assert counts[a] >= counts[b], (a, b, counts)


def test_class_counts_rare_classes_stay_at_floor():
    counts = synth.class_counts(3000, floor=5)
    for code in ("ABE", "KSC", "FGC", "LYI"):
        assert counts[code] == 5
    assert counts["NGS"] > counts["BLA"] > counts["MON"]
    assert counts["NGS"] == pytest.approx(3000 * get("NGS").study_percent / 100, rel=0.05)


def test_class_counts_rejects_too_few_images():
    with pytest.raises(ValueError, match="at least 63"):
        synth.class_counts(62)


# --- layout --------------------------------------------------------------------------


def test_relpath_follows_real_layout():
    assert synth.relpath("BLA", 1) == "BLA/0001-1000/BLA_00001.jpg"
    assert synth.relpath("BLA", 1000) == "BLA/0001-1000/BLA_01000.jpg"
    assert synth.relpath("BLA", 1001) == "BLA/1001-2000/BLA_01001.jpg"
    assert synth.relpath("NGS", 12345) == "NGS/12001-13000/NGS_12345.jpg"
    assert synth.relpath("ABE", 1) == "ABE/ABE_00001.jpg"
    assert synth.relpath("BAS", 2) == "BAS/BAS_00002.jpg"
    with pytest.raises(ValueError):
        synth.relpath("BLA", 0)
    with pytest.raises(KeyError):
        synth.relpath("XYZ", 1)


def test_relpath_matches_real_sample_names():
    if not REAL_SAMPLE.is_dir():
        pytest.skip(f"real sample not found at {REAL_SAMPLE}")
    for path in sorted(REAL_SAMPLE.rglob("*.jpg"))[::25]:
        code, index = layout.parse(path.name)
        assert path.relative_to(REAL_SAMPLE).as_posix() == synth.relpath(code, index)


def test_generated_tree_layout(small_tree):
    counts = synth.read_meta(small_tree)["counts"]
    assert sorted(p.name for p in small_tree.iterdir() if p.is_dir()) == sorted(CODES)
    files = sorted(small_tree.rglob("*.jpg"))
    assert len(files) == N_SMALL == sum(counts.values())
    expected = {synth.relpath(c, i) for c in CODES for i in range(1, counts[c] + 1)}
    assert {p.relative_to(small_tree).as_posix() for p in files} == expected
    for code in CODES:
        ranges = [p for p in (small_tree / code).iterdir() if p.is_dir()]
        if get(code).study_images > 1000:
            assert [p.name for p in ranges] == ["0001-1000"]
        else:
            assert ranges == []
    for p in files[::7]:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        assert img is not None and img.shape == (250, 250, 3) and img.dtype == np.uint8


def test_meta_file(small_tree):
    meta = json.loads((small_tree / "SYNTH.json").read_text())
    assert meta["generator"] == "cytokit.synth" and meta["version"] == writer.VERSION == 2
    assert (meta["seed"], meta["size"], meta["difficulty"], meta["n_images"]) == (3, 250, 0.5, N_SMALL)
    assert meta["counts"] == synth.class_counts(N_SMALL)
    assert synth.read_meta(small_tree.parent) is None


# --- determinism ---------------------------------------------------------------------


def test_same_seed_same_bytes_whatever_the_workers(tmp_path, small_tree):
    again = synth.generate(tmp_path / "b", N_SMALL, seed=3, progress=False, workers=2)
    assert _tree_hashes(again) == _tree_hashes(small_tree)


def test_other_seed_other_images(tmp_path, small_tree):
    other = synth.generate(tmp_path / "c", N_SMALL, seed=4, progress=False, workers=1)
    a, b = _tree_hashes(small_tree), _tree_hashes(other)
    assert a.keys() == b.keys()
    assert sum(a[k] != b[k] for k in a if k.endswith(".jpg")) == N_SMALL


def test_render_is_a_pure_function():
    a, b = synth.render("NGS", 5, seed=1), synth.render("NGS", 5, seed=1)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.cell_mask, b.cell_mask)
    assert not np.array_equal(a.image, synth.render("NGS", 6, seed=1).image)
    small = synth.render("LYT", 1, size=64)
    assert small.image.shape == (64, 64, 3) and small.cell_mask.shape == (64, 64)


def test_render_rejects_bad_arguments():
    with pytest.raises(KeyError):
        synth.render("XYZ", 1)
    with pytest.raises(ValueError):
        synth.render("BLA", 1, difficulty=1.5)


# --- safety ----------------------------------------------------------------------------


def test_refuses_foreign_nonempty_folder(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="refusing"):
        synth.generate(foreign, N_SMALL, progress=False, workers=1)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]  # no temporary folder left


def test_refuses_dataset_with_other_settings(small_tree):
    with pytest.raises(FileExistsError):
        synth.generate(small_tree, N_SMALL, seed=99, progress=False, workers=1)


def test_cache_hit_returns_without_writing(small_tree):
    before = {p: p.stat().st_mtime_ns for p in small_tree.rglob("*")}
    assert synth.generate(small_tree, N_SMALL, seed=3, progress=False) == small_tree
    assert {p: p.stat().st_mtime_ns for p in small_tree.rglob("*")} == before


def test_empty_existing_folder_is_used(tmp_path):
    target = tmp_path / "empty"
    target.mkdir()
    out = synth.generate(target, 63, seed=0, size=64, progress=False, workers=1)
    assert out == target and len(list(target.rglob("*.jpg"))) == 63
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(writer, "_write_chunk", boom)
    with pytest.raises(KeyboardInterrupt):
        synth.generate(tmp_path / "d", 63, progress=False, workers=1)
    assert list(tmp_path.iterdir()) == []


# --- masks -----------------------------------------------------------------------------


def test_masks_regenerate_render_masks(small_tree):
    meta = synth.read_meta(small_tree)
    for code in CODES:
        rel = synth.relpath(code, meta["counts"][code])
        cell, nucleus = synth.masks(small_tree, rel)
        ref = synth.render(code, meta["counts"][code], seed=3)
        assert np.array_equal(cell, ref.cell_mask) and np.array_equal(nucleus, ref.nucleus_mask)
        assert cell.dtype == bool and cell.shape == (250, 250)


def test_masks_refuse_real_data(tmp_path):
    with pytest.raises(ValueError, match="not a synthetic dataset"):
        synth.masks(tmp_path, "BLA/0001-1000/BLA_00001.jpg")


@pytest.mark.parametrize("code", CODES)
def test_masks_are_plausible(code):
    for index in (1, 2, 3):
        cell = synth.render(code, index, seed=7)
        area, nuc = cell.cell_mask.mean(), cell.nucleus_mask.mean()
        if code not in ("ART", "NIF"):
            assert not (cell.nucleus_mask & ~cell.cell_mask).any()
            assert 0.03 < area < 0.70, area
            assert 0.0 < nuc <= area
        ys, xs = np.nonzero(cell.cell_mask)
        assert len(xs) > 0
        assert 60 < xs.mean() < 190 and 60 < ys.mean() < 190  # the labelled cell is central


def test_labelled_cell_is_visible_in_the_image():
    """Inside the cell mask the image is darker (stained) than the field around it."""
    for code in ("BLA", "LYT", "NGS", "EOS", "PLM"):
        cell = synth.render(code, 1, seed=0)
        grey = cell.image.mean(axis=2)
        assert grey[cell.nucleus_mask].mean() < grey[~cell.cell_mask].mean() - 30


def test_main_synth_prints_summary(tmp_path, capsys):
    out = synth.main_synth(tmp_path / "e", 63, seed=0, size=64, difficulty=0.2, progress=False)
    assert out.is_dir()
    line = capsys.readouterr().out.strip()
    assert "63 images" in line and "21 classes" in line and str(out) in line
