"""Binance futures websocket-capture importer against the hftbacktest sample captures and broken files.

Every expected value is computed here from the raw gzip lines by plain json loops (with dicts for
the book), never with the importer's helpers. The README of
shared_data/binance-futures-hftbacktest gives the same counts, measured independently.
"""

from __future__ import annotations

import gzip
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from mmlab.data.book import OrderBook
from mmlab.data.importers import ImportError_, ImportResult, import_file
from mmlab.data.importers.binance import read_ws_capture
from mmlab.data.tape import EventKind

FOLDER = "binance-futures-hftbacktest"
BTCUSDT = "usdm/btcusdt_20240808.gz"
#: name -> files read as one stream (a _20240809 file continues its _20240808 file)
SAMPLES = {
    "ETHUSDT": ["usdm/ethusdt_20240808.gz"],
    "BTCUSD_PERP": ["cm/btcusd_perp_20240808.gz", "cm/btcusd_perp_20240809.gz"],
    "ETHUSD_PERP": ["cm/ethusd_perp_20240808.gz", "cm/ethusd_perp_20240809.gz"],
}


# -- an independent reading of the raw captures ----------------------------------------------


@dataclass
class RawCapture:
    """What a plain loop over the lines finds; the book is two dicts price -> size."""

    trades_buy: int = 0
    trades_sell: int = 0
    trade_ids: list[int] = field(default_factory=list)
    diffs: int = 0
    diffs_applied: int = 0
    levels_applied: int = 0
    snapshot_levels: int = 0
    snapshots: int = 0
    ts_first: int | None = None
    ts_last: int | None = None
    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    #: bookTickers whose u is the final id of an applied diff: (ticker b, B, a, A, rebuilt b, B, a, A)
    comparable: list[tuple[float, ...]] = field(default_factory=list)
    tickers: int = 0
    crossed_after_diff: int = 0


def read_raw(files: list[Path]) -> RawCapture:
    raw = RawCapture()
    messages = []
    for file in files:
        with gzip.open(file, "rt") as stream:
            for line in stream:
                stamp, payload = line.split(" ", 1)
                messages.append((int(stamp), json.loads(payload)))
    tickers: dict[int, list[tuple[float, float, float, float]]] = {}
    for _, message in messages:
        if message.get("stream", "").endswith("@bookTicker"):
            data = message["data"]
            tickers.setdefault(data["u"], []).append((float(data["b"]), float(data["B"]), float(data["a"]), float(data["A"])))
    raw.tickers = sum(len(seen) for seen in tickers.values())
    last_update_id = None
    pending: list[dict] = []
    previous_u = None
    row_times: list[int] = []

    def apply(diff: dict, ts: int) -> None:
        nonlocal previous_u
        if previous_u is None:
            if diff["u"] < last_update_id:
                return
            assert diff["U"] <= last_update_id <= diff["u"]
        else:
            assert diff["pu"] == previous_u
        previous_u = diff["u"]
        for side, key in ((raw.bids, "b"), (raw.asks, "a")):
            for price, size in diff[key]:
                if float(size) == 0:
                    side.pop(float(price), None)
                else:
                    side[float(price)] = float(size)
        raw.diffs_applied += 1
        raw.levels_applied += len(diff["b"]) + len(diff["a"])
        row_times.append(ts)
        if diff["u"] in tickers:  # finding the best of a dict is slow: only where a ticker shows it
            best_bid, best_ask = max(raw.bids), min(raw.asks)
            raw.crossed_after_diff += best_bid >= best_ask
            rebuilt = (best_bid, raw.bids[best_bid], best_ask, raw.asks[best_ask])
            raw.comparable += [ticker + rebuilt for ticker in tickers[diff["u"]]]

    for ts, message in messages:
        if "stream" not in message:
            raw.snapshots += 1
            row_times.append(ts)
            last_update_id = message["lastUpdateId"]
            raw.bids = {float(p): float(s) for p, s in message["bids"]}
            raw.asks = {float(p): float(s) for p, s in message["asks"]}
            raw.snapshot_levels = len(message["bids"]) + len(message["asks"])
            for diff in pending:  # received while the REST request was in flight
                apply(diff, ts)
            pending = []
            continue
        data = message["data"]
        if message["stream"].endswith("@trade"):
            row_times.append(ts)
            raw.trade_ids.append(data["t"])
            if data["m"]:
                raw.trades_sell += 1
            else:
                raw.trades_buy += 1
        elif "@depth" in message["stream"]:
            raw.diffs += 1
            if last_update_id is None:
                pending.append(data)
            else:
                apply(data, ts)
    raw.ts_first, raw.ts_last = min(row_times), max(row_times)
    return raw


