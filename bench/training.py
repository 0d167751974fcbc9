"""Training speed of the study's CNN against the machine's own arithmetic ceiling.

For each image size the train step's images/s is measured on in-memory batches (the
input pipeline has its own benchmark), turned into achieved GFLOP/s from the
network's convolution and dense arithmetic, and compared with a dense float32 matrix
product timed in the same run: the best this machine's BLAS reaches. Settings that
could change the speed are timed side by side: Keras's ``jit_compile="auto"`` (the
project's default, which leaves XLA off on a CPU-only machine) against XLA on, op
determinism, thread pools, and on a GPU batch size and bfloat16 mixed precision.

Runs on any Keras backend (``KERAS_BACKEND``); the GPU figures come from JAX when
TensorFlow's GPU build is not installable. ``--images DIR`` trains on real images (a
dataset folder in the real layout) instead of random tensors.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import _common  # noqa: E402

STUDY_RTX3060_IMAGES_PER_S = 50 * 84_000 / (44 * 60)  # 50 epochs over ~84k images in 44 min
BATCH = 32  # the study's baseline batch size


def forward_flops(model) -> float:
    """Multiply-adds x 2 of one image's forward pass through the convolutions and dense layers.

    Batch norm, ReLU and pooling are left out: they are a few percent of the arithmetic
    and bound by memory, not by the multiply units the ceiling measures.
    """
    import keras

    flops = 0.0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            c_in = layer.input.shape[-1]
            flops += 2.0 * h * w * kh * kw * c_in * c_out
        elif isinstance(layer, keras.layers.Dense):
            flops += 2.0 * layer.input.shape[-1] * layer.units
    return flops


def matmul_gflops(n: int, dtype: str = "float32", repeat: int = 5) -> float:
    """Dense n x n matrix product on the backend's default device: the arithmetic ceiling."""
    import keras

    a = keras.random.normal((n, n), dtype=dtype, seed=1)
    b = keras.random.normal((n, n), dtype=dtype, seed=2)

    def once():
        keras.ops.convert_to_numpy(keras.ops.matmul(a, b)[0, 0])  # forces the product to finish

    once()
    return 2.0 * n ** 3 / _common.best_of(once, repeat) / 1e9


