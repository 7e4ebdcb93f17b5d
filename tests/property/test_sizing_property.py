"""The exact sizing solver and the cvxpy program agree and never break a cap (issue 5, item 3).

Agreement is measured two ways, because the maximiser's sensitivity to solver tolerance grows as
the quadratic weights shrink (the objective tends to a linear program's):

- sizes: ‖s_exact − s_cvxpy‖_∞ / max(1, max_k u_k) ≤ 1e-6 (coins, relative to the largest
  per-level cap) on every instance whose curvature is not tiny, min_k w_k ≥ 1e-4 · max_k |e_k|
  per coin;
- objective, on every instance including tiny weights: |f(s_exact) − f(s_cvxpy)| ≤ 1e-6 · F with
  F = Σ_k |e_k| u_k the largest value any feasible ladder could reach, and the exact solution is
  never worse than cvxpy's by more than 1e-9 · F (floating rounding, amplified by 1/(2 w_k)).
"""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmlab.executor.sizing import LadderProgram, ladder_objective, solve_ladder_exact

LEVELS = 4
_program = LadderProgram(LEVELS)


@st.composite
def instances(draw):
    """Random ladders with degenerate corners: zero caps, losing edges, ties and tiny weights."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = 2 * LEVELS
    edge = rng.normal(draw(st.sampled_from([-0.005, 0.0, 0.005])), 0.01, n)  # USD per coin
    if draw(st.booleans()):
        edge[:] = edge[0]  # ties everywhere
    weight_scale = 10.0 ** draw(st.sampled_from([-10.0, -6.0, -4.0, -3.0, -2.0]))
    weight = rng.uniform(0.5, 1.5, n) * weight_scale
    cap_kind = draw(st.sampled_from(["zero", "equal", "random"]))
    cap = {"zero": np.zeros(n), "equal": np.full(n, 0.5), "random": rng.uniform(0.0, 1.0, n)}[cap_kind]
    buy_cap = draw(st.sampled_from([0.0, 0.4, 1.5, 5.0]))
    sell_cap = draw(st.sampled_from([0.0, 0.7, 1.5, 5.0]))
    # bids below 100 USD, asks above, a few bps apart
    price = np.concatenate([100.0 - 0.02 * np.arange(1, LEVELS + 1), 100.0 + 0.02 * np.arange(1, LEVELS + 1)])
    total = draw(st.sampled_from([0.0, 30.0, 120.0, 250.0, np.inf]))
    return edge, weight, cap, buy_cap, sell_cap, price, total


def _check_caps(sizes, cap, buy_cap, sell_cap, price, total):
    assert np.all(sizes >= 0.0)
    assert np.all(sizes <= cap + 1e-12)
    assert sizes[:LEVELS].sum() <= buy_cap + 1e-9
    assert sizes[LEVELS:].sum() <= sell_cap + 1e-9
    assert price @ sizes <= total + 1e-9 * max(1.0, total if np.isfinite(total) else 0.0)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_exact_and_cvxpy_agree_and_respect_every_cap(instance):
    edge, weight, cap, buy_cap, sell_cap, price, total = instance
    exact = solve_ladder_exact(edge, weight, cap, buy_cap, sell_cap, LEVELS, price, total)
    reference = _program.solve(edge, weight, cap, buy_cap, sell_cap, price, total)
    for sizes in (exact, reference):
        _check_caps(sizes, cap, buy_cap, sell_cap, price, total)
    # losing levels get nothing from the exact solver (e_k ≤ 0 ⇒ s_k = 0 for any multipliers ≥ 0)
    assert np.all(exact[edge <= 0.0] == 0.0)
    scale = float(np.abs(edge) @ cap)
    f_exact, f_ref = ladder_objective(exact, edge, weight), ladder_objective(reference, edge, weight)
    assert abs(f_exact - f_ref) <= 1e-6 * scale + 1e-15
    assert f_exact >= f_ref - 1e-9 * scale - 1e-15
    if weight.min() >= 1e-4 * np.abs(edge).max():
        assert np.max(np.abs(exact - reference)) / max(1.0, cap.max()) <= 1e-6


@settings(max_examples=200, deadline=None)
@given(instances())
def test_kkt_conditions_hold_for_the_exact_solution(instance):
    """Every level with size strictly inside its box has the same marginal value per side, net of η p_k."""
    edge, weight, cap, buy_cap, sell_cap, price, total = instance
    sizes = solve_ladder_exact(edge, weight, cap, buy_cap, sell_cap, LEVELS, price, total)
    w = np.maximum(weight, 1e-12)
    marginal = edge - 2.0 * w * sizes  # = λ_side + η p_k on free levels
    free = (sizes > 1e-9) & (sizes < cap - 1e-9)
    for half in (slice(0, LEVELS), slice(LEVELS, 2 * LEVELS)):
        f = free[half]
        if f.sum() >= 2:
            m, p = marginal[half][f], price[half][f]
            # m_k = λ + η p_k: an affine function of the price across the free levels
            coef = np.polyfit(p, m, 1) if np.ptp(p) > 0 else np.array([0.0, m.mean()])
            assert np.allclose(np.polyval(coef, p), m, atol=1e-9 * max(1.0, np.abs(edge).max()))
        # a marginal value can be negative only where the level sits at zero size
        assert np.all(marginal[half][f] >= -1e-12)
