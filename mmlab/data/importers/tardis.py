"""Tardis.dev downloadable CSV files: trades, quotes, book_snapshot_N and incremental_book_L2.

One file holds one data type, recognised from its header (all share ``exchange, symbol,
timestamp, local_timestamp``; the times are integer µs since the epoch and become ns exactly,
``ts = µs * 1000``):

=======================  ===========================================================================
data type                columns after the common ones, and the tape rows made from a row
=======================  ===========================================================================
``trades``               ``id, side, price, amount``: a TRADE; ``side`` is the aggressor
                         (``buy`` +1, ``sell`` -1); a non-numeric id (BitMEX UUIDs) becomes 0
``quotes``               ``ask_amount, ask_price, bid_price, bid_amount``: a one-level snapshot
``book_snapshot_N``      ``asks[i].price, asks[i].amount, bids[i].price, bids[i].amount`` for
                         ``i < N`` (0 = best): a snapshot of N levels per side (empty cells are
                         absent levels)
``incremental_book_L2``  ``is_snapshot, side, price, amount``: ``amount`` is the new absolute size
                         (0 deletes); a run of ``is_snapshot=true`` rows with the same timestamp
                         is a fresh snapshot, so a BOOK_CLEAR goes before its first row and all
                         its rows share the first row's local time
=======================  ===========================================================================

The venue of the tape is the ``exchange`` column (``binance-futures``, ``bitmex``, ...), the
instrument's coin the ``symbol`` column.
"""

from __future__ import annotations

import csv
import gzip
import math
import re
from pathlib import Path
from typing import Any, Iterator

from mmlab.config import InstrumentSpec
from mmlab.data.importers import (
    MAX_SZ_DECIMALS,
    ImportError_,
    ImportResult,
    TapeBuilder,
    decimals_of,
    price_tick_option,
    sz_decimals_option,
    tick_of_decimals,
)

__all__ = ["read_tardis_csv"]

FORMAT_NAME = "tardis-csv"
NS_PER_US = 1_000
COMMON = ("exchange", "symbol", "timestamp", "local_timestamp")
_SNAPSHOT_COLUMN = re.compile(r"asks\[(\d+)\]\.price")


class _BadField(Exception):
    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(problem)
        self.field_name = field_name
        self.problem = problem


def _number(row: dict[str, str], key: str, *, positive: bool) -> float:
    text = row.get(key)
    if text is None:
        raise _BadField(key, "is missing")
    try:
        value = float(text)
    except ValueError:
        raise _BadField(key, f"is not a number: {text!r}") from None
    if not (0.0 <= value < math.inf) or (positive and value == 0.0):
        raise _BadField(key, f"must be {'positive' if positive else '>= 0'} and finite, got {text!r}")
    return value


def _microseconds_to_ns(row: dict[str, str], key: str) -> int:
    text = row.get(key) or ""
    if not text.isdigit():
        raise _BadField(key, f"is not integer microseconds: {text!r}")
    return int(text) * NS_PER_US


def _data_type(header: list[str]) -> tuple[str, int]:
    """``(data type, levels per side)`` from a header; levels only for book_snapshot_N."""
    columns = set(header)
    missing = [c for c in COMMON if c not in columns]
    if missing:
        raise _BadField(missing[0], "is missing from the header: not a Tardis CSV file")
    if {"is_snapshot", "side", "price", "amount"} <= columns:
        return "incremental_book_L2", 0
    if {"id", "side", "price", "amount"} <= columns:
        return "trades", 0
    if {"ask_amount", "ask_price", "bid_price", "bid_amount"} <= columns:
        return "quotes", 1
    levels = [int(m.group(1)) for c in header if (m := _SNAPSHOT_COLUMN.fullmatch(c))]
    if levels:
        return f"book_snapshot_{max(levels) + 1}", max(levels) + 1
    raise _BadField("header", f"no known Tardis data type has the columns {header}")


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str] | list[str]]]:
    with open(path, "rb") as probe:
        compressed = probe.read(2) == b"\x1f\x8b"
    with (gzip.open(path, "rt", newline="") if compressed else open(path, newline="")) as stream:
        reader = csv.reader(stream)
        header = next(reader, None)
        if header is None:
            raise ImportError_(f"{path}: empty file, no header")
        yield 1, header
        for line_number, cells in enumerate(reader, start=2):
            yield line_number, dict(zip(header, cells)) if len(cells) == len(header) else cells


