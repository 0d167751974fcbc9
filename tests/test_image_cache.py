"""Decoded-image caches: the same pixels as decoding, nothing decoded twice, files written atomically and reused."""

from __future__ import annotations

import os
import shutil
import threading

import numpy as np
import pytest
from PIL import Image

tf = pytest.importorskip("tensorflow")

from cytokit import data  # noqa: E402
from cytokit.data import image_cache, pipeline  # noqa: E402


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """Three classes of 250 px JPEGs in the real layout."""
    root = tmp_path_factory.mktemp("cache-src")
    rng = np.random.default_rng(5)
    for cls, n in {"BLA": 10, "NGS": 8, "PMO": 6}.items():
        for i in range(n):
            path = root / cls / "0001-1000" / f"{cls}_{i:05d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (250, 250, 3), dtype=np.uint8)).save(path, quality=90)
    return root


@pytest.fixture
def tree(source, tmp_path):
    """A private copy of the images (tests below delete files) and its manifest."""
    root = tmp_path / "ds"
    shutil.copytree(source, root)
    return root, data.build_manifest(root, seed=0, progress=False)


def batches(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


@pytest.mark.parametrize("cache", [True, "memory", "disk", "auto"])
@pytest.mark.parametrize("size", [250, 64])
def test_cached_batches_equal_decoded_ones(tree, tmp_path, cache, size):
    root, manifest = tree
    plain = batches(pipeline.dataset(manifest, root, "train", size, 5))
    ds = pipeline.dataset(manifest, root, "train", size, 5, cache=cache, cache_dir=tmp_path / "cache")
    assert ds.element_spec[0].dtype == tf.uint8 and ds.element_spec[0].shape.as_list() == [None, size, size, 3]
    for _ in range(2):  # every epoch
        got = batches(ds)
        np.testing.assert_array_equal(got[0], plain[0])
        np.testing.assert_array_equal(got[1], plain[1])
    shuffled = batches(pipeline.dataset(manifest, root, "train", size, 5, shuffle=True, seed=3, cache=cache,
                                        cache_dir=tmp_path / "cache"))
    assert shuffled[1].tolist() != plain[1].tolist() and sorted(shuffled[1]) == sorted(plain[1])
    for img, label in zip(*shuffled):  # each image keeps its label
        assert plain[1][np.flatnonzero(np.all(plain[0] == img, axis=(1, 2, 3)))[0]] == label
    on_disk = sorted(p.name for p in (tmp_path / "cache").glob("*.npy")) if (tmp_path / "cache").exists() else []
    assert len(on_disk) == (cache == "disk")


def test_after_the_first_pass_no_file_is_read_again(tree, tmp_path):
    """The disk cache of a split serves every later epoch and every later dataset, even with the JPEGs gone."""
    root, manifest = tree
    first = batches(pipeline.dataset(manifest, root, "train", 64, 4, cache="disk", cache_dir=tmp_path / "c"))
    for p in root.rglob("*.jpg"):
        p.unlink()
    again = pipeline.dataset(manifest, root, "train", 64, 4, shuffle=True, seed=1, cache="disk",
                             cache_dir=tmp_path / "c")
    for _ in range(2):
        x, y = batches(again)
        assert sorted(y.tolist()) == sorted(first[1].tolist()) and len(x) == len(first[0])
    with pytest.raises(tf.errors.NotFoundError):  # without the cache the files are needed
        batches(pipeline.dataset(manifest, root, "train", 64, 4))


def test_a_changed_file_or_size_gets_its_own_cache(tree, tmp_path):
    root, manifest = tree
    cache = tmp_path / "c"
    pipeline.decoded(manifest, root, "train", 64, "disk", cache)
    pipeline.decoded(manifest, root, "train", 64, "disk", cache)  # reused: still one file
    assert len(list(cache.glob("*.npy"))) == 1
    pipeline.decoded(manifest, root, "train", 32, "disk", cache)
    changed = manifest.copy()
    changed.loc[changed.index[0], "sha1"] = "0" * 40
    pipeline.decoded(changed, root, "train", 64, "disk", cache)
    names = sorted(p.name for p in cache.glob("*.npy"))
    assert len(names) == 3 and all(n.startswith("train-") for n in names)
    assert not list(cache.glob("*.tmp-*"))


def test_a_killed_fill_leaves_nothing_that_looks_finished(tmp_path):
    target = tmp_path / "train-8px-2-0123456789abcdef0123.npy"
    stale = target.with_name(target.name + ".tmp-99999")
    stale.write_bytes(b"half a cache from a killed run")

    def dies(out):
        out[0] = 7
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        image_cache.on_disk(target, (2, 8, 8, 3), dies)
    assert not target.exists() and not stale.exists() and not list(tmp_path.glob("*.tmp-*"))
    got = image_cache.on_disk(target, (2, 8, 8, 3), lambda out: out.fill(9))
    assert got.dtype == np.uint8 and (np.asarray(got) == 9).all() and not got.flags.writeable


def test_processes_filling_one_cache_decode_it_once(tmp_path):
    target = tmp_path / "train-8px-4-0123456789abcdef0123.npy"
    fills = []

    def fill(out):
        fills.append(1)
        out.fill(3)

    results = []
    threads = [threading.Thread(target=lambda: results.append(image_cache.on_disk(target, (4, 8, 8, 3), fill)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(fills) == 1 and len(results) == 4 and all((np.asarray(r) == 3).all() for r in results)


def test_a_cache_of_another_shape_is_not_read(tmp_path):
    target = tmp_path / "train-8px-4-0123456789abcdef0123.npy"
    np.save(target, np.zeros((3, 8, 8, 3), np.uint8))
    got = image_cache.on_disk(target, (4, 8, 8, 3), lambda out: out.fill(1))
    assert got.shape == (4, 8, 8, 3) and (np.asarray(got) == 1).all()


def test_auto_takes_memory_when_the_split_fits_in_half_of_it():
    need = image_cache.nbytes(1000, 250)
    assert need == 1000 * 250 * 250 * 3
    assert image_cache.choose("auto", 1000, 250, available=2 * need) == "memory"
    assert image_cache.choose("auto", 1000, 250, available=2 * need - 1) == "disk"
    assert image_cache.choose(True, 1000, 250, available=0) == "memory"
    assert image_cache.choose(False, 1000, 250) is None
    assert image_cache.choose("disk", 1, 8) == "disk"
    assert image_cache.available_memory() > 0


@pytest.mark.parametrize("bad", ["yes", "", 1, 0.5])
def test_unknown_cache_values_are_refused(bad):
    with pytest.raises(ValueError, match="cache_images"):
        image_cache.mode(bad)


def test_a_disk_cache_needs_a_folder(tree, tmp_path, monkeypatch):
    root, manifest = tree
    monkeypatch.delenv(image_cache.CACHE_DIR_ENV, raising=False)
    with pytest.raises(image_cache.CacheError, match=image_cache.CACHE_DIR_ENV):
        pipeline.dataset(manifest, root, "val", 32, 4, cache="disk")
    monkeypatch.setenv(image_cache.CACHE_DIR_ENV, str(tmp_path / "run" / "image_cache"))
    pipeline.dataset(manifest, root, "val", 32, 4, cache="disk")
    assert len(list((tmp_path / "run" / "image_cache").glob("val-32px-*.npy"))) == 1
    assert not any(p.suffix == ".npy" for p in root.rglob("*"))  # never beside the dataset


def test_a_full_disk_is_refused_before_writing(tmp_path, monkeypatch):
    monkeypatch.setattr(image_cache, "_free_bytes", lambda d: 10)
    with pytest.raises(image_cache.CacheError, match="GB free"):
        image_cache.on_disk(tmp_path / "train-8px-4-0123456789abcdef0123.npy", (4, 8, 8, 3), lambda out: None)
    assert not list(tmp_path.glob("*.npy*tmp*"))


def test_remove_deletes_only_the_caches(tmp_path):
    cache = tmp_path / "image_cache"
    image_cache.on_disk(cache / "val-8px-1-0123456789abcdef0123.npy", (1, 8, 8, 3), lambda out: out.fill(0))
    (cache / "notes.txt").write_text("a user's file")
    gone = image_cache.remove(cache)
    assert sorted(p.name for p in gone) == ["val-8px-1-0123456789abcdef0123.npy",
                                            "val-8px-1-0123456789abcdef0123.npy.lock"]
    assert [p.name for p in cache.iterdir()] == ["notes.txt"]
    (cache / "notes.txt").unlink()
    image_cache.on_disk(cache / "val-8px-1-0123456789abcdef0123.npy", (1, 8, 8, 3), lambda out: out.fill(0))
    image_cache.remove(cache)
    assert not cache.exists()


def test_opening_a_chapter_leaves_the_environment_alone(tmp_path, monkeypatch):
    """The run's disk cache reaches the pipeline through the chapter's data, not a variable set for the process."""
    from cytokit.book.chapter import Chapter

    monkeypatch.delenv(image_cache.CACHE_DIR_ENV, raising=False)
    before = dict(os.environ)
    Chapter("02_baseline", tmp_path / "run")
    assert dict(os.environ) == before
