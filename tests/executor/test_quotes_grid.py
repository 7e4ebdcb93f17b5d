"""The executor's quotes obey Hyperliquid's grid and the caps of the risk budget."""

import dataclasses
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from mmlab.config import ExecutorConfig, InstrumentSpec
from mmlab.executor import LadderExecutor
from mmlab.types import L2Book, LevelPricing, PricingSurface, RiskBudget, Side
from mmlab.units import is_valid_size, price_decimals


def _surface(fair, levels, first_depth_bps, spacing_bps):
    def level(side, k):
        sign = int(side)
        depth = first_depth_bps + k * spacing_bps
        return LevelPricing(
            side=side, level=k, price=fair * (1 - sign * 1e-4 * depth), depth_bps=depth, fill_prob=0.5 * math.exp(-0.3 * k),
            edge_bps=depth, adverse_selection_bps=0.0, impact_bps=0.0, fee_bps=0.0, carry_bps=0.0,
            expected_pnl_bps=0.5 * math.exp(-0.3 * k) * depth,
        )
    return PricingSurface(
        ts_local=1, fair_value=fair, sigma_per_sqrt_s=1e-4, reservation_price=fair, half_spread_bps=first_depth_bps,
        skew_bps=0.0, bids=tuple(level(Side.BUY, k) for k in range(levels)), asks=tuple(level(Side.SELL, k) for k in range(levels)),
    )


def _sig_figs(price, szd):
    text = f"{price:.{price_decimals(price, szd)}f}".replace(".", "").lstrip("0").rstrip("0")
    return len(text)


@settings(max_examples=100)
@given(
    st.floats(0.01, 200_000.0), st.integers(0, 5), st.floats(0.0, 20.0), st.floats(0.1, 5.0),
    st.floats(-1.5, 1.5), st.floats(0.5, 50.0),
)
def test_quotes_are_on_the_hyperliquid_grid_and_inside_the_caps(fair, szd, depth, spacing, position, kelly_usd_per_coin):
    # prices where the grid is at least as fine as 1 bps (Hyperliquid lists coins so)
    fair = max(fair, 10.0 ** (szd - 2))
    grid = InstrumentSpec(sz_decimals=szd, min_order_notional_usd=10.0)
    executor = LadderExecutor(grid, ExecutorConfig(max_resting_notional_usd=1e12), levels=5)
    coins = 1000.0 / fair  # a ladder worth ~1000 USD per side
    budget = RiskBudget(
        ts_local=1, position=position * coins, gamma_per_usd=1e-3, q_max=2 * coins, max_buy_size=(2 - position) * coins,
        max_sell_size=(2 + position) * coins, max_order_size=0.5 * coins, funding_carry_bps=0.0, marginal_cost_bps=0.0,
        holding_horizon_s=60.0, kelly_notional_usd=kelly_usd_per_coin * 1000.0 / 10.0,
    )
    tick = fair * 1e-4
    book = L2Book.from_levels(ts_exch=1, ts_local=1, bid_px=[grid.round_bid(fair - tick)], bid_sz=[1.0],
                              ask_px=[grid.round_ask(fair + tick)], ask_sz=[1.0])
    quotes = executor.quotes(_surface(fair, 5, depth, spacing), budget, book)
    for quote in quotes.all:
        assert grid.is_valid_price(quote.price)
        assert price_decimals(quote.price, szd) <= 6 - szd
        assert float(quote.price).is_integer() or _sig_figs(quote.price, szd) <= 5
        assert is_valid_size(quote.size, szd) and quote.size * quote.price >= 10.0
        assert quote.size <= budget.max_order_size + 1e-12
    assert all(q.price < book.best_ask for q in quotes.bids) and all(q.price > book.best_bid for q in quotes.asks)
    assert len({q.price for q in quotes.bids}) == len(quotes.bids)  # merged levels: one order per price
    kelly_coins = budget.kelly_notional_usd / fair
    assert sum(q.size for q in quotes.bids) <= max(0.0, min(budget.max_buy_size, kelly_coins - budget.position)) + 1e-9
    assert sum(q.size for q in quotes.asks) <= max(0.0, min(budget.max_sell_size, kelly_coins + budget.position)) + 1e-9


