"""Augmentation: cytokit's on-the-fly upsampled stream vs writing augmented JPEGs to disk.

The study balanced its classes by writing augmented copies of the
minority classes' images to disk (Keras ``ImageDataGenerator``, saved as JPEGs) until
every class had about 25,000 images, then trained from those folders. cytokit writes
nothing: :func:`cytokit.models.augmentation.upsampled_dataset` repeats each class's training files
by index (:func:`cytokit.models.augmentation.balanced_indices`) and transforms every copy afresh
inside tf.data with one random warp per image (:func:`cytokit.models.augmentation.augmenter`,
:mod:`cytokit.models.warp`: flips, rotation, shift and shear composed into one resampling).

Measured side by side in one process, at the study's 250 px, on the training split of
the 2,000 (``--quick``: 500) JPEGs of ``cytokit synth --seed 0`` (written once to
``$TMPDIR/cytokit-bench/`` and reused), with the same augmentation parameters:

- **stream**: one epoch of ``upsampled_dataset(..., augment_originals=True)`` -- every
  sample decoded, augmented and yielded as a float32 training batch (the default
  transforms only the added copies, but it runs the whole batch through the warp, so
  the cost is the same);
- **reference, the same warp to disk**: the same warp and decode, batched in tf.data,
  then each augmented image encoded as a JPEG (quality 75, Pillow's default, which
  ``ImageDataGenerator`` used) and written to a class folder, up to the same target per
  class (only the missing copies are written, as the study did);
- **reference, ImageDataGenerator**: the study's own tool (Keras's legacy
  ``ImageDataGenerator(...).flow(save_to_dir=...)``, scipy transforms one image at a
  time), on a smaller count, with the study's own arguments (``shear_range=0.2`` is
  0.2 degrees there; the shear's size does not change the cost of an affine warp).

The stream and the same-warp-to-disk reference are also measured at the demo profile's 64 px
(the study wrote 250 px files; at 64 px the augmentation is about 15x less work).

Figures: seconds per 10,000 augmented samples (fastest of N rounds after a warm-up), the
ratio reference/stream against the study's approach, ImageDataGenerator writing JPEGs
(target: the stream is faster, ratio > 1; the same-warp reference stands in when a Keras
lacks ImageDataGenerator), the same ratio against the same warp written to disk -- a disk
writer as fast as cytokit's own augmentation, which the study did not have --, and bytes written -- the files' sizes summed over the output folder, and the
process's own ``wchar`` count from ``/proc/self/io`` (every byte passed to write(2))
while each path runs. The stream must write 0 bytes and leave the data folder's tree
(every file's path, size and mtime) unchanged. The reference's files must still be read
and decoded to train on; that read-back is reported too.

    .venv/bin/python bench/augmentation.py [--quick] [--images N] [--target T] [--rounds R]
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(Path(__file__).parent))
from _common import Report, best_of, parser, peak_rss_mb, synth_data  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZE = 250          # the study's image size, the size it wrote its augmented JPEGs at
BATCH = 32
SEED = 0
QUALITY = 75        # Pillow's default JPEG quality, what ImageDataGenerator's save_to_dir wrote
PER = 10_000        # figures are seconds per this many augmented samples
DEMO_SIZE = 64      # the demo profile's image_size


def written_bytes() -> int:
    """Bytes this process has passed to write(2) and friends so far (Linux ``/proc/self/io``)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise RuntimeError("no wchar in /proc/self/io")


