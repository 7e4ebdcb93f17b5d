"""The compiled replay engine: :class:`SimVenue`'s rules in numba, and a compiled fixed-spread run.

:class:`FastSimVenue` has exactly the interface and the results of the reference
:class:`~mmlab.sim.venue.SimVenue` (whose module docstring is the specification: clocks, matching,
queues, money); the tests replay real tapes through both and require identical fills, rejections,
failed cancels, funding payments and cash. It is what ``SimConfig.engine = "compiled"`` (the
default) builds, and what :func:`~mmlab.sim.backtest.run_backtest` uses.
:func:`run_fixed_spread` runs the whole replay, quote cycles included, inside compiled code with
the rule of :class:`~mmlab.sim.baselines.FixedSpreadQuoter` (same grid rounding, the executor's
reconcile with its MODIFYs and its exposure cap, the same fills), as hftbacktest runs numba
strategies. MODIFY and TAKE actions follow the reference's rules (its module docstring), the
TAKE's fills coming back with its answer through a take-fills buffer.

Layout (after hftbacktest's ``HashMapMarketDepth``/ROI-vector depth and its order arrays)
-----------------------------------------------------------------------------------------
- Book levels. Every distinct price of the tape's BOOK rows gets an index, its rank among them
  (``level_price`` is sorted), and each side of a book is a float array of sizes over those
  indices, with the best index tracked (a deletion at the best scans to the next occupied level)
  and the occupied index range kept so that a BOOK_CLEAR zeroes only that range. The rank is the
  exact version of hftbacktest's ``price / tick`` index: every tape price maps to its own index by
  construction (no rounding to verify), the order of indices is the order of prices, and the
  arrays hold only the prices the tape uses (the Binance BTCUSDT capture's snapshot spans 560 to
  621,368.7 USDT, 6.2 million ticks of 0.1 but 19,186 distinct prices). An order at a price the
  tape's book never shows has level −1: nothing is ever displayed there. Trades and our orders
  are compared by their float prices, as in the reference.
- Two books: the exchange's (rows as the exchange processes them) and ours (rows as the feed
  delivers them).
- Our orders live in fixed-capacity slot arrays indexed by ``order_id & (capacity − 1)``; the
  resting orders are kept as a list of ids in arrival order (a MODIFY that lands moves its order
  to the end), the known (strategy view) orders as a list of ids in id order, which is
  submission order. Actions in flight are a ring buffer in submission order; an entry stays until
  its answer is delivered, so a MODIFY's entry also holds the strategy's view of the version it
  replaces (listed in ``pending_cancels`` meanwhile). Fills and funding payments waiting for
  their row's local time are an effects buffer; a TAKE's fills, which wait for its answer, a
  take-fills buffer. Python doubles any of them when full (:class:`_Capacity`), so no fixed limit
  is reached.
- Random latencies are drawn in Python, from the same samplers and in the same order as the
  reference, and enter the compiled code as arrival times (or, for :func:`run_fixed_spread`, as
  blocks of pre-drawn values).

Compilation uses ``cache=True``: the first process compiles (tens of seconds) and stores machine
code next to this module; later processes load it (see ``benchmarks/bench_replay.py`` for both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import pandas as pd
from numba import njit

from mmlab.config import InstrumentSpec, SimConfig
from mmlab.data.tape import EventKind, Tape
from mmlab.sim.models import (
    ConstantLatency,
    FeeSchedule,
    LatencyModel,
    ProbabilisticQueue,
    QueueModel,
    RecordedFeedLatency,
    RiskAverseQueue,
)
from mmlab.sim.venue import FundingPayment, OpenInterestTape, resolve_venue_models, trade_addresses, validate_action, validate_sim_tape
from mmlab.types import ActionKind, Fill, L2Book, OpenOrder, OrderAction, Side, Trade, VenueUpdate
from mmlab.units import bps_to_frac
from mmlab.venue import AccountState

__all__ = ["FastSimVenue", "FixedSpreadRun", "run_fixed_spread", "queue_model_code", "warm_up"]

# -- constants shared with the compiled code (numba freezes module globals at compile time) ----

_BOOK = int(EventKind.BOOK)
_TRADE = int(EventKind.TRADE)
_FUNDING = int(EventKind.FUNDING)
_ASSET_CTX = int(EventKind.ASSET_CTX)
_BOOK_CLEAR = int(EventKind.BOOK_CLEAR)
_REMAINDER_TOLERANCE = 1e-9  # as in mmlab.sim.venue
_NEVER_NS = -(2**63)
# mmlab.units: the Hyperliquid grid and its rounding slack
_MAX_SIG_FIGS = 5
_PERP_MAX_DECIMALS = 6
_ROUNDING_SLACK = 1e-9

# queue models
QM_RISK_AVERSE, QM_POWER, QM_LOG, QM_POWER2, QM_LOG2, QM_POWER3 = 0, 1, 2, 3, 4, 5
_QM_FORMS = {"power": QM_POWER, "log": QM_LOG, "power2": QM_POWER2, "log2": QM_LOG2, "power3": QM_POWER3}

# book integer state: best indices (−1 when the side is empty) and occupied index ranges
BK_BEST_BID, BK_BEST_ASK, BK_LO_BID, BK_HI_BID, BK_LO_ASK, BK_HI_ASK = 0, 1, 2, 3, 4, 5
_BK_SIZE = 6

# order flags
OF_IN_FLIGHT = 1  # PLACE or TAKE not yet at the exchange
OF_RESTING = 2  # in the exchange's book
OF_KNOWN = 4  # in the strategy's view (open order or pending cancel)
OF_CANCEL_SENT = 8
OF_BEFORE = 16  # has a size before the last BOOK_CLEAR

# actions and answers (mmlab.sim.venue's codes)
AK_PLACE, AK_CANCEL, AK_MODIFY, AK_TAKE = 0, 1, 2, 3
ANS_RESTED, ANS_REJECTED, ANS_CANCELLED, ANS_CANCEL_FAILED, ANS_MODIFIED, ANS_TAKEN = 0, 1, 2, 3, 4, 5

_ACTION_CODES = {ActionKind.PLACE: AK_PLACE, ActionKind.CANCEL: AK_CANCEL, ActionKind.MODIFY: AK_MODIFY, ActionKind.TAKE: AK_TAKE}

# effects
EF_FILL, EF_FUNDING = 0, 1

# integer state
(
    S_ROWS,
    S_X_ROW,  # next row the exchange processes
    S_L_ROW,  # next row our feed delivers
    S_RESYNC,  # first row past the snapshot after a BOOK_CLEAR, −1 if none pending
    S_NEXT_ID,
    S_MASK,  # order slot mask (capacity − 1)
    S_REST_N,
    S_KNOWN_N,
    S_A_HEAD,  # next action to arrive at the exchange
    S_A_DELIVER,  # next answer to deliver
    S_A_TAIL,
    S_A_MASK,
    S_E_DELIVER,  # next effect to deliver
    S_E_TAIL,
    S_BOOK_ROW,  # last BOOK / BOOK_CLEAR row delivered, −1 before any
    S_PLACED,
    S_REJECTIONS,
    S_FAILED_CANCELS,
    S_FILLS,
    S_LAST_ARRIVAL,
    S_LAST_ANSWER,
    S_QM,
    S_CANCELS_SENT,
    S_CYCLE,  # run_fixed_spread: next cycle
    S_DRAW_ORDER,  # run_fixed_spread: next pre-drawn latency
    S_DRAW_RESPONSE,
    S_T_DELIVER,  # next take fill to deliver
    S_T_TAIL,
    S_MODIFIES,
    S_TAKES,
) = range(30)
_S_SIZE = 30

# float state
(
    F_POSITION,
    F_CASH,
    F_FEES,
    F_FUNDING,
    F_VOLUME,
    F_X_POSITION,
    F_FUNDING_RATE,
    F_MARK,
    F_MAKER_FRAC,
    F_QM_N,
    F_TAKER_FRAC,
) = range(11)
_F_SIZE = 11

# statuses of the compiled entry points
ST_OK, ST_EFFECTS_FULL, ST_ORDERS_FULL, ST_ACTIONS_FULL, ST_DRAWS_EMPTY, ST_TAKES_FULL = 0, 1, 2, 3, 4, 5


class _TapeArrays(NamedTuple):
    ts_local: np.ndarray  # int64
    ts_exch: np.ndarray  # int64
    exchange_ns: np.ndarray  # int64, E_r
    kind: np.ndarray  # int64
    side: np.ndarray  # int64
    level: np.ndarray  # int64, BOOK rows' level index, −1 elsewhere
    price: np.ndarray  # float64
    size: np.ndarray  # float64
    rate: np.ndarray  # float64
    level_price: np.ndarray  # float64, sorted distinct BOOK prices


class _Books(NamedTuple):
    x_bid: np.ndarray
    x_ask: np.ndarray
    x_state: np.ndarray
    l_bid: np.ndarray
    l_ask: np.ndarray
    l_state: np.ndarray


class _Orders(NamedTuple):
    order_id: np.ndarray  # int64, 0 = free slot
    side: np.ndarray  # int64
    level: np.ndarray  # int64
    flags: np.ndarray  # int64
    ts_sent: np.ndarray  # int64, of the version the strategy sees
    version: np.ndarray  # int64, MODIFYs the exchange applied
    view_version: np.ndarray  # int64, MODIFYs sent
    price: np.ndarray  # at the exchange
    size: np.ndarray  # at the exchange
    remaining: np.ndarray  # at the exchange
    view_price: np.ndarray  # as the strategy knows it
    view_size: np.ndarray  # as the strategy knows it
    queue: np.ndarray
    traded: np.ndarray
    before: np.ndarray
    resting: np.ndarray  # int64 ids, id order
    known: np.ndarray  # int64 ids, id order
    scratch: np.ndarray  # int64


class _Actions(NamedTuple):
    kind: np.ndarray
    order_id: np.ndarray
    arrival: np.ndarray
    answer: np.ndarray
    result: np.ndarray
    level: np.ndarray  # MODIFY: the new price's level
    version: np.ndarray  # MODIFY: the version it replaces in the strategy's view, −1 if unknown
    old_ts: np.ndarray  # MODIFY: that version's ts_local_sent
    price: np.ndarray  # MODIFY: new price
    size: np.ndarray  # MODIFY: new size
    old_price: np.ndarray  # MODIFY: the replaced version's price
    old_size: np.ndarray  # MODIFY: the replaced version's remaining size as the strategy knows it


class _Effects(NamedTuple):
    kind: np.ndarray
    row: np.ndarray
    order_id: np.ndarray
    side: np.ndarray
    price: np.ndarray  # fill price or funding mark
    size: np.ndarray  # fill size or funding position
    fee: np.ndarray  # fill fee or funding rate
    value: np.ndarray  # remaining size after the fill, or the funding payment
    version: np.ndarray  # int64, the filled order's version at the exchange


class _TakeFills(NamedTuple):
    action: np.ndarray  # int64, the TAKE's action counter
    order_id: np.ndarray  # int64
    side: np.ndarray  # int64
    ts_exch: np.ndarray  # int64
    ts_local: np.ndarray  # int64, the answer's arrival D
    price: np.ndarray
    size: np.ndarray
    fee: np.ndarray


# -- the book ------------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _pymin(a, b):
    # Python's min(a, b): the first argument unless the second is smaller
    return b if b < a else a


@njit(cache=True, inline="always")
def _pymax(a, b):
    # Python's max(a, b): the first argument unless the second is larger
    return b if b > a else a


@njit(cache=True)
def _book_apply(bid, ask, state, side, level, size):
    """Set the size at ``level`` on ``side``; 0 deletes the level."""
    if side == 1:
        bid[level] = size
        if size > 0.0:
            if level < state[BK_LO_BID]:
                state[BK_LO_BID] = level
            if level > state[BK_HI_BID]:
                state[BK_HI_BID] = level
            if level > state[BK_BEST_BID]:
                state[BK_BEST_BID] = level
        elif level == state[BK_BEST_BID]:
            lo = state[BK_LO_BID]
            j = level - 1
            while j >= lo and bid[j] == 0.0:
                j -= 1
            state[BK_BEST_BID] = j if j >= lo else -1
    else:
        ask[level] = size
        if size > 0.0:
            if level < state[BK_LO_ASK]:
                state[BK_LO_ASK] = level
            if level > state[BK_HI_ASK]:
                state[BK_HI_ASK] = level
            if state[BK_BEST_ASK] < 0 or level < state[BK_BEST_ASK]:
                state[BK_BEST_ASK] = level
        elif level == state[BK_BEST_ASK]:
            hi = state[BK_HI_ASK]
            j = level + 1
            while j <= hi and ask[j] == 0.0:
                j += 1
            state[BK_BEST_ASK] = j if j <= hi else -1


@njit(cache=True)
def _book_clear(bid, ask, state):
    for j in range(state[BK_LO_BID], state[BK_HI_BID] + 1):
        bid[j] = 0.0
    for j in range(state[BK_LO_ASK], state[BK_HI_ASK] + 1):
        ask[j] = 0.0
    _book_reset(state, bid.shape[0])


@njit(cache=True)
def _book_reset(state, levels):
    state[BK_BEST_BID] = -1
    state[BK_BEST_ASK] = -1
    state[BK_LO_BID] = levels
    state[BK_HI_BID] = -1
    state[BK_LO_ASK] = levels
    state[BK_HI_ASK] = -1


@njit(cache=True, inline="always")
def _size_at(bid, ask, side, level):
    if level < 0:
        return 0.0
    return bid[level] if side == 1 else ask[level]


@njit(cache=True)
def _top_levels(bid, ask, state, levels, bid_out, ask_out):
    """Indices of the best ``levels`` levels per side, best first; returns the two counts."""
    n_bid = 0
    j = state[BK_BEST_BID]
    lo = state[BK_LO_BID]
    while j >= lo and j >= 0 and n_bid < levels:
        if bid[j] > 0.0:
            bid_out[n_bid] = j
            n_bid += 1
        j -= 1
    n_ask = 0
    j = state[BK_BEST_ASK]
    hi = state[BK_HI_ASK]
    while 0 <= j <= hi and n_ask < levels:
        if ask[j] > 0.0:
            ask_out[n_ask] = j
            n_ask += 1
        j += 1
    return n_bid, n_ask


# -- queue models (mmlab.sim.models, the same formulas in the same order) ------------------------


@njit(cache=True, inline="always")
def _ratio(numerator, denominator):
    # 0/0 (an empty level) carries no information: split the cancellation evenly
    return numerator / denominator if denominator > 0.0 else 0.5


@njit(cache=True)
def _prob_behind(model, n, front, back):
    """hftbacktest's ``Probability::prob``: the chance that a cancellation was behind us."""
    if model == QM_POWER:
        return _ratio(back**n, back**n + front**n)
    if model == QM_LOG:
        return _ratio(math.log1p(back), math.log1p(back) + math.log1p(front))
    if model == QM_POWER2:
        return _ratio(back**n, (back + front) ** n)
    if model == QM_LOG2:
        return _ratio(math.log1p(back), math.log1p(back + front))
    # QM_POWER3
    return 1.0 - _ratio(front, front + back) ** n


