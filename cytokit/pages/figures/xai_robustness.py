"""Chapter 06's robustness figures: the criterion, Grad-CAM's layer, the finding per setting, fills, SRG and
independent randomisation, each from its section's frozen result, every value with its 95 % interval."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cytokit.evaluation.statistics import FEW_IMAGES
from cytokit.pages.figures.style import layout
from cytokit.pages.xai_robustness_words import CRITERION_WORDS, RANKING_NAMES

#: One colour per ranking, the same in every figure of the chapter.
COLOURS = {"predicted": "#b5446e", "LIME": "#b5446e", "first": "#e0a030", "class 0": "#e0a030",
           "random": "#8c8c8c", "Grad-CAM": "#3a6ea5"}


def _bars(value, low, high) -> dict:
    """Plotly error bars from a value and its interval (NaN bounds draw none)."""
    value, low, high = (np.asarray(x, float) for x in (value, low, high))
    return dict(type="data", symmetric=False, array=np.nan_to_num(high - value), arrayminus=np.nan_to_num(value - low),
                thickness=1)


def criterion_figure(section) -> go.Figure:
    """Smallest sufficient n per criterion and ranking, with its interval over images ("all": the full image only,
    drawn one step beyond the largest n)."""
    t = section.result.table
    rankings = [r for r in RANKING_NAMES if r in t.columns]
    numeric = [x for r in rankings for v in t[r] for x in (v.value, v.low, v.high) if x != "all"]
    top = (max(numeric) if numeric else 45) + 5

    def at(x):
        return top if x == "all" else x

    fig = go.Figure()
    for name in rankings:
        value, low, high = ([at(getattr(v, k)) for v in t[name]] for k in ("value", "low", "high"))
        fig.add_scatter(x=[CRITERION_WORDS[c] for c in t.index], y=value, mode="markers", name=RANKING_NAMES[name],
                        marker=dict(size=11, color=COLOURS[name]), error_y=_bars(value, low, high),
                        hovertemplate="%{x}: n = %{y}<extra>" + RANKING_NAMES[name] + "</extra>")
    ticks = sorted(set(numeric) | {top})
    fig.update_layout(scattermode="group")
    fig.update_xaxes(title="criterion (threshold: two thirds of the full images' score)")
    fig.update_yaxes(title="smallest sufficient n (superpixels kept)", tickvals=ticks,
                     ticktext=["all" if v == top else str(v) for v in ticks])
    return layout(fig, "Smallest sufficient n under three criteria", height=400)


def layer_figure(section) -> go.Figure:
    """Per candidate block: SRG gain over a random ranking and, with masks, the top superpixel's lift over chance."""
    ev = section.choice.evidence
    masks = "in_cell_minus_chance" in ev
    fig = make_subplots(rows=1, cols=2 if masks else 1, shared_yaxes=True,
                        subplot_titles=["SRG − random (grey fill)"] + (["top superpixel in the cell − chance"]
                                                                       if masks else []))
    low, high = zip(*ev["srg_minus_random_ci95"])
    fig.add_scatter(x=ev["srg_minus_random"], y=ev.index, mode="markers", name="faithfulness",
                    error_x=_bars(ev["srg_minus_random"], low, high), marker=dict(size=10, color=COLOURS["Grad-CAM"]),
                    row=1, col=1)
    if masks:
        low, high = zip(*ev["in_cell_minus_chance_ci95"])
        fig.add_scatter(x=ev["in_cell_minus_chance"], y=ev.index, mode="markers", name="localisation",
                        error_x=_bars(ev["in_cell_minus_chance"], low, high),
                        marker=dict(size=10, color=COLOURS["LIME"]), row=1, col=2)
    for col in range(1, 3 if masks else 2):
        fig.add_vline(x=0, line_dash="dot", line_color="black", row=1, col=col)
        fig.update_xaxes(title="difference (95 % interval)", row=1, col=col)
    fig.update_yaxes(title="conv block Grad-CAM reads", autorange="reversed", row=1, col=1)
    return layout(fig, f"Grad-CAM's candidate layers (chosen: {section.choice.block})", height=340)


def robustness_figure(section) -> go.Figure:
    """The finding's two paired differences in every setting, with their intervals."""
    t = section.result.table
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True,
                        subplot_titles=("predicted class − class 0", "LIME − random ranking"))
    for col, key in enumerate(("predicted_vs_first", "lime_vs_random"), start=1):
        c = t[key].tolist()
        x = [100 * v.difference for v in c]
        fig.add_scatter(x=x, y=list(t.index), mode="markers", showlegend=False,
                        error_x=_bars(x, [100 * v.low for v in c], [100 * v.high for v in c]),
                        marker=dict(size=10, color=[COLOURS["LIME"] if v.verdict == "better" else COLOURS["random"]
                                                    for v in c]),
                        customdata=[v.verdict for v in c],
                        hovertemplate="%{y}: %{x:+.1f} points (%{customdata})<extra></extra>", row=1, col=col)
        fig.add_vline(x=0, line_dash="dot", line_color="black", row=1, col=col)
        fig.update_xaxes(title="accuracy over n, difference (points)", row=1, col=col)
    fig.update_yaxes(title="setting", autorange="reversed", row=1, col=1)
    return layout(fig, "The finding in every setting (filled: called better)", height=120 + 40 * len(t))


