"""The issue's required properties of the actuary, checked over grids at the default parameters
and at a realistic BTC parameter set (V ≈ 100,000 USD, σ = 1 bps/√s, lot 0.001 BTC, q_max
0.01 BTC, γ_base = 1/USD so that holding q_max for 60 s costs ½ γ σ_V² 60 q_max / V ≈ 3 bps)."""

import dataclasses
import math

import numpy as np
import pytest

from mmlab.actuary import GlftActuary, informed_adverse_selection, informed_floor_z
from mmlab.config import ActuaryConfig
from mmlab.governor import gamma_of_q
from mmlab.testing import make_belief, make_book
from mmlab.types import ParameterUpdates, RiskBudget

DEFAULTS = dict(value=100.0, lot=0.5, q_max=2.0, gamma=5.0, beta=4.0, actuary=ActuaryConfig())
BTC = dict(
    value=100_000.0,
    lot=0.001,
    q_max=0.01,
    gamma=1.0,
    beta=4.0,
    actuary=ActuaryConfig(
        maker_fee_bps=0.0,
        intensity_at_touch_bid_per_s=2.0,
        intensity_at_touch_ask_per_s=2.0,
        intensity_decay_bid_per_bps=1.0,
        intensity_decay_ask_per_bps=1.0,
        level_spacing_bps=0.5,
    ),
)
SETS = {"defaults": DEFAULTS, "btc": BTC}


def _budget(params, position, carry_bps=0.0):
    return RiskBudget(
        ts_local=0,
        position=position,
        gamma_per_usd=gamma_of_q(position, params["q_max"], params["gamma"], params["beta"]),
        q_max=params["q_max"],
        max_buy_size=max(0.0, params["q_max"] - position),
        max_sell_size=max(0.0, params["q_max"] + position),
        max_order_size=params["lot"],
        funding_carry_bps=carry_bps,
        marginal_cost_bps=0.0,
        holding_horizon_s=60.0,
    )


def _price(params, position=0.0, drift=0.0, sigma=1e-4, pi=0.1, carry_bps=0.0, book=None, updates=None, actuary=None):
    belief = make_belief(fair_value=params["value"], drift_per_s=drift, sigma_per_sqrt_s=sigma, informed_fraction=pi)
    return (actuary or GlftActuary(params["actuary"])).price(belief, _budget(params, position, carry_bps), book, updates)


def _drift_grid(params, n=7):
    # drifts whose target inventory μ_V / (γ_base σ_V² Δ) stays within ±q_max: |μ| ≤ γ σ_V² q_max / V
    value = params["value"]
    top = params["gamma"] * (value * 1e-4) ** 2 * params["q_max"] / value
    return np.linspace(-top, top, n)


@pytest.mark.parametrize("name", SETS)
def test_bid_below_reservation_below_ask_over_a_grid(name):
    params = SETS[name]
    for q in np.linspace(-params["q_max"], params["q_max"], 9):
        for mu in _drift_grid(params):
            for carry in (-1.0, 0.0, 1.0):
                s = _price(params, q, mu, carry_bps=carry)
                assert s.bids[0].price < s.reservation_price < s.asks[0].price


