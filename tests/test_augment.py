"""Augmentation keeps images valid and reproducible; upsampling balances classes by index only."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

tf = pytest.importorskip("tensorflow")

from cytokit.models import augmentation  # noqa: E402


def _batch(n=6, size=48, seed=0) -> np.ndarray:
    """Images with structure (a bright off-centre square) so transforms are visible."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, size, size, 3), dtype="float32") * 0.2
    x[:, 5:20, 8:30, :] += 0.8
    return x


def _aug(aug, x) -> np.ndarray:
    return np.asarray(aug(x, training=True))


def test_augmentation_keeps_shape_and_range():
    x = _batch()
    y = _aug(augmentation.augmenter(seed=0), x)
    assert y.shape == x.shape
    assert y.dtype == np.float32
    assert y.min() >= 0.0 and y.max() <= 1.0
    assert not np.allclose(y, x)


def test_uint8_images_are_warped_in_float_and_rounded_back():
    """The pipeline's uint8 batches: each pixel within half a level of the float warp of the same image."""
    x = np.round(_batch() * 255).astype(np.uint8)
    got = np.asarray(augmentation.warped(x, augmentation.augmenter(seed=4)))
    exact = _aug(augmentation.augmenter(seed=4), x.astype(np.float32))
    assert got.dtype == np.uint8 and exact.dtype == np.float32
    assert np.abs(got - exact).max() <= 0.5 + 1e-4
    np.testing.assert_array_equal(got, np.clip(np.round(exact), 0, 255).astype(np.uint8))
    layer = augmentation.augmenter(seed=4).get_layer("warp")  # the layer alone keeps uint8 too
    np.testing.assert_array_equal(np.asarray(layer(x, training=True)), got)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)


def test_variants_take_and_give_uint8():
    image = np.round(_batch(n=1)[0] * 255).astype(np.uint8)
    out = augmentation.variants(image, 3, augmentation.augmenter(seed=0))
    assert len(out) == 3 and all(v.dtype == np.uint8 and v.shape == image.shape for v in out)
    assert not np.array_equal(out[0], image)
    with pytest.raises(TypeError, match="uint8"):
        augmentation.variants(image / 255.0, 3, augmentation.augmenter(seed=0))


def test_augmentation_is_reproducible_under_a_seed():
    """Two fresh augmenters with one seed give the same stream of transforms."""
    x = _batch()
    a, b = augmentation.augmenter(seed=3), augmentation.augmenter(seed=3)
    seq_a = [_aug(a, x) for _ in range(3)]
    seq_b = [_aug(b, x) for _ in range(3)]
    for ya, yb in zip(seq_a, seq_b):
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(seq_a[0], seq_a[1])


def test_different_seeds_differ():
    x = _batch()
    assert not np.array_equal(_aug(augmentation.augmenter(seed=0), x), _aug(augmentation.augmenter(seed=1), x))


def test_eval_mode_is_identity():
    x = _batch()
    np.testing.assert_allclose(np.asarray(augmentation.augmenter()(x, training=False)), x)


def test_flips_mirror_independently():
    """Left-right and top-bottom flips are drawn independently: some outputs are true mirrors."""
    x = _batch(n=32)
    aug = augmentation.augmenter(rotation_deg=0, translate=0, shear=0, seed=0)
    y = _aug(aug, x)
    kinds = set()
    for xi, yi in zip(x, y):
        for name, t in {"none": xi, "h": xi[:, ::-1], "v": xi[::-1], "hv": xi[::-1, ::-1]}.items():
            if np.array_equal(yi, t):
                kinds.add(name)
    assert kinds == {"none", "h", "v", "hv"}


def test_one_warp_layer_carries_the_requested_transforms():
    aug = augmentation.augmenter(flip=False, shear=0)
    assert [layer.name for layer in aug.layers] == ["warp"]
    warp = aug.get_layer("warp")
    assert (warp.rotation_deg, warp.translate, warp.shear, warp.flip) == (180, 0.25, 0, False)


def test_rejects_unknown_fill_mode():
    with pytest.raises(ValueError, match="fill_mode"):
        augmentation.augmenter(fill_mode="mirror")


LABELS = np.array([0] * 3 + [1] * 10 + [2] * 1 + [5] * 7)


@pytest.mark.parametrize("target", [1, 5, 7, 12])
def test_balanced_indices_hit_the_target_within_each_class(target):
    idx = augmentation.balanced_indices(LABELS, target, seed=0)
    counts = Counter(LABELS[idx].tolist())
    assert counts == {c: target for c in (0, 1, 2, 5)}
    for cls in (0, 1, 2, 5):
        own = set(np.flatnonzero(LABELS == cls))
        chosen = idx[LABELS[idx] == cls]
        assert set(chosen) <= own  # no cross-class leakage
        if len(own) <= target:
            assert set(chosen) == own  # every original kept
        else:
            assert len(set(chosen)) == target  # subset without replacement


def test_balanced_indices_keep_each_original_at_least_once_and_shuffle():
    idx = augmentation.balanced_indices(LABELS, 10, seed=0)
    counts = Counter(idx.tolist())
    assert all(counts[i] >= 1 for i in range(len(LABELS)))
    assert not np.array_equal(idx, np.sort(idx))


