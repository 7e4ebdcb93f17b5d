"""SimVenue: the :class:`~mmlab.venue.Venue` protocol over a recorded or synthetic tape.

Our post-only (ALO) orders join the tape's book with a queue position, are filled by the tape's
trades, pay maker fees and funding. The queue, latency and fee models are swappable
(:mod:`mmlab.sim.models`, :meth:`SimVenue.builder`); the defaults reproduce the rules below.
This class is the readable reference; :class:`mmlab.sim.engine.FastSimVenue` compiles the same
rules with numba and gives identical results (``SimConfig.engine`` picks one).

Clocks
------
Two clocks run side by side, both on the tape's local time axis (ns): the exchange's, at which
the exchange processes market events and our actions, and ours, at which news of them reaches
us. They are never mixed: a tape's ``ts_exch`` column is used only to read the recorded feed
latency and to stamp fills, never to order events (its clock offset to ``ts_local`` is unknown).

- Market data. A tape row seen locally at ``L_r`` happened at the exchange at ``E_r``. With a
  constant feed latency ``f = feed_latency_s``, ``E_r = L_r − f``. With a recorded feed latency
  (:class:`~mmlab.sim.models.RecordedFeedLatency`, ``feed_latency_mode="recorded"``) each row has
  its own, ``f_r = base_s + (d_r − min d)`` with ``d_r = ts_local_r − ts_exch_r``, and
  ``E_r = max(L_r − f_r, E_{r−1})``: the exchange sees the rows in tape order (the book is
  rebuilt from them in that order), and the clock offset between the two columns, constant over
  a recording, is absorbed into ``base_s``. A tape without information in ``ts_exch`` (a
  constant ``ts_local − ts_exch``) gives ``f_r = base_s``, the constant model.
- Actions. An action submitted at local time t reaches the exchange at ``A = t + o`` (order
  entry latency ``o``); with a random entry latency ``o`` is drawn per action and
  ``A = max(t + o, A of the previous action)``, so actions reach the exchange in submission order
  (a cancel never overtakes its place).
- Answers. The exchange's answer to an action (acknowledgement, post-only rejection, cancel or
  modify confirmation or failure, a TAKE's fills) reaches us at ``D = max(A + g, D of the previous action)``, with the
  response latency ``g`` constant or drawn per action (``response_latency_s``,
  ``response_latency_samples_s``; default: the feed's constant latency, ``f`` or ``base_s``).
  Answers come back on one connection, in order.
- Fills and funding. A fill or funding payment caused by row r reaches us with that row, at
  ``L_r``: ``Fill.ts_local = L_r`` and ``Fill.ts_exch`` = the row's ``ts_exch``. The fills of a
  TAKE are caused by the action, not by a row: they reach us with its answer, at ``D``
  (``Fill.ts_local = D``), and ``Fill.ts_exch = ts_exch_r + (A − E_r)`` with r the last row the
  exchange processed before the TAKE arrived (the arrival on the tape's exchange clock).

The exchange processes rows in tape order; an action is processed just before the first row
not yet processed with ``A ≤ E_r`` (ties go to the action). An action submitted at t comes after
every row the exchange had already processed by then (so with zero latencies it comes after every
row we had seen by t). The local clock never goes backwards: ``poll`` or ``submit`` at a time
earlier than a previous ``poll`` or ``submit`` raises ``ValueError``.

What ``poll(t)`` reports
------------------------
The exchange first processes every row with ``L_r ≤ t`` (with the actions due before them), then
every in-flight action whose answer is due (``D ≤ t``), each after the rows with ``E_r < A``.
When the response latency is shorter than some rows' feed latency, those rows are processed at
the exchange before we see them: their effects (fills, funding) wait for ``L_r``. Then what has
reached us by t is delivered: the rows with ``L_r ≤ t`` (our book, the market trades, the funding
rate and mark), the fills and funding payments of those rows, and the answers with ``D ≤ t``.

The update has the latest book as our feed delivered it (top ``book_levels`` per side, built only
when the book changed since the last poll; None before the first BOOK row), the market trades and
our fills delivered since the last poll, the position (sum of delivered fills), the open orders
as the strategy knows them (placed, including those still in flight, and neither known filled,
known rejected nor cancelled by us; a modified order at its new price and size from the moment
the MODIFY is sent), ``pending_cancels``: what is unanswered and can still fill besides (the
orders whose cancel is unanswered; for each unanswered MODIFY, the order as it was before it, at
its old price and size; each TAKE in flight, at its limit price and size), the funding rate (the last ASSET_CTX or FUNDING rate
seen, 0 before any) and the mark price (the last ASSET_CTX or FUNDING price seen, else the mid).
A partially filled order is listed with its remaining size as of the fills delivered. ``pending_cancels``
lists the cancel-pending orders in id order, then the old versions of modified orders in the order
the MODIFYs were sent; an order with an unanswered MODIFY is therefore listed twice (new version in
``open_orders``, old in ``pending_cancels``), so exposure limits count both until the answer comes.

Matching at the exchange
------------------------
The exchange keeps its own copy of the book, rebuilt from the rows it has processed (ours is
rebuilt from the rows we have seen; neither includes our orders).

- Arrival of a PLACE: a bid at or above the best ask (an ask at or below the best bid) of the book
  as it stands would take liquidity, so the post-only order is rejected: it never rests, leaves
  the open orders when the answer reaches us and counts in ``rejections``. Otherwise it rests
  behind everything displayed at its price: ``queue_ahead`` = displayed size at arrival.
- BOOK row at the price and side of a resting order with new size S: the queue model moves
  ``queue_ahead``. The default (risk-averse) sets ``queue_ahead ← min(queue_ahead, S)``: only
  trades advance us (cancellations may have been behind us), but the queue ahead cannot be longer
  than the level. A probabilistic model also moves us by part of each cancellation (see
  :mod:`mmlab.sim.models`); the market volume traded at our level since its last BOOK row is
  passed along so that a decrease the trades explain is not counted as a cancellation. Growth
  leaves ``queue_ahead`` alone: newcomers join behind us. After a BOOK_CLEAR, once the snapshot
  that follows it (the rows with the same ``ts_local``) is applied, each resting order's queue
  moves as if its level had changed by a diff from its size before the clear to its size now (0
  if the level is gone).
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
  rested) the cancel fails, the fill stands and ``failed_cancels`` counts it when the answer
  reaches us.
- Arrival of a MODIFY of order k to price p' and size s'. Hyperliquid runs ``modify`` (and each
  entry of ``batchModify``) as a cancel of k followed by a new order; the new order is placed only
  if the cancel succeeded unless the action sets ``always_place`` (Hyperliquid API docs, exchange
  endpoint, "Modify an order"; quoted in nktkas/hyperliquid PR #145; the cancel-replace sequence is
  described in nautechsystems/nautilus_trader PR #3831). We follow it, keeping k's id (the
  contract of :class:`~mmlab.types.ActionKind`; Hyperliquid assigns a new oid):

  * k no longer rests (filled, cancelled, rejected, or itself gone by an earlier MODIFY): the
    modify fails like a failed cancel (``failed_cancels``), the fills stand;
  * k rests and the new price would take liquidity (a bid at or above the best ask, an ask at or
    below the best bid, as for a PLACE): the new post-only (Alo) order is rejected after the
    cancel succeeded, so k is cancelled and the answer counts in ``rejections``;
  * otherwise k is removed from its queue and rests at p' with size s' behind everything displayed
    at p' (``queue_ahead`` = displayed size at arrival, exactly as a new order), even when
    p' equals the old price: the cancel-replace loses the queue place.

  Size semantics: s' is the size that rests after the modify (Hyperliquid's new order has size
  s'), not a change of the total: fills of the old version before the MODIFY arrived stand and do
  not reduce s'. Those fills, delivered before the answer, reduce the old version listed in
  ``pending_cancels``; fills of the new version reduce the one in ``open_orders``. A fill that
  leaves any version with nothing remaining removes the order from both lists (an old version
  filled completely means the MODIFY will fail).
- Arrival of a TAKE (side s, limit price P, size Q): an immediate-or-cancel taker order. If the
  exchange's book is crossed or the opposite side is empty nothing fills; otherwise it fills
  against the displayed opposite side, best level first, at each level's displayed price, while
  the level is within P (asks ≤ P for a buy, bids ≥ P for a sell) and size is left: at a level
  with displayed size d it fills ``min(remaining, d)``. What is left is cancelled. The fills are
  ``Fill(is_maker=False)`` and pay the taker fee. Limitation: the replayed tape has no impact
  model, so the take does not remove the liquidity it took from the book (the next rows are the
  recording's, and a second take at once can fill against the same displayed size), it does not
  move prices, and it never trades against our own resting orders (the displayed book never
  includes them). It can only fill at displayed prices, never better.

Money
-----
- Fee of a fill: ``fee_usd = maker_fee_bps · 1e-4 · price · size`` (negative is a rebate) for
  our post-only orders, ``taker_fee_bps · 1e-4 · price · size`` for the fills of a TAKE.
  Fees come from ``SimConfig`` (``maker_fee_bps``/``taker_fee_bps``, or ``SimConfig.for_fee_tier``
  with a Hyperliquid tier) or the builder's ``fees``/``fee_tier``.
- FUNDING row with mark P and rate r: ``payment_usd = −position · P · r`` on the position the
  exchange holds when it processes the row (a long pays a positive rate), added to cash and to
  ``funding_usd`` (signed: what we received).
- ``cash_usd = −Σ side · price · size − Σ fee_usd + Σ payment_usd`` over the fills and funding
  payments delivered, accumulated in delivery order (within one poll: the rows' fills and
  payments in tape order, then the TAKEs' fills in answer order); :meth:`account` reports what
  has reached us.
"""

