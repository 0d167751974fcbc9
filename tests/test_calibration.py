"""The generator fitted to real smears: measurements, the fitted settings, the shipped file, their freshness."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cytokit.data.synthetic import calibration, fitted, measure, scene, writer
from cytokit.data.synthetic.morphology import STAINS

PUBLISHED = Path(__file__).resolve().parents[1] / "cytokit" / "resources" / "sim_to_real.json"
BACKGROUND, CYTOPLASM, NUCLEUS = (228, 228, 238), (150, 130, 200), (60, 25, 140)


def cell_image(neighbour: bool = False) -> np.ndarray:
    """A flat 250 px field: a round cell (radius 60) with a round nucleus (radius 30) at the centre."""
    img = np.zeros((250, 250, 3), np.uint8)
    img[:] = BACKGROUND
    cv2.circle(img, (125, 125), 60, CYTOPLASM, -1)
    cv2.circle(img, (125, 125), 30, NUCLEUS, -1)
    if neighbour:
        cv2.circle(img, (250, 30), 50, CYTOPLASM, -1)
    return img


def props(img) -> dict:
    return dict(zip(measure.PROPERTIES, measure.properties(img)))


def test_optical_density_of_white_and_black():
    od = measure.optical_density(np.array([[[255, 255, 255], [0, 0, 0]]], np.uint8))
    np.testing.assert_allclose(od[0, 0], 0, atol=1e-6)
    np.testing.assert_allclose(od[0, 1], np.log10(256), rtol=1e-6)


def test_properties_of_a_drawn_cell_are_its_colours_and_sizes():
    p = props(cell_image())
    expected = measure.optical_density(np.array([[NUCLEUS, CYTOPLASM, BACKGROUND]], np.uint8))[0]
    np.testing.assert_allclose([p["nucleus_od_r"], p["nucleus_od_g"], p["nucleus_od_b"]], expected[0], rtol=0.01)
    np.testing.assert_allclose([p["cytoplasm_od_r"], p["cytoplasm_od_g"], p["cytoplasm_od_b"]], expected[1],
                               rtol=0.01)
    np.testing.assert_allclose([p["background_od_r"], p["background_od_g"], p["background_od_b"]], expected[2],
                               rtol=0.01)
    assert p["cell_fraction"] == pytest.approx(np.pi * 60 ** 2 / 250 ** 2, rel=0.05)
    assert p["nucleus_fraction"] == pytest.approx(np.pi * 30 ** 2 / 250 ** 2, rel=0.08)
    assert p["lobes"] == 1 and p["nucleus_solidity"] > 0.95
    assert p["border_occupancy"] == 0 and p["others_fraction"] == 0
    assert p["chromatin_texture"] == pytest.approx(0, abs=1e-3)


def test_a_neighbour_cut_by_the_frame_counts_as_crowding_not_as_the_cell():
    alone, crowded = props(cell_image()), props(cell_image(neighbour=True))
    assert crowded["border_occupancy"] > 0.05 and crowded["others_fraction"] > 0.03
    assert crowded["cell_fraction"] == pytest.approx(alone["cell_fraction"], rel=0.02)


def test_blur_lowers_focus_and_two_lobes_are_counted():
    img = cell_image()
    assert props(cv2.GaussianBlur(img, (0, 0), 2.0))["focus"] < 0.7 * props(img)["focus"]
    lobed = cell_image()
    cv2.circle(lobed, (125, 125), 30, CYTOPLASM, -1)
    cv2.circle(lobed, (105, 125), 14, NUCLEUS, -1)
    cv2.circle(lobed, (147, 125), 14, NUCLEUS, -1)
    p = props(lobed)
    assert p["lobes"] == 2 and p["nucleus_solidity"] < 0.8


@pytest.mark.parametrize("quality", [60, 85, 100])
def test_jpeg_quality_is_read_back_from_the_tables(quality):
    ok, buf = cv2.imencode(".jpg", cell_image(), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok and measure.jpeg_quality(buf.tobytes()) == quality
    png = io.BytesIO()
    Image.fromarray(cell_image()).save(png, "PNG")
    assert measure.jpeg_quality(png.getvalue()) is None and measure.jpeg_quality(b"not an image") is None


def test_measured_images_are_checked_before_they_are_decoded(tmp_path):
    big = tmp_path / "big.png"
    Image.new("RGB", (2000, 10)).save(big)
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\xff\xd8 not really")
    for path in (big, junk):
        with pytest.raises(ValueError, match="px|readable"):
            calibration.read_rgb(path)
    ok = tmp_path / "ok.png"
    Image.fromarray(cell_image()).save(ok)
    assert np.array_equal(calibration.read_rgb(ok), cell_image())


def test_od_mixing_scales_each_channels_density_and_keeps_the_stains_mixture():
    gain = np.array([1.5, 0.7, 1.2])
    m = fitted.od_mixing(gain, STAINS)
    c = np.random.default_rng(0).uniform(0, 1, (3, 50))
    np.testing.assert_allclose(STAINS.T @ (m @ c), gain[:, None] * (STAINS.T @ c), rtol=1e-5)
    np.testing.assert_allclose(fitted.od_mixing([1, 1, 1], STAINS), np.eye(3), atol=1e-6)


def test_classes_without_real_images_borrow_their_donors_settings():
    params = {"classes": {"PMO": {"size": 1.2}, "NGS": {"size": 0.9}}}
    assert fitted.class_params(params, "MYB")["size"] == 1.2
    assert fitted.class_params(params, "NGB")["size"] == 0.9
    assert fitted.class_params(params, "PMO")["nucleus_gain"] == [1.0, 1.0, 1.0]
    assert fitted.class_params(None, "BLA") == fitted.CLASS_DEFAULTS


def summary(**medians) -> dict:
    return {"BLA": {p: [v] * len(calibration.QUANTILES) for p, v in medians.items()},
            "all": {p: [v] * len(calibration.QUANTILES) for p, v in medians.items()}}


def test_an_update_moves_each_setting_towards_the_real_medians():
    real = summary(cell_fraction=0.4, nucleus_fraction=0.2, nucleus_od_g=1.0, focus=0.9, others_fraction=0.5,
                   border_occupancy=0.5, background_od_b=0.06)
    synthetic = summary(cell_fraction=0.2, nucleus_fraction=0.1, nucleus_od_g=0.5, focus=1.2, others_fraction=0.25,
                        border_occupancy=0.25, background_od_b=0.03)
    out = calibration.update({"classes": {}, "field": {}}, real, synthetic)
    bla, field = out["classes"]["BLA"], out["field"]
    assert 1.0 < bla["size"] < 2 ** 0.5                      # areas twice as large: radius up, damped
    assert 1.0 < bla["nucleus_gain"][1] < 2.0 and bla["nucleus_gain"][0] == 1.0
    assert field["blur"] > 1.0 and field["neighbours"] > fitted.FIELD_DEFAULTS["neighbours"]
    assert field["background_od"][2] > fitted.FIELD_DEFAULTS["background_od"][2]
    again = calibration.update(out, real, real)
    assert again["classes"]["BLA"] == bla, "at the target nothing moves"


def test_summarise_keeps_quantiles_per_class_only():
    table = pd.DataFrame({"path": [f"x/{i}.jpg" for i in range(30)], "cls": ["BLA"] * 20 + ["EOS"] * 10,
                          "focus": np.linspace(0, 1, 30), "lobes": [np.nan] * 30})
    got = calibration.summarise(table)
    assert set(got) == {"all", "BLA", "EOS"} and got["BLA"]["n"] == 20
    assert len(got["EOS"]["focus"]) == len(calibration.QUANTILES) and got["EOS"]["lobes"] is None
    assert "path" not in got["BLA"]


def test_the_shipped_file_holds_derived_numbers_only():
    text = calibration.FILE.read_text()
    assert len(text) < 60_000
    stats = json.loads(text)
    assert "calibration half" in stats["source"]
    for cls, values in stats["classes"].items():
        assert set(values) - {"n"} <= set(measure.PROPERTIES) | {"jpeg_quality"}
        assert all(v is None or len(v) == len(calibration.QUANTILES) for k, v in values.items() if k != "n")
    assert set(stats["generator"]["classes"]) <= set(stats["classes"])


def test_render_uses_the_shipped_settings_and_other_settings_change_the_image():
    shipped = scene.render("EOS", 3, seed=1, size=64)
    same = scene.render("EOS", 3, seed=1, size=64, params=fitted.shipped())
    plain = scene.render("EOS", 3, seed=1, size=64, params={"classes": {}, "field": {}})
    assert np.array_equal(shipped.image, same.image)
    assert not np.array_equal(shipped.image, plain.image)
    assert np.array_equal(shipped.cell_mask, scene.render("EOS", 3, seed=1, size=64).cell_mask)


def test_the_published_sim_to_real_figure_is_for_this_generator():
    published = json.loads(PUBLISHED.read_text())
    assert published["generator_digest"] == writer.generator_digest(), (
        "the generator changed since bench/sim_to_real.py --publish measured it: run it again")
    ba = published["synthetic"]["balanced_accuracy"]
    assert 0 <= ba["low"] <= ba["estimate"] <= ba["high"] <= 1


def test_the_shipped_generator_matches_the_real_calibration_half():
    """The colours, sizes and crowding of freshly drawn cells fall within the real images' spread."""
    real = calibration.load()["classes"]
    drawn = calibration.measure_rendered(["BLA", "LYT", "NGS"], 8, None, seed=calibration.FIT_SEED + 99)
    inside = []
    for cls, group in drawn.groupby("cls"):
        for prop in ("nucleus_od_g", "cytoplasm_od_g", "background_od_g", "nucleus_fraction", "border_occupancy",
                     "focus"):
            q10, q90 = real[cls][prop][0], real[cls][prop][-1]
            inside.append(q10 <= group[prop].median() <= q90)
    assert np.mean(inside) >= 0.8, inside
