"""Factories for tests and notebooks: small, explicit messages with sensible defaults."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from mmlab.types import L2Book, MarketBelief, Trade, VenueUpdate

if TYPE_CHECKING:
    from mmlab.data.tape import Tape

__all__ = ["T0_NS", "book_from_levels", "make_belief", "make_book", "make_update", "make_tape"]

#: 2026-01-01 00:00:00 UTC in ns, a fixed start time for hand-made messages.
T0_NS = 1_767_225_600_000_000_000


def make_belief(
    *,
    fair_value: float = 100.0,
    drift_per_s: float = 0.0,
    sigma_per_sqrt_s: float = 1e-4,
    informed_fraction: float = 0.1,
    ts_local: int = T0_NS,
) -> MarketBelief:
    """A belief with small, fixed uncertainties."""
    return MarketBelief(
        ts_local=ts_local,
        fair_value=fair_value,
        log_fair_value_var=1e-8,
        drift_per_s=drift_per_s,
        drift_var=1e-10,
        sigma_per_sqrt_s=sigma_per_sqrt_s,
        log_sigma_var=0.01,
        informed_fraction=informed_fraction,
    )


def make_book(
    *, bid: float, ask: float, bid_size: float = 1.0, ask_size: float = 1.0, ts: int = T0_NS, levels: int = 1, tick: float = 0.01
) -> L2Book:
    """A book with ``levels`` equal levels per side stepping one ``tick`` away from the touch."""
    return L2Book.from_levels(
        ts_exch=ts,
        ts_local=ts,
        bid_px=[bid - k * tick for k in range(levels)],
        bid_sz=[bid_size] * levels,
        ask_px=[ask + k * tick for k in range(levels)],
        ask_sz=[ask_size] * levels,
    )


def book_from_levels(bids: Sequence[tuple[float, float]], asks: Sequence[tuple[float, float]], ts: int = T0_NS) -> L2Book:
    """A book from ``[(price, size), …]`` per side, best first."""
    return L2Book.from_levels(
        ts_exch=ts,
        ts_local=ts,
        bid_px=[p for p, _ in bids],
        bid_sz=[q for _, q in bids],
        ask_px=[p for p, _ in asks],
        ask_sz=[q for _, q in asks],
    )


def make_update(book: L2Book | None, *, ts: int | None = None, trades: Sequence[Trade] = (), position: float = 0.0) -> VenueUpdate:
    """A venue update carrying ``book`` and ``trades``, no fills or orders."""
    ts_local = ts if ts is not None else (book.ts_local if book is not None else T0_NS)
    return VenueUpdate(ts_local=ts_local, book=book, trades=tuple(trades), fills=(), position=position, open_orders=())


def make_tape(rows: Sequence[tuple], *, exchange_clock_offset_ns: int = 0, coin: str = "TEST") -> "Tape":
    """A tape from ``(ts_local, kind, side, price, size, rate, trade_id)`` rows, in that order.

    ``ts_exch`` is ``ts_local + exchange_clock_offset_ns``, so a test can give the two clocks an
    offset and check that nothing orders events by the wrong one.
    """
    import numpy as np

    from mmlab.config import InstrumentSpec
    from mmlab.data.tape import Tape

    ts_local, kind, side, price, size, rate, trade_id = (np.array(column) for column in zip(*rows))
    return Tape.from_columns(
        {
            "ts_exch": ts_local + exchange_clock_offset_ns,
            "ts_local": ts_local,
            "kind": kind.astype(np.uint8),
            "side": side,
            "price": price,
            "size": size,
            "rate": rate,
            "trade_id": trade_id,
        },
        instrument=InstrumentSpec(coin=coin),
        source="hand-made",
    )
