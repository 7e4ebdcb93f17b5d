"""SimVenue: queue position, latency, post-only rejection, cancels, fees, funding and accounting.

Every test replays a small hand-made tape whose right answer can be stated, on both engines (the
reference SimVenue and the compiled FastSimVenue). Unless a test says
otherwise the feed latency is 10 ms and the order latency 20 ms, so an action submitted at local
time t reaches the exchange at t + 20 ms and a tape row seen at local time L happened at the
exchange at L − 10 ms. The opening book is

    asks  100.2 x 6,  100.1 x 4
    bids  100.0 x 5,   99.9 x 3
"""

from __future__ import annotations

import math

import pytest

from mmlab.config import SimConfig
from mmlab.data.tape import EventKind, Tape
from mmlab.sim import make_sim_venue
from mmlab.testing import make_tape as shared_make_tape
from mmlab.types import ActionKind, OrderAction, Side

MS = 1_000_000  # ns
T0 = 1_700_000_000_000_000_000  # ns, local time of the first row
# the recording's exchange clock runs 3 ms ahead of the local one: the venue must not care
EXCHANGE_CLOCK_OFFSET_NS = 3 * MS
CONFIG = SimConfig(feed_latency_s=0.010, order_latency_s=0.020, maker_fee_bps=1.5)


def at(ms: float) -> int:
    """Local time ``ms`` milliseconds after the first row, ns."""
    return T0 + int(round(ms * MS))


def book_row(ms: float, side: int, price: float, size: float) -> tuple:
    return (at(ms), EventKind.BOOK, side, price, size, math.nan, 0)


def clear_row(ms: float) -> tuple:
    return (at(ms), EventKind.BOOK_CLEAR, 0, 0.0, 0.0, math.nan, 0)


def trade_row(ms: float, aggressor: int, price: float, size: float, trade_id: int = 1) -> tuple:
    return (at(ms), EventKind.TRADE, aggressor, price, size, math.nan, trade_id)


def funding_row(ms: float, mark_price: float, rate: float) -> tuple:
    return (at(ms), EventKind.FUNDING, 0, mark_price, 0.0, rate, 0)


def context_row(ms: float, mark_price: float, predicted_rate: float) -> tuple:
    return (at(ms), EventKind.ASSET_CTX, 0, mark_price, 1_000.0, predicted_rate, 0)


def opening_book(ms: float = 0.0) -> list[tuple]:
    return [
        clear_row(ms),
        book_row(ms, Side.BUY, 100.0, 5.0),
        book_row(ms, Side.BUY, 99.9, 3.0),
        book_row(ms, Side.SELL, 100.1, 4.0),
        book_row(ms, Side.SELL, 100.2, 6.0),
    ]


def make_tape(rows: list[tuple]) -> Tape:
    """A tape from (ts_local, kind, side, price, size, rate, trade_id) rows, in that order."""
    return shared_make_tape(rows, exchange_clock_offset_ns=EXCHANGE_CLOCK_OFFSET_NS)


_ENGINE = {"name": "reference"}


@pytest.fixture(autouse=True, params=["reference", "compiled"])
def engine(request) -> str:
    """Every test runs on both engines."""
    _ENGINE["name"] = request.param
    return request.param


def make_venue(rows: list[tuple], config: SimConfig = CONFIG, **kwargs):
    return make_sim_venue(make_tape(rows), config.replace(engine=_ENGINE["name"]), **kwargs)


def place(side: Side, price: float, size: float) -> OrderAction:
    return OrderAction(kind=ActionKind.PLACE, side=side, price=price, size=size)


def cancel(order_id: int) -> OrderAction:
    return OrderAction(kind=ActionKind.CANCEL, side=Side.BUY, price=1.0, size=1.0, order_id=order_id)


def open_sizes(update) -> dict[int, float]:
    return {order.order_id: order.size for order in update.open_orders}


# -- queue position ----------------------------------------------------------------------------


