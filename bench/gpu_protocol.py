"""The full profile on one GPU: each chapter's epoch at 250 px, parallel trials, bfloat16, the whole study projected.

One command on a GPU machine, sized for one 10-minute slot on an H200 (``--only`` runs a part):

    .venv/bin/python bench/gpu_protocol.py                 # Keras on TensorFlow's GPU build
    KERAS_BACKEND=jax .venv/bin/python bench/gpu_protocol.py   # or on JAX, where TensorFlow sees no GPU

It generates (once, reused) a synthetic tree of 20,000 250 px images in the real layout
(``cytokit synth``), splits it as chapter 01 does (50 % train, 20 % validation, 30 % test),
and measures, on the GPU, with the chapters' own code:

- ``chapters``: decoding the splits into the image cache; chapter 02's epoch (the baseline,
  batch 32); chapter 03's trial epoch at each batch size of the search (32, 64, 128, dropout
  0.4); predicting the validation split; chapter 04's augmented, class-balanced stream at the
  profile's 25,000 images per class (the warp runs in tf.data on the CPU), with and without
  the model, over ``--aug-steps`` batches.
- ``parallel``: the same small search (``--trials-per-worker`` trials per worker, each of
  ``--trial-epochs`` epochs over the training split) run by 1, 2, 4 and 8 workers sharing the
  GPU (:func:`cytokit.models.distributed.local_cluster`): trials per hour, as ratios to one
  worker (goal: >= 3x at 4 workers).
- ``precision``: the baseline trained ``--precision-epochs`` epochs in float32 and in
  mixed_bfloat16 from the same seed on the same split: images/s and validation accuracy.

Then the projection of the ``full`` profile on the real dataset (171,374 images): each
chapter's measured rate times the protocol's counts -- 50 baseline epochs; 60 trials
whose epochs are those the study's own trials ran (its best epoch plus the patience of 5,
at most 200; from ``../shared/reference/study_random_search_trials.csv`` when present, else
the totals written below), divided among the workers by the measured speed-up, plus the
tuned model's refit (17 epochs, as the study's); 55 augmented epochs of 25,000 x 21
images (where the study stopped); chapter 05's predictions. Chapters 01 and 06 are not
timed here (01 is CPU work, see bench/scale.py; the full profile explains 40 images in 06).
A projection is labelled as one: rates measured here, counts from the protocol.

``--quick`` is a CPU dry run (600 images at 64 px, 1 and 2 workers, one epoch each): it
proves the script works, its figures say nothing about a GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402  (after the environment: KERAS_BACKEND picks the backend)

#: The real dataset's images, and chapter 01's split of them.
REAL_IMAGES = 171_374
TRAIN_SHARE, VAL_SHARE, TEST_SHARE = 0.5, 0.2, 0.3
#: The full profile (profiles/full.yaml) and the study's own stopping points.
BASELINE_EPOCHS = 50
TRIALS = 60
MAX_EPOCHS = 200
PATIENCE = 5
REFIT_EPOCHS = 17            # the study's tuned model trained 17 epochs
AUG_PER_CLASS, CLASSES = 25_000, 21
AUG_EPOCHS = 55              # the study's augmented model stopped after 55 epochs
BATCH_SIZES = (32, 64, 128)
#: Epochs the study's 60 trials ran, per batch size (best epoch + 5, at most 200), from its tuner folder;
#: used when ../shared/reference is not beside the project.
STUDY_TRIAL_EPOCHS = {32: 1736, 64: 1438, 128: 1427}
#: The study's wall times on its RTX 3060: baseline 44 min, search 6 d 5 h, augmented 6.5 h.
STUDY_HOURS = {"02_baseline": 44 / 60, "03_tuning": 6 * 24 + 5, "04_augmentation": 6.5}


def study_trial_epochs() -> tuple[dict, str]:
    """Epochs the study's trials ran per batch size, and where the numbers came from."""
    from cytokit.evaluation import study

    trials = study.study_trials()
    if trials is None:
        return dict(STUDY_TRIAL_EPOCHS), "the totals written in bench/gpu_protocol.py"
    epochs = (trials["best_step"] + 1 + PATIENCE).clip(upper=MAX_EPOCHS)
    return {int(b): int(e) for b, e in epochs.groupby(trials["batch_size"]).sum().items()}, \
        "the study's trials (study_random_search_trials.csv)"


def device_line() -> str:
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        devices = [str(d) for d in jax.devices()]
    else:
        import tensorflow as tf

        devices = [d.name for d in tf.config.list_logical_devices()]
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        smi = "no nvidia-smi"
    return f"keras {keras.__version__} on {backend}; devices {devices}; {smi or 'no GPU'}"


