"""Trade flow: market prints grouped into aggressor events, and trade-based sweep detection.

The other trade-flow features build on this module: the buy/sell Hawkes intensities
(:mod:`mmlab.sensor.hawkes`), VPIN (:mod:`mmlab.sensor.vpin`) and the informed-flow estimate
(:mod:`mmlab.sensor.informed`).

Prints and aggressor events
---------------------------
A venue publishes one print per maker order filled, so one market order that walks the book
appears as several prints with the same aggressor and the same exchange timestamp. An
**aggressor event** is a maximal run of consecutive valid prints with equal ``ts_exch`` and equal
aggressor side; it stands for one taker order (two takers on the same side in the same exchange
tick cannot be told apart and count as one). For an event e made of prints p = 1 … P:

    size_e = Σ_p size_p  (coins),       notional_e = Σ_p price_p · size_p  (USD)
    levels_e = 1 + #{p > 1 : price_p ≠ price_{p−1}}                     (price levels taken)
    depth_e = side_e · (ln price_P − ln price_1) · 1e4                 (bps walked through the book, ≥ 0)

A print is **invalid**, ignored and counted, when its price or size is not finite or not positive,
its aggressor is not ±1, or its exchange time runs backwards (before the previous valid print's).
Online features and the batch functions apply the same rule (:class:`PrintFilter`), so they see
the same events.

Sweeps
------
An event that takes at least ``min_levels`` price levels is a sweep. :class:`SweepPressure`
reports the exponentially decayed sum of signed sweep weights,

    value(t) = Σ_{sweeps e received by t} side_e · w_e · exp(−(t − t_e) / τ)

with ``t_e`` the local time the sweep's first print was received, τ = ``decay_s`` and ``w_e`` one
of ``depth_bps`` (the default), ``levels`` (levels taken beyond the first, ``levels_e − 1``) or
``size_coins``. A buy sweep pushes the price up, so the value is positive evidence of a rise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Iterator, Literal, Sequence

import numpy as np
import pandas as pd

from mmlab.config import check_field
from mmlab.data.tape import EventKind, Tape
from mmlab.types import Trade, VenueUpdate
from mmlab.units import NS_PER_S

__all__ = [
    "TradePrints",
    "TradeEvents",
    "PrintFilter",
    "trade_prints",
    "prints_from_updates",
    "group_events",
    "trade_events",
    "SweepPressure",
    "sweeps",
    "sweep_series",
    "SWEEP_WEIGHTS",
]

#: weights a sweep can carry in :class:`SweepPressure`
SWEEP_WEIGHTS = ("depth_bps", "levels", "size_coins")


@dataclass(frozen=True, slots=True)
class TradePrints:
    """Valid prints in arrival order: ``ts_exch``, ``ts_local`` (ns), ``price`` (USD),
    ``size`` (coins), ``side`` (+1 buyer-initiated, −1 seller-initiated); ``dropped`` counts the
    invalid ones left out (module docstring)."""

    ts_exch: np.ndarray
    ts_local: np.ndarray
    price: np.ndarray
    size: np.ndarray
    side: np.ndarray
    dropped: int = 0

    def __len__(self) -> int:
        return int(self.ts_exch.size)


@dataclass(frozen=True, slots=True)
class TradeEvents:
    """Aggressor events (module docstring), one entry per event, in arrival order.

    Attributes
    ----------
    ts_exch, ts_local : np.ndarray
        Exchange time and local receive time of the event's first print, ns.
    side : np.ndarray
        +1 buyer-initiated, −1 seller-initiated (int8).
    size_coins, notional_usd : np.ndarray
        Total size and notional over the event's prints.
    first_price, last_price : np.ndarray
        Prices of the first and last print, USD.
    levels : np.ndarray
        Price levels taken (1 + price changes within the event).
    prints : np.ndarray
        Number of prints.
    first_print : np.ndarray
        Index of the event's first print in the :class:`TradePrints` it was made from.
    dropped_prints : int
        Invalid prints left out.
    """

    ts_exch: np.ndarray
    ts_local: np.ndarray
    side: np.ndarray
    size_coins: np.ndarray
    notional_usd: np.ndarray
    first_price: np.ndarray
    last_price: np.ndarray
    levels: np.ndarray
    prints: np.ndarray
    first_print: np.ndarray
    dropped_prints: int = 0

    def __len__(self) -> int:
        return int(self.ts_exch.size)

    @property
    def depth_bps(self) -> np.ndarray:
        """Bps walked through the book by each event, ``side · (ln last − ln first) · 1e4`` (≥ 0)."""
        return self.side * (np.log(self.last_price) - np.log(self.first_price)) * 1e4

    def times_s(self, origin_ns: int | None = None) -> np.ndarray:
        """Exchange times in seconds since ``origin_ns`` (default the first event)."""
        if origin_ns is None:
            origin_ns = int(self.ts_exch[0]) if len(self) else 0
        return (self.ts_exch - origin_ns) / NS_PER_S

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "ts_exch": self.ts_exch,
                "ts_local": self.ts_local,
                "side": self.side,
                "size_coins": self.size_coins,
                "notional_usd": self.notional_usd,
                "first_price": self.first_price,
                "last_price": self.last_price,
                "levels": self.levels,
                "prints": self.prints,
                "depth_bps": self.depth_bps,
            }
        )


class PrintFilter:
    """The validity rule of the module docstring, applied online; counts what it rejects."""

    __slots__ = ("last_ts_exch", "dropped")

    def __init__(self) -> None:
        self.last_ts_exch: int | None = None
        self.dropped = 0

    def accept(self, trade: Trade) -> bool:
        """True when ``trade`` is valid (and then it becomes the latest valid print)."""
        price, size = trade.price, trade.size
        side = int(trade.aggressor) if isinstance(trade.aggressor, (int, np.integer)) else 0
        ts_exch = int(trade.ts_exch)
        if not (0.0 < price < math.inf and 0.0 < size < math.inf) or side not in (1, -1):
            self.dropped += 1
            return False
        if self.last_ts_exch is not None and ts_exch < self.last_ts_exch:
            self.dropped += 1
            return False
        self.last_ts_exch = ts_exch
        return True

    def valid(self, trades: Iterable[Trade]) -> Iterator[Trade]:
        """The valid prints of ``trades``, in order (the others are counted in ``dropped``)."""
        return (trade for trade in trades if self.accept(trade))


class PrintFeatureMixin:
    """For features read from valid prints only: ``dropped`` is what their filter rejected."""

    __slots__ = ()
    _filter: PrintFilter

    @property
    def dropped(self) -> int:
        return self._filter.dropped


def _valid_print_mask(ts_exch: np.ndarray, price: np.ndarray, size: np.ndarray, side: np.ndarray) -> np.ndarray:
    """The mask :class:`PrintFilter` would produce over these prints, in order."""
    with np.errstate(invalid="ignore"):
        ok = (price > 0.0) & (price < np.inf) & (size > 0.0) & (size < np.inf) & ((side == 1) | (side == -1))
    # exchange time must not run backwards: compare each print with the running maximum of the
    # valid prints before it (a sequential rule; a vectorised pass per violation is cheap because
    # real tapes have few of them)
    index = np.flatnonzero(ok)
    ts = ts_exch[index]
    while index.size:
        running = np.maximum.accumulate(ts)
        back = np.flatnonzero(ts[1:] < running[:-1])
        if back.size == 0:
            break
        first_bad = back[0] + 1
        ok[index[first_bad]] = False
        index = np.delete(index, first_bad)
        ts = np.delete(ts, first_bad)
    return ok


def trade_prints(tape: Tape) -> TradePrints:
    """The valid prints of a tape's TRADE rows, in tape order."""
    rows = np.flatnonzero(tape.kind == EventKind.TRADE)
    ts_exch, price, size = tape.ts_exch[rows], tape.price[rows], tape.size[rows]
    side = tape.side[rows].astype(np.int8)
    ok = _valid_print_mask(ts_exch, price, size, side)
    return TradePrints(
        ts_exch=ts_exch[ok].astype(np.int64),
        ts_local=tape.ts_local[rows][ok].astype(np.int64),
        price=price[ok].astype(np.float64),
        size=size[ok].astype(np.float64),
        side=side[ok],
        dropped=int(rows.size - ok.sum()),
    )


