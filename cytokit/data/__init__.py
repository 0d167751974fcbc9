"""Stage 1, the data: a dataset tree becomes a checked, split manifest (chapter 01).

tree -> :func:`index` (files) -> :func:`validate` (each image decoded) -> :func:`split`
(a column, never a moved file) -> ``manifest.csv`` -> :mod:`cytokit.data.pipeline`
(tf.data batches, imported on its own because it loads TensorFlow).
"""

from cytokit.data.manifest import (HALVES, SPLITS, build_manifest, class_names, halves, labels, leakage,
                                   read_manifest, rows, split, usable, write_manifest)
from cytokit.data.tree import DatasetError, index
from cytokit.data.validation import validate

__all__ = ["HALVES", "SPLITS", "DatasetError", "build_manifest", "class_names", "halves", "index", "labels", "leakage",
           "read_manifest", "rows", "split", "usable", "validate", "write_manifest"]