def test_order_behind_five_coins_fills_only_after_five_trade_then_partially_then_fully():
    venue = make_venue(
        opening_book()
        + [
            trade_row(100, Side.SELL, 100.0, 3.0),  # 5 ahead -> 2 ahead, no fill
            trade_row(200, Side.SELL, 100.0, 3.0),  # 2 ahead consumed, 1 of our 2 filled
            trade_row(300, Side.SELL, 100.0, 5.0),  # our last coin filled
        ]
    )
    venue.poll(at(10))
    (order_id,) = venue.submit([place(Side.BUY, 100.0, 2.0)], at(10))
    assert order_id == 1

    update = venue.poll(at(150))
    assert update.fills == () and venue.queue_ahead(order_id) == pytest.approx(2.0)
    assert open_sizes(update) == {order_id: 2.0}

    update = venue.poll(at(250))
    (fill,) = update.fills
    assert (fill.order_id, fill.side, fill.price, fill.size) == (order_id, Side.BUY, 100.0, pytest.approx(1.0))
    assert fill.is_maker and fill.ts_local == at(200)
    assert update.position == pytest.approx(1.0)
    assert open_sizes(update) == {order_id: pytest.approx(1.0)}

    update = venue.poll(at(350))
    (fill,) = update.fills
    assert (fill.price, fill.size, fill.ts_local) == (100.0, pytest.approx(1.0), at(300))
    assert update.open_orders == () and update.position == pytest.approx(2.0)


def test_trade_at_a_worse_price_sweeps_through_and_fills_completely():
    venue = make_venue(opening_book() + [trade_row(100, Side.SELL, 99.9, 0.5)])
    venue.poll(at(10))
    (order_id,) = venue.submit([place(Side.BUY, 100.0, 2.0)], at(10))
    update = venue.poll(at(200))
    (fill,) = update.fills
    # the whole order fills at our price, whatever the print's size and the queue ahead
    assert (fill.order_id, fill.price, fill.size) == (order_id, 100.0, 2.0)
    assert update.position == 2.0 and update.open_orders == ()


def test_trade_at_a_better_price_or_on_our_side_does_not_fill():
    venue = make_venue(
        opening_book()
        + [
            trade_row(100, Side.SELL, 100.1, 9.0),  # a sell above our bid
            trade_row(110, Side.BUY, 100.0, 9.0),  # a buy lifts asks, never our bid
        ]
    )
    venue.poll(at(10))
    venue.submit([place(Side.BUY, 100.0, 2.0)], at(10))
    update = venue.poll(at(200))
    assert update.fills == () and update.position == 0.0


def test_ask_mirror_buy_aggressor_consumes_queue_then_fills():
    venue = make_venue(opening_book() + [trade_row(100, Side.BUY, 100.1, 5.0)])
    venue.poll(at(10))
    (order_id,) = venue.submit([place(Side.SELL, 100.1, 3.0)], at(10))
    update = venue.poll(at(200))
    (fill,) = update.fills
    # 4 displayed ahead of us, so a 5-coin buy leaves 1 coin for us
    assert (fill.order_id, fill.side, fill.price, fill.size) == (order_id, Side.SELL, 100.1, pytest.approx(1.0))
    assert update.position == pytest.approx(-1.0)


def test_level_size_decrease_shrinks_queue_ahead_and_growth_does_not():
    venue = make_venue(
        opening_book()
        + [
            book_row(100, Side.BUY, 100.0, 1.0),  # the level shrinks below our queue: 5 -> 1
            book_row(110, Side.BUY, 100.0, 8.0),  # newcomers join behind us
            trade_row(200, Side.SELL, 100.0, 2.0),  # 1 ahead, then 1 for us
        ]
    )
    venue.poll(at(10))
    (order_id,) = venue.submit([place(Side.BUY, 100.0, 2.0)], at(10))
    venue.poll(at(50))
    assert venue.queue_ahead(order_id) == 5.0
    venue.poll(at(105))
    assert venue.queue_ahead(order_id) == 1.0
    venue.poll(at(150))
    assert venue.queue_ahead(order_id) == 1.0
    update = venue.poll(at(250))
    (fill,) = update.fills
    assert fill.size == pytest.approx(1.0)


def test_snapshot_without_our_level_empties_the_queue_ahead():
    venue = make_venue(
        opening_book()
        + [clear_row(100), book_row(100, Side.BUY, 99.9, 3.0), book_row(100, Side.SELL, 100.1, 4.0)]
        + [book_row(120, Side.SELL, 100.2, 6.0)]
        + [clear_row(200), book_row(200, Side.BUY, 100.0, 7.0), book_row(200, Side.SELL, 100.1, 4.0)]
        + [clear_row(300), book_row(300, Side.BUY, 99.9, 3.0), book_row(300, Side.SELL, 100.1, 4.0)]
    )
    venue.poll(at(10))
    first, second = venue.submit([place(Side.BUY, 100.0, 2.0), place(Side.SELL, 100.2, 1.0)], at(10))
    venue.poll(at(50))
    assert (venue.queue_ahead(first), venue.queue_ahead(second)) == (5.0, 6.0)
    # a snapshot followed by more rows in the same poll, then one that ends the poll
    venue.poll(at(150))
    assert venue.queue_ahead(first) == 0.0  # the level is gone from the new snapshot
    assert venue.queue_ahead(second) == 0.0  # gone too; its return at 120 ms is behind us
    venue.poll(at(200))
    assert venue.queue_ahead(first) == 0.0  # its return is behind us
    venue.poll(at(300))
    assert venue.queue_ahead(first) == 0.0


