"""Chapter 06's explorer: pick an image, slide n, see the top-n superpixels and the model's call.

Plotly has no state shared between a dropdown and a slider, so the figure holds one image
trace and one bar trace per (image, n), one slider per image, and a dropdown whose buttons
show the chosen image at its first n, make that image's slider the only visible one and
move it back to its first step. Every control is plain plotly JSON, so the figure works in
the static book with no server.
"""

from __future__ import annotations

import base64

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cytokit.pages.figures.style import SPLIT_COLOURS, layout

BAR_COLOUR = "#c8c8c8"
PREDICTED_COLOUR = SPLIT_COLOURS["test"]
TRUE_OUTLINE = "#000000"


def _jpeg_uri(image: np.ndarray, size_px: int = 128, quality: int = 85) -> str:
    """A uint8 RGB image, shrunk to at most ``size_px`` on its longer side, as an inline JPEG."""
    import cv2

    image = np.ascontiguousarray(image, dtype=np.uint8)
    scale = size_px / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("could not encode image for display")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _bar_labels(codes: list[str], predicted: str, true: str | None) -> list[str]:
    """Text beside each bar: which bar is the prediction and which the true class."""
    def label(code):
        marks = [word for word, hit in (("true", code == true), ("predicted", code == predicted)) if hit]
        return " & ".join(marks)
    return [label(c) for c in codes]


def _probability_bars(p: np.ndarray, codes: list[str], true: str | None, visible: bool) -> go.Bar:
    """Horizontal bars of one occluded image's class probabilities, prediction coloured, true class outlined."""
    predicted = codes[int(np.argmax(p))]
    return go.Bar(x=p, y=codes, orientation="h", visible=visible, showlegend=False,
                  marker=dict(color=[PREDICTED_COLOUR if c == predicted else BAR_COLOUR for c in codes],
                              line=dict(color=TRUE_OUTLINE, width=[2.5 if c == true else 0 for c in codes])),
                  text=_bar_labels(codes, predicted, true), textposition="outside", cliponaxis=False,
                  hovertemplate="%{y}: %{x:.1%}<extra></extra>")


def visibility(images: int, steps: int, shown: tuple[int, int]) -> list[bool]:
    """Trace visibility with only (image, step) shown; traces are (image, bars) pairs in image-major order."""
    flags = [False] * (2 * images * steps)
    first = 2 * (shown[0] * steps + shown[1])
    flags[first] = flags[first + 1] = True
    return flags


def _image_slider(i: int, images: int, ns, visible: bool) -> dict:
    """Image ``i``'s slider: one step per n, each showing only that image's traces for that n."""
    steps = [dict(label=str(n), method="update", args=[{"visible": visibility(images, len(ns), (i, k))}])
             for k, n in enumerate(ns)]
    return dict(active=0, visible=visible, steps=steps, x=0.0, len=0.45, y=0, yanchor="top",
                pad=dict(t=30), currentvalue=dict(prefix="superpixels kept: "))


def _image_menu(titles, ns) -> dict:
    """The dropdown: each button shows its image at the first n and makes that image's slider the visible one."""
    count = len(titles)
    buttons = []
    for j, title in enumerate(titles):
        sliders = {f"sliders[{i}].visible": i == j for i in range(count)}
        sliders[f"sliders[{j}].active"] = 0
        shown = {"visible": visibility(count, len(ns), (j, 0))}
        buttons.append(dict(label=title, method="update", args=[shown, sliders]))
    return dict(buttons=buttons, active=0, direction="down", x=0.0, xanchor="left", y=1.1, yanchor="bottom",
                showactive=True)


def _check_shapes(images, titles, ns, class_names, probs: np.ndarray, true_labels) -> None:
    """Raise ValueError naming the argument whose length does not match the others."""
    expected = (len(titles), len(ns), len(class_names))
    if probs.shape != expected:
        raise ValueError(f"probs has shape {probs.shape}; expected (images, ns, classes) = {expected}")
    if len(images) != len(titles) or any(len(row) != len(ns) for row in images):
        raise ValueError(f"images must hold {len(ns)} occluded images (one per n) for each of the {len(titles)} titles")
    if true_labels is not None and len(true_labels) != len(titles):
        raise ValueError(f"true_labels has {len(true_labels)} entries; expected one per image ({len(titles)})")


def _class_code(label, class_names) -> str:
    """A true label, given as a code or as an index into ``class_names``, as its class code."""
    code = str(class_names[int(label)]) if isinstance(label, (int, np.integer)) else str(label)
    if code not in [str(c) for c in class_names]:
        raise ValueError(f"true label {label!r} is not one of class_names")
    return code


def sufficiency_explorer(images, titles, ns, class_names, probs, fill_name: str = "grey", true_labels=None,
             size_px: int = 128, title: str = "What the model sees: the top-n superpixels kept") -> go.Figure:
    """Dropdown over images, slider over n: image i with its top-n superpixels kept beside the model's probabilities.

    ``images[i][k]`` is the uint8 RGB occluded image of image i at n = ``ns[k]``;
    ``probs[i, k, :]`` the model's class probabilities for it, in ``class_names`` order;
    ``true_labels[i]`` (optional) the class of image i, a code or an index into
    ``class_names``. Classes are listed in alphabetical order of their codes; images are
    embedded as JPEGs of at most ``size_px`` on a side.
    """
    probs = np.asarray(probs, dtype=float)
    _check_shapes(images, titles, ns, class_names, probs, true_labels)
    order = np.argsort([str(c) for c in class_names])
    codes = [str(class_names[c]) for c in order]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.45, 0.55], horizontal_spacing=0.12,
                        subplot_titles=(f"top-n superpixels kept, the rest filled ({fill_name})",
                                        "the model's class probabilities"))
    for i, row in enumerate(images):
        true = None if true_labels is None else _class_code(true_labels[i], class_names)
        for k, image in enumerate(row):
            shown = (i, k) == (0, 0)
            fig.add_trace(go.Image(source=_jpeg_uri(image, size_px), visible=shown, hoverinfo="skip"), row=1, col=1)
            fig.add_trace(_probability_bars(probs[i, k, order], codes, true, shown), row=1, col=2)
    fig.update_xaxes(visible=False, row=1, col=1)
    fig.update_yaxes(visible=False, row=1, col=1)
    fig.update_xaxes(range=[0, 1.3], tickvals=[0, 0.25, 0.5, 0.75, 1], tickformat=".0%", title="probability",
                     row=1, col=2)
    fig.update_yaxes(categoryorder="array", categoryarray=codes[::-1], title="class", row=1, col=2)
    fig.update_layout(updatemenus=[_image_menu(titles, ns)],
                      sliders=[_image_slider(i, len(titles), ns, i == 0) for i in range(len(titles))])
    layout(fig, title, height=max(500, 220 + 18 * len(codes)))
    # Fixed margins: with automatic ones, swapping the visible slider re-lays the figure out
    # in the middle of the dropdown's update and plotly.js logs invalid colours and NaN image sizes.
    return fig.update_layout(margin=dict(t=130, b=140, autoexpand=False), title=dict(y=0.98, yanchor="top"))
