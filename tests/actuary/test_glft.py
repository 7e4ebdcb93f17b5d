"""Shape of the GLFT prices: ordering, skew direction, widening (checked over grids)."""

import dataclasses

import numpy as np
import pytest

from mmlab.actuary import GlftActuary, glft_depths
from mmlab.config import ActuaryConfig, GovernorConfig
from mmlab.governor import InventoryGovernor
from mmlab.testing import make_belief


def _belief(drift=0.0, sigma=1e-4):
    return make_belief(drift_per_s=drift, sigma_per_sqrt_s=sigma)


def _surface(position=0.0, drift=0.0, sigma=1e-4, funding_rate=0.0):
    governor = InventoryGovernor(GovernorConfig())
    belief = _belief(drift=drift, sigma=sigma)
    budget = governor.budget(belief, position, funding_rate, 3600.0)
    return GlftActuary(ActuaryConfig()).price(belief, budget, None, None)


@pytest.mark.parametrize("position", np.linspace(-2.0, 2.0, 9))
@pytest.mark.parametrize("drift", [-2e-5, 0.0, 2e-5])
def test_bid_below_reservation_below_ask(position, drift):
    s = _surface(position, drift)
    assert s.bids[0].price < s.reservation_price < s.asks[0].price


def test_quotes_fall_as_inventory_grows():
    # Over the whole range the skew is monotone; where the option floor binds (a side that
    # wants to cross V̂ is held at the floor) it is flat, so strict only in the interior.
    positions = np.linspace(-2.0, 2.0, 41)
    bids = np.array([_surface(q).bids[0].price for q in positions])
    asks = np.array([_surface(q).asks[0].price for q in positions])
    assert np.all(np.diff(bids) <= 0) and np.all(np.diff(asks) <= 0)
    interior = np.abs(positions) <= 1.0
    assert np.all(np.diff(bids[interior]) < 0) and np.all(np.diff(asks[interior]) < 0)


def test_quotes_rise_with_drift():
    drifts = np.linspace(-3e-5, 3e-5, 25)
    bids = np.array([_surface(0.0, mu).bids[0].price for mu in drifts])
    asks = np.array([_surface(0.0, mu).asks[0].price for mu in drifts])
    assert np.all(np.diff(bids) >= 0) and np.all(np.diff(asks) >= 0)
    interior = np.abs(drifts) <= 1e-5
    assert np.all(np.diff(bids[interior]) > 0) and np.all(np.diff(asks[interior]) > 0)


def test_spread_widens_with_volatility():
    spreads = [_surface(0.0, 0.0, s).half_spread_bps for s in (0.5e-4, 1e-4, 2e-4, 4e-4)]
    assert np.all(np.diff(spreads) > 0)


def test_positive_funding_lowers_both_quotes():
    # The governor's carry is ~0 far from a settlement (funding accrues only at settlements), so
    # the budget's carry is set directly here: it is the actuary's input.
    governor = InventoryGovernor(GovernorConfig())
    belief = _belief()
    budget = governor.budget(belief, 0.0)
    actuary = GlftActuary(ActuaryConfig())
    flat = actuary.price(belief, budget, None, None)
    paid = actuary.price(belief, dataclasses.replace(budget, funding_carry_bps=0.5), None, None)
    assert paid.bids[0].price < flat.bids[0].price
    assert paid.asks[0].price < flat.asks[0].price


def test_depths_match_the_closed_form_at_zero_inventory():
    # c = (1/γ) ln(1 + γ/κ') and ω as in the module docstring, evaluated by hand for one case
    V, sigma, gamma, lot, A, k_bps = 100.0, 1e-4, 5.0, 0.5, 0.5, 0.3
    kappa_lot = k_bps / (1e-4 * V) / lot
    sigma_lot = lot * V * sigma
    c = np.log1p(gamma / kappa_lot) / gamma
    omega = np.sqrt(sigma_lot**2 * gamma / (2 * kappa_lot * A) * (1 + gamma / kappa_lot) ** (1 + kappa_lot / gamma))
    bid, ask = glft_depths(
        fair_value=V, sigma_per_sqrt_s=sigma, drift_per_s=0.0, gamma_per_usd=gamma, position_lots=0.0,
        lot_size=lot, intensity_bid_per_s=A, intensity_ask_per_s=A, decay_bid_per_bps=k_bps, decay_ask_per_bps=k_bps,
    )
    assert bid == pytest.approx((c + omega / 2) / lot)
    assert ask == pytest.approx((c + omega / 2) / lot)


def test_expected_pnl_falls_with_adverse_selection():
    from mmlab.types import ParameterUpdates

    governor = InventoryGovernor(GovernorConfig())
    belief = _belief()
    budget = governor.budget(belief, 0.0)
    actuary = GlftActuary(ActuaryConfig())
    low = actuary.price(belief, budget, None, ParameterUpdates(ts_local=0, fills_marked=10, adverse_selection_bps=0.1))
    high = actuary.price(belief, budget, None, ParameterUpdates(ts_local=0, fills_marked=10, adverse_selection_bps=3.0))
    assert all(h.expected_pnl_bps < l.expected_pnl_bps for h, l in zip(high.bids, low.bids))
