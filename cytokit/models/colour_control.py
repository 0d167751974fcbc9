"""A colour-only control: logistic regression on per-image colour histograms.

If a classifier that sees only the colours of an image did as well as the CNN, the
classes could be told apart without morphology. Chapter 02 reports this control next
to the baseline CNN; on the synthetic data it must stay clearly below it.
"""

from __future__ import annotations

import numpy as np


def histograms(images: np.ndarray, bins: int = 6) -> np.ndarray:
    """Joint RGB histogram of each image (float [0,1] or uint8), normalised to sum 1."""
    x = np.asarray(images)
    if x.dtype != np.uint8:
        x = np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)
    q = (x.astype(np.int32) * bins) // 256
    codes = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]
    flat = codes.reshape(len(x), -1)
    out = np.zeros((len(x), bins ** 3), dtype=np.float32)
    for i, row in enumerate(flat):
        out[i] = np.bincount(row, minlength=bins ** 3)
    return out / flat.shape[1]


def dataset_histograms(ds, bins: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Histograms and labels of a batched (image, label) dataset, one batch at a time."""
    feats, labels = [], []
    for x, y in ds.as_numpy_iterator():
        feats.append(histograms(x, bins))
        labels.append(y)
    return np.concatenate(feats), np.concatenate(labels)


def fit_predict(train_x, train_y, val_x, seed: int = 0) -> np.ndarray:
    """Fit a standardised multinomial logistic regression; predict the validation labels."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0, random_state=seed))
    clf.fit(np.sqrt(train_x), train_y)
    return clf.predict(np.sqrt(val_x))
