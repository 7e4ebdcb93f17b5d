"""SimVenue: the :class:`~mmlab.venue.Venue` protocol over a recorded or synthetic tape.

Our post-only (ALO) orders join the tape's book with a queue position, are filled by the tape's
trades, pay maker fees and funding. The queue, order-entry latency and fee models are swappable
(:mod:`mmlab.sim.models`, :meth:`SimVenue.builder`); the defaults reproduce the rules below.

Clocks
------
Everything runs on the tape's local clock (``ts_local``, ns). With the feed latency
``f = feed_latency_s`` and the order-entry latency ``o = order_latency_s``:

- a tape row seen locally at L happened at the exchange at ``E = L − f``;
- an action submitted at local time t reaches the exchange at ``A = t + o``; with a random
  entry latency ``o`` is drawn per action and ``A = max(t + o, A of the previous action)``, so
  actions still reach the exchange in submission order (a cancel never overtakes its place);
- the exchange's answer (acknowledgement, rejection, cancel confirmation, fill) reaches us at the
  exchange time of the event plus ``f``; a fill caused by row r is therefore delivered at L_r,
  with ``Fill.ts_local = L_r`` and ``Fill.ts_exch`` = the row's ``ts_exch``.

Rows are processed in tape order. Before the exchange processes row r, every pending action with
``A ≤ E_r`` is applied, in submission order. Only ``ts_local`` and the two latencies order events,
so a clock offset between ``ts_exch`` and ``ts_local`` in a real recording cannot reorder them.
With zero latencies an action submitted at t still comes after every row we had seen by t.
The local clock never goes backwards: ``poll`` or ``submit`` at a time earlier than a previous
``poll`` or ``submit`` raises ``ValueError``.

Because fills are delivered at L_r and every other answer at ``A + f``, at ``poll(t)`` the
strategy knows everything the exchange did up to exchange time ``t − f``; what it does not know
yet is the fate of actions still in flight.

What ``poll(t)`` reports
------------------------
All rows with ``ts_local ≤ t`` are processed, then the actions with ``A ≤ t − f``. The update has
the latest book (top ``book_levels`` per side, built only when the book changed since the last
poll; None before the first BOOK row), the market trades and our fills delivered since the last
poll, the position, the open orders as the strategy knows them (placed, including those still in
flight, and neither known filled, known rejected nor cancelled by us), the orders whose cancel is
in flight (``pending_cancels``: they can still fill), the funding rate (the last ASSET_CTX or
FUNDING rate, 0 before any) and the mark price (the last ASSET_CTX or FUNDING price, else the mid).
A partially filled order is listed with its remaining size.

Matching at the exchange
------------------------
- Arrival of a PLACE: a bid at or above the best ask (an ask at or below the best bid) of the book
  as it stands would take liquidity, so the post-only order is rejected: it never rests, leaves
  the open orders and counts in ``rejections``. Otherwise it rests behind everything displayed at
  its price: ``queue_ahead`` = displayed size at arrival (the tape's book never includes us).
- BOOK row at the price and side of a resting order with new size S: the queue model moves
  ``queue_ahead``. The default (risk-averse) sets ``queue_ahead ← min(queue_ahead, S)``: only
  trades advance us (cancellations may have been behind us), but the queue ahead cannot be longer
  than the level. A probabilistic model also moves us by part of each cancellation (see
  :mod:`mmlab.sim.models`); the market volume traded at our level since its last BOOK row is
  passed along so that a decrease the trades explain is not counted as a cancellation. Growth leaves ``queue_ahead`` alone:
  newcomers join behind us. After a BOOK_CLEAR, once the snapshot that follows it (the rows with
  the same ``ts_local``) is applied, each resting order's queue moves as if its level had changed
  by a diff from its size before the clear to its size now (0 if the level is gone).
- TRADE row whose aggressor SELLs at price p, against our bid at b (the mirror for a BUY aggressor
  against our asks):

  * ``p < b``: the sell swept through our level, we are filled completely;
  * ``p == b``: the trade's size first consumes ``queue_ahead``, then fills us (partially if the
    trade is too small);
  * ``p > b``: nothing.

  Several of our orders at one price queue in arrival order: the volume in front of order k is
  its ``queue_ahead`` plus the remaining size of our earlier orders at that price.
  Fills are always at our order's price, as maker. A book that crosses our order without a trade
  does not fill us (every execution prints a trade).
- Arrival of a CANCEL: removes the order if it still rests; if it has filled already (or never
  rested) the cancel fails, the fill stands and ``failed_cancels`` counts it.

Money
-----
- Fee of a fill: ``fee_usd = maker_fee_bps · 1e-4 · price · size`` (negative is a rebate).
  Every order is post-only, so ``taker_fee_bps`` is never charged (it is kept for unwind orders).
  Fees come from ``SimConfig`` (``maker_fee_bps``/``taker_fee_bps``, or ``SimConfig.for_fee_tier``
  with a Hyperliquid tier) or the builder's ``fees``/``fee_tier``.
- FUNDING row with mark P and rate r: ``payment_usd = −position · P · r`` (a long pays a positive
  rate), added to cash and to ``funding_usd`` (signed: what we received).
- ``cash_usd = −Σ side · price · size − Σ fee_usd + Σ payment_usd`` over fills and funding events,
  accumulated in event order.
"""

