"""Binance futures raw websocket captures: ``<ts_local ns> <raw JSON>`` per line, gzip or plain.

This is what hftbacktest's ``collector`` writes for Binance USDⓈ-M (``fapi``) and COIN-M
(``dapi``) perpetuals: combined-stream messages ``{"stream": "<sym>@<channel>", "data": {...}}``
plus, once per connection, the raw REST depth snapshot (a line without a ``stream`` key).

Channels used
-------------
``<sym>@depth@0ms``
    An L2 diff: ``U`` first and ``u`` final update id, ``pu`` the previous diff's ``u``, ``b``/``a``
    ``[price, quantity]`` strings where the quantity is the new absolute size ("0" deletes).
    Each level becomes a BOOK row at the line's local time, ``ts_exch = E * 1_000_000``.
``<sym>@trade``
    One trade; ``m`` (buyer is maker) true means the seller was the taker, aggressor -1, else +1.
    ``ts_exch = T * 1_000_000`` (trade time), ``trade_id = t``.
``<sym>@bookTicker``
    Best bid/ask with the update id ``u`` they belong to. Not put in the tape (the diffs carry
    the same information); used only to check the rebuilt book.
REST snapshot
    ``lastUpdateId``, ``bids``, ``asks`` (1000 levels per side): a BOOK_CLEAR and one BOOK row per
    level at the line's local time.

Book reconstruction (Binance's rules for futures)
-------------------------------------------------
Diffs are buffered until the snapshot; those with ``u < lastUpdateId`` are older than it and
dropped; the first diff applied must satisfy ``U <= lastUpdateId <= u``; every later diff must
have ``pu`` equal to the previous diff's ``u``. Diffs received before the snapshot line but
applied after it are written at the snapshot's local time, after its levels, so that the update
group of the snapshot ends in the book the recorder could know at that moment.

A break of the chain (``pu`` differs, which a lost or corrupt line causes) leaves the book
unknown until a new REST snapshot, and these captures hold only one; so after a break (lenient
mode) no more diffs are applied and the report says from which line the book stops.

Captures continue across days: a ``*_20240809`` file has no snapshot and its first diff's ``pu``
is the last ``u`` of the ``*_20240808`` file. Give a list of files or a folder (with option
``symbol`` when it holds several instruments) and the files are read in name order as one stream.

The check
---------
A bookTicker whose ``u`` equals the final id ``u`` of a depth diff shows the book right after
that diff, so the rebuilt best bid and ask (price and size) must equal its ``b``/``B``/``a``/``A``.
Tickers whose ``u`` falls inside a diff's id range show states the diffs skip over and cannot be
compared; they are counted in the report.

Time: the recorder's clock in the hftbacktest sample captures runs ~1.27 s behind the exchange's
``E``; ``ts_local`` stays the local stamp (it orders the lines), and the report gives the median
offset so a user can see it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mmlab.config import InstrumentSpec
from mmlab.data.book import OrderBook
from mmlab.data.importers import (
    MAX_SZ_DECIMALS,
    ImportError_,
    ImportResult,
    TapeBuilder,
    decimals_of,
    price_tick_option,
    sz_decimals_option,
    text_lines,
    tick_of_decimals,
)

__all__ = ["read_ws_capture", "VENUE"]

VENUE = "binance-futures"
FORMAT_NAME = "binance-ws"
NS_PER_MS = 1_000_000
#: InstrumentSpec accepts sz_decimals in [0, 6]
#: at most this many bookTicker mismatches are listed one by one in the report
MAX_MISMATCHES_LISTED = 10


class _BadField(Exception):
    """A field of one line is missing or malformed; the caller turns it into ``builder.problem``."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(problem)
        self.field_name = field_name
        self.problem = problem


def _integer(data: dict[str, Any], key: str) -> int:
    try:
        raw = data[key]
    except (KeyError, TypeError):
        raise _BadField(key, "is missing") from None
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise _BadField(key, f"is not an integer: {raw!r}")
    return raw


def _text_number(data: dict[str, Any], key: str, *, positive: bool) -> tuple[float, str]:
    """A finite number written as a decimal string; returns the float and the text."""
    try:
        raw = data[key]
    except (KeyError, TypeError):
        raise _BadField(key, "is missing") from None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise _BadField(key, f"is not a number: {raw!r}") from None
    if not math.isfinite(value) or value < 0.0 or (positive and value == 0.0):
        raise _BadField(key, f"must be {'positive' if positive else '>= 0'} and finite, got {raw!r}")
    return value, str(raw)


