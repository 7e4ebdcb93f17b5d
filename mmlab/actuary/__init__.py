"""Actuary: prices around the filter's fair value V̂ and the expected PnL of every level.

Model
-----
Inventory q is counted in lots of Δ coins (``max_order_size``); fill intensity per side
s ∈ {bid, ask} is Λ_s(δ) = A_s e^{−κ_s δ} (δ the depth from V̂). The strategy maximises the
risk-neutral value of its wealth minus the running inventory cost the governor charges,

    E[ X_T + q_T S_T − ∫ g(q_t) dt ],     g(q) = ½ γ(q) σ_V² (Δ q)²     (USD per second),

with γ(q) = ``budget.gamma_per_usd`` and σ_V = V̂ σ (USD per √s): the Cartea–Jaimungal form of
the GLFT problem, whose exact finite-inventory solution :mod:`mmlab.actuary.glft_exact` computes.
Its optimal depths are δ_b = 1/κ_b + p_b and δ_a = 1/κ_a + p_a, where p_b = (h(q) − h(q+1))/Δ
and p_a = (h(q) − h(q−1))/Δ are the values (per coin) the next lot bought or sold costs the
value function h. Far from the horizon, the continuous-inventory approximation of GLFT (a
quadratic stationary value, exact for a quadratic penalty in the continuum: the harmonic-oscillator
ground state h ∝ −(q − q_μ)²) gives them in closed form; for symmetric sides

    ω    = sqrt( e γ σ_V² Δ / (2 κ A) )                      (USD per coin)
    q_μ  = μ_V / (γ σ_V² Δ)                                   (lots the drift wants to hold)
    p_b  =  ω (q − q_μ + ½)
    p_a  = −ω (q − q_μ − ½)

and :func:`penalised_glft_offsets` gives the general form with separate (A, κ) per side. These
are GLFT's formulas with the CARA fill terms c = (1/γ) ln(1 + γ/κ) and (1 + γ/κ)^{1+κ/γ}
replaced by their γ → 0 limits 1/κ and e (:func:`glft_depths` keeps the CARA closed form).
Against the exact ODE solution (:func:`mmlab.actuary.glft_exact.solve_glft_exact`) at constant
γ the depths agree within 1.3 % for |q| ≤ 2 lots at the default parameters and 0.3 % at a
realistic BTC set (1.3 % with asymmetric sides).

Why not CARA with γ(q): in GLFT the spread is 2c(γ) + ω(γ). The term c(γ) is not an inventory
term; it is the CARA certainty equivalent of the fill itself, and it falls from 1/κ towards 0
as γ grows (a more risk-averse CARA agent prefers the sure cash of a likelier fill). Putting
γ(q), which grows with |q|, into a formula derived for a constant γ therefore makes the spread
narrow as |q| grows whenever c falls faster than ω rises (it does at the defaults). CARA with a
position-dependent γ is not even a utility over wealth. Charging the inventory risk as the
running cost g(q) instead keeps the fill term at 1/κ, and the whole effect of risk aversion is
the inventory term: the total spread is δ_b + δ_a = 1/κ_b + 1/κ_a + a/Δ (exactly 2/κ + ω for
symmetric sides, a ∝ sqrt(γ) in :func:`penalised_glft_offsets`), which widens with γ(q) (hence with |q|) and with σ. The
penalty's curvature is taken as γ(q) σ_V² with γ frozen at the current position (the actuary
sees γ(q), not the governor's whole γ(·)); the exact solver with the full g(q) widens faster.

Reservation and carry
---------------------
The side's indifference prices are r_b = V̂ − p_b and r_a = V̂ + p_a (before carry); the
reservation price is

    r = V̂ + drift shift − inventory penalty − carry = ½ (r_b + r_a) − carry,

with carry = ``budget.funding_carry_bps`` (expected funding paid by one coin long over the
holding horizon), never the exchange mid.

Depth of the first level
------------------------
A per-fill cost k that does not depend on δ moves the risk-neutral optimum one for one
(maximise Λ(δ)(δ − k − p) → δ* = 1/κ + p + k), so with the evaluator's adjustment a:

    base_s = 1/κ_s + p_s + a,
    d_s    = max( base_s + k_s(d̄_s),  option floor,  informed floor ),
    k_s(d) = fee + carry_s + AS_s(d) + impact_s(d),       carry_b = +carry, carry_a = −carry.

AS and impact vary with depth; for the first depth they are evaluated once at the flat, driftless
depth d̄_s = 1/κ_s + p_s(q = 0, μ = 0) (one step of the fixed point d = base + k(d)), so the cost
does not depend on q or μ̂ and the skew and the widening come from the value function alone.
E[PnL] of every level uses the costs at its own depth.

Floors
------
- Option floor: a quote resting for τ (``quote_life_s``) is a short option on V worth
  σ_V sqrt(τ / 2π), so no quote rests closer than that (in bps, 1e4 σ sqrt(τ/2π)).
- Informed (Glosten–Milgrom) floor: over the quote's life V is uncertain with
  V − V̂ ~ N(0, S²), S = V̂ s, s² = log_fair_value_var + σ² τ. A fraction π of takers know V;
  an informed one lifts an ask at a = V̂ + d only if V > a, an uninformed one arrives regardless.
  The quote's profit per arrival is then

      E[(a − V) 1{fill}] = (1 − π) E[a − V] + π E[(a − V) 1{V > a}] = (1 − π) d − π S L(d/S),

  with L(z) = φ(z) − z (1 − Φ(z)) the standard normal loss function (E[(V − a)⁺] = S L(z)).
  Zero expected profit given a fill gives (1 − π) z = π L(z), z = d/S; its left side rises from
  0 and its right side falls from π φ(0), so the root z*(π) is unique; f(z) = (1−π) z − π L(z)
  is increasing (f' = 1 − π + π (1 − Φ)) and concave (f'' = −π φ), so Newton's method from
  z = 0 increases monotonically to it. The floor is d_GM = S z*(π) (bps: 1e4 s z*), the same
  on both sides by symmetry.
- The depth is the largest of the GLFT depth and both floors.

Expected PnL per level (per unit notional, bps)
-----------------------------------------------
    p      = 1 − exp(−A_s e^{−κ_s d} τ)                   fill probability over the quote's life
    edge   = distance from the side's indifference price r_s (before carry) to the quote
    AS_π(d) = π S φ(z) / ((1 − π) + π (1 − Φ(z)))   E[V − V̂ | fill] in the model above
    AS(d)  = w max(AS_measured, AS_π(d)) + (1 − w) (AS_prior + AS_π(d)),  w = n / (n + n0):
             the evaluator's measurement (its markout already contains the informed losses; the
             model's is a lower bound from the belief's π) weighed against the prior by the n fills
             it has marked, the prior worth n0 = ``adverse_selection_prior_fills`` fills (the
             prior stands for the adverse selection the informed-trader model does not describe:
             stale quotes, latency). One unlucky fill therefore cannot push every quote out of
             reach, after which no fill would ever correct it.
    impact = α (Δ / D)^β with D the displayed size on that side at prices at or better than
             the level's price (what an order of Δ coins joining at that price adds to); D = 0
             (nothing displayed there) gives the full α
    E[PnL] = p · (edge − AS − impact − fee − carry_s)
    theta  = A_s e^{−κ_s d} · edge          (spread income rate, bps per second)
    gamma  = p · AS                          (adverse-selection exposure, bps)

Levels beyond the first follow the E[PnL] surface (:mod:`mmlab.actuary.spacing`).
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
from scipy.special import ndtr

from mmlab.actuary.spacing import enforce_min_spacing, quantile_depths
from mmlab.config import ActuaryConfig
from mmlab.types import L2Book, LevelPricing, MarketBelief, ParameterUpdates, PricingSurface, RiskBudget, Side

__all__ = [
    "Actuary",
    "GlftActuary",
    "glft_depths",
    "penalised_glft_offsets",
    "informed_floor_z",
    "informed_adverse_selection",
]

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


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
    """GLFT's CARA closed-form bid and ask depths from V̂ (constant γ), USD per coin.

    In per-lot units S' = Δ S, σ' = Δ σ_V, μ' = Δ μ_V, κ' = κ/Δ:

        c_s  = (1/γ) ln(1 + γ/κ'_s)
        ω_s  = sqrt( σ'² γ / (2 κ'_s A_s) · (1 + γ/κ'_s)^(1 + κ'_s/γ) )
        δ_b  = c_b + ( −μ'/(γ σ'²) + (2 q + 1)/2 ) ω_b
        δ_a  = c_a + (  μ'/(γ σ'²) − (2 q − 1)/2 ) ω_a

    This is the approximation :func:`mmlab.actuary.glft_exact.solve_glft_exact` checks; the
    actuary prices with :func:`penalised_glft_offsets` (see the module docstring for why).
    """
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


def penalised_glft_offsets(
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
    """Inventory-and-drift offsets (p_b, p_a) of the running-penalty model, USD per coin.

    The optimal depths are δ_b = 1/κ_b + p_b and δ_a = 1/κ_a + p_a (κ per USD per coin). In
    per-lot units (κ' = κ/Δ, φ = ½ γ σ_V² Δ², μ' = Δ μ_V) the stationary value is approximated
    by a quadratic θ(q) = −½ a q² − b q with the Hamiltonians H_s(p) = (A_s/(e κ'_s)) e^{−κ'_s p}
    expanded to second order in p (Guéant 2017's approach); matching the q² and q terms gives

        K₁ = (A_b − A_a)/e,  K₂ = (κ'_b A_b + κ'_a A_a)/e,  D₂ = (κ'_b A_b − κ'_a A_a)/e
        a  = sqrt(2 φ / K₂)
        b  = (a K₁ − ½ a² D₂ − μ') / (a K₂)
        p'_b = a (q + ½) + b,     p'_a = −a (q − ½) − b,       p = p'/Δ

    With equal sides K₁ = D₂ = 0 and this is ω (q − q_μ ± ½) of the module docstring.
    """
    bps_usd = 1e-4 * fair_value
    sigma_lot = lot_size * fair_value * sigma_per_sqrt_s
    drift_lot = lot_size * fair_value * drift_per_s
    # φ = ½ γ σ'²  (USD per second per lot²)
    phi = 0.5 * gamma_per_usd * sigma_lot**2
    # κ' = κ_bps / (1 bps in USD) / Δ
    kappa_b = decay_bid_per_bps / bps_usd / lot_size
    kappa_a = decay_ask_per_bps / bps_usd / lot_size
    k1 = (intensity_bid_per_s - intensity_ask_per_s) / math.e
    k2 = (kappa_b * intensity_bid_per_s + kappa_a * intensity_ask_per_s) / math.e
    d2 = (kappa_b * intensity_bid_per_s - kappa_a * intensity_ask_per_s) / math.e
    # a = sqrt(2φ/K₂) ;  b = (a K₁ − ½ a² D₂ − μ') / (a K₂)
    a = math.sqrt(2.0 * phi / k2)
    b = (a * k1 - 0.5 * a * a * d2 - drift_lot) / (a * k2)
    # p'_b = a (q + ½) + b ;  p'_a = −a (q − ½) − b
    return (a * (position_lots + 0.5) + b) / lot_size, (-a * (position_lots - 0.5) - b) / lot_size


def informed_floor_z(informed_fraction: float) -> float:
    """z*(π): the root of (1 − π) z = π L(z), L the standard normal loss function (module
    docstring); the Glosten–Milgrom floor is S z*. Newton from z = 0 (monotone for this concave
    increasing function)."""
    pi = informed_fraction
    if not (math.isfinite(pi) and 0.0 <= pi <= 1.0):
        raise ValueError(f"MarketBelief.informed_fraction must be in [0, 1], got {pi!r}")
    if pi == 0.0:
        return 0.0
    pi = min(pi, 1.0 - 1e-12)  # π = 1 has no break-even depth; 1 − 1e-12 gives z* ≈ 7
    z = 0.0
    for _ in range(60):
        tail = 0.5 * math.erfc(z / math.sqrt(2.0))  # 1 − Φ(z)
        density = _INV_SQRT_2PI * math.exp(-0.5 * z * z)
        # f(z) = (1 − π) z − π (φ(z) − z (1 − Φ(z))),  f'(z) = 1 − π + π (1 − Φ(z))
        f = (1.0 - pi) * z - pi * (density - z * tail)
        step = f / (1.0 - pi + pi * tail)
        z -= step
        if abs(step) <= 1e-12 * (1.0 + z):
            break
    return z


def informed_adverse_selection(depth_bps: np.ndarray, informed_fraction: float, uncertainty_bps: float) -> np.ndarray:
    """AS_π(d) = π S φ(z) / ((1 − π) + π (1 − Φ(z))), z = d/S: E[V − V̂ | fill] for a quote at
    depth d in the Glosten–Milgrom model of the module docstring (bps, same units as S)."""
    pi = informed_fraction
    if pi == 0.0:
        return np.zeros_like(depth_bps)
    z = depth_bps / uncertainty_bps
    density = _INV_SQRT_2PI * np.exp(-0.5 * z * z)
    return pi * uncertainty_bps * density / ((1.0 - pi) + pi * ndtr(-z))


class GlftActuary:
    """Running-penalty GLFT pricing around V̂ with option and informed floors, carry, impact, an
    E[PnL] per level and a ladder that follows the E[PnL] surface."""

    def __init__(self, config: ActuaryConfig | None = None) -> None:
        self.config = config or ActuaryConfig()
        cfg = self.config
        self._level_index = np.arange(cfg.levels, dtype=float)
        self._unit_grid = np.linspace(0.0, 1.0, cfg.depth_grid_points)
        # rows: bid, ask
        self._sign = np.array([1.0, -1.0])
        self._intensity = np.array([cfg.intensity_at_touch_bid_per_s, cfg.intensity_at_touch_ask_per_s])
        self._decay = np.array([cfg.intensity_decay_bid_per_bps, cfg.intensity_decay_ask_per_bps])
        self._col = (slice(None), None)

    def price(
        self,
        belief: MarketBelief,
        budget: RiskBudget,
        book: L2Book | None,
        updates: ParameterUpdates | None = None,
    ) -> PricingSurface:
        cfg = self.config
        fair_value = belief.fair_value
        sigma = belief.sigma_per_sqrt_s
        bps_usd = 1e-4 * fair_value
        lot = budget.max_order_size
        if not budget.gamma_per_usd > 0.0:
            raise ValueError(f"RiskBudget.gamma_per_usd must be > 0, got {budget.gamma_per_usd!r}")
        if not lot > 0.0:
            raise ValueError(f"RiskBudget.max_order_size must be > 0, got {lot!r}")
        if not sigma > 0.0:
            raise ValueError(f"MarketBelief.sigma_per_sqrt_s must be > 0, got {sigma!r}")
        offset_bid, offset_ask = penalised_glft_offsets(
            fair_value=fair_value,
            sigma_per_sqrt_s=sigma,
            drift_per_s=belief.drift_per_s,
            gamma_per_usd=budget.gamma_per_usd,
            position_lots=budget.position / lot,
            lot_size=lot,
            intensity_bid_per_s=cfg.intensity_at_touch_bid_per_s,
            intensity_ask_per_s=cfg.intensity_at_touch_ask_per_s,
            decay_bid_per_bps=cfg.intensity_decay_bid_per_bps,
            decay_ask_per_bps=cfg.intensity_decay_ask_per_bps,
        )
        carry_bps = budget.funding_carry_bps
        # r = ½ (r_b + r_a) − carry,  r_b = V̂ − p_b,  r_a = V̂ + p_a
        reservation = fair_value + 0.5 * (offset_ask - offset_bid) - carry_bps * bps_usd
        tau = cfg.quote_life_s
        # option floor σ_V sqrt(τ / 2π), in bps
        option_floor_bps = 1e4 * sigma * math.sqrt(tau / (2.0 * math.pi))
        # informed floor S z*(π), S = V̂ sqrt(var ln V + σ² τ)
        uncertainty_bps = 1e4 * math.sqrt(belief.log_fair_value_var + sigma * sigma * tau)
        informed = belief.informed_fraction
        informed_floor_bps = uncertainty_bps * informed_floor_z(informed)
        floor_bps = max(option_floor_bps, informed_floor_bps)
        adjust_bps = updates.spread_adjust_bps if updates is not None else 0.0
        measured_as_bps = self._adverse_selection_bps(updates)
        # weight of the measurement against the prior: n / (n + n0), n the fills it has marked
        marked = updates.fills_marked if updates is not None else 0
        measured_weight = marked / (marked + self.config.adverse_selection_prior_fills)
        prior_as_bps = self.config.adverse_selection_prior_bps
        # per-side rows (bid, ask): p_s in bps and carry_s = ±carry
        offset = np.array([offset_bid, offset_ask]) / bps_usd
        side_carry = self._sign * carry_bps
        books = None if book is None else ((book.bid_px, np.cumsum(book.bid_sz)), (book.ask_px, np.cumsum(book.ask_sz)))

        def costs(depth_bps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            informed_as = informed_adverse_selection(depth_bps, informed, uncertainty_bps)
            # AS = w max(AS_measured, AS_π(d)) + (1 − w) (AS_prior + AS_π(d)),  w = n / (n + n0)
            adverse = measured_weight * np.maximum(measured_as_bps, informed_as) + (1.0 - measured_weight) * (prior_as_bps + informed_as)
            return adverse, self._impact_bps(depth_bps, fair_value, lot, books)

        col = self._col
        # first level: base = 1/κ + p + a,  d = max(base + k(d̄), floors), d̄ the flat depth
        base = 1.0 / self._decay + offset + adjust_bps
        flat_bid, flat_ask = penalised_glft_offsets(
            fair_value=fair_value,
            sigma_per_sqrt_s=sigma,
            drift_per_s=0.0,
            gamma_per_usd=budget.gamma_per_usd,
            position_lots=0.0,
            lot_size=lot,
            intensity_bid_per_s=cfg.intensity_at_touch_bid_per_s,
            intensity_ask_per_s=cfg.intensity_at_touch_ask_per_s,
            decay_bid_per_bps=cfg.intensity_decay_bid_per_bps,
            decay_ask_per_bps=cfg.intensity_decay_ask_per_bps,
        )
        adverse0, impact0 = costs(1.0 / self._decay + np.array([flat_bid, flat_ask]) / bps_usd)
        first = np.maximum(base + cfg.maker_fee_bps + side_carry + adverse0 + impact0, floor_bps)
        spacing = cfg.level_spacing_bps
        depth = first[col] + self._level_index * spacing
        if cfg.adaptive_spacing and cfg.levels > 1:
            # grid beyond the first level out to where Λ τ has fallen by e^{-10} (at least 2N spacings)
            span = np.maximum(2.0 * cfg.levels * spacing, (np.maximum(np.log(self._intensity * tau), 0.0) + 10.0) / self._decay)
            grid = (first + spacing)[col] + span[col] * self._unit_grid
            adverse, impact = costs(grid)
            expected, _, _, _ = self._economics(grid, offset, adverse, impact, side_carry)
            for row in range(2):
                deeper = quantile_depths(grid[row], expected[row], cfg.levels - 1)
                if deeper is not None:
                    depth[row, 1:] = deeper
            depth = enforce_min_spacing(depth, spacing)
        adverse, impact = costs(depth)
        expected, fill_prob, edge, rate = self._economics(depth, offset, adverse, impact, side_carry)
        prices = fair_value * (1.0 - 1e-4 * self._sign[col] * depth)
        # theta = Λ(d) · edge ;  gamma = p · AS
        theta = rate * edge
        gamma = fill_prob * adverse
        bids, asks = (
            self._levels(side, row, prices, depth, fill_prob, edge, adverse, impact, float(side_carry[row]), expected, theta, gamma)
            for row, side in enumerate((Side.BUY, Side.SELL))
        )
        return PricingSurface(
            ts_local=belief.ts_local,
            fair_value=fair_value,
            sigma_per_sqrt_s=sigma,
            reservation_price=reservation,
            half_spread_bps=0.5 * float(depth[0, 0] + depth[1, 0]),
            skew_bps=(reservation - fair_value) / bps_usd,
            bids=bids,
            asks=asks,
            option_floor_bps=option_floor_bps,
            informed_floor_bps=informed_floor_bps,
            intensity_bid_per_s=cfg.intensity_at_touch_bid_per_s,
            intensity_ask_per_s=cfg.intensity_at_touch_ask_per_s,
            decay_bid_per_bps=cfg.intensity_decay_bid_per_bps,
            decay_ask_per_bps=cfg.intensity_decay_ask_per_bps,
        )

    # -- internals -------------------------------------------------------------------------

    def _adverse_selection_bps(self, updates: ParameterUpdates | None) -> float:
        if updates is None or updates.fills_marked == 0:
            return self.config.adverse_selection_prior_bps
        return updates.adverse_selection_bps

    def _levels(self, side: Side, row: int, *arrays_and_carry) -> tuple[LevelPricing, ...]:
        prices, depth, fill_prob, edge, adverse, impact, side_carry, expected, theta, gamma = arrays_and_carry
        fee = self.config.maker_fee_bps
        columns = [a[row].tolist() for a in (prices, depth, fill_prob, edge, adverse, impact, expected, theta, gamma)]
        return tuple(
            LevelPricing(
                side=side,
                level=k,
                price=px,
                depth_bps=d,
                fill_prob=p,
                edge_bps=e,
                adverse_selection_bps=a,
                impact_bps=i,
                fee_bps=fee,
                carry_bps=side_carry,
                expected_pnl_bps=x,
                theta_bps_per_s=t,
                gamma_bps=g,
            )
            for k, (px, d, p, e, a, i, x, t, g) in enumerate(zip(*columns))
        )

    def _economics(
        self, depth_bps: np.ndarray, offset_bps: np.ndarray, adverse_bps: np.ndarray, impact_bps: np.ndarray, side_carry_bps: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(E[PnL], fill probability, edge, fill intensity) at each depth; rows are (bid, ask)."""
        cfg = self.config
        col = self._col
        # Λ(d) = A e^{−κ d} ;  p = 1 − exp(−Λ(d) τ)
        rate = self._intensity[col] * np.exp(-self._decay[col] * depth_bps)
        fill_prob = -np.expm1(-rate * cfg.quote_life_s)
        # edge from the side's indifference price r_s = V̂ ∓ p_s
        edge = depth_bps - offset_bps[col]
        # E[PnL] = p (edge − AS − impact − fee − carry_s)
        expected = fill_prob * (edge - adverse_bps - impact_bps - cfg.maker_fee_bps - side_carry_bps[col])
        return expected, fill_prob, edge, rate

    def _impact_bps(self, depth_bps: np.ndarray, fair_value: float, lot: float, books: tuple | None) -> np.ndarray:
        """α (Δ / D)^β with D the displayed size at prices at or better than each depth's price;
        rows (or entries of a 1-D array) are (bid, ask)."""
        cfg = self.config
        alpha = cfg.impact_alpha_bps
        if alpha == 0.0:
            return np.zeros_like(depth_bps)
        ratio = np.ones_like(depth_bps)
        if books is not None:
            for row, (px, cum_size) in enumerate(books):
                if px.size == 0:
                    continue
                if row == 0:
                    # bids best (highest) first: levels at prices ≥ ours
                    ahead = np.searchsorted(-px, -fair_value * (1.0 - 1e-4 * depth_bps[row]), side="right")
                else:
                    ahead = np.searchsorted(px, fair_value * (1.0 + 1e-4 * depth_bps[row]), side="right")
                displayed = np.where(ahead > 0, cum_size[np.maximum(ahead - 1, 0)], 0.0)
                # ratio = min(1, Δ / D), 1 where nothing is displayed
                ratio[row] = np.where(displayed > lot, lot / np.maximum(displayed, lot), 1.0)
        return alpha * ratio**cfg.impact_beta