def agreement_figure(section) -> go.Figure:
    """Each setting's agreement with the study's ranking: top-5 area agreement beside chance, with intervals."""
    a = section.result.agreement
    fig = go.Figure()
    for column, name, colour in (("pixel_agreement", "top-5 area agreement", COLOURS["LIME"]),
                                 ("pixel_chance", "by chance", COLOURS["random"])):
        fig.add_bar(x=list(a.index), y=a[column], name=name, marker_color=colour,
                    error_y=_bars(a[column], a[f"{column}_low"], a[f"{column}_high"]))
    fig.update_xaxes(title="setting, against the study's")
    fig.update_yaxes(title="share of the top five's area in common", range=[0, 1], tickformat=".0%")
    return layout(fig, "How much the settings' rankings agree with the study's", height=380)


def fill_distance_figure(section) -> go.Figure:
    """Each fill's shift from the original images and the share called an absorbing class, per hidden share."""
    t = section.result.table.reset_index()
    fig = make_subplots(rows=1, cols=2, subplot_titles=("shift from the original (class-centroid distances)",
                                                        "called " + " or ".join(section.result.absorbers or ("—",))))
    for share, rows in t.groupby("share"):
        name = f"{100 * share:.0f} % hidden"
        for col, m in enumerate(("shift", "absorbed"), start=1):
            fig.add_scatter(x=rows["fill"], y=rows[m], mode="markers", name=name, legendgroup=name,
                            showlegend=col == 1, error_y=_bars(rows[m], rows[f"{m}_low"], rows[f"{m}_high"]),
                            marker=dict(size=10, symbol="circle" if share < 1 else "diamond"), row=1, col=col)
    real = section.result.real["absorbed"]["value"]
    fig.add_hline(y=real, line_dash="dot", line_color="black", annotation_text="real images", row=1, col=2)
    fig.update_xaxes(title="fill")
    fig.update_yaxes(title="distance / between-class distance", row=1, col=1)
    fig.update_yaxes(title="share of images", tickformat=".0%", range=[0, 1], row=1, col=2)
    fig.update_layout(scattermode="group")
    return layout(fig, "How far each fill takes the images from the data, in the model's features", height=400)


def srg_figure(section) -> go.Figure:
    """SRG per ranking under every fill, with intervals (hollow points: fewer than FEW_IMAGES images)."""
    s = section.result.scores.reset_index()
    fig = go.Figure()
    for method, rows in s.groupby("method", sort=False):
        fig.add_scatter(x=rows["fill"], y=rows["srg"], mode="markers", name=method,
                        error_y=_bars(rows["srg"], rows["low"], rows["high"]),
                        marker=dict(size=10, color=COLOURS.get(method),
                                    symbol=["circle-open" if n < FEW_IMAGES else "circle" for n in rows["images"]]),
                        customdata=rows["images"], hovertemplate="%{x}: %{y:+.3f} (%{customdata} images)<extra>"
                                                                 + method + "</extra>")
    fig.add_hline(y=0, line_dash="dot", line_color="black")
    fig.update_layout(scattermode="group")
    fig.update_xaxes(title="fill")
    fig.update_yaxes(title="SRG = AUC(least relevant first) − AUC(most relevant first)")
    return layout(fig, "The combined score of every ranking under every fill", height=400)


def independent_figure(section) -> go.Figure:
    """Spearman to the trained explanation with each step's layers randomised alone (and in cascade when given)."""
    s = section.result.summary
    fig = go.Figure()
    for method, rows in s.groupby("method", sort=False):
        fig.add_scatter(x=rows["step"], y=rows["mean"], mode="markers", name=f"{method}, this layer alone",
                        error_y=_bars(rows["mean"], rows["low"], rows["high"]),
                        marker=dict(size=10, color=COLOURS.get(method)))
        if section.cascade is not None:
            c = section.cascade[section.cascade["method"] == method]
            fig.add_scatter(x=c["step"], y=c["mean"], mode="markers", name=f"{method}, in cascade",
                            error_y=_bars(c["mean"], c["low"], c["high"]),
                            marker=dict(size=10, color=COLOURS.get(method), symbol="circle-open"))
    fig.add_hline(y=0, line_dash="dot", line_color="black")
    fig.update_layout(scattermode="group")
    fig.update_xaxes(title="randomised layers (the first: the trained model explained again)", type="category")
    fig.update_yaxes(title="Spearman with the trained explanation", range=[-1, 1])
    return layout(fig, "Which layers the explanations depend on", height=400)
