"""Queue position, latency and fee models, alone and inside SimVenue, and the fluent builder.

Expected values are computed by hand in each test from hftbacktest's definitions
(``hftbacktest/src/backtest/models/queue.rs``): with ``p = prob(front, back)`` the probability
that a cancellation was behind us, ``front ← front − (1 − p)·chg + min(back − p·chg, 0)``.
Unless a test says otherwise the feed latency is 10 ms and the order latency 20 ms.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmlab.config import ConfigError, SimConfig
from mmlab.data.tape import EventKind
from mmlab.sim import (
    ConstantLatency,
    EmpiricalLatency,
    ProbabilisticQueue,
    RiskAverseQueue,
    SimVenue,
    fee_schedule_for_tier,
)
from mmlab.sim.models import queue_model_from_name
from mmlab.testing import make_tape
from mmlab.types import ActionKind, OrderAction, Side

MS = 1_000_000  # ns
T0 = 1_700_000_000_000_000_000  # ns, local time of the first row
FEED_S = 0.010
CONFIG = SimConfig(feed_latency_s=FEED_S, order_latency_s=0.020, maker_fee_bps=1.5)


def at(ms: float) -> int:
    """Local time ``ms`` milliseconds after the first row, ns."""
    return T0 + int(round(ms * MS))


def book_row(ms: float, side: int, price: float, size: float) -> tuple:
    return (at(ms), EventKind.BOOK, side, price, size, math.nan, 0)


def trade_row(ms: float, aggressor: int, price: float, size: float) -> tuple:
    return (at(ms), EventKind.TRADE, aggressor, price, size, math.nan, 1)


def opening_book(bid_size: float = 5.0) -> list[tuple]:
    """asks 100.2 x 6, 100.1 x 4; bids 100.0 x ``bid_size``, 99.9 x 3; at 0 ms."""
    return [
        (at(0), EventKind.BOOK_CLEAR, 0, 0.0, 0.0, math.nan, 0),
        book_row(0, Side.BUY, 100.0, bid_size),
        book_row(0, Side.BUY, 99.9, 3.0),
        book_row(0, Side.SELL, 100.1, 4.0),
        book_row(0, Side.SELL, 100.2, 6.0),
    ]


def place(side: Side, price: float, size: float) -> OrderAction:
    return OrderAction(kind=ActionKind.PLACE, side=side, price=price, size=size)


def cancel(order_id: int) -> OrderAction:
    return OrderAction(kind=ActionKind.CANCEL, side=Side.BUY, price=1.0, size=1.0, order_id=order_id)


class ScriptedLatency:
    """Test stub: hands out the given latencies (s) in order, then repeats the last."""

    def __init__(self, *latencies_s: float) -> None:
        self.latencies_ns = [round(x * 1e9) for x in latencies_s]

    def sampler(self):
        remaining = list(self.latencies_ns)
        return lambda: remaining.pop(0) if len(remaining) > 1 else remaining[0]


# -- queue models alone ------------------------------------------------------------------------

# level 10, 6 ahead of us (front 6, back 4), then 4 cancel: the level goes 10 -> 6
FRONT, PREV, NEW = 6.0, 10.0, 6.0


def test_risk_averse_keeps_the_front_when_the_level_shrinks_to_it():
    assert RiskAverseQueue().on_depth(FRONT, PREV, NEW, traded=0.0) == 6.0
    assert RiskAverseQueue().on_depth(FRONT, PREV, 2.0, traded=0.0) == 2.0  # clamped to the level


@pytest.mark.parametrize(
    "model, p_behind",
    [
        # PowerProbQueueFunc(2): p = 4² / (4² + 6²) = 16/52
        (ProbabilisticQueue.power(2), 16 / 52),
        # PowerProbQueueFunc(1): p = 4 / 10
        (ProbabilisticQueue.power(1), 4 / 10),
        # LogProbQueueFunc: p = log 5 / (log 5 + log 7)
        (ProbabilisticQueue.log(), math.log(5) / (math.log(5) + math.log(7))),
        # PowerProbQueueFunc2(2): p = 4² / 10² = 16/100
        (ProbabilisticQueue.power2(2), 16 / 100),
        # LogProbQueueFunc2: p = log 5 / log 11
        (ProbabilisticQueue.log2(), math.log(5) / math.log(11)),
        # PowerProbQueueFunc3(3): p = 1 − (6/10)³ = 0.784
        (ProbabilisticQueue.power3(3), 1 - 0.6**3),
    ],
    ids=lambda value: getattr(value, "name", ""),
)
def test_probabilistic_models_take_the_front_share_of_a_cancellation(model, p_behind):
    # back − p·chg = 4 − 4p >= 0, so front ← 6 − (1 − p)·4
    expected = 6.0 - (1.0 - p_behind) * 4.0
    assert model.on_depth(FRONT, PREV, NEW, traded=0.0) == pytest.approx(expected, rel=1e-12)
    assert 0.0 < expected < 6.0


def test_power_two_worked_example():
    # 4 cancel out of a level of 10 with 6 ahead: 4 · 36/52 = 2.769... of them were ahead of us
    assert ProbabilisticQueue.power(2).on_depth(6.0, 10.0, 6.0, 0.0) == pytest.approx(6.0 - 4.0 * 36.0 / 52.0)


def test_a_cancellation_larger_than_the_back_takes_the_rest_from_the_front():
    # front 2, back 8, 9 cancel; power(1): p = 0.8, front ← 2 − 0.2·9 + min(8 − 7.2, 0) = 0.2
    assert ProbabilisticQueue.power(1).on_depth(2.0, 10.0, 1.0, 0.0) == pytest.approx(0.2)
    # front 3, back 1, 4 cancel, power(2): 3 − 0.9·4 + min(1 − 0.4, 0) < 0 is clamped to 0
    assert ProbabilisticQueue.power(2).on_depth(3.0, 4.0, 0.0, 0.0) == 0.0


def test_decrease_explained_by_trades_is_not_a_cancellation():
    # 2 traded at the level; the book then shows 10 -> 8: nothing was cancelled
    assert ProbabilisticQueue.power(2).on_depth(4.0, 10.0, 8.0, traded=2.0) == 4.0
    # growth leaves the front alone
    assert ProbabilisticQueue.log().on_depth(4.0, 10.0, 12.0, traded=0.0) == 4.0


def test_queue_models_by_name():
    assert queue_model_from_name("risk_averse") == RiskAverseQueue()
    assert queue_model_from_name("power:2").name == "power:2"
    assert queue_model_from_name("power3:3").on_depth(6, 10, 6, 0) == ProbabilisticQueue.power3(3).on_depth(6, 10, 6, 0)
    for bad in ("power", "power:x", "cubic", "power:-1"):
        with pytest.raises(ValueError):
            queue_model_from_name(bad)
    with pytest.raises(ConfigError, match="queue model"):
        SimConfig(queue_model="cubic")


# -- queue models inside the venue -------------------------------------------------------------


def _cancellation_tape() -> list[tuple]:
    # bid 100.0 x 6 when we join; 4 newcomers join behind us; then 4 cancel
    return opening_book(bid_size=6.0) + [book_row(100, Side.BUY, 100.0, 10.0), book_row(200, Side.BUY, 100.0, 6.0)]


@pytest.mark.parametrize(
    "model, expected_front",
    [(RiskAverseQueue(), 6.0), (ProbabilisticQueue.power(2), 6.0 - 4.0 * 36.0 / 52.0)],
    ids=["risk_averse", "power2"],
)
def test_venue_applies_the_queue_model_to_a_cancellation_at_our_level(model, expected_front):
    venue = SimVenue.builder(make_tape(_cancellation_tape()), CONFIG).queue(model).build()
    venue.poll(at(10))
    (order_id,) = venue.submit([place(Side.BUY, 100.0, 1.0)], at(10))
    venue.poll(at(150))
    assert venue.queue_ahead(order_id) == 6.0
    venue.poll(at(250))
    assert venue.queue_ahead(order_id) == pytest.approx(expected_front, rel=1e-12)


def test_venue_trade_then_book_row_is_not_double_counted():
    rows = opening_book(bid_size=6.0) + [
        book_row(100, Side.BUY, 100.0, 10.0),
        trade_row(150, Side.SELL, 100.0, 2.0),  # 6 ahead -> 4
        book_row(150, Side.BUY, 100.0, 8.0),  # the book shows the trade: no cancellation
        book_row(200, Side.BUY, 100.0, 4.0),  # now 4 cancel: front 4, back 4
    ]
    venue = SimVenue.builder(make_tape(rows), CONFIG).queue(ProbabilisticQueue.power(2)).build()
    venue.poll(at(10))
    (order_id,) = venue.submit([place(Side.BUY, 100.0, 1.0)], at(10))
    venue.poll(at(160))
    assert venue.queue_ahead(order_id) == pytest.approx(4.0)
    venue.poll(at(250))
    # p = 4²/(4² + 4²) = 1/2: front ← 4 − 0.5·4 = 2
    assert venue.queue_ahead(order_id) == pytest.approx(2.0)


LEVEL_EVENTS = st.lists(
    st.tuples(st.sampled_from(["book", "trade"]), st.floats(min_value=0.0, max_value=20.0, allow_nan=False)),
    min_size=1,
    max_size=25,
)


@given(events=LEVEL_EVENTS)
def test_probabilistic_queues_never_leave_us_further_back_than_risk_averse(events):
    rows = opening_book(bid_size=6.0)
    for index, (kind, size) in enumerate(events):
        ms = 100.0 + 10.0 * index
        if kind == "book":
            rows.append(book_row(ms, Side.BUY, 100.0, size))
        else:
            rows.append(trade_row(ms, Side.SELL, 100.0, max(size, 0.01)))
    tape = make_tape(rows)
    models = [RiskAverseQueue(), ProbabilisticQueue.power(2), ProbabilisticQueue.log(), ProbabilisticQueue.power3(3)]
    venues = [SimVenue.builder(tape, CONFIG).queue(model).build() for model in models]
    for venue in venues:
        venue.poll(at(10))
        venue.submit([place(Side.BUY, 100.0, 1e6)], at(10))  # never filled: it rests through every trade
    for index in range(len(events) + 1):
        fronts = []
        for venue in venues:
            venue.poll(at(95.0 + 10.0 * index))
            front = venue.queue_ahead(1)
            assert 0.0 <= front <= venue.order_book.size_at(Side.BUY, 100.0) + 1e-12
            fronts.append(front)
        risk_averse, *probabilistic = fronts
        assert all(front <= risk_averse + 1e-12 for front in probabilistic)


# -- latency -----------------------------------------------------------------------------------


def test_an_order_is_not_live_before_its_drawn_entry_latency():
    latency = EmpiricalLatency((0.005, 0.030, 0.080, 0.200), seed=3)
    drawn_ns = latency.sampler()()  # the venue's sampler starts from the same seed
    venue = SimVenue.builder(make_tape(opening_book()), CONFIG).order_latency(latency).build()
    venue.poll(at(10))
    (order_id,) = venue.submit([place(Side.BUY, 100.0, 1.0)], at(10))
    # live at the exchange at A = t + drawn; we see the exchange at A once our clock is A + f
    seen_live_ns = at(10) + drawn_ns + round(FEED_S * 1e9)
    venue.poll(seen_live_ns - 1)
    with pytest.raises(KeyError):
        venue.queue_ahead(order_id)
    venue.poll(seen_live_ns)
    assert venue.queue_ahead(order_id) == 5.0


def _run_with_latency(latency) -> tuple:
    rows = opening_book() + [trade_row(ms, Side.SELL, 99.9 if (ms // 20) % 3 == 0 else 100.0, 1.5) for ms in range(50, 1000, 20)]
    venue = SimVenue.builder(make_tape(rows), CONFIG).order_latency(latency).build()
    fills = []
    for ms in range(10, 1000, 15):
        update = venue.poll(at(ms))
        fills.extend(update.fills)
        actions = [cancel(order.order_id) for order in update.open_orders[:1]]
        venue.submit(actions + [place(Side.BUY, 100.0, 0.5)], at(ms))
    return tuple(fills), venue.account(), venue.failed_cancels


def test_seeded_empirical_latency_replays_identically():
    samples_s = tuple(np.random.default_rng(11).gamma(2.0, 0.01, size=50))
    first = _run_with_latency(EmpiricalLatency(samples_s, seed=7))
    second = _run_with_latency(EmpiricalLatency(samples_s, seed=7))
    assert first == second
    assert len(first[0]) > 0
    assert _run_with_latency(EmpiricalLatency(samples_s, seed=8)) != first


def test_a_later_action_never_overtakes_an_earlier_one():
    # the place draws 80 ms, the cancel 1 ms: the cancel must still arrive after the place
    rows = opening_book() + [trade_row(200, Side.SELL, 99.9, 1.0)]
    venue = SimVenue.builder(make_tape(rows), CONFIG).order_latency(ScriptedLatency(0.080, 0.001)).build()
    venue.poll(at(10))
    (order_id,) = venue.submit([place(Side.BUY, 100.0, 2.0)], at(10))
    venue.submit([cancel(order_id)], at(20))
    update = venue.poll(at(300))
    assert update.fills == () and update.open_orders == () and update.pending_cancels == ()
    assert venue.failed_cancels == 0  # the cancel found the order resting and removed it


def test_a_cancel_with_a_long_drawn_latency_loses_the_race_to_a_fill():
    # place arrives at 30 ms; the cancel sent at 100 ms draws 30 ms and arrives at 130 ms;
    # the sweep seen at local 135 ms happened at exchange 125 ms: the fill wins
    rows = opening_book() + [trade_row(135, Side.SELL, 99.9, 1.0)]
    venue = SimVenue.builder(make_tape(rows), CONFIG).order_latency(ScriptedLatency(0.020, 0.030)).build()
    venue.poll(at(10))
    (order_id,) = venue.submit([place(Side.BUY, 100.0, 2.0)], at(10))
    venue.poll(at(100))
    venue.submit([cancel(order_id)], at(100))
    update = venue.poll(at(200))
    (fill,) = update.fills
    assert (fill.order_id, fill.size) == (order_id, 2.0)
    assert venue.failed_cancels == 1


def test_feed_latency_must_be_constant():
    with pytest.raises(ValueError, match="ConstantLatency"):
        SimVenue.builder(make_tape(opening_book()), CONFIG).feed_latency(EmpiricalLatency((0.01,), 1)).build()


def test_latency_models_validate_their_input():
    with pytest.raises(ValueError):
        ConstantLatency(-0.1)
    with pytest.raises(ValueError):
        EmpiricalLatency((), seed=0)
    with pytest.raises(ValueError):
        EmpiricalLatency((0.01, math.nan), seed=0)


# -- fees --------------------------------------------------------------------------------------


def test_hyperliquid_fee_tiers():
    assert (fee_schedule_for_tier("vip0").maker_bps, fee_schedule_for_tier("vip0").taker_bps) == (1.5, 4.5)
    assert (fee_schedule_for_tier("vip3").maker_bps, fee_schedule_for_tier("vip3").taker_bps) == (0.4, 3.0)
    rebate = fee_schedule_for_tier("vip4+mm3")
    assert (rebate.maker_bps, rebate.taker_bps) == (-0.3, 2.8)
    with pytest.raises(ValueError, match="vip9"):
        fee_schedule_for_tier("vip9")


def test_the_default_config_charges_the_base_tier():
    default = SimConfig()
    base = fee_schedule_for_tier("vip0")
    assert (default.maker_fee_bps, default.taker_fee_bps) == (base.maker_bps, base.taker_bps)


def test_a_fee_tier_config_must_charge_that_tier():
    config = SimConfig.for_fee_tier("vip2", feed_latency_s=0.01)
    assert (config.maker_fee_bps, config.taker_fee_bps, config.fee_tier) == (0.8, 3.5, "vip2")
    assert SimConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="for_fee_tier"):
        config.replace(maker_fee_bps=1.0)
    with pytest.raises(ConfigError, match="unknown"):
        SimConfig.for_fee_tier("gold")


@pytest.mark.parametrize("tier, maker_bps", [("vip0", 1.5), ("vip2", 0.8), ("vip4", 0.0), ("vip4+mm2", -0.2)])
def test_each_fill_pays_the_maker_fee_of_the_tier(tier, maker_bps):
    rows = opening_book() + [trade_row(100, Side.SELL, 100.0, 6.0), trade_row(200, Side.SELL, 99.9, 1.0)]
    for venue in (
        SimVenue(make_tape(rows), SimConfig.for_fee_tier(tier, feed_latency_s=0.01, order_latency_s=0.02)),
        SimVenue.builder(make_tape(rows), CONFIG).fee_tier(tier).build(),
    ):
        venue.poll(at(10))
        venue.submit([place(Side.BUY, 100.0, 3.0)], at(10))
        fills = venue.poll(at(300)).fills
        # 5 ahead: 1 fills at 100 ms, the sweep fills the other 2 at 200 ms
        assert [fill.size for fill in fills] == [pytest.approx(1.0), pytest.approx(2.0)]
        for fill in fills:
            assert fill.is_maker
            # fee_usd = maker_bps · 1e-4 · price · size
            assert fill.fee_usd == pytest.approx(maker_bps * 1e-4 * 100.0 * fill.size, abs=1e-15)
        assert venue.account().fees_usd == pytest.approx(maker_bps * 1e-4 * 300.0, abs=1e-15)


# -- the builder -------------------------------------------------------------------------------


def test_builder_and_config_build_the_same_venue():
    samples_s = (0.004, 0.012, 0.020, 0.055)
    config = SimConfig(
        feed_latency_s=0.01,
        order_latency_s=0.02,
        maker_fee_bps=0.8,
        taker_fee_bps=3.5,
        queue_model="power:2",
        order_latency_samples_s=samples_s,
        latency_seed=5,
    )
    tape_rows = opening_book() + [
        book_row(ms, Side.BUY, 100.0, 5.0 + (ms // 10) % 4) for ms in range(40, 1000, 10)
    ] + [trade_row(ms + 5, Side.SELL, 99.9 if (ms - 40) % 90 == 0 else 100.0, 1.0) for ms in range(40, 1000, 30)]
    tape_rows.sort(key=lambda row: row[0])
    tape = make_tape(tape_rows)
    from_config = SimVenue(tape, config, book_levels=5)
    built = (
        SimVenue.builder(tape)
        .queue(ProbabilisticQueue.power(2))
        .order_latency(EmpiricalLatency(samples_s, seed=5))
        .feed_latency(ConstantLatency(0.01))
        .fees(maker_bps=0.8, taker_bps=3.5)
        .book_levels(5)
        .build()
    )
    records = []
    for venue in (from_config, built):
        record = []
        for ms in range(10, 1000, 25):
            update = venue.poll(at(ms))
            record.append((update.fills, update.open_orders, update.book.bid_sz.tolist()))
            venue.submit([place(Side.BUY, 100.0, 0.4)] + [cancel(o.order_id) for o in update.open_orders[:1]], at(ms))
        records.append((record, venue.account(), venue.failed_cancels))
    assert records[0] == records[1]
    assert records[0][1].fills > 0
