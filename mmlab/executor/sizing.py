"""The ladder sizing program, written twice: in cvxpy (the reference) and solved exactly.

With sizes s_k ≥ 0 (coins) at the ladder's levels, bids first then asks::

    maximize    Σ_k e_k s_k − w_k s_k²
    subject to  0 ≤ s_k ≤ u_k
                Σ_bids s_k ≤ C_b,   Σ_asks s_k ≤ C_a
                Σ_all p_k s_k ≤ T

e_k is the expected PnL of one coin at level k (USD), w_k = ½ γ σ_V² H p_k (1 − p_k) is the
CARA cost of the inventory variance that a random fill of probability p_k adds over the holding
horizon H, u_k the per-order cap, C_b and C_a what the risk budget and the Kelly exposure leave
on each side, p_k the level's price (USD) and T the cap on resting notional (open orders reserve
margin), which couples the two sides.

Exact solution (KKT). With multipliers λ_b, λ_a ≥ 0 on the side sums and η ≥ 0 on the notional::

    s_k = clip((e_k − λ_side(k) − η p_k) / (2 w_k), 0, u_k)

1. For a fixed η each side is a water-filling problem with edges e_k − η p_k: Σ_side s_k(λ) is
   piecewise linear and non-increasing in λ with breakpoints at (e_k − η p_k) and
   (e_k − η p_k − 2 w_k u_k); the λ that makes it equal C is found by locating its segment and
   interpolating (no iteration, no tolerance).
2. The resting notional N(η) = Σ p_k s_k(η) is piecewise linear (the solution of a strictly
   concave QP is piecewise affine in a parameter of its linear term) and non-increasing in η
   (monotonicity of parametric maximisers). If N(0) ≤ T then η = 0. Otherwise η is located by its
   segment: from a bracket [η_lo, η_hi] with N(η_lo) > T ≥ N(η_hi), the affine piece of N through
   an end (its slope from that end's active set, see :func:`_size_slope`) gives a candidate η;
   the candidate is exact when it lies on that piece, which is checked by recomputing N there
   (equal to T up to floating rounding, |N − T| ≤ 1e-12 · T); otherwise it replaces an end of the
   bracket (when both ends sit on flat pieces, where no level is strictly inside its box, the
   bracket is halved instead). Each failed candidate moves one end onto a different piece, and
   there are at most about 4n + 2 pieces, so the search ends after finitely many steps with the
   exact η. The
   floating residual T − N(η) left on the located piece is removed by one step along ds/dη, and
   "equal up to rounding" means within the floating resolution of N (which 1/(2 w_k) amplifies
   when weights are tiny).
"""

from __future__ import annotations

import math

import cvxpy as cp
import numpy as np

__all__ = [
    "solve_side_exact",
    "solve_ladder_exact",
    "ladder_objective",
    "LadderProgram",
    "SolverError",
    "MIN_QUADRATIC_WEIGHT",
]

#: Floor on w_k so the program stays strictly concave (a level whose fill probability
#: underflows to 0 has e_k = 0 too, so this never buys size).
MIN_QUADRATIC_WEIGHT = 1e-12

#: Relative floating-point slack accepted when checking that a candidate η lies on its piece.
_ON_PIECE_REL = 1e-12

#: The segment search passes at least one piece per step (or halves a flat bracket).
_MAX_SEGMENT_STEPS = 500  # generous: halving reaches floating resolution in ~60

_TIGHT = {
    cp.CLARABEL: dict(tol_gap_abs=1e-11, tol_gap_rel=1e-11, tol_feas=1e-11, max_iter=500),
}


class SolverError(RuntimeError):
    """The sizing program was not solved to optimality."""


def ladder_objective(sizes: np.ndarray, edge: np.ndarray, weight: np.ndarray) -> float:
    """Σ e_k s_k − w_k s_k² (USD), with the same weight floor as the solvers."""
    weight = np.maximum(weight, MIN_QUADRATIC_WEIGHT)
    return float(edge @ sizes - weight @ (sizes * sizes))