def final_book_of(result: ImportResult) -> tuple[dict[float, float], dict[float, float]]:
    book = OrderBook()
    tape = result.tape
    for kind, side, price, size in zip(tape.kind.tolist(), tape.side.tolist(), tape.price.tolist(), tape.size.tolist()):
        if kind == EventKind.BOOK_CLEAR:
            book.clear()
        elif kind == EventKind.BOOK:
            book.apply(side, price, size)
    return dict(book.top_levels(1)), dict(book.top_levels(-1))


def assert_matches_raw(result: ImportResult, raw: RawCapture) -> None:
    tape, report = result.tape, result.report
    trades = tape.kind == EventKind.TRADE
    assert report.trades == raw.trades_buy + raw.trades_sell
    assert int(np.count_nonzero(tape.side[trades] == 1)) == raw.trades_buy
    assert int(np.count_nonzero(tape.side[trades] == -1)) == raw.trades_sell
    assert sorted(tape.trade_id[trades].tolist()) == sorted(raw.trade_ids)
    assert report.snapshots == raw.snapshots == 1
    assert tape.extra["diffs_seen"] == raw.diffs
    assert tape.extra["diffs_applied"] == raw.diffs_applied
    assert tape.extra["book_tickers"] == raw.tickers
    assert report.ts_local_first == raw.ts_first
    assert report.book_rows == raw.snapshot_levels + raw.levels_applied
    assert report.ts_local_last == raw.ts_last
    assert report.crossed_or_locked == 0 and raw.crossed_after_diff == 0
    assert report.errors == ()
    # the tape replayed from start to end ends in the independently rebuilt book, every level
    bids, asks = final_book_of(result)
    assert bids == raw.bids and asks == raw.asks
    # every comparable bookTicker equals the independent book, and the importer compared as many
    assert all(point[:4] == point[4:] for point in raw.comparable)
    assert tape.extra["bbo_compared"] == len(raw.comparable)
    assert tape.extra["bbo_matched"] == len(raw.comparable)
    assert tape.extra["bbo_not_comparable"] == raw.tickers - len(raw.comparable)


# -- the BTCUSDT capture, imported once --------------------------------------------------------


@pytest.fixture(scope="module")
def btcusdt(shared_data: Path) -> tuple[ImportResult, float, RawCapture]:
    started = time.perf_counter()
    result = import_file(shared_data / FOLDER / BTCUSDT, "binance-ws")
    elapsed_s = time.perf_counter() - started
    return result, elapsed_s, read_raw([shared_data / FOLDER / BTCUSDT])


def test_btcusdt_counts_equal_the_raw_file(btcusdt: tuple[ImportResult, float, RawCapture]) -> None:
    result, _, raw = btcusdt
    assert_matches_raw(result, raw)
    # the README's measured figures (shared_data/binance-futures-hftbacktest/README.md)
    assert (raw.diffs, raw.trades_buy, raw.trades_sell, raw.tickers) == (6_551, 9_616, 11_697, 66_089)
    assert result.tape.instrument.coin == "BTCUSDT"
    assert result.tape.instrument.sz_decimals == 3
    assert result.tape.venue == "binance-futures"