@pytest.mark.parametrize("name", SETS)
def test_quotes_fall_with_inventory_and_rise_with_drift_over_a_grid(name):
    params = SETS[name]
    positions = np.linspace(-params["q_max"], params["q_max"], 17)
    drifts = _drift_grid(params)
    bid = np.array([[_price(params, q, mu).bids[0].price for mu in drifts] for q in positions])
    ask = np.array([[_price(params, q, mu).asks[0].price for mu in drifts] for q in positions])
    # down in q (axis 0), up in μ (axis 1); weak where a floor holds a side, strict in the interior
    assert np.all(np.diff(bid, axis=0) <= 0) and np.all(np.diff(ask, axis=0) <= 0)
    assert np.all(np.diff(bid, axis=1) >= 0) and np.all(np.diff(ask, axis=1) >= 0)
    mid = len(drifts) // 2
    inner = np.abs(positions[1:]) <= 0.5 * params["q_max"]
    assert np.all(np.diff(bid[:, mid])[inner] < 0) and np.all(np.diff(ask[:, mid])[inner] < 0)
    assert np.all(np.diff(bid[positions.size // 2]) > 0) and np.all(np.diff(ask[positions.size // 2]) > 0)


@pytest.mark.parametrize("name", SETS)
def test_spread_widens_with_inventory_volatility_and_informed_fraction(name):
    params = SETS[name]
    spread = lambda **kw: _price(params, **kw).half_spread_bps  # noqa: E731
    q_max = params["q_max"]
    for sigma in (0.5e-4, 1e-4, 2e-4):
        for pi in (0.0, 0.1, 0.3):
            by_q = [spread(position=q, sigma=sigma, pi=pi) for q in np.linspace(0.0, q_max, 6)]
            by_minus_q = [spread(position=-q, sigma=sigma, pi=pi) for q in np.linspace(0.0, q_max, 6)]
            assert np.all(np.diff(by_q) > 0) and np.all(np.diff(by_minus_q) > 0), (sigma, pi)
    for q in (-0.5 * q_max, 0.0, 0.5 * q_max):
        by_sigma = [spread(position=q, sigma=s) for s in (0.25e-4, 0.5e-4, 1e-4, 2e-4, 4e-4)]
        by_pi = [spread(position=q, pi=p) for p in (0.0, 0.05, 0.1, 0.2, 0.4, 0.7)]
        assert np.all(np.diff(by_sigma) > 0) and np.all(np.diff(by_pi) > 0), q


@pytest.mark.parametrize("name", SETS)
def test_positive_funding_skews_a_long_out_faster_than_a_short(name):
    # With carry c > 0 (longs pay), every quote moves down by c: a long's exit quote (its ask)
    # comes c closer to V̂ and a short's exit quote (its bid) moves c further away, so at equal
    # |q| the long's ask depth is smaller than the short's bid depth (equal without carry), by up
    # to 2c (less where the informed adverse selection, which falls with depth, gives some back).
    params = SETS[name]
    for q in np.linspace(0.2, 0.5, 4) * params["q_max"]:
        for carry in (0.05, 0.1):
            long, short = _price(params, q, carry_bps=carry), _price(params, -q, carry_bps=carry)
            assert long.asks[0].depth_bps < short.bids[0].depth_bps
            assert 0.5 * carry < short.bids[0].depth_bps - long.asks[0].depth_bps <= 2 * carry + 1e-9
            flat_long, flat_short = _price(params, q), _price(params, -q)
            assert flat_long.asks[0].depth_bps == pytest.approx(flat_short.bids[0].depth_bps)
            assert long.reservation_price < flat_long.reservation_price


@pytest.mark.parametrize("name", SETS)
def test_every_level_expected_pnl_is_fill_prob_times_net_edge(name):
    params = SETS[name]
    actuary = GlftActuary(dataclasses.replace(params["actuary"], impact_alpha_bps=0.8, impact_beta=0.7))
    value = params["value"]
    book = make_book(bid=value * (1 - 2e-4), ask=value * (1 + 2e-4), bid_size=params["lot"], ask_size=2 * params["lot"], levels=10, tick=value * 1e-4)
    updates = ParameterUpdates(ts_local=0, fills_marked=5, adverse_selection_bps=0.3, spread_adjust_bps=0.1)
    for q in (-params["q_max"], 0.0, 0.5 * params["q_max"]):
        s = _price(params, q, carry_bps=0.2, book=book, updates=updates, actuary=actuary)
        for level in s.bids + s.asks:
            net = level.edge_bps - level.adverse_selection_bps - level.impact_bps - level.fee_bps - level.carry_bps
            assert level.expected_pnl_bps == pytest.approx(level.fill_prob * net, rel=1e-12, abs=1e-15)
            assert level.gamma_bps == pytest.approx(level.fill_prob * level.adverse_selection_bps)
            assert 0.0 < level.fill_prob < 1.0 and level.theta_bps_per_s * level.edge_bps >= 0.0
        # the first level is the optimum after costs: its E[PnL] is positive
        assert s.bids[0].expected_pnl_bps > 0 and s.asks[0].expected_pnl_bps > 0
        # impact falls as more size is displayed ahead of deeper levels
        impacts = [lv.impact_bps for lv in s.bids]
        assert np.all(np.diff(impacts) <= 1e-12) and impacts[0] <= 0.8


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("pi", [0.0, 0.3, 0.8])
def test_floors_hold(name, pi):
    params = SETS[name]
    for sigma in (0.5e-4, 3e-4):
        for q in (-params["q_max"], 0.0, params["q_max"]):
            s = _price(params, q, sigma=sigma, pi=pi)
            assert s.option_floor_bps == pytest.approx(1e4 * sigma * math.sqrt(1.0 / (2 * math.pi)))
            floor = max(s.option_floor_bps, s.informed_floor_bps)
            assert all(lv.depth_bps >= floor - 1e-12 for lv in s.bids + s.asks)
            depths = [lv.depth_bps for lv in s.bids]
            assert np.all(np.diff(depths) >= params["actuary"].level_spacing_bps - 1e-9)


@pytest.mark.parametrize("pi", [0.01, 0.1, 0.3, 0.5, 0.9, 0.999])
def test_informed_floor_is_the_break_even_depth(pi):
    # at d* = S z*, the quote's expected profit given a fill is zero: d = AS_π(d)
    z = informed_floor_z(pi)
    for s_bps in (0.3, 1.0, 5.0):
        d = np.array([s_bps * z])
        assert informed_adverse_selection(d, pi, s_bps)[0] == pytest.approx(d[0], rel=1e-9)
        # shallower quotes lose to informed takers, deeper ones earn
        assert informed_adverse_selection(0.9 * d, pi, s_bps)[0] > 0.9 * d[0]
        assert informed_adverse_selection(1.1 * d, pi, s_bps)[0] < 1.1 * d[0]
    # Monte Carlo check of the model: E[(a − V) 1{fill}] = 0 at a = V̂ + S z*
    rng = np.random.default_rng(3)
    v = rng.standard_normal(2_000_000)
    informed = rng.random(v.size) < pi
    fill = ~informed | (v > z)
    assert abs(np.mean((z - v) * fill)) < 5e-3


def test_informed_floor_rejects_bad_fraction():
    with pytest.raises(ValueError, match="informed_fraction"):
        informed_floor_z(1.5)


def test_adaptive_levels_follow_the_expected_pnl_surface():
    params = BTC
    cfg = dataclasses.replace(params["actuary"], level_spacing_bps=0.05, levels=6)
    s = _price(params, 0.0, actuary=GlftActuary(cfg))
    depths = np.array([lv.depth_bps for lv in s.bids])
    assert np.all(np.diff(depths) >= 0.05 - 1e-12)
    # the deeper levels are not on a fixed step: they sit at quantiles of the E⁺ mass
    assert np.ptp(np.diff(depths)) > 0.01
    fixed = _price(params, 0.0, actuary=GlftActuary(dataclasses.replace(cfg, adaptive_spacing=False)))
    assert np.allclose(np.diff([lv.depth_bps for lv in fixed.bids]), 0.05)
    assert s.bids[0].depth_bps == pytest.approx(fixed.bids[0].depth_bps)


@pytest.mark.parametrize("name", SETS)
def test_measured_adverse_selection_is_weighed_against_the_prior_by_fill_count(name):
    params = SETS[name]
    cfg = dataclasses.replace(params["actuary"], adverse_selection_prior_bps=0.5, adverse_selection_prior_fills=20.0)
    actuary = GlftActuary(cfg)
    prior = _price(params, actuary=actuary, pi=0.0)
    as_prior = prior.bids[0].adverse_selection_bps
    assert as_prior == pytest.approx(0.5)
    charged = []
    for fills in (1, 20, 2_000):
        updates = ParameterUpdates(ts_local=0, fills_marked=fills, adverse_selection_bps=4.0)
        level = _price(params, actuary=actuary, pi=0.0, updates=updates).bids[0]
        # w = n / (n + n0): one bad fill moves the charge a twentieth of the way, many fills all of it
        w = fills / (fills + 20.0)
        assert level.adverse_selection_bps == pytest.approx(w * 4.0 + (1 - w) * 0.5)
        charged.append(level.depth_bps)
    assert charged[0] < charged[1] < charged[2]
