"""Prediction rate of the study's three trained models on real 250 px images.

What the ``study`` profile spends in chapter 05: each model's ``model.predict`` over the
real sample (``../shared/real-sample``, 775 images) at 250 px, batches of 64, timed after
one warm-up batch, best of ``--repeat`` passes. Images are decoded once beforehand, so this
is the model alone; the ratio sets it beside one training step's rate measured in the same
run on the same images (what chapter 02 spends per image and epoch).

    .venv/bin/python bench/study_predict.py [--models DIR] [--data-dir DIR] [--batch-size 64]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _common  # noqa: E402
from cytokit import paths  # noqa: E402

MODELS = ("baseline", "tuned", "augmented")


def main(argv=None) -> int:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--models", type=Path, default=paths.shared_dir() / "reference" / "study-models",
                   help="folder of baseline/tuned/augmented.keras (e.g. made by `cytokit fetch-study-models`)")
    p.add_argument("--data-dir", type=Path, default=paths.shared_dir() / "real-sample")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--size", type=int, default=250)
    p.add_argument("--repeat", type=int, default=3, help="passes over the images per model; the fastest counts")
    args = p.parse_args(argv)
    missing = [m for m in MODELS if not (args.models / f"{m}.keras").is_file()]
    if missing or not args.data_dir.is_dir():
        sys.exit(f"study_predict: needs {', '.join(f'{m}.keras' for m in missing) or 'the models'} in {args.models} "
                 f"and real images in {args.data_dir}")

    import keras
    import numpy as np

    from cytokit.data import pipeline
    from cytokit.models import training

    report = _common.Report("study_predict", "Prediction rate of the study's three models on real 250 px images",
                            args.quick)
    files = sorted(f for f in args.data_dir.rglob("*") if f.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if args.quick:
        files = files[:: max(1, len(files) // 128)]
    images = np.stack([pipeline.load_image(str(f), args.size).numpy() for f in files])
    report.note(f"{len(images)} images from {args.data_dir.name} at {args.size} px, batch {args.batch_size}, "
                f"decoded beforehand; keras {keras.__version__} ({keras.backend.backend()})")
    rates = {}
    for name in MODELS:
        model = training.load_model(args.models / f"{name}.keras")  # takes the pipeline's uint8
        model.predict(images[: args.batch_size], batch_size=args.batch_size, verbose=0)  # warm-up batch
        seconds = _common.best_of(lambda: model.predict(images, batch_size=args.batch_size, verbose=0),
                                  1 if args.quick else args.repeat)
        rates[name] = len(images) / seconds
        report.figure(f"{name}: predict", rates[name], "images/s")
    labels = np.zeros(len(images), dtype="int32")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    steps = images[: args.batch_size * (2 if args.quick else 6)]
    model.fit(steps[: args.batch_size], labels[: args.batch_size], batch_size=32, epochs=1, verbose=0)  # compile
    start = time.perf_counter()
    model.fit(steps, labels[: len(steps)], batch_size=32, epochs=1, verbose=0, shuffle=False)
    train_rate = len(steps) / (time.perf_counter() - start)
    report.figure("augmented: one training epoch's rate on the same images, batch 32", train_rate, "images/s")
    report.figure("predict vs training, augmented", rates["augmented"], "images/s",
                  ratio=rates["augmented"] / train_rate, ratio_of="its training rate")
    report.note(f"at these rates chapter 05 of the study profile predicts the {len(images)} images with the three "
                f"models in {sum(len(images) / r for r in rates.values()):.0f} s; the real dataset's 171,374 images "
                f"would take {sum(171_374 / r for r in rates.values()) / 60:.0f} min")
    print(report.save(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
