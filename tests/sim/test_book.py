"""OrderBook: level updates, deletions, clears, best-first snapshots and crossed books."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmlab.data.book import OrderBook
from mmlab.types import Side


def book_from(bids: dict[float, float], asks: dict[float, float]) -> OrderBook:
    book = OrderBook()
    for price, size in bids.items():
        book.apply(Side.BUY, price, size)
    for price, size in asks.items():
        book.apply(Side.SELL, price, size)
    return book


def test_empty_book_has_nan_best_prices_and_empty_snapshot():
    book = OrderBook()
    assert math.isnan(book.best_bid()) and math.isnan(book.best_ask()) and math.isnan(book.mid())
    snapshot = book.snapshot(5, ts_exch=1, ts_local=2)
    assert snapshot.bid_px.size == 0 and snapshot.ask_px.size == 0
    assert not snapshot.has_both_sides and not snapshot.is_crossed


def test_apply_sets_absolute_size_and_zero_deletes():
    book = book_from({100.0: 1.0, 99.0: 2.0}, {101.0: 3.0})
    book.apply(Side.BUY, 100.0, 4.0)  # absolute size, not an increment
    assert book.size_at(Side.BUY, 100.0) == 4.0
    book.apply(Side.BUY, 100.0, 0.0)
    assert book.size_at(Side.BUY, 100.0) == 0.0
    assert book.best_bid() == 99.0
    assert book.level_count(Side.BUY) == 1
    # deleting a level that is not there is a no-op (feeds repeat deletions)
    book.apply(Side.SELL, 105.0, 0.0)
    assert book.level_count(Side.SELL) == 1 and book.best_ask() == 101.0


def test_sides_are_independent_at_the_same_price():
    book = book_from({100.0: 1.0}, {100.0: 2.0})
    assert book.size_at(Side.BUY, 100.0) == 1.0
    assert book.size_at(Side.SELL, 100.0) == 2.0


def test_clear_empties_both_sides_and_book_rebuilds():
    book = book_from({100.0: 1.0, 99.0: 2.0}, {101.0: 3.0, 102.0: 1.0})
    book.best_bid()  # build the sorted lists before clearing
    book.clear()
    assert book.level_count(Side.BUY) == 0 and book.level_count(Side.SELL) == 0
    assert math.isnan(book.best_bid()) and math.isnan(book.best_ask())
    book.apply(Side.BUY, 98.0, 1.0)
    book.apply(Side.SELL, 103.0, 1.0)
    assert (book.best_bid(), book.best_ask()) == (98.0, 103.0)


def test_snapshot_is_best_first_and_truncated():
    bids = {99.0 - k: 1.0 + k for k in range(30)}
    asks = {101.0 + k: 2.0 + k for k in range(30)}
    book = book_from(bids, asks)
    snapshot = book.snapshot(20, ts_exch=5, ts_local=7)
    assert (snapshot.ts_exch, snapshot.ts_local) == (5, 7)
    assert snapshot.bid_px.tolist() == [99.0 - k for k in range(20)]
    assert snapshot.bid_sz.tolist() == [1.0 + k for k in range(20)]
    assert snapshot.ask_px.tolist() == [101.0 + k for k in range(20)]
    assert snapshot.ask_sz.tolist() == [2.0 + k for k in range(20)]
    assert np.all(np.diff(snapshot.bid_px) < 0) and np.all(np.diff(snapshot.ask_px) > 0)
    assert not snapshot.bid_px.flags.writeable
    assert snapshot.mid == 100.0


def test_snapshot_with_fewer_levels_than_asked_and_zero_levels():
    book = book_from({99.0: 1.0, 98.0: 2.0}, {101.0: 3.0})
    snapshot = book.snapshot(10, ts_exch=0, ts_local=0)
    assert snapshot.bid_px.tolist() == [99.0, 98.0]
    assert snapshot.ask_px.tolist() == [101.0]
    empty = book.snapshot(0, ts_exch=0, ts_local=0)
    assert empty.bid_px.size == 0 and empty.ask_px.size == 0


def test_depth_and_top_levels_match_the_snapshot():
    book = book_from({99.0: 1.0, 98.0: 2.0, 97.0: 4.0}, {101.0: 3.0, 102.0: 5.0})
    assert book.depth(Side.BUY) == 7.0
    assert book.depth(Side.BUY, 2) == 3.0
    assert book.depth(Side.SELL, 1) == 3.0
    assert book.top_levels(Side.BUY, 2) == [(99.0, 1.0), (98.0, 2.0)]
    assert book.depth(Side.BUY, 2) == book.snapshot(2, 0, 0).depth(Side.BUY)


def test_crossed_book_is_reported_by_the_snapshot():
    book = book_from({100.0: 1.0}, {101.0: 1.0})
    assert not book.snapshot(5, 0, 0).is_crossed
    book.apply(Side.BUY, 101.0, 2.0)  # locked: bid == ask
    assert book.snapshot(5, 0, 0).is_crossed
    book.apply(Side.BUY, 101.0, 0.0)
    book.apply(Side.BUY, 102.0, 2.0)  # crossed: bid > ask
    snapshot = book.snapshot(5, 0, 0)
    assert snapshot.is_crossed and snapshot.best_bid == 102.0 and snapshot.best_ask == 101.0
    book.apply(Side.BUY, 102.0, 0.0)
    assert not book.snapshot(5, 0, 0).is_crossed


def test_invalid_updates_raise():
    book = OrderBook()
    with pytest.raises(ValueError, match="side"):
        book.apply(0, 100.0, 1.0)
    with pytest.raises(ValueError, match="size"):
        book.apply(Side.BUY, 100.0, -1.0)
    with pytest.raises(ValueError, match="size"):
        book.apply(Side.BUY, 100.0, math.nan)
    with pytest.raises(ValueError, match="price"):
        book.apply(Side.SELL, math.nan, 1.0)
    with pytest.raises(ValueError, match="price"):
        book.apply(Side.SELL, -1.0, 1.0)


@pytest.mark.parametrize("updates_between_reads", [1, 10, 200])
def test_incremental_order_matches_a_full_sort(updates_between_reads):
    # few updates between reads take the reconcile path, many take the re-sort path
    rng = np.random.default_rng(11)
    book = OrderBook()
    reference = {1: {}, -1: {}}
    for step in range(3_000):
        side = 1 if rng.random() < 0.5 else -1
        price = round(100.0 + side * -0.01 * int(rng.integers(1, 300)), 2)
        size = 0.0 if rng.random() < 0.4 else float(rng.integers(1, 50))
        book.apply(side, price, size)
        if size > 0:
            reference[side][price] = size
        else:
            reference[side].pop(price, None)
        if step % 997 == 0:
            book.clear()
            reference = {1: {}, -1: {}}
        if step % updates_between_reads == 0:
            snapshot = book.snapshot(20, 0, 0)
            best_bids = sorted(reference[1], reverse=True)[:20]
            best_asks = sorted(reference[-1])[:20]
            assert snapshot.bid_px.tolist() == best_bids
            assert snapshot.ask_px.tolist() == best_asks
            assert snapshot.bid_sz.tolist() == [reference[1][p] for p in best_bids]
            assert snapshot.ask_sz.tolist() == [reference[-1][p] for p in best_asks]
