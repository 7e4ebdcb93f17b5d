"""Hyperliquid importers against the real samples in shared_data, and against broken files.

Every expected value is computed here from the raw file with plain json/csv loops, never by
calling the importer's own helpers.
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import lz4.frame
import numpy as np
import pytest

from mmlab.cli import main
from mmlab.data.book import OrderBook
from mmlab.data.importers import ImportError_, ImportResult, import_file
from mmlab.data.tape import EventKind, Tape, read_tape

WS_SAMPLE = "hyperliquid-api-samples/hftbacktest-ws-recording/btcusd_20250126.gz"
S3_SAMPLE = "hyperliquid-s3-l2book/market_data/20240101/12/l2Book/BTC.lz4"
CSV_FOLDER = "hyperliquid-ws-collector-csv/HL_data"
CSV_COINS = ("BTC", "ETH", "SOL", "WLFI")


# -- independent readers of the raw files ---------------------------------------------------


def books_after_snapshots(tape: Tape) -> list[tuple[list[tuple[float, float]], list[tuple[float, float]]]]:
    """Replay the tape; the (bids, asks) of the book after each update group holding a clear."""
    book = OrderBook()
    books = []
    cleared = False
    n = len(tape)
    for i in range(n):
        kind = int(tape.kind[i])
        if kind == EventKind.BOOK_CLEAR:
            book.clear()
            cleared = True
        elif kind == EventKind.BOOK:
            book.apply(int(tape.side[i]), float(tape.price[i]), float(tape.size[i]))
        if cleared and (i + 1 == n or tape.ts_local[i + 1] != tape.ts_local[i]):
            books.append((book.top_levels(1), book.top_levels(-1)))
            cleared = False
    return books


def raw_levels(levels: list[list[dict]]) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    return [(float(x["px"]), float(x["sz"])) for x in levels[0]], [(float(x["px"]), float(x["sz"])) for x in levels[1]]


def seconds_to_ns(text: str) -> int:
    whole, _, fraction = text.partition(".")
    return int(whole) * 10**9 + int(fraction.ljust(9, "0")[:9])


def last_of_each_local_time(stamps: list[int], books: list) -> list:
    """Snapshots received at the same local time are one update: only the last one is seen."""
    return [book for k, book in enumerate(books) if k + 1 == len(books) or stamps[k + 1] != stamps[k]]


def assert_snapshots_equal(result: ImportResult, expected_books: list) -> None:
    books = books_after_snapshots(result.tape)
    assert len(books) == len(expected_books)
    for k in (0, len(books) // 2, len(books) - 1):
        assert books[k] == expected_books[k], f"snapshot {k}"


def crossed_count(expected_books: list) -> int:
    return sum(1 for bids, asks in expected_books if bids and asks and bids[0][0] >= asks[0][0])


# -- websocket recording -------------------------------------------------------------------


def test_ws_sample_matches_an_independent_read(shared_data: Path) -> None:
    path = shared_data / WS_SAMPLE
    books, trade_rows, seen, duplicates = [], [], set(), 0
    first_row = last_row = None
    with gzip.open(path, "rt") as stream:
        for line in stream:
            ts_text, _, payload = line.partition(" ")
            ts_local, message = int(ts_text), json.loads(payload)
            if message["channel"] == "l2Book":
                books.append(raw_levels(message["data"]["levels"]))
                row = (ts_local, message["data"]["time"] * 1_000_000)
            else:
                assert message["channel"] == "trades"
                row = None
                for trade in message["data"]:
                    if trade["tid"] in seen:
                        duplicates += 1
                        continue
                    seen.add(trade["tid"])
                    trade_rows.append(trade)
                    row = (ts_local, trade["time"] * 1_000_000)
            first_row = first_row or row
            last_row = row or last_row

    result = import_file(path, "hyperliquid-ws")
    report, tape = result.report, result.tape
    assert (report.snapshots, report.trades) == (len(books), len(trade_rows)) == (46, 64)
    assert tape.extra["duplicate_trades_dropped"] == duplicates
    assert ("duplicate trades dropped", str(duplicates)) in report.checks
    assert (int(tape.ts_local[0]), int(tape.ts_exch[0])) == first_row
    assert (int(tape.ts_local[-1]), int(tape.ts_exch[-1])) == last_row
    assert report.crossed_or_locked == crossed_count(books)
    assert_snapshots_equal(result, books)
    trades = tape.kind == EventKind.TRADE
    assert tape.side[trades].tolist() == [1 if t["side"] == "B" else -1 for t in trade_rows]
    assert tape.trade_id[trades].tolist() == [t["tid"] for t in trade_rows]
    assert tape.instrument.coin == "BTC" and tape.instrument.sz_decimals == 5
    assert any("funding" in text for text in report.unchecked)
    assert report.errors == ()


def _ws_line(ts_local: int, message: dict) -> str:
    return f"{ts_local} {json.dumps(message)}\n"


def _book(coin: str, time_ms: int, bid_px: str, ask_px: str) -> dict:
    levels = [[{"px": bid_px, "sz": "1.5", "n": 1}], [{"px": ask_px, "sz": "0.25", "n": 2}]]
    return {"channel": "l2Book", "data": {"coin": coin, "time": time_ms, "levels": levels}}


def _trades(coin: str, time_ms: int, *tids: int) -> dict:
    return {"channel": "trades", "data": [{"coin": coin, "px": "100.5", "side": "A", "sz": "0.125", "tid": t, "time": time_ms} for t in tids]}


def _good_lines() -> list[str]:
    t0 = 1_700_000_000_000_000_000
    return [
        _ws_line(t0, {"channel": "subscriptionResponse", "data": {"method": "subscribe"}}),
        _ws_line(t0 + 1_000_000, _book("ETH", 1_700_000_000_000, "100.0", "101.0")),
        _ws_line(t0 + 2_000_000, _trades("ETH", 1_699_999_999_000, 11, 12)),
        _ws_line(t0 + 3_000_000, {"channel": "activeAssetCtx", "data": {"coin": "ETH", "ctx": {"funding": "0.0000125", "openInterest": "1000.5", "markPx": "100.4", "oraclePx": "100.3", "midPx": "100.5"}}}),
        _ws_line(t0 + 4_000_000, _trades("ETH", 1_700_000_000_010, 12, 13)),
        _ws_line(t0 + 5_000_000, _book("ETH", 1_700_000_000_020, "100.5", "101.0")),
    ]


def test_ws_small_recording_rows_and_asset_ctx(tmp_path: Path) -> None:
    path = tmp_path / "small.jsonl"
    path.write_text("".join(_good_lines()))
    result = import_file(path, "hyperliquid-ws")
    tape = result.tape
    assert result.report.snapshots == 2 and result.report.trades == 3
    assert tape.extra["duplicate_trades_dropped"] == 1
    ctx = np.flatnonzero(tape.kind == EventKind.ASSET_CTX)
    assert ctx.size == 1
    row = int(ctx[0])
    assert tape.ts_exch[row] == tape.ts_local[row] == 1_700_000_000_003_000_000
    assert (tape.price[row], tape.size[row], tape.rate[row]) == (100.4, 1000.5, 0.0000125)
    assert tape.instrument.sz_decimals == 3  # "0.125" has the most decimals


def test_ws_several_coins_need_the_coin_option(tmp_path: Path) -> None:
    path = tmp_path / "two.jsonl"
    path.write_text("".join(_good_lines()) + _ws_line(1_700_000_001_000_000_000, _book("BTC", 1_700_000_001_000, "50000.0", "50001.0")))
    with pytest.raises(ImportError_, match="several coins"):
        import_file(path, "hyperliquid-ws")
    assert import_file(path, "hyperliquid-ws", coin="BTC").report.snapshots == 1
    assert import_file(path, "hyperliquid-ws", coin="ETH", sz_decimals="4").tape.instrument.sz_decimals == 4


@pytest.mark.parametrize(
    ("bad_line", "field"),
    [
        ("1700000000002500000 {\"channel\": \"l2Book\", \"data\": \n", "json"),
        (_ws_line(1_700_000_000_002_500_000, _book("ETH", 1_700_000_000_001, "abc", "101.0")), "px"),
        ("not-a-time " + json.dumps(_book("ETH", 1_700_000_000_001, "100.0", "101.0")) + "\n", "ts_local"),
        (_ws_line(1_700_000_000_002_500_000, {"channel": "l2Book", "data": {"coin": "ETH", "levels": [[], []]}}), "time"),
    ],
)
def test_ws_corrupt_line_strict_raises_lenient_reports(tmp_path: Path, bad_line: str, field: str) -> None:
    lines = _good_lines()
    lines.insert(2, bad_line)  # line 3 of the file
    path = tmp_path / "corrupt.jsonl"
    path.write_text("".join(lines))
    with pytest.raises(ImportError_) as caught:
        import_file(path, "hyperliquid-ws")
    message = str(caught.value)
    assert "corrupt.jsonl:3" in message and field in message
    result = import_file(path, "hyperliquid-ws", strict=False)
    assert result.report.snapshots == 2 and result.report.trades == 3
    (issue,) = result.report.errors
    assert issue.line == 3 and field in (issue.field or "") and issue.file.endswith("corrupt.jsonl")


def test_ws_truncated_gzip_keeps_the_complete_lines(tmp_path: Path) -> None:
    t0 = 1_700_000_000_000_000_000
    lines = [_ws_line(t0 + i * 500_000_000, _book("ETH", 1_700_000_000_000 + i * 500, f"{100 + i % 7}.0", f"{108 + i % 5}.0")) for i in range(400)]
    whole = gzip.compress("".join(lines).encode(), mtime=0)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])
    # the complete lines before the cut, found independently by decompressing what is left
    decompressor = __import__("zlib").decompressobj(31)
    readable = decompressor.decompress(whole[: len(whole) // 2]).decode()
    complete = readable.count("\n")
    assert 0 < complete < len(lines)

    result = import_file(path, "hyperliquid-ws")
    assert result.report.snapshots == complete
    assert int(result.tape.ts_local[-1]) == t0 + (complete - 1) * 500_000_000
    (warning,) = [i for i in result.report.issues if i.severity == "warning"]
    assert "cut.jsonl.gz" in str(warning) and f"line {complete}" in warning.problem


def test_ws_gap_marker_and_folder_of_hourly_files(tmp_path: Path) -> None:
    t0 = 1_700_000_000_000_000_000
    hour = tmp_path / "rec" / "ETH" / "20231114"
    hour.mkdir(parents=True)
    first = [_ws_line(t0, _book("ETH", 1_700_000_000_000, "100.0", "101.0"))]
    second = [
        _ws_line(t0 + 90 * 10**9, {"channel": "mmlab.session", "data": {"version": 1}}),
        _ws_line(t0 + 90 * 10**9, {"channel": "mmlab.gap", "data": {"since_ns": t0 + 10**9, "until_ns": t0 + 89 * 10**9, "reason": "websocket closed"}}),
        _ws_line(t0 + 90 * 10**9 + 1, _book("ETH", 1_700_000_090_000, "100.5", "101.0")),
    ]
    (hour / "01.jsonl.gz").write_bytes(gzip.compress("".join(second).encode()))
    (hour / "00.jsonl.gz").write_bytes(gzip.compress("".join(first).encode()))
    result = import_file(tmp_path / "rec", "hyperliquid-ws")
    assert result.report.snapshots == 2
    assert [str(Path(f).name) for f in result.tape.extra["files"]] == ["00.jsonl.gz", "01.jsonl.gz"]
    gap_notes = [i for i in result.report.issues if "recording gap of 88.0 s: websocket closed" in i.problem]
    assert len(gap_notes) == 1 and gap_notes[0].severity == "warning" and gap_notes[0].line == 2
    assert result.report.gaps == ((t0, t0 + 90 * 10**9 + 1),)


def test_cli_imports_the_ws_sample(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.parquet"
    assert main(["import", str(shared_data / WS_SAMPLE), "--format", "hyperliquid-ws", "--out", str(out)]) == 0
    tape = read_tape(out)
    assert tape.count(EventKind.BOOK_CLEAR) == 46 and tape.venue == "hyperliquid" and tape.instrument.coin == "BTC"


# -- S3 archive -----------------------------------------------------------------------------


def _read_s3(path: Path) -> tuple[list, list[tuple[int, int]]]:
    books, stamps = [], []
    with lz4.frame.open(path, "rt") as stream:
        for line in stream:
            record = json.loads(line)
            books.append(raw_levels(record["raw"]["data"]["levels"]))
            # datetime64 parses all nine fraction digits; the text is UTC without a zone
            stamps.append((int(np.datetime64(record["time"], "ns").astype(np.int64)), record["raw"]["data"]["time"] * 1_000_000))
    return books, stamps


def test_s3_sample_matches_an_independent_read(shared_data: Path) -> None:
    path = shared_data / S3_SAMPLE
    books, stamps = _read_s3(path)
    result = import_file(path, "hyperliquid-s3")
    report, tape = result.report, result.tape
    assert report.snapshots == len(books) == 5587
    assert all(len(bids) == len(asks) == 20 for bids, asks in books)
    assert report.book_rows == 5587 * 40 and report.trades == 0
    order = sorted(range(len(stamps)), key=lambda k: stamps[k][0])  # the tape is in local-time order
    assert (int(tape.ts_local[0]), int(tape.ts_exch[0])) == stamps[order[0]]
    assert (int(tape.ts_local[-1]), int(tape.ts_exch[-1])) == stamps[order[-1]]
    assert int(tape.ts_local[0]) == 1704110401138942031  # 2024-01-01T12:00:01.138942031
    assert report.crossed_or_locked == crossed_count(books) == 0
    assert_snapshots_equal(result, [books[k] for k in order])
    assert any("no trades" in text for text in report.unchecked)
    assert tape.instrument.coin == "BTC"


def test_s3_folder_needs_the_coin_and_finds_the_file(shared_data: Path) -> None:
    folder = shared_data / "hyperliquid-s3-l2book"
    with pytest.raises(ImportError_, match="coin"):
        import_file(folder, "hyperliquid-s3")
    assert import_file(folder, "hyperliquid-s3", coin="BTC").report.snapshots == 5587


def test_s3_corrupt_time_strict_and_lenient(tmp_path: Path) -> None:
    good = {"time": "2024-01-01T12:00:01.138942031", "ver_num": 1, "raw": _book("BTC", 1704110399915, "42727.0", "42728.0")}
    bad = dict(good, time="yesterday")
    path = tmp_path / "BTC.lz4"
    with lz4.frame.open(path, "wt") as stream:
        stream.write(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(ImportError_, match=r"BTC\.lz4:2: field 'time'"):
        import_file(path, "hyperliquid-s3")
    result = import_file(path, "hyperliquid-s3", strict=False)
    assert result.report.snapshots == 1 and len(result.report.errors) == 1


# -- collector CSVs -------------------------------------------------------------------------


def _read_collector(folder: Path, coin: str) -> dict:
    with open(folder / f"orderbooks_{coin}.csv", newline="") as stream:
        book_rows = list(csv.DictReader(stream))
    with open(folder / f"trades_{coin}.csv", newline="") as stream:
        trade_rows = list(csv.DictReader(stream))
    with open(folder / f"prices_{coin}.csv", newline="") as stream:
        bbo_rows = list(csv.DictReader(stream))
    books = [
        (
            [(float(r[f"bid_price_{i}"]), float(r[f"bid_size_{i}"])) for i in range(20)],
            [(float(r[f"ask_price_{i}"]), float(r[f"ask_size_{i}"])) for i in range(20)],
        )
        for r in book_rows
    ]
    seen, kept, duplicates = set(), [], 0
    for r in trade_rows:
        if r["trade_id"] in seen:
            duplicates += 1
        else:
            seen.add(r["trade_id"])
            kept.append(r)
    tops: dict[str, list] = {}
    for r, (bids, asks) in zip(book_rows, books):
        tops.setdefault(r["exchange_timestamp"], []).append((bids[0], asks[0]))
    compared = matched = 0
    for bid, ask in zip(bbo_rows[0::2], bbo_rows[1::2]):
        assert (bid["side"], ask["side"]) == ("bid", "ask")
        if bid["exchange_timestamp"] in tops:
            compared += 1
            pair = ((float(bid["price"]), float(bid["size"])), (float(ask["price"]), float(ask["size"])))
            matched += pair in tops[bid["exchange_timestamp"]]
    local = sorted(
        [(seconds_to_ns(r["timestamp"]), int(r["exchange_timestamp"]) * 1_000_000) for r in book_rows + kept],
        key=lambda row: row[0],
    )
    book_ts_local = [seconds_to_ns(r["timestamp"]) for r in book_rows]
    return dict(books=books, book_ts_local=book_ts_local, trades=kept, duplicates=duplicates, compared=compared, matched=matched, first=local[0], last=local[-1])


@pytest.mark.parametrize("coin", CSV_COINS)
def test_collector_csv_matches_an_independent_read(shared_data: Path, coin: str) -> None:
    folder = shared_data / CSV_FOLDER
    expected = _read_collector(folder, coin)
    result = import_file(folder, "hyperliquid-collector-csv", coin=coin)
    report, tape = result.report, result.tape
    assert report.snapshots == len(expected["books"]) == 446
    assert report.trades == len(expected["trades"])
    assert tape.extra["duplicate_trades_dropped"] == expected["duplicates"]
    visible = last_of_each_local_time(expected["book_ts_local"], expected["books"])
    assert report.crossed_or_locked == crossed_count(visible)
    assert_snapshots_equal(result, visible)
    trades = tape.kind == EventKind.TRADE
    assert tape.side[trades].tolist() == [1 if r["side"] == "buy" else -1 for r in expected["trades"]]
    # several rows of one flush share a local time: compare the times, which are unambiguous
    assert int(tape.ts_local[0]) == expected["first"][0] and int(tape.ts_local[-1]) == expected["last"][0]
    assert ("bbo vs snapshot", f"{expected['matched']} of {expected['compared']} match") in report.checks
    assert expected["compared"] > 100
    holes_s = sorted((end - start) / 1e9 for start, end in report.gaps)
    assert len(holes_s) == 2 and 49 < holes_s[0] < 53 and 248 < holes_s[1] < 252
    assert tape.instrument.coin == coin


def test_collector_csv_readme_counts(shared_data: Path) -> None:
    """Distinct trade ids and duplicate rows as measured in the data folder's README."""
    folder = shared_data / CSV_FOLDER
    measured = {coin: import_file(folder, "hyperliquid-collector-csv", coin=coin) for coin in CSV_COINS}
    assert {c: r.report.trades for c, r in measured.items()} == {"BTC": 1467, "ETH": 781, "SOL": 1026, "WLFI": 162}
    assert {c: r.tape.extra["duplicate_trades_dropped"] for c, r in measured.items()} == {"BTC": 30, "ETH": 1, "SOL": 1, "WLFI": 21}


def test_collector_csv_corrupt_price(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / CSV_FOLDER
    for kind in ("orderbooks", "trades", "prices"):
        (tmp_path / f"{kind}_BTC.csv").write_text((source / f"{kind}_BTC.csv").read_text())
    lines = (tmp_path / "trades_BTC.csv").read_text().splitlines(keepends=True)
    fields = lines[4].split(",")
    fields[1] = "n/a"
    lines[4] = ",".join(fields)
    (tmp_path / "trades_BTC.csv").write_text("".join(lines))
    with pytest.raises(ImportError_) as caught:
        import_file(tmp_path, "hyperliquid-collector-csv", coin="BTC")
    assert "trades_BTC.csv:5" in str(caught.value) and "'price'" in str(caught.value)
    result = import_file(tmp_path, "hyperliquid-collector-csv", coin="BTC", strict=False)
    (issue,) = result.report.errors
    assert issue.line == 5 and issue.field == "price"
    assert result.report.trades == 1467 - (0 if fields[4] in {l.split(",")[4] for l in lines[5:]} else 1)
    with pytest.raises(ImportError_, match="coin"):
        import_file(tmp_path, "hyperliquid-collector-csv")