def _side(edge: np.ndarray, half_inv_w: np.ndarray, cap: np.ndarray, total_cap: float) -> tuple[np.ndarray, float]:
    """Water-filling on one side: sizes and the multiplier λ ≥ 0 of Σ s ≤ C."""
    # s_k(0) = clip(e_k / (2 w_k), 0, u_k)
    unconstrained = np.clip(edge * half_inv_w, 0.0, cap)
    total0 = float(unconstrained.sum())
    if total0 <= total_cap:
        return unconstrained, 0.0
    # Σ s_k(λ) is linear between these breakpoints: e_k and e_k − 2 w_k u_k
    breakpoints = np.concatenate([edge, edge - cap / half_inv_w])
    breakpoints = np.unique(breakpoints[breakpoints > 0.0])
    # totals at every breakpoint at once: rows are breakpoints, columns levels
    totals = np.clip((edge[None, :] - breakpoints[:, None]) * half_inv_w[None, :], 0.0, cap[None, :]).sum(axis=1)
    # totals fall as λ grows; the first breakpoint where the sum is at or below C closes the segment
    idx = int(np.searchsorted(-totals, -total_cap, side="left"))
    hi = float(breakpoints[idx])
    lo = 0.0 if idx == 0 else float(breakpoints[idx - 1])
    total_lo = total0 if idx == 0 else float(totals[idx - 1])
    total_hi = float(totals[idx])
    # linear interpolation on the segment is exact because Σ s_k(λ) is linear there
    lam = lo + (total_lo - total_cap) * (hi - lo) / (total_lo - total_hi)
    sizes = np.clip((edge - lam) * half_inv_w, 0.0, cap)
    # With tiny weights 1/(2w) amplifies the rounding of λ. On the located piece a change Δλ moves
    # every free level by −Δλ/(2 w_k), so the rounding residual C − Σ s is spread that way.
    free = (sizes > 0.0) & (sizes < cap)
    if free.any():
        share = half_inv_w[free]
        sizes[free] = np.clip(sizes[free] + (total_cap - float(sizes.sum())) * share / float(share.sum()), 0.0, cap[free])
    total = float(sizes.sum())
    if total > total_cap:
        sizes *= total_cap / total
    return sizes, lam


def solve_side_exact(edge: np.ndarray, weight: np.ndarray, cap: np.ndarray, total_cap: float) -> np.ndarray:
    """Exact maximiser of Σ e s − w s² over 0 ≤ s ≤ u, Σ s ≤ C (see the module docstring)."""
    edge = np.asarray(edge, dtype=float)
    half_inv_w = 0.5 / np.maximum(np.asarray(weight, dtype=float), MIN_QUADRATIC_WEIGHT)
    return _side(edge, half_inv_w, np.asarray(cap, dtype=float), max(0.0, float(total_cap)))[0]