from __future__ import annotations

import math
import numbers
from bisect import bisect_left, bisect_right
from collections import deque
from typing import Callable, NamedTuple, Sequence

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
    RecordedFeedLatency,
    fee_schedule_for_tier,
    queue_model_from_name,
)
from mmlab.types import ActionKind, Fill, L2Book, OpenOrder, OrderAction, Side, Trade, VenueUpdate
from mmlab.units import bps_to_frac
from mmlab.venue import AccountState

__all__ = ["SimVenue", "SimVenueBuilder", "FundingPayment", "VenueModels", "resolve_venue_models", "make_sim_venue"]

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

# the exchange's answers to our actions
_RESTED = 0
_REJECTED = 1  # post-only rejection of a PLACE, or of a MODIFY's new price (the order is cancelled)
_CANCELLED = 2
_CANCEL_FAILED = 3  # a CANCEL or MODIFY found the order gone
_MODIFIED = 4
_TAKEN = 5  # a TAKE's fills (possibly none) and the cancellation of its rest

# action kinds as stored in flight
_PLACE = 0
_CANCEL = 1
_MODIFY = 2
_TAKE = 3
_ACTION_KINDS = {ActionKind.PLACE: _PLACE, ActionKind.CANCEL: _CANCEL, ActionKind.MODIFY: _MODIFY, ActionKind.TAKE: _TAKE}


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def trade_addresses(tape: Tape) -> tuple[list[str | None] | None, list[str | None] | None]:
    """Per-row buyer and seller addresses of a tape that has them, else ``(None, None)``."""
    if not tape.has_addresses:
        return None, None
    names: list[str | None] = [*tape.addresses, None]  # code −1 (no address) picks the None
    return [names[c] for c in tape.buyer.tolist()], [names[c] for c in tape.seller.tolist()]


