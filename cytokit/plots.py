"""Plotly figures for the book. Functions return figures and never call ``show()``.

Under the book runner (``CYTOKIT_BOOK=1``) importing this module installs the
``cytokit`` renderer: each figure becomes an HTML fragment that expects plotly.js on
the page (the book ships plotly.js in ``_static/``), because Jupyter Book 1 cannot
render plotly's own MIME type and the book must work with no network access.
Interactively (JupyterLab) plotly's own MIME renderer is used.
"""

from __future__ import annotations

import base64
import os

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.io.base_renderers import MimetypeRenderer
from plotly.subplots import make_subplots

from cytokit import classes

LINEAGE_COLOURS = {"myelopoiesis": "#b5446e", "lymphopoiesis": "#3a6ea5", "other": "#8c8c8c"}
SPLIT_COLOURS = {"train": "#3a6ea5", "val": "#e0a030", "test": "#b5446e"}
TEMPLATE = "plotly_white"


class BookRenderer(MimetypeRenderer):
    """Plotly JSON for JupyterLab plus an offline HTML fragment for Jupyter Book."""

    def to_mimebundle(self, fig_dict):
        html = pio.to_html(fig_dict, include_plotlyjs=False, include_mathjax=False,
                           full_html=False, validate=False)
        return {"text/html": html}


def use_book_renderer() -> None:
    """Make every figure displayed from now on render offline in the book."""
    pio.renderers["cytokit"] = BookRenderer()
    pio.renderers.default = "cytokit"


if os.environ.get("CYTOKIT_BOOK") == "1":
    use_book_renderer()


def _layout(fig: go.Figure, title: str, height: int | None = None) -> go.Figure:
    fig.update_layout(template=TEMPLATE, title=title, margin=dict(l=60, r=20, t=60, b=50))
    if height:
        fig.update_layout(height=height)
    return fig


def class_distribution(summary: pd.DataFrame, log: bool = True) -> go.Figure:
    """Images per class in this dataset beside the study's share (Table 2.2.1).

    ``summary`` has one row per class code with columns ``images`` and, optionally,
    ``study_percent``; bars are coloured by lineage.
    """
    df = summary.reset_index() if "code" not in summary.columns else summary
    total = df["images"].sum()
    fig = go.Figure()
    for lineage, colour in LINEAGE_COLOURS.items():
        part = df[df["code"].map(classes.lineage_of) == lineage]
        if part.empty:
            continue
        fig.add_bar(x=part["code"], y=part["images"], name=lineage, marker_color=colour,
                    customdata=np.stack([100 * part["images"] / total], axis=-1),
                    hovertemplate="%{x}: %{y} images (%{customdata[0]:.2f} %)<extra></extra>")
    if "study_percent" in df.columns:
        fig.add_scatter(x=df["code"], y=df["study_percent"] / 100 * total, mode="markers",
                        name="study's share, scaled", marker=dict(symbol="line-ew-open", size=18,
                                                                   color="black", line_width=2),
                        hovertemplate="%{x}: study %{customdata:.3f} %<extra></extra>",
                        customdata=df["study_percent"])
    fig.update_xaxes(categoryorder="array", categoryarray=list(df["code"]))
    fig.update_yaxes(type="log" if log else "linear", title="images")
    return _layout(fig, "Images per class", height=420)


def class_pie(summary: pd.DataFrame, min_percent: float = 1.0) -> go.Figure:
    """Share of each class; classes under ``min_percent`` are pooled as 'rare classes'."""
    df = summary.reset_index() if "code" not in summary.columns else summary
    share = 100 * df["images"] / df["images"].sum()
    big = df[share >= min_percent]
    rare = df[share < min_percent]
    labels = list(big["code"]) + (["rare classes"] if len(rare) else [])
    values = list(big["images"]) + ([int(rare["images"].sum())] if len(rare) else [])
    fig = go.Figure(go.Pie(labels=labels, values=values, sort=False, hole=0.35,
                           textinfo="label+percent"))
    title = "Share of images per class"
    if len(rare):
        title += f" (rare classes: {', '.join(rare['code'])})"
    return _layout(fig, title, height=460)


def _png_uri(image: np.ndarray) -> str:
    import cv2

    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("could not encode image for display")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def image_grid(images: dict[str, list[np.ndarray]], columns: int | None = None,
               tile_px: int = 96, title: str = "Example images") -> go.Figure:
    """One row per class (label on the left), a few example images each.

    Images are uint8 RGB; they are embedded as small PNGs to keep the page light.
    """
    import cv2

    codes = list(images)
    columns = columns or max(len(v) for v in images.values())
    fig = make_subplots(rows=len(codes), cols=columns, horizontal_spacing=0.005,
                        vertical_spacing=0.004, row_titles=codes)
    for r, code in enumerate(codes, start=1):
        for c, img in enumerate(images[code][:columns], start=1):
            small = cv2.resize(img, (tile_px, tile_px), interpolation=cv2.INTER_AREA)
            fig.add_trace(go.Image(source=_png_uri(small), hovertemplate=f"{code}<extra></extra>"),
                          row=r, col=c)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.for_each_annotation(lambda a: a.update(textangle=0, xanchor="left"))
    height = 40 + len(codes) * (tile_px + 6)
    fig.update_layout(width=60 + columns * (tile_px + 6) + 60)
    return _layout(fig, title, height=height)


