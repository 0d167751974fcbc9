"""MirroredStrategy over two logical CPU devices, and the default path on this machine."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import pytest

# Run in a fresh interpreter: the CPU can only be split before TensorFlow initialises
# its devices, which the pytest process may already have done.
MIRRORED = textwrap.dedent("""
    import json
    import numpy as np
    from cytokit.models import devices, network

    names = devices.split_cpu(2)
    s = devices.strategy(names)
    model = devices.build_in_scope(
        s, lambda: network.compile_model(network.build_cnn(21, 32, bn_momentum=0.9)))
    rng = np.random.default_rng(0)
    x, y = rng.random((24, 32, 32, 3), dtype=np.float32), np.arange(24) % 21
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0).history
    print(json.dumps({
        "devices": names, "replicas": s.num_replicas_in_sync, "describe": devices.describe(s),
        "per_replica": devices.per_replica_batch(8, s),
        "variable": type(model.weights[0].value).__name__,
        "loss": history["loss"], "changed": any((a != b).any() for a, b in zip(before, model.get_weights())),
    }))
""")


@pytest.fixture(scope="module")
def mirrored():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-c", MIRRORED], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_mirrored_strategy_trains_on_two_cpu_replicas(mirrored):
    assert mirrored["devices"] == ["/device:CPU:0", "/device:CPU:1"]
    assert mirrored["replicas"] == 2 and mirrored["per_replica"] == 4
    assert mirrored["describe"].startswith("MirroredStrategy with 2 replica(s)")
    assert mirrored["variable"] == "MirroredVariable"  # built in scope: one copy per replica
    assert len(mirrored["loss"]) == 1 and math.isfinite(mirrored["loss"][0])
    assert mirrored["changed"]


def test_default_path_is_one_replica_without_several_gpus():
    from cytokit.models import devices

    s = devices.strategy()
    n_gpus = len(devices.gpus())
    if n_gpus > 1:
        assert devices.replicas(s) == n_gpus
    else:
        assert devices.replicas(s) == 1 and "default strategy" in devices.describe(s)
    assert devices.replicas(devices.resolve("off")) == 1


def test_split_cpu_after_initialisation_says_why():
    from cytokit.models import devices

    devices.gpus()  # initialises the devices
    with pytest.raises(RuntimeError, match="before TensorFlow initialises"):
        devices.split_cpu(2)


def test_unknown_setting_is_refused():
    from cytokit.models import devices

    with pytest.raises(ValueError, match="distribute must be one of"):
        devices.resolve("multi")
