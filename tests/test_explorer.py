"""Chapter 06's explorer: a dropdown over images and a slider over n, in plain plotly JSON."""

import base64
import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import plotly
import plotly.io as pio
import pytest

import chromium
from cytokit.pages.figures import sufficiency_explorer

IMAGES, NS, CODES, PX = 3, [1, 2, 5, "all"], ["MON", "BLA", "EOS", "ART", "LYT"], 48


def shade(i, k) -> int:
    """A grey level unique to (image i, step k), far enough from the others to survive JPEG."""
    return 20 + 15 * (i * len(NS) + k)


def data():
    """Flat occluded images whose grey level names their (image, n), and distinct probabilities."""
    images = [[np.full((PX, PX, 3), shade(i, k), np.uint8) for k in range(len(NS))] for i in range(IMAGES)]
    probs = np.random.default_rng(0).dirichlet(np.ones(len(CODES)), (IMAGES, len(NS)))
    return images, [f"image {i}" for i in range(IMAGES)], probs


@pytest.fixture(scope="module")
def figure():
    images, titles, probs = data()
    return sufficiency_explorer(images, titles, NS, CODES, probs, true_labels=["BLA", 3, "LYT"])


def decode(uri: str) -> np.ndarray:
    head, payload = uri.split(",", 1)
    assert head in ("data:image/jpeg;base64", "data:image/png;base64")
    return cv2.imdecode(np.frombuffer(base64.b64decode(payload), np.uint8), cv2.IMREAD_COLOR)


def traces_of(fig, i, k) -> set[int]:
    """The traces that show (image i, step k), found by content: its grey level and its probabilities."""
    _, _, probs = data()
    expected = dict(zip(CODES, probs[i, k]))
    found = set()
    for t, trace in enumerate(fig.data):
        if trace.type == "image" and abs(decode(trace.source).mean() - shade(i, k)) < 4:
            found.add(t)
        if trace.type == "bar" and np.allclose(trace.x, [expected[c] for c in trace.y]):
            found.add(t)
    assert len(found) == 2, f"expected one image and one bar trace for ({i}, {k}), found {found}"
    return found


def apply(state: dict, args: list) -> None:
    """What plotly.js does for a control with method "update": restyle visibility, relayout the rest."""
    state["visible"] = list(args[0]["visible"])
    for key, value in (args[1] if len(args) > 1 else {}).items():
        j, attr = re.fullmatch(r"sliders\[(\d+)\]\.(\w+)", key).groups()
        state["sliders"][int(j)][attr] = value


def initial(fig) -> dict:
    return {"visible": [t.visible is not False for t in fig.data],
            "sliders": [{"visible": s.visible, "active": s.active} for s in fig.layout.sliders]}


def shown(state) -> set[int]:
    return {t for t, v in enumerate(state["visible"]) if v is True}


def test_it_has_one_dropdown_button_per_image_and_one_slider_per_image_with_a_step_per_n(figure):
    assert len(figure.layout.updatemenus) == 1
    assert [b.label for b in figure.layout.updatemenus[0].buttons] == [f"image {i}" for i in range(IMAGES)]
    assert len(figure.layout.sliders) == IMAGES
    for slider in figure.layout.sliders:
        assert [s.label for s in slider.steps] == [str(n) for n in NS]
    assert all(c.method == "update" for c in figure.layout.updatemenus[0].buttons)


def test_it_opens_on_the_first_image_at_the_first_n(figure):
    state = initial(figure)
    assert shown(state) == traces_of(figure, 0, 0)
    assert [s["visible"] for s in state["sliders"]] == [True] + [False] * (IMAGES - 1)


@pytest.mark.parametrize("j", range(IMAGES))
def test_choosing_an_image_then_an_n_shows_exactly_that_pair(figure, j):
    state = initial(figure)
    apply(state, figure.layout.updatemenus[0].buttons[j].args)
    assert shown(state) == traces_of(figure, j, 0)
    assert [s["visible"] for s in state["sliders"]] == [i == j for i in range(IMAGES)]
    assert state["sliders"][j]["active"] == 0, "the slider must show the n whose image is on screen"
    for k in range(len(NS)):
        apply(state, figure.layout.sliders[j].steps[k].args)
        assert shown(state) == traces_of(figure, j, k)


def test_coming_back_to_an_image_puts_its_slider_back_at_the_first_n(figure):
    state = initial(figure)
    apply(state, figure.layout.updatemenus[0].buttons[2].args)
    apply(state, figure.layout.sliders[2].steps[3].args)
    state["sliders"][2]["active"] = 3
    apply(state, figure.layout.updatemenus[0].buttons[1].args)
    apply(state, figure.layout.updatemenus[0].buttons[2].args)
    assert shown(state) == traces_of(figure, 2, 0) and state["sliders"][2]["active"] == 0


def test_images_are_inline_and_shrunk_to_the_requested_size():
    images, titles, probs = data()
    big = [[np.full((250, 250, 3), 90, np.uint8) for _ in NS] for _ in range(IMAGES)]
    fig = sufficiency_explorer(big, titles, NS, CODES, probs, size_px=64)
    sources = [t.source for t in fig.data if t.type == "image"]
    assert len(sources) == IMAGES * len(NS)
    assert all(s.startswith("data:image/") for s in sources)
    assert {decode(s).shape[:2] for s in sources} == {(64, 64)}