@njit(cache=True)
def _on_depth(model, n, front, prev_size, new_size, traded):
    if model == QM_RISK_AVERSE:
        return front if front <= new_size else new_size
    # chg = prev − new − traded: the decrease that trades do not explain is a cancellation
    chg = prev_size - new_size - traded
    if chg <= 0.0 or front <= 0.0:
        return front if front <= new_size else new_size
    back = _pymax(prev_size - front, 0.0)
    p = _pymin(_pymax(_prob_behind(model, n, front, back), 0.0), 1.0)
    # front ← front − (1 − p)·chg + min(back − p·chg, 0)
    estimate = front - (1.0 - p) * chg + _pymin(back - p * chg, 0.0)
    return _pymin(_pymax(estimate, 0.0), new_size)


# -- orders ---------------------------------------------------------------------------------------


@njit(cache=True)
def _list_remove(ids, count, order_id):
    """Remove ``order_id`` from the first ``count`` entries of ``ids``, keeping the order."""
    k = 0
    while k < count and ids[k] != order_id:
        k += 1
    if k == count:
        return count
    for j in range(k, count - 1):
        ids[j] = ids[j + 1]
    return count - 1


@njit(cache=True, inline="always")
def _release(O, slot):
    # a slot is free once the order is neither in flight, resting nor known to the strategy
    if O.flags[slot] & (OF_IN_FLIGHT | OF_RESTING | OF_KNOWN) == 0:
        O.order_id[slot] = 0
        O.flags[slot] = 0


@njit(cache=True)
def _remove_resting(O, S, slot):
    S[S_REST_N] = _list_remove(O.resting, S[S_REST_N], O.order_id[slot])
    O.flags[slot] &= ~(OF_RESTING | OF_BEFORE)
    _release(O, slot)


@njit(cache=True)
def _forget(O, S, order_id):
    """The strategy no longer counts ``order_id`` among its open orders or pending cancels."""
    slot = order_id & S[S_MASK]
    if O.order_id[slot] != order_id or O.flags[slot] & OF_KNOWN == 0:
        return
    S[S_KNOWN_N] = _list_remove(O.known, S[S_KNOWN_N], order_id)
    O.flags[slot] &= ~(OF_KNOWN | OF_CANCEL_SENT)
    _release(O, slot)


# -- the exchange ---------------------------------------------------------------------------------


@njit(cache=True)
def _fill(T, O, Ef, S, F, slot, fill_size, row):
    side = O.side[slot]
    price = O.price[slot]
    # maker fee: maker_fee_bps · 1e-4 · notional, negative for a rebate
    fee_usd = price * fill_size * F[F_MAKER_FRAC]
    F[F_X_POSITION] += side * fill_size
    order_id = O.order_id[slot]
    if fill_size >= O.remaining[slot]:
        O.remaining[slot] = 0.0
        remaining = 0.0
        _remove_resting(O, S, slot)
    else:
        O.remaining[slot] -= fill_size
        remaining = O.remaining[slot]
    # reaches us with the row that caused it
    e = S[S_E_TAIL]
    Ef.kind[e] = EF_FILL
    Ef.row[e] = row
    Ef.order_id[e] = order_id
    Ef.side[e] = side
    Ef.price[e] = price
    Ef.size[e] = fill_size
    Ef.fee[e] = fee_usd
    Ef.value[e] = remaining
    Ef.version[e] = O.version[slot]
    S[S_E_TAIL] = e + 1


@njit(cache=True)
def _match_trade(T, O, Ef, S, F, row):
    """Fill our orders on the side the trade's aggressor hit (SimVenue._match_trade)."""
    our_side = -T.side[row]
    trade_price = T.price[row]
    volume = T.size[row]
    mask = S[S_MASK]
    # the sweep: our_side · (b − p) > 0, best price first, then arrival order
    while True:
        best_k = -1
        best_price = 0.0
        for k in range(S[S_REST_N]):
            slot = O.resting[k] & mask
            if O.side[slot] != our_side:
                continue
            b = O.price[slot]
            if our_side * (b - trade_price) > 0.0:
                if best_k < 0 or (our_side == 1 and b > best_price) or (our_side == -1 and b < best_price):
                    best_k = k
                    best_price = b
        if best_k < 0:
            break
        slot = O.resting[best_k] & mask
        _fill(T, O, Ef, S, F, slot, O.remaining[slot], row)
    # our orders at the trade's price, in arrival order
    count = 0
    for k in range(S[S_REST_N]):
        slot = O.resting[k] & mask
        if O.side[slot] == our_side and O.price[slot] == trade_price:
            O.scratch[count] = slot
            count += 1
    if count == 0:
        return
    own_ahead = 0.0  # remaining size of our earlier orders at this price, before the trade
    filled_ahead = 0.0  # how much of the trade those orders took
    for k in range(count):
        slot = O.scratch[k]
        # the trade consumes, in time priority, what stands in front of this order first
        in_front = O.queue[slot] + own_ahead
        consumed_in_front = _pymin(volume, in_front)
        fill_size = _pymin(O.remaining[slot], volume - consumed_in_front)
        own_ahead += O.remaining[slot]
        # market size in front of us that traded = what was consumed minus our own fills
        O.queue[slot] = _pymax(0.0, O.queue[slot] - (consumed_in_front - filled_ahead))
        if fill_size > 0.0:
            filled_ahead += fill_size
            if O.remaining[slot] - fill_size <= _REMAINDER_TOLERANCE * O.size[slot]:
                fill_size = O.remaining[slot]
            _fill(T, O, Ef, S, F, slot, fill_size, row)
    # the displayed level loses the market's part of the trade (the queue model's ``traded``)
    market_traded = volume - filled_ahead
    for k in range(S[S_REST_N]):
        slot = O.resting[k] & mask
        if O.side[slot] == our_side and O.price[slot] == trade_price:
            O.traded[slot] += market_traded


@njit(cache=True)
def _move_queues_after_snapshot(B, O, S, F):
    """Each resting queue moves as if its level changed from its size before the clear to now."""
    mask = S[S_MASK]
    for k in range(S[S_REST_N]):
        slot = O.resting[k] & mask
        displayed = _size_at(B.x_bid, B.x_ask, O.side[slot], O.level[slot])
        previous = O.before[slot] if O.flags[slot] & OF_BEFORE else displayed
        O.queue[slot] = _on_depth(S[S_QM], F[F_QM_N], O.queue[slot], previous, displayed, O.traded[slot])
        O.traded[slot] = 0.0
        O.flags[slot] &= ~OF_BEFORE


@njit(cache=True)
def _clear_exchange_book(T, B, O, S, row):
    """BOOK_CLEAR at the exchange: remember our levels' sizes, empty the book, await the snapshot."""
    mask = S[S_MASK]
    resting = S[S_REST_N] > 0
    if resting and S[S_RESYNC] == -1:
        # what our levels showed before the snapshot, for the queue model afterwards
        for k in range(S[S_REST_N]):
            slot = O.resting[k] & mask
            O.before[slot] = _size_at(B.x_bid, B.x_ask, O.side[slot], O.level[slot])
            O.flags[slot] |= OF_BEFORE
    _book_clear(B.x_bid, B.x_ask, B.x_state)
    if resting:
        # the snapshot is the rows with the clear's ts_local
        j = row + 1
        while j < S[S_ROWS] and T.ts_local[j] == T.ts_local[row]:
            j += 1
        S[S_RESYNC] = j


@njit(cache=True)
def _pay_funding(T, Ef, S, F, row):
    mark = T.price[row]
    rate = T.rate[row]
    position = F[F_X_POSITION]
    e = S[S_E_TAIL]
    Ef.kind[e] = EF_FUNDING
    Ef.row[e] = row
    Ef.order_id[e] = 0
    Ef.side[e] = 0
    Ef.price[e] = mark
    Ef.size[e] = position
    Ef.fee[e] = rate
    # a long pays a positive rate: payment = −position · mark · rate
    Ef.value[e] = -position * mark * rate
    Ef.version[e] = 0
    S[S_E_TAIL] = e + 1