class EpochTimes(keras.callbacks.Callback):
    """Each epoch's wall time."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def train_rate(model, ds, n_images: int, epochs: int) -> tuple[float, float, dict]:
    """(images/s of the fastest epoch after the first, seconds of the first, last logs) of ``model.fit``."""
    times = EpochTimes()
    hist = model.fit(ds, epochs=max(2, epochs), verbose=0, callbacks=[times])
    later = min(times.seconds[1:])
    return n_images / later, times.seconds[0], {k: v[-1] for k, v in hist.history.items()}


def network(size: int, dropout=None, lr: float = 1e-3, bn: float = 0.99):
    from cytokit.models.network import build_cnn, compile_model

    return compile_model(build_cnn(21, size, dropout=dropout, bn_momentum=bn), "adam", lr)


def stage_chapters(report, ctx) -> dict:
    """Chapters 02-05's rates at ``ctx['size']`` px on this machine's device."""
    import numpy as np

    from cytokit.data import pipeline
    from cytokit.models import augmentation, training

    m, root, size, names = ctx["manifest"], ctx["root"], ctx["size"], ctx["names"]
    n_train, n_val = ctx["n_train"], ctx["n_val"]
    t0 = time.perf_counter()
    pipeline.decoded(m, root, "train", size, "memory")
    pipeline.decoded(m, root, "val", size, "memory")
    decode = (n_train + n_val) / (time.perf_counter() - t0)
    report.figure(f"decoding the training and validation splits into the image cache, {size} px", decode, "images/s")
    rates = {"decode": decode}

    training.set_seed(0)
    train32 = pipeline.dataset(m, root, "train", size, 32, names, shuffle=True, seed=0, cache=True)
    val = pipeline.dataset(m, root, "val", size, 256, names, cache=True)
    model = network(size)
    ips, first, _ = train_rate(model, train32, n_train, ctx["epochs"])
    rates["02"] = ips
    report.figure(f"chapter 02: baseline epoch, batch 32, {size} px", n_train / ips, "s per epoch",
                  ratio=ips / ctx["study_ips"], ratio_of="the study's RTX 3060 rate")
    report.note(f"chapter 02: {ips:,.0f} images/s after the first epoch ({first:.1f} s, with compilation), "
                f"{n_train:,} training images")
    model.predict(val, verbose=0)
    t0 = time.perf_counter()
    model.predict(val, verbose=0)
    rates["predict"] = n_val / (time.perf_counter() - t0)
    report.figure(f"predicting the validation split, {size} px", rates["predict"], "images/s")

    for bs in BATCH_SIZES:
        ds = pipeline.dataset(m, root, "train", size, bs, names, shuffle=True, seed=0, cache=True)
        ips, _, _ = train_rate(network(size, dropout=0.4), ds, n_train, 2)
        rates[f"03_{bs}"] = ips
        report.figure(f"chapter 03: a trial's epoch, batch {bs}, dropout 0.4, {size} px", ips, "images/s")

    target = ctx["aug_per_class"]
    stream = augmentation.upsampled_dataset(m, root, size, 128, target, names, augmentation.augmenter(seed=0),
                                            seed=0, cache=True)
    steps = ctx["aug_steps"]
    part = stream.take(steps)
    for _ in range(2):  # the second pass is the stream's rate (the first traces)
        t0 = time.perf_counter()
        n = sum(int(np.shape(x)[0]) for x, _ in part)
        alone = n / (time.perf_counter() - t0)
    rates["04_stream"] = alone
    report.figure(f"chapter 04: the augmented stream alone (warp in tf.data on the CPU), {size} px", alone,
                  "images/s")
    ips, _, _ = train_rate(network(size, dropout=0.4), part, n, 2)
    rates["04"] = ips
    report.figure(f"chapter 04: training on the augmented stream, batch 128, {size} px", ips, "images/s",
                  ratio=ips / rates["03_128"], ratio_of="training on cached originals at batch 128")
    report.note(f"chapter 04: {steps} batches of 128 from a stream of {target:,} per class x "
                f"{len(set(m.loc[m['split'] == 'train', 'cls']))} classes; os.cpu_count() = {os.cpu_count()}")
    return rates


def stage_parallel(report, ctx) -> dict:
    """Trials per hour of one small search run by 1, 2, 4, 8 workers sharing the device."""
    from cytokit.models import distributed, search_settings

    out = {}
    for workers in ctx["workers"]:
        directory = ctx["run"] / f"tuner-{workers}"
        cfg = search_settings.on_this_machine(
            ctx["manifest_csv"], ctx["root"], directory, image_size=ctx["size"],
            max_trials=workers * ctx["trials_per_worker"], max_epochs=ctx["trial_epochs"], patience=PATIENCE,
            seed=0, bn_momentum=0.99, cache="disk")
        t0 = time.perf_counter()
        table = distributed.local_cluster(cfg, workers, cache_dir=ctx["run"] / "image_cache",
                                          timeout=ctx["timeout"])
        wall = time.perf_counter() - t0
        done = int((table["status"] == "COMPLETED").sum())
        out[workers] = {"trials": done, "wall": wall, "per_hour": 3600 * done / wall,
                        "trial_seconds": float(table["seconds"].mean())}
    base = out[min(out)]["per_hour"]
    for workers, r in out.items():
        report.figure(f"parallel trials: {workers} worker(s) on one device", r["per_hour"], "trials/hour",
                      ratio=r["per_hour"] / base, ratio_of="1 worker",
                      target=">= 3" if workers == 4 else "", met=(r["per_hour"] / base >= 3) if workers == 4 else None)
    report.note("parallel trials: " + "; ".join(
        f"{w} workers {r['trials']} trials in {r['wall']:.0f} s (a trial {r['trial_seconds']:.0f} s)"
        for w, r in out.items()) + f"; each trial {ctx['trial_epochs']} epoch(s) over {ctx['n_train']:,} images "
        "at batch 32-128; the cluster's start (one process per worker and the chief) is in the wall time")
    return out


def stage_precision(report, ctx) -> dict:
    """The baseline in float32 and in mixed_bfloat16: images/s and validation accuracy on the same data."""
    from cytokit.data import pipeline
    from cytokit.models import network as net
    from cytokit.models import training

    m, root, size, names = ctx["manifest"], ctx["root"], ctx["size"], ctx["names"]
    out = {}
    try:
        for policy in net.PRECISIONS:
            net.set_precision(policy)
            training.set_seed(0)
            train = pipeline.dataset(m, root, "train", size, 128, names, shuffle=True, seed=0, cache=True)
            val = pipeline.dataset(m, root, "val", size, 256, names, cache=True)
            model = network(size, dropout=0.4, bn=0.9)
            times = EpochTimes()
            hist = model.fit(train, validation_data=val, epochs=ctx["precision_epochs"], verbose=0, callbacks=[times])
            later = min(times.seconds[1:]) if len(times.seconds) > 1 else times.seconds[0]
            out[policy] = {"ips": ctx["n_train"] / later, "val_accuracy": float(hist.history["val_accuracy"][-1])}
    finally:
        net.set_precision("float32")
    f32, bf16 = out["float32"], out["mixed_bfloat16"]
    report.figure(f"float32: validation accuracy after {ctx['precision_epochs']} epochs", f32["val_accuracy"],
                  "fraction")
    report.figure(f"mixed_bfloat16: validation accuracy after {ctx['precision_epochs']} epochs", bf16["val_accuracy"],
                  "fraction", ratio=bf16["val_accuracy"] / max(f32["val_accuracy"], 1e-9), ratio_of="float32's")
    report.figure("mixed_bfloat16: training images/s, batch 128 (epochs incl. validation)", bf16["ips"], "images/s",
                  ratio=bf16["ips"] / f32["ips"], ratio_of="float32")
    report.note(f"precision: {ctx['n_train']:,} training and {ctx['n_val']:,} validation images, batch 128, "
                "dropout 0.4, seed 0, both runs on the same split and batch order")
    return out


def project(report, rates: dict, parallel: dict | None) -> None:
    """The full profile on the real dataset from the rates measured above (a projection, labelled so)."""
    n_train, n_val, n_test = (round(REAL_IMAGES * s) for s in (TRAIN_SHARE, VAL_SHARE, TEST_SHARE))
    val_s = n_val / rates["predict"]
    hours = {"cache": (n_train + n_val) / rates["decode"] / 3600,
             "02_baseline": BASELINE_EPOCHS * (n_train / rates["02"] + val_s) / 3600}
    epochs, source = study_trial_epochs()
    one_worker = sum(e * (n_train / rates[f"03_{bs}"] + val_s) for bs, e in epochs.items()) / 3600
    speedup, workers = 1.0, 1
    if parallel:
        base = parallel[min(parallel)]["per_hour"]
        workers = max(parallel, key=lambda w: parallel[w]["per_hour"])
        speedup = parallel[workers]["per_hour"] / base
    hours["03_tuning"] = one_worker / speedup + REFIT_EPOCHS * (n_train / rates["03_128"] + val_s) / 3600
    hours["04_augmentation"] = AUG_EPOCHS * (AUG_PER_CLASS * CLASSES / rates["04"] + val_s) / 3600
    hours["05_test_results"] = 3 * n_test / rates["predict"] / 3600
    total = sum(hours.values())
    study_total = sum(STUDY_HOURS.values())
    for name, h in hours.items():
        study_h = STUDY_HOURS.get(name)
        report.figure(f"projected, full profile on {REAL_IMAGES:,} images: {name}", h, "hours",
                      ratio=None if study_h is None else study_h / h,
                      ratio_of="" if study_h is None else "the study's time / this")
    report.figure("projected, the full profile's training chapters (02-05 and the cache)", total, "hours",
                  ratio=study_total / total, ratio_of="the study's 44 min + 6 d 5 h + 6.5 h / this",
                  target="<= 8 h", met=total <= 8)
    report.note(f"projection: {sum(epochs.values()):,} trial epochs from {source}; the search divided among "
                f"{workers} worker(s) at the measured {speedup:.2f}x; {n_train:,} training, {n_val:,} validation "
                f"and {n_test:,} test images; rates from this run, counts from the protocol -- a projection, not "
                "a measured run of the full profile")


def main() -> None:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--images", type=int, help="synthetic images (default 20000; --quick 600)")
    p.add_argument("--size", type=int, help="image size (default 250; --quick 64)")
    p.add_argument("--only", nargs="*", default=["chapters", "parallel", "precision"],
                   help="stages: chapters parallel precision (default: all)")
    p.add_argument("--workers", default=None, help="worker counts, comma-separated (default 1,2,4,8; --quick 1,2)")
    p.add_argument("--trials-per-worker", type=int, default=2)
    p.add_argument("--trial-epochs", type=int, help="epochs of each parallel trial (default 2; --quick 1)")
    p.add_argument("--epochs", type=int, help="chapter 02 epochs timed (default 3; --quick 2)")
    p.add_argument("--aug-steps", type=int, help="batches of the augmented stream timed (default 200; --quick 4)")
    p.add_argument("--precision-epochs", type=int, help="epochs of each precision run (default 3; --quick 2)")
    p.add_argument("--timeout", type=float, default=600, help="seconds allowed to each parallel search")
    args = p.parse_args()
    q = args.quick
    ctx = {"size": args.size or (64 if q else 250), "epochs": args.epochs or (2 if q else 3),
           "aug_steps": args.aug_steps or (4 if q else 200), "trial_epochs": args.trial_epochs or (1 if q else 2),
           "trials_per_worker": args.trials_per_worker, "precision_epochs": args.precision_epochs or (2 if q else 3),
           "workers": [int(w) for w in (args.workers or ("1,2" if q else "1,2,4,8")).split(",")],
           "timeout": args.timeout, "aug_per_class": 200 if q else AUG_PER_CLASS,
           "study_ips": 50 * 84_000 / (44 * 60)}
    n_images = args.images or (600 if q else 20_000)
    report = _common.Report("gpu_protocol", "The full profile on one GPU: chapter epochs, parallel trials, "
                            "bfloat16, and the projected wall time", quick=q)

    from cytokit import data

    t0 = time.perf_counter()
    root = _common.synth_data(n_images)
    report.note(f"data: {n_images:,} synthetic 250 px JPEGs (cytokit synth --seed 0) in {root}, ready in "
                f"{time.perf_counter() - t0:.0f} s; trained at {ctx['size']} px")
    manifest = data.build_manifest(root, seed=0, progress=False)
    report.note(f"device: {device_line()}; {os.cpu_count()} CPU cores")
    with tempfile.TemporaryDirectory(prefix="cytokit-gpu-protocol-") as tmp:
        run = Path(tmp)
        ctx.update(manifest=manifest, root=root, names=data.class_names(manifest), run=run,
                   manifest_csv=data.write_manifest(manifest, run / "manifest.csv"),
                   n_train=len(data.rows(manifest, "train")), n_val=len(data.rows(manifest, "val")))
        rates, parallel = None, None
        stages = {"chapters": stage_chapters, "parallel": stage_parallel, "precision": stage_precision}
        for name in [s for s in stages if s in args.only]:
            t0 = time.perf_counter()
            try:
                result = stages[name](report, ctx)
            except Exception as err:  # one stage failing must not lose the others' figures
                report.note(f"stage {name} failed: {type(err).__name__}: {str(err)[:500]}")
                continue
            rates = result if name == "chapters" else rates
            parallel = result if name == "parallel" else parallel
            report.note(f"stage {name}: {time.perf_counter() - t0:.0f} s")
        if rates is not None and ctx["size"] == 250:
            project(report, rates, parallel)
        elif rates is not None:
            report.note(f"no projection: the rates were measured at {ctx['size']} px, the full profile trains at 250")
    path = report.save(args.out)
    print(json.dumps({"saved": str(path)}))


if __name__ == "__main__":
    main()