def test_bars_list_classes_alphabetically_mark_the_prediction_and_the_true_class(figure):
    _, _, probs = data()
    bars = [t for t in figure.data if t.type == "bar"]
    assert all(list(b.y) == sorted(CODES) for b in bars)
    assert list(figure.layout.yaxis2.categoryarray) == sorted(CODES)[::-1], "first code at the top"
    for t in traces_of(figure, 1, 2):
        bar = figure.data[t]
        if bar.type != "bar":
            continue
        predicted = CODES[int(np.argmax(probs[1, 2]))]
        colours = dict(zip(bar.y, bar.marker.color))
        others = {colours[c] for c in CODES if c != predicted}
        assert len(others) == 1 and colours[predicted] not in others, "only the prediction stands out"
        widths = dict(zip(bar.y, bar.marker.line.width))
        assert [c for c, w in widths.items() if w > 0] == ["ART"], "true label 3 is CODES[3] = ART"
        assert "predicted" in dict(zip(bar.y, bar.text))[predicted]


def test_mismatched_inputs_are_refused_with_the_argument_named():
    images, titles, probs = data()
    with pytest.raises(ValueError, match="probs"):
        sufficiency_explorer(images, titles, NS, CODES, probs[:, :2])
    with pytest.raises(ValueError, match="images"):
        sufficiency_explorer(images[:2], titles, NS, CODES, probs)
    with pytest.raises(ValueError, match="true label"):
        sufficiency_explorer(images, titles, NS, CODES, probs, true_labels=["BLA", "XYZ", "LYT"])


# In the browser: the page drives the controls as a reader would (a click on the dropdown,
# a press on the slider's rail) and writes what is on screen into the DOM for --dump-dom.
# Headless Chromium under a virtual-time budget runs animation frames only now and then,
# and plotly.js runs a slider step in one, so the page runs frames on timers instead.
DRIVER = """
window.requestAnimationFrame = (cb) => setTimeout(() => cb(performance.now()), 16);
(function () {
  const wait = (ms) => new Promise((r) => setTimeout(r, ms));
  const press = (el, type, x) => {
    const box = el.getBoundingClientRect();
    el.dispatchEvent(new MouseEvent(type, {bubbles: true, view: window, clientY: box.y + box.height / 2,
                                          clientX: x === undefined ? box.x + box.width / 2 : x}));
  };
  const state = (gd) => ({
    shown: gd.data.map((t, i) => (t.visible === true ? i : -1)).filter((i) => i >= 0),
    sliders: gd._fullLayout.sliders.map((s) => [s.visible, s.visible ? s.active : null]),
    label: document.querySelector(".slider-group > text.slider-label").textContent});
  async function choose(image) {
    press(document.querySelector(".updatemenu-header"), "click");
    await wait(300);
    press(document.querySelectorAll(".updatemenu-dropdown-button")[image], "click");
    await wait(600);
  }
  async function slide(gd, step) {
    const label = document.querySelectorAll(".slider-label-group")[step].getBoundingClientRect();
    const rail = document.querySelector(".slider-rail-touch-rect");
    press(rail, "mousedown", label.x + label.width / 2);
    press(gd, "mouseup");
    await wait(600);
  }
  window.addEventListener("load", async () => {
    const gd = document.querySelector(".plotly-graph-div");
    while (!gd._fullLayout) await wait(50);
    const seen = [state(gd)];
    await choose(2); await slide(gd, 3); seen.push(state(gd));
    await choose(1); seen.push(state(gd));
    await choose(2); seen.push(state(gd));
    const out = document.createElement("pre");
    out.id = "explorer-state";
    out.textContent = JSON.stringify(seen);
    document.body.appendChild(out);
  });
})();
"""


def offline_page(fig, folder: Path, driver: bool) -> Path:
    """The figure as the book writes it, plotly.js from a local file beside the page, nothing from the network."""
    shutil.copy(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", folder / "plotly.min.js")
    html = pio.to_html(fig, include_plotlyjs=False, include_mathjax=False, full_html=False)
    script = f"<script>{DRIVER}</script>" if driver else ""
    page = folder / "explorer.html"
    page.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"><script src="plotly.min.js"></script>'
                    f"{script}</head><body>{html}</body></html>", encoding="utf-8")
    return page


def require_chromium():
    if chromium.executable() is None:
        pytest.skip("Debian chromium is not installed (apt-get install chromium); .ci/run installs it")


@pytest.mark.slow
def test_the_explorer_draws_offline_with_its_dropdown_and_slider(figure, tmp_path):
    require_chromium()
    dom, console = chromium.render(offline_page(figure, tmp_path, driver=False))
    assert chromium.count_figures(dom) >= 1, "the figure did not draw"
    assert 'class="updatemenu-container"' in dom and 'class="updatemenu-header"' in dom
    assert 'class="slider-container"' in dom and 'class="slider-rail-touch-rect"' in dom
    assert console == [], f"console messages: {console}"


@pytest.mark.slow
def test_the_controls_work_in_the_browser(figure, tmp_path):
    require_chromium()
    dom, console = chromium.render(offline_page(figure, tmp_path, driver=True))
    found = re.search(r'<pre id="explorer-state">(.*?)</pre>', dom)
    assert found, f"the page's driver did not finish; console: {console}"
    seen = json.loads(found.group(1))
    off = [False, None]

    def expect(j, k):
        return {"shown": sorted(traces_of(figure, j, k)),
                "sliders": [[True, k] if i == j else off for i in range(IMAGES)],
                "label": f"superpixels kept: {NS[k]}"}
    assert seen == [expect(0, 0), expect(2, 3), expect(1, 0), expect(2, 0)]
    assert console == [], f"console messages: {console}"