def read_tardis_csv(path: Path, *, strict: bool = True, **options: Any) -> ImportResult:
    """Import one Tardis CSV file (any of the four data types; detected from the header).

    Parameters
    ----------
    path : Path
        A ``.csv`` or ``.csv.gz`` file.
    strict : bool
        Raise :class:`ImportError_` at the first bad row (default); when False skip it and list it.
    **options
        ``symbol``: keep only rows of this symbol (default: the first row's; other symbols are
        skipped and counted). ``sz_decimals``: size decimals (default: most decimals seen).
        ``price_tick``: the venue's price tick in USD (default: Hyperliquid's significant-figure
        rule when ``exchange`` is ``hyperliquid``, else ``10^−d`` for the most decimals ``d``
        written in any price, which the report flags as inferred).

    Returns
    -------
    ImportResult
        The tape and report; ``tape.extra["data_type"]`` names the detected data type.
    """
    unknown = sorted(set(options) - {"symbol", "sz_decimals", "price_tick"})
    if unknown:
        raise ImportError_(f"{FORMAT_NAME}: unknown option {unknown[0]!r}; known: price_tick, symbol, sz_decimals")
    sz_decimals = sz_decimals_option(options.get("sz_decimals"), FORMAT_NAME)
    price_tick = price_tick_option(options.get("price_tick"), FORMAT_NAME)
    path = Path(path)
    if not path.is_file():
        raise ImportError_(f"{path}: no such file")
    symbol: str | None = options.get("symbol")
    builder = TapeBuilder(path, FORMAT_NAME, strict=strict)
    rows = _rows(path)
    _, header = next(rows)
    assert isinstance(header, list)
    try:
        data_type, levels = _data_type(header)
    except _BadField as bad:
        raise ImportError_(f"{path}:1: field {bad.field_name!r} {bad.problem}") from None
    state: dict[str, Any] = {
        "exchange": None,
        "size_texts": set(),
        "price_texts": set(),
        "other_symbols": 0,
        "text_ids": 0,
        "previous_snapshot_key": None,
        "snapshot_ts_local": 0,
    }
    for line_number, row in rows:
        if not isinstance(row, dict):
            builder.problem(line_number, None, f"has {len(row)} cells, the header has {len(header)}")
            continue
        try:
            if symbol is None:
                symbol = row["symbol"]
            elif row["symbol"] != symbol:
                state["other_symbols"] += 1
                continue
            state["exchange"] = state["exchange"] or row["exchange"]
            ts_exch = _microseconds_to_ns(row, "timestamp")
            ts_local = _microseconds_to_ns(row, "local_timestamp")
            if data_type == "trades":
                _trade(row, ts_exch, ts_local, builder, state)
            elif data_type == "incremental_book_L2":
                _increment(row, ts_exch, ts_local, builder, state)
            else:
                _snapshot_row(row, data_type, levels, ts_exch, ts_local, builder, state)
        except _BadField as bad:
            builder.problem(line_number, bad.field_name, bad.problem)
    if symbol is None:
        raise ImportError_(f"{path}: no data rows")
    if state["other_symbols"]:
        builder.note(None, "symbol", f"{state['other_symbols']:,} rows of other symbols skipped (symbol={symbol})", severity="info")
    if state["text_ids"]:
        builder.cannot_check(
            f"duplicate trades: {state['text_ids']:,} trade ids are not integers (e.g. BitMEX UUIDs) and are stored as 0"
        )
    if data_type == "trades":
        builder.cannot_check("the book: a trades file has no depth")
    elif data_type == "quotes":
        builder.cannot_check("depth beyond the best bid and ask: a quotes file holds one level per side")
    if sz_decimals is None:
        sz_decimals = min(max(map(decimals_of, state["size_texts"]), default=0), MAX_SZ_DECIMALS)
    exchange = state["exchange"] or "tardis"
    if price_tick is None:
        if exchange == "hyperliquid":
            price_tick = 0.0  # InstrumentSpec's Hyperliquid rule: 5 significant figures
        else:
            price_tick = tick_of_decimals(map(decimals_of, state["price_texts"]))
            builder.note(
                None, "price", f"price tick {price_tick:g} USD inferred from the decimals written; give option price_tick to override", severity="info"
            )
    instrument = InstrumentSpec(coin=symbol, sz_decimals=sz_decimals, price_tick=price_tick)
    return builder.finish(instrument, venue=exchange, extra={"data_type": data_type, "file": str(path)})


