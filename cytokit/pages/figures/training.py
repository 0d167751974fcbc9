"""Figures of training and tuning (chapters 02-04): curves and the search's trials."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cytokit.pages.figures.style import SPLIT_COLOURS, layout


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
    fig.update_yaxes(title="accuracy", row=1, col=1)
    fig.update_yaxes(title="loss (cross-entropy)", row=1, col=2)
    return layout(fig, title, height=380)


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
        fig.update_xaxes(tickvals=list(range(len(cats))), ticktext=cats, title=p.replace("_", " "), row=1, col=i)
    fig.update_yaxes(title=score.replace("_", " "), row=1, col=1)
    return layout(fig, title, height=360)