from __future__ import annotations

import math
import numbers
from bisect import bisect_right
from collections import deque
from typing import NamedTuple, Sequence

import numpy as np

from mmlab.config import InstrumentSpec, SimConfig
from mmlab.data.book import OrderBook
from mmlab.data.tape import EventKind, Tape, TapeError, validate_tape
from mmlab.sim.models import (
    ConstantLatency,
    EmpiricalLatency,
    FeeSchedule,
    LatencyModel,
    QueueModel,
    fee_schedule_for_tier,
    queue_model_from_name,
)
from mmlab.types import ActionKind, Fill, L2Book, OpenOrder, OrderAction, Side, Trade, VenueUpdate
from mmlab.units import bps_to_frac, s_to_ns
from mmlab.venue import AccountState

__all__ = ["SimVenue", "SimVenueBuilder", "FundingPayment"]

_BOOK = int(EventKind.BOOK)
_TRADE = int(EventKind.TRADE)
_FUNDING = int(EventKind.FUNDING)
_ASSET_CTX = int(EventKind.ASSET_CTX)
_BOOK_CLEAR = int(EventKind.BOOK_CLEAR)
_SIDES = {1: Side.BUY, -1: Side.SELL}
# A remainder below this fraction of an order's size is float noise left by subtracting sizes
# (0.3 − 0.1 − 0.2 ≠ 0); the order is treated as completely filled instead.
_REMAINDER_TOLERANCE = 1e-9
_NEVER_NS = -(2**63)


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class FundingPayment(NamedTuple):
    """One funding payment: at ``ts_local``, ``position`` coins at ``mark_price`` USD paid ``rate``.

    ``payment_usd = −position · mark_price · rate`` is what we received (negative when we paid).
    """

    ts_local: int
    position: float
    mark_price: float
    rate: float
    payment_usd: float


class _Order:
    """One of our orders: the strategy's view (``view``) and the exchange's state."""

    __slots__ = (
        "order_id",
        "side",
        "price",
        "size",
        "remaining",
        "ts_local_sent",
        "queue_ahead",
        "traded",
        "cancel_sent",
        "view",
    )

    def __init__(self, order_id: int, side: int, price: float, size: float, ts_local_sent: int) -> None:
        self.order_id = order_id
        self.side = side
        self.price = price
        self.size = size
        self.remaining = size
        self.ts_local_sent = ts_local_sent
        self.queue_ahead = 0.0
        # market volume traded at our level since its last BOOK row (the queue model's ``traded``)
        self.traded = 0.0
        self.cancel_sent = False
        self.view = OpenOrder(order_id=order_id, side=_SIDES[side], price=price, size=size, ts_local_sent=ts_local_sent)