class OpenInterestTape:
    """The open interest (coins) of the last asset context before a row; NaN before any."""

    __slots__ = ("_rows", "_values")

    def __init__(self, tape: Tape) -> None:
        rows = np.flatnonzero((tape.kind == EventKind.ASSET_CTX) & (tape.size > 0.0))
        self._rows = rows
        self._values = tape.size[rows]

    def before(self, end_row: int) -> float:
        """Open interest of the last asset-context row with index < ``end_row``."""
        k = int(np.searchsorted(self._rows, end_row)) - 1
        return float(self._values[k]) if k >= 0 else math.nan


class FundingPayment(NamedTuple):
    """One funding payment: at ``ts_local``, ``position`` coins at ``mark_price`` USD paid ``rate``.

    ``payment_usd = −position · mark_price · rate`` is what we received (negative when we paid).
    """

    ts_local: int
    position: float
    mark_price: float
    rate: float
    payment_usd: float


class VenueModels(NamedTuple):
    """The models a simulated venue runs with, resolved from a config and explicit overrides.

    ``exchange_ns[r]`` is ``E_r``, the exchange time of tape row r on the local axis (ns).
    """

    queue_model: QueueModel
    order_latency: LatencyModel
    feed_latency: ConstantLatency | RecordedFeedLatency
    response_latency: LatencyModel
    fees: FeeSchedule
    exchange_ns: np.ndarray


def resolve_venue_models(
    tape: Tape,
    config: SimConfig,
    *,
    queue_model: QueueModel | None = None,
    order_latency: LatencyModel | None = None,
    feed_latency: ConstantLatency | RecordedFeedLatency | None = None,
    response_latency: LatencyModel | None = None,
    fees: FeeSchedule | None = None,
    owner: str = "SimVenue",
) -> VenueModels:
    """Fill every model not given from ``config``; compute the rows' exchange times.

    Raises
    ------
    ValueError
        If the feed latency is neither a :class:`ConstantLatency` nor a
        :class:`RecordedFeedLatency` (a random feed latency would reorder the rows).
    """
    if feed_latency is None:
        if config.feed_latency_mode == "recorded":
            feed_latency = RecordedFeedLatency(config.feed_latency_s)
        else:
            feed_latency = ConstantLatency(config.feed_latency_s)
    if not isinstance(feed_latency, (ConstantLatency, RecordedFeedLatency)):
        # rows are ordered by ts_local; a random feed latency could reorder their exchange times
        raise ValueError(
            f"{owner}.feed_latency must be a ConstantLatency or a RecordedFeedLatency, got {feed_latency!r}"
        )
    if order_latency is None:
        if config.order_latency_samples_s:
            order_latency = EmpiricalLatency(config.order_latency_samples_s, config.latency_seed)
        else:
            order_latency = ConstantLatency(config.order_latency_s)
    if response_latency is None:
        if config.response_latency_samples_s:
            # its own stream: the same seed would replay the order latencies' draws
            response_latency = EmpiricalLatency(config.response_latency_samples_s, config.latency_seed + 1)
        elif config.response_latency_s is not None:
            response_latency = ConstantLatency(config.response_latency_s)
        else:
            # default: the answers travel like the feed's constant part
            response_latency = ConstantLatency(feed_latency.seconds)
    exchange_ns = np.ascontiguousarray(feed_latency.exchange_times_ns(tape.ts_local, tape.ts_exch), dtype=np.int64)
    return VenueModels(
        queue_model=queue_model or queue_model_from_name(config.queue_model),
        order_latency=order_latency,
        feed_latency=feed_latency,
        response_latency=response_latency,
        fees=fees or FeeSchedule(maker_bps=config.maker_fee_bps, taker_bps=config.taker_fee_bps, tier=config.fee_tier),
        exchange_ns=exchange_ns,
    )


def validate_sim_tape(tape: Tape, owner: str) -> None:
    """The tape checks every simulated venue makes; raise :class:`TapeError` naming row and field."""
    validate_tape(tape, where=f"{owner} tape {tape.source or tape.instrument.coin!r}")
    funding_rows = tape.kind == EventKind.FUNDING
    bad_mark = funding_rows & ~(np.isfinite(tape.price) & (tape.price > 0))
    if bad_mark.any():
        row = int(np.flatnonzero(bad_mark)[0])
        raise TapeError(f"{owner} tape: row {row}: field 'price' must be a positive finite mark on funding rows")


def validate_action(
    owner: str,
    index: int,
    action: OrderAction,
    next_order_id: int,
    side_of: Callable[[int], int | None] | None = None,
) -> None:
    """Raise ``ValueError`` naming the action's index and field if it cannot be sent.

    ``side_of(order_id)`` is the side of an order the strategy still knows (None otherwise); a
    MODIFY of such an order must keep its side.
    """
    where = f"{owner}.submit: action {index}"
    kind = action.kind
    if kind is ActionKind.CANCEL or kind is ActionKind.MODIFY:
        order_id = action.order_id
        if isinstance(order_id, bool) or not isinstance(order_id, int) or not 1 <= order_id < next_order_id:
            raise ValueError(f"{where}: order_id {order_id!r} was never assigned by this venue")
        if kind is ActionKind.CANCEL:
            return
    elif kind is not ActionKind.PLACE and kind is not ActionKind.TAKE:
        raise ValueError(f"{where}: kind must be an ActionKind, got {action.kind!r}")
    if action.side not in (1, -1):
        raise ValueError(f"{where}: side must be +1 or -1, got {action.side!r}")
    if not (_is_number(action.price) and math.isfinite(action.price) and action.price > 0):
        raise ValueError(f"{where}: price must be positive and finite, got {action.price!r}")
    if not (_is_number(action.size) and math.isfinite(action.size) and action.size > 0):
        raise ValueError(f"{where}: size must be positive and finite, got {action.size!r}")
    if kind is ActionKind.MODIFY and side_of is not None:
        known_side = side_of(action.order_id)
        if known_side is not None and known_side != int(action.side):
            raise ValueError(
                f"{where}: side {int(action.side)} of a MODIFY must be order {action.order_id}'s side {known_side}"
            )


