"""Chapter 01's figures: class sizes, example cells, the split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cytokit.pages.figures.style import LINEAGE_COLOURS, SPLIT_COLOURS, layout, png_uri
from cytokit.data import taxonomy


def class_distribution(summary: pd.DataFrame, log: bool = True) -> go.Figure:
    """Images per class in this dataset beside the study's share (Table 2.2.1).

    ``summary`` has one row per class code with columns ``images`` and, optionally,
    ``study_percent``; bars are coloured by lineage.
    """
    df = summary.reset_index() if "code" not in summary.columns else summary
    total = df["images"].sum()
    fig = go.Figure()
    for lineage, colour in LINEAGE_COLOURS.items():
        part = df[df["code"].map(taxonomy.lineage_of) == lineage]
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
    fig.update_xaxes(categoryorder="array", categoryarray=list(df["code"]), title="class")
    fig.update_yaxes(type="log" if log else "linear", title="images")
    return layout(fig, "Images per class", height=420)


def class_pie(summary: pd.DataFrame, min_percent: float = 1.0) -> go.Figure:
    """Share of each class; classes under ``min_percent`` of this dataset are pooled (small here, not rare in nature)."""
    df = summary.reset_index() if "code" not in summary.columns else summary
    share = 100 * df["images"] / df["images"].sum()
    big = df[share >= min_percent]
    rare = df[share < min_percent]
    pooled = f"classes under {min_percent:g} %"
    labels = list(big["code"]) + ([pooled] if len(rare) else [])
    values = list(big["images"]) + ([int(rare["images"].sum())] if len(rare) else [])
    fig = go.Figure(go.Pie(labels=labels, values=values, sort=False, hole=0.35,
                           textinfo="label+percent"))
    title = "Share of images per class"
    if len(rare):
        title += f" ({pooled}: {', '.join(rare['code'])})"
    return layout(fig, title, height=460)


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
            fig.add_trace(go.Image(source=png_uri(small), hovertemplate=f"{code}<extra></extra>"),
                          row=r, col=c)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.for_each_annotation(lambda a: a.update(textangle=0, xanchor="left"))
    height = 40 + len(codes) * (tile_px + 6)
    fig.update_layout(width=60 + columns * (tile_px + 6) + 60)
    return layout(fig, title, height=height)


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
    fig.update_xaxes(title="class")
    fig.update_yaxes(tickformat=".0%", title="share of the class", range=[0, 1])
    return layout(fig, "Split of every class into train / validation / test", height=380)
