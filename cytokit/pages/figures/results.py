"""Figures of results (chapters 02-05): confusion matrices and per-class and headline bars."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cytokit.pages.figures.style import SPLIT_COLOURS, layout


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
    return layout(fig, title or default, height=side)


def per_class_comparison(table: pd.DataFrame, columns: list[str], title: str,
                         names: list[str] | None = None, metric: str = "score") -> go.Figure:
    """Grouped bars of one metric per class for several models or sources."""
    fig = go.Figure()
    for col, name in zip(columns, names or columns):
        fig.add_bar(x=list(table.index), y=table[col], name=name)
    fig.update_layout(barmode="group")
    fig.update_xaxes(title="class")
    fig.update_yaxes(range=[0, 1], tickformat=".0%", title=metric)
    return layout(fig, title, height=380)


def headline_bars(headline: pd.DataFrame, metrics_shown=("accuracy", "balanced_accuracy", "f1"),
                  evaluated: str = "test") -> go.Figure:
    """Grouped bars of each model's validation and evaluated-images figure, with 95 % intervals as error bars.

    ``headline`` is indexed by (model, metric) with columns ``validation``, ``test`` (the
    evaluated images, named ``evaluated`` in the legend) and their ``_low`` / ``_high``
    bounds; a column without any value (models imported without validation predictions)
    draws no bars.
    """
    models = list(dict.fromkeys(headline.index.get_level_values(0)))
    splits = [s for s in ("validation", "test") if headline[s].notna().any()]
    fig = make_subplots(rows=1, cols=len(metrics_shown), shared_yaxes=True,
                        subplot_titles=[m.replace("_", " ") for m in metrics_shown])
    for i, metric in enumerate(metrics_shown, start=1):
        for split in splits:
            name = "validation" if split == "validation" else evaluated
            rows = headline.xs(metric, level="metric").reindex(models)
            fig.add_bar(x=models, y=rows[split], name=name, legendgroup=split, showlegend=i == 1,
                        error_y=dict(type="data", symmetric=False, array=rows[f"{split}_high"] - rows[split],
                                     arrayminus=rows[split] - rows[f"{split}_low"], thickness=1.2),
                        marker_color=SPLIT_COLOURS["val" if split == "validation" else "test"],
                        customdata=rows[[f"{split}_low", f"{split}_high"]].to_numpy(),
                        hovertemplate="%{x} " + name + ": %{y:.1%} (95 % interval %{customdata[0]:.1%}–"
                        "%{customdata[1]:.1%})<extra></extra>", row=1, col=i)
        fig.update_xaxes(title="model", row=1, col=i)
    fig.update_layout(barmode="group")
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    fig.update_yaxes(title="score (95 % interval)", row=1, col=1)
    shown = " and ".join("validation" if s == "validation" else evaluated for s in splits)
    return layout(fig, f"The three models on {shown}, with 95 % intervals", height=420)


def seed_points(runs: dict[str, pd.DataFrame], metric: str = "balanced_accuracy",
                title: str = "Validation balanced accuracy of every training seed") -> go.Figure:
    """One point per model and seed with its 95 % interval, to show how much the seed moves a model.

    ``runs`` maps a model name to a table indexed by seed with ``metric`` and its
    ``_low`` / ``_high`` bounds.
    """
    fig = go.Figure()
    palette = ["#3a6ea5", "#b5446e", "#e0a030", "#5a9a5a"]
    for k, (name, table) in enumerate(runs.items()):
        fig.add_scatter(x=[f"seed {s}" for s in table.index], y=table[metric], mode="markers", name=name,
                        marker=dict(size=10, color=palette[k % len(palette)]),
                        error_y=dict(type="data", symmetric=False, array=table[f"{metric}_high"] - table[metric],
                                     arrayminus=table[metric] - table[f"{metric}_low"]),
                        hovertemplate=name + ", %{x}: %{y:.1%}<extra></extra>")
    fig.update_xaxes(title="training seed")
    fig.update_yaxes(range=[0, 1], tickformat=".0%", title=metric.replace("_", " "))
    fig.update_layout(scattermode="group")
    return layout(fig, title, height=380)


def confusion_panels(matrices: dict, title: str) -> go.Figure:
    """Row-normalised confusion matrices side by side, one panel per key (e.g. per n), on shared axes."""
    keys = list(matrices)
    used = None
    for cm in matrices.values():
        mask = (cm.sum(axis=1) > 0) | (cm.sum(axis=0) > 0)
        used = mask if used is None else (used | mask)
    fig = make_subplots(rows=1, cols=len(keys), shared_yaxes=True, subplot_titles=[f"n = {k}" for k in keys],
                        horizontal_spacing=0.02)
    for i, key in enumerate(keys, start=1):
        cm = matrices[key].loc[used, used]
        fig.add_trace(go.Heatmap(z=cm.to_numpy(dtype=float), x=list(cm.columns), y=list(cm.index),
                                 colorscale="Blues", zmin=0, zmax=1, showscale=i == len(keys),
                                 hovertemplate="true %{y}, predicted %{x}: %{z:.1%}<extra>n = " + str(key)
                                 + "</extra>"), row=1, col=i)
        fig.update_xaxes(type="category", tickangle=-45, title="predicted class", row=1, col=i)
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_yaxes(title="true class", row=1, col=1)
    side = 120 + 22 * int(used.sum())
    fig.update_layout(width=side * len(keys))
    return layout(fig, title, height=side)
