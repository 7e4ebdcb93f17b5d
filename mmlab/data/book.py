"""A mutable L2 order book rebuilt row by row from a tape (or from any venue's level updates).

Each side is a dict ``price -> size`` (USD -> coins) plus a list of its prices kept in ascending
order, so that the best levels are a slice of the list whatever the number of levels on the side.
Keeping that list sorted on every update would cost a binary search of Python floats per new or
deleted level, paid on every row of a tape although the list is read only at a snapshot. So:

- an update of an existing level is one dict assignment (the list does not change);
- a new or deleted level is a dict operation plus appending the price to a short "touched" list;
- a read (:meth:`OrderBook.best_bid`, :meth:`OrderBook.snapshot`, ...) first reconciles the
  sorted list with the dict at the touched prices (a binary search and ``insert`` / ``del`` each),
  or, when more than ``_MAX_TOUCHED`` prices were touched or the book was cleared, re-sorts the
  side once, whichever is cheaper.

Prices are arbitrary positive floats (no tick grid is assumed); a level is identified by its float
value, so an importer must deliver the same float for the same level (parse the same decimal
string, or round to the venue grid with :mod:`mmlab.units` before applying).

Sides follow :class:`~mmlab.types.Side`: +1 is the bid side, -1 the ask side. The best bid is the
highest bid price, the best ask the lowest ask price; the book may be crossed (real feeds are,
briefly), which :attr:`~mmlab.types.L2Book.is_crossed` of a snapshot reports.
"""

from __future__ import annotations

import math
from bisect import bisect_left

import numpy as np

from mmlab.types import L2Book, Side

__all__ = ["OrderBook"]

# Above this many touched prices one sort of the side (~30 us for 1,000 levels) is cheaper than
# reconciling them one by one (~0.3 us each) and bounds the memory of a book nobody reads.
_MAX_TOUCHED = 64


def _frozen_array(values: list[float]) -> np.ndarray:
    array = np.array(values, dtype=np.float64)
    array.setflags(write=False)
    return array


