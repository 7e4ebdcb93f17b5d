"""Aggressor events and trade-based sweeps: exact on hand-made prints, batch equals online."""

import math

import numpy as np
import pytest

from mmlab.data.synth import SynthConfig, generate
from mmlab.data.tape import EventKind
from mmlab.sensor.calibration import replay_updates
from mmlab.sensor.flow import (
    PrintFilter,
    SweepPressure,
    group_events,
    prints_from_updates,
    sweep_series,
    sweeps,
    trade_events,
    trade_prints,
)
from mmlab.testing import T0_NS as T0
from mmlab.testing import make_book, make_tape, make_update
from mmlab.types import Side, Trade

MS = 1_000_000
S = 1_000_000_000
NAN = float("nan")


def _trade(ts_exch, price, size, side, ts_local=None, trade_id=0):
    return Trade(
        ts_exch=ts_exch, ts_local=ts_local if ts_local is not None else ts_exch, price=price, size=size, aggressor=Side(side), trade_id=trade_id
    )


def _trade_rows(trades):
    """Tape rows ``(ts_local, kind, side, price, size, rate, trade_id)`` of hand-made trades."""
    return [(t.ts_local, int(EventKind.TRADE), int(t.aggressor), t.price, t.size, NAN, t.trade_id) for t in trades]


@pytest.fixture(scope="module")
def synthetic():
    """A 10-minute synthetic market and the updates a 100 ms poll sees."""
    market = generate(SynthConfig(seed=3, minutes=10.0))
    return market, list(replay_updates(market.tape, 0.1))


def test_prints_of_one_aggressor_in_one_exchange_tick_form_one_event():
    trades = [
        # a buy walking three levels at T0 (two prints at 100.00: two makers)
        _trade(T0, 100.00, 1.0, +1),
        _trade(T0, 100.00, 0.5, +1),
        _trade(T0, 100.01, 2.0, +1),
        _trade(T0, 100.03, 0.5, +1),
        # a sell in the same exchange tick is another event
        _trade(T0, 99.99, 1.0, -1),
        # a buy 1 ms later: a new event with one level
        _trade(T0 + MS, 100.03, 0.25, +1),
    ]
    events = trade_events(make_tape(_trade_rows(trades)))
    assert len(events) == 3
    np.testing.assert_array_equal(events.side, [1, -1, 1])
    np.testing.assert_array_equal(events.levels, [3, 1, 1])
    np.testing.assert_array_equal(events.prints, [4, 1, 1])
    np.testing.assert_allclose(events.size_coins, [4.0, 1.0, 0.25])
    np.testing.assert_allclose(events.notional_usd, [100.0 + 50.0 + 200.02 + 50.015, 99.99, 25.0075])
    # depth = side · (ln last − ln first) · 1e4
    np.testing.assert_allclose(events.depth_bps, [math.log(100.03 / 100.00) * 1e4, 0.0, 0.0])
    frame = sweeps(events, min_levels=2)
    assert len(frame) == 1 and frame["levels"].iloc[0] == 3


@pytest.mark.parametrize(
    ("price", "size"),
    [(NAN, 1.0), (math.inf, 1.0), (100.0, NAN), (100.0, -1.0), (100.0, 0.0), (-5.0, 1.0), (100.0, math.inf)],
)
def test_invalid_prints_are_ignored_and_counted_by_batch_and_online_alike(price, size):
    trades = [_trade(T0, 100.0, 1.0, +1), _trade(T0 + MS, price, size, +1), _trade(T0 + 2 * MS, 100.0, 1.0, -1)]
    prints = trade_prints(make_tape(_trade_rows(trades)))
    assert len(prints) == 2 and prints.dropped == 1
    keep = PrintFilter()
    assert [keep.accept(t) for t in trades] == [True, False, True]
    assert keep.dropped == 1


def test_a_print_whose_exchange_time_goes_back_is_dropped():
    # local order: exchange times 2, 1 (back), 3 ms after T0; the tape is ordered by local time
    trades = [
        _trade(T0 + 2 * MS, 100.0, 1.0, +1, ts_local=T0 + 10 * MS),
        _trade(T0 + 1 * MS, 100.0, 1.0, +1, ts_local=T0 + 11 * MS),
        _trade(T0 + 3 * MS, 100.0, 1.0, -1, ts_local=T0 + 12 * MS),
    ]
    rows = _trade_rows(trades)
    tape = make_tape(rows)
    # make_tape sets ts_exch = ts_local; rebuild with the exchange times of the trades
    from mmlab.data.tape import Tape

    columns = {c: getattr(tape, c) for c in ("ts_local", "kind", "side", "price", "size", "rate", "trade_id")}
    columns["ts_exch"] = np.array([t.ts_exch for t in trades])
    tape = Tape.from_columns(columns, instrument=tape.instrument)
    prints = trade_prints(tape)
    np.testing.assert_array_equal(prints.ts_exch, [T0 + 2 * MS, T0 + 3 * MS])
    assert prints.dropped == 1
    keep = PrintFilter()
    assert [keep.accept(t) for t in trades] == [True, False, True]