def test_snapshot_that_ends_a_poll_still_empties_the_queue_ahead():
    venue = make_venue(
        opening_book() + [clear_row(100), book_row(100, Side.BUY, 99.9, 3.0), book_row(100, Side.SELL, 100.1, 4.0)]
    )
    venue.poll(at(10))
    (order_id,) = venue.submit([place(Side.BUY, 100.0, 2.0)], at(10))
    venue.poll(at(50))
    assert venue.queue_ahead(order_id) == 5.0
    venue.poll(at(100))
    assert venue.queue_ahead(order_id) == 0.0


def test_our_orders_at_one_price_queue_in_arrival_order():
    venue = make_venue(
        opening_book()
        + [
            trade_row(100, Side.SELL, 100.0, 6.0),  # 5 ahead, then 1 for the first order
            trade_row(200, Side.SELL, 100.0, 1.0),  # the second order was behind the first
        ]
    )
    venue.poll(at(10))
    first, second = venue.submit([place(Side.BUY, 100.0, 1.0), place(Side.BUY, 100.0, 1.0)], at(10))
    update = venue.poll(at(150))
    assert [(fill.order_id, fill.size) for fill in update.fills] == [(first, 1.0)]
    assert venue.queue_ahead(second) == 0.0
    update = venue.poll(at(250))
    assert [(fill.order_id, fill.size) for fill in update.fills] == [(second, 1.0)]


# -- latency -----------------------------------------------------------------------------------


def test_order_reaches_the_exchange_one_order_latency_after_submission():
    # submitted at local 100 ms -> arrives at exchange 120 ms. Row at local 129 ms happened at
    # exchange 119 ms (too early); the row at local 130 ms happened at exchange 120 ms.
    venue = make_venue(
        opening_book()
        + [
            trade_row(129, Side.SELL, 99.9, 1.0, trade_id=7),
            book_row(129.5, Side.BUY, 99.9, 3.0),
            trade_row(130, Side.SELL, 99.9, 1.0, trade_id=8),
        ]
    )
    venue.poll(at(100))
    (order_id,) = venue.submit([place(Side.BUY, 100.0, 2.0)], at(100))
    update = venue.poll(at(100))
    assert open_sizes(update) == {order_id: 2.0}  # in flight, but the strategy counts it
    update = venue.poll(at(129.9))
    assert update.fills == ()
    assert [trade.trade_id for trade in update.trades] == [7]
    update = venue.poll(at(130))
    (fill,) = update.fills
    assert fill.ts_local == at(130)  # delivered with the row that caused it, not earlier
    assert fill.ts_exch == at(130) + EXCHANGE_CLOCK_OFFSET_NS  # the row's own exchange stamp
    assert fill.size == 2.0
    assert [trade.trade_id for trade in update.trades] == [8]


def test_cancel_that_arrives_after_the_fill_fails_and_the_fill_stands():
    venue = make_venue(opening_book() + [trade_row(125, Side.SELL, 99.9, 1.0)])
    venue.poll(at(10))
    (order_id,) = venue.submit([place(Side.BUY, 100.0, 2.0)], at(10))
    venue.poll(at(100))
    venue.submit([cancel(order_id)], at(100))  # reaches the exchange at 120 ms
    update = venue.poll(at(101))
    assert update.open_orders == ()
    assert [order.order_id for order in update.pending_cancels] == [order_id]
    # the sweep happened at exchange 115 ms, before the cancel arrived
    update = venue.poll(at(200))
    (fill,) = update.fills
    assert fill.order_id == order_id and fill.size == 2.0
    assert update.position == 2.0
    assert update.pending_cancels == () and update.open_orders == ()
    assert venue.failed_cancels == 1


def test_cancel_that_arrives_before_the_trade_removes_the_order():
    venue = make_venue(opening_book() + [trade_row(135, Side.SELL, 99.9, 1.0)])
    venue.poll(at(10))
    (order_id,) = venue.submit([place(Side.BUY, 100.0, 2.0)], at(10))
    venue.poll(at(100))
    venue.submit([cancel(order_id)], at(100))  # arrives at 120 ms; the sweep is at 125 ms
    update = venue.poll(at(200))
    assert update.fills == () and update.position == 0.0
    assert update.pending_cancels == () and update.open_orders == ()
    assert venue.failed_cancels == 0
    with pytest.raises(KeyError):
        venue.queue_ahead(order_id)