def _levels(data: dict[str, Any], key: str, size_texts: set[str]) -> list[tuple[float, float]]:
    """``[[price, quantity], ...]`` strings as floats; collects the quantity strings seen.

    The strings go into a set and their decimals are counted once at the end: a venue writes
    few distinct quantities compared with the ~450k levels of a capture.
    """
    try:
        raw_levels = data[key]
    except (KeyError, TypeError):
        raise _BadField(key, "is missing") from None
    if not isinstance(raw_levels, list):
        raise _BadField(key, f"is not a list of [price, quantity]: {raw_levels!r:.80}")
    levels = []
    try:
        for price_text, size_text in raw_levels:
            price, size = float(price_text), float(size_text)
            # NaN fails every comparison, so this also rejects it
            if not (0.0 < price < math.inf and 0.0 <= size < math.inf):
                raise _BadField(key, f"bad level [{price_text!r}, {size_text!r}]")
            levels.append((price, size))
            size_texts.add(size_text)
    except (TypeError, ValueError):
        raise _BadField(key, f"a level is not [price, quantity] decimal strings: {raw_levels!r:.80}") from None
    return levels


def _capture_files(path: Path | str | Sequence[Path | str], symbol: str | None) -> list[Path]:
    """The files to read, in name order (a day's file before the next day's)."""
    if isinstance(path, (list, tuple)):
        files = [Path(p) for p in path]
        if not files:
            raise ImportError_(f"{FORMAT_NAME}: an empty list of files was given")
    else:
        path = Path(path)
        if path.is_dir():
            files = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
            if symbol is not None:
                prefix = symbol.lower() + "_"
                files = [p for p in files if p.name.lower().startswith(prefix)]
            if not files:
                wanted = f" for symbol {symbol!r} (files named {symbol.lower()}_*)" if symbol else ""
                raise ImportError_(f"{path}: no capture files{wanted}")
        else:
            files = [path]
    for file in files:
        if not file.is_file():
            raise ImportError_(f"{file}: no such file")
    if symbol is None:
        # a USDⓈ-M REST snapshot does not name its symbol, so one stream must come from one symbol
        prefixes = sorted({_symbol_of_name(f) for f in files})
        if len(prefixes) > 1:
            raise ImportError_(f"{FORMAT_NAME}: files of several symbols ({', '.join(prefixes)}); pass option symbol")
    return sorted(files, key=lambda p: p.name)


def _symbol_of_name(file: Path) -> str:
    """``btcusd_perp_20240808.gz`` -> ``btcusd_perp`` (the collector's file naming)."""
    stem = file.name.split(".", 1)[0]
    head, _, tail = stem.rpartition("_")
    return head if head and tail.isdigit() else stem


@dataclass(slots=True)
class _State:
    """The reconstruction's state, carried from one file to the next."""

    symbol: str | None
    book: OrderBook = field(default_factory=OrderBook)
    last_update_id: int | None = None
    #: buffered diffs before the snapshot: (ts_local, data, file, line)
    pending: list[tuple[int, dict[str, Any], str, int]] = field(default_factory=list)
    synced: bool = False
    stopped: bool = False
    previous_u: int | None = None
    diffs_seen: int = 0
    diffs_applied: int = 0
    diffs_stale: int = 0
    diffs_not_applied: int = 0
    trades: int = 0
    other_symbol_lines: int = 0
    local_backwards: int = 0
    last_ts_local: int | None = None
    crossed_after_diff: int = 0
    size_texts: set[str] = field(default_factory=set)
    #: trade price strings, whose decimals give the venue's price tick
    price_texts: set[str] = field(default_factory=set)
    #: u of each applied diff -> (best bid, its size, best ask, its size) right after it
    best_after: dict[int, tuple[float, float, float, float]] = field(default_factory=dict)
    #: bookTickers: (u, message data, file, line)
    tickers: list[tuple[int, dict[str, Any], str, int]] = field(default_factory=list)
    #: exchange minus local time of each diff, ns (the recorder's clock offset)
    clock_offsets_ns: list[int] = field(default_factory=list)
    snapshot_where: tuple[str, int] | None = None
    stopped_where: tuple[str, int] | None = None