def split_proportions(summary: pd.DataFrame, expected: dict[str, float] | None = None) -> go.Figure:
    """Share of each class in train/val/test: equal bars mean the split is stratified.

    ``summary`` has per-class columns ``train``, ``val``, ``test`` (counts).
    """
    df = summary.reset_index() if "code" not in summary.columns else summary
    totals = df[["train", "val", "test"]].sum(axis=1).replace(0, np.nan)
    fig = go.Figure()
    for split in ("train", "val", "test"):
        fig.add_bar(x=df["code"], y=df[split] / totals, name=split,
                    marker_color=SPLIT_COLOURS[split], customdata=df[split],
                    hovertemplate="%{x} " + split + ": %{y:.1%} (%{customdata} images)<extra></extra>")
    fig.update_layout(barmode="stack")
    for level in np.cumsum([v for v in (expected or {}).values()])[:-1]:
        fig.add_hline(y=level, line_dash="dot", line_color="black")
    fig.update_yaxes(tickformat=".0%", title="share of the class", range=[0, 1])
    return _layout(fig, "Split of every class into train / validation / test", height=380)


def training_curves(history: dict, title: str = "Training curves",
                    reference: dict | None = None, reference_label: str = "study") -> go.Figure:
    """Accuracy and loss per epoch, training vs validation, side by side.

    ``reference`` is another history (e.g. the study's own curves) drawn dotted.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("accuracy", "loss"))
    for col, metric in enumerate(("accuracy", "loss"), start=1):
        for key, colour, label in ((metric, SPLIT_COLOURS["train"], "training"),
                                   (f"val_{metric}", SPLIT_COLOURS["val"], "validation")):
            if key in history:
                ys = history[key]
                fig.add_scatter(x=list(range(1, len(ys) + 1)), y=ys, mode="lines+markers",
                                name=label, legendgroup=label, showlegend=col == 1,
                                line=dict(color=colour), row=1, col=col)
            if reference and key in reference:
                ys = reference[key]
                fig.add_scatter(x=list(range(1, len(ys) + 1)), y=ys, mode="lines",
                                name=f"{label} ({reference_label})", legendgroup=f"ref-{label}",
                                showlegend=col == 1, line=dict(color=colour, dash="dot"),
                                row=1, col=col)
    fig.update_xaxes(title="epoch")
    return _layout(fig, title, height=380)


def confusion_heatmap(cm: pd.DataFrame, normalized: bool = False, title: str | None = None,
                      drop_empty: bool = True) -> go.Figure:
    """Confusion matrix as a heatmap: rows true class, columns predicted class.

    ``drop_empty`` leaves out classes that are neither present nor predicted, so a
    dataset holding 14 of the 21 classes shows a 14-class matrix.
    """
    if drop_empty:
        used = (cm.sum(axis=1) > 0) | (cm.sum(axis=0) > 0)
        cm = cm.loc[used, used]
    z = cm.to_numpy(dtype=float)
    text = [[(f"{v:.2f}" if normalized else f"{int(v)}") if v else "" for v in row] for row in z]
    fig = go.Figure(go.Heatmap(
        z=z, x=list(cm.columns), y=list(cm.index), colorscale="Blues", text=text,
        texttemplate="%{text}", textfont=dict(size=9),
        zmin=0, zmax=1 if normalized else None,
        hovertemplate="true %{y}, predicted %{x}: %{z" + (":.1%" if normalized else "") + "}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title="true class", type="category")
    fig.update_xaxes(title="predicted class", type="category", tickangle=-45)
    side = 120 + 26 * len(cm)
    fig.update_layout(width=side + 120)
    default = "Confusion matrix" + (" (row-normalised: recall on the diagonal)" if normalized else " (counts)")
    return _layout(fig, title or default, height=side)


def per_class_comparison(table: pd.DataFrame, columns: list[str], title: str,
                         names: list[str] | None = None) -> go.Figure:
    """Grouped bars of one metric per class for several models or sources."""
    fig = go.Figure()
    for col, name in zip(columns, names or columns):
        fig.add_bar(x=list(table.index), y=table[col], name=name)
    fig.update_layout(barmode="group")
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    return _layout(fig, title, height=380)


def hyperparameter_scatter(trials: pd.DataFrame, params: list[str], score: str = "val_accuracy",
                           title: str = "Validation accuracy of every trial against each hyperparameter") -> go.Figure:
    """One panel per hyperparameter: every trial's score against its value (jittered)."""
    rng = np.random.default_rng(0)
    fig = make_subplots(rows=1, cols=len(params), shared_yaxes=True, subplot_titles=params)
    for i, p in enumerate(params, start=1):
        values = trials[p].astype(str)
        cats = sorted(values.unique(), key=lambda v: (len(v), v))
        pos = values.map({c: j for j, c in enumerate(cats)}).to_numpy(float)
        fig.add_scatter(x=pos + rng.uniform(-0.15, 0.15, len(pos)), y=trials[score], mode="markers",
                        marker=dict(size=8, opacity=0.75, color=SPLIT_COLOURS["train"]),
                        text=[f"trial {t}" for t in trials.index], showlegend=False,
                        hovertemplate="%{text}: " + p + "=%{customdata}, " + score + " %{y:.3f}<extra></extra>",
                        customdata=values, row=1, col=i)
        fig.update_xaxes(tickvals=list(range(len(cats))), ticktext=cats, row=1, col=i)
    fig.update_yaxes(title=score, row=1, col=1)
    return _layout(fig, title, height=360)


