"""Recorded feed latency and response latency, on hand-made tapes, in both engines.

Each tape stamps every row with its own recorded delay ``d = ts_local − ts_exch`` (plus a 1.27 s
clock offset between the two columns, as in the Binance capture: the venue must not care). With
``RecordedFeedLatency(base_s)`` a row with delay d happened at ``E = L − (base + d − min d)``;
with ``ConstantLatency(f)``, at ``E = L − f``. Unless a test says otherwise the order latency is
20 ms, and the opening book (at 0 ms) is

    asks  100.2 x 6,  100.1 x 4
    bids  100.0 x 5,   99.9 x 3
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmlab.config import ConfigError, InstrumentSpec, SimConfig
from mmlab.data.tape import EventKind, Tape
from mmlab.sim import ConstantLatency, EmpiricalLatency, RecordedFeedLatency, SimVenue
from mmlab.types import ActionKind, OrderAction, Side

MS = 1_000_000  # ns
T0 = 1_700_000_000_000_000_000  # ns, local time of the first row
EXCHANGE_CLOCK_OFFSET_NS = 1_270 * MS  # the exchange's clock runs ahead of the recorder's
ORDER_S = 0.020


@pytest.fixture(params=["reference", "compiled"])
def engine(request) -> str:
    return request.param


def at(ms: float) -> int:
    return T0 + int(round(ms * MS))


def book_row(ms: float, side: int, price: float, size: float, delay_ms: float = 10.0) -> tuple:
    return (at(ms), EventKind.BOOK, side, price, size, math.nan, 0, delay_ms)


def clear_row(ms: float, delay_ms: float = 10.0) -> tuple:
    return (at(ms), EventKind.BOOK_CLEAR, 0, 0.0, 0.0, math.nan, 0, delay_ms)


def trade_row(ms: float, aggressor: int, price: float, size: float, delay_ms: float = 10.0) -> tuple:
    return (at(ms), EventKind.TRADE, aggressor, price, size, math.nan, 1, delay_ms)


def opening_book() -> list[tuple]:
    return [
        clear_row(0),
        book_row(0, Side.BUY, 100.0, 5.0),
        book_row(0, Side.BUY, 99.9, 3.0),
        book_row(0, Side.SELL, 100.1, 4.0),
        book_row(0, Side.SELL, 100.2, 6.0),
    ]


def make_tape(rows: list[tuple]) -> Tape:
    """(ts_local, kind, side, price, size, rate, trade_id, recorded delay in ms) rows."""
    ts_local, kind, side, price, size, rate, trade_id, delay_ms = (np.array(column) for column in zip(*rows))
    ts_exch = ts_local - np.round(delay_ms * MS).astype(np.int64) + EXCHANGE_CLOCK_OFFSET_NS
    return Tape.from_columns(
        {
            "ts_exch": ts_exch,
            "ts_local": ts_local,
            "kind": kind.astype(np.uint8),
            "side": side,
            "price": price,
            "size": size,
            "rate": rate,
            "trade_id": trade_id,
        },
        instrument=InstrumentSpec(coin="TEST"),
        source="hand-made",
    )


def venue(rows, engine: str, *, feed, response=None, order_s: float = ORDER_S):
    builder = SimVenue.builder(make_tape(rows), SimConfig(maker_fee_bps=1.5)).engine(engine)
    builder = builder.feed_latency(feed).order_latency(ConstantLatency(order_s))
    if response is not None:
        builder = builder.response_latency(response)
    return builder.build()


def place(side: Side, price: float, size: float) -> OrderAction:
    return OrderAction(kind=ActionKind.PLACE, side=side, price=price, size=size)


def cancel(order_id: int) -> OrderAction:
    return OrderAction(kind=ActionKind.CANCEL, side=Side.BUY, price=1.0, size=1.0, order_id=order_id)


# -- the recorded feed latency -------------------------------------------------------------------


def test_exchange_times_follow_the_recorded_delays_and_never_go_backwards():
    delays_ms = np.array([10.0, 10.0, 50.0, 10.0, 30.0, 12.0])
    local_ms = np.array([0.0, 20.0, 40.0, 60.0, 80.0, 81.0])
    ts_local = T0 + (local_ms * MS).astype(np.int64)
    ts_exch = ts_local - (delays_ms * MS).astype(np.int64) + EXCHANGE_CLOCK_OFFSET_NS
    exchange_ns = RecordedFeedLatency(base_s=0.004).exchange_times_ns(ts_local, ts_exch)
    # f = 4 ms + (d − 10 ms): E = L − f = [−4, 16, −4, 56, 56, 75] ms, then the running maximum
    expected_ms = np.array([-4.0, 16.0, 16.0, 56.0, 56.0, 75.0])
    assert exchange_ns.tolist() == (T0 + (expected_ms * MS).astype(np.int64)).tolist()
    assert np.all(np.diff(exchange_ns) >= 0)
    assert ConstantLatency(0.004).exchange_times_ns(ts_local, ts_exch).tolist() == (ts_local - 4 * MS).tolist()


def test_recorded_latency_decides_whether_an_order_precedes_a_sweep(engine):
    # The sweep is seen at 135 ms. Constant 10 ms feed: it happened at 125 ms, after our order
    # (sent at 100 ms, at the exchange at 120 ms), so it fills us. Recorded: its delay was 30 ms
    # against 10 ms for the fastest rows, f = 10 + 20 = 30 ms, so it happened at 105 ms: before.
    rows = opening_book() + [trade_row(135, Side.SELL, 99.9, 1.0, delay_ms=30.0)]
    outcomes = {}
    for name, feed in (("constant", ConstantLatency(0.010)), ("recorded", RecordedFeedLatency(base_s=0.010))):
        sim = venue(rows, engine, feed=feed)
        sim.poll(at(100))
        (order_id,) = sim.submit([place(Side.BUY, 100.0, 2.0)], at(100))
        update = sim.poll(at(200))
        outcomes[name] = [(fill.order_id, fill.size, fill.ts_local) for fill in update.fills]
    assert outcomes["constant"] == [(order_id, 2.0, at(135))]
    assert outcomes["recorded"] == []


def test_rows_stay_in_tape_order_at_the_exchange(engine):
    # Two updates of the bid at 100.0 seen at 20 ms (delay 10) and 40 ms (delay 50: it would have
    # happened at −10 ms, before the first). Clamped to 10 ms, both precede our order (at the
    # exchange at 12 ms), in tape order: we queue behind the later size, 7. With a constant
    # 10 ms feed the second happened at 30 ms, after us: we queue behind 1 and the growth joins
    # behind us.
    rows = opening_book() + [book_row(20, Side.BUY, 100.0, 1.0), book_row(40, Side.BUY, 100.0, 7.0, delay_ms=50.0)]
    fronts = {}
    for name, feed in (("constant", ConstantLatency(0.010)), ("recorded", RecordedFeedLatency(base_s=0.010))):
        sim = venue(rows, engine, feed=feed, order_s=0.012)
        sim.poll(at(0))
        (order_id,) = sim.submit([place(Side.BUY, 100.0, 1.0)], at(0))
        sim.poll(at(50))
        fronts[name] = sim.queue_ahead(order_id)
        assert sim.order_book.size_at(Side.BUY, 100.0) == 7.0
    assert fronts == {"constant": 1.0, "recorded": 7.0}


def test_a_tape_without_exchange_time_information_gives_the_constant_model(engine):
    # every row 25 ms late: d − min d = 0, so f = base_s on every row
    rows = [row[:-1] + (25.0,) for row in opening_book()]
    sweeps = (trade_row(ms, Side.SELL, 99.9 if ms % 90 == 40 else 100.0, 2.0) for ms in range(40, 400, 30))
    rows += [row[:-1] + (25.0,) for row in sweeps]
    tape = make_tape(rows)
    recorded = RecordedFeedLatency(base_s=0.010).exchange_times_ns(tape.ts_local, tape.ts_exch)
    assert recorded.tolist() == ConstantLatency(0.010).exchange_times_ns(tape.ts_local, tape.ts_exch).tolist()
    records = []
    for feed in (ConstantLatency(0.010), RecordedFeedLatency(base_s=0.010)):
        sim = venue(rows, engine, feed=feed)
        record = []
        for ms in range(10, 420, 25):
            update = sim.poll(at(ms))
            record.append((update.fills, update.open_orders, update.pending_cancels))
            actions = [cancel(order.order_id) for order in update.open_orders[:1]] + [place(Side.BUY, 100.0, 0.7)]
            sim.submit(actions, at(ms))
        records.append((record, sim.account(), sim.failed_cancels))
    assert records[0] == records[1]
    assert records[0][1].fills > 0


def test_config_builds_the_recorded_model_and_the_default_response_latency():
    tape = make_tape(opening_book())
    sim = SimVenue(tape, SimConfig(feed_latency_s=0.015, feed_latency_mode="recorded"))
    assert sim.feed_latency == RecordedFeedLatency(base_s=0.015)
    assert sim.response_latency == ConstantLatency(0.015)  # the feed's constant part
    sim = SimVenue(tape, SimConfig(feed_latency_s=0.015, response_latency_s=0.004))
    assert sim.feed_latency == ConstantLatency(0.015)
    assert sim.response_latency == ConstantLatency(0.004)
    samples = (0.001, 0.002, 0.009)
    sim = SimVenue(tape, SimConfig(response_latency_samples_s=samples, order_latency_samples_s=samples, latency_seed=4))
    # the two random streams are seeded apart
    assert sim.order_latency == EmpiricalLatency(samples, seed=4)
    assert sim.response_latency == EmpiricalLatency(samples, seed=5)


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"feed_latency_mode": "jittered"}, "feed_latency_mode"),
        ({"response_latency_s": -0.001}, "response_latency_s"),
        ({"response_latency_s": math.nan}, "response_latency_s"),
        ({"response_latency_samples_s": (0.01, -0.01)}, r"response_latency_samples_s\[1\]"),
        ({"response_latency_samples_s": [0.01]}, "response_latency_samples_s"),
        ({"engine": "jit"}, "engine"),
    ],
)
def test_bad_latency_settings_raise_naming_the_field(fields, field):
    with pytest.raises(ConfigError, match=field):
        SimConfig(**fields)


def test_new_fields_round_trip_through_a_dict():
    config = SimConfig(feed_latency_mode="recorded", response_latency_s=0.002, response_latency_samples_s=(0.001, 0.003))
    assert SimConfig.from_dict(config.to_dict()) == config
    assert SimConfig.from_dict(SimConfig().to_dict()).response_latency_s is None


def test_feed_latency_models_validate_their_input():
    for bad in (-0.1, math.inf, True, "0.1"):
        with pytest.raises(ValueError, match="base_s"):
            RecordedFeedLatency(base_s=bad)
    with pytest.raises(ValueError, match="RecordedFeedLatency"):
        SimVenue.builder(make_tape(opening_book())).feed_latency(EmpiricalLatency((0.01,), 1)).build()


# -- the response latency ------------------------------------------------------------------------


@pytest.mark.parametrize("response_s, known_ms", [(0.005, 35.0), (0.050, 80.0)])
def test_a_rejection_reaches_us_one_response_latency_after_it_happened(engine, response_s, known_ms):
    sim = venue(opening_book(), engine, feed=ConstantLatency(0.010), response=ConstantLatency(response_s))
    sim.poll(at(10))
    (order_id,) = sim.submit([place(Side.BUY, 100.1, 1.0)], at(10))  # at the ask: post-only rejects
    # the exchange sees it at 30 ms
    update = sim.poll(at(known_ms - 0.001))
    assert [order.order_id for order in update.open_orders] == [order_id] and sim.rejections == 0
    update = sim.poll(at(known_ms))
    assert update.open_orders == () and sim.rejections == 1


def test_a_cancel_confirmation_reaches_us_one_response_latency_after_the_cancel_arrived(engine):
    sim = venue(opening_book(), engine, feed=ConstantLatency(0.010), response=ConstantLatency(0.005))
    sim.poll(at(10))
    (order_id,) = sim.submit([place(Side.BUY, 100.0, 1.0)], at(10))
    sim.poll(at(100))
    sim.submit([cancel(order_id)], at(100))  # at the exchange at 120 ms, confirmed to us at 125 ms
    update = sim.poll(at(124.999))
    assert [order.order_id for order in update.pending_cancels] == [order_id]
    update = sim.poll(at(125))
    assert update.pending_cancels == () and update.open_orders == () and sim.failed_cancels == 0


def test_a_fast_answer_can_report_a_failed_cancel_before_the_fill_reaches_us(engine):
    # Feed 50 ms, answers 5 ms. The sweep seen at 125 ms happened at 75 ms; our cancel, sent at
    # 60 ms, arrives at 80 ms: too late. Its failure is known at 85 ms; the fill comes with its
    # row at 125 ms. With answers as slow as the feed, the failure is known only at 130 ms.
    rows = opening_book() + [trade_row(125, Side.SELL, 99.9, 1.0)]
    sims = {}
    for response_s in (0.005, 0.050):
        sim = venue(rows, engine, feed=ConstantLatency(0.050), response=ConstantLatency(response_s))
        sim.poll(at(10))
        (order_id,) = sim.submit([place(Side.BUY, 100.0, 2.0)], at(10))
        sim.poll(at(60))
        sim.submit([cancel(order_id)], at(60))
        sims[response_s] = sim

    fast = sims[0.005]
    update = fast.poll(at(84.999))
    assert fast.failed_cancels == 0 and [order.order_id for order in update.pending_cancels] == [order_id]
    update = fast.poll(at(85))
    assert fast.failed_cancels == 1 and update.pending_cancels == () and update.open_orders == ()
    assert update.fills == () and update.position == 0.0 and fast.account().fills == 0

    slow = sims[0.050]
    update = slow.poll(at(124.999))
    assert slow.failed_cancels == 0 and [order.order_id for order in update.pending_cancels] == [order_id]
    assert update.fills == () and slow.account().fills == 0

    for sim in (fast, slow):
        update = sim.poll(at(125))
        (fill,) = update.fills
        assert (fill.order_id, fill.size, fill.ts_local) == (order_id, 2.0, at(125))
        # the fill completed the order: it is no longer pending, whatever the cancel's answer
        assert update.position == 2.0 and update.pending_cancels == ()
        assert sim.account().cash_usd == pytest.approx(-200.0 * (1 + 1.5e-4), rel=1e-12)
    assert slow.failed_cancels == 0
    slow.poll(at(130))
    assert slow.failed_cancels == 1


def test_a_cancel_that_arrives_before_the_sweep_wins_even_before_we_see_it(engine):
    # the sweep seen at 135 ms happened at 85 ms, after the cancel arrived (80 ms)
    rows = opening_book() + [trade_row(135, Side.SELL, 99.9, 1.0)]
    sim = venue(rows, engine, feed=ConstantLatency(0.050), response=ConstantLatency(0.005))
    sim.poll(at(10))
    (order_id,) = sim.submit([place(Side.BUY, 100.0, 2.0)], at(10))
    sim.poll(at(60))
    sim.submit([cancel(order_id)], at(60))
    update = sim.poll(at(85))
    assert update.pending_cancels == () and update.open_orders == () and sim.failed_cancels == 0
    assert sim.poll(at(300)).fills == () and sim.account().fills == 0


def test_drawn_response_latencies_replay_identically_and_keep_answers_in_order(engine):
    samples_s = tuple(np.random.default_rng(2).gamma(2.0, 0.01, size=40))
    rows = opening_book() + [trade_row(ms, Side.SELL, 100.0 if ms % 60 else 99.9, 1.5) for ms in range(40, 1500, 20)]

    def run(seed: int):
        sim = venue(rows, engine, feed=ConstantLatency(0.010), response=EmpiricalLatency(samples_s, seed=seed))
        record = []
        for ms in range(10, 1500, 15):
            update = sim.poll(at(ms))
            record.append((update.fills, update.open_orders, update.pending_cancels, sim.failed_cancels))
            actions = [cancel(order.order_id) for order in update.open_orders[:1]] + [place(Side.BUY, 100.0, 0.5)]
            sim.submit(actions, at(ms))
        return record

    first = run(7)
    assert first == run(7)
    assert first != run(8)
    assert any(record[0] for record in first)