class _Order:
    """One of our orders: the strategy's view (``view``, ``cancel_sent``) and the exchange's state.

    ``price``, ``size``, ``remaining`` and ``version`` (how many MODIFYs the exchange applied) are
    the exchange's; ``view`` and ``view_version`` (how many MODIFYs were sent) the strategy's.
    """

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
        "version",
        "view_version",
    )

    def __init__(self, order_id: int, side: int, price: float, size: float, ts_local_sent: int) -> None:
        self.order_id = order_id
        self.side = side
        self.price = price
        self.size = size
        self.remaining = size  # at the exchange
        self.ts_local_sent = ts_local_sent
        self.queue_ahead = 0.0
        # market volume traded at our level since its last BOOK row (the queue model's ``traded``)
        self.traded = 0.0
        self.cancel_sent = False
        self.view = OpenOrder(order_id=order_id, side=_SIDES[side], price=price, size=size, ts_local_sent=ts_local_sent)
        self.version = 0
        self.view_version = 0


class _OldVersion:
    """The strategy's view of an order as it was before an unanswered MODIFY (None: not known)."""

    __slots__ = ("order_id", "version", "view")

    def __init__(self, order_id: int, version: int, view: OpenOrder | None) -> None:
        self.order_id = order_id
        self.version = version
        self.view = view


