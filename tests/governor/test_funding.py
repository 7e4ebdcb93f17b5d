"""Funding carry: the closed form against its series, its limits and shape; the OU fit."""

import math
import re

import numpy as np
import pytest

from mmlab.config import GovernorConfig
from mmlab.governor import InventoryGovernor
from mmlab.governor.funding import expected_funding_carry, fit_funding_ou, seconds_to_next_settlement
from mmlab.testing import T0_NS, make_belief

HOUR = 3600.0


def _series(next_rate, mean_rate, reversion_s, interval_s, to_next_s, horizon_s, terms=20_000):
    # Σ_k e^{−t_k/H} (r̄ + (r_1 − r̄) φ^{k−1}),  t_k = t_1 + (k − 1) I
    k = np.arange(terms)
    t = to_next_s + k * interval_s
    expected_rate = mean_rate + (next_rate - mean_rate) * np.exp(-interval_s / reversion_s) ** k
    return float(np.sum(np.exp(-t / horizon_s) * expected_rate))


@pytest.mark.parametrize("horizon_s", [30.0, 600.0, 3 * HOUR, 48 * HOUR])
@pytest.mark.parametrize("to_next_s", [1.0, 900.0, HOUR])
def test_closed_form_equals_the_settlement_series(horizon_s, to_next_s):
    args = dict(next_rate=3e-5, mean_rate=1.25e-5, reversion_s=8 * HOUR, interval_s=HOUR, to_next_s=to_next_s)
    assert expected_funding_carry(**args, holding_horizon_s=horizon_s) == pytest.approx(_series(**args, horizon_s=horizon_s), rel=1e-9)


def test_long_horizon_accrues_the_mean_rate_and_the_excess_over_the_reversion():
    mean, excess, tau = 1.25e-5, 2e-5, 8 * HOUR
    horizon = 1e4 * HOUR
    carry = expected_funding_carry(
        next_rate=mean + excess, mean_rate=mean, reversion_s=tau, interval_s=HOUR, to_next_s=HOUR / 2, holding_horizon_s=horizon
    )
    # r̄ H / I + (r_1 − r̄) / (1 − φ) for H → ∞
    assert carry == pytest.approx(mean * horizon / HOUR + excess / (1 - math.exp(-HOUR / tau)), rel=1e-3)


def test_short_horizon_pays_only_near_the_settlement():
    args = dict(next_rate=1e-4, mean_rate=1e-4, reversion_s=8 * HOUR, interval_s=HOUR, holding_horizon_s=60.0)
    near = expected_funding_carry(**args, to_next_s=5.0)
    far = expected_funding_carry(**args, to_next_s=1800.0)
    assert near == pytest.approx(1e-4 * math.exp(-5 / 60), rel=1e-6)
    assert far < 1e-15


def test_seconds_to_next_settlement_is_on_the_hour():
    assert seconds_to_next_settlement(T0_NS, HOUR) == HOUR  # T0 is on the hour: that one is paid
    assert seconds_to_next_settlement(T0_NS + 1_000_000_000, HOUR) == HOUR - 1.0
    assert seconds_to_next_settlement(T0_NS + int(3599.5e9), HOUR) == pytest.approx(0.5)


def test_budget_carry_has_the_rate_sign_and_grows_toward_the_settlement():
    governor = InventoryGovernor(GovernorConfig(holding_horizon_s=600.0))
    before = make_belief(ts_local=T0_NS + int(3500e9))
    early = make_belief(ts_local=T0_NS + int(600e9))
    paid = governor.budget(before, 0.0, funding_rate=1e-4, funding_interval_s=HOUR)
    received = governor.budget(before, 0.0, funding_rate=-1e-4, funding_interval_s=HOUR)
    assert paid.funding_carry_bps > 0 > received.funding_carry_bps
    assert governor.budget(early, 0.0, funding_rate=1e-4).funding_carry_bps < paid.funding_carry_bps
    assert paid.predicted_funding_rate == 1e-4


def _simulate_ou(n, mean, std, phi, seed):
    rng = np.random.default_rng(seed)
    r = np.empty(n)
    r[0] = mean + std * rng.standard_normal()
    for k in range(1, n):
        r[k] = mean + phi * (r[k - 1] - mean) + std * math.sqrt(1 - phi**2) * rng.standard_normal()
    return r


def test_ou_fit_recovers_simulated_parameters():
    phi = math.exp(-1 / 8)
    rates = _simulate_ou(20_000, 1.25e-5, 2e-5, phi, seed=3)
    ts = T0_NS + np.arange(len(rates), dtype=np.int64) * 3_600_000_000_000
    fit = fit_funding_ou(ts, rates)
    assert fit.phi == pytest.approx(phi, abs=0.01)
    assert fit.reversion_s == pytest.approx(8 * HOUR, rel=0.1)
    assert fit.mean_rate == pytest.approx(1.25e-5, abs=2e-6)
    assert fit.std_rate == pytest.approx(2e-5, rel=0.05)
    assert "per interval" in fit.summary()


def test_ou_fit_on_a_recorded_hyperliquid_history(shared_data):
    path = shared_data / "hyperliquid-api-samples/hyperliquid-python-sdk-cassettes/test_get_funding_history[1684811870000].yaml"
    rows = re.findall(r'"fundingRate":"([^"]+)","premium":"[^"]+","time":(\d+)', path.read_text())
    rates = np.array([float(r) for r, _ in rows])
    ts = np.array([int(t) for _, t in rows], dtype=np.int64) * 1_000_000
    # the recording's settlements are 8 h apart, a few hundred ms late each: within 1 %
    fit = fit_funding_ou(ts, rates, where=path.name)
    assert fit.interval_s == pytest.approx(8 * HOUR, rel=1e-3)
    assert 0 < fit.phi < 1 and fit.samples == len(rates) == 34
    assert fit.reversion_s > 0 and np.isfinite(fit.mean_rate) and fit.std_rate > 0


def test_ou_fit_names_the_bad_row():
    ts = T0_NS + np.arange(10, dtype=np.int64) * 3_600_000_000_000
    rates = _simulate_ou(10, 1e-5, 1e-5, 0.8, seed=1)
    bad = rates.copy()
    bad[4] = np.nan
    with pytest.raises(ValueError, match="row 4"):
        fit_funding_ou(ts, bad)
    gappy = ts.copy()
    gappy[6:] += 1_800_000_000_000
    with pytest.raises(ValueError, match="row 6"):
        fit_funding_ou(gappy, rates)