def read_ws_capture(path: Path | str | Sequence[Path | str], *, strict: bool = True, **options: Any) -> ImportResult:
    """Import a Binance futures websocket capture into a tape, rebuilding and checking the book.

    Parameters
    ----------
    path : Path or list of Path
        One capture file (gzip or plain), a list of files, or a folder; several files are read
        in name order as one continuous stream (a day's file continues the previous day's book).
    strict : bool
        Raise :class:`ImportError_` at the first bad line or broken diff chain (default); when
        False, skip it and list it in the report.
    **options
        ``symbol``: the instrument, e.g. ``"BTCUSDT"`` (default: the first stream's symbol; lines
        of other symbols are skipped and counted). ``sz_decimals``: size decimals of the
        instrument (default: the most decimals written in any quantity).

    Returns
    -------
    ImportResult
        The tape (BOOK_CLEAR + BOOK rows of the snapshot, BOOK rows of each applied diff, TRADE
        rows) and the report, whose checks give the bookTicker comparison. ``tape.extra`` holds
        the same figures as numbers (``diffs_applied``, ``bbo_compared``, ``bbo_matched``, ...).

    Raises
    ------
    ImportError_
        Unknown option, no file, or (strict) a corrupt line, a broken ``pu`` chain or no REST
        snapshot, naming the file, line and field.
    """
    unknown = sorted(set(options) - {"symbol", "sz_decimals", "price_tick"})
    if unknown:
        raise ImportError_(f"{FORMAT_NAME}: unknown option {unknown[0]!r}; known: price_tick, sz_decimals, symbol")
    symbol = options.get("symbol")
    symbol = str(symbol).upper() if symbol else None
    sz_decimals = sz_decimals_option(options.get("sz_decimals"), FORMAT_NAME)
    files = _capture_files(path, symbol)
    source = str(path) if isinstance(path, (str, Path)) else ", ".join(str(f) for f in files)
    builder = TapeBuilder(source, FORMAT_NAME, strict=strict)
    state = _State(symbol=symbol)

    for file in files:
        file_name = str(file)
        for line_number, text in text_lines(file, builder):
            try:
                _line(text, state, builder, file_name, line_number)
            except _BadField as bad:
                builder.problem(line_number, bad.field_name, bad.problem, file=file_name)

    if state.last_update_id is None:
        builder.problem(
            None,
            "lastUpdateId",
            f"no REST snapshot line in {len(files)} file(s): the book cannot be rebuilt, "
            f"{len(state.pending):,} depth diffs not applied",
        )
        state.diffs_not_applied += len(state.pending)
        state.pending.clear()
    ticker_counts = _compare_tickers(state, builder)
    _report_findings(state, builder, files)

    if state.symbol is None:
        raise ImportError_(f"{source}: no Binance stream message found")
    if sz_decimals is None:
        sz_decimals = min(max(map(decimals_of, state.size_texts), default=0), MAX_SZ_DECIMALS)
    # Binance quotes on a fixed tick; the finest decimal written in a trade price is that tick
    # (trailing zeros ignored) unless the user names it
    price_tick = price_tick_option(options.get("price_tick"), FORMAT_NAME)
    if price_tick is None:
        price_tick = tick_of_decimals(map(decimals_of, state.price_texts))
    instrument = InstrumentSpec(coin=state.symbol, sz_decimals=sz_decimals, price_tick=price_tick)
    extra = {
        "files": [str(f) for f in files],
        "symbol": state.symbol,
        "diffs_seen": state.diffs_seen,
        "diffs_applied": state.diffs_applied,
        "diffs_stale": state.diffs_stale,
        "diffs_not_applied": state.diffs_not_applied,
        "book_tickers": len(state.tickers),
        **ticker_counts,
        "median_exch_minus_local_ms": _median_ms(state.clock_offsets_ns),
    }
    return builder.finish(instrument, venue=VENUE, extra=extra)


