"""How much two explanations of one image agree (Krishna et al., TMLR 2024, "the disagreement problem").

Krishna et al.'s *feature agreement* is the share of the top-k features two explanations
have in common, and *rank agreement* the share that also sit at the same rank. Both need
the same features; two segmentations of one image share none, so :func:`pixel_agreement`
reads feature agreement with pixels as the features: each explanation's top pixels (its
superpixels in ranking order) covering the same area, and the share of that area they have
in common. A random ranking's expected pixel agreement is the area share itself.
"""

from __future__ import annotations

import numpy as np

from cytokit.xai.occlusion import rank_map, ranking_of


def feature_agreement(ranking_a, ranking_b, k: int = 5) -> float:
    """Share of the top-``k`` features of ``a`` that are among the top-``k`` of ``b``."""
    a, b = ranking_of(ranking_a)[:k], ranking_of(ranking_b)[:k]
    return len(set(a.tolist()) & set(b.tolist())) / len(a)


def rank_agreement(ranking_a, ranking_b, k: int = 5) -> float:
    """Share of the top-``k`` positions at which ``a`` and ``b`` rank the same feature."""
    a, b = ranking_of(ranking_a)[:k], ranking_of(ranking_b)[:k]
    return float(np.mean(a == b[:len(a)]))


def top_pixels(segments: np.ndarray, ranking, area: int) -> np.ndarray:
    """Boolean (H, W): the first ``area`` pixels in ranking order (within a superpixel, in raster order)."""
    ranks = rank_map(segments, ranking).reshape(-1)
    chosen = np.zeros(ranks.size, bool)
    chosen[np.argsort(ranks, kind="stable")[:int(area)]] = True
    return chosen.reshape(np.shape(segments))


def pixel_agreement(segments_a, ranking_a, segments_b, ranking_b, share: float) -> float:
    """Share of the top ``share`` of the image's pixels by ``a`` that are also among the top ``share`` by ``b``."""
    area = max(1, int(round(share * np.size(segments_a))))
    a, b = top_pixels(segments_a, ranking_a, area), top_pixels(segments_b, ranking_b, area)
    return float((a & b).sum() / area)


def top_area_share(segments: np.ndarray, ranking, k: int = 5) -> float:
    """Share of the image covered by the top-``k`` superpixels of a ranking."""
    return float(np.mean(rank_map(segments, ranking) < k))
