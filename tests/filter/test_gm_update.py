"""The Glosten–Milgrom fill update against a brute-force posterior."""

import math

import numpy as np
import pytest

from mmlab.filter import gm_fill_update
from mmlab.types import Side


def _mixture_moments_by_quadrature(mean, var, log_price, side, informed_fraction):
    """Posterior moments of N(mean, var) · [(1 − π) + π 1{beyond} / P(beyond)] on a fine grid."""
    std = math.sqrt(var)
    x = np.linspace(mean - 12 * std, mean + 12 * std, 400_001)
    prior = np.exp(-0.5 * ((x - mean) / std) ** 2)
    beyond = x > log_price if side is Side.SELL else x < log_price
    p_beyond = np.sum(prior * beyond) / np.sum(prior)
    posterior = prior * ((1 - informed_fraction) + informed_fraction * beyond / p_beyond)
    posterior /= posterior.sum()
    m = np.sum(posterior * x)
    return m, np.sum(posterior * (x - m) ** 2)


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
@pytest.mark.parametrize("informed_fraction", [0.05, 0.2, 0.6])
@pytest.mark.parametrize("offset_std", [-1.5, 0.0, 0.7, 2.5])
def test_moments_match_the_exact_mixture(side, informed_fraction, offset_std):
    mean, var = math.log(100.0), (3e-4) ** 2
    log_price = mean + offset_std * math.sqrt(var)
    got = gm_fill_update(mean, var, log_price, side, informed_fraction)
    want = _mixture_moments_by_quadrature(mean, var, log_price, side, informed_fraction)
    # the grid step is 6e-5 std, and the integrand jumps at the price: allow 1e-4 std
    assert got[0] == pytest.approx(want[0], abs=1e-4 * math.sqrt(var))
    assert got[1] == pytest.approx(want[1], rel=1e-4)


def test_ask_fill_moves_value_up_and_bid_fill_down():
    mean, var = math.log(100.0), (2e-4) ** 2
    up, _ = gm_fill_update(mean, var, math.log(100.02), Side.SELL, 0.2)
    down, _ = gm_fill_update(mean, var, math.log(99.98), Side.BUY, 0.2)
    assert up > mean > down


def test_shift_grows_with_informed_fraction_and_uncertainty():
    mean = math.log(100.0)
    price = math.log(100.01)
    shifts = [gm_fill_update(mean, (2e-4) ** 2, price, Side.SELL, pi)[0] - mean for pi in (0.0, 0.1, 0.3)]
    assert shifts[0] == 0.0 and shifts[0] < shifts[1] < shifts[2]
    narrow = gm_fill_update(mean, (1e-4) ** 2, price, Side.SELL, 0.2)[0] - mean
    wide = gm_fill_update(mean, (4e-4) ** 2, price, Side.SELL, 0.2)[0] - mean
    assert wide > narrow > 0


def test_informed_fraction_out_of_range_is_rejected():
    with pytest.raises(ValueError, match="informed_fraction"):
        gm_fill_update(0.0, 1e-8, 0.0, Side.SELL, 1.0)