def test_btcusdt_book_ticker_check_has_629_equal_points(btcusdt: tuple[ImportResult, float, RawCapture]) -> None:
    result, _, raw = btcusdt
    assert len(raw.comparable) == 629
    assert result.tape.extra["bbo_compared"] == 629
    assert result.tape.extra["bbo_matched"] == 629
    checks = dict(result.report.checks)
    assert any("629 of 629 equal" in text for text in checks.values())
    assert any("65,460 of 66,089 bookTickers" in text for text in result.report.unchecked)
    assert EventKind.BOOK_CLEAR in set(result.tape.kind.tolist())
    # bookTickers are a check only, never tape rows: book rows are the snapshot plus the diffs' levels
    assert result.report.book_rows == 2_000 + raw.levels_applied


def test_btcusdt_imports_fast_and_reports_the_clock_offset(btcusdt: tuple[ImportResult, float, RawCapture]) -> None:
    result, elapsed_s, _ = btcusdt
    assert elapsed_s < 10.0
    # the README measures E - local at 1,268-1,270 ms on median
    assert 1_200.0 < result.tape.extra["median_exch_minus_local_ms"] < 1_300.0
    trades = result.tape.kind == EventKind.TRADE
    assert np.all(result.tape.ts_exch[trades] > result.tape.ts_local[trades])


@pytest.fixture(scope="module")
def samples(shared_data: Path) -> dict[str, tuple[ImportResult, RawCapture]]:
    """Every other capture, imported once; the days of a COIN-M perpetual given out of order."""
    out = {}
    for name, relative in SAMPLES.items():
        files = [shared_data / FOLDER / r for r in relative]
        out[name] = (read_ws_capture(files[::-1]), read_raw(files))
    return out


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_other_captures_equal_the_raw_files(samples: dict[str, tuple[ImportResult, RawCapture]], name: str) -> None:
    result, raw = samples[name]
    assert_matches_raw(result, raw)
    assert result.tape.instrument.coin == name


def test_folder_and_symbol_chain_the_days(shared_data: Path, samples: dict[str, tuple[ImportResult, RawCapture]]) -> None:
    folder = shared_data / FOLDER / "cm"
    by_folder = import_file(folder, "binance-ws", symbol="ethusd_perp")
    by_list, _ = samples["ETHUSD_PERP"]
    assert by_folder.tape.extra["diffs_applied"] == by_list.tape.extra["diffs_applied"]
    assert np.array_equal(by_folder.tape.price, by_list.tape.price, equal_nan=True)
    assert np.array_equal(by_folder.tape.ts_local, by_list.tape.ts_local)
    # README: the two days of ETHUSD_PERP hold 3,595 trades and 22,909 + 16,246 diffs
    assert by_folder.report.trades == 3_595
    assert by_folder.tape.extra["diffs_seen"] == 22_909 + 16_246
    # the first diff of the second day continues the first day's chain: nothing is left unapplied
    assert by_folder.tape.extra["diffs_not_applied"] == 0
    with pytest.raises(ImportError_, match="several symbols"):
        import_file(folder, "binance-ws")


def test_a_continuation_day_alone_has_no_snapshot(shared_data: Path) -> None:
    file = shared_data / FOLDER / "cm/btcusd_perp_20240809.gz"
    with pytest.raises(ImportError_, match="lastUpdateId"):
        read_ws_capture(file)
    result = read_ws_capture(file, strict=False)
    assert result.report.book_rows == 0
    assert result.report.trades == 2_949
    assert [issue.field for issue in result.report.errors] == ["lastUpdateId"]


# -- broken files -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def head_lines(shared_data: Path) -> list[str]:
    """The first 400 lines of the BTCUSDT capture (the REST snapshot is line 55)."""
    with gzip.open(shared_data / FOLDER / BTCUSDT, "rt") as stream:
        return [next(stream) for _ in range(400)]


def write_capture(folder: Path, lines: list[str], name: str = "btcusdt_20240808.gz") -> Path:
    path = folder / name
    with gzip.open(path, "wt") as stream:
        stream.writelines(lines)
    return path


