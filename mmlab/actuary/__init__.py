"""Actuary: prices around the filter's fair value V̂ and the expected PnL of every level.

GLFT depths (Guéant, Lehalle & Fernandez-Tapia 2013; drift terms from Guéant 2017), closed-form
asymptotic approximation, with fill intensity Λ_s(δ) = A_s e^{−κ_s δ} per side s ∈ {bid, ask}.
Inventory is counted in lots of Δ coins (``max_order_size``), so the model is written in "per
lot" units S' = Δ S, σ' = Δ σ_S, μ' = Δ μ_S, κ' = κ/Δ and converted back per coin:

    c_s  = (1/γ) ln(1 + γ/κ'_s)
    ω_s  = sqrt( σ'² γ / (2 κ'_s A_s) · (1 + γ/κ'_s)^(1 + κ'_s/γ) )
    δ_b  = c_b + ( −μ'/(γ σ'²) + (2 q + 1)/2 ) ω_b
    δ_a  = c_a + (  μ'/(γ σ'²) − (2 q − 1)/2 ) ω_a

with γ = γ(q) from the governor and q the position in lots. Quotes are anchored on V̂, never on
the exchange mid: bid = V̂ − δ_b − carry, ask = V̂ + δ_a − carry, where carry (USD per coin) is the
expected funding paid by one coin long over the holding horizon, so positive funding lowers both
quotes and a long position is sold down sooner than a short one is bought back.

Floors: a resting quote is a short option over its life τ; its value is σ_V √(τ / 2π), so no quote
rests closer than that to V̂ (σ_V = V̂ σ in USD per √s). The ladder then steps away from the
first level by ``level_spacing_bps``.

Expected PnL per unit notional, in bps, for a level at depth d (bps from V̂):

    p     = 1 − exp(−A_s e^{−κ_s d} τ)                 fill probability over the quote's life
    edge  = distance from the reservation price r to the quote (bps of V̂)
    E[PnL] = p · (edge − adverse selection − impact − fee − carry_s)

where r = V̂ + drift shift − inventory penalty is the midpoint of the GLFT bid and ask, the
impact of a reference order of Δ coins is α (Δ / D)^β bps (D the displayed depth on that side)
and carry_s is +carry for a bid (it adds a long coin) and −carry for an ask.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from mmlab.config import ActuaryConfig
from mmlab.types import L2Book, LevelPricing, MarketBelief, ParameterUpdates, PricingSurface, RiskBudget, Side

__all__ = ["Actuary", "GlftActuary", "glft_depths"]


class Actuary(Protocol):
    def price(
        self, belief: MarketBelief, budget: RiskBudget, book: L2Book | None, updates: ParameterUpdates | None
    ) -> PricingSurface:
        """Reservation price and per-level economics for both sides."""
        ...


def glft_depths(
    *,
    fair_value: float,
    sigma_per_sqrt_s: float,
    drift_per_s: float,
    gamma_per_usd: float,
    position_lots: float,
    lot_size: float,
    intensity_bid_per_s: float,
    intensity_ask_per_s: float,
    decay_bid_per_bps: float,
    decay_ask_per_bps: float,
) -> tuple[float, float]:
    """GLFT closed-form bid and ask depths from V̂, in USD per coin (see the module docstring)."""
    bps_usd = 1e-4 * fair_value  # one bps of V̂ in USD
    # per-lot units: σ' = Δ σ_V, μ' = Δ μ_V, κ' = κ / Δ
    sigma_lot = lot_size * fair_value * sigma_per_sqrt_s
    drift_lot = lot_size * fair_value * drift_per_s
    gamma = gamma_per_usd
    depths = []
    for intensity, decay_per_bps, inventory_term in (
        (intensity_bid_per_s, decay_bid_per_bps, (2.0 * position_lots + 1.0) / 2.0),
        (intensity_ask_per_s, decay_ask_per_bps, -(2.0 * position_lots - 1.0) / 2.0),
    ):
        kappa_lot = decay_per_bps / bps_usd / lot_size
        ratio = gamma / kappa_lot
        # c = (1/γ) ln(1 + γ/κ')
        c = math.log1p(ratio) / gamma
        # ω = sqrt(σ'² γ / (2 κ' A) · (1 + γ/κ')^(1 + κ'/γ))
        omega = math.sqrt(sigma_lot**2 * gamma / (2.0 * kappa_lot * intensity) * (1.0 + ratio) ** (1.0 + 1.0 / ratio))
        depths.append((c, omega, inventory_term))
    # μ'/(γ σ'²): how many lots of skew the drift is worth
    drift_lots = drift_lot / (gamma * sigma_lot**2)
    (c_b, omega_b, inv_b), (c_a, omega_a, inv_a) = depths
    # δ_b = c_b + (−μ'/(γσ'²) + (2q+1)/2) ω_b ;  δ_a = c_a + (μ'/(γσ'²) − (2q−1)/2) ω_a
    delta_bid_lot = c_b + (-drift_lots + inv_b) * omega_b
    delta_ask_lot = c_a + (drift_lots + inv_a) * omega_a
    return delta_bid_lot / lot_size, delta_ask_lot / lot_size


class GlftActuary:
    """GLFT pricing around V̂ with option floor, carry, impact and an E[PnL] per level."""

    def __init__(self, config: ActuaryConfig | None = None) -> None:
        self.config = config or ActuaryConfig()
        offsets = np.arange(self.config.levels, dtype=float) * self.config.level_spacing_bps
        self._level_offsets_bps = offsets

    def price(
        self,
        belief: MarketBelief,
        budget: RiskBudget,
        book: L2Book | None,
        updates: ParameterUpdates | None = None,
    ) -> PricingSurface:
        cfg = self.config
        fair_value = belief.fair_value
        bps_usd = 1e-4 * fair_value
        lot = budget.max_order_size
        delta_bid, delta_ask = glft_depths(
            fair_value=fair_value,
            sigma_per_sqrt_s=belief.sigma_per_sqrt_s,
            drift_per_s=belief.drift_per_s,
            gamma_per_usd=budget.gamma_per_usd,
            position_lots=budget.position / lot,
            lot_size=lot,
            intensity_bid_per_s=cfg.intensity_at_touch_bid_per_s,
            intensity_ask_per_s=cfg.intensity_at_touch_ask_per_s,
            decay_bid_per_bps=cfg.intensity_decay_bid_per_bps,
            decay_ask_per_bps=cfg.intensity_decay_ask_per_bps,
        )
        # reservation r = V̂ + drift shift − inventory penalty: the midpoint of the GLFT quotes
        reservation = fair_value + 0.5 * (delta_ask - delta_bid)
        spread_adjust_bps = updates.spread_adjust_bps if updates is not None else 0.0
        carry_bps = budget.funding_carry_bps
        # option floor: a quote resting for τ is a short option worth σ_V sqrt(τ / 2π)
        floor_bps = 1e4 * belief.sigma_per_sqrt_s * math.sqrt(cfg.quote_life_s / (2.0 * math.pi))
        # depths of the first level from V̂, in bps, after carry, the evaluator's adjustment and floors
        bid_depth_bps = max(delta_bid / bps_usd + carry_bps + spread_adjust_bps, floor_bps)
        ask_depth_bps = max(delta_ask / bps_usd - carry_bps + spread_adjust_bps, floor_bps)
        adverse_bps = self._adverse_selection_bps(updates)
        bids = self._ladder(Side.BUY, bid_depth_bps, fair_value, reservation, carry_bps, adverse_bps, budget, book)
        asks = self._ladder(Side.SELL, ask_depth_bps, fair_value, reservation, carry_bps, adverse_bps, budget, book)
        half_spread_bps = 0.5 * (bid_depth_bps + ask_depth_bps)
        return PricingSurface(
            ts_local=belief.ts_local,
            fair_value=fair_value,
            sigma_per_sqrt_s=belief.sigma_per_sqrt_s,
            reservation_price=reservation,
            half_spread_bps=half_spread_bps,
            skew_bps=(reservation - fair_value) / bps_usd,
            bids=bids,
            asks=asks,
        )

    def _adverse_selection_bps(self, updates: ParameterUpdates | None) -> float:
        if updates is None or updates.fills_marked == 0:
            return self.config.adverse_selection_prior_bps
        return updates.adverse_selection_bps

    def _ladder(
        self,
        side: Side,
        first_depth_bps: float,
        fair_value: float,
        reservation: float,
        carry_bps: float,
        adverse_bps: float,
        budget: RiskBudget,
        book: L2Book | None,
    ) -> tuple[LevelPricing, ...]:
        cfg = self.config
        sign = int(side)
        depth_bps = first_depth_bps + self._level_offsets_bps
        prices = fair_value * (1.0 - sign * 1e-4 * depth_bps)
        if side is Side.BUY:
            intensity, decay = cfg.intensity_at_touch_bid_per_s, cfg.intensity_decay_bid_per_bps
        else:
            intensity, decay = cfg.intensity_at_touch_ask_per_s, cfg.intensity_decay_ask_per_bps
        # p = 1 − exp(−A e^{−κ d} τ)
        fill_prob = -np.expm1(-intensity * np.exp(-decay * depth_bps) * cfg.quote_life_s)
        # edge measured from the reservation price, so inventory and drift enter E[PnL]
        edge_bps = sign * (reservation - prices) / fair_value * 1e4
        displayed = book.depth(side) if book is not None else 0.0
        # impact of a reference order of Δ coins: α (Δ / D)^β; an empty side gives full α
        ratio = min(1.0, budget.max_order_size / displayed) if displayed > 0.0 else 1.0
        impact_bps = cfg.impact_alpha_bps * ratio**cfg.impact_beta
        side_carry_bps = sign * carry_bps
        expected = fill_prob * (edge_bps - adverse_bps - impact_bps - cfg.maker_fee_bps - side_carry_bps)
        return tuple(
            LevelPricing(
                side=side,
                level=k,
                price=float(prices[k]),
                depth_bps=float(depth_bps[k]),
                fill_prob=float(fill_prob[k]),
                edge_bps=float(edge_bps[k]),
                adverse_selection_bps=adverse_bps,
                impact_bps=impact_bps,
                fee_bps=cfg.maker_fee_bps,
                carry_bps=side_carry_bps,
                expected_pnl_bps=float(expected[k]),
            )
            for k in range(cfg.levels)
        )
