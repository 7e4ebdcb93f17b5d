"""Governor: how much risk the strategy may take, as smooth functions of the position and belief.

- Inventory aversion ``γ(q) = γ_base · (1 + β (q / q_max)²)``: convex in q, equal to γ_base when
  flat and γ_base (1 + β) at the cap, with no thresholds in between.
- Caps: the position may not exceed ``q_max`` coins nor ``max_notional_usd / V̂`` coins in
  either direction; ``max_buy_size`` and ``max_sell_size`` are what is left before they bind.
- Funding carry: the expected funding paid by one coin long held for an exponential time of mean
  H (the holding horizon), from the venue's current rate as the prediction of the next settlement
  and an OU reversion of later ones (:mod:`mmlab.governor.funding`), in bps of its value.
- Kelly exposure: holding notional X for H earns the net edge m per unit notional and risks the
  variance v = σ² H per unit notional, so log-wealth grows at m X − ½ v X² / W, maximised at
  X* = W m / v (full Kelly). The budget allows S* = f · X*, with f the mean of
  ``kelly_fraction_by_regime`` under the filter's regime probabilities (smaller in crisis, where σ̂
  and the model's own error are largest). m is the posterior mean of the evaluator's net markout at
  the horizon nearest H (markout − fee), shrunk to ``kelly_edge_prior_bps`` with a weight of
  ``kelly_edge_prior_fills`` fills; S* = 0 when m ≤ 0 (Kelly never bets on a negative edge).
- Marginal cost of one more coin of inventory, in bps of V̂: the change of the quadratic
  inventory-risk penalty ½ γ(q) σ_V² H q² when q grows by one coin, plus the carry.
  With σ_V = V̂ σ (USD per √s): ``d/dq [½ γ(q) q² σ_V² H]`` divided by V̂.
- Urgency: the marginal cost measured in typical price moves over ``urgency_time_s``,
  ``|marginal cost| / (σ √t_u)`` (both in bps): zero when flat without carry, growing with |q|,
  with γ(q)'s convexity and with σ̂ (so with the crisis regime). The executor's price tolerance
  shrinks with it.
"""

from __future__ import annotations

import math
from typing import Protocol

from mmlab.config import GovernorConfig
from mmlab.governor.funding import expected_funding_carry, seconds_to_next_settlement
from mmlab.types import MARKOUT_HORIZONS_S, MarketBelief, ParameterUpdates, RiskBudget

__all__ = ["Governor", "InventoryGovernor", "gamma_of_q", "kelly_notional_usd"]


class Governor(Protocol):
    def budget(
        self,
        belief: MarketBelief,
        position: float,
        funding_rate: float,
        funding_interval_s: float,
        updates: ParameterUpdates | None = None,
    ) -> RiskBudget:
        """Risk budget for ``position`` coins given the belief, the funding rate and the evaluator's
        latest updates."""
        ...


def gamma_of_q(q: float, q_max: float, gamma_base: float, beta: float) -> float:
    """γ(q) = γ_base · (1 + β (q / q_max)²)."""
    return gamma_base * (1.0 + beta * (q / q_max) ** 2)


def kelly_notional_usd(*, capital_usd: float, edge_bps: float, sigma_per_sqrt_s: float, horizon_s: float, fraction: float) -> float:
    """S* = f · W · m / v with m = edge (fraction of notional) and v = σ² H; 0 when m ≤ 0."""
    if edge_bps <= 0.0:
        return 0.0
    # X* = W m / v,  v = σ² H
    return fraction * capital_usd * (edge_bps * 1e-4) / (sigma_per_sqrt_s**2 * horizon_s)


class InventoryGovernor:
    """Smooth inventory aversion, hard caps, funding carry and fractional Kelly exposure."""

    def __init__(self, config: GovernorConfig | None = None) -> None:
        self.config = config or GovernorConfig()
        horizon = self.config.holding_horizon_s
        self._edge_horizon = min(range(len(MARKOUT_HORIZONS_S)), key=lambda i: abs(MARKOUT_HORIZONS_S[i] - horizon))

    def edge_bps(self, updates: ParameterUpdates | None) -> float:
        """Posterior mean net edge per unit notional over the holding horizon, bps."""
        cfg = self.config
        prior, weight = cfg.kelly_edge_prior_bps, cfg.kelly_edge_prior_fills
        if updates is None or updates.fills_marked == 0 or len(updates.markout_bps) <= self._edge_horizon:
            return prior
        markout = updates.markout_bps[self._edge_horizon]
        if not math.isfinite(markout):
            return prior
        fills = updates.fills_marked
        # m = (n0 m0 + n (markout − fee)) / (n0 + n)
        return (weight * prior + fills * (markout - updates.fee_bps)) / (weight + fills)

    def budget(
        self,
        belief: MarketBelief,
        position: float,
        funding_rate: float = 0.0,
        funding_interval_s: float = 3600.0,
        updates: ParameterUpdates | None = None,
    ) -> RiskBudget:
        cfg = self.config
        fair_value = belief.fair_value
        sigma = belief.sigma_per_sqrt_s
        # the binding cap in coins: position limit or notional limit at V̂
        q_cap = min(cfg.q_max, cfg.max_notional_usd / fair_value)
        gamma = gamma_of_q(position, q_cap, cfg.gamma_base_per_usd, cfg.gamma_beta)
        horizon = cfg.holding_horizon_s
        carry = expected_funding_carry(
            next_rate=funding_rate,
            mean_rate=cfg.funding_mean_per_interval,
            reversion_s=cfg.funding_reversion_s,
            interval_s=funding_interval_s,
            to_next_s=seconds_to_next_settlement(belief.ts_local, funding_interval_s),
            holding_horizon_s=horizon,
        )
        carry_bps = 1e4 * carry
        sigma_usd2 = (fair_value * sigma) ** 2
        # d/dq [½ γ(q) q² σ_V² H] = σ_V² H (γ(q) q + ½ γ'(q) q²),  γ'(q) = 2 γ_base β q / q_cap²
        gamma_slope = 2.0 * cfg.gamma_base_per_usd * cfg.gamma_beta * position / q_cap**2
        marginal_usd = sigma_usd2 * horizon * (gamma * position + 0.5 * gamma_slope * position**2)
        marginal_bps = 1e4 * marginal_usd / fair_value + carry_bps
        # f = Σ_i p_i f_i over the regimes
        fraction = math.fsum(p * f for p, f in zip(belief.regime_probs, cfg.kelly_fraction_by_regime))
        kelly = kelly_notional_usd(
            capital_usd=cfg.capital_usd, edge_bps=self.edge_bps(updates), sigma_per_sqrt_s=sigma, horizon_s=horizon, fraction=fraction
        )
        # urgency = |marginal cost| / (σ √t_u), both in bps
        urgency = abs(marginal_bps) / (1e4 * sigma * math.sqrt(cfg.urgency_time_s))
        return RiskBudget(
            ts_local=belief.ts_local,
            position=position,
            gamma_per_usd=gamma,
            q_max=q_cap,
            max_buy_size=max(0.0, q_cap - position),
            max_sell_size=max(0.0, q_cap + position),
            max_order_size=cfg.max_order_size,
            funding_carry_bps=carry_bps,
            marginal_cost_bps=marginal_bps,
            holding_horizon_s=horizon,
            kelly_notional_usd=kelly,
            kelly_fraction=fraction,
            urgency=urgency,
            predicted_funding_rate=funding_rate,
        )
