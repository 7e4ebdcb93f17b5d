"""hftbacktest npz reader and writer: round trips, flags checked bit by bit, and a Binance tape.

The expected events are written here by hand with the constants of hftbacktest's
``py-hftbacktest/hftbacktest/types.py`` typed in as literals, not taken from the module under test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmlab.config import InstrumentSpec
from mmlab.data.importers import ImportError_, import_file
from mmlab.data.importers.binance import read_ws_capture
from mmlab.data.importers.hftbacktest import read_npz, write_npz
from mmlab.data.tape import EventKind, Tape

DTYPE = np.dtype(
    [("ev", "<u8"), ("exch_ts", "<i8"), ("local_ts", "<i8"), ("px", "<f8"), ("qty", "<f8"), ("order_id", "<u8"), ("ival", "<i8"), ("fval", "<f8")]
)
EXCH, LOCAL, BUY, SELL = 1 << 31, 1 << 30, 1 << 29, 1 << 28
DEPTH, TRADE, CLEAR, SNAPSHOT = 1, 2, 3, 4
COLUMNS = ("ts_exch", "ts_local", "kind", "side", "price", "size", "trade_id")


def small_tape() -> Tape:
    rows = [
        # ts_exch, ts_local, kind, side, price, size, rate, trade_id
        (10, 11, EventKind.BOOK_CLEAR, 0, np.nan, 0.0, np.nan, 0),
        (10, 11, EventKind.BOOK, 1, 99.5, 2.0, np.nan, 0),
        (10, 11, EventKind.BOOK, -1, 100.5, 1.5, np.nan, 0),
        (20, 21, EventKind.BOOK, 1, 99.5, 0.0, np.nan, 0),
        (30, 31, EventKind.TRADE, -1, 99.5, 0.25, np.nan, 7),
        (40, 41, EventKind.FUNDING, 0, 100.0, 0.0, 1e-5, 0),
        (50, 51, EventKind.TRADE, 1, 100.5, 0.5, np.nan, 8),
    ]
    names = ("ts_exch", "ts_local", "kind", "side", "price", "size", "rate", "trade_id")
    columns = {name: np.array([row[i] for row in rows]) for i, name in enumerate(names)}
    return Tape.from_columns(columns, instrument=InstrumentSpec(coin="TEST", sz_decimals=2), venue="unit")


def assert_same_book_and_trades(a: Tape, b: Tape) -> None:
    keep_a = np.isin(a.kind, [EventKind.BOOK, EventKind.BOOK_CLEAR, EventKind.TRADE])
    keep_b = np.isin(b.kind, [EventKind.BOOK, EventKind.BOOK_CLEAR, EventKind.TRADE])
    for column in COLUMNS:
        assert np.array_equal(getattr(a, column)[keep_a], getattr(b, column)[keep_b], equal_nan=True), column


def test_written_events_have_hftbacktest_flags(tmp_path: Path) -> None:
    path, dropped = write_npz(small_tape(), tmp_path / "test.npz")
    assert dropped == 1  # the funding row: hftbacktest has no funding event
    events = np.load(path)["data"]
    assert events.dtype == DTYPE
    assert events["ev"].tolist() == [
        EXCH | LOCAL | CLEAR,
        EXCH | LOCAL | BUY | SNAPSHOT,
        EXCH | LOCAL | SELL | SNAPSHOT,
        EXCH | LOCAL | BUY | DEPTH,
        EXCH | LOCAL | SELL | TRADE,
        EXCH | LOCAL | BUY | TRADE,
    ]
    assert events["local_ts"].tolist() == [11, 11, 11, 21, 31, 51]
    assert events["qty"].tolist() == [0.0, 2.0, 1.5, 0.0, 0.25, 0.5]


def test_round_trip_of_book_and_trade_rows(tmp_path: Path) -> None:
    tape = small_tape()
    path, _ = write_npz(tape, tmp_path / "test.npz")
    result = import_file(path, "hftbacktest-npz")
    assert_same_book_and_trades(tape, result.tape)
    assert result.tape.instrument == tape.instrument and result.tape.venue == "unit"
    assert result.report.funding_rows == 0 and result.report.errors == ()


def test_reads_a_hand_written_hftbacktest_array(tmp_path: Path) -> None:
    events = np.zeros(6, dtype=DTYPE)
    events["ev"] = [EXCH | LOCAL | BUY | CLEAR, EXCH | LOCAL | SELL | CLEAR, EXCH | LOCAL | BUY | SNAPSHOT, EXCH | LOCAL | SELL | SNAPSHOT, EXCH | BUY | DEPTH, EXCH | LOCAL | SELL | TRADE]
    events["local_ts"] = [5, 5, 5, 5, 6, 7]
    events["exch_ts"] = [1, 1, 1, 1, 2, 3]
    events["px"] = [0.0, 0.0, 10.0, 11.0, 10.5, 10.0]
    events["qty"] = [0.0, 0.0, 1.0, 2.0, 3.0, 0.5]
    path = tmp_path / "ethusdt_20240808.npz"
    np.savez(path, data=events)
    result = read_npz(path)
    tape = result.tape
    # the two one-sided clears of one snapshot become one clear; the exchange-only event is skipped
    assert tape.kind.tolist() == [EventKind.BOOK_CLEAR, EventKind.BOOK, EventKind.BOOK, EventKind.TRADE]
    assert tape.side.tolist() == [0, 1, -1, -1]
    assert tape.instrument.coin == "ETHUSDT" and tape.instrument.sz_decimals == 1
    # 10.5 is the price with the most decimals: the tick is inferred as 0.1, and said so
    assert tape.instrument.price_tick == pytest.approx(0.1)
    assert any("inferred" in issue.problem for issue in result.report.issues)
    assert read_npz(path, price_tick="0.5").tape.instrument.price_tick == 0.5
    assert read_npz(path, venue="hyperliquid").tape.instrument.price_tick == 0.0
    assert any("exchange-only" in issue.problem for issue in result.report.issues)


def test_bad_files(tmp_path: Path) -> None:
    path = tmp_path / "x.npz"
    np.savez(path, other=np.zeros(3))
    with pytest.raises(ImportError_, match="field 'data' is missing"):
        read_npz(path)
    events = np.zeros(2, dtype=DTYPE)
    events["ev"] = [EXCH | LOCAL | BUY | DEPTH, EXCH | LOCAL | DEPTH]
    events["px"] = [10.0, 11.0]
    events["local_ts"] = [1, 2]
    np.savez(path, data=events)
    with pytest.raises(ImportError_, match=r"x.npz:2: field 'ev'"):
        read_npz(path)
    assert read_npz(path, strict=False).report.book_rows == 1


def test_a_binance_tape_round_trips(shared_data: Path, tmp_path: Path) -> None:
    tape = read_ws_capture(shared_data / "binance-futures-hftbacktest/cm/ethusd_perp_20240808.gz").tape
    path, dropped = write_npz(tape, tmp_path / "ethusd_perp.npz")
    assert dropped == 0
    again = read_npz(path)
    assert_same_book_and_trades(tape, again.tape)
    assert again.tape.instrument.price_tick == tape.instrument.price_tick > 0.0
    assert again.report.crossed_or_locked == 0
    assert again.report.trades == tape.count(EventKind.TRADE)