def prints_from_updates(updates: Sequence[VenueUpdate]) -> tuple[TradePrints, np.ndarray]:
    """Valid prints of a sequence of venue updates, and each print's update index.

    The same rule as the online features (:class:`PrintFilter`), so batch computations on the
    result agree with them.
    """
    keep = PrintFilter()
    rows: list[tuple[int, int, float, float, int]] = []
    where: list[int] = []
    for n, update in enumerate(updates):
        for trade in update.trades:
            if keep.accept(trade):
                rows.append((int(trade.ts_exch), int(trade.ts_local), float(trade.price), float(trade.size), int(trade.aggressor)))
                where.append(n)
    if rows:
        ts_exch, ts_local, price, size, side = (np.array(c) for c in zip(*rows))
    else:
        ts_exch = ts_local = np.empty(0, np.int64)
        price = size = np.empty(0)
        side = np.empty(0, np.int8)
    prints = TradePrints(
        ts_exch=ts_exch.astype(np.int64),
        ts_local=ts_local.astype(np.int64),
        price=price.astype(np.float64),
        size=size.astype(np.float64),
        side=side.astype(np.int8),
        dropped=keep.dropped,
    )
    return prints, np.array(where, dtype=np.int64)


def group_events(prints: TradePrints) -> TradeEvents:
    """Group valid prints into aggressor events (equal ``ts_exch`` and side, consecutive)."""
    n = len(prints)
    if n == 0:
        empty_i, empty_f = np.empty(0, np.int64), np.empty(0)
        return TradeEvents(
            ts_exch=empty_i, ts_local=empty_i, side=np.empty(0, np.int8), size_coins=empty_f, notional_usd=empty_f,
            first_price=empty_f, last_price=empty_f, levels=empty_i, prints=empty_i, first_print=empty_i,
            dropped_prints=prints.dropped,
        )  # fmt: skip
    new = np.ones(n, dtype=bool)
    new[1:] = (prints.ts_exch[1:] != prints.ts_exch[:-1]) | (prints.side[1:] != prints.side[:-1])
    first = np.flatnonzero(new)
    last = np.append(first[1:], n) - 1
    event_of = np.cumsum(new) - 1
    price_change = np.zeros(n, dtype=np.int64)
    price_change[1:] = (~new[1:]) & (prints.price[1:] != prints.price[:-1])
    count = first.size
    return TradeEvents(
        ts_exch=prints.ts_exch[first],
        ts_local=prints.ts_local[first],
        side=prints.side[first].astype(np.int8),
        size_coins=np.bincount(event_of, weights=prints.size, minlength=count),
        notional_usd=np.bincount(event_of, weights=prints.price * prints.size, minlength=count),
        first_price=prints.price[first],
        last_price=prints.price[last],
        # levels = 1 + price changes inside the event
        levels=1 + np.bincount(event_of, weights=price_change, minlength=count).astype(np.int64),
        prints=(last - first + 1).astype(np.int64),
        first_print=first.astype(np.int64),
        dropped_prints=prints.dropped,
    )