def test_balanced_indices_are_deterministic():
    a = augmentation.balanced_indices(LABELS, 9, seed=4)
    np.testing.assert_array_equal(a, augmentation.balanced_indices(LABELS, 9, seed=4))
    assert not np.array_equal(a, augmentation.balanced_indices(LABELS, 9, seed=5))


def test_balanced_indices_rejects_empty_target():
    with pytest.raises(ValueError, match="target_per_class"):
        augmentation.balanced_indices(LABELS, 0)


@pytest.fixture
def tiny_tree(tmp_path):
    """A few real JPEGs in the dataset layout, with a manifest of all three splits."""
    cv2 = pytest.importorskip("cv2")
    rows = []
    plan = {"ABE": ["train", "train", "val", "test"], "BLA": ["train"] * 4 + ["val"], "EOS": ["train", "test"]}
    for c, (cls, splits) in enumerate(plan.items()):
        folder = tmp_path / cls / "0001-1000"
        folder.mkdir(parents=True)
        for i, split in enumerate(splits, start=1):
            rel = f"{cls}/0001-1000/{cls}_{i:05d}.jpg"
            # each image's grey value encodes its class, so labels can be checked from pixels
            ramp = np.linspace(-30, 30, 40)[None, :, None]  # structure for the augmenter, mean 0
            img = np.broadcast_to(40 + 80 * c + ramp, (40, 40, 3)).round().astype(np.uint8)
            if split != "train":
                img[:] = 250  # a non-training image would show up as white
            cv2.imwrite(str(tmp_path / rel), img)
            rows.append({"path": rel, "cls": cls, "status": "ok", "split": split})
    rows.append({"path": "BLA/0001-1000/BLA_09999.jpg", "cls": "BLA", "status": "bad", "split": "train"})
    return tmp_path, pd.DataFrame(rows)


def test_upsampled_dataset_reads_only_usable_train_rows(tiny_tree):
    data_dir, manifest = tiny_tree
    names = ["ABE", "BLA", "EOS"]
    ds = augmentation.upsampled_dataset(manifest, data_dir, 32, 4, 5, names, None, seed=0)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    x, y = np.concatenate(xs), np.concatenate(ys)
    assert x.shape == (15, 32, 32, 3) and x.dtype == np.uint8
    assert Counter(y.tolist()) == {0: 5, 1: 5, 2: 5}
    grey = np.round(x.mean(axis=(1, 2, 3)))
    np.testing.assert_allclose(grey, 40 + 80 * y, atol=2)  # pixels belong to the label, none from val/test


def test_upsampled_dataset_augments_reproducibly(tiny_tree):
    data_dir, manifest = tiny_tree

    def run():
        aug = augmentation.augmenter(seed=1)
        ds = augmentation.upsampled_dataset(manifest, data_dir, 32, 4, 3, ["ABE", "BLA", "EOS"], aug, seed=2)
        epochs = [[(x.numpy(), y.numpy()) for x, y in ds] for _ in range(2)]
        return [(np.concatenate([b[0] for b in e]), np.concatenate([b[1] for b in e])) for e in epochs]

    first, second = run(), run()
    for (xa, ya), (xb, yb) in zip(first, second):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)
        assert xa.dtype == np.uint8
    assert Counter(first[0][1].tolist()) == {0: 3, 1: 3, 2: 3}
    assert not np.array_equal(first[0][1], first[1][1])  # reshuffled every epoch


def test_only_the_added_copies_are_transformed():
    idx = np.array([3, 1, 3, 2, 1, 3])
    is_copy = augmentation.copies(idx)
    assert is_copy.sum() == 3
    for i in (1, 2, 3):  # exactly one original per distinct image
        assert (~is_copy[idx == i]).sum() == 1


@pytest.mark.parametrize("cache", [True, "disk"])
def test_cached_stream_gives_the_same_batches_as_reading_files(tiny_tree, tmp_path, cache):
    """Caching decoded originals, in memory or on disk, changes the speed, not one pixel or label of the stream."""
    data_dir, manifest = tiny_tree
    names = ["ABE", "BLA", "EOS"]

    def epochs(cache):
        aug = augmentation.augmenter(seed=1)
        ds = augmentation.upsampled_dataset(manifest, data_dir, 32, 4, 5, names, aug, seed=2, cache=cache,
                                            cache_dir=tmp_path / "cache")
        return [[(x.numpy(), y.numpy()) for x, y in ds] for _ in range(2)]

    read, cached = epochs(False), epochs(cache)
    assert len(list((tmp_path / "cache").glob("train-32px-*.npy"))) == (cache == "disk")
    assert len(read) == len(cached) == 2
    for epoch_read, epoch_cached in zip(read, cached):
        assert len(epoch_read) == len(epoch_cached)
        for (xa, ya), (xb, yb) in zip(epoch_read, epoch_cached):
            np.testing.assert_array_equal(ya, yb)
            np.testing.assert_array_equal(xa, xb)
