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

A paired check passes when its verdict is "better": its interval lies above 0 *and* its
test agrees (p < 0.05). Localisation is tested exactly against a random top superpixel
(:func:`cytokit.xai.controls.localisation_test`). Both paired checks need images: a lift
of a tenth over chance, or an SRG gain of a tenth, is rarely told from 0 on a few dozen.
If no block passes every check, the finest of those that pass the most is returned with
``passed`` False, and ``failed`` names the checks it fails.
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

    @property
    def failed(self) -> list[str]:
        """The checks the chosen block fails (none when it passed)."""
        row = self.evidence.loc[self.block]
        return [c for c in self.checks if not row[f"{c}_passes"]]

    def facts(self) -> dict:
        """metrics.json's ``gradcam_layer`` entry."""
        return to_jsonable({"layer": self.layer, "block": self.block, "passed": self.passed,
                            "checks": list(self.checks), "failed": self.failed,
                            "rule": "the finest conv block whose Grad-CAM map passes every check (if none does, the "
                                    "finest of those passing the most)",
                            "evidence": self.evidence.reset_index().to_dict(orient="records")})


def pick(evidence: pd.DataFrame, checks) -> LayerChoice:
    """The finest block passing the most checks: every check, where one does."""
    passes = evidence[[f"{c}_passes" for c in checks]].sum(axis=1)
    block = passes.index[int(np.argmax(passes.to_numpy()))]
    return LayerChoice(str(evidence.loc[block, "layer"]), str(block), bool(passes[block] == len(checks)), evidence,
                       tuple(checks))


def _randomisation(rand: pd.DataFrame, verdicts: dict, method: str) -> dict:
    """The randomisation check of one layer: the cascade's verdict and the fully randomised map's Spearman."""
    last = rand[rand["order"] == rand["order"].max()].set_index("method").loc[method]
    return {"randomisation": verdicts[method], "randomisation_passes": verdicts[method] == randomisation.PASSES,
            "randomised_spearman": float(last["mean"]),
            "randomised_spearman_ci95": [float(last["low"]), float(last["high"])]}


def _faithfulness(faithful: srg.CombinedScore, layer: str) -> dict:
    """The faithfulness check of one layer: its SRG and its paired gain over a random ranking (grey fill)."""
    gain = faithful.comparisons[("grey", f"{layer}_vs_random")]
    return {"srg": float(faithful.scores.loc[("grey", layer), "srg"]), "srg_minus_random": gain.difference,
            "srg_minus_random_ci95": [gain.low, gain.high], "srg_p_value": gain.p_value,
            "faithfulness": gain.verdict, "faithfulness_passes": gain.verdict == statistics.BETTER}


def _localisation(ranks, segments_list, cell_masks, layer) -> dict:
    """The localisation check of one layer: its top superpixel in the cell against a random one's chance."""
    hits, chance = controls.top_in_cell(segments_list, ranks, cell_masks)
    loc = controls.localisation_test(hits, chance, (layer, "random superpixel"))
    return {"top_in_cell": float(hits.mean()), "chance": float(chance.mean()), "in_cell_minus_chance": loc.difference,
            "in_cell_minus_chance_ci95": [loc.low, loc.high], "in_cell_p_value": loc.p_value,
            "localisation": loc.verdict, "localisation_passes": loc.verdict == statistics.BETTER}


def choose_layer(model, images, segments_list, labels, cell_masks=None, steps: int = 10, seed: int = 0,
                 progress: bool = False) -> LayerChoice:
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
    heat = gradcam.heatmaps_by_layer(model, images, labels, layers)
    rankings = {layer: [gradcam.rank_by_heat(h, s, image_seed(seed, i)) for i, (h, s) in
                        enumerate(zip(heat[layer], segments_list))] for layer in layers}
    rankings["random"] = controls.random_rankings(segments_list, seed)
    curves = srg.removal_curves(model, images, segments_list, rankings, labels, "grey", steps, seed, progress=progress)
    faithful = srg.combined_score({"grey": curves}, [(layer, "random") for layer in layers])
    checks = ["randomisation", "faithfulness"] + (["localisation"] if cell_masks is not None else [])
    rows = []
    for block, layer in candidates:
        row = {"block": block, "layer": layer, "map_side": map_side(model, layer),
               "empty_maps": float(np.mean(heat[layer].reshape(len(images), -1).max(axis=1) == 0)),
               **_randomisation(rand, randomisation.verdicts(rand), f"Grad-CAM {layer}"),
               **_faithfulness(faithful, layer)}
        if cell_masks is not None:
            row.update(_localisation(rankings[layer], segments_list, cell_masks, layer))
        row["checks_passed"] = int(sum(row[f"{c}_passes"] for c in checks))
        row["passes"] = row["checks_passed"] == len(checks)
        rows.append(row)
    return pick(pd.DataFrame(rows).set_index("block"), checks)
