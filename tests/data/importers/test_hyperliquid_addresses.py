"""Buyer and seller addresses: the ``hyperliquid-ws`` importer keeps them, tapes store and read them.

Expected addresses come from reading the raw recording with plain json loops here.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mmlab.data.importers import ImportError_, import_file
from mmlab.data.tape import NO_ADDRESS, EventKind, Tape, TapeError, encode_addresses, read_tape, validate_tape, write_tape
from mmlab.testing import T0_NS, make_tape
from mmlab.types import Side, Trade

WS_SAMPLE = "hyperliquid-api-samples/hftbacktest-ws-recording/btcusd_20250126.gz"


def _raw_users(path: Path) -> dict[int, tuple[str, str]]:
    users: dict[int, tuple[str, str]] = {}
    with gzip.open(path, "rt") as stream:
        for line in stream:
            message = json.loads(line.partition(" ")[2])
            if message["channel"] == "trades":
                for trade in message["data"]:
                    users.setdefault(trade["tid"], tuple(trade["users"]))
    return users


def _trade_addresses(tape: Tape) -> dict[int, tuple[str | None, str | None]]:
    rows = np.flatnonzero(tape.kind == EventKind.TRADE)
    return {int(tape.trade_id[r]): (tape.address(int(tape.buyer[r])), tape.address(int(tape.seller[r]))) for r in rows}


def test_ws_sample_keeps_buyer_and_seller(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / WS_SAMPLE
    expected = _raw_users(path)
    result = import_file(path, "hyperliquid-ws")
    tape = result.tape
    assert tape.has_addresses and len(expected) == 64
    assert _trade_addresses(tape) == expected
    assert len(tape.addresses) == len({a for pair in expected.values() for a in pair})
    # only trade rows carry addresses
    assert np.all(tape.buyer[tape.kind != EventKind.TRADE] == NO_ADDRESS)
    assert ("trades with buyer and seller addresses", "64 of 64") in result.report.checks
    # the parquet round trip keeps them, as dictionary-encoded strings any reader understands
    written = write_tape(tape, tmp_path / "hl.parquet")
    table = pq.read_table(written)
    assert pa.types.is_dictionary(table.schema.field("buyer").type)
    trades = table.filter(pa.compute.equal(table.column("kind"), int(EventKind.TRADE)))
    assert trades.column("seller").to_pylist() == [expected[t][1] for t in trades.column("trade_id").to_pylist()]
    again = read_tape(written)
    assert _trade_addresses(again) == expected
    # a slice keeps the shared table and the codes of its rows
    half = again.slice_time(int(again.ts_local[len(again) // 2]))
    assert _trade_addresses(half) == {tid: expected[tid] for tid in half.trade_id[half.kind == EventKind.TRADE].tolist()}


def _line(ts: int, message: dict) -> str:
    return f"{ts} {json.dumps(message)}\n"


def _trade(tid: int, side: str, users: object = None) -> dict:
    trade = {"coin": "ETH", "px": "100.5", "side": side, "sz": "0.5", "tid": tid, "time": 1_700_000_000_000}
    if users is not None:
        trade["users"] = users
    return trade


def _recording(tmp_path: Path, *trades: dict) -> Path:
    t0 = 1_700_000_000_000_000_000
    book = {"channel": "l2Book", "data": {"coin": "ETH", "time": 1_700_000_000_000, "levels": [[{"px": "100.0", "sz": "1"}], [{"px": "101.0", "sz": "1"}]]}}
    path = tmp_path / "rec.jsonl"
    path.write_text(_line(t0, book) + _line(t0 + 1_000_000, {"channel": "trades", "data": list(trades)}))
    return path


def test_ws_without_users_gives_a_tape_without_address_columns(tmp_path: Path) -> None:
    tape = import_file(_recording(tmp_path, _trade(1, "B"), _trade(2, "A")), "hyperliquid-ws").tape
    assert not tape.has_addresses and tape.buyer is None and tape.addresses == ()


def test_ws_trades_without_users_get_no_address(tmp_path: Path) -> None:
    tape = import_file(_recording(tmp_path, _trade(1, "B", ["0xb", "0xs"]), _trade(2, "A")), "hyperliquid-ws").tape
    assert _trade_addresses(tape) == {1: ("0xb", "0xs"), 2: (None, None)}


@pytest.mark.parametrize("users", [["0xb"], ["0xb", 7], "0xb,0xs", ["", "0xs"]])
def test_ws_malformed_users_name_the_field(tmp_path: Path, users: object) -> None:
    path = _recording(tmp_path, _trade(1, "B", ["0xb", "0xs"]), _trade(2, "A", users))
    with pytest.raises(ImportError_) as caught:
        import_file(path, "hyperliquid-ws")
    assert "rec.jsonl:2" in str(caught.value) and "data[1].users" in str(caught.value)
    lenient = import_file(path, "hyperliquid-ws", strict=False)
    # the whole message is skipped, so no trade of it is kept
    assert lenient.report.trades == 0 and lenient.report.errors[0].field == "data[1].users"


def _hand_tape() -> Tape:
    return make_tape(
        [
            (T0_NS, EventKind.BOOK_CLEAR, 0, np.nan, 0.0, np.nan, 0),
            (T0_NS, EventKind.BOOK, 1, 99.0, 1.0, np.nan, 0),
            (T0_NS, EventKind.BOOK, -1, 101.0, 1.0, np.nan, 0),
            (T0_NS + 1, EventKind.TRADE, 1, 101.0, 0.5, np.nan, 7),
            (T0_NS + 2, EventKind.TRADE, -1, 99.0, 0.5, np.nan, 8),
        ]
    )


def test_encode_addresses_shares_one_table() -> None:
    buyer, seller, table = encode_addresses([None, "0xa", "0xb"], ["", "0xc", "0xa"])
    assert table == ("0xa", "0xc", "0xb")
    assert buyer.tolist() == [NO_ADDRESS, 0, 2] and seller.tolist() == [NO_ADDRESS, 1, 0]
    assert buyer.dtype == np.int32


def test_old_tapes_without_addresses_still_read(tmp_path: Path) -> None:
    tape = _hand_tape()
    written = write_tape(tape, tmp_path / "old.parquet")
    assert "buyer" not in pq.read_table(written).column_names
    again = read_tape(written)
    assert again.buyer is None and again.seller is None and not again.has_addresses


def test_bad_address_columns_raise_naming_the_field(tmp_path: Path) -> None:
    tape = _hand_tape()
    with pytest.raises(TapeError, match="'buyer'.*outside the address table"):
        tape.with_addresses(np.array([-1, -1, -1, 3, -1]), np.full(5, -1), ("0xa",))
    with pytest.raises(TapeError, match="together"):
        Tape.from_columns({c: getattr(tape, c) for c in ("ts_exch", "ts_local", "kind", "side", "price", "size", "rate", "trade_id")} | {"buyer": np.full(5, -1)}, instrument=tape.instrument)
    on_book = tape.with_addresses(np.array([-1, 0, -1, 0, -1]), np.array([-1, -1, -1, 0, 0]), ("0xa",))
    with pytest.raises(TapeError, match="row 1: field 'buyer' must be empty on rows that are not trades"):
        validate_tape(on_book)
    # a file with only one of the two columns is refused by name
    good = tape.with_addresses(np.array([-1, -1, -1, 0, -1]), np.array([-1, -1, -1, -1, 0]), ("0xa",))
    written = write_tape(good, tmp_path / "one.parquet")
    table = pq.read_table(written)
    pq.write_table(table.drop_columns(["seller"]), written)
    with pytest.raises(TapeError, match="'buyer' is present but 'seller' is missing"):
        read_tape(written)


def test_trade_taker_and_maker() -> None:
    buy = Trade(ts_exch=1, ts_local=1, price=1.0, size=1.0, aggressor=Side.BUY, buyer="0xb", seller="0xs")
    sell = Trade(ts_exch=1, ts_local=1, price=1.0, size=1.0, aggressor=Side.SELL, buyer="0xb", seller="0xs")
    assert (buy.taker, buy.maker, sell.taker, sell.maker) == ("0xb", "0xs", "0xs", "0xb")
    assert Trade(ts_exch=1, ts_local=1, price=1.0, size=1.0, aggressor=Side.BUY).taker is None