@njit(cache=True)
def _book_row_at_our_level(T, B, O, S, F, row):
    """A BOOK row at a level where we rest: the queue model sees the level before and after."""
    side = T.side[row]
    level = T.level[row]
    size = T.size[row]
    mask = S[S_MASK]
    prev_size = _size_at(B.x_bid, B.x_ask, side, level)
    _book_apply(B.x_bid, B.x_ask, B.x_state, side, level, size)
    for k in range(S[S_REST_N]):
        slot = O.resting[k] & mask
        if O.side[slot] == side and O.level[slot] == level:
            O.queue[slot] = _on_depth(S[S_QM], F[F_QM_N], O.queue[slot], prev_size, size, O.traded[slot])
            O.traded[slot] = 0.0


@njit(cache=True, inline="always")
def _crosses(T, B, side, price):
    """Post-only: a bid at or above the best ask (ask at or below the best bid) would take."""
    if side == 1:
        best = B.x_state[BK_BEST_ASK]
        return best >= 0 and price >= T.level_price[best]
    best = B.x_state[BK_BEST_BID]
    return best >= 0 and price <= T.level_price[best]


@njit(cache=True)
def _rest(B, O, S, slot):
    """Join the queue at the order's price behind everything displayed there (end of the list)."""
    O.queue[slot] = _size_at(B.x_bid, B.x_ask, O.side[slot], O.level[slot])
    O.flags[slot] |= OF_RESTING
    O.resting[S[S_REST_N]] = O.order_id[slot]
    S[S_REST_N] += 1


@njit(cache=True)
def _take_room(B, O, Ac, Tk, S, a):
    """False when action ``a`` is a TAKE that could fill more levels than the take-fills buffer holds."""
    if Ac.kind[a] != AK_TAKE:
        return True
    # at most every level from the best on the opposite side: asks up for a buy, bids down for a sell
    if O.side[Ac.order_id[a] & S[S_MASK]] == 1:
        best = B.x_state[BK_BEST_ASK]
        levels = B.x_state[BK_HI_ASK] - best + 1 if best >= 0 else 0
    else:
        best = B.x_state[BK_BEST_BID]
        levels = best - B.x_state[BK_LO_BID] + 1 if best >= 0 else 0
    return S[S_T_TAIL] + levels <= Tk.action.shape[0]


@njit(cache=True)
def _arrive(T, B, O, Ac, Tk, S, F, a, next_row):
    """Process action ``a`` (a ring index) at the exchange, before row ``next_row``; record its answer."""
    order_id = Ac.order_id[a]
    slot = order_id & S[S_MASK]
    kind = Ac.kind[a]
    if kind == AK_PLACE:
        O.flags[slot] &= ~OF_IN_FLIGHT
        if _crosses(T, B, O.side[slot], O.price[slot]):
            Ac.result[a] = ANS_REJECTED
            _release(O, slot)
        else:
            _rest(B, O, S, slot)
            Ac.result[a] = ANS_RESTED
    elif kind == AK_CANCEL:
        if O.order_id[slot] == order_id and O.flags[slot] & OF_RESTING:
            _remove_resting(O, S, slot)
            Ac.result[a] = ANS_CANCELLED
        else:
            # filled (or rejected) before the cancel arrived: the fill stands
            Ac.result[a] = ANS_CANCEL_FAILED
    elif kind == AK_MODIFY:
        if O.order_id[slot] != order_id or O.flags[slot] & OF_RESTING == 0:
            # filled, cancelled or rejected before the modify arrived: the fills stand
            Ac.result[a] = ANS_CANCEL_FAILED
            return
        # the cancel half: out of the queue (and of a snapshot's queue bookkeeping)
        S[S_REST_N] = _list_remove(O.resting, S[S_REST_N], order_id)
        O.flags[slot] &= ~(OF_RESTING | OF_BEFORE)
        price = Ac.price[a]
        # the new (Alo) order half: rejected if it would take, and the old one is already gone
        if _crosses(T, B, O.side[slot], price):
            Ac.result[a] = ANS_REJECTED
            _release(O, slot)
            return
        O.price[slot] = price
        O.size[slot] = Ac.size[a]
        # the new order's size is what rests, whatever the old one filled
        O.remaining[slot] = Ac.size[a]
        O.level[slot] = Ac.level[a]
        O.traded[slot] = 0.0
        O.version[slot] += 1
        _rest(B, O, S, slot)
        Ac.result[a] = ANS_MODIFIED
    else:
        O.flags[slot] &= ~OF_IN_FLIGHT
        _arrive_take(T, B, O, Ac, Tk, S, F, a, slot, next_row)
        Ac.result[a] = ANS_TAKEN
        _release(O, slot)


@njit(cache=True)
def _arrive_take(T, B, O, Ac, Tk, S, F, a, slot, next_row):
    """Fill a TAKE against the displayed opposite side, best level first (SimVenue._arrive_take)."""
    best_bid = B.x_state[BK_BEST_BID]
    best_ask = B.x_state[BK_BEST_ASK]
    if (best_bid >= 0 and best_ask >= 0 and best_bid >= best_ask) or next_row == 0:
        # a crossed (or locked) book has no price to trust; before any row there is no book
        O.remaining[slot] = 0.0
        return
    side = O.side[slot]
    limit = O.price[slot]
    size = O.size[slot]
    remaining = size
    # the arrival on the tape's exchange clock: ts_exch_r + (A − E_r), r the last row processed
    last = next_row - 1
    ts_exch = T.ts_exch[last] + (Ac.arrival[a] - T.exchange_ns[last])
    order_id = O.order_id[slot]
    if side == 1:
        j = best_ask
        end = B.x_state[BK_HI_ASK] + 1
        step = 1
        book = B.x_ask
    else:
        j = best_bid
        end = B.x_state[BK_LO_BID] - 1
        step = -1
        book = B.x_bid
    while j >= 0 and j != end:
        displayed = book[j]
        if displayed > 0.0:
            price = T.level_price[j]
            # beyond the limit: an ask above it for a buy, a bid below it for a sell
            if side * (price - limit) > 0.0:
                break
            fill_size = displayed
            if remaining - displayed <= _REMAINDER_TOLERANCE * size:
                fill_size = remaining
            t = S[S_T_TAIL]
            Tk.action[t] = S[S_A_HEAD]
            Tk.order_id[t] = order_id
            Tk.side[t] = side
            Tk.ts_exch[t] = ts_exch
            Tk.ts_local[t] = Ac.answer[a]
            Tk.price[t] = price
            Tk.size[t] = fill_size
            # taker fee: taker_fee_bps · 1e-4 · notional
            Tk.fee[t] = price * fill_size * F[F_TAKER_FRAC]
            S[S_T_TAIL] = t + 1
            F[F_X_POSITION] += side * fill_size
            if fill_size == remaining:
                break
            remaining -= fill_size
        j += step
    # the rest is cancelled: a TAKE never rests
    O.remaining[slot] = 0.0


@njit(cache=True)
def _run_exchange(T, B, O, Ac, Ef, Tk, S, F, seen_end, answers_due):
    """Rows before ``seen_end``, then every action answered by ``answers_due`` (SimVenue._run_exchange).

    Each row comes after the actions with ``A ≤ E_r``; an answered action comes after the rows
    with ``E_r < A``. The row loop works on arrays taken out of the tuples once: numba counts
    references to every array of a tuple handed to a call, which would cost more than the row.
    """
    kinds = T.kind
    sides = T.side
    levels = T.level
    sizes = T.size
    exchange_ns = T.exchange_ns
    x_bid = B.x_bid
    x_ask = B.x_ask
    x_state = B.x_state
    resting_ids = O.resting
    order_side = O.side
    order_level = O.level
    arrivals = Ac.arrival
    answers = Ac.answer
    effects_capacity = Ef.kind.shape[0]
    rows = S[S_ROWS]
    amask = S[S_A_MASK]
    while True:
        row = S[S_X_ROW]
        if row >= seen_end:
            # the actions answered by now, each after the rows that happened before it arrived
            if S[S_A_HEAD] >= S[S_A_TAIL]:
                break
            a = S[S_A_HEAD] & amask
            if answers[a] > answers_due:
                break
            if row >= rows or exchange_ns[row] >= arrivals[a]:
                if not _take_room(B, O, Ac, Tk, S, a):
                    return ST_TAKES_FULL
                _arrive(T, B, O, Ac, Tk, S, F, a, row)
                S[S_A_HEAD] += 1
                continue
        # one row fills at most every resting order, or pays one funding
        if S[S_E_TAIL] + S[S_REST_N] + 1 > effects_capacity:
            return ST_EFFECTS_FULL
        # A ≤ E_r: these actions reached the exchange before this row happened
        while S[S_A_HEAD] < S[S_A_TAIL] and arrivals[S[S_A_HEAD] & amask] <= exchange_ns[row]:
            a = S[S_A_HEAD] & amask
            if not _take_room(B, O, Ac, Tk, S, a):
                return ST_TAKES_FULL
            _arrive(T, B, O, Ac, Tk, S, F, a, row)
            S[S_A_HEAD] += 1
        kind = kinds[row]
        if kind == _BOOK:
            side = sides[row]
            level = levels[row]
            ours = False
            mask = S[S_MASK]
            for k in range(S[S_REST_N]):
                slot = resting_ids[k] & mask
                if order_side[slot] == side and order_level[slot] == level:
                    ours = True
                    break
            if ours:
                _book_row_at_our_level(T, B, O, S, F, row)
            else:
                _book_apply(x_bid, x_ask, x_state, side, level, sizes[row])
        elif kind == _TRADE:
            if S[S_REST_N] > 0:
                _match_trade(T, O, Ef, S, F, row)
        elif kind == _BOOK_CLEAR:
            _clear_exchange_book(T, B, O, S, row)
        elif kind == _FUNDING:
            _pay_funding(T, Ef, S, F, row)
        S[S_X_ROW] = row + 1
        if S[S_RESYNC] == row + 1:
            # the snapshot after the clear is complete
            _move_queues_after_snapshot(B, O, S, F)
            S[S_RESYNC] = -1
    return ST_OK


# -- what reaches us ------------------------------------------------------------------------------


@njit(cache=True)
def _account_fill(S, F, side, price, size, fee_usd):
    notional_usd = price * size
    F[F_POSITION] += side * size
    # cash: −side · price · size − fee
    F[F_CASH] -= side * notional_usd + fee_usd
    F[F_FEES] += fee_usd
    F[F_VOLUME] += notional_usd
    S[S_FILLS] += 1


@njit(cache=True)
def _update_old_version(Ac, S, order_id, version, remaining):
    """The strategy's view of the version an unanswered MODIFY replaces: its remaining size."""
    amask = S[S_A_MASK]
    for c in range(S[S_A_DELIVER], S[S_A_TAIL]):
        a = c & amask
        if Ac.kind[a] == AK_MODIFY and Ac.order_id[a] == order_id and Ac.version[a] == version:
            Ac.old_size[a] = remaining
            return


