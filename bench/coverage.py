"""Do the book's 95 % intervals cover? Test sets drawn from populations with known truth, shaped like its splits.

Each population fixes the images per class and each class's recall for model A; model B
is either identical (the null: the same recalls, its calls agreeing with A's as real models
do) or 3 points worse in every class (the alternative). Errors go to the other classes in
proportion to the square root of their size, a tenth to classes absent from the split. For
each replicate a test set is drawn, ``cytokit.evaluation.statistics`` computes its intervals
and comparisons as the pages do, and the table counts how often an interval contains the
true value, how often identical models are called better or worse, and how often a 3-point
gap is found. The true value of a metric is the metric of the expected confusion matrix
(class sizes as drawn, recalls and error shares of the population).

Means over images (chapter 6) are checked the same way on per-image values shaped like the
chapter's: Student's t beside the percentile and BCa bootstraps, at 3, 6, 12 and 20 images.

The result goes to ``bench/results/coverage.json`` (``bench/run_all.py`` renders it into RESULTS.md);
``tests/test_coverage.py`` runs a small seeded version.
"""

from __future__ import annotations

import csv
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import _common  # noqa: E402

from cytokit.evaluation import statistics as S  # noqa: E402

SECTION = "## Coverage of the intervals: simulated test sets with a known truth"
K = 21
#: The metrics whose intervals are checked (the pages print all of them).
SINGLE = ("accuracy", "balanced_accuracy", "macro_f1", "precision", "f1")
#: The metrics whose paired differences are checked.
PAIRED = ("accuracy", "balanced_accuracy", "macro_f1")
GAP = 0.03
WORDS = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy", "macro_f1": "macro F1",
         "precision": "weighted precision", "f1": "weighted F1"}
#: How often model B's call agrees with A's beyond chance (0: independent models, 1: identical calls).
AGREEMENT = 0.6
#: Share of the errors that go to classes absent from the split.
ABSENT_SHARE = 0.1
#: Populations with a class of fewer than five images: the test's bar applies to them.
TINY = ("three tiny classes", "real sample", "one 1-image class", "full validation", "demo validation",
        "chapter 6 sample")


@dataclass(frozen=True)
class Population:
    """Images per class and model A's recall per class."""

    name: str
    sizes: tuple
    recalls: tuple
    note: str


def _study_recalls() -> dict[str, float]:
    """The study's baseline validation recall per class (its published per-class table)."""
    path = ROOT.parent / "shared" / "reference" / "per_class.csv"
    if path.is_file():
        with path.open() as f:
            return {r["code"]: float(r["recall"]) / 100 for r in csv.DictReader(f)
                    if r["model"] == "baseline" and r["split"] == "validation"}
    return dict(zip(_CODES_BY_SIZE, _STUDY_RECALL_BY_SIZE))


#: The 21 classes from most to fewest images in the full dataset, and the study's baseline recall of each
#: (its published validation table), used when ``../shared`` is absent.
_CODES_BY_SIZE = ("NGS", "EBO", "LYT", "ART", "PMO", "BLA", "NGB", "PLM", "MYB", "EOS", "MON", "NIF", "MMZ", "PEB",
                  "BAS", "HAC", "OTH", "LYI", "FGC", "KSC", "ABE")
_STUDY_RECALL_BY_SIZE = (.84, .91, .82, .83, .67, .71, .57, .63, .39, .85, .42, .38, .21, .38, .10, .21, .24, 0, 0, 0,
                         0)
#: The full dataset's images per class (the study's Table 3.1), in the order above.
_FULL_COUNTS = (29424, 27395, 26242, 19630, 11994, 11973, 9968, 7629, 6557, 5883, 4040, 3538, 3055, 2740, 441, 409,
                294, 65, 47, 42, 8)


def _geometric(high: int, low: int, n: int) -> list[int]:
    return [int(x) for x in np.round(np.geomspace(high, low, n))]


def _validation_sizes() -> list[int]:
    """Validation images per class when chapter 1's rule splits the full dataset (one ABE image)."""
    from cytokit.data.manifest import _class_counts

    return [_class_counts(code, n, 0.3, 0.2)[0][1] for code, n in zip(_CODES_BY_SIZE, _FULL_COUNTS)]


