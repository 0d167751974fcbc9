"""The book's figure style and how figures reach the page: offline HTML with plotly.js beside it.

Under the runner (``CYTOKIT_BOOK=1``) importing this module installs the ``cytokit``
renderer: each figure becomes an HTML fragment that expects plotly.js on the page (the
book ships it in ``_static/``), because Jupyter Book 1 cannot render plotly's own MIME
type and the book must work offline. Interactively, plotly's own renderer is used.
"""

from __future__ import annotations

import base64
import os

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.io.base_renderers import MimetypeRenderer

LINEAGE_COLOURS = {"myelopoiesis": "#b5446e", "lymphopoiesis": "#3a6ea5", "other": "#8c8c8c"}


SPLIT_COLOURS = {"train": "#3a6ea5", "val": "#e0a030", "test": "#b5446e"}


TEMPLATE = "plotly_white"


class BookRenderer(MimetypeRenderer):
    """Plotly JSON for JupyterLab plus an offline HTML fragment for Jupyter Book."""

    def to_mimebundle(self, fig_dict):
        html = pio.to_html(fig_dict, include_plotlyjs=False, include_mathjax=False,
                           full_html=False, validate=False)
        return {"text/html": html}


def _use_book_renderer() -> None:
    """Make every figure displayed from now on render offline in the book."""
    pio.renderers["cytokit"] = BookRenderer()
    pio.renderers.default = "cytokit"


if os.environ.get("CYTOKIT_BOOK") == "1":
    _use_book_renderer()


def layout(fig: go.Figure, title: str, height: int | None = None) -> go.Figure:
    """The book's template, a title and margins that leave room for it."""
    fig.update_layout(template=TEMPLATE, title=title, margin=dict(l=60, r=20, t=60, b=50))
    if height:
        fig.update_layout(height=height)
    return fig


def png_uri(image: np.ndarray) -> str:
    """A uint8 RGB image as an inline PNG for a plotly Image trace."""
    import cv2

    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("could not encode image for display")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")
