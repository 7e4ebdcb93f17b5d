"""Tardis CSV importer against the nautilus_trader samples in shared_data and broken files.

Expected values come from plain csv loops over the raw files in this module; the README of
shared_data/tardis-binance-futures-nautilus gives the same counts.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from mmlab.data.book import OrderBook
from mmlab.data.importers import ImportError_, ImportResult, import_file
from mmlab.data.importers.tardis import read_tardis_csv
from mmlab.data.tape import EventKind

FOLDER = "tardis-binance-futures-nautilus"
FILES = [
    "trades.csv",
    "quotes.csv",
    "fixtures/binance-futures_book_snapshot_25_BTCUSDT.csv",
    "fixtures/binance-futures_book_snapshot_5_BTCUSDT.csv",
    "fixtures/bitmex_trades_XBTUSD.csv",
    "fixtures/deribit_incremental_book_L2_BTC-PERPETUAL.csv",
]


def raw_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def books_after_groups(result: ImportResult, levels: int) -> list[tuple[list[tuple[float, float]], list[tuple[float, float]]]]:
    """Replay the tape; (bids, asks) top levels after each group of rows sharing ts_local."""
    tape = result.tape
    book = OrderBook()
    out = []
    n = len(tape)
    for i in range(n):
        if tape.kind[i] == EventKind.BOOK_CLEAR:
            book.clear()
        elif tape.kind[i] == EventKind.BOOK:
            book.apply(int(tape.side[i]), float(tape.price[i]), float(tape.size[i]))
        if i + 1 == n or tape.ts_local[i + 1] != tape.ts_local[i]:
            out.append((book.top_levels(1, levels), book.top_levels(-1, levels)))
    return out


@pytest.mark.parametrize("relative", FILES)
def test_every_sample_imports_and_times_are_exact(shared_data: Path, relative: str) -> None:
    path = shared_data / FOLDER / relative
    result = import_file(path, "tardis-csv")
    rows = raw_rows(path)
    assert result.report.errors == ()
    assert result.tape.venue == rows[0]["exchange"]
    assert result.tape.instrument.coin == rows[0]["symbol"]
    local_us = [int(row["local_timestamp"]) for row in rows]
    assert result.report.ts_local_first == min(local_us) * 1_000
    assert result.report.ts_local_last == max(local_us) * 1_000
    # every exchange time is a raw µs value times 1000, exactly
    assert set(result.tape.ts_exch.tolist()) == {int(row["timestamp"]) * 1_000 for row in rows}
    assert result.report.crossed_or_locked == 0


def test_trades_equal_the_raw_file(shared_data: Path) -> None:
    rows = raw_rows(shared_data / FOLDER / "trades.csv")
    result = read_tardis_csv(shared_data / FOLDER / "trades.csv")
    tape = result.tape
    buys = sum(row["side"] == "buy" for row in rows)
    assert (result.report.trades, buys, len(rows) - buys) == (9_999, 5_267, 4_732)  # README figures
    assert int(np.count_nonzero(tape.side == 1)) == buys
    assert tape.trade_id.tolist() == [int(row["id"]) for row in rows]
    assert tape.price.tolist() == [float(row["price"]) for row in rows]
    assert tape.size.tolist() == [float(row["amount"]) for row in rows]
    assert tape.instrument.sz_decimals == 3


def test_bitmex_uuid_trade_ids_become_zero(shared_data: Path) -> None:
    result = read_tardis_csv(shared_data / FOLDER / "fixtures/bitmex_trades_XBTUSD.csv")
    assert result.report.trades == 10
    assert not result.tape.trade_id.any()
    assert any("not integers" in text for text in result.report.unchecked)


def test_quotes_rebuild_each_best_bid_and_ask(shared_data: Path) -> None:
    rows = raw_rows(shared_data / FOLDER / "quotes.csv")
    result = read_tardis_csv(shared_data / FOLDER / "quotes.csv")
    assert result.report.snapshots == len(rows) == 9_999
    books = books_after_groups(result, 1)
    # rows sharing a local time collapse into one group: the last row of each group is the book
    last_of_group = {}
    for row in rows:
        last_of_group[int(row["local_timestamp"])] = row
    expected = [
        ([(float(r["bid_price"]), float(r["bid_amount"]))], [(float(r["ask_price"]), float(r["ask_amount"]))])
        for _, r in sorted(last_of_group.items())
    ]
    assert books == expected


@pytest.mark.parametrize("levels", [5, 25])
def test_book_snapshot_rows_equal_the_rebuilt_levels(shared_data: Path, levels: int) -> None:
    path = shared_data / FOLDER / f"fixtures/binance-futures_book_snapshot_{levels}_BTCUSDT.csv"
    rows = raw_rows(path)
    result = read_tardis_csv(path)
    assert result.tape.extra["data_type"] == f"book_snapshot_{levels}"
    assert result.report.snapshots == 10 and result.report.book_rows == 10 * 2 * levels
    books = books_after_groups(result, levels)
    assert len(books) == len(rows)
    for (bids, asks), row in zip(books, rows):
        assert bids == [(float(row[f"bids[{i}].price"]), float(row[f"bids[{i}].amount"])) for i in range(levels)]
        assert asks == [(float(row[f"asks[{i}].price"]), float(row[f"asks[{i}].amount"])) for i in range(levels)]


def test_incremental_snapshot_rows_form_one_snapshot(shared_data: Path) -> None:
    path = shared_data / FOLDER / "fixtures/deribit_incremental_book_L2_BTC-PERPETUAL.csv"
    rows = raw_rows(path)
    result = read_tardis_csv(path)
    assert all(row["is_snapshot"] == "true" for row in rows)
    assert result.report.snapshots == 1 and result.report.book_rows == len(rows) == 15
    (bids, asks), = books_after_groups(result, 100)
    expected_bids = sorted(((float(r["price"]), float(r["amount"])) for r in rows if r["side"] == "bid"), reverse=True)
    expected_asks = sorted((float(r["price"]), float(r["amount"])) for r in rows if r["side"] == "ask")
    assert (bids, asks) == (expected_bids, expected_asks)


def test_incremental_updates_after_a_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "book.csv"
    path.write_text(
        "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"
        "deribit,X,1000,1001,true,bid,99,1\n"
        "deribit,X,1000,1002,true,ask,101,2\n"
        "deribit,X,2000,2001,false,bid,99,0\n"
        "deribit,X,2000,2001,false,bid,98,3\n"
        "deribit,X,3000,3001,true,bid,97,4\n"
        "deribit,X,3000,3001,true,ask,100,5\n"
    )
    result = read_tardis_csv(path)
    assert result.report.snapshots == 2
    books = books_after_groups(result, 10)
    assert books == [([(99.0, 1.0)], [(101.0, 2.0)]), ([(98.0, 3.0)], [(101.0, 2.0)]), ([(97.0, 4.0)], [(100.0, 5.0)])]


def test_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "trades.csv"
    path.write_text(
        "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
        "binance-futures,BTCUSDT,1000,1001,1,buy,9682,0.1\n"
        "binance-futures,BTCUSDT,2000,2001,2,sell,abc,0.1\n"
        "binance-futures,BTCUSDT,3000,3001,3,buy\n"
        "binance-futures,BTCUSDT,4000,4001,4,sell,9681,0.2\n"
    )
    with pytest.raises(ImportError_, match=rf"{path}:3: field 'price' is not a number"):
        read_tardis_csv(path)
    result = read_tardis_csv(path, strict=False)
    assert result.report.trades == 2
    assert [(issue.line, issue.field) for issue in result.report.errors] == [(3, "price"), (4, None)]
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(ImportError_, match="'exchange' is missing from the header"):
        read_tardis_csv(other)
    with pytest.raises(ImportError_, match="unknown option"):
        read_tardis_csv(path, coin="X")


@pytest.mark.parametrize("relative", FILES)
def test_price_tick_is_inferred_from_the_decimals_written(shared_data: Path, relative: str) -> None:
    path = shared_data / FOLDER / relative
    price_columns = [c for c in raw_rows(path)[0] if c == "price" or c.endswith("price")]
    decimals = max(
        len(row[c].partition(".")[2].rstrip("0")) for row in raw_rows(path) for c in price_columns if row[c]
    )
    result = import_file(path, "tardis-csv")
    assert result.tape.instrument.price_tick == pytest.approx(10.0**-decimals, rel=1e-12)
    assert any("inferred" in issue.problem and issue.field == "price" for issue in result.report.issues)
    # every price of the tape sits on the inferred grid
    prices = result.tape.price[result.tape.kind != EventKind.BOOK_CLEAR]
    assert result.tape.instrument.is_valid_price(float(prices[0]))
    assert np.allclose(np.round(prices / result.tape.instrument.price_tick) * result.tape.instrument.price_tick, prices, rtol=0, atol=1e-9)


def test_price_tick_option_overrides_and_is_checked(shared_data: Path) -> None:
    path = shared_data / FOLDER / "trades.csv"
    assert import_file(path, "tardis-csv", price_tick="0.5").tape.instrument.price_tick == 0.5
    with pytest.raises(ImportError_, match="option 'price_tick' must be positive"):
        import_file(path, "tardis-csv", price_tick="-1")
    with pytest.raises(ImportError_, match="option 'price_tick' must be a number"):
        import_file(path, "tardis-csv", price_tick="tick")


def test_a_hyperliquid_exchange_keeps_the_significant_figure_rule(tmp_path: Path) -> None:
    path = tmp_path / "hyperliquid_trades.csv"
    path.write_text(
        "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
        "hyperliquid,BTC,1700000000000000,1700000000100000,1,buy,97000.0,0.01\n"
    )
    instrument = import_file(path, "tardis-csv").tape.instrument
    assert instrument.price_tick == 0.0
    assert instrument.round_bid(97000.7) == 97000.0  # 5 significant figures: a 1 USD tick here
