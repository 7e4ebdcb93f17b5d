"""Counterfactual PnL of unquoted first levels, and its feedback as a spread adjustment."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmlab.config import EvaluatorConfig
from mmlab.evaluator import MarkoutEvaluator
from mmlab.evaluator.counterfactual import CounterfactualLedger
from mmlab.testing import book_from_levels
from mmlab.types import LevelPricing, PricingSurface, Quote, QuoteSet, Side, Trade, VenueUpdate

S = 1_000_000_000


def _level(side: Side, fair_value: float, depth_bps: float) -> LevelPricing:
    price = fair_value * (1.0 - int(side) * depth_bps * 1e-4)
    return LevelPricing(
        side=side, level=0, price=price, depth_bps=depth_bps, fill_prob=0.5, edge_bps=depth_bps,
        adverse_selection_bps=0.0, impact_bps=0.0, fee_bps=1.5, carry_bps=0.0, expected_pnl_bps=0.1,
    )


def _surface(ts: int, fair_value: float, bid_bps: float, ask_bps: float) -> PricingSurface:
    return PricingSurface(
        ts_local=ts, fair_value=fair_value, sigma_per_sqrt_s=1e-4, reservation_price=fair_value,
        half_spread_bps=0.5 * (bid_bps + ask_bps), skew_bps=0.0,
        bids=(_level(Side.BUY, fair_value, bid_bps),), asks=(_level(Side.SELL, fair_value, ask_bps),),
    )


def _trade(ts: int, price: float, aggressor: Side) -> Trade:
    return Trade(ts_exch=ts, ts_local=ts, price=price, size=1.0, aggressor=aggressor)


def _update(ts: int, mid: float, trades=()) -> VenueUpdate:
    book = book_from_levels([(mid - 0.001, 5.0)], [(mid + 0.001, 5.0)], ts=ts)
    return VenueUpdate(ts_local=ts, book=book, trades=tuple(trades), fills=(), position=0.0, open_orders=())


def test_ledger_marks_counterfactual_fills_by_hand():
    ledger = CounterfactualLedger((0.0, 1.0, 2.0), horizon_s=10.0)
    ledger.set_levels(100.0, 1.0, 1.0)  # bids at 99.99, 99.98, 99.97; asks at 100.01, 100.02, 100.03
    # a sell at 99.975 reaches the first two bids; a buy at 100.015 the first ask only
    ledger.record_trades(0, np.array([99.975, 100.015]), np.array([-1.0, 1.0]))
    assert ledger.pending_batches == 1
    assert ledger.mature(9 * S, 100.0, fee_bps=0.5) is None
    gains = ledger.mature(10 * S, 100.005, fee_bps=0.5)
    expected = np.array([
        # bid at 99.99 marked at 100.005, ask at 100.01 marked at 100.005, each net of the fee
        (100.005 - 99.99) / 99.99 * 1e4 - 0.5 + (100.01 - 100.005) / 100.01 * 1e4 - 0.5,
        (100.005 - 99.98) / 99.98 * 1e4 - 0.5,
        0.0,
    ])
    np.testing.assert_allclose(gains, expected, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(ledger.fills, [2, 1, 0])
    np.testing.assert_allclose(ledger.cumulative_pnl_bps, expected)


def test_ledger_agrees_with_a_fill_by_fill_loop():
    rng = np.random.default_rng(2)
    candidates = (-1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 4.0)
    ledger = CounterfactualLedger(candidates, horizon_s=5.0)
    pending, total = [], np.zeros(len(candidates))
    mid = 100.0
    for cycle in range(400):
        ts = cycle * S // 4
        mid *= math.exp(rng.normal(0.0, 1e-4))
        n = rng.poisson(2.0)
        px = mid * (1.0 + rng.normal(0.0, 2e-4, n))
        agg = np.where(rng.random(n) < 0.5, 1.0, -1.0)
        ledger.record_trades(ts, px, agg)
        # the fill-by-fill reference
        bid_px = ledger._bid_px
        ask_px = ledger._ask_px
        if bid_px is not None:
            for p, g in zip(px, agg):
                for k in range(len(candidates)):
                    if g < 0 and p <= bid_px[k]:
                        pending.append((ts + 5 * S, k, 1, bid_px[k]))
                    if g > 0 and p >= ask_px[k]:
                        pending.append((ts + 5 * S, k, -1, ask_px[k]))
        ledger.mature(ts, mid, fee_bps=1.5)
        due = [f for f in pending if f[0] <= ts]
        pending = [f for f in pending if f[0] > ts]
        for _, k, s, p in due:
            total[k] += s * (mid - p) / p * 1e4 - 1.5
        ledger.set_levels(mid, 1.0 + rng.normal(0.0, 0.3), 1.0 + rng.normal(0.0, 0.3))
    np.testing.assert_allclose(ledger.cumulative_pnl_bps, total, rtol=1e-9, atol=1e-7)
    assert ledger.fills.sum() > 100


def test_trades_are_tested_against_the_previous_cycles_levels():
    evaluator = MarkoutEvaluator(EvaluatorConfig(counterfactual_adjust_bps=(0.0,), adverse_selection_horizon_s=1.0))
    mid = 100.0
    # cycle 1: a deep sell prints before any surface: nothing rests, no counterfactual fill
    evaluator.evaluate(_update(S, mid, [_trade(S, 99.0, Side.SELL)]), _surface(S, mid, 1.0, 1.0))
    assert evaluator.counterfactual.pending_batches == 0
    # cycle 2: the bid at 99.99 from cycle 1 rests; this cycle's surface is far away and must not matter
    evaluator.evaluate(_update(2 * S, mid, [_trade(2 * S, 99.99, Side.SELL)]), _surface(2 * S, mid, 50.0, 50.0))
    assert evaluator.counterfactual.pending_batches == 1
    # cycle 3: the surface of cycle 2 (50 bps) is too deep for a sell at 99.9
    evaluator.evaluate(_update(3 * S, mid, [_trade(3 * S, 99.9, Side.SELL)]), _surface(3 * S, mid, 1.0, 1.0))
    updates = evaluator.evaluate(_update(4 * S, mid))
    assert evaluator.counterfactual.fills.tolist() == [1]
    # bought at 99.99, marked at 100 a second later, net of the default maker fee
    assert updates.counterfactual_pnl_bps[0] == pytest.approx((100.0 - 99.99) / 99.99 * 1e4 - 1.5)


def test_a_baseline_without_surface_has_no_counterfactual_levels():
    evaluator = MarkoutEvaluator()
    for cycle in range(1, 50):
        updates = evaluator.evaluate(_update(cycle * S, 100.0, [_trade(cycle * S, 99.0, Side.SELL)]))
    assert evaluator.counterfactual.fills.sum() == 0
    assert updates.counterfactual_pnl_bps == (0.0,) * len(EvaluatorConfig().counterfactual_adjust_bps)
    assert updates.spread_adjust_bps == 0.0


def _run_market(evaluator: MarkoutEvaluator, rng: np.random.Generator, cycles: int, base_bps: float, use_quotes: bool) -> list[float]:
    """Prints land at an exponential depth d (mean 2 bps) from the mid and move it d / 2 their way
    (permanent impact). A level at depth D is filled by prints with d ≥ D and earns D − d/2, so
    the expected PnL per cycle is ∝ (D/2 − 1) e^{−D/2}, largest at D = 4 bps: with a base depth
    of 1 bps the best candidate is +3 bps (the next best, +4 and +2, earn 9% and 18% less)."""
    adjustments = []
    mid = 100.0
    adjust = 0.0
    for cycle in range(1, cycles):
        ts = cycle * S // 2
        trades = []
        impact = 0.0
        for _ in range(rng.poisson(1.0)):
            depth_bps = rng.exponential(2.0)
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            trades.append(_trade(ts, mid * (1.0 + int(side) * depth_bps * 1e-4), side))
            impact += int(side) * 0.5 * depth_bps * 1e-4
        mid *= math.exp(impact + rng.normal(0.0, 5e-5))
        depth = base_bps + adjust  # the actuary adds the adjustment it was sent
        surface = _surface(ts, mid, depth, depth)
        quotes = None
        if use_quotes:
            quotes = QuoteSet(
                ts_local=ts,
                bids=(Quote(side=Side.BUY, price=surface.bids[0].price, size=1.0),),
                asks=(Quote(side=Side.SELL, price=surface.asks[0].price, size=1.0),),
            )
        updates = evaluator.evaluate(_update(ts, mid, trades), surface, quotes)
        adjust = updates.spread_adjust_bps
        adjustments.append(adjust)
    return adjustments


@pytest.mark.parametrize("use_quotes", [False, True])
def test_the_spread_adjustment_learns_from_counterfactual_pnl_not_from_its_own_output(use_quotes):
    rng = np.random.default_rng(17)
    config = EvaluatorConfig(adverse_selection_horizon_s=5.0, maker_fee_bps=0.0)
    evaluator = MarkoutEvaluator(config)
    adjustments = _run_market(evaluator, rng, 12000, base_bps=1.0, use_quotes=use_quotes)
    pnl = np.array(evaluator.counterfactual.cumulative_pnl_bps)
    best = config.counterfactual_adjust_bps[int(pnl.argmax())]
    assert best == 3.0  # the theoretical optimum (see _run_market) is the realised best
    # the weights follow the counterfactual PnL: the adjustment ends at the best candidate
    assert evaluator.hedge.weights.argmax() == pnl.argmax()
    assert adjustments[-1] == pytest.approx(best, abs=0.25)
    # and did not run away: candidates are relative to the unadjusted depth
    assert min(config.counterfactual_adjust_bps) <= min(adjustments[100:])
    assert max(adjustments[100:]) <= max(config.counterfactual_adjust_bps)
    assert evaluator.hedge.regret <= 2.0 * evaluator.hedge.mixability_gap + 1e-9


def test_counterfactual_levels_are_relative_to_the_depth_before_the_adjustment_that_was_sent():
    rng = np.random.default_rng(3)
    config = EvaluatorConfig(adverse_selection_horizon_s=5.0, counterfactual_round_s=0.5)
    evaluator = MarkoutEvaluator(config)
    adjustments = _run_market(evaluator, rng, 600, base_bps=1.0, use_quotes=False)
    sent = adjustments[-1]
    assert sent != 0.0
    checked = 0
    for cycle in range(600, 700):
        ts = cycle * S // 2
        trades = [_trade(ts, 100.0 * (1.0 - 3e-4), Side.SELL), _trade(ts, 100.0 * (1.0 + 3e-4), Side.BUY)]
        # the actuary priced this surface with the adjustment sent on the previous call
        updates = evaluator.evaluate(_update(ts, 100.0, trades), _surface(ts, 100.0, 1.0 + sent, 1.0 + sent))
        expected = 100.0 * (1.0 - 1e-4 * np.maximum(1.0 + np.array(config.counterfactual_adjust_bps), 0.0))
        np.testing.assert_allclose(evaluator.counterfactual._bid_px, expected, rtol=1e-12)
        checked += updates.spread_adjust_bps != sent
        sent = updates.spread_adjust_bps
    assert checked > 10  # the adjustment moved on many of these calls
