"""Adaptive level spacing: where the deeper levels of a ladder sit on the E[PnL] surface.

The first level of a side is the single optimal quote (the actuary's GLFT depth after costs and
floors). The remaining N − 1 levels share what is left of the positive expected PnL: with
E⁺(d) = max(E[PnL](d), 0) evaluated on a fine grid of depths beyond the first level and
M(d) = ∫_{d_1}^{d} E⁺ its cumulative mass, level k (k = 1 … N − 1) sits where

    M(d_k) / M(∞) = (k − ½) / (N − 1),

so each level stands for an equal share of the side's remaining expected PnL (the midpoint rule
of a quantile discretisation of E⁺). Consecutive levels are then pushed apart to at least
``min_spacing_bps`` (d_k ← max(d_k, d_{k−1} + s), a running maximum of d_k − k s). Where E⁺
has no mass beyond the first level (no deeper quote is worth anything) the levels step by the
minimum spacing; they carry E[PnL] ≤ 0 and the executor gives them no size.
"""

from __future__ import annotations

import numpy as np

__all__ = ["quantile_depths", "enforce_min_spacing"]


def enforce_min_spacing(depths_bps: np.ndarray, min_spacing_bps: float) -> np.ndarray:
    """Smallest depths ≥ the given ones (elementwise) that are at least ``min_spacing_bps`` apart,
    keeping the first: d_k = max over j ≤ k of (d_j + (k − j) s)."""
    steps = np.arange(depths_bps.shape[-1], dtype=float) * min_spacing_bps
    # running max of d_k − k s, then add k s back
    return np.maximum.accumulate(depths_bps - steps, axis=-1) + steps


def quantile_depths(grid_bps: np.ndarray, expected_pnl_bps: np.ndarray, levels: int) -> np.ndarray | None:
    """Depths of ``levels`` levels at equal quantiles (k − ½)/levels of the positive E[PnL] mass
    on ``grid_bps`` (increasing), by linear interpolation of the cumulative trapezoid mass.

    Returns None when E[PnL] is nowhere positive on the grid.
    """
    positive = np.maximum(expected_pnl_bps, 0.0)
    # M_j = Σ_{i<j} ½ (E⁺_i + E⁺_{i+1}) (d_{i+1} − d_i)
    mass = np.empty_like(positive)
    mass[0] = 0.0
    np.cumsum(0.5 * (positive[1:] + positive[:-1]) * np.diff(grid_bps), out=mass[1:])
    total = mass[-1]
    if not total > 0.0:
        return None
    targets = (np.arange(levels, dtype=float) + 0.5) / levels * total
    return np.interp(targets, mass, grid_bps)
