"""Prediction rate of the study's three trained models on real 250 px images (images/s).

What the ``study`` profile spends in chapter 05: each model's ``model.predict`` over the
real sample (``../shared/real-sample``, 775 images) at 250 px, batches of 64, timed after
one warm-up batch. Images are decoded once beforehand, so this is the model alone.

    .venv/bin/python bench/study_predict.py [--models DIR] [--data-dir DIR] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from cytokit import paths  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=Path, default=paths.shared_dir() / "reference" / "study-models",
                   help="folder of baseline/tuned/augmented.keras (e.g. made by `cytokit fetch-study-models`)")
    p.add_argument("--data-dir", type=Path, default=paths.shared_dir() / "real-sample")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--size", type=int, default=250)
    args = p.parse_args(argv)

    import numpy as np

    from cytokit.data import pipeline
    from cytokit.models import training

    files = sorted(f for f in args.data_dir.rglob("*") if f.suffix.lower() in (".jpg", ".jpeg", ".png"))
    images = np.stack([pipeline.load_image(str(f), args.size).numpy() for f in files])
    print(f"{len(images)} images from {args.data_dir} at {args.size} px, batch {args.batch_size}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    for name in ("baseline", "tuned", "augmented"):
        model = training.load_model(args.models / f"{name}.keras")  # takes the pipeline's uint8
        model.predict(images[: args.batch_size], batch_size=args.batch_size, verbose=0)  # warm-up batch
        start = time.perf_counter()
        model.predict(images, batch_size=args.batch_size, verbose=0)
        seconds = time.perf_counter() - start
        print(f"{name}: {len(images) / seconds:.0f} images/s ({seconds:.1f} s for {len(images)} images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