def test_resting_notional_cap_couples_the_sides():
    grid = InstrumentSpec(sz_decimals=2, min_order_notional_usd=0.0)
    budget = RiskBudget(
        ts_local=1, position=0.0, gamma_per_usd=1e-3, q_max=10.0, max_buy_size=10.0, max_sell_size=10.0,
        max_order_size=1.0, funding_carry_bps=0.0, marginal_cost_bps=0.0, holding_horizon_s=60.0,
    )
    book = L2Book.from_levels(ts_exch=1, ts_local=1, bid_px=[99.99], bid_sz=[1.0], ask_px=[100.01], ask_sz=[1.0])
    surface = _surface(100.0, 5, 2.0, 1.0)
    free = LadderExecutor(grid, ExecutorConfig(max_resting_notional_usd=1e9), levels=5).quotes(surface, budget, book)
    capped = LadderExecutor(grid, ExecutorConfig(max_resting_notional_usd=300.0), levels=5).quotes(surface, budget, book)
    assert sum(q.size * q.price for q in free.all) > 300.0
    assert sum(q.size * q.price for q in capped.all) <= 300.0 + 1e-9
    assert capped.bids and capped.asks  # the cap is shared, not given to one side


@settings(max_examples=100)
@given(st.lists(st.floats(-2.0, 2.0), min_size=10, max_size=10), st.floats(-1.0, 1.0))
def test_no_level_with_non_positive_expected_pnl_is_quoted(expected_bps, position):
    fair, levels = 150.0, 5
    grid = InstrumentSpec(sz_decimals=2, min_order_notional_usd=1.0)
    executor = LadderExecutor(grid, ExecutorConfig(max_resting_notional_usd=1e9), levels=levels)
    surface = _surface(fair, levels, 1.0, 2.0)  # 2 bps apart: every level has its own grid price

    def with_expected(side_levels, values):
        return tuple(dataclasses.replace(lv, expected_pnl_bps=v) for lv, v in zip(side_levels, values))

    surface = dataclasses.replace(
        surface, bids=with_expected(surface.bids, expected_bps[:levels]), asks=with_expected(surface.asks, expected_bps[levels:])
    )
    budget = RiskBudget(
        ts_local=1, position=position, gamma_per_usd=1e-3, q_max=5.0, max_buy_size=5.0 - position, max_sell_size=5.0 + position,
        max_order_size=1.0, funding_carry_bps=0.0, marginal_cost_bps=0.0, holding_horizon_s=60.0,
    )
    book = L2Book.from_levels(ts_exch=1, ts_local=1, bid_px=[149.98], bid_sz=[1.0], ask_px=[150.02], ask_sz=[1.0])
    quotes = executor.quotes(surface, budget, book)
    priced = {grid.round_bid(lv.price): lv.expected_pnl_bps for lv in surface.bids}
    priced |= {grid.round_ask(lv.price): lv.expected_pnl_bps for lv in surface.asks}
    for quote in quotes.all:
        assert priced[quote.price] > 0.0, (quote, priced)
    # and every level with a clearly positive E[PnL] and room gets some size
    assert len(quotes.all) >= sum(1 for v in expected_bps if v > 0.5) - 2


def test_deep_levels_get_a_wider_reprice_tolerance_by_their_fill_probability():
    from mmlab.executor import reconcile
    from mmlab.types import OpenOrder

    fair, levels = 150.0, 5
    grid = InstrumentSpec(sz_decimals=2, min_order_notional_usd=1.0)
    executor = LadderExecutor(grid, ExecutorConfig(max_resting_notional_usd=1e9, max_tolerance_scale=4.0), levels=levels)
    surface = _surface(fair, levels, 1.0, 2.0)  # fill_prob 0.5 e^{−0.3 k}
    budget = RiskBudget(
        ts_local=1, position=0.0, gamma_per_usd=1e-3, q_max=50.0, max_buy_size=50.0, max_sell_size=50.0,
        max_order_size=1.0, funding_carry_bps=0.0, marginal_cost_bps=0.0, holding_horizon_s=60.0,
    )
    book = L2Book.from_levels(ts_exch=1, ts_local=1, bid_px=[149.98], bid_sz=[1.0], ask_px=[150.02], ask_sz=[1.0])
    quotes = executor.quotes(surface, budget, book)
    scales = [q.tolerance_scale for q in quotes.bids]
    # √(p_0 / p_k) = e^{0.15 k}
    assert len(scales) == levels
    assert all(math.isclose(a, math.exp(0.15 * k)) for k, a in enumerate(scales))
    # an order 1.1 bps off target: replaced at the first level, kept at the fifth (1 × e^{0.6} = 1.8 bps)
    first, fifth = quotes.bids[0], quotes.bids[4]
    for quote, kept in ((first, False), (fifth, True)):
        live = [OpenOrder(order_id=9, side=Side.BUY, price=round(quote.price * (1 - 1.1e-4), 2), size=quote.size, ts_local_sent=0)]
        only = type(quotes)(ts_local=1, bids=(quote,), asks=())
        actions = reconcile(only, live, 1.0, 0.0)
        assert (actions == ()) is kept, (quote, actions)
