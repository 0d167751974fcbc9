"""The book's figures: plotly figures returned, never shown, one module per part of the study."""

from cytokit.pages.figures.data import class_distribution, class_pie, image_grid, split_proportions
from cytokit.pages.figures.explorer import sufficiency_explorer
from cytokit.pages.figures.results import (confusion_heatmap, confusion_panels, headline_bars,
                                           per_class_comparison, seed_points)
from cytokit.pages.figures.training import hyperparameter_scatter, training_curves
from cytokit.pages.figures.xai import (deletion_insertion, per_class_curves, sufficiency_curves,
                                       superpixel_histogram)

__all__ = ["class_distribution", "class_pie", "confusion_heatmap", "confusion_panels", "deletion_insertion",
           "headline_bars", "hyperparameter_scatter", "image_grid", "per_class_comparison", "per_class_curves",
           "seed_points", "split_proportions", "sufficiency_curves", "sufficiency_explorer", "superpixel_histogram",
           "training_curves"]
