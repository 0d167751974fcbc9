"""Synthetic to real: the study's network trained on the embedded generator's cells, tested on real ones.

The real sample (``../shared/real-sample``, 775 images) is cut once, per class and seeded,
into a calibration half (what the generator's statistics are fitted to) and a report half
(:func:`cytokit.data.halves`). On the report half's main classes (8, chance 12.5 %) the
script scores, with intervals (:mod:`cytokit.evaluation.transfer`):

- the network trained as chapter 2 trains it in the demo profile (64 px, 12 epochs, batch
  32, Adam 1e-3, no dropout, batch-norm momentum 0.9, all 21 outputs) on the demo's
  synthetic training split, for the generator of an earlier commit (``--before``) and the
  current one, side by side;
- the same network trained on real images: cross-validated within the calibration half,
  and trained on the whole calibration half;
- the colour-histogram control (:mod:`cytokit.models.colour_control`), trained on real
  calibration images and on the synthetic training split.

It also times both generators per image (fresh processes, interleaved rounds), checks the
balanced-accuracy interval's coverage by simulation on the report half's shape, and
compares each calibrated property of the images (:mod:`cytokit.data.synthetic.calibration`)
between real calibration images and each generator's. ``--half calibration`` scores on
the calibration half instead (for work on the generator; the report half stays unseen).
``--publish`` writes the figures the book's findings page reads
(``cytokit/resources/sim_to_real.json``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import _common  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "347de32"
#: The demo profile's data and chapter 2's settings.
DEMO = {"n_images": 3000, "seed": 0, "difficulty": 0.5, "image_size": 64, "epochs": 12, "batch_size": 32,
        "learning_rate": 1e-3, "bn_momentum": 0.9}
WORK = Path(tempfile.gettempdir()) / "cytokit-bench" / "sim2real"
PUBLISHED = ROOT / "cytokit" / "resources" / "sim_to_real.json"

GENERATE = """
import sys, time
from cytokit.data import synthetic
t = time.perf_counter()
synthetic.generate(sys.argv[1], int(sys.argv[2]), seed=int(sys.argv[3]), difficulty=float(sys.argv[4]),
                   progress=False)
