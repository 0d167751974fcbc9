"""The pipeline must learn real morphology, not only the synthetic generator's."""

import numpy as np
import pytest

from cytokit import data
from cytokit.data import pipeline
from cytokit.evaluation import metrics
from cytokit.evaluation.predictions import predict
from cytokit.models import network, training

pytestmark = pytest.mark.slow


def test_baseline_learns_the_real_sample_well_above_chance(real_sample):
    manifest = data.split(data.validate(real_sample, data.index(real_sample), progress=False), seed=0)
    counts = manifest["cls"].value_counts()
    keep = sorted(counts[counts >= 69].index)           # the 8 classes with 69-100 images
    assert len(keep) == 8
    manifest = manifest[manifest["cls"].isin(keep)].copy()
    manifest.loc[manifest["split"] == "val", "split"] = "train"   # held out: the test split only
    training.set_seed(0)
    train_ds = pipeline.dataset(manifest, real_sample, "train", 64, 32, keep, shuffle=True, cache=True)
    test_ds = pipeline.dataset(manifest, real_sample, "test", 64, 64, keep, cache=True)
    model = network.compile_model(network.build_cnn(len(keep), 64, bn_momentum=0.9), "adam", 1e-3)
    model.fit(train_ds, epochs=10, verbose=0, shuffle=False)  # the dataset shuffles itself
    y_true = data.labels(manifest, "test", keep)
    accuracy = metrics.headline(y_true, predict(model, test_ds).argmax(axis=1), keep)["accuracy"]
    chance = np.bincount(y_true).max() / len(y_true)    # always answering the largest class
    print(f"real sample, 8 classes, 64 px: held-out accuracy {accuracy:.3f} (chance {chance:.3f})")
    assert accuracy >= 2 * chance