class _Action(NamedTuple):
    """An action in flight: arrival at the exchange ``A`` and arrival of its answer ``D``, ns.

    ``order`` is the new order of a PLACE or TAKE; ``order_id`` the order a CANCEL or MODIFY
    names; ``price`` and ``size`` a MODIFY's new price and size.
    """

    arrival_ns: int
    answer_ns: int
    kind: int
    order: _Order | None
    order_id: int
    price: float
    size: float


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
    feed_latency : ConstantLatency or RecordedFeedLatency, optional
        Feed latency (exchange → us) of the tape's rows; default ``config.feed_latency_s`` as
        ``config.feed_latency_mode`` says.
    response_latency : LatencyModel, optional
        Latency of the exchange's answers to our actions (exchange → us); default
        ``config.response_latency_s`` or draws from ``config.response_latency_samples_s``, else
        the feed latency's constant part.
    fees : FeeSchedule, optional
        Maker and taker fees; default ``config.maker_fee_bps`` and ``config.taker_fee_bps``.

    :meth:`builder` assembles the same venue fluently (and picks the engine).

    Attributes
    ----------
    instrument : InstrumentSpec
        The tape's instrument.
    order_book : OrderBook
        The book as our feed has delivered it so far (without our orders).
    orders_placed, modifies_sent, takes_sent : int
        PLACE, MODIFY and TAKE actions submitted.
    rejections, failed_cancels : int
        Post-only rejections (of a PLACE, or of a MODIFY's new price) and CANCELs or MODIFYs that
        found the order gone, as their answers reached us.
    funding_events : list of FundingPayment
        Every funding payment delivered, in tape order.
    """

    def __init__(
        self,
        tape: Tape,
        config: SimConfig,
        *,
        book_levels: int = 20,
        queue_model: QueueModel | None = None,
        order_latency: LatencyModel | None = None,
        feed_latency: ConstantLatency | RecordedFeedLatency | None = None,
        response_latency: LatencyModel | None = None,
        fees: FeeSchedule | None = None,
    ) -> None:
        if isinstance(book_levels, bool) or not isinstance(book_levels, int) or book_levels < 1:
            raise ValueError(f"SimVenue.book_levels must be an integer >= 1, got {book_levels!r}")
        validate_sim_tape(tape, "SimVenue")
        models = resolve_venue_models(
            tape,
            config,
            queue_model=queue_model,
            order_latency=order_latency,
            feed_latency=feed_latency,
            response_latency=response_latency,
            fees=fees,
        )
        self.instrument: InstrumentSpec = tape.instrument
        self.tape = tape
        self.config = config
        self.book_levels = book_levels
        self.queue_model: QueueModel = models.queue_model
        self.order_latency: LatencyModel = models.order_latency
        self.feed_latency = models.feed_latency
        self.response_latency: LatencyModel = models.response_latency
        self.fees: FeeSchedule = models.fees
        self._draw_order_latency_ns: Callable[[], int] = models.order_latency.sampler()
        self._draw_response_latency_ns: Callable[[], int] = models.response_latency.sampler()
        # arrival at the exchange, and of the answer, of the last action sent: nothing overtakes them
        self._last_arrival_ns = _NEVER_NS
        self._last_answer_ns = _NEVER_NS
        self._maker_fee_frac = bps_to_frac(self.fees.maker_bps)
        # charged to the fills of TAKE orders, the only ones that take liquidity
        self._taker_fee_frac = bps_to_frac(self.fees.taker_bps)

        # Python lists: indexing them in the row loop is several times faster than numpy scalars.
        self._exchange_ns: list[int] = models.exchange_ns.tolist()
        self._ts_exch: list[int] = tape.ts_exch.tolist()
        self._ts_local: list[int] = tape.ts_local.tolist()
        self._kind: list[int] = tape.kind.tolist()
        self._side: list[int] = tape.side.tolist()
        self._price: list[float] = tape.price.tolist()
        self._size: list[float] = tape.size.tolist()
        self._rate: list[float] = tape.rate.tolist()
        self._trade_id: list[int] = tape.trade_id.tolist()
        self._buyer, self._seller = trade_addresses(tape)
        self._open_interest = OpenInterestTape(tape)
        self._rows = len(tape)

        # -- the exchange ------------------------------------------------------------------
        self._exchange_book = OrderBook()
        self._exchange_row = 0  # next row the exchange processes
        # after a BOOK_CLEAR: the first row past its snapshot; resting queues move when it is reached
        self._resync_row = -1
        self._sizes_before_clear: dict[int, float] = {}
        self._resting_by_id: dict[int, _Order] = {}
        self._resting: dict[int, dict[float, list[_Order]]] = {1: {}, -1: {}}
        self._exchange_position = 0.0
        self._in_flight: deque[_Action] = deque()  # not yet at the exchange, in submission order
        # (D, answer, order id, action kind, a TAKE's fills) on their way to us
        self._answers: deque[tuple[int, int, int, int, tuple[Fill, ...]]] = deque()
        # fills and funding payments on their way to us: (row, Fill or FundingPayment, remaining,
        # version of the order that filled)
        self._row_effects: deque[tuple[int, Fill | FundingPayment, float, int]] = deque()

        # -- what has reached us -----------------------------------------------------------
        self.order_book = OrderBook()
        self._next_row = 0  # next row our feed delivers
        self._book_row = -1  # last BOOK / BOOK_CLEAR row delivered
        self._snapshot_row = -1  # row the cached snapshot was built after
        self._snapshot: L2Book | None = None
        self._clock_ns = _NEVER_NS
        self._trade_rows: list[int] = []
        self._fills: list[Fill] = []
        self._next_order_id = 1
        self._known: dict[int, _Order] = {}  # the strategy's open orders and pending cancels
        # per unanswered MODIFY, in submission order: the order before it
        self._old_versions: deque[_OldVersion] = deque()
        self._position = 0.0
        self._cash_usd = 0.0
        self._fees_usd = 0.0
        self._funding_usd = 0.0
        self._volume_usd = 0.0
        self._fill_count = 0
        self._funding_rate = 0.0
        self._mark_price = math.nan

        self.orders_placed = 0
        self.modifies_sent = 0
        self.takes_sent = 0
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
        seen_end = bisect_right(self._ts_local, ts, self._next_row)
        self._run_exchange(seen_end, ts)
        self._deliver(seen_end, ts)

        if self._book_row != self._snapshot_row:
            self._snapshot = self.order_book.snapshot(
                self.book_levels, self._ts_exch[self._book_row], self._ts_local[self._book_row]
            )
            self._snapshot_row = self._book_row

        trades = tuple(self._trade(row) for row in self._trade_rows)
        self._trade_rows.clear()
        fills = tuple(self._fills)
        self._fills.clear()
        known = self._known
        open_orders = tuple(order.view for order in known.values() if not order.cancel_sent)
        pending = [order.view for order in known.values() if order.cancel_sent]
        if self._old_versions:
            # the versions an unanswered MODIFY replaces can still fill
            pending.extend(old.view for old in self._old_versions if old.view is not None and old.order_id in known)
        pending_cancels = tuple(pending)
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
            open_interest=self._open_interest.before(self._next_row),
        )

    def submit(self, actions: Sequence[OrderAction], ts_local: int) -> list[int]:
        """Send ``actions`` stamped with local time ``ts_local``; return the new orders' ids.

        PLACE and TAKE actions get fresh order ids (1, 2, ...) in the order given, whatever their
        ``order_id`` field, and both ids are returned; CANCEL and MODIFY actions name their order
        in ``order_id``. A MODIFY moves the strategy's view of the order to the new price and size
        at once (the old version is listed in ``pending_cancels`` until the answer); a TAKE is
        listed in ``pending_cancels`` until its answer. All actions are validated before any is
        sent.

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
            validate_action("SimVenue", index, action, self._next_order_id, self._known_side)
        self._clock_ns = ts
        assigned: list[int] = []
        for action in actions:
            # A = max(t + drawn entry latency, A of the previous action): actions reach the
            # exchange in submission order, so a cancel never overtakes its place
            arrival_ns = max(ts + self._draw_order_latency_ns(), self._last_arrival_ns)
            self._last_arrival_ns = arrival_ns
            # D = max(A + drawn response latency, D of the previous action): answers in order
            answer_ns = max(arrival_ns + self._draw_response_latency_ns(), self._last_answer_ns)
            self._last_answer_ns = answer_ns
            kind = _ACTION_KINDS[action.kind]
            if kind == _PLACE or kind == _TAKE:
                order = _Order(self._next_order_id, int(action.side), float(action.price), float(action.size), ts)
                self._next_order_id += 1
                self._known[order.order_id] = order
                self._in_flight.append(_Action(arrival_ns, answer_ns, kind, order, order.order_id, 0.0, 0.0))
                if kind == _PLACE:
                    self.orders_placed += 1
                else:
                    # immediate-or-cancel: it can fill until its answer, never rests
                    order.cancel_sent = True
                    self.takes_sent += 1
                assigned.append(order.order_id)
            elif kind == _MODIFY:
                order_id = int(action.order_id)
                price, size = float(action.price), float(action.size)
                target = self._known.get(order_id)
                if target is not None:
                    self._old_versions.append(_OldVersion(order_id, target.view_version, target.view))
                    target.view_version += 1
                    target.view = OpenOrder(
                        order_id=order_id, side=target.view.side, price=price, size=size, ts_local_sent=ts
                    )
                else:
                    self._old_versions.append(_OldVersion(order_id, -1, None))
                self._in_flight.append(_Action(arrival_ns, answer_ns, kind, None, order_id, price, size))
                self.modifies_sent += 1
            else:
                target = self._known.get(action.order_id)
                if target is not None:
                    target.cancel_sent = True
                self._in_flight.append(_Action(arrival_ns, answer_ns, kind, None, int(action.order_id), 0.0, 0.0))
        return assigned

    def _known_side(self, order_id: int) -> int | None:
        order = self._known.get(order_id)
        return None if order is None else order.side

    def account(self) -> AccountState:
        """Position and cash from the fills and funding payments that have reached us."""
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
        """Number of tape rows our feed has delivered so far."""
        return self._next_row

    # -- the exchange ----------------------------------------------------------------------

    def _run_exchange(self, seen_end: int, answers_due_ns: int) -> None:
        """Process the rows before ``seen_end``, then the actions answered by ``answers_due_ns``."""
        if self._exchange_row < seen_end:
            self._exchange_rows(seen_end)
        in_flight = self._in_flight
        while in_flight and in_flight[0].answer_ns <= answers_due_ns:
            # the rows that happened before the action arrived come first (E is non-decreasing)
            before = bisect_left(self._exchange_ns, in_flight[0].arrival_ns, self._exchange_row)
            if before > self._exchange_row:
                self._exchange_rows(before)
            self._arrive(in_flight.popleft(), self._exchange_row)

    def _exchange_rows(self, end: int) -> None:
        """Process rows up to ``end`` at the exchange, each after the actions with ``A ≤ E_r``."""
        exchange_ns = self._exchange_ns
        kinds, sides, prices, sizes = self._kind, self._side, self._price, self._size
        book = self._exchange_book
        apply_level = book.apply
        size_at = book.size_at
        on_depth = self.queue_model.on_depth
        resting = self._resting
        resting_by_id = self._resting_by_id
        in_flight = self._in_flight
        next_arrival_ns = in_flight[0].arrival_ns if in_flight else math.inf
        resync_row = self._resync_row

        for row in range(self._exchange_row, end):
            if row == resync_row:
                self._move_queues_after_snapshot()
                resync_row = -1
            if exchange_ns[row] >= next_arrival_ns:
                # A ≤ E_r: these actions reached the exchange before this row happened
                while in_flight and in_flight[0].arrival_ns <= exchange_ns[row]:
                    self._arrive(in_flight.popleft(), row)
                next_arrival_ns = in_flight[0].arrival_ns if in_flight else math.inf
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
            elif kind == _TRADE:
                if resting_by_id and resting[-sides[row]]:
                    self._match_trade(row)
            elif kind == _BOOK_CLEAR:
                if resting_by_id and resync_row == -1:
                    # what our levels showed before the snapshot, for the queue model afterwards
                    self._sizes_before_clear = {
                        order_id: size_at(order.side, order.price) for order_id, order in resting_by_id.items()
                    }
                book.clear()
                if resting_by_id:
                    resync_row = bisect_right(self._ts_local, self._ts_local[row], row)
            elif kind == _FUNDING:
                self._pay_funding(row)
        self._exchange_row = end
        if resync_row == end:
            # the snapshot after the clear is complete
            self._move_queues_after_snapshot()
            resync_row = -1
        self._resync_row = resync_row

    def _arrive(self, action: _Action, next_row: int) -> None:
        """Process one action at the exchange, before row ``next_row``; its answer starts back to us."""
        kind = action.kind
        fills: tuple[Fill, ...] = ()
        if kind == _PLACE:
            answer = self._arrive_place(action.order)
        elif kind == _CANCEL:
            answer = self._arrive_cancel(action.order_id)
        elif kind == _MODIFY:
            answer = self._arrive_modify(action.order_id, action.price, action.size)
        else:
            fills = self._arrive_take(action, next_row)
            answer = _TAKEN
        self._answers.append((action.answer_ns, answer, action.order_id, kind, fills))

    def _crosses(self, side: int, price: float) -> bool:
        """Post-only: a bid at or above the best ask (ask at or below the best bid) would take.

        Comparisons with NaN (empty opposite side) are False, so such an order rests.
        """
        book = self._exchange_book
        return price >= book.best_ask() if side == 1 else price <= book.best_bid()

    def _arrive_place(self, order: _Order) -> int:
        side, price = order.side, order.price
        if self._crosses(side, price):
            return _REJECTED
        self._rest(order)
        return _RESTED

    def _rest(self, order: _Order) -> None:
        """Join the queue at the order's price behind everything displayed there."""
        order.queue_ahead = self._exchange_book.size_at(order.side, order.price)
        self._resting[order.side].setdefault(order.price, []).append(order)
        self._resting_by_id[order.order_id] = order

    def _arrive_modify(self, order_id: int, price: float, size: float) -> int:
        """Cancel-replace (see the module docstring): fail, reject (cancelling the order) or re-queue."""
        order = self._resting_by_id.get(order_id)
        if order is None:
            # filled, cancelled or rejected before the modify arrived: the fills stand
            return _CANCEL_FAILED
        # the cancel half: the order leaves its queue (and the queue bookkeeping of a snapshot)
        self._remove_resting(order)
        self._sizes_before_clear.pop(order_id, None)
        # the new (Alo) order half: rejected if it would take, and the old one is already gone
        if self._crosses(order.side, price):
            return _REJECTED
        order.price = price
        order.size = size
        # the new order's size is what rests, whatever the old one filled
        order.remaining = size
        order.traded = 0.0
        order.version += 1
        self._rest(order)
        return _MODIFIED

    def _arrive_take(self, action: _Action, next_row: int) -> tuple[Fill, ...]:
        """Fill an immediate-or-cancel order against the displayed book (module docstring, TAKE)."""
        order = action.order
        book = self._exchange_book
        side, limit = order.side, order.price
        best_bid, best_ask = book.best_bid(), book.best_ask()
        if best_bid >= best_ask or next_row == 0:
            # a crossed (or locked) book has no price to trust; before any row there is no book
            return ()
        fills: list[Fill] = []
        remaining = order.size
        # the arrival on the tape's exchange clock: ts_exch_r + (A − E_r), r the last row processed
        last = next_row - 1
        ts_exch = self._ts_exch[last] + (action.arrival_ns - self._exchange_ns[last])
        for price, displayed in book.top_levels(-side):
            # beyond the limit: an ask above it for a buy, a bid below it for a sell
            if side * (price - limit) > 0.0:
                break
            fill_size = displayed
            if remaining - displayed <= _REMAINDER_TOLERANCE * order.size:
                fill_size = remaining
            # taker fee: taker_fee_bps · 1e-4 · notional
            fee_usd = price * fill_size * self._taker_fee_frac
            self._exchange_position += side * fill_size
            fills.append(
                Fill(
                    ts_exch=ts_exch,
                    ts_local=action.answer_ns,
                    order_id=order.order_id,
                    side=_SIDES[side],
                    price=price,
                    size=fill_size,
                    fee_usd=fee_usd,
                    is_maker=False,
                )
            )
            if fill_size == remaining:
                break
            remaining -= fill_size
        # the rest is cancelled: a TAKE never rests
        order.remaining = 0.0
        return tuple(fills)

    def _arrive_cancel(self, order_id: int) -> int:
        order = self._resting_by_id.get(order_id)
        if order is None:
            # filled (or rejected) before the cancel arrived: the fill stands
            return _CANCEL_FAILED
        self._remove_resting(order)
        return _CANCELLED

    def _remove_resting(self, order: _Order) -> None:
        del self._resting_by_id[order.order_id]
        level = self._resting[order.side]
        queue = level[order.price]
        queue.remove(order)
        if not queue:
            del level[order.price]

    def _move_queues_after_snapshot(self) -> None:
        """After a snapshot, move each queue as if its level changed by a diff.

        A snapshot that shows our level smaller than before is the same evidence as a diff that
        does, so the queue model sees (size before the clear, size now); the risk-averse model
        then just clamps to the level. Orders that arrived during the snapshot saw no change.
        """
        book = self._exchange_book
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
        # maker fee: maker_fee_bps · 1e-4 · notional, negative for a rebate
        fee_usd = price * fill_size * self._maker_fee_frac
        self._exchange_position += side * fill_size
        fill = Fill(
            ts_exch=self._ts_exch[row],
            ts_local=self._ts_local[row],
            order_id=order.order_id,
            side=_SIDES[side],
            price=price,
            size=fill_size,
            fee_usd=fee_usd,
            is_maker=True,
        )
        if fill_size >= order.remaining:
            order.remaining = 0.0
            self._remove_resting(order)
        else:
            order.remaining -= fill_size
        # reaches us with the row that caused it
        self._row_effects.append((row, fill, order.remaining, order.version))

    def _pay_funding(self, row: int) -> None:
        mark = self._price[row]
        rate = self._rate[row]
        position = self._exchange_position
        # a long pays a positive rate: payment = −position · mark · rate
        payment_usd = -position * mark * rate
        payment = FundingPayment(
            ts_local=self._ts_local[row], position=position, mark_price=mark, rate=rate, payment_usd=payment_usd
        )
        self._row_effects.append((row, payment, 0.0, 0))

    # -- what reaches us -------------------------------------------------------------------

    def _deliver(self, seen_end: int, ts: int) -> None:
        """Our feed's rows before ``seen_end``, their fills and funding, and the answers due by ``ts``."""
        kinds, sides, prices, sizes = self._kind, self._side, self._price, self._size
        apply_level = self.order_book.apply
        book_row = self._book_row
        trade_rows = self._trade_rows
        for row in range(self._next_row, seen_end):
            kind = kinds[row]
            if kind == _BOOK:
                apply_level(sides[row], prices[row], sizes[row])
                book_row = row
            elif kind == _TRADE:
                trade_rows.append(row)
            elif kind == _BOOK_CLEAR:
                self.order_book.clear()
                book_row = row
            elif kind == _ASSET_CTX:
                rate = self._rate[row]
                if rate == rate:  # NaN when the context carried no prediction
                    self._funding_rate = rate
                mark = prices[row]
                if mark > 0.0:  # False for NaN too
                    self._mark_price = mark
            elif kind == _FUNDING:
                self._funding_rate = self._rate[row]
                self._mark_price = prices[row]
        self._next_row = seen_end
        self._book_row = book_row

        effects = self._row_effects
        while effects and effects[0][0] < seen_end:
            _, effect, remaining, version = effects.popleft()
            if isinstance(effect, Fill):
                self._deliver_fill(effect, remaining, version)
            else:
                # cash: + payment
                self._cash_usd += effect.payment_usd
                self._funding_usd += effect.payment_usd
                self.funding_events.append(effect)

        answers = self._answers
        while answers and answers[0][0] <= ts:
            _, answer, order_id, kind, fills = answers.popleft()
            if kind == _MODIFY:
                # the old version's last chance to fill has passed (or the order is gone)
                self._old_versions.popleft()
            for fill in fills:
                self._account_fill(fill)
            if answer == _REJECTED:
                self.rejections += 1
            elif answer == _CANCEL_FAILED:
                self.failed_cancels += 1
            if answer != _RESTED and answer != _MODIFIED:
                self._known.pop(order_id, None)

    def _deliver_fill(self, fill: Fill, remaining: float, version: int) -> None:
        self._account_fill(fill)
        order = self._known.get(fill.order_id)
        if order is None:
            return  # its cancel's answer came first
        if remaining == 0.0:
            # nothing rests: the order is done (an old version filled completely: its MODIFY fails)
            del self._known[fill.order_id]
        elif version == order.view_version:
            view = order.view
            order.view = OpenOrder(
                order_id=view.order_id, side=view.side, price=view.price, size=remaining, ts_local_sent=view.ts_local_sent
            )
        else:
            # a version an unanswered MODIFY replaces (if its answer came first, nothing to update)
            for old in self._old_versions:
                if old.order_id == fill.order_id and old.version == version and old.view is not None:
                    view = old.view
                    old.view = OpenOrder(
                        order_id=view.order_id, side=view.side, price=view.price, size=remaining,
                        ts_local_sent=view.ts_local_sent,
                    )  # fmt: skip
                    break

    def _account_fill(self, fill: Fill) -> None:
        side = int(fill.side)
        notional_usd = fill.price * fill.size
        self._position += side * fill.size
        # cash: −side · price · size − fee
        self._cash_usd -= side * notional_usd + fill.fee_usd
        self._fees_usd += fill.fee_usd
        self._volume_usd += notional_usd
        self._fill_count += 1
        self._fills.append(fill)

    def _trade(self, row: int) -> Trade:
        return Trade(
            ts_exch=self._ts_exch[row],
            ts_local=self._ts_local[row],
            price=self._price[row],
            size=self._size[row],
            aggressor=_SIDES[self._side[row]],
            trade_id=self._trade_id[row],
            buyer=self._buyer[row] if self._buyer is not None else None,
            seller=self._seller[row] if self._seller is not None else None,
        )


def make_sim_venue(tape: Tape, config: SimConfig | None = None, **models: object):
    """The simulated venue ``config.engine`` names: compiled (default) or the Python reference.

    ``models`` are :class:`SimVenue`'s keyword arguments (``book_levels``, ``queue_model``, ...).
    """
    config = config or SimConfig()
    if config.engine == "compiled":
        from mmlab.sim.engine import FastSimVenue

        return FastSimVenue(tape, config, **models)
    return SimVenue(tape, config, **models)


class SimVenueBuilder:
    """Assemble a simulated venue from swappable models, as hftbacktest's asset builder does.

    ``SimVenue.builder(tape).queue(ProbabilisticQueue.power(2)).order_latency(EmpiricalLatency(...))
    .feed_latency(RecordedFeedLatency(base_s=0.05)).response_latency(ConstantLatency(0.02))
    .fees(maker_bps=0.8, taker_bps=3.5).book_levels(20).build()``

    Anything not set comes from the :class:`~mmlab.config.SimConfig` the builder started from,
    including the engine (``config.engine``, or :meth:`engine`): :meth:`build` returns a
    :class:`mmlab.sim.engine.FastSimVenue` for ``"compiled"`` and a :class:`SimVenue` for
    ``"reference"``, with the same interface and results.
    """

    def __init__(self, tape: Tape, config: SimConfig) -> None:
        self._tape = tape
        self._config = config
        self._engine = config.engine
        self._book_levels = 20
        self._queue_model: QueueModel | None = None
        self._order_latency: LatencyModel | None = None
        self._feed_latency: ConstantLatency | RecordedFeedLatency | None = None
        self._response_latency: LatencyModel | None = None
        self._fees: FeeSchedule | None = None

    def queue(self, model: QueueModel) -> SimVenueBuilder:
        """Queue position model (:class:`RiskAverseQueue`, :class:`ProbabilisticQueue`)."""
        self._queue_model = model
        return self

    def order_latency(self, model: LatencyModel) -> SimVenueBuilder:
        """Order entry latency, submit → exchange."""
        self._order_latency = model
        return self

    def feed_latency(self, model: ConstantLatency | RecordedFeedLatency) -> SimVenueBuilder:
        """Feed latency, exchange → us: constant, or recorded row by row (:class:`RecordedFeedLatency`)."""
        self._feed_latency = model
        return self

    def response_latency(self, model: LatencyModel) -> SimVenueBuilder:
        """Latency of the exchange's answers (acks, rejections, cancel results), exchange → us."""
        self._response_latency = model
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

    def engine(self, name: str) -> SimVenueBuilder:
        """``"compiled"`` (:class:`mmlab.sim.engine.FastSimVenue`) or ``"reference"`` (:class:`SimVenue`)."""
        if name not in ("compiled", "reference"):
            raise ValueError(f"SimVenueBuilder.engine must be 'compiled' or 'reference', got {name!r}")
        self._engine = name
        return self

    def build(self):
        """The venue, as :class:`mmlab.sim.engine.FastSimVenue` or :class:`SimVenue` (see :meth:`engine`)."""
        return make_sim_venue(
            self._tape,
            self._config.replace(engine=self._engine),
            book_levels=self._book_levels,
            queue_model=self._queue_model,
            order_latency=self._order_latency,
            feed_latency=self._feed_latency,
            response_latency=self._response_latency,
            fees=self._fees,
        )