class SimVenue:
    """Replay a :class:`~mmlab.data.tape.Tape` as a venue with queues, latency, fees and funding.

    Parameters
    ----------
    tape : Tape
        One instrument's market events; validated on construction.
    config : SimConfig
        Latencies (s), fees (bps) and queue model; the keyword arguments below override it.
    book_levels : int
        Levels per side in the books that :meth:`poll` reports.
    queue_model : QueueModel, optional
        How cancellations at our level move us; default ``config.queue_model``.
    order_latency : LatencyModel, optional
        Order entry latency (submit → exchange); default ``config.order_latency_s``, or draws from
        ``config.order_latency_samples_s`` when that is not empty.
    feed_latency : ConstantLatency, optional
        Feed latency (exchange → us), also the latency of the exchange's answers; default
        ``config.feed_latency_s``.
    fees : FeeSchedule, optional
        Maker and taker fees; default ``config.maker_fee_bps`` and ``config.taker_fee_bps``.

    :meth:`builder` assembles the same venue fluently.

    Attributes
    ----------
    instrument : InstrumentSpec
        The tape's instrument.
    order_book : OrderBook
        The book as our feed has delivered it so far (without our orders).
    orders_placed, rejections, failed_cancels : int
        PLACE actions submitted, post-only rejections, cancels that found nothing to cancel.
    funding_events : list of FundingPayment
        Every funding payment, in tape order.
    """

    def __init__(
        self,
        tape: Tape,
        config: SimConfig,
        *,
        book_levels: int = 20,
        queue_model: QueueModel | None = None,
        order_latency: LatencyModel | None = None,
        feed_latency: ConstantLatency | None = None,
        fees: FeeSchedule | None = None,
    ) -> None:
        if isinstance(book_levels, bool) or not isinstance(book_levels, int) or book_levels < 1:
            raise ValueError(f"SimVenue.book_levels must be an integer >= 1, got {book_levels!r}")
        validate_tape(tape, where=f"SimVenue tape {tape.source or tape.instrument.coin!r}")
        funding_rows = tape.kind == EventKind.FUNDING
        bad_mark = funding_rows & ~(np.isfinite(tape.price) & (tape.price > 0))
        if bad_mark.any():
            row = int(np.flatnonzero(bad_mark)[0])
            raise TapeError(f"SimVenue tape: row {row}: field 'price' must be a positive finite mark on funding rows")

        self.instrument: InstrumentSpec = tape.instrument
        self.tape = tape
        self.config = config
        self.book_levels = book_levels
        if feed_latency is None:
            feed_latency = ConstantLatency(config.feed_latency_s)
        if not isinstance(feed_latency, ConstantLatency):
            # rows are ordered by ts_local; a random feed latency could reorder their exchange times
            raise ValueError(f"SimVenue.feed_latency must be a ConstantLatency, got {feed_latency!r}")
        if order_latency is None:
            if config.order_latency_samples_s:
                order_latency = EmpiricalLatency(config.order_latency_samples_s, config.latency_seed)
            else:
                order_latency = ConstantLatency(config.order_latency_s)
        self.queue_model: QueueModel = queue_model or queue_model_from_name(config.queue_model)
        self.order_latency: LatencyModel = order_latency
        self.feed_latency: ConstantLatency = feed_latency
        self.fees: FeeSchedule = fees or FeeSchedule(
            maker_bps=config.maker_fee_bps, taker_bps=config.taker_fee_bps, tier=config.fee_tier
        )
        self._feed_latency_ns = s_to_ns(feed_latency.seconds)
        self._draw_order_latency_ns = order_latency.sampler()
        # arrival time at the exchange of the last action sent: nothing may overtake it
        self._last_arrival_ns = _NEVER_NS
        self._maker_fee_frac = bps_to_frac(self.fees.maker_bps)
        # charged only to orders that take liquidity; every order is post-only today
        self._taker_fee_frac = bps_to_frac(self.fees.taker_bps)

        # Python lists: indexing them in the row loop is several times faster than numpy scalars.
        self._ts_exch: list[int] = tape.ts_exch.tolist()
        self._ts_local: list[int] = tape.ts_local.tolist()
        self._kind: list[int] = tape.kind.tolist()
        self._side: list[int] = tape.side.tolist()
        self._price: list[float] = tape.price.tolist()
        self._size: list[float] = tape.size.tolist()
        self._rate: list[float] = tape.rate.tolist()
        self._trade_id: list[int] = tape.trade_id.tolist()
        self._next_row = 0

        self.order_book = OrderBook()
        self._book_row = -1  # last BOOK / BOOK_CLEAR row applied
        self._snapshot_row = -1  # row the cached snapshot was built after
        self._snapshot: L2Book | None = None
        # after a BOOK_CLEAR: the first row past its snapshot, where resting queues are re-clamped
        self._resync_row = -1
        self._sizes_before_clear: dict[int, float] = {}

        self._clock_ns = _NEVER_NS
        self._trade_rows: list[int] = []
        self._fills: list[Fill] = []

        self._next_order_id = 1
        self._known: dict[int, _Order] = {}  # the strategy's open orders and pending cancels
        self._resting_by_id: dict[int, _Order] = {}
        self._resting: dict[int, dict[float, list[_Order]]] = {1: {}, -1: {}}
        # (arrival ns at the exchange, PLACE order or CANCEL order id), in submission order
        self._in_flight: deque[tuple[int, _Order | int]] = deque()

        self._position = 0.0
        self._cash_usd = 0.0
        self._fees_usd = 0.0
        self._funding_usd = 0.0
        self._volume_usd = 0.0
        self._fill_count = 0
        self._funding_rate = 0.0
        self._mark_price = math.nan

        self.orders_placed = 0
        self.rejections = 0
        self.failed_cancels = 0
        self.funding_events: list[FundingPayment] = []

    @classmethod
    def builder(cls, tape: Tape, config: SimConfig | None = None) -> SimVenueBuilder:
        """Start a fluent :class:`SimVenueBuilder` on ``tape``, from ``config`` (default ``SimConfig()``)."""
        return SimVenueBuilder(tape, config or SimConfig())

    # -- the Venue protocol ----------------------------------------------------------------

    def poll(self, ts_local: int) -> VenueUpdate:
        """Process the tape up to local time ``ts_local`` and report what reached us.

        Raises
        ------
        ValueError
            If ``ts_local`` is earlier than a previous poll or submit.
        """
        ts = int(ts_local)
        if ts < self._clock_ns:
            raise ValueError(f"SimVenue.poll: ts_local {ts} is earlier than the venue clock {self._clock_ns}")
        self._clock_ns = ts
        self._advance(ts)
        # actions that reached the exchange after the last row we have seen are answered by now
        self._arrive_until(ts - self._feed_latency_ns)

        if self._book_row != self._snapshot_row:
            self._snapshot = self.order_book.snapshot(
                self.book_levels, self._ts_exch[self._book_row], self._ts_local[self._book_row]
            )
            self._snapshot_row = self._book_row

        trades = tuple(self._trade(row) for row in self._trade_rows)
        self._trade_rows.clear()
        fills = tuple(self._fills)
        self._fills.clear()
        open_orders = tuple(order.view for order in self._known.values() if not order.cancel_sent)
        pending_cancels = tuple(order.view for order in self._known.values() if order.cancel_sent)
        mark = self._mark_price if math.isfinite(self._mark_price) else self.order_book.mid()
        return VenueUpdate(
            ts_local=ts,
            book=self._snapshot,
            trades=trades,
            fills=fills,
            position=self._position,
            open_orders=open_orders,
            funding_rate=self._funding_rate,
            mark_price=mark,
            pending_cancels=pending_cancels,
        )

    def submit(self, actions: Sequence[OrderAction], ts_local: int) -> list[int]:
        """Send ``actions`` stamped with local time ``ts_local``; return the new orders' ids.

        PLACE actions get fresh order ids (1, 2, ...) in the order given, whatever their
        ``order_id`` field; CANCEL actions name the order to cancel in ``order_id``. All actions
        are validated before any is sent.

        Raises
        ------
        ValueError
            If ``ts_local`` is earlier than a previous poll or submit, or an action is invalid
            (the message names the action's index and field).
        """
        ts = int(ts_local)
        if ts < self._clock_ns:
            raise ValueError(f"SimVenue.submit: ts_local {ts} is earlier than the venue clock {self._clock_ns}")
        for index, action in enumerate(actions):
            self._validate(index, action)
        self._clock_ns = ts
        assigned: list[int] = []
        for action in actions:
            # A = max(t + drawn entry latency, A of the previous action): actions reach the
            # exchange in submission order, so a cancel never overtakes its place
            arrival_ns = ts + self._draw_order_latency_ns()
            if arrival_ns < self._last_arrival_ns:
                arrival_ns = self._last_arrival_ns
            self._last_arrival_ns = arrival_ns
            if action.kind is ActionKind.PLACE:
                order = _Order(self._next_order_id, int(action.side), float(action.price), float(action.size), ts)
                self._next_order_id += 1
                self._known[order.order_id] = order
                self._in_flight.append((arrival_ns, order))
                self.orders_placed += 1
                assigned.append(order.order_id)
            else:
                target = self._known.get(action.order_id)
                if target is not None:
                    target.cancel_sent = True
                self._in_flight.append((arrival_ns, int(action.order_id)))
        return assigned

    def account(self) -> AccountState:
        """Position and cash as the exchange books them (fills and funding processed so far)."""
        return AccountState(
            position=self._position,
            cash_usd=self._cash_usd,
            fees_usd=self._fees_usd,
            funding_usd=self._funding_usd,
            volume_usd=self._volume_usd,
            fills=self._fill_count,
        )

    # -- introspection ---------------------------------------------------------------------

    def queue_ahead(self, order_id: int) -> float:
        """Displayed size (coins) ahead of a resting order at the exchange.

        Raises
        ------
        KeyError
            If the order is not resting (still in flight, filled, cancelled or rejected).
        """
        order = self._resting_by_id.get(order_id)
        if order is None:
            raise KeyError(f"order {order_id} is not resting at the exchange")
        return order.queue_ahead

    @property
    def rows_processed(self) -> int:
        """Number of tape rows processed so far."""
        return self._next_row

    # -- the replay ------------------------------------------------------------------------

    def _validate(self, index: int, action: OrderAction) -> None:
        where = f"SimVenue.submit: action {index}"
        if action.kind is ActionKind.PLACE:
            if action.side not in (1, -1):
                raise ValueError(f"{where}: side must be +1 or -1, got {action.side!r}")
            if not (_is_number(action.price) and math.isfinite(action.price) and action.price > 0):
                raise ValueError(f"{where}: price must be positive and finite, got {action.price!r}")
            if not (_is_number(action.size) and math.isfinite(action.size) and action.size > 0):
                raise ValueError(f"{where}: size must be positive and finite, got {action.size!r}")
        elif action.kind is ActionKind.CANCEL:
            order_id = action.order_id
            if isinstance(order_id, bool) or not isinstance(order_id, int) or not 1 <= order_id < self._next_order_id:
                raise ValueError(f"{where}: order_id {order_id!r} was never assigned by this venue")
        else:
            raise ValueError(f"{where}: kind must be an ActionKind, got {action.kind!r}")

    def _advance(self, ts_local: int) -> None:
        """Process every row with ``ts_local`` at or before the given local time."""
        ts_locals = self._ts_local
        first = self._next_row
        end = bisect_right(ts_locals, ts_local, first)
        if end == first:
            return
        kinds, sides, prices, sizes = self._kind, self._side, self._price, self._size
        feed_ns = self._feed_latency_ns
        apply_level = self.order_book.apply
        size_at = self.order_book.size_at
        on_depth = self.queue_model.on_depth
        resting = self._resting
        resting_by_id = self._resting_by_id
        in_flight = self._in_flight
        trade_rows = self._trade_rows
        # local time of the first row whose exchange time reaches the next in-flight action
        next_due_local = in_flight[0][0] + feed_ns if in_flight else math.inf
        resync_row = self._resync_row
        book_row = self._book_row

        for row in range(first, end):
            local = ts_locals[row]
            if row == resync_row:
                self._clamp_queues_to_book()
                resync_row = -1
            if local >= next_due_local:
                # E_r = L_r − f; the actions with A ≤ E_r reached the exchange before this row
                self._arrive_until(local - feed_ns)
                next_due_local = in_flight[0][0] + feed_ns if in_flight else math.inf
            kind = kinds[row]
            if kind == _BOOK:
                side = sides[row]
                price = prices[row]
                size = sizes[row]
                ours = resting[side].get(price) if resting_by_id else None
                if ours:
                    # the queue model sees the level before and after the change
                    prev_size = size_at(side, price)
                    apply_level(side, price, size)
                    for order in ours:
                        order.queue_ahead = on_depth(order.queue_ahead, prev_size, size, order.traded)
                        order.traded = 0.0
                else:
                    apply_level(side, price, size)
                book_row = row
            elif kind == _TRADE:
                trade_rows.append(row)
                if resting_by_id and resting[-sides[row]]:
                    self._match_trade(row)
            elif kind == _BOOK_CLEAR:
                if resting_by_id and resync_row == -1:
                    # what our levels showed before the snapshot, for the queue model afterwards
                    self._sizes_before_clear = {
                        order_id: size_at(order.side, order.price) for order_id, order in resting_by_id.items()
                    }
                self.order_book.clear()
                book_row = row
                if resting_by_id:
                    resync_row = bisect_right(ts_locals, local, row)
            elif kind == _FUNDING:
                self._pay_funding(row)
            elif kind == _ASSET_CTX:
                rate = self._rate[row]
                if rate == rate:  # NaN when the context carried no prediction
                    self._funding_rate = rate
                mark = prices[row]
                if mark > 0.0:  # False for NaN too
                    self._mark_price = mark
        if resync_row == end:
            # the snapshot after the clear ended with the rows we were asked to process
            self._clamp_queues_to_book()
            resync_row = -1
        self._next_row = end
        self._book_row = book_row
        self._resync_row = resync_row

    def _arrive_until(self, exchange_ns: int) -> None:
        """Apply, in submission order, every in-flight action with arrival time ≤ ``exchange_ns``."""
        in_flight = self._in_flight
        while in_flight and in_flight[0][0] <= exchange_ns:
            _, payload = in_flight.popleft()
            if isinstance(payload, _Order):
                self._arrive_place(payload)
            else:
                self._arrive_cancel(payload)

    def _arrive_place(self, order: _Order) -> None:
        book = self.order_book
        side, price = order.side, order.price
        # post-only: a bid at or above the best ask (ask at or below the best bid) would take;
        # comparisons with NaN (empty opposite side) are False, so the order rests
        crosses = price >= book.best_ask() if side == 1 else price <= book.best_bid()
        if crosses:
            self.rejections += 1
            del self._known[order.order_id]
            return
        order.queue_ahead = book.size_at(side, price)
        self._resting[side].setdefault(price, []).append(order)
        self._resting_by_id[order.order_id] = order

    def _arrive_cancel(self, order_id: int) -> None:
        order = self._resting_by_id.get(order_id)
        if order is None:
            # filled (or rejected) before the cancel arrived: the fill stands
            self.failed_cancels += 1
            self._known.pop(order_id, None)
            return
        self._remove_resting(order)

    def _remove_resting(self, order: _Order) -> None:
        del self._resting_by_id[order.order_id]
        self._known.pop(order.order_id, None)
        level = self._resting[order.side]
        queue = level[order.price]
        queue.remove(order)
        if not queue:
            del level[order.price]

    def _clamp_queues_to_book(self) -> None:
        """After a snapshot, move each queue as if its level changed by a diff.

        A snapshot that shows our level smaller than before is the same evidence as a diff that
        does, so the queue model sees (size before the clear, size now); the risk-averse model
        then just clamps to the level. Orders that arrived during the snapshot saw no change.
        """
        book = self.order_book
        before = self._sizes_before_clear
        on_depth = self.queue_model.on_depth
        for order_id, order in self._resting_by_id.items():
            displayed = book.size_at(order.side, order.price)
            previous = before.get(order_id, displayed)
            order.queue_ahead = on_depth(order.queue_ahead, previous, displayed, order.traded)
            order.traded = 0.0
        self._sizes_before_clear = {}

    def _match_trade(self, row: int) -> None:
        """Fill our orders on the side the trade's aggressor hit."""
        our_side = -self._side[row]
        trade_price = self._price[row]
        volume = self._size[row]
        levels = self._resting[our_side]
        # our_side · (b − p) > 0: the aggressor swept through our price (bid above a sell print,
        # ask below a buy print); the sweep reaches the best of our prices first
        swept = sorted((b for b in levels if our_side * (b - trade_price) > 0.0), reverse=our_side == 1)
        for price in swept:
            for order in list(levels[price]):
                self._fill(order, order.remaining, row)
        queue = levels.get(trade_price)
        if not queue:
            return
        own_ahead = 0.0  # remaining size of our earlier orders at this price, before the trade
        filled_ahead = 0.0  # how much of the trade those orders took
        for order in list(queue):
            # the trade consumes, in time priority, what stands in front of this order first
            in_front = order.queue_ahead + own_ahead
            consumed_in_front = min(volume, in_front)
            fill_size = min(order.remaining, volume - consumed_in_front)
            own_ahead += order.remaining
            # market size in front of us that traded = what was consumed minus our own fills
            order.queue_ahead = max(0.0, order.queue_ahead - (consumed_in_front - filled_ahead))
            if fill_size > 0.0:
                filled_ahead += fill_size
                if order.remaining - fill_size <= _REMAINDER_TOLERANCE * order.size:
                    fill_size = order.remaining
                self._fill(order, fill_size, row)
        # the displayed level (which never includes us) loses the market's part of the trade;
        # remembered so the next BOOK row's decrease is not also counted as a cancellation
        market_traded = volume - filled_ahead
        for order in levels.get(trade_price, ()):
            order.traded += market_traded

    def _fill(self, order: _Order, fill_size: float, row: int) -> None:
        side, price = order.side, order.price
        notional_usd = price * fill_size
        # maker fee: maker_fee_bps · 1e-4 · notional, negative for a rebate
        fee_usd = notional_usd * self._maker_fee_frac
        self._position += side * fill_size
        # cash: −side · price · size − fee
        self._cash_usd -= side * notional_usd + fee_usd
        self._fees_usd += fee_usd
        self._volume_usd += notional_usd
        self._fill_count += 1
        self._fills.append(
            Fill(
                ts_exch=self._ts_exch[row],
                ts_local=self._ts_local[row],
                order_id=order.order_id,
                side=_SIDES[side],
                price=price,
                size=fill_size,
                fee_usd=fee_usd,
                is_maker=True,
            )
        )
        if fill_size >= order.remaining:
            order.remaining = 0.0
            self._remove_resting(order)
        else:
            order.remaining -= fill_size
            order.view = OpenOrder(
                order_id=order.order_id,
                side=_SIDES[side],
                price=price,
                size=order.remaining,
                ts_local_sent=order.ts_local_sent,
            )

    def _pay_funding(self, row: int) -> None:
        mark = self._price[row]
        rate = self._rate[row]
        # a long pays a positive rate: payment = −position · mark · rate
        payment_usd = -self._position * mark * rate
        self._cash_usd += payment_usd
        self._funding_usd += payment_usd
        self.funding_events.append(
            FundingPayment(
                ts_local=self._ts_local[row], position=self._position, mark_price=mark, rate=rate, payment_usd=payment_usd
            )
        )
        self._funding_rate = rate
        self._mark_price = mark

    def _trade(self, row: int) -> Trade:
        return Trade(
            ts_exch=self._ts_exch[row],
            ts_local=self._ts_local[row],
            price=self._price[row],
            size=self._size[row],
            aggressor=_SIDES[self._side[row]],
            trade_id=self._trade_id[row],
        )


