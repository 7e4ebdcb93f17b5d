"""The ladder sizing program, written twice: in cvxpy (the reference) and solved exactly.

For each side, with sizes s_k ≥ 0 (coins) at the ladder's levels::

    maximize    Σ_k e_k s_k − w_k s_k²
    subject to  0 ≤ s_k ≤ u_k,     Σ_k s_k ≤ C

e_k is the expected PnL of one coin at level k (USD), w_k = ½ γ σ_V² H p_k (1 − p_k) is the
CARA cost of the inventory variance that a random fill of probability p_k adds over the holding
horizon H, u_k the per-order cap and C what the position cap leaves on that side. The two sides
share no constraint (the notional cap is folded into C by the governor), so they are solved
separately.

Exact solution (KKT): with multiplier λ ≥ 0 on the sum constraint,
``s_k(λ) = clip((e_k − λ) / (2 w_k), 0, u_k)``. If Σ s_k(0) ≤ C then λ = 0; otherwise Σ s_k(λ) is
piecewise linear and decreasing in λ, with breakpoints at e_k and e_k − 2 w_k u_k, and the λ that
makes it equal C is found by locating its segment and interpolating: no iteration, no tolerance.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np

__all__ = ["solve_side_exact", "solve_ladder_exact", "LadderProgram", "SolverError", "MIN_QUADRATIC_WEIGHT"]

#: Floor on w_k so the program stays strictly concave (a level whose fill probability
#: underflows to 0 has e_k = 0 too, so this never buys size).
MIN_QUADRATIC_WEIGHT = 1e-12


_TIGHT = {
    cp.CLARABEL: dict(tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10),
}


class SolverError(RuntimeError):
    """The sizing program was not solved to optimality."""


def solve_side_exact(edge: np.ndarray, weight: np.ndarray, cap: np.ndarray, total_cap: float) -> np.ndarray:
    """Exact maximiser of Σ e s − w s² over 0 ≤ s ≤ u, Σ s ≤ C (see the module docstring)."""
    weight = np.maximum(weight, MIN_QUADRATIC_WEIGHT)
    total_cap = max(0.0, float(total_cap))

    def sizes(lam: float) -> np.ndarray:
        # s_k(λ) = clip((e_k − λ) / (2 w_k), 0, u_k)
        return np.clip((edge - lam) / (2.0 * weight), 0.0, cap)

    unconstrained = sizes(0.0)
    if unconstrained.sum() <= total_cap:
        return unconstrained
    # Σ s_k(λ) is piecewise linear between these breakpoints
    breakpoints = np.unique(np.concatenate([edge, edge - 2.0 * weight * cap]))
    breakpoints = breakpoints[breakpoints > 0.0]
    totals = np.array([sizes(b).sum() for b in breakpoints])
    # totals fall as λ grows; find the first breakpoint where the sum is at or below C
    idx = int(np.searchsorted(-totals, -total_cap, side="left"))
    hi = breakpoints[idx]
    lo = 0.0 if idx == 0 else breakpoints[idx - 1]
    total_lo = unconstrained.sum() if idx == 0 else totals[idx - 1]
    total_hi = totals[idx]
    # linear interpolation on the segment is exact because Σ s_k(λ) is linear there
    lam = lo + (total_lo - total_cap) * (hi - lo) / (total_lo - total_hi)
    return sizes(lam)


def solve_ladder_exact(
    edge: np.ndarray, weight: np.ndarray, cap: np.ndarray, buy_cap: float, sell_cap: float, levels: int
) -> np.ndarray:
    """Both sides stacked as [bids..., asks...], each solved by :func:`solve_side_exact`."""
    bids = solve_side_exact(edge[:levels], weight[:levels], cap[:levels], buy_cap)
    asks = solve_side_exact(edge[levels:], weight[levels:], cap[levels:], sell_cap)
    return np.concatenate([bids, asks])


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
        objective = cp.Maximize(self.edge @ self.sizes - cp.sum(cp.multiply(self.weight, cp.square(self.sizes))))
        constraints = [
            self.sizes <= self.cap,
            cp.sum(self.sizes[:levels]) <= self.buy_cap,
            cp.sum(self.sizes[levels:]) <= self.sell_cap,
        ]
        self.problem = cp.Problem(objective, constraints)
        if not self.problem.is_dcp(dpp=True):
            raise SolverError("the ladder program is not DPP; it would be recompiled every solve")

    def solve(
        self, edge: np.ndarray, weight: np.ndarray, cap: np.ndarray, buy_cap: float, sell_cap: float
    ) -> np.ndarray:
        edge = np.asarray(edge, dtype=float)
        # Scaling the objective by a positive constant leaves the maximiser unchanged; bringing it
        # to order one keeps the interior-point solver's relative tolerances meaningful when the
        # expected PnL per coin is a fraction of a cent.
        scale = 1.0 / max(float(np.abs(edge).max(initial=0.0)), 1e-12)
        self.edge.value = edge * scale
        self.weight.value = np.maximum(weight, MIN_QUADRATIC_WEIGHT) * scale
        self.cap.value = np.asarray(cap, dtype=float)
        self.buy_cap.value = max(0.0, float(buy_cap))
        self.sell_cap.value = max(0.0, float(sell_cap))
        # tight tolerances: this program is the reference the exact solver is checked against
        self.problem.solve(solver=self.solver, **_TIGHT.get(self.solver, {}))
        if self.problem.status != cp.OPTIMAL:
            raise SolverError(f"ladder program status {self.problem.status!r}, expected optimal")
        # interior-point solutions sit a hair inside the bounds; project onto them
        return np.clip(self.sizes.value, 0.0, self.cap.value)