def _line(text: str, state: _State, builder: TapeBuilder, file: str, line_number: int) -> None:
    stamp, _, payload = text.partition(" ")
    try:
        ts_local = int(stamp)
    except ValueError:
        raise _BadField("ts_local", f"line does not start with integer ns: {stamp[:40]!r}") from None
    try:
        message = json.loads(payload)
    except json.JSONDecodeError as err:
        # the column counts from the start of the line, stamp included (what an editor shows)
        raise _BadField("json", f"not valid JSON ({err.msg} at column {len(stamp) + 2 + err.pos})") from None
    if not isinstance(message, dict):
        raise _BadField("json", f"expected a JSON object, got {type(message).__name__}")
    if state.last_ts_local is not None and ts_local < state.last_ts_local:
        state.local_backwards += 1
    state.last_ts_local = ts_local

    stream = message.get("stream")
    if stream is None:
        if "lastUpdateId" in message:
            _snapshot(message, ts_local, state, builder, file, line_number)
            return
        raise _BadField("stream", "neither a stream message nor a REST depth snapshot")
    if not isinstance(stream, str) or "@" not in stream:
        raise _BadField("stream", f"not '<symbol>@<channel>': {stream!r}")
    stream_symbol, _, channel = stream.partition("@")
    stream_symbol = stream_symbol.upper()
    if state.symbol is None:
        state.symbol = stream_symbol
    elif stream_symbol != state.symbol:
        state.other_symbol_lines += 1
        return
    data = message.get("data")
    if not isinstance(data, dict):
        raise _BadField("data", "is missing or not an object")
    if channel.startswith("depth"):
        state.diffs_seen += 1
        if state.last_update_id is None:
            state.pending.append((ts_local, data, file, line_number))
        else:
            _diff(data, ts_local, ts_local, state, builder, file, line_number)
    elif channel == "trade":
        _trade(data, ts_local, state, builder)
    elif channel == "bookTicker":
        # only the few tickers that can be compared are parsed (at the end); most fall inside a
        # diff's id range and are never used
        state.tickers.append((_integer(data, "u"), data, file, line_number))
    # other channels (markPrice, aggTrade, ...) carry nothing the tape holds


def _trade(data: dict[str, Any], ts_local: int, state: _State, builder: TapeBuilder) -> None:
    trade_time_ms = _integer(data, "T")
    trade_id = _integer(data, "t")
    price, price_text = _text_number(data, "p", positive=True)
    size, size_text = _text_number(data, "q", positive=True)
    state.price_texts.add(price_text)
    buyer_is_maker = data.get("m")
    if not isinstance(buyer_is_maker, bool):
        raise _BadField("m", f"is not true/false: {buyer_is_maker!r}")
    state.size_texts.add(size_text)
    # the buyer made the market, so the seller crossed the spread
    aggressor = -1 if buyer_is_maker else 1
    builder.trade(trade_time_ms * NS_PER_MS, ts_local, aggressor, price, size, trade_id)
    state.trades += 1


def _snapshot(message: dict[str, Any], ts_local: int, state: _State, builder: TapeBuilder, file: str, line_number: int) -> None:
    snapshot_symbol = message.get("symbol")
    if snapshot_symbol is not None and state.symbol is not None and str(snapshot_symbol).upper() != state.symbol:
        state.other_symbol_lines += 1
        return
    if state.last_update_id is not None:
        # a second connection's snapshot: start over from it
        state.synced = False
        state.stopped = False
    last_update_id = _integer(message, "lastUpdateId")
    event_time_ms = message.get("E", 0)
    if isinstance(event_time_ms, bool) or not isinstance(event_time_ms, int):
        raise _BadField("E", f"is not an integer: {event_time_ms!r}")
    bids = _levels(message, "bids", state.size_texts)
    asks = _levels(message, "asks", state.size_texts)
    ts_exch = event_time_ms * NS_PER_MS
    builder.snapshot(ts_exch, ts_local, bids, asks)
    book = state.book
    book.clear()
    for price, size in bids:
        book.apply(1, price, size)
    for price, size in asks:
        book.apply(-1, price, size)
    state.last_update_id = last_update_id
    state.snapshot_where = (file, line_number)
    # diffs that arrived while the REST request was in flight; those that are not older than the
    # snapshot are applied now, at the snapshot's local time (nobody could use them earlier)
    pending, state.pending = state.pending, []
    for ts_received, data, pending_file, pending_line in pending:
        try:
            _diff(data, ts_local, ts_received, state, builder, pending_file, pending_line)
        except _BadField as bad:
            builder.problem(pending_line, bad.field_name, bad.problem, file=pending_file)