class SimVenueBuilder:
    """Assemble a :class:`SimVenue` from swappable models, as hftbacktest's asset builder does.

    ``SimVenue.builder(tape).queue(ProbabilisticQueue.power(2)).order_latency(EmpiricalLatency(...))
    .feed_latency(ConstantLatency(0.05)).fees(maker_bps=0.8, taker_bps=3.5).book_levels(20).build()``

    Anything not set comes from the :class:`~mmlab.config.SimConfig` the builder started from.
    """

    def __init__(self, tape: Tape, config: SimConfig) -> None:
        self._tape = tape
        self._config = config
        self._book_levels = 20
        self._queue_model: QueueModel | None = None
        self._order_latency: LatencyModel | None = None
        self._feed_latency: ConstantLatency | None = None
        self._fees: FeeSchedule | None = None

    def queue(self, model: QueueModel) -> SimVenueBuilder:
        """Queue position model (:class:`RiskAverseQueue`, :class:`ProbabilisticQueue`)."""
        self._queue_model = model
        return self

    def order_latency(self, model: LatencyModel) -> SimVenueBuilder:
        """Order entry latency, submit → exchange."""
        self._order_latency = model
        return self

    def feed_latency(self, model: ConstantLatency) -> SimVenueBuilder:
        """Feed latency, exchange → us (also carries the exchange's answers)."""
        self._feed_latency = model
        return self

    def fees(self, *, maker_bps: float, taker_bps: float) -> SimVenueBuilder:
        """Maker and taker fees in bps of notional (negative is a rebate)."""
        for name, value in (("maker_bps", maker_bps), ("taker_bps", taker_bps)):
            if not (_is_number(value) and math.isfinite(value)):
                raise ValueError(f"SimVenueBuilder.fees: {name} must be a finite number, got {value!r}")
        self._fees = FeeSchedule(maker_bps=float(maker_bps), taker_bps=float(taker_bps))
        return self

    def fee_tier(self, tier: str) -> SimVenueBuilder:
        """Hyperliquid perp fee tier, e.g. ``"vip2"`` or ``"vip4+mm1"``."""
        self._fees = fee_schedule_for_tier(tier)
        return self

    def book_levels(self, levels: int) -> SimVenueBuilder:
        """Levels per side in the books that :meth:`SimVenue.poll` reports."""
        self._book_levels = levels
        return self

    def build(self) -> SimVenue:
        return SimVenue(
            self._tape,
            self._config,
            book_levels=self._book_levels,
            queue_model=self._queue_model,
            order_latency=self._order_latency,
            feed_latency=self._feed_latency,
            fees=self._fees,
        )