def populations() -> list[Population]:
    """The six populations of the book's splits, and chapter 6's sample."""
    study = _study_recalls()
    by_size = [study[c] for c in _CODES_BY_SIZE]
    real_main = (.87, .86, .88, .90, .54, .83, .62, .725)  # the study's baseline on the real sample's 8 classes
    real_single = tuple(study[c] for c in ("EBO", "MMZ", "MYB", "NGB", "PEB", "PLM"))
    demo_sizes = (1, 48, 1, 29, 67, 14, 1, 1, 1, 1, 64, 7, 10, 16, 24, 72, 9, 1, 7, 19, 29)
    demo_recalls = (.33, .84, .33, .89, .91, 1.0, 0, 0, .33, .33, .97, .33, .63, .79, .39, .81, .74, 0, 1.0, 1.0, .85)
    return [
        Population("no class under 5 images", tuple(_geometric(300, 6, 21)), tuple(by_size),
                   "21 classes, 300 … 6 images; the study's recalls by class size"),
        Population("three tiny classes", tuple(_geometric(300, 6, 18) + [4, 2, 1]), tuple(by_size[:18] + [.5] * 3),
                   "18 classes of 300 … 6 images and three of 4, 2, 1 at recall 0.5"),
        Population("real sample", (100,) * 7 + (69,) + (1,) * 6, real_main + real_single,
                   "7 × 100, 69 and six 1-image classes; the study's recalls of those classes"),
        Population("one 1-image class", tuple(_geometric(300, 6, 20) + [1]), tuple(by_size[:20] + [.5]),
                   "20 classes of 300 … 6 images and one of 1 at recall 0.5"),
        Population("full validation", tuple(_validation_sizes()), tuple(by_size),
                   "the full dataset's validation split by chapter 1's rule (one ABE image); the study's recalls"),
        Population("demo validation", demo_sizes, demo_recalls,
                   "the demo's validation split (seven 1-image classes); its augmented model's recalls over 3 seeds"),
        Population("chapter 6 sample", (2,) * 20, (.5,) * 20,
                   "40 images, 2 in each of 20 classes, recall 0.5 (the demo's explained sample)"),
    ]


# --------------------------------------------------------------------------- drawing test sets


def _destinations(sizes: np.ndarray) -> np.ndarray:
    """Where each class's errors go (C, K): the other present classes by square root of size, then absent ones."""
    c = len(sizes)
    out = np.zeros((c, K))
    for i in range(c):
        w = np.sqrt(sizes.astype(float))
        w[i] = 0
        share = 1.0 if c == K else 1 - ABSENT_SHARE
        out[i, :c] = share * w / w.sum() if w.sum() else 0
        if c < K:
            out[i, c:] = (1 - out[i, :c].sum()) / (K - c)
    return out


def truth(pop: Population, gap: float) -> dict[str, float]:
    """Model A's metrics and A − B for every metric, from the expected confusion matrices."""
    sizes, dest = np.array(pop.sizes), _destinations(np.array(pop.sizes))
    values = []
    for r in (np.array(pop.recalls), np.clip(np.array(pop.recalls) - gap, 0, 1)):
        cm = np.zeros((K, K))
        cm[:len(sizes)] = (sizes * (1 - r))[:, None] * dest
        cm[np.arange(len(sizes)), np.arange(len(sizes))] = sizes * r
        values.append({m: float(v[0]) for m, v in S.scores(cm[None]).items()})
    return {**{m: values[0][m] for m in SINGLE}, **{f"diff_{m}": values[0][m] - values[1][m] for m in PAIRED}}


