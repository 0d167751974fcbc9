"""Data-parallel training on a multi-GPU node with ``tf.distribute.MirroredStrategy``.

One copy of the model per GPU, gradients averaged every step; with one device or none
the default strategy runs the chapters' own single-device path. The batch size is
global (each replica gets ``global / replicas``), so the study's batches keep its
optimisation; batch-norm statistics per replica and the order of float sums make results
agree closely, not bit for bit. Build and compile inside the scope (:func:`build_in_scope`).
"""

from __future__ import annotations

from typing import Callable, Sequence

import tensorflow as tf

#: Values of the chapters' ``distribute`` parameter understood by :func:`resolve`.
SETTINGS = ("auto", "off", "mirrored")


def split_cpu(n: int = 2) -> list[str]:
    """Split the physical CPU into ``n`` logical devices and return their names.

    This lets MirroredStrategy run (slowly) on a machine without GPUs, to test the
    data-parallel code path. It must be called before TensorFlow initialises its
    devices, i.e. before the first tensor, model or device listing in the process;
    afterwards TensorFlow refuses, and the RuntimeError here says so. Tests therefore
    call it in a fresh subprocess.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * int(n))
    except RuntimeError as err:
        raise RuntimeError(f"split_cpu({n}) must run before TensorFlow initialises its devices "
                           f"(before any tensor or model is created in this process): {err}") from None
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def gpus() -> list[str]:
    """Names of the GPUs TensorFlow can use (initialises the devices)."""
    return [d.name for d in tf.config.list_logical_devices("GPU")]


def strategy(devices: Sequence[str] | None = None) -> tf.distribute.Strategy:
    """MirroredStrategy over ``devices``, or over all GPUs when several are visible; else the default.

    One GPU or none gives the default (single-device) strategy: mirroring one device
    only adds overhead.
    """
    if devices:
        return tf.distribute.MirroredStrategy(devices=list(devices))
    found = gpus()
    if len(found) > 1:
        return tf.distribute.MirroredStrategy(devices=found)
    return tf.distribute.get_strategy()


def resolve(distribute: str | Sequence[str] | None = "auto") -> tf.distribute.Strategy:
    """The strategy for a chapter's ``distribute`` parameter.

    ``"auto"``: mirror over the GPUs when there are several (:func:`strategy`);
    ``"off"`` or None: the default strategy; ``"mirrored"``: MirroredStrategy over
    whatever is visible, even one device; a list of device names: mirror over those.
    """
    if distribute in (None, False, "off"):
        return tf.distribute.get_strategy()
    if distribute == "auto":
        return strategy()
    if distribute == "mirrored":
        return tf.distribute.MirroredStrategy()
    if isinstance(distribute, str):
        raise ValueError(f"distribute must be one of {SETTINGS} or a list of devices; got {distribute!r}")
    return strategy(distribute)


def replicas(s: tf.distribute.Strategy) -> int:
    return int(s.num_replicas_in_sync)


def per_replica_batch(global_batch: int, s: tf.distribute.Strategy) -> int:
    """Images each replica gets per step from a global batch (the remainder goes to some replicas)."""
    return int(global_batch) // replicas(s)


def _devices(s: tf.distribute.Strategy) -> list[str]:
    try:
        return list(s.extended.worker_devices)
    except RuntimeError:  # the default strategy does not list its device
        return []


def describe(s: tf.distribute.Strategy) -> str:
    """One line for the book: which strategy, over how many and which devices."""
    devices = _devices(s)
    short = ", ".join(d.rsplit("device:", 1)[-1] for d in devices)
    if type(s).__name__ == "_DefaultDistributionStrategy":
        return "default strategy: one device, no mirroring"
    return f"{type(s).__name__} with {replicas(s)} replica(s) on {short or 'the default device'}"


def build_in_scope(s: tf.distribute.Strategy, build_fn: Callable[[], object]):
    """Call ``build_fn`` (build *and* compile) inside ``s.scope()``, so its variables are mirrored.

    E.g. ``build_in_scope(s, lambda: models.compile_model(models.build_cnn(21, 250)))``.
    """
    with s.scope():
        return build_fn()