@njit(cache=True)
def _deliver(T, B, O, Ac, Ef, Tk, S, F, seen_end, ts, answers):
    """Deliver our feed's rows before ``seen_end`` and their effects; the answers due by ``ts`` if ``answers``."""
    # rows the exchange has not processed yet wait (only when the effects buffer filled up)
    end = seen_end if seen_end < S[S_X_ROW] else S[S_X_ROW]
    # arrays out of the tuples once (see _run_exchange)
    kinds = T.kind
    sides = T.side
    levels = T.level
    sizes = T.size
    prices = T.price
    rates = T.rate
    l_bid = B.l_bid
    l_ask = B.l_ask
    l_state = B.l_state
    book_row = S[S_BOOK_ROW]
    for row in range(S[S_L_ROW], end):
        kind = kinds[row]
        if kind == _BOOK:
            _book_apply(l_bid, l_ask, l_state, sides[row], levels[row], sizes[row])
            book_row = row
        elif kind == _BOOK_CLEAR:
            _book_clear(l_bid, l_ask, l_state)
            book_row = row
        elif kind == _ASSET_CTX:
            rate = rates[row]
            if rate == rate:  # NaN when the context carried no prediction
                F[F_FUNDING_RATE] = rate
            mark = prices[row]
            if mark > 0.0:
                F[F_MARK] = mark
        elif kind == _FUNDING:
            F[F_FUNDING_RATE] = rates[row]
            F[F_MARK] = prices[row]
    S[S_BOOK_ROW] = book_row
    if end > S[S_L_ROW]:
        S[S_L_ROW] = end

    mask = S[S_MASK]
    e = S[S_E_DELIVER]
    while e < S[S_E_TAIL] and Ef.row[e] < end:
        if Ef.kind[e] == EF_FILL:
            _account_fill(S, F, Ef.side[e], Ef.price[e], Ef.size[e], Ef.fee[e])
            order_id = Ef.order_id[e]
            slot = order_id & mask
            if O.order_id[slot] == order_id and O.flags[slot] & OF_KNOWN:
                if Ef.value[e] == 0.0:
                    # nothing rests: the order is done (an old version filled: its MODIFY fails)
                    _forget(O, S, order_id)
                elif Ef.version[e] == O.view_version[slot]:
                    O.view_size[slot] = Ef.value[e]
                else:
                    _update_old_version(Ac, S, order_id, Ef.version[e], Ef.value[e])
        else:
            # cash: + funding payment
            F[F_CASH] += Ef.value[e]
            F[F_FUNDING] += Ef.value[e]
        e += 1
    S[S_E_DELIVER] = e

    if not answers:
        # the exchange stopped early for room: the answers wait for the call that completes the
        # poll, so that (as in the reference) every row's fills come before any TAKE's fills
        return
    amask = S[S_A_MASK]
    while S[S_A_DELIVER] < S[S_A_HEAD] and Ac.answer[S[S_A_DELIVER] & amask] <= ts:
        c = S[S_A_DELIVER]
        a = c & amask
        result = Ac.result[a]
        if result == ANS_TAKEN:
            t = S[S_T_DELIVER]
            while t < S[S_T_TAIL] and Tk.action[t] == c:
                _account_fill(S, F, Tk.side[t], Tk.price[t], Tk.size[t], Tk.fee[t])
                t += 1
            S[S_T_DELIVER] = t
        elif result == ANS_REJECTED:
            S[S_REJECTIONS] += 1
        elif result == ANS_CANCEL_FAILED:
            S[S_FAILED_CANCELS] += 1
        if result != ANS_RESTED and result != ANS_MODIFIED:
            _forget(O, S, Ac.order_id[a])
        S[S_A_DELIVER] = c + 1


@njit(cache=True)
def _compact_effects(Ef, S):
    """Drop the effects already delivered (and read by Python)."""
    start = S[S_E_DELIVER]
    n = S[S_E_TAIL] - start
    if start > 0:
        for j in range(n):
            Ef.kind[j] = Ef.kind[start + j]
            Ef.row[j] = Ef.row[start + j]
            Ef.order_id[j] = Ef.order_id[start + j]
            Ef.side[j] = Ef.side[start + j]
            Ef.price[j] = Ef.price[start + j]
            Ef.size[j] = Ef.size[start + j]
            Ef.fee[j] = Ef.fee[start + j]
            Ef.value[j] = Ef.value[start + j]
            Ef.version[j] = Ef.version[start + j]
    S[S_E_DELIVER] = 0
    S[S_E_TAIL] = n


@njit(cache=True)
def _compact_takes(Tk, S):
    """Drop the take fills already delivered (and read by Python)."""
    start = S[S_T_DELIVER]
    n = S[S_T_TAIL] - start
    if start > 0:
        for j in range(n):
            Tk.action[j] = Tk.action[start + j]
            Tk.order_id[j] = Tk.order_id[start + j]
            Tk.side[j] = Tk.side[start + j]
            Tk.ts_exch[j] = Tk.ts_exch[start + j]
            Tk.ts_local[j] = Tk.ts_local[start + j]
            Tk.price[j] = Tk.price[start + j]
            Tk.size[j] = Tk.size[start + j]
            Tk.fee[j] = Tk.fee[start + j]
    S[S_T_DELIVER] = 0
    S[S_T_TAIL] = n


@njit(cache=True)
def _poll(T, B, O, Ac, Ef, Tk, S, F, ts):
    seen_end = np.searchsorted(T.ts_local, ts, side="right")
    status = _run_exchange(T, B, O, Ac, Ef, Tk, S, F, seen_end, ts)
    _deliver(T, B, O, Ac, Ef, Tk, S, F, seen_end, ts, status == ST_OK)
    return status


@njit(cache=True)
def _poll_kernel(T, B, O, Ac, Ef, Tk, S, F, ts):
    """FastSimVenue.poll: process and deliver up to local time ``ts``; delivered effects start at 0."""
    _compact_effects(Ef, S)
    _compact_takes(Tk, S)
    return _poll(T, B, O, Ac, Ef, Tk, S, F, ts)


@njit(cache=True)
def _submit_one(T, O, Ac, S, kind, side, price, size, level, target_id, arrival, answer, ts):
    """Queue one validated action; a PLACE or TAKE takes the next order id, whose slot must be free."""
    a = S[S_A_TAIL] & S[S_A_MASK]
    mask = S[S_MASK]
    if kind == AK_PLACE or kind == AK_TAKE:
        order_id = S[S_NEXT_ID]
        S[S_NEXT_ID] += 1
        slot = order_id & mask
        O.order_id[slot] = order_id
        O.side[slot] = side
        O.level[slot] = level
        O.flags[slot] = OF_IN_FLIGHT | OF_KNOWN
        O.ts_sent[slot] = ts
        O.version[slot] = 0
        O.view_version[slot] = 0
        O.price[slot] = price
        O.size[slot] = size
        O.remaining[slot] = size
        O.view_price[slot] = price
        O.view_size[slot] = size
        O.queue[slot] = 0.0
        O.traded[slot] = 0.0
        O.before[slot] = 0.0
        O.known[S[S_KNOWN_N]] = order_id
        S[S_KNOWN_N] += 1
        if kind == AK_PLACE:
            S[S_PLACED] += 1
        else:
            # immediate-or-cancel: it can fill until its answer, never rests
            O.flags[slot] |= OF_CANCEL_SENT
            S[S_TAKES] += 1
        Ac.order_id[a] = order_id
    elif kind == AK_MODIFY:
        slot = target_id & mask
        if O.order_id[slot] == target_id and O.flags[slot] & OF_KNOWN:
            # the strategy sees the new version now and the old one until the answer
            Ac.version[a] = O.view_version[slot]
            Ac.old_price[a] = O.view_price[slot]
            Ac.old_size[a] = O.view_size[slot]
            Ac.old_ts[a] = O.ts_sent[slot]
            O.view_version[slot] += 1
            O.view_price[slot] = price
            O.view_size[slot] = size
            O.ts_sent[slot] = ts
        else:
            Ac.version[a] = -1
        Ac.price[a] = price
        Ac.size[a] = size
        Ac.level[a] = level
        S[S_MODIFIES] += 1
        Ac.order_id[a] = target_id
    else:
        slot = target_id & mask
        if O.order_id[slot] == target_id and O.flags[slot] & OF_KNOWN:
            O.flags[slot] |= OF_CANCEL_SENT
        S[S_CANCELS_SENT] += 1
        Ac.order_id[a] = target_id
    Ac.kind[a] = kind
    Ac.arrival[a] = arrival
    Ac.answer[a] = answer
    Ac.result[a] = -1
    S[S_A_TAIL] += 1


@njit(cache=True)
def _submit_kernel(T, O, Ac, S, kinds, sides, prices, sizes, levels, target_ids, arrivals, answers, ts):
    for k in range(kinds.shape[0]):
        _submit_one(
            T, O, Ac, S, kinds[k], sides[k], prices[k], sizes[k], levels[k], target_ids[k], arrivals[k], answers[k], ts
        )
    S[S_LAST_ARRIVAL] = arrivals[-1]
    S[S_LAST_ANSWER] = answers[-1]


@njit(cache=True)
def _level_of(level_price, price):
    """Index of ``price`` among the tape's book prices, −1 when the tape never shows it."""
    j = np.searchsorted(level_price, price)
    if j < level_price.shape[0] and level_price[j] == price:
        return j
    return -1


# -- the Hyperliquid grid and fixed ticks (mmlab.units, the same arithmetic) ---------------------


@njit(cache=True)
def _price_decimals(price, sz_decimals):
    magnitude = math.floor(math.log10(price))
    return _pymax(0, _pymin(_MAX_SIG_FIGS - 1 - magnitude, _PERP_MAX_DECIMALS - sz_decimals))


@njit(cache=True)
def _round_price(price, sz_decimals, up):
    decimals = _price_decimals(price, sz_decimals)
    scale = 10.0**decimals
    scaled = price * scale
    ticks = math.ceil(scaled - _ROUNDING_SLACK) if up else math.floor(scaled + _ROUNDING_SLACK)
    # round(ticks / scale, decimals) is ticks / scale: the nearest double to the decimal
    rounded = ticks / scale
    if rounded <= 0.0:
        raise ValueError("price rounds below the Hyperliquid grid")
    return rounded


@njit(cache=True)
def _round_to_tick(price, tick, tick_units, tick_decimals, up):
    scaled = price / tick
    ticks = math.ceil(scaled - _ROUNDING_SLACK) if up else math.floor(scaled + _ROUNDING_SLACK)
    # round(ticks · tick, decimals): the nearest double to ticks · tick_units / 10**decimals
    rounded = (ticks * tick_units) / 10.0**tick_decimals
    if rounded <= 0.0:
        raise ValueError("price rounds below the tick grid")
    return rounded


@njit(cache=True)
def _grid_round(price, up, sz_decimals, tick, tick_units, tick_decimals):
    """InstrumentSpec.round_bid (``up`` False) / round_ask (``up`` True)."""
    if tick > 0.0:
        return _round_to_tick(price, tick, tick_units, tick_decimals, up)
    return _round_price(price, sz_decimals, up)


@njit(cache=True)
def _grid_below(price, sz_decimals, tick, tick_units, tick_decimals):
    """InstrumentSpec.price_below: the largest grid price strictly below ``price``."""
    if tick > 0.0:
        return _round_to_tick(price - 0.5 * tick, tick, tick_units, tick_decimals, False)
    # the tick just below may be finer than at ``price`` when ``price`` is a power of ten
    tick_below = 10.0 ** -_price_decimals(price * (1.0 - 1e-9), sz_decimals)
    return _round_price(price - 0.5 * tick_below, sz_decimals, False)


@njit(cache=True)
def _grid_above(price, sz_decimals, tick, tick_units, tick_decimals):
    """InstrumentSpec.price_above: the smallest grid price strictly above ``price``."""
    if tick > 0.0:
        return _round_to_tick(price + 0.5 * tick, tick, tick_units, tick_decimals, True)
    return _round_price(price + 0.5 * 10.0 ** -_price_decimals(price, sz_decimals), sz_decimals, True)


@njit(cache=True)
def _round_size(size, sz_decimals):
    """units.round_size, rounding down."""
    scale = 10.0**sz_decimals
    scaled = size * scale
    units = math.floor(scaled + _ROUNDING_SLACK)
    return units / scale


# -- the compiled fixed-spread run ----------------------------------------------------------------

# parameters of run_fixed_spread (float array)
(
    P_HALF_SPREAD_BPS,
    P_SIZE,
    P_Q_MAX,
    P_REPRICE_TOLERANCE_BPS,
    P_TICK,
    P_TICK_UNITS,
    P_TICK_DECIMALS,
    P_SZ_DECIMALS,
) = range(8)
# cycle outputs (float array, one row per cycle)
C_TS, C_BEST_BID, C_BEST_ASK, C_QUOTE_BID, C_QUOTE_ASK, C_POSITION, C_ACTIONS = range(7)
_C_SIZE = 7


