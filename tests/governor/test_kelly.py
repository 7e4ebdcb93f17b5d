"""Fractional Kelly exposure and urgency."""

import dataclasses

import numpy as np
import pytest

from mmlab.config import GovernorConfig
from mmlab.governor import InventoryGovernor, kelly_notional_usd
from mmlab.types import ParameterUpdates
from mmlab.testing import make_belief


def _updates(markout_10s=None, markout_60s=2.0, fills=100, fee_bps=0.5):
    markouts = (0.0, 0.0, markout_10s or 0.0, 0.0, markout_60s, 0.0)
    return ParameterUpdates(ts_local=0, fills_marked=fills, markout_bps=markouts, fee_bps=fee_bps)


def test_full_kelly_is_edge_over_variance():
    # W m / (σ² H): 1,000 USD × 1e-4 / (1e-8 × 60 s)
    assert kelly_notional_usd(capital_usd=1_000.0, edge_bps=1.0, sigma_per_sqrt_s=1e-4, horizon_s=60.0, fraction=1.0) == pytest.approx(
        1_000.0 * 1e-4 / (1e-8 * 60.0)
    )
    assert kelly_notional_usd(capital_usd=1_000.0, edge_bps=-0.1, sigma_per_sqrt_s=1e-4, horizon_s=60.0, fraction=1.0) == 0.0


def test_kelly_scales_with_capital_edge_and_inverse_variance_over_a_grid():
    base = dict(capital_usd=1_000.0, edge_bps=1.0, sigma_per_sqrt_s=1e-4, horizon_s=60.0, fraction=0.5)
    s0 = kelly_notional_usd(**base)
    for factor in (0.5, 2.0, 3.0):
        assert kelly_notional_usd(**{**base, "capital_usd": 1_000.0 * factor}) == pytest.approx(s0 * factor)
        assert kelly_notional_usd(**{**base, "edge_bps": factor}) == pytest.approx(s0 * factor)
        assert kelly_notional_usd(**{**base, "sigma_per_sqrt_s": 1e-4 * factor}) == pytest.approx(s0 / factor**2)


def test_fraction_is_the_regime_mean_and_crisis_shrinks_exposure():
    governor = InventoryGovernor(GovernorConfig(kelly_fraction_by_regime=(0.5, 0.3, 0.1)))
    quiet = governor.budget(make_belief(), 0.0)
    mixed = governor.budget(dataclasses.replace(make_belief(), regime_probs=(0.2, 0.3, 0.5)), 0.0)
    assert quiet.kelly_fraction == pytest.approx(0.5)
    assert mixed.kelly_fraction == pytest.approx(0.2 * 0.5 + 0.3 * 0.3 + 0.5 * 0.1)
    assert mixed.kelly_notional_usd == pytest.approx(quiet.kelly_notional_usd * mixed.kelly_fraction / 0.5)


def test_edge_is_the_net_markout_shrunk_to_the_prior():
    cfg = GovernorConfig(kelly_edge_prior_bps=1.0, kelly_edge_prior_fills=50.0, holding_horizon_s=60.0)
    governor = InventoryGovernor(cfg)
    assert governor.edge_bps(None) == 1.0
    # the 60 s markout is the one nearest the 60 s horizon: (50 × 1 + 100 × (2 − 0.5)) / 150
    assert governor.edge_bps(_updates(markout_60s=2.0, fills=100, fee_bps=0.5)) == pytest.approx((50 + 150) / 150)
    # many fills at a negative net edge turn Kelly off
    losing = governor.budget(make_belief(), 0.0, updates=_updates(markout_60s=-1.0, fills=10_000))
    assert losing.kelly_notional_usd == 0.0
    nan = ParameterUpdates(ts_local=0, fills_marked=3)
    assert governor.edge_bps(nan) == 1.0


def test_urgency_is_zero_flat_and_grows_with_position_and_volatility():
    governor = InventoryGovernor(GovernorConfig(q_max=2.0))
    belief = make_belief()
    assert governor.budget(belief, 0.0).urgency == 0.0
    q = np.linspace(0.0, 2.0, 9)
    urgency = [governor.budget(belief, x).urgency for x in q]
    assert np.all(np.diff(urgency) > 0)
    assert governor.budget(belief, -1.0).urgency == pytest.approx(governor.budget(belief, 1.0).urgency)
    wild = make_belief(sigma_per_sqrt_s=4e-4)
    assert governor.budget(wild, 1.0).urgency > governor.budget(belief, 1.0).urgency


def test_config_errors_name_the_field():
    from mmlab.config import ConfigError

    with pytest.raises(ConfigError, match="kelly_fraction_by_regime"):
        GovernorConfig(kelly_fraction_by_regime=(0.5, 0.3))
    with pytest.raises(ConfigError, match="capital_usd"):
        GovernorConfig(capital_usd=0.0)