def diff_line_numbers(lines: list[str]) -> list[int]:
    """1-based numbers of the depth lines after the snapshot line."""
    snapshot = next(i for i, line in enumerate(lines) if '"stream"' not in line)
    return [i + 1 for i, line in enumerate(lines) if i > snapshot and "@depth" in line]


def test_head_of_the_file_imports_cleanly(tmp_path: Path, head_lines: list[str]) -> None:
    path = write_capture(tmp_path, head_lines)
    result = read_ws_capture(path)
    raw = read_raw([path])
    assert_matches_raw(result, raw)


def test_corrupt_json_line(tmp_path: Path, head_lines: list[str]) -> None:
    lines = list(head_lines)
    trade_line = next(i for i, line in enumerate(lines) if i > 100 and "@trade" in line)
    lines[trade_line] = lines[trade_line][:60] + "\n"
    path = write_capture(tmp_path, lines)
    with pytest.raises(ImportError_) as raised:
        read_ws_capture(path)
    assert f"{path}:{trade_line + 1}:" in str(raised.value) and "'json'" in str(raised.value)
    result = read_ws_capture(path, strict=False)
    raw = read_raw([write_capture(tmp_path, head_lines, "intact_20240808.gz")])
    assert result.report.trades == raw.trades_buy + raw.trades_sell - 1
    assert [(issue.line, issue.field) for issue in result.report.errors] == [(trade_line + 1, "json")]
    assert result.tape.extra["diffs_applied"] == raw.diffs_applied


def test_broken_pu_chain(tmp_path: Path, head_lines: list[str]) -> None:
    lines = list(head_lines)
    depth_lines = diff_line_numbers(lines)
    broken = depth_lines[5]
    stamp, payload = lines[broken - 1].split(" ", 1)
    message = json.loads(payload)
    message["data"]["pu"] -= 1
    lines[broken - 1] = f"{stamp} {json.dumps(message)}\n"
    path = write_capture(tmp_path, lines)
    with pytest.raises(ImportError_) as raised:
        read_ws_capture(path)
    assert f"{path}:{broken}:" in str(raised.value) and "'pu'" in str(raised.value)
    result = read_ws_capture(path, strict=False)
    assert [(issue.line, issue.field) for issue in result.report.errors] == [(broken, "pu")]
    later = sum(1 for number in depth_lines if number >= broken)
    assert result.tape.extra["diffs_not_applied"] == later
    assert any(issue.line == broken and "stops being updated" in issue.problem for issue in result.report.issues)
    # trades after the break are all still in the tape
    raw = read_raw([write_capture(tmp_path, head_lines, "intact_20240808.gz")])
    assert result.report.trades == raw.trades_buy + raw.trades_sell


def test_no_snapshot_line(tmp_path: Path, head_lines: list[str]) -> None:
    lines = [line for line in head_lines if '"stream"' in line]
    path = write_capture(tmp_path, lines)
    with pytest.raises(ImportError_) as raised:
        read_ws_capture(path)
    assert str(path) in str(raised.value) and "'lastUpdateId'" in str(raised.value)
    result = read_ws_capture(path, strict=False)
    assert result.report.book_rows == 0 and result.report.snapshots == 0
    assert result.report.trades == sum(1 for line in lines if "@trade" in line)
    assert [issue.field for issue in result.report.errors] == ["lastUpdateId"]


def test_missing_field_and_unknown_option(tmp_path: Path, head_lines: list[str]) -> None:
    lines = list(head_lines)
    trade_line = next(i for i, line in enumerate(lines) if "@trade" in line)
    lines[trade_line] = lines[trade_line].replace('"q":', '"quantity":')
    path = write_capture(tmp_path, lines)
    with pytest.raises(ImportError_, match=rf"{trade_line + 1}: field 'q' is missing"):
        read_ws_capture(path)
    with pytest.raises(ImportError_, match="unknown option 'coin'"):
        read_ws_capture(path, coin="BTC")
    result = read_ws_capture(path, strict=False, sz_decimals="2")
    assert result.tape.instrument.sz_decimals == 2
