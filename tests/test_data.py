"""Indexing, validation, splits and manifests, on small trees built in tmp_path."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cytokit import data
from cytokit.data import census, tree, validation
from cytokit.data.manifest import MANIFEST_COLUMNS
from cytokit.data.taxonomy import CODES

RNG = np.random.default_rng(1)


def write_jpeg(path, size=(250, 250), mode="RGB", fmt="JPEG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(RNG.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).convert(mode)
    img.save(path, format=fmt)
    return path


def nested_tree(root, counts):
    """TCIA layout: CLASS/0001-1000/CLASS_00001.jpg."""
    for cls, n in counts.items():
        for i in range(1, n + 1):
            write_jpeg(root / cls / "0001-1000" / f"{cls}_{i:05d}.jpg")
    return root


def flat_tree(root, counts):
    """Small-class layout: CLASS/CLASS_00001.jpg."""
    for cls, n in counts.items():
        for i in range(1, n + 1):
            write_jpeg(root / cls / f"{cls}_{i:05d}.jpg")
    return root


def snapshot(root):
    """Every file's bytes hash, size and mtime, and every folder's listing and mtime."""
    state = {}
    for folder, dirs, files in os.walk(root):
        st = os.stat(folder)
        state[folder] = (sorted(dirs), sorted(files), st.st_mtime_ns)
        for name in files:
            path = os.path.join(folder, name)
            st = os.stat(path)
            with open(path, "rb") as fh:
                state[path] = (hashlib.sha1(fh.read()).hexdigest(), st.st_size, st.st_mtime_ns)
    return state


def manifest(counts, bad=None):
    """An in-memory validated manifest (no files) for split tests."""
    rows = []
    for cls, n in counts.items():
        for i in range(n):
            status = "bad" if bad and i < bad.get(cls, 0) else "ok"
            rows.append((f"{cls}/{cls}_{i:05d}.jpg", cls, status, f"{cls}{i}"))
    return pd.DataFrame(rows, columns=["path", "cls", "status", "sha1"])


# ---------------------------------------------------------------------------- index


def test_index_nested_and_flat_layouts(tmp_path):
    nested_tree(tmp_path, {"BLA": 3, "NGS": 2})
    flat_tree(tmp_path, {"PMO": 2})
    write_jpeg(tmp_path / "EOS" / "a" / "b" / "EOS_00001.jpg")  # any depth
    df = data.index(tmp_path)
    assert list(df.columns) == ["path", "cls", "bytes"]
    assert df["path"].tolist() == sorted(df["path"])
    assert df["cls"].value_counts().to_dict() == {"BLA": 3, "NGS": 2, "PMO": 2, "EOS": 1}
    assert "BLA/0001-1000/BLA_00001.jpg" in set(df["path"])
    assert "PMO/PMO_00002.jpg" in set(df["path"])
    assert "EOS/a/b/EOS_00001.jpg" in set(df["path"])
    for p, size in zip(df["path"], df["bytes"]):
        assert (tmp_path / p).stat().st_size == size
    assert df.attrs["ignored"] == [] and df.attrs["empty_classes"] == []


def test_index_lists_non_images_and_skips_hidden(tmp_path):
    nested_tree(tmp_path, {"BLA": 2})
    (tmp_path / "SYNTH.json").write_text("{}")
    (tmp_path / "BLA" / ".DS_Store").write_bytes(b"\0")
    (tmp_path / "BLA" / "0001-1000" / "Thumbs.db").write_bytes(b"\0")
    (tmp_path / "BLA" / "notes.txt").write_text("x")
    write_jpeg(tmp_path / "BLA" / "0001-1000" / "._BLA_00001.jpg")  # macOS resource fork
    write_jpeg(tmp_path / "BLA" / ".ipynb_checkpoints" / "BLA_00009.jpg")
    write_jpeg(tmp_path / ".cache" / "BLA_00009.jpg")
    write_jpeg(tmp_path / "BLA" / "BLA_00003.JPG")  # upper-case suffix still an image
    df = data.index(tmp_path)
    assert sorted(df["path"]) == ["BLA/0001-1000/BLA_00001.jpg", "BLA/0001-1000/BLA_00002.jpg",
                                  "BLA/BLA_00003.JPG"]
    assert df.attrs["ignored"] == sorted([
        ".cache/", "SYNTH.json", "BLA/.DS_Store", "BLA/.ipynb_checkpoints/", "BLA/notes.txt",
        "BLA/0001-1000/Thumbs.db", "BLA/0001-1000/._BLA_00001.jpg",
    ])


def test_index_reports_empty_class_folders(tmp_path):
    nested_tree(tmp_path, {"BLA": 1})
    (tmp_path / "KSC" / "0001-1000").mkdir(parents=True)
    df = data.index(tmp_path)
    assert df.attrs["empty_classes"] == ["KSC"]
    assert set(df["cls"]) == {"BLA"}


def test_index_reports_links_instead_of_following_them(tmp_path):
    """A link out of the dataset would read files that are not part of it; one inside, count them twice."""
    nested_tree(tmp_path / "real", {"BLA": 2})
    nested_tree(tmp_path / "ds", {"EOS": 1})
    (tmp_path / "ds" / "BLA").symlink_to(tmp_path / "real" / "BLA")
    (tmp_path / "ds" / "EOS" / "0001-1000" / "loop").symlink_to(tmp_path / "ds" / "EOS")
    df = data.index(tmp_path / "ds")
    assert df["path"].tolist() == ["EOS/0001-1000/EOS_00001.jpg"]
    assert "outside the dataset" in df.attrs["skipped"]["BLA/"]
    assert "inside the dataset" in df.attrs["skipped"]["EOS/0001-1000/loop/"]


def test_index_counts_files_on_a_bar_only_when_listing_is_slow(tmp_path, capsys, monkeypatch):
    nested_tree(tmp_path, {"BLA": 3})
    flat_tree(tmp_path, {"PMO": 2})
    quiet = data.index(tmp_path, progress=False)
    fast = data.index(tmp_path)  # a short listing prints nothing (the bar waits a second)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(tree, "_INDEX_BAR_DELAY", 0)
    shown = data.index(tmp_path)
    err = capsys.readouterr().err
    assert "indexing" in err and "5file" in err.replace(" ", "")
    for df in (fast, shown):
        pd.testing.assert_frame_equal(df, quiet)
        assert df.attrs == quiet.attrs


@pytest.mark.parametrize(
    "setup, words",
    [
        (lambda root: None, "does not exist"),
        (lambda root: root.write_text("x"), "is a file"),
        (lambda root: root.mkdir(), "is empty"),
        (lambda root: (root.mkdir(), (root / "a.jpg").write_text("x")), "no class folders"),
        (lambda root: (root.mkdir(), (root / "BLA").mkdir()), "no images found"),
    ],
)
def test_dataset_errors_name_the_folder(tmp_path, setup, words):
    root = tmp_path / "dataset"
    setup(root)
    with pytest.raises(data.DatasetError, match=words) as err:
        data.index(root)
    assert str(root) in str(err.value)


def test_dataset_error_for_a_class_folder_given_as_data_dir(tmp_path):
    nested_tree(tmp_path, {"BLA": 1})
    with pytest.raises(data.DatasetError, match="single class folder") as err:
        data.index(tmp_path / "BLA")
    assert str(tmp_path) in str(err.value)


def test_dataset_error_for_a_data_dir_one_level_too_high(tmp_path):
    nested_tree(tmp_path / "bone_marrow_cell_dataset", {"BLA": 1, "EOS": 1})
    with pytest.raises(data.DatasetError, match="bone_marrow_cell_dataset"):
        data.index(tmp_path)


# ------------------------------------------------------------------------- validate


@pytest.fixture
def odd_tree(tmp_path):
    """One file of every kind the validation policy names."""
    root = tmp_path / "ds"
    nested_tree(root, {"BLA": 3})
    d = root / "EOS" / "0001-1000"
    write_jpeg(d / "EOS_00001.jpg")
    (d / "EOS_00002.jpg").write_bytes(b"")
    trunc = write_jpeg(d / "EOS_00003.jpg")
    trunc.write_bytes(trunc.read_bytes()[: trunc.stat().st_size // 2])
    (d / "EOS_00004.jpg").write_text("not an image at all\n")
    write_jpeg(d / "EOS_00005.jpg", fmt="PNG")
    write_jpeg(d / "EOS_00006.jpg", mode="L")
    write_jpeg(d / "EOS_00007.png", mode="RGBA", fmt="PNG")
    write_jpeg(d / "EOS_00008.jpg", mode="CMYK")
    write_jpeg(d / "EOS_00009.jpg", size=(200, 180))
    return root


EXPECTED = {
    "EOS_00001.jpg": ("ok", ""),
    "EOS_00002.jpg": ("bad", "zero-byte file"),
    "EOS_00003.jpg": ("bad", "truncated JPEG (no end-of-image marker)"),
    "EOS_00004.jpg": ("bad", "not an image (text)"),
    "EOS_00005.jpg": ("converted", "PNG data named .jpg"),
    "EOS_00006.jpg": ("converted", "grayscale (converted to RGB)"),
    "EOS_00007.png": ("converted", "RGBA (converted)"),
    "EOS_00008.jpg": ("converted", "CMYK (converted)"),
    "EOS_00009.jpg": ("converted", "wrong size 200x180 (expected 250x250; resized by the pipeline)"),
}


def test_validate_flags_each_kind_and_never_writes(odd_tree):
    before = snapshot(odd_tree)
    df = data.validate(odd_tree, data.index(odd_tree), progress=False)
    assert snapshot(odd_tree) == before
    got = {p.rsplit("/", 1)[1]: (s, r) for p, s, r in zip(df["path"], df["status"], df["reason"])}
    for name, expected in EXPECTED.items():
        assert got[name] == expected, name
    assert all(got[f"BLA_0000{i}.jpg"] == ("ok", "") for i in (1, 2, 3))
    for p, sha in zip(df["path"], df["sha1"]):
        assert sha == hashlib.sha1((odd_tree / p).read_bytes()).hexdigest()
    row = df.set_index("path").loc["EOS/0001-1000/EOS_00009.jpg"]
    assert (row["width"], row["height"], row["mode"], row["format"]) == (200, 180, "RGB", "JPEG")


def test_validate_is_the_same_with_one_worker_and_with_progress(odd_tree, capsys):
    idx = data.index(odd_tree)
    one = data.validate(odd_tree, idx, progress=False, workers=1)
    many = data.validate(odd_tree, idx, progress=True, workers=8)
    pd.testing.assert_frame_equal(one, many)
    assert "validating images" in capsys.readouterr().err


def test_validate_keeps_file_order_across_many_small_chunks(odd_tree, monkeypatch):
    idx = data.index(odd_tree)
    whole = data.validate(odd_tree, idx, progress=False, workers=1)
    monkeypatch.setattr(validation, "_CHUNK", 1)  # more chunks than the pool keeps in flight (4 per worker)
    assert len(idx) > 4 * 2
    for workers in (1, 2):
        pd.testing.assert_frame_equal(data.validate(odd_tree, idx, progress=False, workers=workers), whole)


def test_build_manifest_excludes_bad_files(odd_tree):
    df = data.build_manifest(odd_tree, progress=False)
    assert set(df.loc[df["status"] == "bad", "split"]) == {"excluded"}
    assert set(df.loc[df["status"] != "bad", "split"]) <= set(data.SPLITS)
    assert (df["split"] == "excluded").sum() == 3


# ---------------------------------------------------------------------------- split


@pytest.mark.parametrize("n, expected", [(100, (56, 14, 30)), (1000, (560, 140, 300)), (69, (38, 10, 21))])
def test_split_proportions_follow_70_30_then_80_20(n, expected):
    df = data.split(manifest({"BLA": n}))
    counts = df["split"].value_counts()
    assert (counts["train"], counts["val"], counts["test"]) == expected
    assert abs(counts["test"] / n - 0.3) <= 0.5 / n
    assert abs(counts["val"] / (n - counts["test"]) - 0.2) <= 0.5 / (n - counts["test"])
    assert df.attrs["notes"] == []


def test_split_is_deterministic_and_seeded():
    m = manifest({"BLA": 100, "EOS": 40})
    a, b, c = data.split(m, seed=0), data.split(m, seed=0), data.split(m, seed=1)
    assert a["split"].tolist() == b["split"].tolist()
    assert a["split"].tolist() != c["split"].tolist()
    assert a["split"].value_counts().to_dict() == c["split"].value_counts().to_dict()


def test_split_of_a_class_ignores_other_classes_and_row_order():
    small = data.split(manifest({"BLA": 50}), seed=3)
    big = data.split(manifest({"BLA": 50, "EOS": 30}).sample(frac=1, random_state=0), seed=3)
    big = big[big["cls"] == "BLA"].sort_values("path")
    assert small["split"].tolist() == big["split"].tolist()


def test_splits_do_not_overlap_and_cover_usable_rows():
    df = data.split(manifest({"BLA": 100, "EOS": 17}, bad={"EOS": 2}))
    groups = {s: set(df.loc[df["split"] == s, "path"]) for s in ("train", "val", "test", "excluded")}
    assert sum(len(g) for g in groups.values()) == len(df) == len(set(df["path"]))
    assert groups["excluded"] == set(df.loc[df["status"] == "bad", "path"])
    table = census.split_table(df).set_index("code")
    assert table.loc["EOS", ["images", "train", "val", "test"]].tolist() == [15, 8, 2, 5]  # 17 less 2 bad


# ---------------------------------------------------------------------------- halves of a real sample


def test_halves_cut_every_class_in_two_with_the_odd_image_and_single_images_for_calibration():
    df = manifest({"BLA": 100, "PMO": 69, "MYB": 1, "EOS": 12}, bad={"EOS": 2})
    half = data.halves(df, seed=0)
    got = pd.crosstab(df["cls"], half)
    assert got.loc["BLA", "calibration"] == got.loc["BLA", "report"] == 50
    assert (got.loc["PMO", "calibration"], got.loc["PMO", "report"]) == (35, 34)
    assert (got.loc["MYB", "calibration"], got.loc["MYB", "report"]) == (1, 0)
    assert (got.loc["EOS", "calibration"], got.loc["EOS", "report"], got.loc["EOS", "excluded"]) == (5, 5, 2)
    assert set(half[df["status"] == "bad"]) == {"excluded"}


def test_halves_are_seeded_and_ignore_row_order_other_classes_and_the_split():
    df = manifest({"BLA": 40, "EOS": 30})
    a = data.halves(df, seed=0)
    assert a.tolist() == data.halves(df, seed=0).tolist()
    assert a.tolist() != data.halves(df, seed=1).tolist()
    shuffled = manifest({"BLA": 40, "LYT": 7}).sample(frac=1, random_state=0)
    b = data.halves(shuffled, seed=0)
    bla, bla_b = df["cls"] == "BLA", shuffled["cls"] == "BLA"
    assert dict(zip(df.loc[bla, "path"], a[bla])) == dict(zip(shuffled.loc[bla_b, "path"], b[bla_b]))
    split = data.split(df, seed=0)["split"]
    assert pd.crosstab(split, a).min().min() > 0, "each half mixes every split: the cut is not the split's order"


@pytest.mark.parametrize(
    "n, counts, note",
    [
        (1, (1, 0, 0), "MMZ: 1 usable image, split 1 train / 0 val / 0 test; "
                       "it has no validation and no test image."),
        (2, (1, 0, 1), "MMZ: 2 usable images, split 1 train / 0 val / 1 test; it has no validation image."),
        (3, (1, 1, 1), "MMZ: 3 usable images; rounding alone gives 2 train / 0 val / 1 test, "
                       "the small-class rule gives 1 / 1 / 1."),
        (4, (2, 1, 1), None),
        (5, (2, 1, 2), None),
    ],
)
def test_small_class_rule_and_notes(n, counts, note):
    df = data.split(manifest({"MMZ": n, "BLA": 100}))
    got = df.loc[df["cls"] == "MMZ", "split"].value_counts()
    assert tuple(int(got.get(s, 0)) for s in ("train", "val", "test")) == counts
    assert df.attrs["notes"] == ([note] if note else [])


def test_split_notes_a_class_with_only_bad_images():
    df = data.split(manifest({"KSC": 2, "BLA": 10}, bad={"KSC": 2}))
    assert df.attrs["notes"] == ["KSC: no usable images, so it is in no split."]


def test_split_rejects_impossible_fractions():
    with pytest.raises(ValueError, match="test_fraction"):
        data.split(manifest({"BLA": 10}), test_fraction=1.0)


# ------------------------------------------------------------------ leakage, files


def test_leakage_finds_identical_bytes_in_two_splits():
    df = data.split(manifest({"BLA": 100}))
    train = df.index[df["split"] == "train"]
    test = df.index[df["split"] == "test"]
    df.loc[[train[0], test[0]], "sha1"] = "same"      # leaked
    df.loc[[train[1], train[2]], "sha1"] = "twin"     # duplicate inside one split: no leak
    leaks = data.leakage(df)
    assert list(leaks.columns) == ["sha1", "path", "cls", "split"]
    assert leaks["sha1"].tolist() == ["same", "same"]
    assert sorted(leaks["split"]) == ["test", "train"]
    assert data.leakage(data.split(manifest({"BLA": 100}))).empty


def test_manifest_round_trip(odd_tree, tmp_path):
    df = data.build_manifest(odd_tree, progress=False)
    df.loc[0, "cls"] = "NA"  # a class code pandas would otherwise read as missing
    out = tmp_path / "run" / "manifest.csv"
    data.write_manifest(df, out)
    back = data.read_manifest(out)
    assert list(back.columns) == list(MANIFEST_COLUMNS)
    pd.testing.assert_frame_equal(back, df[list(MANIFEST_COLUMNS)], check_dtype=False)
    assert back["bytes"].dtype == "int64" and back.loc[0, "cls"] == "NA"
    assert sorted(p.name for p in out.parent.iterdir()) == ["manifest.csv"]  # no temp file left


def test_read_manifest_errors_name_the_file(tmp_path):
    with pytest.raises(data.DatasetError, match="not found"):
        data.read_manifest(tmp_path / "missing.csv")
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(data.DatasetError, match="x.csv"):
        data.read_manifest(tmp_path / "x.csv")


def test_split_table_counts_and_shares():
    s = census.split_table(data.split(manifest({"BLA": 100, "EOS": 10})))
    assert s.columns.tolist() == ["code", "images", "train", "val", "test", "train_share", "val_share",
                                  "test_share"]
    s = s.set_index("code")
    assert s.loc["BLA", ["images", "train", "val", "test"]].tolist() == [100, 56, 14, 30]
    assert s.loc["BLA", "test_share"] == pytest.approx(0.3)
    assert s[["train_share", "val_share", "test_share"]].sum(axis=1).tolist() == pytest.approx([1.0, 1.0])


def test_class_names_known_and_custom():
    assert data.class_names(manifest({"BLA": 1, "PMO": 1})) == list(CODES)
    assert data.class_names(manifest({"cat": 1, "BLA": 1, "ant": 1})) == ["BLA", "ant", "cat"]
