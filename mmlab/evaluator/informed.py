"""Informed-fraction estimate π̂ from the mid's move against our own fills.

For a fill on side s (+1 we bought) at price p, with mid m_0 at the fill and m_h at the
adverse-selection horizon h, the adverse move is

    a = −s (m_h − m_0) / p · 1e4   bps, positive when the market moved against us.

If the counterparty was uninformed the mid only diffuses: a ~ N(0, s_h²), s_h = σ √h with σ
(bps per √s) measured from the mids the evaluator sees. If it was informed the mid also moves a
further b ≥ 0 against us, b ~ HalfNormal(τ) with τ = k s_h: the informed move scales with the
current volatility and its ratio k is fitted. With z = a / s_h, a = b + e has the skew-normal
density (φ and Φ the standard normal pdf and cdf)

    f_I(z) = 2 / √(1 + k²) · φ(z / √(1 + k²)) · Φ(k z / √(1 + k²)),      f_U(z) = φ(z)

and a fill's likelihood is π f_I + (1 − π) f_U = f_U · (π R + 1 − π), R = f_I / f_U:

    ln R = ln 2 − ½ ln(1 + k²) + ½ z² k² / (1 + k²) + ln Φ(k z / √(1 + k²))

The posterior of (π, k) is held exactly on a grid (π at the midpoints of ``PI_GRID_SIZE``
equal cells of [0, 1], k on a log grid whose lower end keeps the informed component
distinguishable from noise): a Beta(a₀, b₀) prior on π, a uniform prior on ln k, and

    ln p(π, k | z_1:n) = ln prior + Σ_i λ^{n−i} ln(π R_i(k) + 1 − π) + const

where λ = 1 − 1/M forgets old fills (M = ``memory_fills``; M = ∞ keeps them all). π̂ is the
posterior mean of π and ``std`` its posterior standard deviation (k integrated out). One fill
costs one vector operation over the grid (no optimiser).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import log_ndtr

__all__ = ["InformedFractionPosterior", "PI_GRID_SIZE"]

#: Cells of [0, 1] on which the posterior of π is held.
PI_GRID_SIZE = 200


class InformedFractionPosterior:
    """Grid posterior of the informed fraction π and the informed move scale τ.

    Parameters
    ----------
    prior_a, prior_b : float
        Beta(a₀, b₀) prior on π.
    ratio_min, ratio_max : float
        Range of the log grid of k = τ / s_h.
    ratio_points : int
        Number of k grid points.
    memory_fills : float
        M, the effective number of fills remembered (λ = 1 − 1/M); ``math.inf`` forgets nothing.
    """

    def __init__(
        self,
        *,
        prior_a: float = 1.0,
        prior_b: float = 1.0,
        ratio_min: float = 0.5,
        ratio_max: float = 20.0,
        ratio_points: int = 24,
        memory_fills: float = math.inf,
    ) -> None:
        if not (prior_a > 0.0 and prior_b > 0.0):
            raise ValueError(f"prior_a and prior_b must be > 0, got {prior_a!r}, {prior_b!r}")
        if not 0.0 < ratio_min < ratio_max:
            raise ValueError(f"need 0 < ratio_min < ratio_max, got {ratio_min!r}, {ratio_max!r}")
        if ratio_points < 2:
            raise ValueError(f"ratio_points must be >= 2, got {ratio_points!r}")
        if not memory_fills > 1.0:
            raise ValueError(f"memory_fills must be > 1, got {memory_fills!r}")
        self.pi_grid = (np.arange(PI_GRID_SIZE) + 0.5) / PI_GRID_SIZE
        self.ratio_grid = np.geomspace(ratio_min, ratio_max, ratio_points)
        k2 = self.ratio_grid**2
        # per k: ln 2 − ½ ln(1 + k²), k² / (1 + k²) and k / √(1 + k²)
        self._log_ratio_const = math.log(2.0) - 0.5 * np.log1p(k2)
        self._quad = k2 / (1.0 + k2)
        self._slope = self.ratio_grid / np.sqrt(1.0 + k2)
        self._pi = self.pi_grid[:, None]
        self._forget = 1.0 - 1.0 / memory_fills
        # ln prior of π on the grid: (a₀ − 1) ln π + (b₀ − 1) ln(1 − π)
        self._log_prior = ((prior_a - 1.0) * np.log(self.pi_grid) + (prior_b - 1.0) * np.log1p(-self.pi_grid))[:, None]
        self._log_pi = np.log(self.pi_grid)[:, None]
        self._log_not_pi = np.log1p(-self.pi_grid)[:, None]
        self._log_lik = np.zeros((PI_GRID_SIZE, ratio_points))
        self.fills = 0
        self.effective_fills = 0.0
        self._cached_marginal: np.ndarray | None = None

    def add(self, adverse_bps: float, noise_std_bps: float) -> None:
        """Absorb one fill's adverse move a (bps) with diffusion s_h = σ √h (bps)."""
        if not math.isfinite(adverse_bps):
            raise ValueError(f"adverse_bps must be finite, got {adverse_bps!r}")
        if not (math.isfinite(noise_std_bps) and noise_std_bps > 0.0):
            raise ValueError(f"noise_std_bps must be finite and > 0, got {noise_std_bps!r}")
        z = adverse_bps / noise_std_bps
        # ln R = ln 2 − ½ ln(1 + k²) + ½ z² k²/(1 + k²) + ln Φ(k z / √(1 + k²))
        log_ratio = self._log_ratio_const + 0.5 * z * z * self._quad + log_ndtr(z * self._slope)
        # ln(π R + 1 − π) on the (π, k) grid
        if log_ratio.max() < 500.0:
            term = np.log(self._pi * np.exp(log_ratio)[None, :] + (1.0 - self._pi))
        else:
            term = np.logaddexp(self._log_pi + log_ratio[None, :], self._log_not_pi)
        self._log_lik *= self._forget
        self._log_lik += term
        self.fills += 1
        self.effective_fills = self._forget * self.effective_fills + 1.0
        self._cached_marginal = None

    @property
    def _pi_marginal(self) -> np.ndarray:
        if self._cached_marginal is None:
            self._cached_marginal = self._marginal()
        return self._cached_marginal

    def _marginal(self) -> np.ndarray:
        log_post = self._log_prior + self._log_lik
        post = np.exp(log_post - log_post.max())
        marginal = post.sum(axis=1)
        return marginal / marginal.sum()

    @property
    def mean(self) -> float:
        """Posterior mean of π."""
        return float(self._pi_marginal @ self.pi_grid)

    @property
    def std(self) -> float:
        """Posterior standard deviation of π."""
        mean = self.mean
        return float(math.sqrt(max(self._pi_marginal @ (self.pi_grid - mean) ** 2, 0.0)))

    @property
    def ratio(self) -> float:
        """Posterior mean of k = τ / s_h."""
        log_post = self._log_prior + self._log_lik
        post = np.exp(log_post - log_post.max())
        marginal = post.sum(axis=0)
        return float(marginal @ self.ratio_grid / marginal.sum())