def _size_slope(sizes: np.ndarray, lam: float, price: np.ndarray, half_inv_w: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """ds_k/dη on one side for the active set of ``sizes`` (levels strictly between 0 and u_k move).

    Side cap slack (λ = 0): ds_k/dη = −p_k / (2 w_k). Side cap binding (λ > 0): λ follows η so that
    Σ_F s_k stays C, dλ/dη = −p̄_F with p̄_F = Σ_F p_k/(2w_k) / Σ_F 1/(2w_k), hence
    ds_k/dη = −(p_k − p̄_F) / (2 w_k). Levels at 0 or at u_k do not move.
    """
    free = (sizes > 0.0) & (sizes < cap)
    slope = np.zeros_like(sizes)
    if not free.any():
        return slope
    p, h = price[free], half_inv_w[free]
    if lam > 0.0:
        # p̄_F = Σ_F p h / Σ_F h, h = 1/(2w)
        slope[free] = -(p - float(p @ h) / float(h.sum())) * h
    else:
        slope[free] = -p * h
    return slope


def solve_ladder_exact(
    edge: np.ndarray,
    weight: np.ndarray,
    cap: np.ndarray,
    buy_cap: float,
    sell_cap: float,
    levels: int,
    price: np.ndarray | None = None,
    total_notional_cap: float = math.inf,
) -> np.ndarray:
    """Exact maximiser of the ladder program, sizes stacked as [bids..., asks...].

    Parameters
    ----------
    edge, weight, cap : np.ndarray
        e_k (USD per coin), w_k (USD per coin²) and u_k (coins) for the 2 × ``levels`` levels.
    buy_cap, sell_cap : float
        C_b and C_a, coins (negative values are treated as 0).
    levels : int
        Levels per side; the first ``levels`` entries are bids.
    price : np.ndarray, optional
        p_k, USD; required when ``total_notional_cap`` is finite.
    total_notional_cap : float
        T, USD: Σ p_k s_k ≤ T over both sides.
    """
    edge = np.asarray(edge, dtype=float)
    cap = np.asarray(cap, dtype=float)
    half_inv_w = 0.5 / np.maximum(np.asarray(weight, dtype=float), MIN_QUADRATIC_WEIGHT)
    caps = (max(0.0, float(buy_cap)), max(0.0, float(sell_cap)))
    halves = (slice(0, levels), slice(levels, 2 * levels))

    def solve(eta: float) -> tuple[np.ndarray, tuple[float, float]]:
        # for a fixed η, each side is water-filling with edges e_k − η p_k
        shifted = edge if eta == 0.0 else edge - eta * price
        parts = [_side(shifted[h], half_inv_w[h], cap[h], c) for h, c in zip(halves, caps)]
        return np.concatenate([parts[0][0], parts[1][0]]), (parts[0][1], parts[1][1])

    sizes, lams = solve(0.0)
    if not math.isfinite(total_notional_cap):
        return sizes
    if price is None:
        raise ValueError("solve_ladder_exact: price is required with a finite total_notional_cap")
    price = np.asarray(price, dtype=float)
    if np.any(price <= 0.0) or not np.all(np.isfinite(price)):
        raise ValueError("solve_ladder_exact: price must be finite and > 0")
    total_cap = max(0.0, float(total_notional_cap))
    notional = float(price @ sizes)
    if notional <= total_cap:
        return sizes
    if total_cap == 0.0:
        return np.zeros_like(sizes)

    def size_slope(s: np.ndarray, lam: tuple[float, float]) -> np.ndarray:
        return np.concatenate([_size_slope(s[h], l, price[h], half_inv_w[h], cap[h]) for h, l in zip(halves, lam)])

    def finish(s: np.ndarray, lam: tuple[float, float]) -> np.ndarray:
        # On the located piece N is affine in η; the floating residual T − N(η) (amplified by
        # 1/(2 w_k) when weights are tiny) is removed by one step along ds/dη, then rounding is
        # kept on the safe side of every cap.
        ds = size_slope(s, lam)
        d_n = float(price @ ds)
        if d_n < 0.0:
            s = np.clip(s + ds * ((total_cap - float(price @ s)) / d_n), 0.0, cap)
        for h, c in zip(halves, caps):
            side_sum = float(s[h].sum())
            if side_sum > c:
                s[h] *= c / side_sum
        n = float(price @ s)
        return s * (total_cap / n) if n > total_cap else s

    # bracket: at η = max e_k / p_k every shifted edge is ≤ 0, so every size is 0
    lo, n_lo, s_lo, lam_lo = 0.0, notional, sizes, lams
    hi = float(np.max(edge / price))
    s_hi, lam_hi = solve(hi)
    n_hi = float(price @ s_hi)
    for _ in range(_MAX_SEGMENT_STEPS):
        candidate = math.nan
        # N(η) = N(η_lo) + slope_lo (η − η_lo) on the piece right of η_lo
        d_lo = float(price @ size_slope(s_lo, lam_lo))
        if d_lo < 0.0:
            candidate = lo + (total_cap - n_lo) / d_lo
        if not lo < candidate < hi:
            # the piece left of η_hi
            d_hi = float(price @ size_slope(s_hi, lam_hi))
            candidate = hi + (total_cap - n_hi) / d_hi if d_hi < 0.0 else math.nan
        if not lo < candidate < hi:
            # both ends sit on flat pieces (every level there at 0 or u_k): halve the bracket
            candidate = 0.5 * (lo + hi)
        if not lo < candidate < hi:
            # the bracket is down to floating resolution: η is known to rounding
            return finish(s_hi, lam_hi)
        s_c, lam_c = solve(candidate)
        n_c = float(price @ s_c)
        # floating resolution of N(η): rounding of each free size is ~ ε |e_k − λ − η p_k| / (2 w_k)
        resolution = _ON_PIECE_REL * total_cap + 8.0 * np.finfo(float).eps * float(
            price @ (half_inv_w * (np.abs(edge) + candidate * price + max(lam_c)) * (s_c > 0.0))
        )
        if abs(n_c - total_cap) <= resolution:
            return finish(s_c, lam_c)
        if n_c > total_cap:
            lo, n_lo, s_lo, lam_lo = candidate, n_c, s_c, lam_c
        else:
            hi, n_hi, s_hi, lam_hi = candidate, n_c, s_c, lam_c
    raise SolverError("solve_ladder_exact: the notional multiplier's segment was not located")


class LadderProgram:
    """The same program in cvxpy, built once with parameters (DPP) and re-solved each cycle."""

    def __init__(self, levels: int, solver: str = cp.CLARABEL) -> None:
        n = 2 * levels
        self.levels = levels
        self.solver = solver
        self.sizes = cp.Variable(n, nonneg=True)
        self.edge = cp.Parameter(n)
        self.weight = cp.Parameter(n, nonneg=True)
        self.cap = cp.Parameter(n, nonneg=True)
        self.buy_cap = cp.Parameter(nonneg=True)
        self.sell_cap = cp.Parameter(nonneg=True)
        self.price = cp.Parameter(n, nonneg=True)
        self.total_cap = cp.Parameter(nonneg=True)
        objective = cp.Maximize(self.edge @ self.sizes - cp.sum(cp.multiply(self.weight, cp.square(self.sizes))))
        constraints = [
            self.sizes <= self.cap,
            cp.sum(self.sizes[:levels]) <= self.buy_cap,
            cp.sum(self.sizes[levels:]) <= self.sell_cap,
            self.price @ self.sizes <= self.total_cap,
        ]
        self.problem = cp.Problem(objective, constraints)
        if not self.problem.is_dcp(dpp=True):
            raise SolverError("the ladder program is not DPP; it would be recompiled every solve")

    def solve(
        self,
        edge: np.ndarray,
        weight: np.ndarray,
        cap: np.ndarray,
        buy_cap: float,
        sell_cap: float,
        price: np.ndarray | None = None,
        total_notional_cap: float = math.inf,
    ) -> np.ndarray:
        """Solve with these parameter values; arguments as in :func:`solve_ladder_exact`."""
        edge = np.asarray(edge, dtype=float)
        cap = np.asarray(cap, dtype=float)
        n = edge.size
        if price is None:
            if math.isfinite(total_notional_cap):
                raise ValueError("LadderProgram.solve: price is required with a finite total_notional_cap")
            price = np.ones(n)
        price = np.asarray(price, dtype=float)
        # Scaling the objective by a positive constant leaves the maximiser unchanged; bringing it
        # to order one keeps the interior-point solver's relative tolerances meaningful when the
        # expected PnL per coin is a fraction of a cent. Prices are scaled the same way.
        scale = 1.0 / max(float(np.abs(edge).max(initial=0.0)), 1e-12)
        price_scale = 1.0 / float(price.max())
        self.edge.value = edge * scale
        self.weight.value = np.maximum(weight, MIN_QUADRATIC_WEIGHT) * scale
        self.cap.value = cap
        # an infinite cap is replaced by one that cannot bind (the sum of the per-level caps)
        loose = float(cap.sum()) + 1.0
        self.buy_cap.value = min(max(0.0, float(buy_cap)), loose)
        self.sell_cap.value = min(max(0.0, float(sell_cap)), loose)
        self.price.value = price * price_scale
        self.total_cap.value = min(max(0.0, float(total_notional_cap)), float(price @ cap) + 1.0) * price_scale
        # tight tolerances: this program is the reference the exact solver is checked against
        self.problem.solve(solver=self.solver, **_TIGHT.get(self.solver, {}))
        if self.problem.status != cp.OPTIMAL:
            raise SolverError(f"ladder program status {self.problem.status!r}, expected optimal")
        # interior-point solutions sit a hair inside or outside the bounds (~ the feasibility
        # tolerance); bring them back: clip to the boxes, then shrink a side or the whole ladder
        # whose sum overshoots its cap by that hair
        sizes = np.clip(self.sizes.value, 0.0, cap)
        levels = self.levels
        for half, side_cap in ((slice(0, levels), self.buy_cap.value), (slice(levels, 2 * levels), self.sell_cap.value)):
            side_sum = float(sizes[half].sum())
            if side_sum > side_cap:
                sizes[half] *= side_cap / side_sum
        notional = float(price @ sizes)
        if math.isfinite(total_notional_cap) and notional > total_notional_cap:
            sizes *= max(0.0, total_notional_cap) / notional
        return sizes
