"""Bellman unwind policy: when crossing the spread beats waiting for passive fills.

Model (continuous time, inventory counted in lots of Δ = ``budget.max_order_size`` coins, states
k ∈ {−N, …, N} with N = ⌈q_max / Δ⌉, q_k = k Δ):

- running inventory cost ½ γ(q_k) σ_V² q_k² USD per second, σ_V = V̂ σ̂ (USD per √s) and
  γ(q) = γ_base (1 + β (q / q_max)²), the governor's shape; γ_base is recovered from the budget's
  γ at the current position, γ_base = γ(q_now) / (1 + β (q_now / q_max)²), and β is an input;
- passive fills one lot at a time: the bid at depth δ_b (bps of V̂) fills at the surface's rate
  Λ_b(δ_b) = A_b e^{−κ_b δ_b} and moves k → k + 1 earning (δ_b − maker fee) bps on Δ coins, the
  ask mirrors it (k → k − 1). The depths are the policy's own, δ ≥ the surface's floors (the
  actuary's GLFT depths are the asymptotic solution of this same control problem);
- impulse control: at any time sell (k > 0) or buy back (k < 0) x ≤ |k| lots at once, costing per
  coin the distance from V̂ to the far touch, plus the taker fee, plus impact α (xΔ / D)^β; the
  surface's ``impact_bps`` is that impact for one lot, α (Δ / D)^β, so x lots cost
  impact_lot · x^β bps.

Average-cost (ergodic) formulation, because a market maker runs indefinitely, there is no
natural discount rate at the seconds scale, and GLFT's closed form (what the actuary quotes) is
the asymptotic, ergodic solution of the same problem. With gain g (USD/s) and relative value h
(USD, h(0) = 0) the quasi-variational inequality is, for every k::

    max{ −½γσ_V²q_k² − g + Σ_side sup_δ Λ(δ) [(δ − fee) b Δ + h(k ± 1) − h(k)],
         max_{1≤x≤|k|} h(k − sign(k) x) − c(x) − h(k) } = 0          (b = 1e-4 V̂, USD per bps)

The sup over δ is closed form for exponential intensity: with p = (h(k±1) − h(k)) / (bΔ) − fee,
δ* = max(δ_min, 1/κ − p). Solved by policy iteration (Howard): evaluate a policy by one linear
solve for (h, g), improve δ in closed form and the take decision by comparing the take value to
the continuation value; stop when the take policy repeats and δ moves by < 1e-10 bps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mmlab.types import L2Book, PricingSurface, RiskBudget

__all__ = ["UnwindInputs", "UnwindSolution", "solve_unwind", "UnwindPolicy", "inputs_from"]

_MAX_POLICY_ITERATIONS = 200
_DEPTH_STOP_BPS = 1e-10


@dataclass(frozen=True, slots=True, kw_only=True)
class UnwindInputs:
    """Everything the Bellman problem depends on (units in the names)."""

    lot: float  # coins per lot, Δ
    n_lots: int  # N, the lattice runs over k = −N..N
    q_max: float  # coins
    gamma_base_per_usd: float
    gamma_beta: float
    sigma_usd_per_sqrt_s: float  # σ_V = V̂ σ̂
    bps_usd: float  # b = 1e-4 V̂
    intensity_bid_per_s: float
    intensity_ask_per_s: float
    decay_bid_per_bps: float
    decay_ask_per_bps: float
    floor_bps: float  # smallest passive depth
    maker_fee_bps: float
    sell_touch_bps: float  # V̂ − best bid, bps of V̂ (a sell take crosses to the bid)
    buy_touch_bps: float  # best ask − V̂
    taker_fee_bps: float
    sell_impact_lot_bps: float  # α (Δ / D_bid)^β
    buy_impact_lot_bps: float
    impact_beta: float

    def __post_init__(self) -> None:
        for name in (
            "lot", "q_max", "gamma_base_per_usd", "sigma_usd_per_sqrt_s", "bps_usd",
            "intensity_bid_per_s", "intensity_ask_per_s", "decay_bid_per_bps", "decay_ask_per_bps",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"UnwindInputs.{name} must be finite and > 0, got {value!r}")
        for name in (
            "gamma_beta", "floor_bps", "maker_fee_bps", "sell_touch_bps", "buy_touch_bps",
            "taker_fee_bps", "sell_impact_lot_bps", "buy_impact_lot_bps", "impact_beta",
        ):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"UnwindInputs.{name} must be finite, got {getattr(self, name)!r}")
        if self.n_lots < 1:
            raise ValueError(f"UnwindInputs.n_lots must be >= 1, got {self.n_lots}")

    def signature(self) -> np.ndarray:
        """The continuous inputs the cache compares: rates and scales, then costs in bps."""
        return np.array([
            self.gamma_base_per_usd * self.sigma_usd_per_sqrt_s**2,
            self.intensity_bid_per_s, self.intensity_ask_per_s,
            self.decay_bid_per_bps, self.decay_ask_per_bps, self.bps_usd * self.lot, self.q_max,
            self.floor_bps, self.maker_fee_bps,
            self.sell_touch_bps + self.taker_fee_bps + self.sell_impact_lot_bps,
            self.buy_touch_bps + self.taker_fee_bps + self.buy_impact_lot_bps,
        ])


#: signature entries from this index on are costs in bps, compared with a 1 bps floor
_BPS_FROM = 7


@dataclass(frozen=True, slots=True, kw_only=True)
class UnwindSolution:
    """Solved policy on the lattice k = −N..N (index k + N).

    ``take_lots[i]`` is x*(k) (lots to cross, toward 0), ``bid_depth_bps`` / ``ask_depth_bps`` the
    passive depths δ*(k) (NaN where that side would pass the lattice end), ``value_usd`` h(k),
    ``gain_usd_per_s`` g.
    """

    inputs: UnwindInputs
    take_lots: np.ndarray
    bid_depth_bps: np.ndarray
    ask_depth_bps: np.ndarray
    value_usd: np.ndarray
    gain_usd_per_s: float
    iterations: int

    def take_at(self, position: float) -> int:
        """x* at the lattice point nearest to ``position`` (coins)."""
        n = self.inputs.n_lots
        k = int(min(n, max(-n, round(position / self.inputs.lot))))
        return int(self.take_lots[k + n])

    def bellman_residual_usd(self) -> np.ndarray:
        """Per state, the left side of the QVI divided by the total fill rate (USD); 0 at a solution."""
        model = _Model(self.inputs)
        cont, _, _ = model.continuation(self.value_usd, self.gain_usd_per_s)
        take_value, _ = model.best_take(self.value_usd)
        return np.maximum(cont, take_value) - self.value_usd


class _Model:
    """The lattice, its costs and the two halves of the QVI."""

    def __init__(self, p: UnwindInputs) -> None:
        self.p = p
        n = p.n_lots
        self.k = np.arange(-n, n + 1)
        q = self.k * p.lot
        gamma = p.gamma_base_per_usd * (1.0 + p.gamma_beta * (q / p.q_max) ** 2)
        # running reward −½ γ(q) σ_V² q², USD per second
        self.reward = -0.5 * gamma * p.sigma_usd_per_sqrt_s**2 * q**2
        self.can_buy = self.k < n
        self.can_sell = self.k > -n
        self.lot_usd_per_bps = p.bps_usd * p.lot  # USD per bps on one lot
        x = np.arange(1, n + 1)
        # cost of crossing with x lots, USD: x Δ b (touch + taker fee + impact_lot x^β)
        self.sell_cost = x * self.lot_usd_per_bps * (p.sell_touch_bps + p.taker_fee_bps + p.sell_impact_lot_bps * x**p.impact_beta)
        self.buy_cost = x * self.lot_usd_per_bps * (p.buy_touch_bps + p.taker_fee_bps + p.buy_impact_lot_bps * x**p.impact_beta)
        # take table: rows states, columns x = 1..N; target index and cost, invalid where x > |k|
        sign = np.sign(self.k)[:, None]
        valid = x[None, :] <= np.abs(self.k)[:, None]
        self.index = np.arange(2 * n + 1)
        self.take_target = np.where(valid, self.index[:, None] - sign * x[None, :], 0)
        self.take_cost = np.where(valid, np.where(sign > 0, self.sell_cost[None, :], self.buy_cost[None, :]), np.inf)

    def depths(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """δ* per state for each side: max(δ_min, 1/κ − p), p = Δh / (bΔ) − fee (bps)."""
        p = self.p
        up = np.append(h[1:], np.nan) - h
        down = np.insert(h[:-1], 0, np.nan) - h
        bid = np.maximum(p.floor_bps, 1.0 / p.decay_bid_per_bps - (up / self.lot_usd_per_bps - p.maker_fee_bps))
        ask = np.maximum(p.floor_bps, 1.0 / p.decay_ask_per_bps - (down / self.lot_usd_per_bps - p.maker_fee_bps))
        return np.where(self.can_buy, bid, np.nan), np.where(self.can_sell, ask, np.nan)

    def rates(self, bid: np.ndarray, ask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self.p
        # Λ(δ) = A e^{−κ δ}
        lam_b = np.where(self.can_buy, p.intensity_bid_per_s * np.exp(-p.decay_bid_per_bps * np.nan_to_num(bid)), 0.0)
        lam_a = np.where(self.can_sell, p.intensity_ask_per_s * np.exp(-p.decay_ask_per_bps * np.nan_to_num(ask)), 0.0)
        return lam_b, lam_a

    def continuation(self, h: np.ndarray, g: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """h_cont(k) = [r − g + Σ Λ(δ*) ((δ* − fee) bΔ + h(k ± 1))] / Σ Λ(δ*), with the optimal δ*."""
        p = self.p
        bid, ask = self.depths(h)
        lam_b, lam_a = self.rates(bid, ask)
        up = np.append(h[1:], 0.0)
        down = np.insert(h[:-1], 0, 0.0)
        gain_b = lam_b * ((np.nan_to_num(bid) - p.maker_fee_bps) * self.lot_usd_per_bps + up)
        gain_a = lam_a * ((np.nan_to_num(ask) - p.maker_fee_bps) * self.lot_usd_per_bps + down)
        return (self.reward - g + gain_b + gain_a) / (lam_b + lam_a), bid, ask

    def take_value(self, h: np.ndarray, take: np.ndarray) -> np.ndarray:
        """h(k − sign(k) x) − c(x) for the policy's x per state (x ≥ 1 where read)."""
        cols = np.maximum(take, 1) - 1
        return h[self.take_target[self.index, cols]] - self.take_cost[self.index, cols]

    def best_take(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """max_x h(k − sign(k) x) − c(x) per state (−inf at k = 0) and the maximising x."""
        values = h[self.take_target] - self.take_cost
        best = np.argmax(values, axis=1)
        return values[np.arange(values.shape[0]), best], best + 1

    def evaluate(self, bid: np.ndarray, ask: np.ndarray, take: np.ndarray) -> tuple[np.ndarray, float]:
        """Solve for (h, g) under a fixed policy; h(0) = 0."""
        p = self.p
        n = p.n_lots
        size = 2 * n + 1
        lam_b, lam_a = self.rates(bid, ask)
        a = np.zeros((size + 1, size + 1))
        rhs = np.zeros(size + 1)
        idx = self.index
        # continuing states: Λ_b (h(k+1) − h(k)) + Λ_a (h(k−1) − h(k)) − g = −r − Σ Λ (δ − fee) bΔ
        a[idx, idx] = -(lam_b + lam_a)
        a[idx[:-1], idx[:-1] + 1] = lam_b[:-1]
        a[idx[1:], idx[1:] - 1] = lam_a[1:]
        a[:size, size] = -1.0
        rhs[:size] = -self.reward - (lam_b * (np.nan_to_num(bid) - p.maker_fee_bps)
                                     + lam_a * (np.nan_to_num(ask) - p.maker_fee_bps)) * self.lot_usd_per_bps
        # taking states: h(k) − h(k − sign(k) x) = −c(x)
        taking = idx[take > 0]
        if taking.size:
            cols = take[taking] - 1
            a[taking, :] = 0.0
            a[taking, taking] = 1.0
            a[taking, self.take_target[taking, cols]] -= 1.0
            rhs[taking] = -self.take_cost[taking, cols]
        a[size, n] = 1.0  # h(0) = 0
        solution = np.linalg.solve(a, rhs)
        return solution[:size], float(solution[size])


def solve_unwind(inputs: UnwindInputs) -> UnwindSolution:
    """Policy iteration for the unwind QVI (see the module docstring)."""
    model = _Model(inputs)
    size = 2 * inputs.n_lots + 1
    # start: never take, myopic depths 1/κ (floored)
    bid = np.where(model.can_buy, max(inputs.floor_bps, 1.0 / inputs.decay_bid_per_bps), np.nan)
    ask = np.where(model.can_sell, max(inputs.floor_bps, 1.0 / inputs.decay_ask_per_bps), np.nan)
    take = np.zeros(size, dtype=int)
    for iteration in range(1, _MAX_POLICY_ITERATIONS + 1):
        h, g = model.evaluate(bid, ask, take)
        cont, new_bid, new_ask = model.continuation(h, g)
        take_value, take_lots = model.best_take(h)
        # Howard's rule: change an action only where another beats it by more than rounding, so
        # ties (taking x lots at once or x − 1 then 1 when impact is linear) cannot cycle
        margin = 1e-12 * max(1.0, float(np.abs(h).max()))
        current = np.where(take > 0, model.take_value(h, take), cont)
        new_take = np.where(np.maximum(take_value, cont) > current + margin, np.where(take_value > cont, take_lots, 0), take)
        depth_move = max(np.nanmax(np.abs(new_bid - bid)), np.nanmax(np.abs(new_ask - ask)))
        if np.array_equal(new_take, take) and depth_move < _DEPTH_STOP_BPS:
            return UnwindSolution(
                inputs=inputs, take_lots=take, bid_depth_bps=bid, ask_depth_bps=ask,
                value_usd=h, gain_usd_per_s=g, iterations=iteration,
            )
        bid, ask, take = new_bid, new_ask, new_take
    raise RuntimeError("solve_unwind: policy iteration did not converge")


def inputs_from(
    surface: PricingSurface,
    budget: RiskBudget,
    book: L2Book,
    *,
    gamma_beta: float,
    impact_beta: float,
    taker_fee_bps: float,
    max_lots: int,
) -> UnwindInputs:
    """The Bellman problem's inputs for this cycle (raises naming the surface or budget field)."""
    for name in ("intensity_bid_per_s", "intensity_ask_per_s", "decay_bid_per_bps", "decay_ask_per_bps"):
        value = getattr(surface, name)
        if not (math.isfinite(value) and value > 0.0):
            raise ValueError(f"PricingSurface.{name} must be finite and > 0 for the unwind policy, got {value!r}")
    if not (budget.max_order_size > 0.0 and budget.q_max > 0.0):
        raise ValueError("RiskBudget.max_order_size and RiskBudget.q_max must be > 0 for the unwind policy")
    if not surface.bids or not surface.asks:
        raise ValueError("PricingSurface.bids and .asks must not be empty for the unwind policy")
    fair_value = surface.fair_value
    bps_usd = 1e-4 * fair_value
    # lot: one order; a lattice finer than max_lots per side is coarsened to q_max / max_lots
    n_lots = math.ceil(budget.q_max / budget.max_order_size - 1e-9)
    lot = budget.max_order_size
    if n_lots > max_lots:
        n_lots, lot = max_lots, budget.q_max / max_lots
    # γ_base from γ(q_now) = γ_base (1 + β (q_now / q_max)²)
    gamma_base = budget.gamma_per_usd / (1.0 + gamma_beta * (budget.position / budget.q_max) ** 2)
    return UnwindInputs(
        lot=lot,
        n_lots=max(1, n_lots),
        q_max=budget.q_max,
        gamma_base_per_usd=gamma_base,
        gamma_beta=gamma_beta,
        sigma_usd_per_sqrt_s=fair_value * surface.sigma_per_sqrt_s,
        bps_usd=bps_usd,
        intensity_bid_per_s=surface.intensity_bid_per_s,
        intensity_ask_per_s=surface.intensity_ask_per_s,
        decay_bid_per_bps=surface.decay_bid_per_bps,
        decay_ask_per_bps=surface.decay_ask_per_bps,
        floor_bps=max(0.0, surface.option_floor_bps, surface.informed_floor_bps),
        maker_fee_bps=surface.bids[0].fee_bps,
        sell_touch_bps=(fair_value - book.best_bid) / bps_usd,
        buy_touch_bps=(book.best_ask - fair_value) / bps_usd,
        taker_fee_bps=taker_fee_bps,
        sell_impact_lot_bps=surface.bids[0].impact_bps,
        buy_impact_lot_bps=surface.asks[0].impact_bps,
        impact_beta=impact_beta,
    )


class UnwindPolicy:
    """Caches the solved policy; re-solves when an input moves by more than ``recompute_rel``.

    Rates, scales and the risk coefficient γ_base σ_V² are compared relatively; costs in bps are
    compared relative to max(|old|, 1 bps); the lattice (N) and the shape β must match exactly.
    """

    def __init__(self, *, recompute_rel: float) -> None:
        self.recompute_rel = recompute_rel
        self.solution: UnwindSolution | None = None
        self._signature: np.ndarray | None = None
        self.solves = 0

    def solve(self, inputs: UnwindInputs) -> UnwindSolution:
        signature = inputs.signature()
        old = self.solution
        if old is not None and self._signature is not None and old.inputs.n_lots == inputs.n_lots \
                and old.inputs.gamma_beta == inputs.gamma_beta and old.inputs.impact_beta == inputs.impact_beta:
            scale = np.abs(self._signature)
            scale[_BPS_FROM:] = np.maximum(scale[_BPS_FROM:], 1.0)
            if np.all(np.abs(signature - self._signature) <= self.recompute_rel * scale):
                return old
        self.solution = solve_unwind(inputs)
        self._signature = signature
        self.solves += 1
        return self.solution