# -- post-only rejection -----------------------------------------------------------------------


def test_crossing_post_only_orders_are_rejected():
    venue = make_venue(opening_book() + [trade_row(500, Side.SELL, 99.0, 50.0), trade_row(510, Side.BUY, 101.0, 50.0)])
    venue.poll(at(10))
    bid_at_ask, ask_at_bid, ask_joining = venue.submit(
        [place(Side.BUY, 100.1, 1.0), place(Side.SELL, 100.0, 1.0), place(Side.SELL, 100.1, 1.0)], at(10)
    )
    # the exchange sees them at 30 ms; we learn of the rejection at 40 ms
    update = venue.poll(at(39))
    assert set(open_sizes(update)) == {bid_at_ask, ask_at_bid, ask_joining}
    update = venue.poll(at(40))
    assert set(open_sizes(update)) == {ask_joining}
    assert venue.rejections == 2 and venue.orders_placed == 3
    # rejected orders never rest, so the sweeps fill only the ask that joined the queue
    update = venue.poll(at(600))
    assert [fill.order_id for fill in update.fills] == [ask_joining]


# -- money -------------------------------------------------------------------------------------


def test_maker_fee_is_charged_and_a_negative_fee_is_a_rebate():
    rows = opening_book() + [trade_row(100, Side.SELL, 99.9, 1.0)]
    for maker_fee_bps, expected_fee_usd in ((1.5, 1.5e-4 * 200.0), (-0.2, -0.2e-4 * 200.0)):
        venue = make_venue(rows, SimConfig(feed_latency_s=0.01, order_latency_s=0.02, maker_fee_bps=maker_fee_bps))
        venue.poll(at(10))
        venue.submit([place(Side.BUY, 100.0, 2.0)], at(10))
        (fill,) = venue.poll(at(200)).fills
        assert fill.fee_usd == pytest.approx(expected_fee_usd, rel=1e-12)
        account = venue.account()
        assert account.fees_usd == pytest.approx(expected_fee_usd, rel=1e-12)
        # bought 2 at 100: cash = −200 − fee
        assert account.cash_usd == pytest.approx(-200.0 - expected_fee_usd, rel=1e-12)
        assert account.volume_usd == 200.0 and account.fills == 1


def test_a_long_pays_positive_funding_and_a_short_receives_it():
    for side, expected_payment_usd in ((Side.BUY, -2.0 * 101.0 * 1e-4), (Side.SELL, 2.0 * 101.0 * 1e-4)):
        price = 100.0 if side is Side.BUY else 100.1
        sweep = trade_row(100, Side.SELL, 99.9, 1.0) if side is Side.BUY else trade_row(100, Side.BUY, 100.2, 1.0)
        venue = make_venue(opening_book() + [sweep, funding_row(300, 101.0, 1e-4)])
        venue.poll(at(10))
        venue.submit([place(side, price, 2.0)], at(10))
        update = venue.poll(at(400))
        assert update.position == 2.0 * int(side)
        assert update.funding_rate == 1e-4 and update.mark_price == 101.0
        (event,) = venue.funding_events
        assert (event.ts_local, event.position, event.mark_price, event.rate) == (at(300), 2.0 * int(side), 101.0, 1e-4)
        assert event.payment_usd == pytest.approx(expected_payment_usd, rel=1e-12)
        assert venue.account().funding_usd == pytest.approx(expected_payment_usd, rel=1e-12)


def test_funding_rate_and_mark_price_follow_the_asset_context():
    venue = make_venue(opening_book() + [context_row(100, 100.04, 2e-5), funding_row(200, 100.02, 3e-5)])
    update = venue.poll(at(50))
    assert update.funding_rate == 0.0
    assert update.mark_price == pytest.approx(100.05)  # the mid, before any context
    update = venue.poll(at(150))
    assert (update.funding_rate, update.mark_price) == (2e-5, 100.04)
    update = venue.poll(at(250))
    assert (update.funding_rate, update.mark_price) == (3e-5, 100.02)
    assert venue.funding_events[0].payment_usd == 0.0  # flat: nothing to pay