@njit(cache=True)
def _at_risk_size(O, Ac, S, slot):
    """An order's size at risk as limit_exposure counts it: the sum of its versions listed."""
    size = O.view_size[slot]
    order_id = O.order_id[slot]
    amask = S[S_A_MASK]
    for c in range(S[S_A_DELIVER], S[S_A_TAIL]):
        a = c & amask
        if Ac.kind[a] == AK_MODIFY and Ac.order_id[a] == order_id and Ac.version[a] >= 0:
            size += Ac.old_size[a]
    return size


@njit(cache=True)
def _fixed_spread_kernel(T, B, O, Ac, Ef, Tk, S, F, P, first_ts, step_ns, cycles, order_draws, response_draws, out):
    """Run quote cycles from ``S[S_CYCLE]`` until done or a buffer needs Python; return a status.

    A cycle is: poll(ts), FixedSpreadQuoter.cycle (quotes, reconcile, limit_exposure), submit.
    Polling twice at one ts delivers nothing new, so a cycle interrupted for more room simply
    starts again.
    """
    _compact_effects(Ef, S)
    _compact_takes(Tk, S)
    mask = S[S_MASK]
    amask = S[S_A_MASK]
    capacity = O.order_id.shape[0]
    half_spread_bps = P[P_HALF_SPREAD_BPS]
    quote_size = P[P_SIZE]
    q_max = P[P_Q_MAX]
    tolerance_bps = P[P_REPRICE_TOLERANCE_BPS]
    tick = P[P_TICK]
    tick_units = P[P_TICK_UNITS]
    tick_decimals = int(P[P_TICK_DECIMALS])
    sz_decimals = int(P[P_SZ_DECIMALS])
    cancel_ids = np.empty(capacity, dtype=np.int64)
    spare = np.empty(capacity, dtype=np.int64)
    modify_ids = np.empty(2, dtype=np.int64)
    modify_sides = np.empty(2, dtype=np.int64)
    modify_prices = np.empty(2)
    place_sides = np.empty(2, dtype=np.int64)
    place_prices = np.empty(2)
    act_kind = np.empty(capacity + 4, dtype=np.int64)
    act_id = np.zeros(capacity + 4, dtype=np.int64)
    act_side = np.zeros(capacity + 4, dtype=np.int64)
    act_price = np.zeros(capacity + 4)
    act_size = np.zeros(capacity + 4)
    side_size = np.zeros(2)
    while S[S_CYCLE] < cycles:
        ts = first_ts + (S[S_CYCLE] + 1) * step_ns
        status = _poll(T, B, O, Ac, Ef, Tk, S, F, ts)
        if status != ST_OK:
            return status

        # FixedSpreadQuoter.cycle: one bid and one ask around the mid of the book we see
        best_bid = B.l_state[BK_BEST_BID]
        best_ask = B.l_state[BK_BEST_ASK]
        quoting = False
        bid = np.nan
        ask = np.nan
        bid_px = np.nan
        ask_px = np.nan
        if S[S_BOOK_ROW] >= 0 and best_bid >= 0 and best_ask >= 0:
            bid_px = T.level_price[best_bid]
            ask_px = T.level_price[best_ask]
            if not bid_px >= ask_px and quote_size > 0.0:
                mid = 0.5 * (bid_px + ask_px)
                offset = mid * half_spread_bps * 1e-4
                bid = _pymin(
                    _grid_round(mid - offset, False, sz_decimals, tick, tick_units, tick_decimals),
                    _grid_below(ask_px, sz_decimals, tick, tick_units, tick_decimals),
                )
                ask = _pymax(
                    _grid_round(mid + offset, True, sz_decimals, tick, tick_units, tick_decimals),
                    _grid_above(bid_px, sz_decimals, tick, tick_units, tick_decimals),
                )
                quoting = True

        # mmlab.executor.reconcile, one target per side: keep the open order closest to the
        # target within the tolerance (and of the same size); MODIFY the best-priced other one
        # into the target if none is kept; cancel the rest; place the target if nothing is left
        position = F[F_POSITION]
        # FixedSpreadQuoter's target size per side: the fixed size within what the cap leaves
        side_size[0] = _round_size(_pymin(quote_size, q_max - position), sz_decimals)
        side_size[1] = _round_size(_pymin(quote_size, q_max + position), sz_decimals)
        n_cancels = 0
        n_modifies = 0
        n_places = 0
        for side in (1, -1):
            target = bid if side == 1 else ask
            target_size = side_size[0 if side == 1 else 1]
            side_quoting = quoting and target_size > 0.0
            kept = -1
            kept_gap = 0.0
            kept_price = 0.0
            if side_quoting:
                reach = tolerance_bps * 1e-4 * target * (1.0 + 1e-12) + 1e-12 * target
                low = target - reach
                high = target + reach
                size_reach = 0.0 * quote_size * (1.0 + 1e-12) + 1e-12
                for k in range(S[S_KNOWN_N]):
                    slot = O.known[k] & mask
                    if O.flags[slot] & OF_CANCEL_SENT or O.side[slot] != side:
                        continue
                    price = O.view_price[slot]
                    if price >= low and price <= high and abs(O.view_size[slot] - target_size) <= size_reach:
                        # closest first; ties: the lower price, then the earlier order
                        gap = abs(price - target)
                        if kept < 0 or gap < kept_gap or (gap == kept_gap and price < kept_price):
                            kept = O.known[k]
                            kept_gap = gap
                            kept_price = price
            # the others, best price first (stable: id order among equal prices)
            n_spare = 0
            for k in range(S[S_KNOWN_N]):
                slot = O.known[k] & mask
                if O.flags[slot] & OF_CANCEL_SENT or O.side[slot] != side or O.known[k] == kept:
                    continue
                price = O.view_price[slot]
                j = n_spare
                while j > 0 and side * (price - O.view_price[spare[j - 1] & mask]) > 0.0:
                    spare[j] = spare[j - 1]
                    j -= 1
                spare[j] = O.known[k]
                n_spare += 1
            first_cancel = 0
            if side_quoting and kept < 0:
                if n_spare > 0:
                    modify_ids[n_modifies] = spare[0]
                    modify_sides[n_modifies] = side
                    modify_prices[n_modifies] = target
                    n_modifies += 1
                    first_cancel = 1
                else:
                    place_sides[n_places] = side
                    place_prices[n_places] = target
                    n_places += 1
            for j in range(first_cancel, n_spare):
                cancel_ids[n_cancels] = spare[j]
                n_cancels += 1

        # mmlab.executor.limit_exposure: every order that could still fill keeps |position| ≤
        # q_max; an order with a MODIFY in flight counts at old + new size, and a MODIFY needs
        # room for its whole new size
        at_risk_buy = 0.0
        at_risk_sell = 0.0
        for pending in (0, 1):
            for k in range(S[S_KNOWN_N]):
                slot = O.known[k] & mask
                if (O.flags[slot] & OF_CANCEL_SENT != 0) != (pending == 1):
                    continue
                if O.side[slot] == 1:
                    at_risk_buy += _at_risk_size(O, Ac, S, slot)
                else:
                    at_risk_sell += _at_risk_size(O, Ac, S, slot)
        room_buy = q_max - position - at_risk_buy
        room_sell = q_max + position - at_risk_sell
        # the actions in order: cancels, modifies (a MODIFY that keeps no size becomes a cancel), places
        n_actions = 0
        for k in range(n_cancels):
            act_kind[n_actions] = AK_CANCEL
            act_id[n_actions] = cancel_ids[k]
            n_actions += 1
        for k in range(n_modifies):
            side = modify_sides[k]
            room = room_buy if side == 1 else room_sell
            size = _round_size(_pymin(side_size[0 if side == 1 else 1], _pymax(0.0, room)), sz_decimals)
            act_id[n_actions] = modify_ids[k]
            act_side[n_actions] = side
            if size <= 0.0:
                act_kind[n_actions] = AK_CANCEL
            else:
                act_kind[n_actions] = AK_MODIFY
                act_price[n_actions] = modify_prices[k]
                act_size[n_actions] = size
                if side == 1:
                    room_buy -= size
                else:
                    room_sell -= size
            n_actions += 1
        n_new = 0
        for k in range(n_places):
            side = place_sides[k]
            room = room_buy if side == 1 else room_sell
            size = _round_size(_pymin(side_size[0 if side == 1 else 1], room), sz_decimals)
            if size <= 0.0:
                continue
            if side == 1:
                room_buy -= size
            else:
                room_sell -= size
            act_kind[n_actions] = AK_PLACE
            act_side[n_actions] = side
            act_price[n_actions] = place_prices[k]
            act_size[n_actions] = size
            n_actions += 1
            n_new += 1

        # room for the actions, their order slots and their latencies, else back to Python
        if S[S_A_TAIL] - S[S_A_DELIVER] + n_actions > Ac.kind.shape[0]:
            return ST_ACTIONS_FULL
        for k in range(n_new):
            if O.order_id[(S[S_NEXT_ID] + k) & mask] != 0:
                return ST_ORDERS_FULL
        if order_draws.shape[0] > 1 and S[S_DRAW_ORDER] + n_actions > order_draws.shape[0]:
            return ST_DRAWS_EMPTY
        if response_draws.shape[0] > 1 and S[S_DRAW_RESPONSE] + n_actions > response_draws.shape[0]:
            return ST_DRAWS_EMPTY

        for k in range(n_actions):
            if order_draws.shape[0] > 1:
                order_ns = order_draws[S[S_DRAW_ORDER]]
                S[S_DRAW_ORDER] += 1
            else:
                order_ns = order_draws[0]
            if response_draws.shape[0] > 1:
                response_ns = response_draws[S[S_DRAW_RESPONSE]]
                S[S_DRAW_RESPONSE] += 1
            else:
                response_ns = response_draws[0]
            # A = max(t + o, previous A); D = max(A + g, previous D)
            arrival = _pymax(ts + order_ns, S[S_LAST_ARRIVAL])
            answer = _pymax(arrival + response_ns, S[S_LAST_ANSWER])
            S[S_LAST_ARRIVAL] = arrival
            S[S_LAST_ANSWER] = answer
            kind = act_kind[k]
            if kind == AK_CANCEL:
                _submit_one(T, O, Ac, S, AK_CANCEL, 0, 0.0, 0.0, -1, act_id[k], arrival, answer, ts)
            else:
                level = _level_of(T.level_price, act_price[k])
                _submit_one(T, O, Ac, S, kind, act_side[k], act_price[k], act_size[k], level, act_id[k], arrival, answer, ts)

        c = S[S_CYCLE]
        out[c, C_TS] = ts
        out[c, C_BEST_BID] = bid_px
        out[c, C_BEST_ASK] = ask_px
        out[c, C_QUOTE_BID] = bid
        out[c, C_QUOTE_ASK] = ask
        out[c, C_POSITION] = position
        out[c, C_ACTIONS] = n_actions
        S[S_CYCLE] = c + 1
    return ST_OK


# -- Python side ----------------------------------------------------------------------------------


def queue_model_code(model: QueueModel) -> tuple[int, float]:
    """The compiled engine's code and exponent for a queue model.

    Raises
    ------
    ValueError
        For a queue model the engine cannot evaluate (a user-supplied class or ``prob``); run
        it on the reference engine (``SimConfig(engine="reference")``).
    """
    if isinstance(model, RiskAverseQueue):
        return QM_RISK_AVERSE, 0.0
    if isinstance(model, ProbabilisticQueue) and model.form in _QM_FORMS:
        return _QM_FORMS[model.form], float(model.exponent)
    raise ValueError(
        f"FastSimVenue: the compiled engine cannot run queue model {model!r}; "
        "use the reference engine (SimConfig(engine='reference') or SimVenue.builder(...).engine('reference'))"
    )