print(time.perf_counter() - t)
"""
RENDER_SPEED = """
import sys, time
import cv2
from cytokit.data.synthetic import encode
from cytokit.data.taxonomy import CODES
cv2.setNumThreads(1)
n = int(sys.argv[1])
jobs = [(CODES[i % len(CODES)], 1 + i // len(CODES)) for i in range(n)]
encode(*jobs[0], 0, 250, 0.5)
t = time.perf_counter()
for code, index in jobs:
    encode(code, index, 0, 250, 0.5)
print((time.perf_counter() - t) / n)
"""


# --------------------------------------------------------------------------- generators


def generator_tree(commit: str) -> Path:
    """The ``cytokit`` package of ``commit``, unpacked once under the temp folder (for PYTHONPATH)."""
    folder = WORK / f"tree-{commit}"
    if not (folder / "cytokit" / "__init__.py").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "cytokit"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def _python(tree: Path | None, script: str, *args) -> str:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    out = subprocess.run([sys.executable, "-c", script, *map(str, args)], env=env, check=True,
                         capture_output=True, text=True, cwd=WORK)
    return out.stdout.strip().splitlines()[-1]


def synthetic_dataset(label: str, tree: Path | None, digest: str) -> tuple[Path, float]:
    """The demo's synthetic dataset drawn by one generator (cached by its code's digest); seconds to draw it."""
    out = WORK / f"data-{label}-{digest[:12]}"
    seconds = float(_python(tree, GENERATE, out, DEMO["n_images"], DEMO["seed"], DEMO["difficulty"]))
    return out, seconds


def seconds_per_image(trees: dict[str, Path | None], n: int, rounds: int) -> dict[str, float]:
    """Render + encode time per 250 px image of each generator, one core, best of interleaved rounds."""
    best = {k: float("inf") for k in trees}
    for _ in range(rounds):
        for label, tree in trees.items():
            best[label] = min(best[label], float(_python(tree, RENDER_SPEED, n)))
    return best


# --------------------------------------------------------------------------- images and models


def real_images(root: Path, size: int):
    """The real sample's manifest (with its halves) and every usable image at ``size`` px."""
    from cytokit import data
    from cytokit.data import pipeline

    manifest = data.validate(root, data.index(root, progress=False), progress=False)
    manifest["half"] = data.halves(manifest, seed=0)
    manifest = manifest[data.usable(manifest)].reset_index(drop=True)
    return manifest, pipeline.load_images(manifest, root, None, size)


def synthetic_training(root: Path, size: int):
    """The demo split's training images and labels (chapter 1's split, seed 0)."""
    from cytokit import data
    from cytokit.data import pipeline

    manifest = data.split(data.validate(root, data.index(root, progress=False), progress=False), seed=DEMO["seed"])
    names = data.class_names(manifest)
    return pipeline.load_images(manifest, root, "train", size), data.labels(manifest, "train", names), names


def train(x, y, n_classes: int, seed: int, size: int, epochs: int = DEMO["epochs"], augment: bool = False):
    """Chapter 2's baseline, trained on in-memory uint8 images (``augment``: each epoch stain- and blur-jittered)."""
    from cytokit.models import network, training

    training.set_seed(seed)
    model = network.compile_model(network.build_cnn(n_classes, size, dropout=None, bn_momentum=DEMO["bn_momentum"]),
                                  "adam", DEMO["learning_rate"])
    rng = np.random.default_rng(seed)
    for _ in range(epochs if augment else 1):
        batch = stain_and_blur(x, rng) if augment else x
        model.fit(batch, y, batch_size=DEMO["batch_size"], epochs=1 if augment else epochs, shuffle=True, verbose=0)
    return model


def stain_and_blur(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each image flipped and turned, its optical density scaled per image and channel (staining), and blurred
    by up to 1.2 px (focus): the nuisances of real smears, varied more widely than the generator does."""
    import cv2

    n = len(x)
    out = np.stack([np.rot90(img, k)[:, ::-1] if f else np.rot90(img, k)
                    for img, k, f in zip(x, rng.integers(0, 4, n), rng.uniform(size=n) < 0.5)])
    od = -np.log((out.astype(np.float32) + 1) / 256)
    od = od * np.exp(rng.normal(0, 0.15, (n, 1, 1, 1)) + rng.normal(0, 0.08, (n, 1, 1, 3))) \
        + rng.normal(0, 0.03, (n, 1, 1, 3))
    out = np.clip(256 * np.exp(-od) - 1, 0, 255).astype(np.uint8)
    for i, sigma in enumerate(rng.uniform(0, 1.2, n)):
        if sigma > 0.3:
            out[i] = cv2.GaussianBlur(out[i], (0, 0), float(sigma))
    return out


def predict(model, x) -> np.ndarray:
    return model.predict(x, batch_size=256, verbose=0).argmax(axis=1)


def cross_validated(x, y, n_classes: int, size: int, folds: int, seed: int) -> np.ndarray:
    """Out-of-fold predictions of networks trained on the other folds (stratified, seeded)."""
    from sklearn.model_selection import StratifiedKFold

    pred = np.empty(len(y), dtype=int)
    for k, (fit, held) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y)):
        pred[held] = predict(train(x[fit], y[fit], n_classes, seed + k, size), x[held])
    return pred


def colour_predictions(train_x, train_y, test_x, seed: int = 0) -> np.ndarray:
    from cytokit.models import colour_control

    return colour_control.fit_predict(colour_control.histograms(train_x), train_y, colour_control.histograms(test_x),
                                      seed=seed)


# --------------------------------------------------------------------------- report


def _pct(iv: dict) -> str:
    return f"{100 * iv['estimate']:.1f} % ({100 * iv['low']:.1f} to {100 * iv['high']:.1f})"


def add_score(report: _common.Report, what: str, scored: dict, chance: float, goal: str = "") -> None:
    ba = scored["balanced_accuracy"]
    report.figure(f"{what}: balanced accuracy, 95 % interval {100 * ba['low']:.1f} to {100 * ba['high']:.1f} %",
                  100 * ba["estimate"], "%", ratio=ba["estimate"] / chance, ratio_of="chance",
                  target=goal, met=(ba["estimate"] >= 0.40) if goal else None)


def recall_note(label: str, scored: dict) -> str:
    parts = [f"{c} {100 * r['recall']:.0f} % ({100 * r['recall_low']:.0f}-{100 * r['recall_high']:.0f}, "
             f"n={int(r['support'])})" for c, r in scored["recall"].items()]
    return f"{label}, recall per class (Wilson 95 %): " + "; ".join(parts)


def confusion_note(label: str, scored: dict) -> str:
    cm = scored["confusion"]
    rows = [f"{t}: " + ", ".join(f"{p} {n}" for p, n in zip(cm["predicted"], row) if n)
            for t, row in zip(cm["true"], cm["counts"])]
    return f"{label}, confusion (true: predicted counts): " + "; ".join(rows)


def main() -> None:  # noqa: C901 - one linear protocol, step by step
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "real-sample")
    p.add_argument("--before", default=BEFORE, help="commit whose generator is the 'before' (default %(default)s)")
    p.add_argument("--half", choices=("report", "calibration"), default="report",
                   help="real images scored: the report half (default) or, while fitting, the calibration half")
    p.add_argument("--size", type=int, default=DEMO["image_size"])
    p.add_argument("--no-properties", action="store_true", help="skip the comparison of calibrated properties")
    p.add_argument("--publish", action="store_true", help=f"write {PUBLISHED.relative_to(ROOT)} for the book")
    args = p.parse_args()
    if not args.real.is_dir():
        raise SystemExit(f"no real sample at {args.real}: this benchmark needs real images")
    if args.publish and (args.quick or args.half != "report" or args.size != DEMO["image_size"]):
        raise SystemExit("--publish needs the full run on the report half at the demo's image size")
    WORK.mkdir(parents=True, exist_ok=True)
    scratch = _common.SCRATCH  # the detail and the figure: made again by every run, never committed
    scratch.mkdir(parents=True, exist_ok=True)

    from cytokit.data.synthetic import writer
    from cytokit.evaluation import statistics, transfer

    report = _common.Report("sim_to_real", "Synthetic to real: the network trained on synthetic cells, tested on "
                            "real ones", args.quick)
    seeds = (0,) if args.quick else (0, 1, 2)
    size = args.size
    manifest, x_real = real_images(args.real, size)
    main_classes = transfer.main_classes(manifest["cls"])
    on = (manifest["half"] == args.half).to_numpy() & manifest["cls"].isin(main_classes).to_numpy()
    cal = (manifest["half"] == "calibration").to_numpy() & manifest["cls"].isin(main_classes).to_numpy()
    chance = 1 / len(main_classes)
    report.note(f"real images: {len(manifest)} of {args.real.name}, cut once (seed 0) into calibration "
                f"{int((manifest['half'] == 'calibration').sum())} and report "
                f"{int((manifest['half'] == 'report').sum())}; scored on the {args.half} half's "
                f"{int(on.sum())} images of the {len(main_classes)} main classes ({', '.join(main_classes)}); "
                f"chance {100 * chance:.1f} %")
    report.note(f"settings: demo profile, {DEMO['n_images']} synthetic images (seed {DEMO['seed']}, difficulty "
                f"{DEMO['difficulty']}), chapter 2's baseline at {size} px: {DEMO['epochs']} epochs, batch "
                f"{DEMO['batch_size']}, Adam {DEMO['learning_rate']}, no dropout, batch-norm momentum "
                f"{DEMO['bn_momentum']}, 21 outputs; training seeds {list(seeds)}")

    trees = {"before": generator_tree(args.before), "after": None}
    digests = {"before": writer.generator_digest(trees["before"] / "cytokit" / "data" / "synthetic"),
               "after": writer.generator_digest()}
    speed = seconds_per_image(trees, 42 if args.quick else 168, 2 if args.quick else 3)
    report.figure(f"generator at {args.before}: render + JPEG per 250 px image, one core", 1000 * speed["before"],
                  "ms")
    report.figure("generator now: render + JPEG per 250 px image, one core", 1000 * speed["after"], "ms",
                  ratio=speed["after"] / speed["before"], ratio_of=f"the generator at {args.before}",
                  target="<= 2x", met=speed["after"] <= 2 * speed["before"])

    names = None
    results: dict[str, dict] = {}
    synthetic_x = {}
    for label, tree in trees.items():
        root, seconds = synthetic_dataset(label, tree, digests[label])
        x, y, names = synthetic_training(root, size)
        synthetic_x[label] = (x, y)
        report.note(f"{label}: generator digest {digests[label][:12]}, {DEMO['n_images']} images drawn in "
                    f"{seconds:.0f} s (0 s: reused from {root}), {len(y)} in the demo's training split")
        scored = []
        for seed in seeds:
            pred = predict(train(x, y, len(names), seed, size), x_real[on])
            y_true = np.array([names.index(c) for c in manifest.loc[on, "cls"]])
            scored.append((pred, transfer.score(y_true, pred, names, main_classes)))
        results[label] = {"seeds": list(seeds), "scores": [s for _, s in scored], "predictions": scored[0][0],
                          "n_train": int(len(y))}
        spread = statistics.spread([s["balanced_accuracy"]["estimate"] for _, s in scored])
        add_score(report, f"synthetic-trained ({label}), seed {seeds[0]}", scored[0][1], chance,
                  goal=">= 40 %" if label == "after" else "")
        if len(seeds) > 1:
            report.note(f"synthetic-trained ({label}) over seeds {list(seeds)}: balanced accuracy "
                        f"{100 * spread['min']:.1f} to {100 * spread['max']:.1f} %, mean {100 * spread['mean']:.1f}")
        report.note(recall_note(f"synthetic-trained ({label})", scored[0][1]))
        report.note(confusion_note(f"synthetic-trained ({label})", scored[0][1]))
        if label == "after":
            aug = [transfer.score(y_true, predict(train(x, y, len(names), seed, size, augment=True), x_real[on]),
                                  names, main_classes) for seed in seeds]
            results["after_augmented"] = {"seeds": list(seeds), "scores": aug}
            add_score(report, f"synthetic-trained (after), stain and blur augmentation while training, seed {seeds[0]}",
                      aug[0], chance)
            if len(seeds) > 1:
                sp = statistics.spread([a["balanced_accuracy"]["estimate"] for a in aug])
                report.note(f"with augmentation over seeds {list(seeds)}: balanced accuracy {100 * sp['min']:.1f} to "
                            f"{100 * sp['max']:.1f} %, mean {100 * sp['mean']:.1f}")
        colour = colour_predictions(x, y, x_real[on])
        results[label]["colour"] = transfer.score(y_true, colour, names, main_classes)
        add_score(report, f"colour control trained on synthetic ({label})", results[label]["colour"], chance)

    y_real = np.array([names.index(c) for c in manifest["cls"]])
    folds = 3 if args.quick else 5
    cv_pred = cross_validated(x_real[cal], y_real[cal], len(names), size, folds, seed=0)
    results["real_cv"] = transfer.score(y_real[cal], cv_pred, names, main_classes)
    add_score(report, f"real-trained, {folds}-fold cross-validation within the calibration half", results["real_cv"],
              chance)
    results["colour_cv"] = transfer.score(y_real[cal], cross_validated_colour(x_real[cal], y_real[cal], folds),
                                          names, main_classes)
    add_score(report, f"colour control, {folds}-fold cross-validation within the calibration half",
              results["colour_cv"], chance)
    if args.half == "report":
        real_pred = predict(train(x_real[cal], y_real[cal], len(names), 0, size), x_real[on])
        results["real"] = transfer.score(y_real[on], real_pred, names, main_classes)
        results["real"]["n_train"] = int(cal.sum())
        add_score(report, f"real-trained on the calibration half ({int(cal.sum())} images)", results["real"], chance)
        report.note(recall_note("real-trained on the calibration half", results["real"]))
        steps_epochs = int(round(DEMO["epochs"] * len(synthetic_x["after"][1]) / cal.sum()))
        longer = predict(train(x_real[cal], y_real[cal], len(names), 0, size, epochs=steps_epochs), x_real[on])
        results["real_steps"] = {**transfer.score(y_real[on], longer, names, main_classes), "epochs": steps_epochs}
        add_score(report, f"real-trained on the calibration half, {steps_epochs} epochs (as many training steps as "
                  "the synthetic-trained network)", results["real_steps"], chance)
        colour = colour_predictions(x_real[cal], y_real[cal], x_real[on])
        results["colour"] = transfer.score(y_real[on], colour, names, main_classes)
        add_score(report, "colour control trained on the calibration half", results["colour"], chance)
        for a, b, pred_b in (("after", "before", results["before"]["predictions"]),
                             ("after", "real-trained", real_pred)):
            c = statistics.compare(y_real[on], results["after"]["predictions"], pred_b, len(names),
                                   "balanced_accuracy", names=(a, b))
            verdict = c.verdict if c.verdict == statistics.UNCLEAR or c.p_value < 0.05 else statistics.UNCLEAR
            results[f"{a}_vs_{b}"] = {**c.as_dict(), "verdict": verdict}
            report.figure(f"{a} − {b}, balanced accuracy on the same images, 95 % interval "
                          f"{100 * c.low:.1f} to {100 * c.high:.1f} points ({c.test} p = {c.p_value:.3g}: "
                          f"{verdict}; better or worse only where interval and test agree)", 100 * c.difference, "points")

    recalls = [results["after"]["scores"][0]["recall"][c]["recall"] for c in main_classes]
    sizes = [int(results["after"]["scores"][0]["recall"][c]["support"]) for c in main_classes]
    cover = transfer.coverage(recalls, sizes, replicates=100 if args.quick else 400)
    report.figure("coverage of the 95 % balanced-accuracy interval, simulated on the scored images' class sizes and "
                  "the synthetic-trained network's recalls", cover, "", target=">= 0.93", met=cover >= 0.93)

    properties = [] if args.no_properties else compare_properties(args.real, manifest, trees, digests, scratch,
                                                                  20 if args.quick else 48)
    for row in properties:
        report.note(row["text"])
    if properties:
        report.note(f"figure of every property's distributions: bench/out/sim_to_real_properties.png; KS: the "
                    "Kolmogorov-Smirnov distance of the real and synthetic distributions, averaged over the classes")
    report.save(args.out)
    detail = {"half": args.half, "size": size, "settings": DEMO, "before": args.before, "digests": digests,
              "seconds_per_image": speed, "coverage": cover, "properties": properties,
              **{k: ({kk: vv for kk, vv in v.items() if kk != "predictions"} if isinstance(v, dict) else v)
                 for k, v in results.items()}}
    (scratch / "sim_to_real_detail.json").write_text(json.dumps(detail, indent=1, default=float))
    if args.publish:
        PUBLISHED.write_text(json.dumps(published(detail, main_classes), indent=1) + "\n")
        print(f"wrote {PUBLISHED}")


def compare_properties(real_root: Path, manifest, trees: dict, digests: dict, out: Path, per_class: int) -> list[dict]:
    """Each calibrated property on the real calibration images and on each generator's demo images (a figure too)."""
    from cytokit import data
    from cytokit.data.synthetic import calibration

    classes = sorted(set(manifest["cls"]) & set(calibration.load()["classes"]) - {"all"})
    real = calibration.measure_images(real_root, manifest[(manifest["half"] == "calibration")
                                                          & manifest["cls"].isin(classes)])
    synthetic = {}
    for label in trees:
        root = WORK / f"data-{label}-{digests[label][:12]}"
        rows = data.index(root, progress=False)
        rows = rows[rows["cls"].isin(classes)].groupby("cls").head(per_class)
        synthetic[label] = calibration.measure_images(root, rows)
    properties_figure(real, synthetic, out / "sim_to_real_properties.png")
    return calibration.compare(real, synthetic)


def properties_figure(real, synthetic: dict, path: Path) -> None:
    """One panel per property: its distribution on real calibration images and on each generator's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    props = [c for c in real.columns if c not in ("path", "cls")]
    cols = 5
    fig, axes = plt.subplots(-(-len(props) // cols), cols, figsize=(3.2 * cols, 2.4 * -(-len(props) // cols)))
    for ax, prop in zip(axes.ravel(), props):
        sets = {"real (calibration half)": real, **synthetic}
        values = [t[prop].dropna().to_numpy() for t in sets.values()]
        lo, hi = np.nanpercentile(np.concatenate(values), [1, 99]) if any(len(v) for v in values) else (0, 1)
        for (label, _), v in zip(sets.items(), values):
            ax.hist(np.clip(v, lo, hi), bins=25, range=(lo, hi + 1e-9), histtype="step", density=True, label=label)
        ax.set_title(prop, fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in axes.ravel()[len(props):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def cross_validated_colour(x, y, folds: int) -> np.ndarray:
    from sklearn.model_selection import StratifiedKFold

    pred = np.empty(len(y), dtype=int)
    for fit, held in StratifiedKFold(folds, shuffle=True, random_state=0).split(x, y):
        pred[held] = colour_predictions(x[fit], y[fit], x[held])
    return pred


def published(detail: dict, main_classes: list[str]) -> dict:
    """The figures the findings page glues, with what they hold for."""
    keep = ("balanced_accuracy", "n_images", "chance")
    return {"command": "python bench/sim_to_real.py --publish", "measured": time.strftime("%Y-%m-%d"),
            "generator_digest": detail["digests"]["after"], "classes": main_classes,
            "settings": detail["settings"],
            "synthetic": {**{k: detail["after"]["scores"][0][k] for k in keep}, "n_train": detail["after"]["n_train"]},
            "synthetic_before": {k: detail["before"]["scores"][0][k] for k in keep},
            "real": {k: detail["real"][k] for k in (*keep, "n_train")},
            "real_steps": {k: detail["real_steps"][k] for k in (*keep, "epochs")},
            "colour": {k: detail["colour"][k] for k in keep},
            "after_vs_before": detail["after_vs_before"], "after_vs_real": detail["after_vs_real-trained"],
            "coverage": detail["coverage"]}


if __name__ == "__main__":
    main()
