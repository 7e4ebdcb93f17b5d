"""Governor: how much risk the strategy may take, as smooth functions of the position.

- Inventory aversion ``γ(q) = γ_base · (1 + β (q / q_max)²)``: convex in q, equal to γ_base when
  flat and γ_base (1 + β) at the cap, with no thresholds in between.
- Caps: the position may not exceed ``q_max`` coins nor ``max_notional_usd / V̂`` coins in
  either direction; ``max_buy_size`` and ``max_sell_size`` are what is left before they bind.
- Funding carry: holding one coin long for the horizon H pays ``rate · H / interval`` of its
  value (Hyperliquid settles hourly), so ``funding_carry_bps = 1e4 · rate · H / interval``.
- Marginal cost of one more coin of inventory, in bps of V̂: the change of the quadratic
  inventory-risk penalty ½ γ(q) σ_V² H q² when q grows by one coin, plus the carry.
  With σ_V = V̂ σ (USD per √s): ``d/dq [½ γ(q) q² σ_V² H]`` divided by V̂.
"""

from __future__ import annotations

from typing import Protocol

from mmlab.config import GovernorConfig
from mmlab.types import MarketBelief, RiskBudget

__all__ = ["Governor", "InventoryGovernor", "gamma_of_q"]


class Governor(Protocol):
    def budget(self, belief: MarketBelief, position: float, funding_rate: float, funding_interval_s: float) -> RiskBudget:
        """Risk budget for ``position`` coins given the belief and the current funding rate."""
        ...


def gamma_of_q(q: float, q_max: float, gamma_base: float, beta: float) -> float:
    """γ(q) = γ_base · (1 + β (q / q_max)²)."""
    return gamma_base * (1.0 + beta * (q / q_max) ** 2)


class InventoryGovernor:
    """Smooth inventory aversion, hard position and notional caps, funding carry."""

    def __init__(self, config: GovernorConfig | None = None) -> None:
        self.config = config or GovernorConfig()

    def budget(
        self, belief: MarketBelief, position: float, funding_rate: float = 0.0, funding_interval_s: float = 3600.0
    ) -> RiskBudget:
        cfg = self.config
        fair_value = belief.fair_value
        # the binding cap in coins: position limit or notional limit at V̂
        q_cap = min(cfg.q_max, cfg.max_notional_usd / fair_value)
        gamma = gamma_of_q(position, q_cap, cfg.gamma_base_per_usd, cfg.gamma_beta)
        horizon = cfg.holding_horizon_s
        # carry of one coin long over the horizon, in bps of its value
        carry_bps = 1e4 * funding_rate * horizon / funding_interval_s
        sigma_usd2 = (fair_value * belief.sigma_per_sqrt_s) ** 2
        # d/dq [½ γ(q) q² σ_V² H] = σ_V² H (γ(q) q + ½ γ'(q) q²),  γ'(q) = 2 γ_base β q / q_cap²
        gamma_slope = 2.0 * cfg.gamma_base_per_usd * cfg.gamma_beta * position / q_cap**2
        marginal_usd = sigma_usd2 * horizon * (gamma * position + 0.5 * gamma_slope * position**2)
        return RiskBudget(
            ts_local=belief.ts_local,
            position=position,
            gamma_per_usd=gamma,
            q_max=q_cap,
            max_buy_size=max(0.0, q_cap - position),
            max_sell_size=max(0.0, q_cap + position),
            max_order_size=cfg.max_order_size,
            funding_carry_bps=carry_bps,
            marginal_cost_bps=1e4 * marginal_usd / fair_value + carry_bps,
            holding_horizon_s=horizon,
        )