def _tape_arrays(tape: Tape, exchange_ns: np.ndarray) -> _TapeArrays:
    book_rows = tape.kind == EventKind.BOOK
    book_prices = tape.price[book_rows]
    # distinct prices by hashing (linear), then ranked: level = rank of the row's price
    codes, distinct = pd.factorize(book_prices, sort=False)
    order = np.argsort(distinct, kind="stable")
    level_price = np.ascontiguousarray(distinct[order], dtype=np.float64)
    rank = np.empty(order.shape[0], dtype=np.int64)
    rank[order] = np.arange(order.shape[0], dtype=np.int64)
    level = np.full(len(tape), -1, dtype=np.int64)
    level[book_rows] = rank[codes]
    # every book price maps to its own index and back, in price order
    if not np.array_equal(level_price[level[book_rows]], tape.price[book_rows]) or np.any(np.diff(level_price) <= 0):
        raise RuntimeError("FastSimVenue: book prices do not map one-to-one onto level indices")
    return _TapeArrays(
        ts_local=np.ascontiguousarray(tape.ts_local, dtype=np.int64),
        ts_exch=np.ascontiguousarray(tape.ts_exch, dtype=np.int64),
        exchange_ns=np.ascontiguousarray(exchange_ns, dtype=np.int64),
        kind=np.ascontiguousarray(tape.kind, dtype=np.int64),
        side=np.ascontiguousarray(tape.side, dtype=np.int64),
        level=level,
        price=np.ascontiguousarray(tape.price, dtype=np.float64),
        size=np.ascontiguousarray(tape.size, dtype=np.float64),
        rate=np.ascontiguousarray(tape.rate, dtype=np.float64),
        level_price=level_price,
    )


def _new_books(levels: int) -> _Books:
    x_state = np.zeros(_BK_SIZE, dtype=np.int64)
    l_state = np.zeros(_BK_SIZE, dtype=np.int64)
    _book_reset(x_state, max(levels, 1))
    _book_reset(l_state, max(levels, 1))
    size = max(levels, 1)
    return _Books(np.zeros(size), np.zeros(size), x_state, np.zeros(size), np.zeros(size), l_state)


_INT_COLUMNS = {
    "order_id", "side", "level", "flags", "ts_sent", "version", "view_version", "resting", "known", "scratch", "old_ts",
    "kind", "arrival", "answer", "result", "row", "action", "ts_exch", "ts_local",
}  # fmt: skip


def _columns(fields: Sequence[str], capacity: int) -> list[np.ndarray]:
    """Zeroed columns of ``capacity`` rows: int64 for ids, counts and times, float64 otherwise."""
    return [np.zeros(capacity, dtype=np.int64 if name in _INT_COLUMNS else np.float64) for name in fields]


def _new_orders(capacity: int) -> _Orders:
    return _Orders(*_columns(_Orders._fields, capacity))


def _new_actions(capacity: int) -> _Actions:
    return _Actions(*_columns(_Actions._fields, capacity))


def _new_effects(capacity: int) -> _Effects:
    return _Effects(*_columns(_Effects._fields, capacity))


def _new_take_fills(capacity: int) -> _TakeFills:
    return _TakeFills(*_columns(_TakeFills._fields, capacity))


class _Capacity:
    """Doubles the engine's fixed-capacity arrays when the compiled code asks for room."""

    @staticmethod
    def grow_orders(orders: _Orders, state: np.ndarray) -> _Orders:
        capacity = orders.order_id.shape[0]
        grown = _new_orders(2 * capacity)
        new_mask = 2 * capacity - 1
        live = np.flatnonzero(orders.order_id)
        new_slots = orders.order_id[live] & new_mask
        for name in _Orders._fields:
            if name in ("resting", "known", "scratch"):
                getattr(grown, name)[:capacity] = getattr(orders, name)
            else:
                getattr(grown, name)[new_slots] = getattr(orders, name)[live]
        state[S_MASK] = new_mask
        return grown

    @staticmethod
    def grow_actions(actions: _Actions, state: np.ndarray) -> _Actions:
        capacity = actions.kind.shape[0]
        grown = _new_actions(2 * capacity)
        counters = np.arange(state[S_A_DELIVER], state[S_A_TAIL], dtype=np.int64)
        old = counters & (capacity - 1)
        new = counters & (2 * capacity - 1)
        for name in _Actions._fields:
            getattr(grown, name)[new] = getattr(actions, name)[old]
        state[S_A_MASK] = 2 * capacity - 1
        return grown

    @staticmethod
    def grow_effects(effects: _Effects, state: np.ndarray) -> _Effects:
        capacity = effects.kind.shape[0]
        grown = _new_effects(2 * capacity)
        used = state[S_E_TAIL]
        for name in _Effects._fields:
            getattr(grown, name)[:used] = getattr(effects, name)[:used]
        return grown

    @staticmethod
    def grow_take_fills(takes: _TakeFills, state: np.ndarray) -> _TakeFills:
        grown = _new_take_fills(2 * takes.action.shape[0])
        used = state[S_T_TAIL]
        for name in _TakeFills._fields:
            getattr(grown, name)[:used] = getattr(takes, name)[:used]
        return grown


class _Engine:
    """The compiled engine's arrays for one tape and config, shared by FastSimVenue and run_fixed_spread."""

    def __init__(
        self,
        tape: Tape,
        config: SimConfig,
        owner: str,
        *,
        queue_model: QueueModel | None = None,
        order_latency: LatencyModel | None = None,
        feed_latency: ConstantLatency | RecordedFeedLatency | None = None,
        response_latency: LatencyModel | None = None,
        fees: FeeSchedule | None = None,
    ) -> None:
        validate_sim_tape(tape, owner)
        models = resolve_venue_models(
            tape,
            config,
            queue_model=queue_model,
            order_latency=order_latency,
            feed_latency=feed_latency,
            response_latency=response_latency,
            fees=fees,
            owner=owner,
        )
        self.models = models
        qm_code, qm_exponent = queue_model_code(models.queue_model)
        self.tape = tape
        self.T = _tape_arrays(tape, models.exchange_ns)
        self.B = _new_books(self.T.level_price.shape[0])
        self.O = _new_orders(64)
        self.A = _new_actions(64)
        self.E = _new_effects(1024)
        self.Tk = _new_take_fills(64)
        self.S = np.zeros(_S_SIZE, dtype=np.int64)
        self.F = np.zeros(_F_SIZE)
        S, F = self.S, self.F
        S[S_ROWS] = len(tape)
        S[S_RESYNC] = -1
        S[S_NEXT_ID] = 1
        S[S_MASK] = self.O.order_id.shape[0] - 1
        S[S_A_MASK] = self.A.kind.shape[0] - 1
        S[S_BOOK_ROW] = -1
        S[S_LAST_ARRIVAL] = _NEVER_NS
        S[S_LAST_ANSWER] = _NEVER_NS
        S[S_QM] = qm_code
        F[F_MARK] = math.nan
        F[F_MAKER_FRAC] = bps_to_frac(models.fees.maker_bps)
        F[F_TAKER_FRAC] = bps_to_frac(models.fees.taker_bps)
        F[F_QM_N] = qm_exponent

    def ensure_room(self, places: int, actions: int) -> None:
        """Grow the order slots and the action ring so that the next submission fits."""
        S = self.S
        while S[S_A_TAIL] - S[S_A_DELIVER] + actions > self.A.kind.shape[0]:
            self.A = _Capacity.grow_actions(self.A, S)
        # the new ids take distinct free slots: more slots than new orders, none of them taken
        while places and (
            places > self.O.order_id.shape[0]
            or np.any(self.O.order_id[(S[S_NEXT_ID] + np.arange(places)) & S[S_MASK]])
        ):
            self.O = _Capacity.grow_orders(self.O, S)

    def grow_for(self, status: int) -> None:
        """Make room after a compiled call stopped with ``status``."""
        if status == ST_EFFECTS_FULL:
            # the next call drops the delivered effects; grow only if none were delivered
            if self.S[S_E_DELIVER] == 0:
                self.E = _Capacity.grow_effects(self.E, self.S)
        elif status == ST_ORDERS_FULL:
            self.O = _Capacity.grow_orders(self.O, self.S)
        elif status == ST_ACTIONS_FULL:
            self.A = _Capacity.grow_actions(self.A, self.S)
        elif status == ST_TAKES_FULL:
            # no answer (so no take fill) was delivered by the call that stopped: nothing to drop
            self.Tk = _Capacity.grow_take_fills(self.Tk, self.S)

    def delivered_effects(self) -> tuple[np.ndarray, ...]:
        """Columns of the effects delivered since the buffer was last compacted."""
        n = int(self.S[S_E_DELIVER])
        return tuple(column[:n].copy() for column in self.E)

    def delivered_take_fills(self) -> tuple[np.ndarray, ...]:
        """Columns of the take fills delivered since the buffer was last compacted."""
        n = int(self.S[S_T_DELIVER])
        return tuple(column[:n].copy() for column in self.Tk)


class _TickBookView:
    """Read-only :class:`~mmlab.data.book.OrderBook` interface over the compiled engine's local book."""

    def __init__(self, engine: _Engine) -> None:
        self._engine = engine

    def _side(self, side: int) -> tuple[np.ndarray, int]:
        B = self._engine.B
        if side == 1:
            return B.l_bid, 1
        if side == -1:
            return B.l_ask, -1
        raise ValueError(f"OrderBook: side must be +1 or -1, got {side!r}")

    def size_at(self, side: int, price: float) -> float:
        """Displayed size at ``price`` on ``side``, coins; 0 where there is no level."""
        sizes, _ = self._side(side)
        level = _level_of(self._engine.T.level_price, float(price))
        return float(sizes[level]) if level >= 0 else 0.0

    def best_bid(self) -> float:
        best = self._engine.B.l_state[BK_BEST_BID]
        return float(self._engine.T.level_price[best]) if best >= 0 else math.nan

    def best_ask(self) -> float:
        best = self._engine.B.l_state[BK_BEST_ASK]
        return float(self._engine.T.level_price[best]) if best >= 0 else math.nan

    def mid(self) -> float:
        return 0.5 * (self.best_bid() + self.best_ask())

    def level_count(self, side: int) -> int:
        sizes, _ = self._side(side)
        return int(np.count_nonzero(sizes))

    def top_levels(self, side: int, levels: int | None = None) -> list[tuple[float, float]]:
        """``(price, size)`` pairs of ``side``, best first, at most ``levels`` of them."""
        sizes, sign = self._side(side)
        occupied = np.flatnonzero(sizes)
        if sign == 1:
            occupied = occupied[::-1]
        occupied = occupied if levels is None else occupied[:levels]
        prices = self._engine.T.level_price
        return [(float(prices[j]), float(sizes[j])) for j in occupied]

    def depth(self, side: int, levels: int | None = None) -> float:
        return float(sum(size for _, size in self.top_levels(side, levels)))

    def snapshot(self, levels: int, ts_exch: int, ts_local: int) -> L2Book:
        bids = self.top_levels(1, levels)
        asks = self.top_levels(-1, levels)
        return L2Book.from_levels(
            ts_exch=ts_exch,
            ts_local=ts_local,
            bid_px=[p for p, _ in bids],
            bid_sz=[s for _, s in bids],
            ask_px=[p for p, _ in asks],
            ask_sz=[s for _, s in asks],
        )


