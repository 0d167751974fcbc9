"""The generator's targets, measured on real smears: per class, each property of :mod:`.measure`.

:func:`fit` measures the calibration half of a real sample (never the half a benchmark
reports on) and keeps only derived numbers: per class and property a few quantiles, and
the generator's settings fitted to them (:mod:`.fitted`), in ``calibration.json`` beside
the generator. :func:`target` reads the real quantiles back, and :func:`compare` measures how close a
synthetic dataset comes, property by property, with the same functions.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from cytokit import data, paths
from cytokit.data.synthetic import fitted, measure, scene
from cytokit.data.synthetic.fitted import FILE, load

#: Quantiles kept per class and property.
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
#: Fewest real images of a class for its statistics to be fitted (the others borrow a donor's: :mod:`.fitted`).
MIN_IMAGES = 20
#: Largest image a measurement decodes (the real dataset's are 250 x 250), in pixels and in bytes.
MAX_SIDE, MAX_BYTES = 1024, 8 * 2**20


def read_rgb(path) -> np.ndarray:
    """A dataset image as uint8 RGB, refusing anything that is not a small decodable image (checked before decoding)."""
    import io

    from PIL import Image

    if Path(path).stat().st_size > MAX_BYTES:
        raise ValueError(f"{path}: larger than {MAX_BYTES} bytes, not a single-cell image")
    raw = Path(path).read_bytes()
    try:
        with Image.open(io.BytesIO(raw)) as im:
            side = max(im.size)
    except OSError as err:
        raise ValueError(f"{path}: not a readable image ({err})") from err
    img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR) if side <= MAX_SIDE else None
    if img is None or img.ndim != 3:
        raise ValueError(f"{path}: not a readable RGB image of at most {MAX_SIDE} px")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def measure_images(root, rows: pd.DataFrame) -> pd.DataFrame:
    """Every property of each image in ``rows`` (columns ``path`` and ``cls``) under ``root``, and its JPEG quality."""
    out = []
    for path, cls in zip(rows["path"], rows["cls"]):
        file = Path(root) / path
        values = dict(zip(measure.PROPERTIES, measure.properties(read_rgb(file))))
        values["jpeg_quality"] = measure.jpeg_quality(file.read_bytes())
        out.append({"path": path, "cls": cls, **values})
    return pd.DataFrame(out)


def summarise(table: pd.DataFrame) -> dict:
    """Quantiles of each property per class (and ``"all"``), NaNs left out: the numbers the generator keeps."""
    props = [c for c in table.columns if c not in ("path", "cls")]
    groups = {"all": table, **{cls: g for cls, g in table.groupby("cls")}}
    return {cls: {"n": int(len(g)), **{p: [round(float(v), 4) for v in g[p].dropna().quantile(QUANTILES)]
                                       if g[p].notna().any() else None for p in props}}
            for cls, g in groups.items()}


def fit(real_root, calibration_rows: pd.DataFrame, path=FILE, iterations: int = 6, per_class: int = 24,
        progress=print) -> dict:
    """Measure the calibration half's images, fit the generator's settings to them, write both to ``path``.

    Only derived numbers are kept: the real quantiles per class and the fitted settings.
    """
    counts = calibration_rows["cls"].value_counts()
    real = measure_images(real_root, calibration_rows[calibration_rows["cls"].isin(counts[counts >= MIN_IMAGES].index)])
    summary = summarise(real)
    params = {"classes": {}, "field": {"background_od_cov": _background_cov(real),
                                       "jpeg_quality": [int(v) for v in real["jpeg_quality"].quantile([0.1, 0.9])]}}
    for it in range(int(iterations)):
        synthetic = measure_rendered(sorted(set(real["cls"])), per_class, params, seed=FIT_SEED + it)
        params = update(params, summary, summarise(synthetic))
        if progress:
            progress(f"fit {it + 1}/{iterations}: mean KS distance {_mean_ks(real, synthetic):.3f}")
    stats = {"source": "real sample, calibration half (seed 0)", "quantiles": list(QUANTILES), "classes": summary,
             "generator": params}
    Path(path).write_text(json.dumps(stats, indent=1) + "\n", encoding="utf-8")
    load.cache_clear()
    scene.forget_shipped()
    return stats


#: Seeds of the images drawn while fitting (never the book's datasets': those use small seeds).
FIT_SEED = 10_000
#: Range of the texture contrasts: the recipes' textures are drawn from the cells' look, measured
#: texture also picks up neighbours and mis-assigned pixels, so it may only adjust them.
CONTRAST = (0.35, 1.3)
#: Range of the colour gains: the recipes' colours are a haematologist's, measured colour may only adjust them.
GAIN = (0.4, 2.5)
#: Each update moves a setting this far (as a power of the measured ratio) towards the target.
STEP = 0.8


def measure_rendered(classes, per_class: int, params: dict | None, seed: int = FIT_SEED) -> pd.DataFrame:
    """Every property of ``per_class`` images of each class, drawn with ``params`` and JPEG-encoded as written."""
    lo, hi = fitted.field(params)["jpeg_quality"]
    quality = int(round((lo + hi) / 2))
    out = []
    for cls in classes:
        for i in range(1, per_class + 1):
            img = scene.render(cls, i, seed=seed, params=params).image
            ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
            rgb = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            out.append({"path": f"{cls}/{i}", "cls": cls, **dict(zip(measure.PROPERTIES, measure.properties(rgb)))})
    return pd.DataFrame(out)


def _median(summary: dict, cls: str, prop: str) -> float:
    q = summary.get(cls, {}).get(prop)
    return float(q[QUANTILES.index(0.5)]) if q else float("nan")


def _ratio(real: dict, synthetic: dict, cls: str, prop: str, power: float = 1.0, lo=0.5, hi=2.0) -> float:
    """(real median / synthetic median) ** (power * STEP), bounded; 1 where either is missing."""
    r, s = _median(real, cls, prop), _median(synthetic, cls, prop)
    if not (np.isfinite(r) and np.isfinite(s)) or r <= 0 or s <= 0:
        return 1.0
    return float(np.clip((r / s) ** (power * STEP), lo, hi))


def update(params: dict, real: dict, synthetic: dict) -> dict:
    """One step of every setting towards the real medians (multiplicative, damped by :data:`STEP`)."""
    out = json.loads(json.dumps(params))
    for cls in [c for c in synthetic if c != "all"]:
        p = fitted.class_params(out, cls) if cls in out["classes"] else dict(fitted.CLASS_DEFAULTS)
        # cell and nucleus area both scale with size squared; the nucleus is the more robust measurement
        grow = np.sqrt(_ratio(real, synthetic, cls, "cell_fraction", 0.5) * _ratio(real, synthetic, cls,
                                                                                  "nucleus_fraction", 0.5))
        p["size"] = float(np.clip(p["size"] * grow, 0.5, 1.5))
        for region in ("nucleus", "cytoplasm"):
            ratios = [_ratio(real, synthetic, cls, f"{region}_od_{ch}") for ch in "rgb"]
            p[f"{region}_gain"] = [round(float(np.clip(g * r, *GAIN)), 4) for g, r in zip(p[f"{region}_gain"], ratios)]
        for key, prop in (("chromatin_contrast", "chromatin_texture"), ("cytoplasm_contrast", "cytoplasm_texture")):
            p[key] = float(np.clip(p[key] * _ratio(real, synthetic, cls, prop), *CONTRAST))
        if cls in fitted.DEFOCUSED:
            p["defocus"] *= _ratio(real, synthetic, cls, "focus", -1.0)
        out["classes"][cls] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in p.items()}
    f = fitted.field(out)
    f["background_od"] = [round(v * _ratio(real, synthetic, "all", f"background_od_{ch}"), 4)
                          for v, ch in zip(f["background_od"], "rgb")]
    f["red_cell_gain"] = [round(v * _ratio(real, synthetic, "all", f"others_od_{ch}"), 4)
                          for v, ch in zip(f["red_cell_gain"], "rgb")]
    crowd = np.sqrt(_ratio(real, synthetic, "all", "others_fraction") * _ratio(real, synthetic, "all",
                                                                                "border_occupancy"))
    f["neighbours"] = round(float(np.clip(f["neighbours"] * crowd, 0.2, 6.0)), 4)
    f["red_cells"] = round(float(np.clip(f["red_cells"] * crowd, 0.5, 12.0)), 4)
    f["blur"] = round(float(np.clip(f["blur"] * _ratio(real, synthetic, "all", "focus", -1.0), 0.3, 4.0)), 4)
    out["field"] = f
    return out


def _background_cov(real: pd.DataFrame) -> list[list[float]]:
    """Covariance over images of the real background's OD (how much the field's tint varies)."""
    od = real[[f"background_od_{ch}" for ch in "rgb"]].dropna().to_numpy()
    return np.round(np.cov(od.T), 6).tolist()


def _mean_ks(real: pd.DataFrame, synthetic: pd.DataFrame) -> float:
    props = [c for c in measure.PROPERTIES if c in synthetic]
    classes = sorted(set(real["cls"]))
    return float(np.nanmean([mismatch(real.loc[real["cls"] == c, p], synthetic.loc[synthetic["cls"] == c, p])
                             for p in props for c in classes]))


def target(cls: str, prop: str) -> np.ndarray:
    """The real quantiles (:data:`QUANTILES`) of ``prop`` for class ``cls``, or over all classes when it has none."""
    classes = load()["classes"]
    got = classes.get(cls, {}).get(prop)
    return np.asarray(got if got is not None else classes["all"][prop], dtype=float)


def mismatch(real: pd.Series, synthetic: pd.Series) -> float:
    """Kolmogorov-Smirnov distance of two samples (0: same distribution, 1: no overlap); NaN if one is empty."""
    from scipy import stats

    a, b = real.dropna().to_numpy(), synthetic.dropna().to_numpy()
    return float(stats.ks_2samp(a, b).statistic) if len(a) and len(b) else float("nan")


def compare(real: pd.DataFrame, synthetic: dict[str, pd.DataFrame]) -> list[dict]:
    """Per property: the real median and each synthetic set's, and the class-averaged KS distance to real."""
    classes = sorted(set(real["cls"]))
    rows = []
    for prop in [c for c in real.columns if c not in ("path", "cls")]:
        row = {"property": prop, "what": measure.PROPERTIES.get(prop, "JPEG quality (IJG)"),
               "real_median": float(real[prop].median())}
        for label, table in synthetic.items():
            row[f"{label}_median"] = float(table[prop].median())
            row[f"{label}_ks"] = float(np.nanmean([mismatch(real.loc[real["cls"] == c, prop],
                                                            table.loc[table["cls"] == c, prop]) for c in classes]))
        row["text"] = describe(row, list(synthetic))
        rows.append(row)
    return rows


def describe(row: dict, labels) -> str:
    """One line of :func:`compare`'s result."""
    parts = [f"{label} {row[f'{label}_median']:.3g} (KS {row[f'{label}_ks']:.2f})" for label in labels]
    return f"{row['what']}: real median {row['real_median']:.3g}; " + "; ".join(parts)


def _calibration_rows(real_root, seed: int = 0) -> pd.DataFrame:
    """The usable images of a real sample's calibration half (:func:`cytokit.data.halves`)."""
    manifest = data.validate(real_root, data.index(real_root, progress=False), progress=False)
    manifest["half"] = data.halves(manifest, seed=seed)
    return manifest[manifest["half"] == data.HALVES[0]]


def main(argv=None) -> None:
    """``python -m cytokit.data.synthetic.calibration [REAL_SAMPLE]``: refit ``calibration.json``."""
    import argparse

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("real", nargs="?", type=Path, default=paths.shared_dir() / "real-sample")
    p.add_argument("--iterations", type=int, default=6)
    p.add_argument("--per-class", type=int, default=24)
    args = p.parse_args(argv)
    fit(args.real, _calibration_rows(args.real), iterations=args.iterations, per_class=args.per_class)
    print(f"wrote {FILE}")


if __name__ == "__main__":
    main()
