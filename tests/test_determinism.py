"""One seed, two separate processes, the same results: data, manifest, augmentation, training.

``test_synth``, ``test_data`` and ``test_augment`` check each step's seeding inside one
process. Here two fresh interpreters (with different hash seeds) each go the whole way of
chapters 01, 02 and 04 on CPU with TensorFlow's op determinism on: generate a tiny
synthetic tree, validate and split it, write the manifest, train the study CNN for two
epochs through ``cytokit.models.training.fit`` as chapter 02 does, predict the validation split,
and draw one epoch of chapter 04's augmented stream. Everything must be bit-identical.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent("""
    import hashlib, json, sys
    from pathlib import Path
    import numpy as np
    from cytokit import data
    from cytokit.data import pipeline, synthetic as synth
    from cytokit.evaluation.predictions import predict
    from cytokit.models import augmentation, network, training

    work, seed = Path(sys.argv[1]), 0

    def sha(*chunks):
        h = hashlib.sha256()
        for c in chunks:
            h.update(c)
        return h.hexdigest()

    root = synth.generate(work / "data", 160, seed=seed, size=64, progress=False, workers=1)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    tree = sha(*[str(p.relative_to(root)).encode() + p.read_bytes() for p in files])

    checked = data.validate(root, data.index(root), expected_size=(64, 64), progress=False)   # chapter 01
    manifest = data.split(checked, seed=seed)
    data.write_manifest(manifest, work / "manifest.csv")
    manifest = data.read_manifest(work / "manifest.csv")
    class_names = data.class_names(manifest)

    training.set_seed(seed, deterministic=True)                                                  # chapter 02
    train_ds = pipeline.dataset(manifest, root, "train", 32, 16, class_names, shuffle=True, seed=seed, cache=True)
    val_ds = pipeline.dataset(manifest, root, "val", 32, 16, class_names, cache=True)
    model = network.compile_model(network.build_cnn(len(class_names), 32, dropout=None, bn_momentum=0.9),
                                  "adam", 1e-3)
    history = training.fit(model, train_ds, val_ds, 2, backup_dir=work / "backup")
    probs = predict(model, val_ds)

    stream = augmentation.upsampled_dataset(manifest, root, 32, 16, 4, class_names,           # chapter 04
                                            augmentation.augmenter(seed=seed), seed=seed)
    batches = [(x.numpy(), y.numpy()) for x, y in stream]

    result = {
        "data": tree,
        "n_files": len(files),
        "manifest": sha((work / "manifest.csv").read_bytes()),
        "history": {k: v for k, v in history.items() if k != "seconds"},
        "weights": sha(*[np.asarray(w).tobytes() for w in model.get_weights()]),
        "val_probs": sha(np.ascontiguousarray(probs).tobytes()),
        "augmented": sha(*[x.tobytes() + y.tobytes() for x, y in batches]),
        "augmented_images": int(sum(len(y) for _, y in batches)),
    }
    (work / "result.json").write_text(json.dumps(result, indent=1))
""")


def test_one_seed_gives_identical_data_manifest_augmentation_and_training(tmp_path):
    script = tmp_path / "determinism.py"
    script.write_text(SCRIPT)
    procs = []
    for name, hash_seed in (("a", "1"), ("b", "2")):
        work = tmp_path / name
        work.mkdir()
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
        procs.append((work, subprocess.Popen([sys.executable, str(script), str(work)], env=env,
                                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    results = []
    for work, proc in procs:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out[-3000:]
        results.append(json.loads((work / "result.json").read_text()))
    a, b = results
    assert a["n_files"] > 160 - 1 and len(a["history"]["loss"]) == 2 and a["augmented_images"] > 0
    for key in a:
        assert a[key] == b[key], f"{key} differs between two runs with one seed"