def load_real(folder: Path, size: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Real images as uint8, as the input pipeline feeds them, resized with Pillow (no TensorFlow needed)."""
    from PIL import Image

    files = sorted(p for p in folder.glob("*/**/*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[:limit]
    if not files:
        raise SystemExit(f"no images under {folder}")
    classes = sorted({p.relative_to(folder).parts[0] for p in files})
    x = np.stack([np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.BILINEAR)) for p in files])
    y = np.array([classes.index(p.relative_to(folder).parts[0]) for p in files])
    return x, y


def images_per_s(size: int, steps: int, jit="auto", batch: int = BATCH, precision: str | None = None,
                 images: Path | None = None, repeat: int = 2) -> tuple[float, dict]:
    """Train-step throughput after a warm-up fit (compilation excluded)."""
    import keras

    from cytokit.models import network

    if precision:
        keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    n = batch * steps
    if images is not None:
        x, y = load_real(images, size, n)
        reps = int(np.ceil(n / len(x)))
        x, y = np.concatenate([x] * reps)[:n], np.concatenate([y] * reps)[:n]
    else:
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (n, size, size, 3)).astype(np.uint8)
        y = rng.integers(0, 21, n)
    model = network.build_cnn(21, size, dropout=0.4)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=jit)
    model.fit(x[: batch * 2], y[: batch * 2], batch_size=batch, epochs=1, verbose=0)  # compile
    seconds = _common.best_of(lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False), repeat)
    info = {"jit": str(getattr(model, "jit_compile", jit)), "params": network.param_count(model),
            "forward_gflop": forward_flops(model) / 1e9}
    if precision:
        keras.mixed_precision.set_global_policy("float32")
    return n / seconds, info


def _child(args: list[str]) -> float:
    """Run one setting in a fresh process (thread pools and determinism are process-wide)."""
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False)
    for line in out.stdout.splitlines()[::-1]:
        if line.startswith("{"):
            return json.loads(line)["images_per_s"]
    raise RuntimeError(f"child {args} failed:\n{out.stderr[-2000:]}")


def child_main(argv: list[str]) -> None:
    size, steps, setting = int(argv[0]), int(argv[1]), argv[2]
    jit = "auto"
    if setting == "deterministic":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif setting.startswith("threads="):
        import tensorflow as tf

        intra, inter = (int(v) for v in setting.split("=")[1].split(","))
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    rate, info = images_per_s(size, steps, jit=jit)
    print(json.dumps({"images_per_s": rate, **info}))


def main() -> None:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--images", type=Path, help="train on this dataset folder's images instead of random tensors")
    p.add_argument("--gpu", action="store_true", help="also time batch 128 and bfloat16 mixed precision")
    args = p.parse_args()

    import keras

    backend = keras.backend.backend()
    report = _common.Report("training" if not args.gpu else "training_gpu",
                            f"Training the study CNN ({backend} backend)", args.quick)
    on_gpu = args.gpu
    if on_gpu:
        import jax

        smi = ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"]
        card = subprocess.run(smi, capture_output=True, text=True, check=False).stdout.strip() if shutil.which(
            smi[0]) else ""
        report.note(f"device: {card or jax.devices()[0].device_kind}; jax {jax.__version__}, keras {keras.__version__}")
        if backend == "jax":
            report.note("Keras on the JAX backend: the same network (cytokit.models.network), for machines where "
                        "TensorFlow's GPU build cannot be installed")
    n_mm = (1024 if args.quick else 8192) if on_gpu else (1024 if args.quick else 2048)
    peak = matmul_gflops(n_mm)
    report.figure(f"dense float32 matmul {n_mm}x{n_mm} (ceiling)", peak, "GFLOP/s")

    sizes = (64,) if args.quick and not on_gpu else (64, 128) if args.quick else (64, 128, 250)
    steps_for = ({64: 30, 128: 12, 250: 6} if not on_gpu else {64: 200, 128: 200, 250: 200})
    if args.quick:
        steps_for = {64: 15, 128: 6}
    for size in sizes:
        steps = steps_for[size]
        rate, info = images_per_s(size, steps, images=args.images if size == 250 else None)
        achieved = rate * 3 * info["forward_gflop"]  # forward + backward ~ 3x the forward arithmetic
        report.figure(f"{size} px, batch {BATCH}, default (jit_compile={info['jit']})", rate, "images/s")
        report.figure(f"{size} px achieved arithmetic", achieved, "GFLOP/s", ratio=achieved / peak,
                      ratio_of="of the matmul ceiling")
        if not on_gpu and info["jit"] != "True":
            xla, _ = images_per_s(size, steps, jit=True)
            report.figure(f"{size} px, XLA on (jit_compile=True)", xla, "images/s", ratio=xla / rate,
                          ratio_of="the default")
        if size == 250:
            ratio = rate / STUDY_RTX3060_IMAGES_PER_S
            report.figure("250 px vs the study's RTX 3060 (about 1,600 images/s)", rate, "images/s", ratio=ratio,
                          ratio_of="the study's rate")

    if on_gpu:
        for batch, precision in ((128, None), (32, "mixed_bfloat16"), (128, "mixed_bfloat16")):
            rate, _ = images_per_s(250, 4 if args.quick else 100, batch=batch, precision=precision,
                                   images=args.images)
            report.figure(f"250 px, batch {batch}, {precision or 'float32'}", rate, "images/s",
                          ratio=rate / STUDY_RTX3060_IMAGES_PER_S, ratio_of="the study's rate")
        report.figure(f"dense bfloat16 matmul {n_mm} (ceiling)", matmul_gflops(n_mm, "bfloat16"), "GFLOP/s")
    elif backend == "tensorflow" and not args.quick:
        size = 128
        steps = steps_for[size]
        base = _child([str(size), str(steps), "default"])
        for setting in ("deterministic", f"threads={os.cpu_count()},1", "threads=1,1"):
            rate = _child([str(size), str(steps), setting])
            report.figure(f"{size} px, {setting} (fresh process)", rate, "images/s", ratio=rate / base,
                          ratio_of=f"the default's {base:.0f} images/s in a fresh process")
    report.save(args.out)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
    else:
        main()
