"""Sensor observations: unbiased where they claim to be, and bad books never get through."""

import math

import numpy as np
import pytest

from mmlab.sensor import MicrostructureSensor, realized_vol_observation
from mmlab.testing import T0_NS as T0
from mmlab.testing import make_book, make_update
from mmlab.types import StateComponent


def _update(ts, bid, ask, bid_size=1.0, ask_size=1.0, trades=()):
    return make_update(make_book(bid=bid, ask=ask, bid_size=bid_size, ask_size=ask_size, ts=ts), trades=trades)


@pytest.mark.parametrize("n_returns", [5, 10, 40])
def test_realized_vol_observation_is_unbiased_with_the_stated_variance(n_returns):
    rng = np.random.default_rng(42)
    sigma, dt = 1.3e-4, 1.0
    trials = 20_000
    returns = rng.normal(0.0, sigma * math.sqrt(dt), size=(trials, n_returns))
    observations = [realized_vol_observation(float(np.sum(r * r)), n_returns * dt, n_returns) for r in returns]
    z = np.array([o[0] for o in observations])
    noise_var = observations[0][1]
    # mean within 4 standard errors of ln σ, variance within 5% of the stated R
    assert abs(z.mean() - math.log(sigma)) < 4 * math.sqrt(noise_var / trials)
    assert z.var() == pytest.approx(noise_var, rel=0.05)


def test_micro_price_leans_toward_the_thin_side_and_mid_is_observed():
    sensor = MicrostructureSensor()
    obs = {o.source: o for o in sensor.observe(_update(T0, 99.99, 100.01, bid_size=3.0, ask_size=1.0))}
    assert obs["mid"].value == pytest.approx(math.log(100.0))
    # heavy bid, light ask: the next move is more likely up, micro above mid
    assert obs["micro_l1"].value > obs["mid"].value
    assert obs["micro_l1"].noise_var < obs["mid"].noise_var
    # before a calibration only the two spread-derived layers observe ln V
    assert set(obs) == {"mid", "micro_l1"}


@pytest.mark.parametrize(
    ("bid", "ask", "bid_size"),
    [(100.01, 99.99, 1.0), (100.0, 100.0, 1.0), (float("nan"), 100.0, 1.0), (99.99, float("inf"), 1.0), (99.99, 100.01, 0.0)],
)
def test_crossed_locked_or_non_finite_books_are_dropped_and_counted(bid, ask, bid_size):
    sensor = MicrostructureSensor()
    assert sensor.observe(_update(T0, bid, ask, bid_size=bid_size)) == ()
    assert sensor.dropped_books == 1


def test_realized_vol_with_a_fitted_dof_is_unbiased_for_correlated_returns():
    """Returns of a smoothed price: with ν from the observed noise, z is unbiased with variance R."""
    from mmlab.sensor.calibration import effective_dof

    rng = np.random.default_rng(7)
    sigma, n, trials = 1.0e-4, 10, 20_000
    # MA(1) returns r_i = (ε_i + ε_{i−1})/√2: variance σ², lag-one correlation ½
    eps = rng.normal(0.0, sigma, size=(trials, n + 1))
    returns = (eps[:, 1:] + eps[:, :-1]) / math.sqrt(2.0)
    log_half_rv = 0.5 * np.log(np.sum(returns * returns, axis=1) / n)
    dof = effective_dof(float(np.var(log_half_rv)))
    assert dof < n  # fewer independent returns than returns
    z = np.array([realized_vol_observation(float(np.sum(r * r)), float(n), n, dof)[0] for r in returns])
    noise_var = realized_vol_observation(1e-8, float(n), n, dof)[1]
    assert z.var() == pytest.approx(noise_var, rel=1e-9)
    # the χ²_ν approximation of the bias: within 2 % of σ
    assert abs(z.mean() - math.log(sigma)) < 0.02
    # without ν, ψ'(N/2)/4 understates the noise
    assert realized_vol_observation(1e-8, float(n), n)[1] < 0.8 * noise_var
    with pytest.raises(ValueError, match="dof"):
        realized_vol_observation(1e-8, float(n), n, 0.0)


def test_the_spread_becomes_an_observation_of_ln_sigma_with_each_vol_window():
    from mmlab.config import SensorCalibration

    calibration = SensorCalibration(spread_vol_intercept=-3.0, spread_vol_slope=0.6, spread_vol_noise_var=0.006, realized_vol_dof=7.0)
    sensor = MicrostructureSensor(calibration=calibration)
    observations = []
    for k in range(120):
        # 1 s apart; half spread 1 bps of a 100 USD mid
        observations.extend(sensor.observe(_update(T0 + k * 1_000_000_000, 99.99 + 1e-4 * (k % 2), 100.01 + 1e-4 * (k % 2))))
    spread = [o for o in observations if o.source == "spread_vol"]
    vol = [o for o in observations if o.source == "realized_vol"]
    assert len(spread) == len(vol) > 0
    assert all(o.component is StateComponent.LOG_VOL and o.ts_local == v.ts_local for o, v in zip(spread, vol))
    # z = (ln h − a)/b,  R = s²/b²
    assert spread[0].value == pytest.approx((math.log(1e-4) + 3.0) / 0.6, abs=1e-6)
    assert spread[0].noise_var == pytest.approx(0.006 / 0.36)
    # without a fitted link: no spread observation
    plain = MicrostructureSensor(calibration=SensorCalibration())
    out = [o for k in range(30) for o in plain.observe(_update(T0 + k * 1_000_000_000, 99.99, 100.01))]
    assert not [o for o in out if o.source == "spread_vol"]
