"""Chapter 06's robustness sections at each profile's sizes: where the time goes, section by section.

Runs the page's own steps (``cytokit.pages.xai_robustness``) on the chapter's sample as the
profile sizes it: the study profile on the real sample (``../shared/real-sample``, the
study's augmented model), the demo or smoke profile on synthetic cells (a demo-like network
trained here at 64 px; not part of chapter 06). What the chapter itself makes first -- the
sample's superpixels, LIME for the predicted class and class 0 (one set of perturbations),
the grey-fill sufficiency of three rankings -- is timed apart as "chapter (already there)":
the sections reuse it. Each section's wall time, this process's CPU time and the load
average are printed as it ends; parts that work in other processes (superpixels,
imputation) show less CPU than they used.

    .venv/bin/python bench/xai_sections.py [--profiles study demo smoke] [--quick]
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from _common import Report, parser, synth_data  # noqa: E402

#: The sizes a --quick run uses instead of the profile's.
QUICK = {"n_images": 12, "n_subset": 6, "n_robust": 8, "n_imputed": 2, "n_independent": 4, "n_layer_choice": 4,
         "lime_seeds": 2, "more_samples": 64}


class Sections:
    """Wall and CPU seconds of named parts, printed and reported as each ends."""

    def __init__(self, report: Report, prefix: str):
        self.report, self.prefix, self.seconds = report, prefix, {}

    def __call__(self, part: str, fn, *args, **kwargs):
        load, start, cpu = os.getloadavg()[0], time.perf_counter(), time.process_time()
        out = fn(*args, **kwargs)
        wall, used = time.perf_counter() - start, time.process_time() - cpu
        self.seconds[part] = wall
        self.report.figure(f"{self.prefix}: {part}: wall", wall, "s", used / wall if wall else None,
                           f"CPU s per wall s; load {load:.1f} before, {os.getloadavg()[0]:.1f} after")
        return out


def sizes_of(profile: str, quick: bool) -> dict:
    """Chapter 06's sizes in a profile (the notebook's defaults where the profile is silent)."""
    from cytokit.book import profiles

    wanted = dict(QUICK) if quick else {}
    if not quick:
        prof = profiles.load(profile)
        wanted = {**prof["parameters"], **prof["chapters"].get("06", {})}
    defaults = {"n_images": 40, "n_subset": 12, "num_samples": 128, "lime_seeds": 3, "more_samples": 1000,
                "n_robust": 40, "n_imputed": 6, "n_independent": None, "n_layer_choice": 40, "seed": 0}
    return {k: wanted.get(k, v) for k, v in defaults.items()}


def real_sample(args, n_images: int, seed: int):
    from cytokit.data import manifest, pipeline
    from cytokit.models.training import load_model
    from cytokit.xai import images as xai_images

    man = manifest.build_manifest(args.data_dir, progress=False)
    names = manifest.class_names(man)
    model = xai_images.at_resolution(load_model(args.models / "augmented.keras"), 250)
    chosen = xai_images.choose(man, None, n_images, seed=seed)
    images = list(pipeline.load_images(chosen, args.data_dir, None, 250))
    return model, chosen, images, np.array([names.index(c) for c in chosen["cls"]]), names, args.data_dir


def synthetic_sample(report: Report, quick: bool, n_images: int, seed: int):
    from cytokit.data import manifest, pipeline
    from cytokit.xai import images as xai_images
    from xai_robustness import train_demo_like

    start = time.perf_counter()
    root = synth_data(800 if quick else 3000, seed=seed)
    man = manifest.split(manifest.build_manifest(root, progress=False), seed=seed)
    names = manifest.class_names(man)
    trained, accuracy = train_demo_like(root, man, 64, 3 if quick else 20, seed)
    report.note(f"synthetic: demo-like network (64 px) validation accuracy {accuracy:.3f}; data and training took "
                f"{time.perf_counter() - start:.0f} s (not part of chapter 06)")
    model = xai_images.at_resolution(trained, 250)
    chosen = xai_images.choose(man, "val", n_images, seed=seed)
    images = list(pipeline.load_images(chosen, root, None, 250))
    return model, chosen, images, np.array([names.index(c) for c in chosen["cls"]]), names, root


def chapter_inputs(model, images, y_true, names, num_samples: int, seed: int):
    """What chapter 06 has made before its robustness sections: superpixels, LIME, random rankings, sufficiency."""
    from cytokit.xai import controls, explain, superpixels
    from cytokit.xai.sufficiency import sufficiency

    segments = superpixels.superpixels_all(images, progress=False, **superpixels.QUICKSHIFT)
    lime = explain.explain_all_labels(model, images, segments, ("predicted", "first"), None, num_samples, seed=seed,
                                      progress=False)
    random_rankings = controls.random_rankings(segments, seed)
    full = explain.full_probs(lime["predicted"])
    results = {name: sufficiency(model, images, segments, ranks, y_true, class_names=names, full_probs=full,
                                 progress=False)
               for name, ranks in (("predicted", lime["predicted"]), ("first", lime["first"]),
                                   ("random", random_rankings))}
    return segments, lime, random_rankings, results


def profile_side(report: Report, args, profile: str) -> None:
    """Every section at one profile's sizes, each timed; the sum of the sections as a figure."""
    from cytokit.pages import xai_checks
    from cytokit.pages import xai_robustness as xr
    from cytokit.xai import gradcam
    from cytokit.xai import images as xai_images

    sz = sizes_of(profile, args.quick)
    report.note(f"{profile}: sizes " + ", ".join(f"{k} {v}" for k, v in sz.items()))
    seed, time_of = sz["seed"], Sections(report, profile)
    if profile == "study":
        model, chosen, images, y_true, names, root = real_sample(args, sz["n_images"], seed)
    else:
        model, chosen, images, y_true, names, root = synthetic_sample(report, args.quick, sz["n_images"], seed)
    report.note(f"{profile}: {len(images)} images of {chosen['cls'].nunique()} classes from {root.name}")

    segments, lime, random_rankings, results = time_of("chapter (already there): superpixels, LIME, sufficiency",
                                                       chapter_inputs, model, images, y_true, names,
                                                       sz["num_samples"], seed)
    subset = xai_images.subset(chosen, sz["n_subset"], seed)
    predicted, first = lime["predicted"], lime["first"]
    labels = np.array([e.label for e in predicted])
    masks = xr.cell_masks(root, chosen)
    s = time_of("subsets", xr.sizes, chosen, subset, sz["n_robust"], sz["n_imputed"], sz["n_layer_choice"],
                sz["n_independent"], seed=seed)
    report.note(f"{profile}: " + s.facts()["robustness_sizes_statement"])

    def at(items, idx):
        return [items[i] for i in idx]

    time_of("0. criterion table", xr.criterion, results, seed)
    c = list(s.choice)
    layer = time_of("Grad-CAM's layer choice", xr.gradcam_layer_choice, model, at(images, c), at(segments, c),
                    labels[c], None if masks is None else at(masks, c), seed)
    report.note(f"{profile}: Grad-CAM's layer {layer.layer} (passed every check: {layer.choice.passed})")
    seen = [i for i in range(len(images)) if i not in set(c)]
    loc = time_of("Grad-CAM's localisation", xr.localisation, model, layer.layer, at(images, seen),
                  at(segments, seen), labels[seen], None if masks is None else at(masks, seen),
                  {"LIME": at(predicted, seen), "random": at(random_rankings, seen)}, seed)
    report.note(f"{profile}: " + loc.facts()["gradcam_localisation_statement"])
    r = list(s.robust)
    settings = time_of("1. LIME settings (seeds, more perturbations, superpixels), explained once",
                       xai_checks.settings_at, model, images, segments, predicted, first, random_rankings, s.robust,
                       sz["lime_seeds"], sz["more_samples"], seed)
    stable = time_of("1. stability from the settings", xai_checks.stability, settings)
    report.note(f"{profile}: " + stable.sentence())
    robust = time_of("1. robustness verdicts", xr.robustness, settings, y_true[r], names, model, at(images, r), seed)
    report.note(f"{profile}: " + robust.facts()["robustness_statement"])
    workers = os.cpu_count() or 1
    fills = time_of("2. fill distance", xr.fill_distance, model, at(images, r), at(segments, r), y_true[r], names,
                    seed, workers)
    report.note(f"{profile}: " + fills.facts()["fill_distance_statement"])
    sub = list(s.subset)
    ranks = {"LIME": at(predicted, sub),
             "Grad-CAM": time_of("Grad-CAM rankings of the subset", gradcam.rankings, model, at(images, sub),
                                 at(segments, sub), labels[sub], layer.layer, progress=False, seed=seed),
             "random": at(random_rankings, sub), "class 0": at(first, sub)}
    combined = time_of("3. combined score (SRG, four fills)", xr.combined_score, model, at(images, sub),
                       at(segments, sub), ranks, labels[sub], s.imputed, seed, workers)
    report.note(f"{profile}: " + combined.facts()["combined_score_statement"])
    alone = sub[:s.independent]
    independent = time_of("4. independent randomisation", xr.independent_randomisation, model, at(images, alone),
                          at(segments, alone), at(predicted, alone), layer.layer, seed)
    report.note(f"{profile}: " + independent.facts()["independent_statement"])
    new = sum(v for part, v in time_of.seconds.items() if not part.startswith("chapter"))
    report.figure(f"{profile}: every robustness section together: wall", new, "s")


def main() -> None:
    from cytokit import paths

    p = parser(__doc__.splitlines()[0])
    p.add_argument("--profiles", nargs="*", default=["study", "demo"], choices=["study", "demo", "smoke"])
    p.add_argument("--data-dir", type=Path, default=paths.shared_dir() / "real-sample")
    p.add_argument("--models", type=Path, default=paths.shared_dir() / "reference" / "study-models")
    args = p.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    report = Report("xai_sections", "Chapter 06's robustness sections at each profile's sizes", args.quick)
    for profile in args.profiles:
        profile_side(report, args, profile)
    report.save(args.out)


if __name__ == "__main__":
    main()
