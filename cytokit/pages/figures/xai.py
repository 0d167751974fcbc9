"""Chapter 06's figures: superpixels, sufficiency curves, deletion and insertion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cytokit.pages.figures.style import SPLIT_COLOURS, layout
from cytokit.evaluation.statistics import FEW_IMAGES


def superpixel_histogram(counts, title: str = "Superpixels per image") -> go.Figure:
    fig = go.Figure(go.Histogram(x=np.asarray(counts), marker_color=SPLIT_COLOURS["train"],
                                 hovertemplate="%{x} superpixels: %{y} images<extra></extra>"))
    fig.update_xaxes(title="superpixels in the image")
    fig.update_yaxes(title="images")
    return layout(fig, title, height=320)


def sufficiency_curves(curves: dict[str, pd.DataFrame], metric: str, threshold: float | None = None,
                       title: str | None = None) -> go.Figure:
    """One line per explanation method: ``metric`` against the number of visible superpixels.

    ``curves`` maps a label to a table indexed by n (the last row "all") with ``metric``,
    ``images`` and, when present, the interval ``<metric>_low`` / ``<metric>_high`` drawn as bars;
    a point resting on fewer than :data:`~cytokit.evaluation.statistics.FEW_IMAGES` images is hollow.
    """
    fig = go.Figure()
    dashes = {"random": "dot"}
    for label, table in curves.items():
        bars = None
        if f"{metric}_low" in table:
            bars = dict(type="data", symmetric=False, array=table[f"{metric}_high"] - table[metric],
                        arrayminus=table[metric] - table[f"{metric}_low"], thickness=1)
        fig.add_scatter(x=[str(n) for n in table.index], y=table[metric], mode="lines+markers",
                        name=label, line=dict(dash=dashes.get(label.split()[0], "solid")), error_y=bars,
                        marker=dict(symbol=["circle-open" if k < FEW_IMAGES else "circle" for k in table["images"]]),
                        customdata=table["images"],
                        hovertemplate="n=%{x}: %{y:.1%} (%{customdata} images)<extra>" + label + "</extra>")
    if threshold is not None:
        fig.add_hline(y=threshold, line_dash="dash", line_color="black",
                      annotation_text="2/3 of the full image", annotation_position="bottom right")
    fig.update_xaxes(title="superpixels kept visible (top n of the ranking)", type="category")
    fig.update_yaxes(title=metric.replace("_", " "), range=[0, 1], tickformat=".0%")
    return layout(fig, title or f"{metric.replace('_', ' ').capitalize()} of the explanation images", height=400)


def deletion_insertion(mean_curves: pd.DataFrame, title: str = "Deletion and insertion curves") -> go.Figure:
    """Mean class probability as superpixels are removed (deletion) or revealed (insertion).

    ``mean_curves`` has columns method, kind ("deletion"/"insertion"), fraction, prob.
    """
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, subplot_titles=("deletion (lower is better)",
                                                                           "insertion (higher is better)"))
    palette = {"LIME": "#b5446e", "Grad-CAM": "#3a6ea5", "random": "#8c8c8c"}
    for col, curve in enumerate(("deletion", "insertion"), start=1):
        part = mean_curves[mean_curves["kind"] == curve]
        for method, rows in part.groupby("method", sort=False):
            fig.add_scatter(x=rows["fraction"], y=rows["prob"], mode="lines", name=method,
                            legendgroup=method, showlegend=col == 1,
                            line=dict(color=palette.get(method), dash="dot" if method == "random" else "solid"),
                            row=1, col=col)
    fig.update_xaxes(title="fraction of superpixels", tickformat=".0%")
    fig.update_yaxes(title="probability of the explained class", range=[0, 1], row=1, col=1)
    return layout(fig, title, height=380)


def per_class_curves(table: pd.DataFrame, highlight: str | None = None, least: int = 10,
                     title: str = "Accuracy of each class's explanation images against visible superpixels",
                     counts: pd.Series | None = None) -> go.Figure:
    """One line per class (long table: code, n, images, accuracy, low, high) with interval bars (hollow points:
    fewer than :data:`~cytokit.evaluation.statistics.FEW_IMAGES` images); ``highlight`` thick. With no class in the
    table (none has ``least`` explained images), the explained images per class (``counts``) against ``least``."""
    fig = go.Figure()
    codes = list(dict.fromkeys(table["code"]))
    highlight = highlight if highlight in codes else None
    for code in codes:
        rows = table[table["code"] == code]
        strong = code == highlight
        fig.add_scatter(x=rows["n"], y=rows["accuracy"], mode="lines+markers", name=str(code),
                        line=dict(width=4 if strong else 1.5), opacity=1 if strong or highlight is None else 0.6,
                        error_y=dict(type="data", symmetric=False, array=rows["high"] - rows["accuracy"],
                                     arrayminus=rows["accuracy"] - rows["low"], thickness=1),
                        marker=dict(symbol=["circle-open" if k < FEW_IMAGES else "circle" for k in rows["images"]]),
                        customdata=rows["images"],
                        hovertemplate=f"{code}, n=" + "%{x}: %{y:.1%} (%{customdata} images)<extra></extra>")
    if not codes:
        return _too_few_per_class(counts, least)
    fig.update_xaxes(title="superpixels kept visible", type="category")
    fig.update_yaxes(title="accuracy (the class's recall)", range=[0, 1], tickformat=".0%")
    return layout(fig, title, height=420)


def _too_few_per_class(counts: pd.Series | None, least: int) -> go.Figure:
    """Why no class has a curve: each class's explained images beside the number a curve needs."""
    counts = pd.Series(dtype=int) if counts is None else counts
    fig = go.Figure(go.Bar(x=list(counts.index), y=list(counts.to_numpy()), marker_color="#8c8c8c", name="images"))
    fig.add_hline(y=least, line_dash="dash", annotation_text=f"a curve needs {least}")
    fig.update_xaxes(title="class", type="category")
    fig.update_yaxes(title="explained images")
    return layout(fig, f"Explained images per class: none reaches {least}, so no class has its own curve",
                  height=360)