def _diff(data: dict[str, Any], ts_local: int, ts_received: int, state: _State, builder: TapeBuilder, file: str, line_number: int) -> None:
    if state.stopped:
        state.diffs_not_applied += 1
        return
    first_id = _integer(data, "U")
    final_id = _integer(data, "u")
    previous_id = _integer(data, "pu")
    event_time_ms = _integer(data, "E")
    if not state.synced:
        last_update_id = state.last_update_id
        assert last_update_id is not None
        if final_id < last_update_id:
            state.diffs_stale += 1
            return
        if not first_id <= last_update_id <= final_id:
            state.stopped = True
            state.stopped_where = (file, line_number)
            state.diffs_not_applied += 1
            builder.problem(
                line_number,
                "U",
                f"first diff after the REST snapshot does not cover lastUpdateId {last_update_id} "
                f"(U={first_id}, u={final_id}): diffs are missing; no further diffs applied",
                file=file,
            )
            return
        state.synced = True
    elif previous_id != state.previous_u:
        state.stopped = True
        state.stopped_where = (file, line_number)
        state.diffs_not_applied += 1
        builder.problem(
            line_number,
            "pu",
            f"broken diff chain: pu={previous_id} but the previous diff ended at u={state.previous_u}; "
            f"the book is unknown from here (no later REST snapshot), no further diffs applied",
            file=file,
        )
        return
    bids = _levels(data, "b", state.size_texts)
    asks = _levels(data, "a", state.size_texts)
    state.previous_u = final_id
    ts_exch = event_time_ms * NS_PER_MS
    book, add_level = state.book, builder.book
    for price, size in bids:
        add_level(ts_exch, ts_local, 1, price, size)
        book.apply(1, price, size)
    for price, size in asks:
        add_level(ts_exch, ts_local, -1, price, size)
        book.apply(-1, price, size)
    state.diffs_applied += 1
    state.clock_offsets_ns.append(ts_exch - ts_received)
    best_bid, best_ask = book.best_bid(), book.best_ask()
    state.best_after[final_id] = (best_bid, book.size_at(1, best_bid), best_ask, book.size_at(-1, best_ask))
    if best_bid >= best_ask:
        state.crossed_after_diff += 1


def _compare_tickers(state: _State, builder: TapeBuilder) -> dict[str, int]:
    """Compare each bookTicker whose ``u`` ends an applied diff with the book after that diff."""
    compared = matched = 0
    for u, data, file, line_number in state.tickers:
        rebuilt = state.best_after.get(u)
        if rebuilt is None:
            continue
        try:
            shown = tuple(_text_number(data, key, positive=key in "ba")[0] for key in ("b", "B", "a", "A"))
        except _BadField as bad:
            builder.problem(line_number, bad.field_name, bad.problem, file=file)
            continue
        compared += 1
        if rebuilt == shown:
            matched += 1
        elif compared - matched <= MAX_MISMATCHES_LISTED:
            builder.note(
                line_number,
                "bookTicker",
                f"rebuilt best bid/ask after diff u={u} is {rebuilt[1]}@{rebuilt[0]} / {rebuilt[3]}@{rebuilt[2]}, "
                f"the bookTicker says {shown[1]}@{shown[0]} / {shown[3]}@{shown[2]}",
                severity="error",
                file=file,
            )
    builder.check(
        "bookTicker equals rebuilt best bid/ask (price and size) after the diff with the same u",
        f"{matched:,} of {compared:,} equal",
    )
    builder.check("book crossed or locked right after a diff", f"{state.crossed_after_diff:,} times")
    not_comparable = len(state.tickers) - compared
    if state.tickers:
        builder.cannot_check(
            f"{not_comparable:,} of {len(state.tickers):,} bookTickers: their update id falls inside "
            f"a depth diff's range (or outside the rebuilt span), a state the diffs never show"
        )
    return {"bbo_compared": compared, "bbo_matched": matched, "bbo_not_comparable": not_comparable}


def _median_ms(offsets_ns: list[int]) -> float | None:
    return float(np.median(np.array(offsets_ns, dtype=np.int64))) / NS_PER_MS if offsets_ns else None


def _report_findings(state: _State, builder: TapeBuilder, files: list[Path]) -> None:
    builder.check(
        "depth diffs",
        f"{state.diffs_seen:,} received, {state.diffs_applied:,} applied, {state.diffs_stale:,} older than the "
        f"snapshot dropped, {state.diffs_not_applied:,} not applied",
    )
    if state.stopped_where is not None:
        file, line_number = state.stopped_where
        builder.note(
            line_number,
            "pu",
            f"the book stops being updated at this line: {state.diffs_not_applied:,} later diffs not applied "
            f"(a new REST snapshot would be needed); trades continue",
            file=file,
        )
    offset_ms = _median_ms(state.clock_offsets_ns)
    if offset_ms is not None:
        builder.note(
            None,
            "E",
            f"exchange time E is on median {offset_ms:,.1f} ms after the local receive stamp "
            f"(the recorder's clock offset plus latency); ts_local keeps the local stamp",
            severity="info",
        )
    if state.other_symbol_lines:
        builder.note(None, "stream", f"{state.other_symbol_lines:,} lines of other symbols skipped (option symbol={state.symbol})", severity="info")
    if state.local_backwards:
        builder.note(None, "ts_local", f"local timestamps go backwards {state.local_backwards:,} times; rows are sorted by ts_local", severity="warning")
    builder.cannot_check("funding: the capture holds no markPrice stream, so the tape has no funding rows")