def draw(pop: Population, gap: float, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One test set: true labels and two models' calls (B agrees with A beyond chance, :data:`AGREEMENT`)."""
    sizes, dest = np.array(pop.sizes), _destinations(np.array(pop.sizes))
    t = np.repeat(np.arange(len(sizes)), sizes)
    ra = np.array(pop.recalls)[t]
    rb = np.clip(ra - gap, 0, 1)
    both = AGREEMENT * np.minimum(ra, rb) + (1 - AGREEMENT) * ra * rb
    u = rng.random(len(t))
    a_right, b_right = u < ra, (u < both) | ((u >= ra) & (u < ra + rb - both))
    cum = np.cumsum(dest, axis=1)[t]
    where_a = (rng.random(len(t))[:, None] > cum).sum(axis=1).clip(max=K - 1)
    where_b = (rng.random(len(t))[:, None] > cum).sum(axis=1).clip(max=K - 1)
    where_b = np.where(~a_right & (rng.random(len(t)) < AGREEMENT), where_a, where_b)
    return t, np.where(a_right, t, where_a), np.where(b_right, t, where_b)


# --------------------------------------------------------------------------- one replicate


def replicate(pop: Population, r: int, resamples: int, paired: tuple) -> dict:
    """Intervals and comparisons of one test set under the null and under the 3-point gap."""
    out = {}
    rng = np.random.default_rng([r, len(pop.name)])
    t, a, _ = draw(pop, 0.0, rng)
    for m, iv in S.intervals(t, a, K, SINGLE, resamples, seed=r).items():
        out[m] = (iv.low, iv.high)
    for label, gap in (("null", 0.0), ("gap", GAP)):
        t, a, b = draw(pop, gap, rng)
        for m in paired:
            c = S.compare(t, a, b, K, m, resamples=resamples, seed=r)
            out[f"{label}_{m}"] = (c.low, c.high, c.verdict)
    return out


def _chunk(args) -> list[dict]:
    pop, first, count, resamples, paired = args
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return [replicate(pop, r, resamples, paired) for r in range(first, first + count)]


def measure(pop: Population, replicates: int, resamples: int, paired=PAIRED, workers: int = 1) -> list[dict]:
    """Coverage, false verdicts and power of one population: one row per metric."""
    chunks = [(pop, i, min(25, replicates - i), resamples, paired) for i in range(0, replicates, 25)]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = [row for part in pool.map(_chunk, chunks) for row in part]
    else:
        results = [row for part in map(_chunk, chunks) for row in part]
    true_null, true_gap = truth(pop, 0.0), truth(pop, GAP)
    rows = []
    for m in SINGLE:
        hits = [lo <= true_null[m] <= hi for lo, hi in (r[m] for r in results)]
        rows.append(_row(pop, WORDS[m], true_null[m], hits, len(results)))
    for m in paired:
        word = WORDS[m]
        null = [r[f"null_{m}"] for r in results]
        gap = [r[f"gap_{m}"] for r in results]
        rows.append(_row(pop, f"difference of {word}, identical models", 0.0,
                         [lo <= 0 <= hi for lo, hi, _ in null], len(results),
                         false_verdicts=np.mean([v != S.UNCLEAR for *_, v in null])))
        rows.append(_row(pop, f"difference of {word}, {round(100 * GAP)}-point gap", true_gap[f"diff_{m}"],
                         [lo <= true_gap[f"diff_{m}"] <= hi for lo, hi, _ in gap], len(results),
                         power=np.mean([v == S.BETTER for *_, v in gap])))
    return rows


def _row(pop, metric, true_value, hits, n, false_verdicts=None, power=None) -> dict:
    return {"population": pop.name, "metric": metric, "truth": true_value, "nominal": S.CONFIDENCE,
            "coverage": float(np.mean(hits)), "replicates": n, "false_verdicts": false_verdicts, "power": power}


# --------------------------------------------------------------------------- means over images


def _per_image_accuracy(n, rng):
    """Share of the 8 numeric n at which an image's explanation keeps the call: many images at 0 or 1."""
    return rng.binomial(8, rng.beta(0.6, 0.4, n)) / 8


def _difference_of_accuracies(n, rng):
    """Two rankings' per-image accuracies, the second a noisy copy of the first (many zero differences)."""
    p = rng.beta(0.6, 0.4, n)
    return rng.binomial(8, p) / 8 - rng.binomial(8, np.clip(p + rng.normal(0, 0.15, n), 0, 1)) / 8


def _spearman(n, rng):
    return np.tanh(rng.normal(0.4, 0.5, n))


MEAN_SHAPES = {"per-image accuracy over n": _per_image_accuracy,
               "difference of two per-image accuracies": _difference_of_accuracies,
               "Spearman correlation per image": _spearman}


def measure_means(replicates: int, sizes=(3, 6, 12, 20), bootstraps: bool = True) -> list[dict]:
    """Coverage of a mean over n images: Student's t (the book's), and the percentile and BCa bootstraps."""
    rows = []
    for shape, draw_values in MEAN_SHAPES.items():
        true_mean = float(draw_values(2_000_000, np.random.default_rng(99)).mean())
        for n in sizes:
            rng = np.random.default_rng(n)
            hits = {"Student t": [], "percentile bootstrap": [], "BCa bootstrap": []}
            false = []
            for _ in range(replicates):
                v = draw_values(n, rng)
                iv = S.mean_interval(v)
                hits["Student t"].append(iv.low <= true_mean <= iv.high)
                if shape.startswith("difference"):
                    c = S.paired_mean_difference(v - true_mean, np.zeros(n))
                    false.append(c.verdict != S.UNCLEAR)
                if bootstraps:
                    for method, key in (("percentile", "percentile bootstrap"), ("BCa", "BCa bootstrap")):
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            ci = stats.bootstrap((v,), np.mean, n_resamples=999, method=method,
                                                 rng=rng).confidence_interval
                        hits[key].append(bool(ci.low <= true_mean <= ci.high))
            for method, h in hits.items():
                if h:
                    rows.append({"shape": shape, "n": n, "method": method, "coverage": float(np.mean(h)),
                                 "replicates": replicates,
                                 "false_verdicts": float(np.mean(false)) if false and method == "Student t" else None})
    return rows


# --------------------------------------------------------------------------- the report

#: The bars a result must clear (the intervals' promise): accuracy's is higher, its interval is exact-ish.
BAR = {"accuracy": 0.93}
DEFAULT_BAR = 0.92
FALSE_BAR = 0.06


def _bar(metric: str) -> float:
    return BAR.get(metric, DEFAULT_BAR)


def record(report: "_common.Report", rows: list[dict], mean_rows: list[dict]) -> None:
    """Figures with their bars, one table (population × metric × nominal × measured), the populations as notes."""
    for r in rows:
        tiny = r["population"] in TINY
        report.figure(f"{r['population']}: {r['metric']}", r["coverage"], "coverage",
                      target=f">= {_bar(r['metric']):.2f}", met=r["coverage"] >= _bar(r["metric"]))
        if r["false_verdicts"] is not None:
            report.figure(f"{r['population']}: {r['metric']}: false verdicts", r["false_verdicts"], "share",
                          target=f"<= {FALSE_BAR:.2f}" if tiny else "", met=(r["false_verdicts"] <= FALSE_BAR)
                          if tiny else None)
    header = ["population", "metric", "nominal", "measured", "replicates", "false verdicts", "power"]
    table = []
    for r in rows:
        false, power = ("" if r[k] is None else f"{r[k]:.3f}" for k in ("false_verdicts", "power"))
        table.append([r["population"], r["metric"], f"{r['nominal']:.2f}", f"{r['coverage']:.3f}",
                      str(r["replicates"]), false, power])
    for r in mean_rows:
        fv = "" if r["false_verdicts"] is None else f"{r['false_verdicts']:.3f}"
        table.append([f"mean of {r['n']} images ({r['shape']})", f"mean, {r['method']}", "0.95",
                      f"{r['coverage']:.3f}", str(r["replicates"]), fv, ""])
    report.show_table(header, table)
    report.note("Intervals of `cytokit.evaluation.statistics` (95 %) on test sets drawn from populations with a "
                "known truth. Measured: share of the intervals that contain the true value. False verdicts: share "
                "of the comparisons of identical models called better or worse (interval and test together). "
                f"Power: share of the {round(100 * GAP)}-point gaps called better. Means over images (chapter 6): "
                "the false verdicts need Student's t and the Wilcoxon test to agree.")
    report.note(f"Bars: coverage ≥ {BAR['accuracy']:.2f} for accuracy and ≥ {DEFAULT_BAR:.2f} for every other "
                f"metric and difference; false verdicts ≤ {FALSE_BAR:.2f} on the populations with a class of "
                "fewer than five images.")
    for p in populations():
        report.note(f"population {p.name}: {p.note}")


def main() -> None:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--replicates", type=int, default=400)
    p.add_argument("--resamples", type=int, default=500, help="simulated test sets per interval (the pages: 2000)")
    p.add_argument("--workers", type=int, default=1, help="processes (the populations' replicates in chunks)")
    args = p.parse_args()
    replicates = 60 if args.quick else args.replicates
    report = _common.Report("coverage", SECTION[3:], quick=args.quick)
    rows = []
    for pop in populations():
        rows += measure(pop, replicates, args.resamples, workers=args.workers)
        for r in rows[-len(SINGLE) - 2 * len(PAIRED):]:
            print(f"  {r['population']}: {r['metric']}: {r['coverage']:.3f}" +
                  ("" if r["false_verdicts"] is None else f", false verdicts {r['false_verdicts']:.3f}") +
                  ("" if r["power"] is None else f", power {r['power']:.3f}"), flush=True)
    mean_rows = measure_means(100 if args.quick else args.replicates)
    record(report, rows, mean_rows)
    print(f"wrote {report.save(args.out)}")


if __name__ == "__main__":
    main()