def trade_events(tape: Tape) -> TradeEvents:
    """Aggressor events of a tape (module docstring)."""
    return group_events(trade_prints(tape))


# --------------------------------------------------------------------------------------------
# Sweeps
# --------------------------------------------------------------------------------------------


def _check_sweep_args(owner: str, decay_s: float, min_levels: int, weight: str) -> None:
    check_field(owner, "decay_s", decay_s, gt=0.0)
    if isinstance(min_levels, bool) or not isinstance(min_levels, int) or min_levels < 2:
        raise ValueError(f"{owner}.min_levels must be an integer >= 2, got {min_levels!r}")
    if weight not in SWEEP_WEIGHTS:
        raise ValueError(f"{owner}.weight must be one of {SWEEP_WEIGHTS}, got {weight!r}")


def _sweep_weight(weight: str, levels: int | np.ndarray, depth_bps: float | np.ndarray, size_coins: float | np.ndarray):
    if weight == "depth_bps":
        return depth_bps
    if weight == "levels":
        return levels - 1
    return size_coins


class SweepPressure(PrintFeatureMixin):
    """Decayed sum of signed sweeps (module docstring): positive after buyers swept the asks.

    Parameters
    ----------
    decay_s : float
        τ, the e-folding time of a sweep's weight, s.
    min_levels : int
        Price levels an event must take to count as a sweep (≥ 2).
    weight : {"depth_bps", "levels", "size_coins"}
        What a sweep contributes: bps walked, levels beyond the first, or coins.

    Attributes
    ----------
    value : float
        Σ side · weight · exp(−age/τ) in the weight's unit, age measured on the local clock up to
        the latest update's ``ts_local``; NaN before the first update, then 0 until a sweep.
    sweeps : int
        Sweeps seen (a sweep straddling two updates counts once).
    last_side, last_levels, last_depth_bps, last_size_coins
        The latest sweep (0 before any).
    dropped : int
        Invalid prints ignored (the book is not used).
    """

    def __init__(self, *, decay_s: float = 1.0, min_levels: int = 2, weight: str = "depth_bps") -> None:
        _check_sweep_args("SweepPressure", decay_s, min_levels, weight)
        self.name = "sweep_" + weight
        self.decay_s = float(decay_s)
        self.min_levels = int(min_levels)
        self.weight = weight
        self._filter = PrintFilter()
        # the decayed sum over finished sweeps, as of local time _ref_ns
        self._sum = 0.0
        self._ref_ns: int | None = None
        # the current run (aggressor event in progress)
        self._run_key: tuple[int, int] | None = None
        self._run_ts_local = 0
        self._run_first_price = math.nan
        self._run_last_price = math.nan
        self._run_levels = 0
        self._run_size = 0.0
        self._now_ns: int | None = None
        self.sweeps = 0
        self.last_side = 0
        self.last_levels = 0
        self.last_depth_bps = 0.0
        self.last_size_coins = 0.0

    def update(self, update: VenueUpdate) -> None:
        for trade in self._filter.valid(update.trades):
            key = (int(trade.ts_exch), int(trade.aggressor))
            if key != self._run_key:
                self._close_run()
                self._run_key = key
                self._run_ts_local = int(trade.ts_local)
                self._run_first_price = self._run_last_price = float(trade.price)
                self._run_levels = 1
                self._run_size = float(trade.size)
                continue
            if trade.price != self._run_last_price:
                self._run_levels += 1
                self._run_last_price = float(trade.price)
            self._run_size += float(trade.size)
        if self._run_key is not None and self._run_levels >= self.min_levels:
            self._record_last()
        self._now_ns = int(update.ts_local) if self._now_ns is None else max(self._now_ns, int(update.ts_local))

    def _run_contribution(self) -> float:
        side = self._run_key[1]
        depth = side * (math.log(self._run_last_price) - math.log(self._run_first_price)) * 1e4
        return side * float(_sweep_weight(self.weight, self._run_levels, depth, self._run_size))

    def _record_last(self) -> None:
        self.last_side = self._run_key[1]
        self.last_levels = self._run_levels
        self.last_depth_bps = self._run_key[1] * (math.log(self._run_last_price) - math.log(self._run_first_price)) * 1e4
        self.last_size_coins = self._run_size

    def _close_run(self) -> None:
        if self._run_key is None or self._run_levels < self.min_levels:
            return
        self._record_last()
        self.sweeps += 1
        t = self._run_ts_local
        if self._ref_ns is None:
            self._sum, self._ref_ns = 0.0, t
        if t >= self._ref_ns:
            # Σ ← Σ · exp(−(t − t_ref)/τ) + c, now referred to t
            self._sum = self._sum * math.exp(-(t - self._ref_ns) / NS_PER_S / self.decay_s) + self._run_contribution()
            self._ref_ns = t
        else:  # a run received before the reference (clock tie-breaking): decay it to t_ref
            self._sum += self._run_contribution() * math.exp(-(self._ref_ns - t) / NS_PER_S / self.decay_s)

    @property
    def value(self) -> float:
        if self._now_ns is None:
            return math.nan
        now = self._now_ns
        total = 0.0
        if self._ref_ns is not None:
            total = self._sum * math.exp(-max(0, now - self._ref_ns) / NS_PER_S / self.decay_s)
        if self._run_key is not None and self._run_levels >= self.min_levels:
            total += self._run_contribution() * math.exp(-max(0, now - self._run_ts_local) / NS_PER_S / self.decay_s)
        return total


