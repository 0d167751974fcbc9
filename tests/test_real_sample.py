"""What must hold on real images: the 775-image TCIA sample in ../shared/real-sample.

The sample is not part of the project (it is read-only and never copied in); these
tests skip when it is absent. ``CYTOKIT_REAL_SAMPLE`` points at another copy.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from cytokit import data
from cytokit.data import census, taxonomy

SAMPLE = Path(os.environ.get("CYTOKIT_REAL_SAMPLE")
              or Path(__file__).resolve().parents[1].parent / "shared" / "real-sample")
COUNTS = {**{c: 100 for c in ("ART", "BLA", "EOS", "LYT", "MON", "NGS", "NIF")}, "PMO": 69,
          **{c: 1 for c in ("EBO", "MMZ", "MYB", "NGB", "PEB", "PLM")}}

pytestmark = pytest.mark.skipif(
    not SAMPLE.is_dir(),
    reason=f"real-sample images not found at {SAMPLE} (set CYTOKIT_REAL_SAMPLE to their folder)",
)


@pytest.fixture(scope="module")
def manifest():
    return data.build_manifest(SAMPLE, seed=0, progress=False)


def test_all_images_indexed_in_the_nested_layout(manifest):
    assert len(manifest) == 775
    assert manifest["cls"].value_counts().to_dict() == COUNTS
    assert manifest["path"].str.fullmatch(r"([A-Z]{3})/\d{4}-\d{4}/\1_\d{5}\.jpg").all()
    assert manifest.attrs["empty_classes"] == []


def test_no_real_image_is_flagged(manifest):
    assert set(manifest["status"]) == {"ok"}, manifest.loc[manifest["status"] != "ok", ["path", "reason"]]
    assert set(zip(manifest["width"], manifest["height"], manifest["mode"], manifest["format"])) == {
        (250, 250, "RGB", "JPEG")}
    assert data.leakage(manifest).empty


def test_split_of_the_sample(manifest):
    s = census.split_table(manifest).set_index("code")
    assert s.loc["BLA", ["train", "val", "test"]].tolist() == [56, 14, 30]
    assert s.loc["PMO", ["train", "val", "test"]].tolist() == [38, 10, 21]
    assert len(manifest.attrs["notes"]) == 6  # the six one-image classes: train only
    assert data.class_names(manifest) == list(taxonomy.CODES)


def test_pipeline_feeds_cv2_imreads_pixels_exactly(manifest):
    pytest.importorskip("tensorflow")
    from cytokit.data import pipeline

    ds = pipeline.dataset(manifest, SAMPLE, None, image_size=250, batch_size=64)
    paths = iter(data.rows(manifest, None)["path"])
    differing = []
    for x, _ in ds:
        assert x.dtype.name == "uint8"
        for img in x.numpy():
            ref = cv2.cvtColor(cv2.imread(str(SAMPLE / next(paths))), cv2.COLOR_BGR2RGB)
            differing.append(int(np.count_nonzero(img != ref)))
    assert len(differing) == 775
    assert max(differing) == 0


def test_reduced_scale_decode_stays_close_to_a_full_decode(manifest):
    """At 64 px the JPEG is decoded at half size before the shrink; on real cells that
    moves pixels by a fraction of a grey level on average against a full-size decode."""
    tf = pytest.importorskip("tensorflow")
    from cytokit.data import pipeline

    chosen = data.rows(manifest, None).groupby("cls").head(10)
    x, _ = zip(*pipeline.dataset(chosen, SAMPLE, None, image_size=64, batch_size=64))
    x = np.concatenate([b.numpy() for b in x])
    mean, worst = [], []
    for img, path in zip(x, chosen["path"]):
        full = cv2.cvtColor(cv2.imread(str(SAMPLE / path)), cv2.COLOR_BGR2RGB).astype(np.float32)
        want = tf.image.resize(full, [64, 64], method="area").numpy()
        diff = np.abs(img.astype(np.float32) - np.clip(want, 0, 255))
        mean.append(diff.mean())
        worst.append(diff.max())
    assert len(mean) == len(chosen) > 50
    assert np.mean(mean) < 0.6 and max(worst) < 16