def tree(root: Path) -> dict:
    """Every file under ``root``: relative path -> (size, mtime_ns)."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            st = os.stat(os.path.join(dirpath, name))
            out[os.path.relpath(os.path.join(dirpath, name), root)] = (st.st_size, st.st_mtime_ns)
    return out


def folder_bytes(root: Path) -> tuple[int, int]:
    """(files, bytes) under ``root``."""
    t = tree(root)
    return len(t), sum(size for size, _ in t.values())


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=None, help="dataset size (default 2000, --quick 500)")
    p.add_argument("--target", type=int, default=None,
                   help="target images per class (default 64, --quick 16)")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds (default 3, --quick 2)")
    args = p.parse_args()
    n_images = args.images or (500 if args.quick else 2000)
    target = args.target or (16 if args.quick else 64)
    n_rounds = args.rounds or (2 if args.quick else 3)
    idg_count = 64 if args.quick else 256

    report = Report("augmentation", "Augmentation: on-the-fly upsampled stream vs augmented JPEGs written to disk",
                    quick=args.quick)
    t0 = time.perf_counter()
    data_dir = synth_data(n_images)
    report.note(f"data: {n_images} synthetic 250x250 JPEGs (cytokit synth --seed {SEED}) in {data_dir}, "
                f"ready in {time.perf_counter() - t0:.1f} s (generated once, then reused)")

    import keras
    import numpy as np
    import tensorflow as tf

    from cytokit import data
    from cytokit.data import pipeline
    from cytokit.models import augmentation

    AUTOTUNE = tf.data.AUTOTUNE
    manifest = data.split(data.validate(data_dir, data.index(data_dir), progress=False), seed=SEED)
    names = data.class_names(manifest)
    train = data.rows(manifest, "train")
    y = data.labels(manifest, "train", names)
    counts = np.bincount(y, minlength=len(names))
    present = int((counts > 0).sum())
    copies_needed = int(np.maximum(0, target - counts[counts > 0]).sum())
    stream_samples = target * present
    report.note(f"training split: {len(train)} images in {present} classes (largest {counts.max()}, smallest "
                f"{counts[counts > 0].min()}); target {target} per class -> the stream yields {stream_samples} "
                f"augmented samples per epoch, the disk reference writes the {copies_needed} missing copies; "
                f"{SIZE} px, batch {BATCH}, {os.cpu_count()} cores, tf {tf.__version__}, keras {keras.__version__}")

    # ------------------------------------------------------------------ stream
    def make_stream(size):
        return augmentation.upsampled_dataset(manifest, data_dir, size, BATCH, target, class_names=names,
                                              augmenter=augmentation.augmenter(seed=SEED), seed=SEED,
                                              augment_originals=True)

    streams = {SIZE: make_stream(SIZE), DEMO_SIZE: make_stream(DEMO_SIZE)}

    def run_stream(size=SIZE, batches=None) -> int:
        n = 0
        ds = streams[size] if batches is None else streams[size].take(batches)
        for x, _ in ds:
            n += int(x.shape[0])
        return n

    # ------------------------------------------------- reference: layers to disk
    files = np.array([os.path.join(str(data_dir), p) for p in train["path"]])
    rng = np.random.default_rng(SEED)
    plan = []  # (source file, class) for every copy the study would have written
    for c in np.flatnonzero(counts):
        own = np.flatnonzero(y == c)
        extra = max(0, target - len(own))
        plan += [(files[i], names[c]) for i in rng.choice(own, extra, replace=True)]
    plan_files = np.array([f for f, _ in plan])
    plan_cls = np.array([c for _, c in plan])

    def to_jpeg(x):
        return tf.io.encode_jpeg(x, quality=QUALITY)

    def make_ref_ds(size):
        disk_aug = augmentation.augmenter(seed=SEED)
        return (tf.data.Dataset.from_tensor_slices((plan_files, plan_cls))
                .map(lambda f, c: (pipeline.load_image(f, size), c), num_parallel_calls=AUTOTUNE)
                .batch(BATCH)
                .map(lambda x, c: (augmentation.warped(x, disk_aug), c))
                .unbatch()
                .map(lambda x, c: (to_jpeg(x), c), num_parallel_calls=AUTOTUNE)
                .prefetch(AUTOTUNE))

    ref_dss = {SIZE: make_ref_ds(SIZE), DEMO_SIZE: make_ref_ds(DEMO_SIZE)}

    def run_layers_to_disk(out: Path, limit=None, size=SIZE) -> int:
        ref_ds = ref_dss[size]
        for cls in sorted(set(plan_cls)):
            (out / cls).mkdir(parents=True, exist_ok=True)
        n = 0
        for jpeg, cls in (ref_ds if limit is None else ref_ds.take(limit)).as_numpy_iterator():
            n += 1
            with open(out / cls.decode() / f"aug_{n:06d}.jpg", "wb") as fh:
                fh.write(jpeg)
        return n

    # -------------------------------------------- reference: ImageDataGenerator
    try:
        from keras.src.legacy.preprocessing.image import ImageDataGenerator
    except ImportError:  # a Keras without the legacy module
        ImageDataGenerator = None
    from PIL import Image

    def run_idg(out: Path, count: int = idg_count) -> int:
        """The study's tool: per class, flow() over the originals, save_to_dir, until `count` in all."""
        gen = ImageDataGenerator(rotation_range=180, width_shift_range=0.25, height_shift_range=0.25,
                                 shear_range=0.2, horizontal_flip=True, vertical_flip=True, fill_mode="reflect")
        share = plan[:count]
        n = 0
        for cls in sorted({c for _, c in share}):
            srcs = sorted({f for f, c in share if c == cls})
            need = sum(1 for _, c in share if c == cls)
            x = np.stack([np.asarray(Image.open(f).convert("RGB"), np.float32) for f in srcs])
            (out / cls).mkdir(parents=True, exist_ok=True)
            it = gen.flow(x, batch_size=1, shuffle=True, seed=SEED, save_to_dir=str(out / cls),
                          save_prefix="aug", save_format="jpeg")
            for _ in range(need):
                next(it)
                n += 1
        return n

    # ------------------------------------------------------------------ timing
    scratch = Path(tempfile.mkdtemp(prefix="cytokit-bench-aug-"))
    results = {"stream": [], "stream64": [], "layers": [], "layers64": [], "idg": []}
    sizes = {}
    try:
        def timed(kind, fn):
            out = scratch / kind
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            w0 = written_bytes()
            box = {}
            secs = best_of(lambda: box.setdefault("n", fn(out)), 1)
            wrote = written_bytes() - w0
            files_n, nbytes = folder_bytes(out)
            return secs, box["n"], wrote, files_n, nbytes

        before = tree(data_dir)
        # warm-up: trace the functions, warm the page cache
        run_stream(SIZE, 2)
        run_stream(DEMO_SIZE, 2)
        timed("layers", lambda out: run_layers_to_disk(out, 2 * BATCH))
        timed("layers64", lambda out: run_layers_to_disk(out, 2 * BATCH, DEMO_SIZE))
        if ImageDataGenerator is not None:
            timed("idg", lambda out: run_idg(out, 8))
        for _ in range(n_rounds):
            for key, size in (("stream", SIZE), ("stream64", DEMO_SIZE)):
                w0 = written_bytes()
                box = {}
                secs = best_of(lambda: box.setdefault("n", run_stream(size)), 1)
                results[key].append((secs, box["n"], written_bytes() - w0, 0, 0))
            results["layers"].append(timed("layers", run_layers_to_disk))
            results["layers64"].append(timed("layers64", lambda out: run_layers_to_disk(out, size=DEMO_SIZE)))
            if ImageDataGenerator is not None:
                results["idg"].append(timed("idg", run_idg))
        after = tree(data_dir)
        sizes["read_back"] = _read_back(scratch / "layers", keras, SIZE, BATCH)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    unchanged = before == after
    assert unchanged, "the stream must not touch the data folder"
    best = {k: min(v, key=lambda r: r[0] / r[1]) for k, v in results.items() if v}
    per = {k: PER * r[0] / r[1] for k, r in best.items()}
    assert best["stream"][1] == best["stream64"][1] == stream_samples and best["layers"][1] == copies_needed
    assert all(r[2] == 0 for r in results["stream"] + results["stream64"]), "the stream wrote bytes"

    s_secs, s_n, s_wrote, _, _ = best["stream"]
    l_secs, l_n, l_wrote, l_files, l_bytes = best["layers"]
    # The target compares with the study's approach: ImageDataGenerator writing JPEGs.
    ref_kind = "idg" if "idg" in per else "layers"
    ref_label = {"layers": "the same warp to disk", "idg": "the study's ImageDataGenerator to disk"}[ref_kind]

    report.figure("stream: upsampled_dataset, on the fly", per["stream"], f"s per {PER:,} samples",
                  ratio=per[ref_kind] / per["stream"], ratio_of=f"reference ({ref_label}) / stream",
                  target="> 1 (stream faster)", met=per["stream"] < per[ref_kind])
    report.figure("reference: the same warp, JPEG files to disk", per["layers"], f"s per {PER:,} samples",
                  ratio=per["layers"] / per["stream"], ratio_of="stream")
    if "idg" in per:
        i_secs, i_n, i_wrote, i_files, i_bytes = best["idg"]
        report.figure("reference: ImageDataGenerator(save_to_dir), the study's tool", per["idg"],
                      f"s per {PER:,} samples", ratio=per["idg"] / per["stream"], ratio_of="stream")
    else:
        report.note("ImageDataGenerator is not available in this Keras; that reference was skipped")
    rb_secs, rb_n = sizes["read_back"]
    report.figure("reference, reading its files back for one epoch (image_dataset_from_directory)",
                  PER * rb_secs / rb_n, f"s per {PER:,} samples")
    report.figure("reference, write + one read back", per["layers"] + PER * rb_secs / rb_n,
                  f"s per {PER:,} samples", ratio=(per["layers"] + PER * rb_secs / rb_n) / per["stream"],
                  ratio_of="stream")

    report.figure(f"stream at the demo profile's {DEMO_SIZE} px", per["stream64"], f"s per {PER:,} samples",
                  ratio=per["layers64"] / per["stream64"], ratio_of=f"same warp to disk at {DEMO_SIZE} px / stream")
    report.figure(f"reference: the same warp, JPEG files to disk, {DEMO_SIZE} px", per["layers64"],
                  f"s per {PER:,} samples", ratio=per["layers64"] / per["stream64"], ratio_of="stream")
    s_wrote = max(r[2] for r in results["stream"] + results["stream64"])
    report.figure("stream: bytes written (wchar, whole process, during every epoch)", s_wrote, "bytes",
                  target="0", met=s_wrote == 0)
    report.figure("stream: data folder unchanged (paths, sizes, mtimes)", float(unchanged), "bool",
                  target="1", met=unchanged)
    report.figure("reference (same warp): bytes of JPEGs written", l_bytes, "bytes")
    report.figure(f"reference (same warp): bytes per {PER:,} samples", PER * l_bytes / l_n, "bytes")
    report.note(f"reference (same warp): {l_files} files, {l_bytes / 1e6:.1f} MB in the folder, "
                f"wchar {l_wrote / 1e6:.1f} MB; at the study's 25,000 per class x 21 classes that is about "
                f"{25_000 * 21 * l_bytes / l_n / 1e9:.1f} GB of JPEGs")
    if "idg" in per:
        report.note(f"reference (ImageDataGenerator): {i_files} files, {i_bytes / 1e6:.2f} MB for {i_n} samples, "
                    f"wchar {i_wrote / 1e6:.2f} MB")
    report.note("measured: stream " + ", ".join(f"{n} samples in {s:.1f} s" for s, n, *_ in results["stream"])
                + "; same warp to disk " + ", ".join(f"{n} in {s:.1f} s" for s, n, *_ in results["layers"])
                + ("; ImageDataGenerator " + ", ".join(f"{n} in {s:.1f} s" for s, n, *_ in results["idg"])
                   if results["idg"] else "")
                + f"; read back {rb_n} in {rb_secs:.1f} s")
    read = PER * rb_secs / rb_n
    report.note(f"over E epochs the disk route costs one write ({per[ref_kind]:.0f} s per {PER:,}) plus E reads "
                f"({read:.0f} s each), the stream E x {per['stream']:.0f} s at {SIZE} px; but the files repeat the "
                "same augmented copies every epoch, while the stream draws fresh transforms each time")
    one_ms, five_ms = _augment_cost(tf, keras, augmentation, SIZE, BATCH)
    report.figure(f"augmentation alone, one batch of {BATCH} at {SIZE} px: cytokit's composed warp", one_ms,
                  "ms", ratio=five_ms / one_ms, ratio_of="five Keras layers (flip, flip, rotation, shift, shear)")
    report.note(f"the same transforms as five Keras preprocessing layers take {five_ms:.0f} ms per batch: five "
                "passes over the float32 batch, three of them interpolating; cytokit composes them into one "
                "matrix per image and resamples once, as ImageDataGenerator does. The warp alone is "
                f"{one_ms / BATCH * PER / 1e3:.0f} s per {PER:,} samples on this machine: the floor under both the "
                "stream and the same warp written to disk")
    report.note(f"peak RSS {peak_rss_mb():.0f} MB")
    print(report.save(args.out))


