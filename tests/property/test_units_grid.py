"""Laws of Hyperliquid's perp price and size grid (mmlab.units)."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmlab.config import InstrumentSpec
from mmlab.units import (
    is_valid_price,
    is_valid_size,
    price_above,
    price_below,
    price_decimals,
    price_tick,
    round_ask,
    round_bid,
    round_size,
)

sz_decimals = st.integers(min_value=0, max_value=5)


@st.composite
def price_and_sz_decimals(draw):
    """A coin's szDecimals and a price at least two of its smallest ticks above zero."""
    szd = draw(sz_decimals)
    smallest = 2 * 10.0 ** -(6 - szd)
    return draw(st.floats(min_value=smallest, max_value=5e6, allow_nan=False, allow_infinity=False)), szd


@given(price_and_sz_decimals())
def test_bid_rounds_down_onto_the_grid(case):
    price, szd = case
    bid = round_bid(price, szd)
    assert bid <= price * (1 + 1e-12)
    assert is_valid_price(bid, szd)


@given(price_and_sz_decimals())
def test_ask_rounds_up_onto_the_grid(case):
    price, szd = case
    ask = round_ask(price, szd)
    assert ask >= price * (1 - 1e-12)
    assert is_valid_price(ask, szd)


@given(price_and_sz_decimals())
def test_rounding_is_the_nearest_grid_point_on_its_side(case):
    price, szd = case
    # no valid price lies strictly between the rounded bid and the input: the next one up is above it
    bid = round_bid(price, szd)
    assert price_above(bid, szd) > price * (1 - 1e-12)
    ask = round_ask(price, szd)
    assert price_below(ask, szd) < price * (1 + 1e-12)


@given(price_and_sz_decimals())
def test_rounding_is_idempotent(case):
    price, szd = case
    bid = round_bid(price, szd)
    ask = round_ask(price, szd)
    assert round_bid(bid, szd) == bid
    assert round_ask(ask, szd) == ask


@given(price_and_sz_decimals())
def test_bid_never_crosses_above_ask_after_rounding(case):
    price, szd = case
    # a bid and an ask computed at the same price can meet but never cross
    assert round_bid(price, szd) <= round_ask(price, szd)


@given(price_and_sz_decimals())
def test_at_most_five_significant_figures_unless_integer(case):
    price, szd = case
    bid = round_bid(price, szd)
    if not float(bid).is_integer():
        digits = f"{bid:.{price_decimals(bid, szd)}f}".replace(".", "").lstrip("0").rstrip("0")
        assert len(digits) <= 5
    assert price_decimals(bid, szd) <= 6 - szd


@given(price_and_sz_decimals())
def test_neighbours_are_strictly_outside(case):
    price, szd = case
    p = round_bid(price, szd)
    assert price_below(p, szd) < p < price_above(p, szd)
    assert is_valid_price(price_below(p, szd), szd)
    assert is_valid_price(price_above(p, szd), szd)


@given(st.floats(min_value=0.0, max_value=1e6, allow_nan=False), sz_decimals)
def test_size_rounds_down_to_sz_decimals(size, szd):
    rounded = round_size(size, szd)
    assert rounded <= size + 1e-12
    assert size - rounded < 10.0**-szd + 1e-9
    assert rounded == 0.0 or is_valid_size(rounded, szd)


@pytest.mark.parametrize(
    ("price", "szd", "tick"),
    [
        (105_055.0, 5, 1.0),  # BTC: integer prices, 6 digits allowed because integer
        (3_456.7, 4, 0.1),  # ETH: 5 significant figures
        (100.0, 2, 0.01),  # the synthetic coin
        (1.2345, 0, 0.0001),
        (0.012345, 0, 0.000001),  # 5 sig figs would be 6 decimals, the cap is 6 - 0
        (0.012345, 2, 0.0001),  # the cap 6 - 2 = 4 decimals binds
    ],
)
def test_tick_examples_from_hyperliquid_rules(price, szd, tick):
    assert math.isclose(price_tick(price, szd), tick)


def test_examples_of_valid_and_invalid_prices():
    assert is_valid_price(123456.0, 0)  # integer always allowed
    assert not is_valid_price(1234.56, 0)  # six significant figures
    assert is_valid_price(1234.5, 0)
    assert not is_valid_price(0.0012345, 4)  # seven decimals > 6 - 4
    assert is_valid_price(0.3, 1)  # 0.1 + 0.2 style float noise must not break the check


def test_bad_sz_decimals_is_rejected():
    with pytest.raises(ValueError, match="sz_decimals"):
        round_bid(100.0, 7)


@given(
    # at least two of the coarsest tick above zero, so a price below the bid exists
    st.floats(min_value=10.0, max_value=1e6, allow_nan=False),
    st.sampled_from([0.1, 0.5, 0.01, 0.25, 1.0, 5.0]),
)
def test_fixed_tick_grid_of_other_venues(price, tick):
    grid = InstrumentSpec(coin="X", sz_decimals=3, price_tick=tick)
    bid, ask = grid.round_bid(price), grid.round_ask(price)
    assert bid <= price * (1 + 1e-12) and ask >= price * (1 - 1e-12)
    assert grid.is_valid_price(bid) and grid.is_valid_price(ask)
    assert ask - bid <= tick * (1 + 1e-9)
    assert grid.price_below(bid) < bid < grid.price_above(bid)
    assert abs(grid.price_above(bid) - bid - tick) < tick * 1e-6
