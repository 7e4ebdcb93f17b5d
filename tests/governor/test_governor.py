"""γ(q) is smooth and convex, the caps bind on position and notional, carry has the right sign."""

import numpy as np
import pytest

from mmlab.config import GovernorConfig
from mmlab.governor import InventoryGovernor, gamma_of_q
from mmlab.testing import make_belief


def _belief(fair_value=100.0):
    return make_belief(fair_value=fair_value)


def test_gamma_is_base_when_flat_and_base_times_one_plus_beta_at_the_cap():
    assert gamma_of_q(0.0, 2.0, 5.0, 4.0) == 5.0
    assert gamma_of_q(2.0, 2.0, 5.0, 4.0) == pytest.approx(25.0)
    assert gamma_of_q(-2.0, 2.0, 5.0, 4.0) == pytest.approx(25.0)


def test_gamma_is_convex_and_symmetric_over_a_grid():
    q = np.linspace(-2.0, 2.0, 81)
    g = np.array([gamma_of_q(x, 2.0, 5.0, 4.0) for x in q])
    assert np.all(np.diff(g, 2) > 0)
    assert np.allclose(g, g[::-1])


def test_position_and_notional_caps():
    governor = InventoryGovernor(GovernorConfig(q_max=2.0, max_notional_usd=1_000.0))
    budget = governor.budget(_belief(100.0), 0.5)
    assert budget.q_max == 2.0
    assert budget.max_buy_size == pytest.approx(1.5) and budget.max_sell_size == pytest.approx(2.5)
    # at $1,000 a coin the notional cap (1 coin) binds before the position cap
    expensive = governor.budget(_belief(1_000.0), 0.0)
    assert expensive.q_max == pytest.approx(1.0)
    over = governor.budget(_belief(100.0), 2.5)
    assert over.max_buy_size == 0.0 and over.max_sell_size == pytest.approx(4.5)


def test_marginal_cost_sign_follows_the_position():
    governor = InventoryGovernor()
    long, short = governor.budget(_belief(), 1.0), governor.budget(_belief(), -1.0)
    assert long.marginal_cost_bps > 0 > short.marginal_cost_bps