class FastSimVenue:
    """:class:`~mmlab.sim.venue.SimVenue` compiled: the same constructor, interface and results.

    Parameters are those of :class:`~mmlab.sim.venue.SimVenue`; the queue model must be one of
    :mod:`mmlab.sim.models`' (:func:`queue_model_code`).

    Attributes
    ----------
    instrument : InstrumentSpec
        The tape's instrument.
    order_book : object
        The book as our feed has delivered it so far, with :class:`~mmlab.data.book.OrderBook`'s
        read methods (``size_at``, ``best_bid``, ``best_ask``, ``mid``, ``top_levels``, ``snapshot``).
    orders_placed, modifies_sent, takes_sent, rejections, failed_cancels : int
        As in :class:`~mmlab.sim.venue.SimVenue`.
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
            raise ValueError(f"FastSimVenue.book_levels must be an integer >= 1, got {book_levels!r}")
        self._engine = _Engine(
            tape,
            config,
            "FastSimVenue",
            queue_model=queue_model,
            order_latency=order_latency,
            feed_latency=feed_latency,
            response_latency=response_latency,
            fees=fees,
        )
        models = self._engine.models
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
        self.order_book = _TickBookView(self._engine)
        self.funding_events: list[FundingPayment] = []
        self._clock_ns = _NEVER_NS
        self._snapshot_row = -1
        self._snapshot: L2Book | None = None
        self._bid_levels = np.zeros(book_levels, dtype=np.int64)
        self._ask_levels = np.zeros(book_levels, dtype=np.int64)
        self._views: dict[int, OpenOrder] = {}
        self._ts_exch: list[int] = tape.ts_exch.tolist()
        self._ts_local: list[int] = tape.ts_local.tolist()
        self._trade_rows = np.flatnonzero(tape.kind == EventKind.TRADE)
        self._trade_price: list[float] = tape.price.tolist()
        self._trade_size: list[float] = tape.size.tolist()
        self._trade_side: list[int] = tape.side.tolist()
        self._trade_id: list[int] = tape.trade_id.tolist()
        self._buyer, self._seller = trade_addresses(tape)
        self._open_interest = OpenInterestTape(tape)
        self._sides = {1: Side.BUY, -1: Side.SELL}

    @classmethod
    def builder(cls, tape: Tape, config: SimConfig | None = None):
        """:meth:`SimVenue.builder <mmlab.sim.venue.SimVenue.builder>` with the compiled engine."""
        from mmlab.sim.venue import SimVenueBuilder

        return SimVenueBuilder(tape, (config or SimConfig()).replace(engine="compiled"))

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
            raise ValueError(f"FastSimVenue.poll: ts_local {ts} is earlier than the venue clock {self._clock_ns}")
        self._clock_ns = ts
        engine = self._engine
        S = engine.S
        first_row = int(S[S_L_ROW])
        fills: list[Fill] = []
        while True:
            status = _poll_kernel(engine.T, engine.B, engine.O, engine.A, engine.E, engine.Tk, S, engine.F, ts)
            if S[S_E_DELIVER]:
                self._collect(engine.delivered_effects(), fills)
            if S[S_T_DELIVER]:
                self._collect_take_fills(engine.delivered_take_fills(), fills)
            if status == ST_OK:
                break
            engine.grow_for(status)

        book_row = int(S[S_BOOK_ROW])
        if book_row != self._snapshot_row:
            self._snapshot = self._book_snapshot(book_row)
            self._snapshot_row = book_row
        trades = self._trades(first_row, int(S[S_L_ROW]))
        open_orders, pending_cancels = self._orders_view()
        F = engine.F
        mark = float(F[F_MARK]) if math.isfinite(F[F_MARK]) else self.order_book.mid()
        return VenueUpdate(
            ts_local=ts,
            book=self._snapshot,
            trades=trades,
            fills=tuple(fills),
            position=float(F[F_POSITION]),
            open_orders=open_orders,
            funding_rate=float(F[F_FUNDING_RATE]),
            mark_price=mark,
            pending_cancels=pending_cancels,
            open_interest=self._open_interest.before(int(S[S_L_ROW])),
        )

    def submit(self, actions: Sequence[OrderAction], ts_local: int) -> list[int]:
        """Send ``actions`` stamped with local time ``ts_local``; return the new orders' ids.

        Same rules and errors as :meth:`SimVenue.submit <mmlab.sim.venue.SimVenue.submit>`.
        """
        ts = int(ts_local)
        if ts < self._clock_ns:
            raise ValueError(f"FastSimVenue.submit: ts_local {ts} is earlier than the venue clock {self._clock_ns}")
        engine = self._engine
        S = engine.S
        next_id = int(S[S_NEXT_ID])
        for index, action in enumerate(actions):
            validate_action("FastSimVenue", index, action, next_id, self._known_side)
        self._clock_ns = ts
        count = len(actions)
        if count == 0:
            return []
        kinds = np.empty(count, dtype=np.int64)
        sides = np.zeros(count, dtype=np.int64)
        prices = np.zeros(count)
        sizes = np.zeros(count)
        levels = np.full(count, -1, dtype=np.int64)
        target_ids = np.zeros(count, dtype=np.int64)
        arrivals = np.empty(count, dtype=np.int64)
        answers = np.empty(count, dtype=np.int64)
        last_arrival, last_answer = int(S[S_LAST_ARRIVAL]), int(S[S_LAST_ANSWER])
        level_price = engine.T.level_price
        assigned: list[int] = []
        for k, action in enumerate(actions):
            # A = max(t + o, previous A); D = max(A + g, previous D), as in SimVenue.submit
            last_arrival = max(ts + self._draw_order_latency_ns(), last_arrival)
            last_answer = max(last_arrival + self._draw_response_latency_ns(), last_answer)
            arrivals[k] = last_arrival
            answers[k] = last_answer
            kind = action.kind
            if kind is ActionKind.CANCEL:
                kinds[k] = AK_CANCEL
                target_ids[k] = int(action.order_id)
                continue
            kinds[k] = _ACTION_CODES[kind]
            sides[k] = int(action.side)
            prices[k] = float(action.price)
            sizes[k] = float(action.size)
            if kind is ActionKind.MODIFY:
                target_ids[k] = int(action.order_id)
                levels[k] = _level_of(level_price, prices[k])
            else:
                if kind is ActionKind.PLACE:
                    levels[k] = _level_of(level_price, prices[k])
                assigned.append(next_id + len(assigned))
        engine.ensure_room(len(assigned), count)
        _submit_kernel(engine.T, engine.O, engine.A, S, kinds, sides, prices, sizes, levels, target_ids, arrivals, answers, ts)
        return assigned

    def _known_side(self, order_id: int) -> int | None:
        """The side of an order the strategy still knows, else None."""
        O, S = self._engine.O, self._engine.S
        slot = int(order_id) & int(S[S_MASK])
        if O.order_id[slot] != order_id or not O.flags[slot] & OF_KNOWN:
            return None
        return int(O.side[slot])

    def account(self) -> AccountState:
        """Position and cash from the fills and funding payments that have reached us."""
        F, S = self._engine.F, self._engine.S
        return AccountState(
            position=float(F[F_POSITION]),
            cash_usd=float(F[F_CASH]),
            fees_usd=float(F[F_FEES]),
            funding_usd=float(F[F_FUNDING]),
            volume_usd=float(F[F_VOLUME]),
            fills=int(S[S_FILLS]),
        )

    # -- introspection ---------------------------------------------------------------------

    @property
    def orders_placed(self) -> int:
        return int(self._engine.S[S_PLACED])

    @property
    def modifies_sent(self) -> int:
        return int(self._engine.S[S_MODIFIES])

    @property
    def takes_sent(self) -> int:
        return int(self._engine.S[S_TAKES])

    @property
    def rejections(self) -> int:
        return int(self._engine.S[S_REJECTIONS])

    @property
    def failed_cancels(self) -> int:
        return int(self._engine.S[S_FAILED_CANCELS])

    def queue_ahead(self, order_id: int) -> float:
        """Displayed size (coins) ahead of a resting order at the exchange.

        Raises
        ------
        KeyError
            If the order is not resting (still in flight, filled, cancelled or rejected).
        """
        O, S = self._engine.O, self._engine.S
        slot = int(order_id) & int(S[S_MASK])
        if int(order_id) < 1 or O.order_id[slot] != order_id or not O.flags[slot] & OF_RESTING:
            raise KeyError(f"order {order_id} is not resting at the exchange")
        return float(O.queue[slot])

    @property
    def rows_processed(self) -> int:
        """Number of tape rows our feed has delivered so far."""
        return int(self._engine.S[S_L_ROW])

    # -- internals -------------------------------------------------------------------------

    def _collect_take_fills(self, takes: tuple[np.ndarray, ...], fills: list[Fill]) -> None:
        _, order_id, side, ts_exch, ts_local, price, size, fee = (column.tolist() for column in takes)
        sides = self._sides
        for k in range(len(order_id)):
            fills.append(
                Fill(
                    ts_exch=ts_exch[k],
                    ts_local=ts_local[k],
                    order_id=order_id[k],
                    side=sides[side[k]],
                    price=price[k],
                    size=size[k],
                    fee_usd=fee[k],
                    is_maker=False,
                )
            )

    def _collect(self, effects: tuple[np.ndarray, ...], fills: list[Fill]) -> None:
        kind, row, order_id, side, price, size, fee, value, _ = (column.tolist() for column in effects)
        ts_exch, ts_local, sides = self._ts_exch, self._ts_local, self._sides
        for k in range(len(kind)):
            r = row[k]
            if kind[k] == EF_FILL:
                fills.append(
                    Fill(
                        ts_exch=ts_exch[r],
                        ts_local=ts_local[r],
                        order_id=order_id[k],
                        side=sides[side[k]],
                        price=price[k],
                        size=size[k],
                        fee_usd=fee[k],
                        is_maker=True,
                    )
                )
            else:
                self.funding_events.append(
                    FundingPayment(ts_local=ts_local[r], position=size[k], mark_price=price[k], rate=fee[k], payment_usd=value[k])
                )

    def _book_snapshot(self, book_row: int) -> L2Book | None:
        if book_row < 0:
            return None
        B, T = self._engine.B, self._engine.T
        n_bid, n_ask = _top_levels(B.l_bid, B.l_ask, B.l_state, self.book_levels, self._bid_levels, self._ask_levels)
        bids = self._bid_levels[:n_bid]
        asks = self._ask_levels[:n_ask]
        arrays = [T.level_price[bids], B.l_bid[bids], T.level_price[asks], B.l_ask[asks]]
        for array in arrays:
            array.setflags(write=False)
        return L2Book(
            ts_exch=self._ts_exch[book_row],
            ts_local=self._ts_local[book_row],
            bid_px=arrays[0],
            bid_sz=arrays[1],
            ask_px=arrays[2],
            ask_sz=arrays[3],
        )

    def _trades(self, first_row: int, end_row: int) -> tuple[Trade, ...]:
        rows = self._trade_rows
        lo, hi = np.searchsorted(rows, [first_row, end_row])
        return tuple(
            Trade(
                ts_exch=self._ts_exch[r],
                ts_local=self._ts_local[r],
                price=self._trade_price[r],
                size=self._trade_size[r],
                aggressor=self._sides[self._trade_side[r]],
                trade_id=self._trade_id[r],
                buyer=self._buyer[r] if self._buyer is not None else None,
                seller=self._seller[r] if self._seller is not None else None,
            )
            for r in rows[lo:hi].tolist()
        )

    def _orders_view(self) -> tuple[tuple[OpenOrder, ...], tuple[OpenOrder, ...]]:
        """Open orders (id order); pending cancels (id order), then old versions of unanswered MODIFYs."""
        engine = self._engine
        O, S = engine.O, engine.S
        ids = O.known[: S[S_KNOWN_N]]
        slots = ids & S[S_MASK]
        cancel_sent = (O.flags[slots] & OF_CANCEL_SENT) != 0
        sizes = O.view_size[slots].tolist()
        prices = O.view_price[slots].tolist()
        sent = O.ts_sent[slots].tolist()
        views: dict[int, OpenOrder] = {}
        open_orders: list[OpenOrder] = []
        pending: list[OpenOrder] = []
        for k, order_id in enumerate(ids.tolist()):
            view = self._views.get(order_id)
            if view is None or view.size != sizes[k] or view.price != prices[k] or view.ts_local_sent != sent[k]:
                view = OpenOrder(
                    order_id=order_id,
                    side=self._sides[int(O.side[int(slots[k])])],
                    price=prices[k],
                    size=sizes[k],
                    ts_local_sent=sent[k],
                )
            views[order_id] = view
            (pending if cancel_sent[k] else open_orders).append(view)
        self._views = views
        if S[S_MODIFIES] and S[S_A_DELIVER] < S[S_A_TAIL]:
            pending.extend(self._old_versions(views))
        return tuple(open_orders), tuple(pending)

    def _old_versions(self, known: dict[int, OpenOrder]) -> list[OpenOrder]:
        """Each unanswered MODIFY's replaced version of an order the strategy still knows."""
        A, S = self._engine.A, self._engine.S
        amask = int(S[S_A_MASK])
        kinds, versions, order_ids = A.kind, A.version, A.order_id
        old: list[OpenOrder] = []
        # the unanswered actions are few (those sent within one response latency): a Python loop
        for c in range(int(S[S_A_DELIVER]), int(S[S_A_TAIL])):
            a = c & amask
            if kinds[a] != AK_MODIFY or versions[a] < 0:
                continue
            view = known.get(int(order_ids[a]))
            if view is not None:
                old.append(
                    OpenOrder(
                        order_id=view.order_id,
                        side=view.side,
                        price=float(A.old_price[a]),
                        size=float(A.old_size[a]),
                        ts_local_sent=int(A.old_ts[a]),
                    )
                )
        return old


