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