def sweeps(events: TradeEvents, *, min_levels: int = 2) -> pd.DataFrame:
    """The events that took at least ``min_levels`` price levels, as a frame (see
    :meth:`TradeEvents.to_frame`)."""
    if isinstance(min_levels, bool) or not isinstance(min_levels, int) or min_levels < 2:
        raise ValueError(f"sweeps: min_levels must be an integer >= 2, got {min_levels!r}")
    frame = events.to_frame()
    return frame[frame["levels"] >= min_levels].reset_index(drop=True)


def sweep_series(
    events: TradeEvents,
    ts_local: np.ndarray,
    *,
    decay_s: float = 1.0,
    min_levels: int = 2,
    weight: str = "depth_bps",
) -> np.ndarray:
    """:class:`SweepPressure`'s value at each local time in ``ts_local`` (sorted, ns), in batch.

    A sweep counts from the local time of its first print; times before the first query the
    online feature sees are NaN there, here the sum is simply 0.
    """
    _check_sweep_args("sweep_series", decay_s, min_levels, weight)
    ts_local = np.asarray(ts_local, dtype=np.int64)
    mask = events.levels >= min_levels
    t_e = events.ts_local[mask]
    c_e = events.side[mask] * np.asarray(
        _sweep_weight(weight, events.levels[mask], events.depth_bps[mask], events.size_coins[mask]), dtype=np.float64
    )
    out = np.zeros(ts_local.size)
    if t_e.size == 0:
        return out
    order = np.argsort(t_e, kind="stable")
    t_e, c_e = t_e[order], c_e[order]
    # Σ_{t_e ≤ t} c_e exp(−(t − t_e)/τ) by blocks of sweeps: within a block, factor out the
    # block's first time so the exponentials stay bounded
    rate = 1.0 / (decay_s * NS_PER_S)
    block = ((t_e - t_e[0]) * rate // 30.0).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, block[1:] != block[:-1]])
    base = t_e[starts][np.searchsorted(starts, np.arange(t_e.size), "right") - 1]
    scaled = c_e * np.exp((t_e - base) * rate)
    count = np.searchsorted(t_e, ts_local, "right")  # sweeps received by each query
    for b, s in enumerate(starts):
        e = starts[b + 1] if b + 1 < starts.size else t_e.size
        cum = np.concatenate(([0.0], np.cumsum(scaled[s:e])))
        upto = np.clip(count - s, 0, e - s)
        hit = upto > 0
        out[hit] += cum[upto[hit]] * np.exp(-(ts_local[hit] - t_e[s]) * rate)
    return out