def test_sweep_pressure_exact_values_and_decay():
    book = make_book(bid=99.99, ask=100.00)
    feature = SweepPressure(decay_s=1.0, min_levels=2, weight="depth_bps")
    assert math.isnan(feature.value)
    sweep = [_trade(T0, 100.00, 1.0, +1), _trade(T0, 100.02, 1.0, +1)]
    feature.update(make_update(book, ts=T0, trades=sweep))
    depth = math.log(100.02 / 100.00) * 1e4
    assert feature.value == pytest.approx(depth, rel=1e-9)
    # one second later: e^{-1}; a seller sweep of two levels adds its negative depth
    feature.update(make_update(book, ts=T0 + S))
    assert feature.value == pytest.approx(depth * math.exp(-1.0), rel=1e-9)
    sell = [_trade(T0 + S, 99.99, 1.0, -1), _trade(T0 + S, 99.97, 3.0, -1)]
    feature.update(make_update(book, ts=T0 + S, trades=sell))
    sell_depth = math.log(99.99 / 99.97) * 1e4
    assert feature.value == pytest.approx(depth * math.exp(-1.0) - sell_depth, rel=1e-9)
    assert (feature.sweeps, feature.last_side, feature.last_levels, feature.last_size_coins) == (1, -1, 2, 4.0)
    # a single-level print is not a sweep
    feature.update(make_update(book, ts=T0 + 2 * S, trades=[_trade(T0 + 2 * S, 100.0, 9.0, +1)]))
    assert feature.value == pytest.approx((depth * math.exp(-2.0) - sell_depth * math.exp(-1.0)), rel=1e-9)


@pytest.mark.parametrize(("weight", "expected"), [("levels", 2.0), ("size_coins", 3.5)])
def test_sweep_weights(weight, expected):
    feature = SweepPressure(decay_s=2.0, weight=weight)
    trades = [_trade(T0, 100.0, 1.0, +1), _trade(T0, 100.01, 2.0, +1), _trade(T0, 100.02, 0.5, +1)]
    feature.update(make_update(None, ts=T0, trades=trades))
    assert feature.value == pytest.approx(expected)
    assert feature.name == f"sweep_{weight}"


def test_a_sweep_split_across_two_updates_counts_once_with_all_its_levels():
    feature = SweepPressure(decay_s=1.0, weight="levels")
    feature.update(make_update(None, ts=T0, trades=[_trade(T0, 100.0, 1.0, +1), _trade(T0, 100.01, 1.0, +1)]))
    assert feature.value == pytest.approx(1.0)
    feature.update(make_update(None, ts=T0, trades=[_trade(T0, 100.02, 1.0, +1)]))
    assert feature.value == pytest.approx(2.0)
    feature.update(make_update(None, ts=T0 + S, trades=[_trade(T0 + S, 99.0, 1.0, -1)]))
    assert feature.sweeps == 1
    assert feature.value == pytest.approx(2.0 * math.exp(-1.0))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_bad_books_and_prints_never_poison_the_sweep_state(bad):
    feature = SweepPressure(decay_s=1.0)
    broken = make_book(bid=bad, ask=100.0)
    crossed = make_book(bid=100.1, ask=100.0)
    feature.update(make_update(broken, ts=T0, trades=[_trade(T0, bad, 1.0, +1), _trade(T0, 100.0, bad, +1)]))
    feature.update(make_update(crossed, ts=T0 + MS))
    assert feature.value == 0.0 and feature.dropped == 2


def test_batch_sweep_series_equals_the_online_feature_on_a_synthetic_tape(synthetic):
    market, updates = synthetic
    online = SweepPressure(decay_s=0.5, weight="depth_bps")
    values = []
    for update in updates:
        online.update(update)
        values.append(online.value)
    prints, _ = prints_from_updates(updates)
    events = group_events(prints)
    assert (events.levels >= 2).sum() > 20  # the synthetic market does sweep
    batch = sweep_series(events, np.array([u.ts_local for u in updates]), decay_s=0.5, weight="depth_bps")
    np.testing.assert_allclose(values, batch, rtol=1e-9, atol=1e-12)
    # and the events found from the updates are those of the tape
    assert len(events) == len(trade_events(market.tape))


def test_events_recover_the_synthetic_orders(synthetic):
    market, _ = synthetic
    events = trade_events(market.tape)
    orders = market.orders[market.orders["filled_size"] > 0]
    # one event per order that filled anything (two orders in one ns never happen at these rates)
    assert len(events) == len(orders)
    np.testing.assert_array_equal(events.side, orders["side"].to_numpy())
    np.testing.assert_array_equal(events.levels, orders["levels_walked"].to_numpy())
    np.testing.assert_allclose(events.size_coins, orders["filled_size"].to_numpy(), rtol=1e-12)