# -- the compiled fixed-spread run ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FixedSpreadRun:
    """What :func:`run_fixed_spread` produced: fills, funding, per-cycle quotes and the account.

    ``fills`` has one row per fill (``ts_exch``, ``ts_local`` ns; ``order_id``; ``side`` ±1;
    ``price`` USD; ``size`` coins; ``fee_usd``); ``cycles`` one row per quote cycle (``ts_local``;
    ``best_bid``/``best_ask`` seen; ``quote_bid``/``quote_ask`` targets, NaN when not quoting;
    ``position`` before the cycle's actions; ``actions`` sent).
    """

    fills: pd.DataFrame
    funding_events: tuple[FundingPayment, ...]
    cycles: pd.DataFrame
    account: AccountState
    orders_placed: int
    cancels_sent: int
    modifies_sent: int
    rejections: int
    failed_cancels: int
    wall_s: float

    def summary(self) -> dict[str, Any]:
        """Headline figures, money in USD."""
        return {
            "cycles": len(self.cycles),
            "fills": len(self.fills),
            "volume_usd": self.account.volume_usd,
            "cash_usd": self.account.cash_usd,
            "fees_usd": self.account.fees_usd,
            "funding_usd": self.account.funding_usd,
            "final_position": self.account.position,
            "orders_placed": self.orders_placed,
            "cancels_sent": self.cancels_sent,
            "modifies_sent": self.modifies_sent,
            "rejections": self.rejections,
            "failed_cancels": self.failed_cancels,
            "wall_s": self.wall_s,
        }


def _tick_units(tick: float) -> tuple[float, int]:
    """``tick = units / 10**decimals`` with the decimals mmlab.units counts (12 at most)."""
    text = f"{tick:.12f}".rstrip("0")
    decimals = len(text.partition(".")[2])
    return float(round(tick * 10**decimals)), decimals


def _predraw(draw: Callable[[], int], model: LatencyModel, count: int) -> np.ndarray:
    if isinstance(model, ConstantLatency):
        return np.array([model.ns], dtype=np.int64)
    # the sampler's own sequence, one draw per action as SimVenue.submit takes them; at least
    # two values so the compiled code can tell a sequence from a constant
    return np.array([draw() for _ in range(max(count, 2))], dtype=np.int64)


def run_fixed_spread(
    tape: Tape,
    quoter: Any,
    sim: SimConfig | None = None,
    *,
    cycle_interval_s: float = 0.1,
) -> FixedSpreadRun:
    """Replay ``tape`` with ``quoter``'s fixed-spread rule compiled into the engine's loop.

    Cycles, quotes and orders are those of :func:`~mmlab.sim.backtest.run_backtest` with
    ``pipeline=quoter`` (a :class:`~mmlab.sim.baselines.FixedSpreadQuoter`): a poll every
    ``cycle_interval_s`` of local time from the tape's first row, one bid and one ask
    ``half_spread_bps`` around the mid rounded onto the instrument's grid and kept off the touch,
    reconciled as :func:`mmlab.executor.reconcile` does for one target per side (the open order
    closest to the target within ``reprice_tolerance_bps`` and of the full size is kept, else the
    best-priced open order is MODIFIED into the target, the others cancelled, and a new order
    placed only when there is none to modify), and trimmed as :func:`mmlab.executor.limit_exposure`
    does so that everything that could fill keeps ``|position| ≤ q_max`` (an order with a
    MODIFY in flight counting at old + new size). The fills equal that run's; the
    evaluator's markouts, which do not move the quotes, are not computed.

    Raises
    ------
    ValueError
        If ``cycle_interval_s`` is not positive or the quoter lacks the fixed-spread parameters.
    """
    import time

    started = time.perf_counter()
    sim = sim or SimConfig()
    if not (isinstance(cycle_interval_s, (int, float)) and math.isfinite(cycle_interval_s) and cycle_interval_s > 0):
        raise ValueError(f"run_fixed_spread: cycle_interval_s must be a positive number, got {cycle_interval_s!r}")
    for name in ("half_spread_bps", "size", "q_max", "reprice_tolerance_bps", "instrument"):
        if not hasattr(quoter, name):
            raise ValueError(f"run_fixed_spread: quoter has no field {name!r}; expected a FixedSpreadQuoter")
    instrument: InstrumentSpec = quoter.instrument
    engine = _Engine(tape, sim, "run_fixed_spread")
    tick = float(instrument.price_tick)
    tick_units, tick_decimals = _tick_units(tick) if tick > 0 else (0.0, 0)
    params = np.array(
        [
            quoter.half_spread_bps,
            quoter.size,
            quoter.q_max,
            quoter.reprice_tolerance_bps,
            tick,
            tick_units,
            tick_decimals,
            instrument.sz_decimals,
        ],
        dtype=np.float64,
    )
    step_ns = int(round(cycle_interval_s * 1e9))
    first, last = int(tape.ts_local[0]), int(tape.ts_local[-1])
    cycles = max(0, (last - first) // step_ns)
    out = np.full((cycles, _C_SIZE), np.nan)
    order_model, response_model = engine.models.order_latency, engine.models.response_latency
    draw_order, draw_response = order_model.sampler(), response_model.sampler()
    order_draws = _predraw(draw_order, order_model, 4096)
    response_draws = _predraw(draw_response, response_model, 4096)
    columns: list[tuple[np.ndarray, ...]] = []
    while True:
        status = _fixed_spread_kernel(
            engine.T, engine.B, engine.O, engine.A, engine.E, engine.Tk, engine.S, engine.F, params,
            first, step_ns, cycles, order_draws, response_draws, out,
        )  # fmt: skip
        columns.append(engine.delivered_effects())
        if status == ST_OK:
            break
        if status == ST_DRAWS_EMPTY:
            S = engine.S
            if order_draws.shape[0] > 1:
                order_draws = np.concatenate([order_draws[S[S_DRAW_ORDER] :], _predraw(draw_order, order_model, 4096)])
                S[S_DRAW_ORDER] = 0
            if response_draws.shape[0] > 1:
                response_draws = np.concatenate(
                    [response_draws[S[S_DRAW_RESPONSE] :], _predraw(draw_response, response_model, 4096)]
                )
                S[S_DRAW_RESPONSE] = 0
        else:
            engine.grow_for(status)
    kind, row, order_id, side, price, size, fee, value, _ = (np.concatenate(parts) for parts in zip(*columns))
    is_fill = kind == EF_FILL
    fill_rows = row[is_fill]
    fills = pd.DataFrame(
        {
            "ts_exch": tape.ts_exch[fill_rows],
            "ts_local": tape.ts_local[fill_rows],
            "order_id": order_id[is_fill],
            "side": side[is_fill],
            "price": price[is_fill],
            "size": size[is_fill],
            "fee_usd": fee[is_fill],
        }
    )
    funding = tuple(
        FundingPayment(
            ts_local=int(tape.ts_local[r]), position=float(p), mark_price=float(m), rate=float(q), payment_usd=float(v)
        )
        for r, p, m, q, v in zip(row[~is_fill], size[~is_fill], price[~is_fill], fee[~is_fill], value[~is_fill])
    )
    cycles_frame = pd.DataFrame(
        {
            "ts_local": out[:, C_TS].astype(np.int64),
            "best_bid": out[:, C_BEST_BID],
            "best_ask": out[:, C_BEST_ASK],
            "quote_bid": out[:, C_QUOTE_BID],
            "quote_ask": out[:, C_QUOTE_ASK],
            "position": out[:, C_POSITION],
            "actions": out[:, C_ACTIONS].astype(np.int64),
        }
    )
    S, F = engine.S, engine.F
    account = AccountState(
        position=float(F[F_POSITION]),
        cash_usd=float(F[F_CASH]),
        fees_usd=float(F[F_FEES]),
        funding_usd=float(F[F_FUNDING]),
        volume_usd=float(F[F_VOLUME]),
        fills=int(S[S_FILLS]),
    )
    return FixedSpreadRun(
        fills=fills,
        funding_events=funding,
        cycles=cycles_frame,
        account=account,
        orders_placed=int(S[S_PLACED]),
        cancels_sent=int(S[S_CANCELS_SENT]),
        modifies_sent=int(S[S_MODIFIES]),
        rejections=int(S[S_REJECTIONS]),
        failed_cancels=int(S[S_FAILED_CANCELS]),
        wall_s=time.perf_counter() - started,
    )


def warm_up() -> float:
    """Compile (or load from numba's cache) every entry point on a tiny tape; return seconds taken."""
    import time

    from mmlab.testing import make_tape

    started = time.perf_counter()
    t0 = 1_767_225_600_000_000_000
    ms = 1_000_000
    rows = [
        (t0, EventKind.BOOK_CLEAR, 0, 0.0, 0.0, math.nan, 0),
        (t0, EventKind.BOOK, 1, 100.0, 5.0, math.nan, 0),
        (t0, EventKind.BOOK, -1, 100.1, 4.0, math.nan, 0),
        (t0 + 300 * ms, EventKind.TRADE, -1, 99.9, 1.0, math.nan, 1),
        (t0 + 400 * ms, EventKind.FUNDING, 0, 100.0, 0.0, 1e-5, 0),
    ]
    tape = make_tape(rows)
    venue = FastSimVenue(tape, SimConfig(feed_latency_s=0.0, order_latency_s=0.0))
    venue.poll(t0 + 100 * ms)
    venue.submit([OrderAction(kind=ActionKind.PLACE, side=Side.BUY, price=100.0, size=1.0)], t0 + 100 * ms)
    venue.poll(t0 + 200 * ms)
    venue.submit(
        [
            OrderAction(kind=ActionKind.MODIFY, side=Side.BUY, price=99.9, size=2.0, order_id=1),
            OrderAction(kind=ActionKind.TAKE, side=Side.BUY, price=100.1, size=1.0),
        ],
        t0 + 200 * ms,
    )
    venue.poll(t0 + 500 * ms)
    from mmlab.sim.baselines import FixedSpreadQuoter

    run_fixed_spread(tape, FixedSpreadQuoter(tape.instrument, half_spread_bps=1.0, size=0.1, q_max=1.0), SimConfig())
    return time.perf_counter() - started