def headline_bars(headline: pd.DataFrame, metrics_shown=("accuracy", "balanced_accuracy", "f1")) -> go.Figure:
    """Grouped bars: each model's validation and test figure for a few headline metrics.

    ``headline`` is indexed by (model, metric) with columns ``validation`` and ``test``.
    """
    models = list(dict.fromkeys(headline.index.get_level_values(0)))
    fig = make_subplots(rows=1, cols=len(metrics_shown), shared_yaxes=True,
                        subplot_titles=[m.replace("_", " ") for m in metrics_shown])
    for i, metric in enumerate(metrics_shown, start=1):
        for split in ("validation", "test"):
            ys = [headline.loc[(m, metric), split] for m in models]
            fig.add_bar(x=models, y=ys, name=split, legendgroup=split, showlegend=i == 1,
                        marker_color=SPLIT_COLOURS["val" if split == "validation" else "test"],
                        hovertemplate="%{x} " + split + ": %{y:.1%}<extra></extra>", row=1, col=i)
    fig.update_layout(barmode="group")
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    return _layout(fig, "The three models on validation and test", height=380)


def superpixel_histogram(counts, title: str = "Superpixels per image") -> go.Figure:
    fig = go.Figure(go.Histogram(x=np.asarray(counts), marker_color=SPLIT_COLOURS["train"],
                                 hovertemplate="%{x} superpixels: %{y} images<extra></extra>"))
    fig.update_xaxes(title="superpixels in the image")
    fig.update_yaxes(title="images")
    return _layout(fig, title, height=320)


def sufficiency_curves(curves: dict[str, pd.DataFrame], metric: str, threshold: float | None = None,
                       title: str | None = None) -> go.Figure:
    """One line per explanation method: ``metric`` against the number of visible superpixels.

    ``curves`` maps a label to a sufficiency summary (index n, the last row "all").
    """
    fig = go.Figure()
    dashes = {"random": "dot"}
    for label, table in curves.items():
        fig.add_scatter(x=[str(n) for n in table.index], y=table[metric], mode="lines+markers",
                        name=label, line=dict(dash=dashes.get(label.split()[0], "solid")),
                        customdata=table["images"],
                        hovertemplate="n=%{x}: %{y:.1%} (%{customdata} images)<extra>" + label + "</extra>")
    if threshold is not None:
        fig.add_hline(y=threshold, line_dash="dash", line_color="black",
                      annotation_text="2/3 of the full image", annotation_position="bottom right")
    fig.update_xaxes(title="superpixels kept visible (top n of the ranking)", type="category")
    fig.update_yaxes(title=metric.replace("_", " "), range=[0, 1], tickformat=".0%")
    return _layout(fig, title or f"{metric.replace('_', ' ').capitalize()} of the explanation images", height=400)


def per_class_lines(table: pd.DataFrame, highlight: str | None = None,
                    title: str = "Precision per class against visible superpixels") -> go.Figure:
    """Rows classes, columns n: one line per class, ``highlight`` drawn thick."""
    fig = go.Figure()
    for code, row in table.iterrows():
        strong = code == highlight
        fig.add_scatter(x=[str(c) for c in table.columns], y=row.values, mode="lines+markers", name=str(code),
                        line=dict(width=4 if strong else 1.5), opacity=1 if strong or highlight is None else 0.55)
    fig.update_xaxes(title="superpixels kept visible", type="category")
    fig.update_yaxes(title="precision", range=[0, 1], tickformat=".0%")
    return _layout(fig, title, height=420)


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
    return _layout(fig, title, height=380)