def _augment_cost(tf, keras, augmentation, size: int, batch: int) -> tuple[float, float]:
    """ms per batch: cytokit's augmenter (one composed warp) vs the same transforms as five Keras layers."""
    import numpy as np

    x = tf.constant(np.random.default_rng(SEED).random((batch, size, size, 3), dtype=np.float32))
    five_layers = keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=SEED), keras.layers.RandomFlip("vertical", seed=SEED + 1),
        keras.layers.RandomRotation(0.5, fill_mode="reflect", seed=SEED + 2),
        keras.layers.RandomTranslation(0.25, 0.25, fill_mode="reflect", seed=SEED + 3),
        keras.layers.RandomShear(x_factor=0.2, y_factor=0.2, fill_mode="reflect", seed=SEED + 4)])
    aug = augmentation.augmenter(seed=SEED)
    one = tf.function(lambda v: aug(v, training=True))
    five = tf.function(lambda v: five_layers(v, training=True))
    one(x), five(x)
    return tuple(1e3 * min(best_of(lambda f=f: f(x).shape, 1) for _ in range(3)) for f in (one, five))


def _read_back(folder: Path, keras, size: int, batch: int) -> tuple[float, int]:
    """Seconds and images to read the written JPEGs once as a training stream (after a warm-up)."""
    ds = keras.utils.image_dataset_from_directory(folder, image_size=(size, size), batch_size=batch,
                                                  shuffle=False, verbose=False)

    def run():
        return sum(int(x.shape[0]) for x, _ in ds)

    n = run()
    return best_of(run, 2), n


if __name__ == "__main__":
    main()