def test_cash_and_position_reconcile_exactly_to_fills_and_funding():
    rows = opening_book() + [
        trade_row(100, Side.SELL, 100.0, 6.0),  # bid 100.0 behind 5: 1 of its 1.5 filled
        trade_row(150, Side.BUY, 100.1, 10.0),  # 4 ahead at 100.1, then our 2.5 fill completely
        funding_row(200, 100.05, 1.3e-4),
        trade_row(250, Side.SELL, 99.8, 2.0),  # sweeps the rest of the 100.0 bid and the 99.9 bid
        funding_row(300, 99.95, -4e-5),
        trade_row(350, Side.BUY, 100.3, 1.0),  # sweeps our ask at 100.2 (size 0.7)
    ]
    venue = make_venue(rows)
    venue.poll(at(10))
    venue.submit(
        [
            place(Side.BUY, 100.0, 1.5),
            place(Side.BUY, 99.9, 0.3),
            place(Side.SELL, 100.2, 0.7),
            place(Side.SELL, 100.1, 2.5),
        ],
        at(10),
    )
    fills = []
    for ms in range(20, 500, 20):
        fills.extend(venue.poll(at(ms)).fills)
    assert len(fills) == 5
    account = venue.account()
    expected_position = sum(int(fill.side) * fill.size for fill in fills)
    expected_cash = (
        -sum(int(fill.side) * fill.price * fill.size for fill in fills)
        - sum(fill.fee_usd for fill in fills)
        + sum(event.payment_usd for event in venue.funding_events)
    )
    assert account.position == pytest.approx(expected_position, abs=1e-12)
    assert account.position == pytest.approx(1.5 + 0.3 - 0.7 - 2.5, abs=1e-12)
    assert abs(account.cash_usd - expected_cash) <= 1e-9
    assert abs(account.fees_usd - sum(fill.fee_usd for fill in fills)) <= 1e-12
    assert abs(account.volume_usd - sum(fill.price * fill.size for fill in fills)) <= 1e-9
    assert account.fills == len(fills)
    # each funding payment used the position held when it was paid
    assert venue.funding_events[0].position == pytest.approx(1.0 - 2.5)
    assert venue.funding_events[1].position == pytest.approx(1.5 + 0.3 - 2.5)


# -- the update and the clock ------------------------------------------------------------------


def test_book_is_none_before_the_first_book_row_and_then_best_first():
    venue = make_venue([context_row(0, 100.0, 1e-5)] + opening_book(5), book_levels=1)
    assert venue.poll(at(1)).book is None
    book = venue.poll(at(5)).book
    assert book.bid_px.tolist() == [100.0] and book.ask_px.tolist() == [100.1]
    assert (book.ts_local, book.ts_exch) == (at(5), at(5) + EXCHANGE_CLOCK_OFFSET_NS)
    assert venue.poll(at(6)).book is book  # unchanged book, same snapshot


def test_market_trades_are_delivered_once():
    venue = make_venue(opening_book() + [trade_row(100, Side.BUY, 100.1, 0.5, trade_id=42)])
    (trade,) = venue.poll(at(100)).trades
    assert (trade.price, trade.size, trade.aggressor, trade.trade_id) == (100.1, 0.5, Side.BUY, 42)
    assert venue.poll(at(200)).trades == ()


def test_polling_or_submitting_backwards_in_time_raises():
    venue = make_venue(opening_book())
    venue.poll(at(100))
    with pytest.raises(ValueError, match="earlier"):
        venue.poll(at(99))
    with pytest.raises(ValueError, match="earlier"):
        venue.submit([place(Side.BUY, 99.0, 1.0)], at(50))
    venue.poll(at(100))  # the same time again is fine


@pytest.mark.parametrize(
    "action, field",
    [
        (OrderAction(kind=ActionKind.PLACE, side=Side.BUY, price=99.0, size=0.0), "size"),
        (OrderAction(kind=ActionKind.PLACE, side=Side.BUY, price=99.0, size=math.inf), "size"),
        (OrderAction(kind=ActionKind.PLACE, side=Side.BUY, price=-1.0, size=1.0), "price"),
        (OrderAction(kind=ActionKind.PLACE, side=Side.BUY, price=math.nan, size=1.0), "price"),
        (OrderAction(kind=ActionKind.PLACE, side=0, price=99.0, size=1.0), "side"),
        (OrderAction(kind=ActionKind.CANCEL, side=Side.BUY, price=99.0, size=1.0, order_id=5), "order_id"),
    ],
)
def test_invalid_actions_raise_naming_the_field_and_send_nothing(action, field):
    venue = make_venue(opening_book())
    venue.poll(at(10))
    with pytest.raises(ValueError, match=field):
        venue.submit([place(Side.BUY, 99.0, 1.0), action], at(10))
    assert venue.orders_placed == 0 and venue.poll(at(100)).open_orders == ()
