"""The closed-form depths against the exact finite-inventory ODE solution (t far from T)."""

import numpy as np
import pytest

from mmlab.actuary import glft_depths, penalised_glft_offsets
from mmlab.actuary.glft_exact import quadratic_penalty, solve_glft_exact, stationary_depths_linear

# (V, σ, lot, A_b, A_a, κ_b, κ_a, γ): the defaults and realistic BTC sets, one with asymmetric sides
CASES = {
    "defaults": (100.0, 1e-4, 0.5, 1.0, 1.0, 1.0, 1.0, 5.0),
    "btc": (100_000.0, 1e-4, 0.001, 2.0, 2.0, 1.0, 1.0, 1.0),
    "btc-asymmetric": (100_000.0, 1e-4, 0.001, 2.0, 1.0, 1.0, 1.5, 1.0),
}
Q = 10


def _common(V, sigma, lot, A_b, A_a, k_b, k_a):
    return dict(
        fair_value=V, sigma_per_sqrt_s=sigma, lot_size=lot, intensity_bid_per_s=A_b, intensity_ask_per_s=A_a,
        decay_bid_per_bps=k_b, decay_ask_per_bps=k_a,
    )


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("drift", [0.0, 1e-6])
def test_penalised_closed_form_within_5_percent_of_the_exact_ode(name, drift):
    V, sigma, lot, A_b, A_a, k_b, k_a, gamma = CASES[name]
    common = _common(V, sigma, lot, A_b, A_a, k_b, k_a)
    penalty = quadratic_penalty(fair_value=V, sigma_per_sqrt_s=sigma, lot_size=lot, max_lots=Q, gamma_of_coins=lambda x: gamma)
    exact = solve_glft_exact(**common, drift_per_s=drift, max_lots=Q, horizon_s=2000.0, penalty_usd_per_s=penalty)
    assert exact.convergence() < 1e-6  # stationary: far from T
    bps = 1e-4 * V
    for q in range(-2, 3):
        p_b, p_a = penalised_glft_offsets(**common, drift_per_s=drift, gamma_per_usd=gamma, position_lots=q)
        bid, ask = exact.stationary_depths_usd(q)
        assert (k_b / bps) ** -1 + p_b == pytest.approx(bid, rel=0.05)
        assert (k_a / bps) ** -1 + p_a == pytest.approx(ask, rel=0.05)


@pytest.mark.parametrize("name", ["defaults", "btc"])
def test_cara_closed_form_within_5_percent_of_the_exact_ode(name):
    V, sigma, lot, A_b, A_a, k_b, k_a, gamma = CASES[name]
    common = _common(V, sigma, lot, A_b, A_a, k_b, k_a)
    exact = solve_glft_exact(**common, drift_per_s=0.0, max_lots=Q, horizon_s=2000.0, utility_gamma_per_usd=gamma)
    for q in range(-2, 3):
        bid, ask = glft_depths(**common, drift_per_s=0.0, gamma_per_usd=gamma, position_lots=q)
        assert (bid, ask) == pytest.approx(exact.stationary_depths_usd(q), rel=0.05)


def test_ode_solver_agrees_with_the_linear_eigenvector_solution():
    V, sigma, lot, A_b, A_a, k_b, k_a, gamma = CASES["btc"]
    gamma_of = lambda x: gamma * (1 + 4 * (x / 0.01) ** 2)  # noqa: E731 - the governor's γ(q) shape
    penalty = quadratic_penalty(fair_value=V, sigma_per_sqrt_s=sigma, lot_size=lot, max_lots=Q, gamma_of_coins=gamma_of)
    exact = solve_glft_exact(**_common(V, sigma, lot, A_b, 1.5, k_b, k_b), drift_per_s=2e-6, max_lots=Q, horizon_s=3000.0, penalty_usd_per_s=penalty)
    bid, ask = stationary_depths_linear(
        fair_value=V, drift_per_s=2e-6, lot_size=lot, penalty_usd_per_s=penalty, intensity_bid_per_s=A_b, intensity_ask_per_s=1.5, decay_per_bps=k_b
    )
    np.testing.assert_allclose(exact.bid_depth_usd[-1], bid, rtol=1e-8)
    np.testing.assert_allclose(exact.ask_depth_usd[-1], ask, rtol=1e-8)


def test_exact_spread_widens_with_the_penalty_convexity():
    # with γ(q) growing in |q| the running cost is quartic and the exact spread grows with |q|
    V, sigma, lot, A_b, A_a, k_b, k_a, gamma = CASES["btc"]
    gamma_of = lambda x: gamma * (1 + 4 * (x / 0.01) ** 2)  # noqa: E731
    penalty = quadratic_penalty(fair_value=V, sigma_per_sqrt_s=sigma, lot_size=lot, max_lots=Q, gamma_of_coins=gamma_of)
    exact = solve_glft_exact(**_common(V, sigma, lot, A_b, A_a, k_b, k_a), drift_per_s=0.0, max_lots=Q, horizon_s=2000.0, penalty_usd_per_s=penalty)
    spread = [sum(exact.stationary_depths_usd(q)) for q in range(0, 6)]
    assert np.all(np.diff(spread) > 0)
    assert "risk-neutral" in exact.summary()


def test_bad_inputs_name_the_field():
    V, sigma, lot, A_b, A_a, k_b, k_a, gamma = CASES["btc"]
    with pytest.raises(ValueError, match="intensity_bid_per_s"):
        solve_glft_exact(**_common(V, sigma, lot, -1.0, A_a, k_b, k_a), drift_per_s=0.0, max_lots=Q, horizon_s=10.0, utility_gamma_per_usd=1.0)
    with pytest.raises(ValueError, match="penalty_usd_per_s"):
        solve_glft_exact(**_common(V, sigma, lot, A_b, A_a, k_b, k_a), drift_per_s=0.0, max_lots=Q, horizon_s=10.0)
