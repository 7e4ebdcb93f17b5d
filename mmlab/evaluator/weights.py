"""Multiplicative weights over candidate spread adjustments: AdaHedge.

Each round t every candidate k earns a gain g_{t,k} (its counterfactual PnL, bps per unit
notional, summed over the counterfactual fills that matured in the round); the loss is
ℓ_{t,k} = −g_{t,k}. Hedge plays weights proportional to exp(−η_t L_{t−1,k}), L the cumulative
loss (so ∝ exp(η_t · cumulative PnL)).

Why AdaHedge (de Rooij, van Erven, Grünwald & Koolen 2014, "Follow the leader if you can, hedge
if you must", JMLR 15): the gains are PnL in bps, whose range is not bounded in advance and
changes with volatility, and the run has no horizon. A rate η_t ∝ √(ln N / t) would need the
range; AdaHedge sets

    η_t = ln N / Δ_{t−1},    Δ_t = Σ_{s ≤ t} δ_s,    δ_t = h_t − m_t ≥ 0

with h_t = w_t · ℓ_t the Hedge loss and m_t = −(1/η_t) ln Σ_k w_{t,k} e^{−η_t ℓ_{t,k}} the mix loss
(δ is the "mixability gap"; η = ∞ while Δ = 0, i.e. follow the leader). It needs neither the
horizon nor the range, is invariant to the scale of the gains, and its regret against the best
fixed candidate obeys (their analysis of AdaHedge: R ≤ 2Δ, then a bound on Δ)

    R_T = Σ h_t − min_k L_{T,k} ≤ 2 Δ_T ≤ 2 √(V_T ln N) + S (4/3 ln N + 2)

with V_T = Σ_t Var_{k∼w_t}(ℓ_{t,k}) ≤ T S² / 4 and S = max_t (max_k ℓ_{t,k} − min_k ℓ_{t,k}).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["AdaHedge"]


class AdaHedge:
    """AdaHedge over ``n`` experts (see the module docstring).

    Attributes
    ----------
    cumulative_loss : np.ndarray
        L_k, the sum of each expert's losses.
    hedge_loss : float
        Σ h_t, the loss of the weights played.
    mixability_gap : float
        Δ_T.
    variance : float
        V_T = Σ Var_{w_t}(ℓ_t).
    loss_range : float
        S = max_t (max ℓ_t − min ℓ_t).
    rounds : int
        Rounds played (rounds whose losses were all zero are skipped: they change nothing).
    """

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ValueError(f"AdaHedge needs at least one expert, got {n}")
        self.n = int(n)
        self._log_n = math.log(self.n)
        self.cumulative_loss = np.zeros(self.n)
        self.hedge_loss = 0.0
        self.mixability_gap = 0.0
        self.variance = 0.0
        self.loss_range = 0.0
        self.rounds = 0
        self._weights = np.full(self.n, 1.0 / self.n)

    @property
    def learning_rate(self) -> float:
        """η = ln N / Δ (∞ while Δ = 0)."""
        return self._log_n / self.mixability_gap if self.mixability_gap > 0.0 else math.inf

    @property
    def weights(self) -> np.ndarray:
        """The weights to play next round (a copy)."""
        return self._weights.copy()

    def regret_bound(self) -> float:
        """2 √(V ln N) + S (4/3 ln N + 2), the variance bound on 2Δ (module docstring)."""
        return 2.0 * math.sqrt(self.variance * self._log_n) + self.loss_range * (4.0 / 3.0 * self._log_n + 2.0)

    def update(self, loss: np.ndarray) -> np.ndarray:
        """Play the current weights against ``loss`` (one per expert); return the new weights."""
        loss = np.asarray(loss, dtype=float)
        if loss.shape != (self.n,):
            raise ValueError(f"AdaHedge.update: loss must have shape ({self.n},), got {loss.shape}")
        if not np.all(np.isfinite(loss)):
            raise ValueError("AdaHedge.update: loss must be finite")
        w = self._weights
        eta = self.learning_rate
        # h = w · ℓ
        hedge = float(w @ loss)
        low = float(loss.min())
        if math.isinf(eta):
            # η = ∞: the mix loss is the least loss among the experts holding weight
            mix = float(loss[w > 0.0].min())
        else:
            # m = −(1/η) ln Σ w e^{−η ℓ}, shifted by min ℓ for stability
            mix = low - math.log(float(w @ np.exp(-eta * (loss - low)))) / eta
        self.hedge_loss += hedge
        self.mixability_gap += max(hedge - mix, 0.0)
        self.variance += float(w @ (loss - hedge) ** 2)
        self.loss_range = max(self.loss_range, float(loss.max()) - low)
        self.cumulative_loss += loss
        self.rounds += 1
        self._weights = self._next_weights()
        return self._weights

    def _next_weights(self) -> np.ndarray:
        eta = self.learning_rate
        cum = self.cumulative_loss
        best = cum.min()
        if math.isinf(eta):
            leaders = cum == best
            return leaders / leaders.sum()
        # w ∝ exp(−η (L − min L))
        w = np.exp(-eta * (cum - best))
        return w / w.sum()

    @property
    def regret(self) -> float:
        """R_T = Σ h_t − min_k L_k."""
        return self.hedge_loss - float(self.cumulative_loss.min())
