"""Which layer Grad-CAM reads, chosen by measurement rather than by habit.

Grad-CAM is usually read on the last convolution block. In the study's network that map
is 3 x 3 at 250 px and 2 x 2 at 64 px; upsampled bilinearly, its hottest pixels sit in a
corner, and its top superpixel on synthetic cells lies in the cell far less often than a
random superpixel's. Rankings here break ties in a seeded random order
(:func:`cytokit.xai.gradcam.rank_by_heat`), so an empty map (no positive evidence) ranks
like the random control rather than putting the top-left superpixel first.
:func:`choose_layer` reads Grad-CAM on the last layer of every conv block
(:func:`candidate_layers`) and keeps the finest block that passes every check it can run:

- **localisation** (cells with known masks, e.g. synthetic ones): the top superpixel lies
  in the cell more often than a random superpixel (paired over images: hit - chance);
- **randomisation**: the map falls apart when every learned weight is re-initialised
  (the cascade's verdict of :mod:`cytokit.xai.randomisation`);
- **faithfulness**: its ranking's symmetric relevance gain (grey fill) beats a random
  ranking's (paired over images; :mod:`cytokit.xai.srg`).

A paired check passes when its interval lies above 0 *and* its test agrees (p < 0.05): on
two dozen images an interval alone picked a block whose top superpixel then lay in the
cell no more often than chance on new cells. If no block passes every check, the finest of
those that pass the most is returned with ``passed`` False, and the evidence says which
checks failed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cytokit.evaluation import statistics
from cytokit.io import to_jsonable
from cytokit.xai import controls, gradcam, randomisation, srg
from cytokit.xai.explain import image_seed
from cytokit.xai.randomisation import POOLING

#: A paired check's test must agree with its interval at this level.
ALPHA = 0.05
#: Layer types that may end a conv block before its pooling layer.
_BLOCK_LAYERS = ("Conv2D", "BatchNormalization", "Activation", "ReLU", "LeakyReLU")


def candidate_layers(model) -> list[tuple[str, str]]:
    """(block, layer name) of the last layer of every conv block, finest (block1) first."""
    found: dict[int, str] = {}
    block = 1
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in POOLING:
            block += 1
        elif kind in _BLOCK_LAYERS and (kind == "Conv2D" or block in found):
            found[block] = layer.name
        elif kind in ("Flatten", "Dense", "GlobalAveragePooling2D"):
            break
    return [(f"block{b}", name) for b, name in sorted(found.items())]


def map_side(model, layer_name: str) -> int:
    """Side in pixels of the feature map Grad-CAM reads on ``layer_name``."""
    return int(gradcam.cam_model(model, layer_name).outputs[0].shape[1])


@dataclass(frozen=True)
class LayerChoice:
    """The layer Grad-CAM reads, whether it passed every check, and the evidence for every candidate."""

    layer: str
    block: str
    passed: bool
    evidence: pd.DataFrame  # one row per candidate block, finest first
    checks: tuple

    def facts(self) -> dict:
        """metrics.json's ``gradcam_layer`` entry."""
        return to_jsonable({"layer": self.layer, "block": self.block, "passed": self.passed,
                            "checks": list(self.checks),
                            "rule": "the finest conv block whose Grad-CAM map passes every check (if none does, the "
                                    "finest of those passing the most)",
                            "evidence": self.evidence.reset_index().to_dict(orient="records")})


def _passes(c: statistics.Comparison) -> bool:
    """A paired check passes when its interval says "better" and its test agrees."""
    return c.verdict == statistics.BETTER and c.p_value < ALPHA


def _localisation(ranks, segments_list, cell_masks, layer, resamples, seed):
    hits, chance = controls.top_in_cell(segments_list, ranks, cell_masks)
    return statistics.paired_mean_difference(hits, chance, (layer, "random superpixel"), "top superpixel in the cell"), float(hits.mean()), float(chance.mean())


def choose_layer(model, images, segments_list, labels, cell_masks=None, steps: int = 10, seed: int = 0,
                 resamples: int = statistics.RESAMPLES, progress: bool = False) -> LayerChoice:
    """Grad-CAM's layer: the finest conv block passing localisation (when ``cell_masks``), randomisation
    and faithfulness on these images; ``labels`` are the explained classes.

    Choose on images other than those the page then reports Grad-CAM on, so the report is
    not read on the images the choice was fitted to.
    """
    candidates = candidate_layers(model)
    layers = [name for _, name in candidates]
    labels = np.asarray(labels)
    rand = randomisation.summarise(
        randomisation.gradcam_check(model, images, segments_list, labels, layers, progress=progress))
    rand_verdicts = randomisation.verdicts(rand)
    last = rand[rand["order"] == rand["order"].max()].set_index("method")
    heat = {layer: gradcam.heatmaps(model, images, labels, layer) for layer in layers}
    rankings = {layer: [gradcam.rank_by_heat(h, s, image_seed(seed, i)) for i, (h, s) in
                        enumerate(zip(heat[layer], segments_list))] for layer in layers}
    rankings["random"] = controls.random_rankings(segments_list, seed)
    curves = srg.removal_curves(model, images, segments_list, rankings, labels, "grey", steps, seed, progress=progress)
    faithful = srg.combined_score({"grey": curves}, [(layer, "random") for layer in layers], resamples, seed)
    rows, checks = [], ["randomisation", "faithfulness"] + (["localisation"] if cell_masks is not None else [])
    for block, layer in candidates:
        method = f"Grad-CAM {layer}"
        gain = faithful.comparisons[("grey", f"{layer}_vs_random")]
        row = {"block": block, "layer": layer, "map_side": map_side(model, layer),
               "empty_maps": float(np.mean(heat[layer].reshape(len(images), -1).max(axis=1) == 0)),
               "randomisation": rand_verdicts[method], "randomised_spearman": float(last.loc[method, "mean"]),
               "randomised_spearman_ci95": [float(last.loc[method, "low"]), float(last.loc[method, "high"])],
               "srg": float(faithful.scores.loc[("grey", layer), "srg"]), "srg_minus_random": gain.difference,
               "srg_minus_random_ci95": [gain.low, gain.high], "srg_p_value": gain.p_value,
               "faithfulness": gain.verdict}
        passed = [rand_verdicts[method] == randomisation.PASSES, _passes(gain)]
        row["faithfulness_passes"] = passed[1]
        if cell_masks is not None:
            loc, hit, chance = _localisation(rankings[layer], segments_list, cell_masks, layer, resamples, seed)
            row.update({"top_in_cell": hit, "chance": chance, "in_cell_minus_chance": loc.difference,
                        "in_cell_minus_chance_ci95": [loc.low, loc.high], "in_cell_p_value": loc.p_value,
                        "localisation": loc.verdict})
            passed.append(_passes(loc))
            row["localisation_passes"] = passed[-1]
        row["checks_passed"] = int(sum(passed))
        row["passes"] = all(passed)
        rows.append(row)
    evidence = pd.DataFrame(rows).set_index("block")
    chosen = evidence[evidence["checks_passed"] == evidence["checks_passed"].max()].iloc[0]
    return LayerChoice(str(chosen["layer"]), str(chosen.name), bool(chosen["passes"]), evidence, tuple(checks))