def _trade(row: dict[str, str], ts_exch: int, ts_local: int, builder: TapeBuilder, state: dict[str, Any]) -> None:
    side = row["side"]
    if side not in ("buy", "sell"):
        raise _BadField("side", f"must be 'buy' or 'sell' (the aggressor), got {side!r}")
    price = _number(row, "price", positive=True)
    size = _number(row, "amount", positive=True)
    state["size_texts"].add(row["amount"])
    state["price_texts"].add(row["price"])
    trade_id_text = row["id"]
    if trade_id_text.isdigit():
        trade_id = int(trade_id_text)
    else:
        trade_id = 0
        state["text_ids"] += 1
    builder.trade(ts_exch, ts_local, 1 if side == "buy" else -1, price, size, trade_id)


def _snapshot_row(row: dict[str, str], data_type: str, levels: int, ts_exch: int, ts_local: int, builder: TapeBuilder, state: dict[str, Any]) -> None:
    sides: list[list[tuple[float, float]]] = [[], []]
    for index, side in enumerate(("bids", "asks")):
        for level in range(levels):
            if data_type == "quotes":
                price_key, size_key = ("bid_price", "bid_amount") if side == "bids" else ("ask_price", "ask_amount")
            else:
                price_key, size_key = f"{side}[{level}].price", f"{side}[{level}].amount"
            if not row[price_key]:
                continue  # Tardis leaves the cells of a missing level empty
            price = _number(row, price_key, positive=True)
            size = _number(row, size_key, positive=False)
            state["size_texts"].add(row[size_key])
            state["price_texts"].add(row[price_key])
            sides[index].append((price, size))
    builder.snapshot(ts_exch, ts_local, sides[0], sides[1])


def _increment(row: dict[str, str], ts_exch: int, ts_local: int, builder: TapeBuilder, state: dict[str, Any]) -> None:
    is_snapshot = row["is_snapshot"]
    if is_snapshot not in ("true", "false"):
        raise _BadField("is_snapshot", f"must be 'true' or 'false', got {is_snapshot!r}")
    side_text = row["side"]
    if side_text not in ("bid", "ask"):
        raise _BadField("side", f"must be 'bid' or 'ask', got {side_text!r}")
    price = _number(row, "price", positive=True)
    size = _number(row, "amount", positive=False)
    state["size_texts"].add(row["amount"])
    state["price_texts"].add(row["price"])
    if is_snapshot == "true":
        key = row["timestamp"]
        if state["previous_snapshot_key"] != key:
            # the first row of a snapshot: the book restarts here
            state["previous_snapshot_key"] = key
            state["snapshot_ts_local"] = ts_local
            builder.clear(ts_exch, ts_local)
        # all rows of one snapshot form one update group, so they share its first local time
        ts_local = state["snapshot_ts_local"]
    else:
        state["previous_snapshot_key"] = None
    builder.book(ts_exch, ts_local, 1 if side_text == "bid" else -1, price, size)
