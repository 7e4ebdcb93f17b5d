"""The exact sizing solver agrees with the cvxpy program and never breaks a cap."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmlab.executor.sizing import LadderProgram, solve_ladder_exact, solve_side_exact

LEVELS = 5
_program = LadderProgram(LEVELS)


@st.composite
def instances(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = 2 * LEVELS
    edge = rng.normal(0.0, 0.01, n)  # USD per coin, about ±1 bps of a $100 coin
    weight = rng.uniform(1e-4, 1e-2, n)
    cap = np.full(n, draw(st.floats(0.1, 2.0)))
    buy_cap = draw(st.floats(0.0, 3.0))
    sell_cap = draw(st.floats(0.0, 3.0))
    return edge, weight, cap, buy_cap, sell_cap


def _objective(sizes, edge, weight):
    return float(edge @ sizes - weight @ sizes**2)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_exact_solver_matches_cvxpy(instance):
    edge, weight, cap, buy_cap, sell_cap = instance
    exact = solve_ladder_exact(edge, weight, cap, buy_cap, sell_cap, LEVELS)
    reference = _program.solve(edge, weight, cap, buy_cap, sell_cap)
    assert np.allclose(exact, reference, atol=1e-6)
    assert _objective(exact, edge, weight) >= _objective(reference, edge, weight) - 1e-9


@settings(max_examples=200, deadline=None)
@given(instances())
def test_caps_hold_and_losing_levels_get_nothing(instance):
    edge, weight, cap, buy_cap, sell_cap = instance
    sizes = solve_ladder_exact(edge, weight, cap, buy_cap, sell_cap, LEVELS)
    assert np.all(sizes >= 0.0)
    assert np.all(sizes <= cap + 1e-12)
    assert sizes[:LEVELS].sum() <= buy_cap + 1e-9
    assert sizes[LEVELS:].sum() <= sell_cap + 1e-9
    assert np.all(sizes[edge <= 0.0] == 0.0)


def test_binding_total_cap_is_met_with_equal_marginal_value():
    edge = np.array([0.05, 0.04, 0.03])
    weight = np.array([0.01, 0.01, 0.01])
    cap = np.full(3, 10.0)
    sizes = solve_side_exact(edge, weight, cap, total_cap=2.0)
    assert np.isclose(sizes.sum(), 2.0)
    positive = sizes > 0
    # KKT: every level with size has the same marginal value e − 2 w s = λ
    marginal = edge[positive] - 2 * weight[positive] * sizes[positive]
    assert np.allclose(marginal, marginal[0])