class OrderBook:
    """Displayed size at each price on both sides of one instrument's book.

    Examples
    --------
    >>> book = OrderBook()
    >>> book.apply(Side.BUY, 99.0, 2.0)
    >>> book.apply(Side.SELL, 101.0, 1.5)
    >>> book.best_bid(), book.best_ask()
    (99.0, 101.0)
    >>> float(book.snapshot(5, ts_exch=1, ts_local=2).mid)
    100.0
    """

    __slots__ = ("_bid_sizes", "_ask_sizes", "_bid_prices", "_ask_prices", "_bid_touched", "_ask_touched")

    def __init__(self) -> None:
        self._bid_sizes: dict[float, float] = {}
        self._ask_sizes: dict[float, float] = {}
        # Prices in ascending order on both sides (best bid last, best ask first), exact except
        # at the touched prices; a touched list of None means "re-sort on the next read".
        self._bid_prices: list[float] = []
        self._ask_prices: list[float] = []
        self._bid_touched: list[float] | None = []
        self._ask_touched: list[float] | None = []

    # -- updates ---------------------------------------------------------------------------

    def apply(self, side: int, price: float, size: float) -> None:
        """Set the displayed size at ``price`` on ``side``; a size of 0 deletes the level.

        Parameters
        ----------
        side : int
            +1 (:attr:`Side.BUY`, bids) or -1 (:attr:`Side.SELL`, asks).
        price : float
            Level price, USD, positive.
        size : float
            New absolute size at the level, coins; 0 deletes it (deleting an absent level is a
            no-op, as feeds repeat deletions).

        Raises
        ------
        ValueError
            If ``side`` is not ±1, ``size`` is negative or NaN, or a new level's price is not
            positive.
        """
        if side == 1:
            sizes, touched = self._bid_sizes, self._bid_touched
        elif side == -1:
            sizes, touched = self._ask_sizes, self._ask_touched
        else:
            raise ValueError(f"OrderBook.apply: side must be +1 or -1, got {side!r}")
        if size > 0.0:
            if price not in sizes:
                if not price > 0.0:  # also rejects NaN, which would break the ordering
                    raise ValueError(f"OrderBook.apply: price must be positive, got {price!r}")
                if touched is not None:
                    touched.append(price)
                    if len(touched) > _MAX_TOUCHED:
                        self._forget_order(side)
            sizes[price] = size
        elif size == 0.0:
            if sizes.pop(price, None) is not None and touched is not None:
                touched.append(price)
                if len(touched) > _MAX_TOUCHED:
                    self._forget_order(side)
        else:
            raise ValueError(f"OrderBook.apply: size must be >= 0, got {size!r} at price {price!r}")

    def clear(self) -> None:
        """Empty both sides (before a snapshot rebuilds the book)."""
        self._bid_sizes.clear()
        self._ask_sizes.clear()
        self._forget_order(1)
        self._forget_order(-1)

    def _forget_order(self, side: int) -> None:
        if side == 1:
            self._bid_prices, self._bid_touched = [], None
        else:
            self._ask_prices, self._ask_touched = [], None

    # -- queries ---------------------------------------------------------------------------

    @staticmethod
    def _reconcile(prices: list[float], touched: list[float], sizes: dict[float, float]) -> None:
        """Make ``prices`` agree with ``sizes`` at every touched price (in any order, repeats ok)."""
        for price in touched:
            index = bisect_left(prices, price)
            listed = index < len(prices) and prices[index] == price
            if price in sizes:
                if not listed:
                    prices.insert(index, price)
            elif listed:
                del prices[index]
        touched.clear()

    def _sorted_bids(self) -> list[float]:
        if self._bid_touched is None:
            self._bid_prices, self._bid_touched = sorted(self._bid_sizes), []
        elif self._bid_touched:
            self._reconcile(self._bid_prices, self._bid_touched, self._bid_sizes)
        return self._bid_prices

    def _sorted_asks(self) -> list[float]:
        if self._ask_touched is None:
            self._ask_prices, self._ask_touched = sorted(self._ask_sizes), []
        elif self._ask_touched:
            self._reconcile(self._ask_prices, self._ask_touched, self._ask_sizes)
        return self._ask_prices

    def best_bid(self) -> float:
        """Highest bid price, USD; NaN when the bid side is empty."""
        prices = self._sorted_bids()
        return prices[-1] if prices else math.nan

    def best_ask(self) -> float:
        """Lowest ask price, USD; NaN when the ask side is empty."""
        prices = self._sorted_asks()
        return prices[0] if prices else math.nan

    def mid(self) -> float:
        """Mean of the best bid and best ask, USD; NaN unless both sides have a level."""
        return 0.5 * (self.best_bid() + self.best_ask())

    def size_at(self, side: int, price: float) -> float:
        """Displayed size at ``price`` on ``side``, coins; 0 where there is no level."""
        if side == 1:
            return self._bid_sizes.get(price, 0.0)
        if side == -1:
            return self._ask_sizes.get(price, 0.0)
        raise ValueError(f"OrderBook.size_at: side must be +1 or -1, got {side!r}")

    def level_count(self, side: int) -> int:
        """Number of price levels on ``side``."""
        if side == 1:
            return len(self._bid_sizes)
        if side == -1:
            return len(self._ask_sizes)
        raise ValueError(f"OrderBook.level_count: side must be +1 or -1, got {side!r}")

    def depth(self, side: int, levels: int | None = None) -> float:
        """Total displayed size (coins) on ``side`` over its best ``levels`` levels (all if None).

        Same meaning as :meth:`mmlab.types.L2Book.depth`.
        """
        prices, sizes = self._best_first(side, levels)
        return float(sum(sizes[p] for p in prices))

    def top_levels(self, side: int, levels: int | None = None) -> list[tuple[float, float]]:
        """``(price, size)`` pairs of ``side``, best first, at most ``levels`` of them."""
        prices, sizes = self._best_first(side, levels)
        return [(p, sizes[p]) for p in prices]

    def _best_first(self, side: int, levels: int | None) -> tuple[list[float], dict[float, float]]:
        if levels is not None and levels < 0:
            raise ValueError(f"OrderBook: levels must be >= 0, got {levels!r}")
        if side == 1:
            ascending = self._sorted_bids()
            # bids are stored ascending, so the best `levels` are the last ones, reversed
            best = ascending[::-1] if levels is None else ascending[max(len(ascending) - levels, 0):][::-1]
            return best, self._bid_sizes
        if side == -1:
            ascending = self._sorted_asks()
            return (ascending[:] if levels is None else ascending[:levels]), self._ask_sizes
        raise ValueError(f"OrderBook: side must be +1 or -1, got {side!r}")

    def snapshot(self, levels: int, ts_exch: int, ts_local: int) -> L2Book:
        """The top ``levels`` of each side as an immutable :class:`~mmlab.types.L2Book`.

        Parameters
        ----------
        levels : int
            Levels per side to keep (fewer when a side has fewer).
        ts_exch, ts_local : int
            Venue time and local receive time of the last update applied, ns.
        """
        if levels < 0:
            raise ValueError(f"OrderBook.snapshot: levels must be >= 0, got {levels!r}")
        bid_prices, bid_sizes = self._best_first(Side.BUY, levels)
        ask_prices, ask_sizes = self._best_first(Side.SELL, levels)
        return L2Book(
            ts_exch=int(ts_exch),
            ts_local=int(ts_local),
            bid_px=_frozen_array(bid_prices),
            bid_sz=_frozen_array([bid_sizes[p] for p in bid_prices]),
            ask_px=_frozen_array(ask_prices),
            ask_sz=_frozen_array([ask_sizes[p] for p in ask_prices]),
        )

    def __repr__(self) -> str:
        return (
            f"OrderBook(bids={len(self._bid_sizes)} levels, best {self.best_bid()!r}; "
            f"asks={len(self._ask_sizes)} levels, best {self.best_ask()!r})"
        )
