"""Chapter 01's real-versus-synthetic figures: the cells side by side and their colours."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cytokit.pages.figures.data import image_grid
from cytokit.pages.figures.style import layout
from cytokit.data import realism

CHANNEL_COLOURS = {"red": "#c0392b", "green": "#27ae60", "blue": "#2c6fbb"}


def side_by_side(pair: realism.Pair | None) -> go.Figure | None:
    """One row per class: its real images, then its synthetic ones (None, and no figure, without real images)."""
    if pair is None:
        return None
    rows = {f"{code}: real | synthetic": reals + fakes for code, (reals, fakes) in pair.shown.items()}
    return image_grid(rows, title="Real (left) and synthetic (right) cells of each class")


def colour_distributions(pair: realism.Pair | None) -> go.Figure | None:
    """Per class, the share of pixels at each optical density, per RGB channel: real solid, synthetic dotted."""
    if pair is None:
        return None
    table = realism.colour_distributions(pair)
    codes = list(dict.fromkeys(table["code"]))
    cols = min(4, len(codes))
    rows = -(-len(codes) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=codes, shared_xaxes=True, shared_yaxes=True,
                        horizontal_spacing=0.03, vertical_spacing=0.12)
    for i, code in enumerate(codes):
        for (source, channel), part in table[table["code"] == code].groupby(["source", "channel"]):
            fig.add_scatter(x=part["od"], y=part["share"], mode="lines", row=i // cols + 1, col=i % cols + 1,
                            line=dict(color=CHANNEL_COLOURS[channel], dash="solid" if source == "real" else "dot"),
                            name=f"{source}, {channel}", legendgroup=f"{source}, {channel}", showlegend=i == 0,
                            hovertemplate=f"{code} {source} {channel}: OD %{{x:.2f}}, %{{y:.1%}} of pixels"
                                          "<extra></extra>")
    fig.update_xaxes(title_text="optical density", row=rows)
    fig.update_yaxes(tickformat=".0%")
    fig.update_yaxes(title_text="share of pixels", col=1)
    return layout(fig, "Colours of real (solid) and synthetic (dotted) images, channel by channel",
                  height=230 * rows + 120)
