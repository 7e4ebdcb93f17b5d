"""Hyperliquid recordings: raw websocket lines, the public S3 ``l2Book`` archive, collector CSVs.

Three importers, each registered in :data:`mmlab.data.importers.FORMATS`:

=============================  ==================================================================
format                         input
=============================  ==================================================================
``hyperliquid-ws``             :func:`read_ws_recording`: ``<ts_local ns> <raw websocket JSON>``
                               per line, gzip or plain; a file or a folder of hourly files (what
                               hftbacktest's collector and mmlab's own recorder write)
``hyperliquid-s3``             :func:`read_s3_l2book`: ``market_data/YYYYMMDD/H/l2Book/COIN.lz4``
                               of the requester-pays archive, or a folder of them
``hyperliquid-collector-csv``  :func:`read_collector_csv`: the ``orderbooks_``/``trades_``/
                               ``prices_{COIN}.csv`` folder of djienne/Hyperliquid_data_collector
=============================  ==================================================================

Every Hyperliquid ``l2Book`` message is a full top-20 book, so each one becomes a snapshot
(a BOOK_CLEAR row followed by one BOOK row per level, all at the message's local time). A trade's
``side`` is the aggressor's: ``"B"`` (``buy``) is buyer-initiated, +1; ``"A"`` (``sell``) -1.
Exchange times are integer ms on the wire and become ns here (``ts_exch = time_ms * 1_000_000``).

A websocket trade names both parties, ``users: [buyer, seller]``; ``hyperliquid-ws`` keeps them in
the tape's optional ``buyer``/``seller`` address columns (a trade without ``users`` has none; a
recording with no addresses at all gives a tape without the columns). The other two formats
carry no addresses.

The ``trades`` channel replays recent trades after every (re)subscription, so trade ids repeat;
the importers keep the first copy of each id and report how many copies they dropped (in the
report's ``duplicate_trades`` and in ``tape.extra["duplicate_trades_dropped"]``).

Options arrive as strings from ``mmlab import --option KEY=VALUE`` and are converted here; an
unknown option raises rather than being ignored.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from mmlab.config import InstrumentSpec
from mmlab.data.importers import MAX_SZ_DECIMALS, ImportError_, ImportResult, TapeBuilder, decimals_of, sz_decimals_option, text_lines
from mmlab.data.tape import NO_ADDRESS, EventKind

__all__ = ["read_ws_recording", "read_s3_l2book", "read_collector_csv", "seconds_text_to_ns"]

VENUE = "hyperliquid"
NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
#: InstrumentSpec accepts szDecimals in [0, 6]; Hyperliquid perps use 0..5
FUNDING_NOT_RECORDED = (
    "funding payments: Hyperliquid pays funding hourly, but no payment is in the recording "
    "(activeAssetCtx rows carry only the predicted rate)"
)


class _BadField(Exception):
    """A field of one line is missing or malformed; turned into ``builder.problem`` by the caller."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(problem)
        self.field_name = field_name
        self.problem = problem


# -- shared helpers -------------------------------------------------------------------------


def _options(options: dict[str, Any], allowed: set[str], format_name: str) -> dict[str, Any]:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ImportError_(f"{format_name}: unknown option {unknown[0]!r}; known: {', '.join(sorted(allowed))}")
    return options


def _decimals(text: str) -> int:
    """Decimals of a size string, also for Python's exponent form ("1e-05" -> 5)."""
    if "e" in text.lower():
        # ten places are more than any venue grid; the fixed-point form has no exponent
        return decimals_of(f"{float(text):.10f}")
    return decimals_of(text)


def _number(container: Any, key: str | int, field_name: str, *, positive: bool = False) -> float:
    """A finite float from a decimal string (or number) at ``container[key]``."""
    try:
        raw = container[key]
    except (KeyError, IndexError, TypeError):
        raise _BadField(field_name, "is missing") from None
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise _BadField(field_name, f"is not a number: {raw!r}")
    try:
        value = float(raw)
    except ValueError:
        raise _BadField(field_name, f"is not a number: {raw!r}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise _BadField(field_name, f"must be {'positive' if positive else '>= 0'} and finite, got {raw!r}")
    return value


def _integer(container: Any, key: str, field_name: str) -> int:
    try:
        raw = container[key]
    except (KeyError, IndexError, TypeError):
        raise _BadField(field_name, "is missing") from None
    if isinstance(raw, bool):
        raise _BadField(field_name, f"is not an integer: {raw!r}")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and re.fullmatch(r"-?\d+", raw.strip()):
        return int(raw)
    raise _BadField(field_name, f"is not an integer: {raw!r}")


def _users(trade: dict[str, Any], field_name: str) -> tuple[str, str] | None:
    """``(buyer, seller)`` of a websocket trade's ``users``, None when the field is absent."""
    if "users" not in trade:
        return None
    users = trade["users"]
    if not (isinstance(users, list) and len(users) == 2 and all(isinstance(u, str) and u for u in users)):
        raise _BadField(field_name, f"must be [buyer, seller], two non-empty address strings, got {users!r}")
    return users[0], users[1]


def seconds_text_to_ns(text: str) -> int:
    """Seconds since the epoch written in decimal (``"1756904112.5465927"``) as exact integer ns.

    Going through ``float(text) * 1e9`` would lose the last digits (a float holds ~16 significant
    digits, ns since 1970 need 19), so the integer and fraction parts are read separately.
    Python writes floats of this size without an exponent; digits beyond the ninth are dropped.

    Raises
    ------
    ValueError
        If ``text`` is not a plain non-negative decimal number.
    """
    match = re.fullmatch(r"(\d+)(?:\.(\d*))?", text.strip())
    if match is None:
        raise ValueError(f"not a decimal number of seconds: {text!r}")
    whole, fraction = match.group(1), (match.group(2) or "")
    return int(whole) * NS_PER_S + int((fraction + "000000000")[:9])


def _levels(data: dict[str, Any], sizes_seen: list[int]) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Bids and asks (best first) of an ``l2Book`` data object, as ``(price, size)`` floats."""
    levels = data.get("levels") if isinstance(data, dict) else None
    if not isinstance(levels, list) or len(levels) != 2 or not all(isinstance(side, list) for side in levels):
        raise _BadField("levels", "must be [[bids], [asks]]")
    sides: list[list[tuple[float, float]]] = []
    for side_index, side_levels in enumerate(levels):
        parsed = []
        for level_index, level in enumerate(side_levels):
            where = f"levels[{side_index}][{level_index}]"
            price = _number(level, "px", f"{where}.px", positive=True)
            size = _number(level, "sz", f"{where}.sz")
            sizes_seen.append(_decimals(str(level["sz"])))
            parsed.append((price, size))
        sides.append(parsed)
    return sides[0], sides[1]


def _natural_key(path: Path) -> tuple[tuple[int, int | str], ...]:
    # the S3 archive's hour folders are not zero-padded ("2" must sort before "12")
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in path.parts)


def _drop_duplicate_trades(builder: TapeBuilder, duplicates: int, first_line: int | None, file: str | None) -> None:
    builder.duplicate_trades_dropped += duplicates
    if duplicates:
        builder.note(
            first_line,
            "tid",
            f"{duplicates} duplicate trades dropped (same trade id received again: the trades "
            f"channel replays recent trades after each subscription)",
            severity="info",
            file=file,
        )
    builder.check("duplicate trades dropped", str(duplicates))


def _instrument(coin: str, sz_decimals: int | None, sizes_seen: list[int]) -> InstrumentSpec:
    if sz_decimals is None:
        sz_decimals = min(max(sizes_seen, default=0), MAX_SZ_DECIMALS)
    return InstrumentSpec(coin=coin, sz_decimals=sz_decimals)


# -- websocket recordings -------------------------------------------------------------------


def read_ws_recording(path: Path, *, strict: bool = True, **options: Any) -> ImportResult:
    """Import raw websocket lines ``<ts_local ns> <JSON>`` (gzip or plain), a file or a folder.

    Parameters
    ----------
    path : Path
        A recording file, or a folder whose ``*.gz`` / ``*.jsonl`` files (searched recursively,
        e.g. the recorder's ``<COIN>/<YYYYMMDD>/<HH>.jsonl.gz``) are read in name order.
    strict : bool
        Raise :class:`ImportError_` on the first corrupt line (else skip it and report it).
    **options
        ``coin``: keep only this coin (required when the recording holds several);
        ``sz_decimals``: the instrument's size decimals (default: the most decimals seen in any
        size string).

    Returns
    -------
    ImportResult
        The tape (``l2Book`` -> snapshots, ``trades`` -> trades de-duplicated on ``tid``,
        ``activeAssetCtx`` -> asset-ctx rows at local time) and its report. ``mmlab.gap`` markers
        of the recorder become warnings; ``subscriptionResponse``, ``pong`` and
        ``mmlab.session`` are skipped.
    """
    path = Path(path)
    options = _options(options, {"coin", "sz_decimals"}, "hyperliquid-ws")
    coin_wanted: str | None = options.get("coin")
    sz_decimals = sz_decimals_option(options.get("sz_decimals"), "hyperliquid-ws")
    if path.is_dir():
        files = sorted((f for f in path.rglob("*") if f.is_file() and f.name.endswith((".gz", ".jsonl"))), key=_natural_key)
        if not files:
            raise ImportError_(f"{path}: no *.gz or *.jsonl recording files in this folder")
    else:
        files = [path]
    builder = TapeBuilder(path, "hyperliquid-ws", strict=strict)
    state = _WsState(coin_wanted)
    for file in files:
        for line_number, text in text_lines(file, builder):
            if not text.strip():
                continue
            try:
                _ws_line(text, state, builder, line_number, file)
            except _BadField as bad:
                if not text.endswith("\n") and bad.field_name == "json":
                    # a plain file whose writer was killed mid-line: the tail is not corrupt data
                    builder.note(line_number, None, f"{file.name} ends mid-line (truncated); line {line_number} skipped", severity="warning", file=str(file))
                    continue
                builder.problem(line_number, bad.field_name, bad.problem, file=str(file))
    if state.coin is None:
        raise ImportError_(f"{path}: no l2Book, trades or activeAssetCtx message" + (f" for coin {coin_wanted!r}" if coin_wanted else ""))
    _drop_duplicate_trades(builder, state.duplicates, state.first_duplicate_line, state.first_duplicate_file)
    for channel, count in sorted(state.ignored.items()):
        builder.note(None, "channel", f"{count} messages of channel {channel!r} ignored", severity="info")
    builder.cannot_check(FUNDING_NOT_RECORDED)
    builder.cannot_check("depth beyond the 20 levels per side an l2Book message carries")
    if state.users:
        builder.check("trades with buyer and seller addresses", f"{len(state.users)} of {len(state.trade_ids)}")
    result = builder.finish(
        _instrument(state.coin, sz_decimals, state.sizes_seen),
        venue=VENUE,
        extra={"duplicate_trades_dropped": state.duplicates, "files": [str(f) for f in files]},
    )
    return _with_users(result, state.users)


def _with_users(result: ImportResult, users: dict[int, tuple[str, str]]) -> ImportResult:
    """Attach the ``users`` of each kept trade (matched on its unique trade id) as address columns."""
    if not users:
        return result
    tape = result.tape
    table: dict[str, int] = {}
    codes = np.full((2, len(tape)), NO_ADDRESS, dtype=np.int32)
    for row in np.flatnonzero(tape.kind == EventKind.TRADE):
        pair = users.get(int(tape.trade_id[row]))
        if pair is not None:
            codes[0, row] = table.setdefault(pair[0], len(table))
            codes[1, row] = table.setdefault(pair[1], len(table))
    return ImportResult(tape=tape.with_addresses(codes[0], codes[1], tuple(table)), report=result.report)


class _WsState:
    """What parsing a websocket recording remembers from line to line."""

    def __init__(self, coin_wanted: str | None) -> None:
        self.coin_wanted = coin_wanted
        self.coin: str | None = coin_wanted
        self.coins_seen: set[str] = set()
        self.trade_ids: set[int] = set()
        self.duplicates = 0
        self.first_duplicate_line: int | None = None
        self.first_duplicate_file: str | None = None
        self.sizes_seen: list[int] = []
        self.ignored: dict[str, int] = {}
        #: trade id -> (buyer, seller) of the kept trades whose message named them
        self.users: dict[int, tuple[str, str]] = {}

    def keep(self, coin: Any, field_name: str, file: Path, line_number: int) -> bool:
        """Whether a message of ``coin`` belongs to the tape; several coins without a choice raise."""
        if not isinstance(coin, str) or not coin:
            raise _BadField(field_name, f"is missing or not a coin name: {coin!r}")
        if self.coin_wanted is not None:
            return coin == self.coin_wanted
        if self.coin is None:
            self.coin = coin
        elif coin != self.coin:
            raise ImportError_(
                f"{file}:{line_number}: the recording holds several coins ({self.coin}, {coin}); "
                f"choose one with the option coin=..."
            )
        return True


_IGNORED_CHANNELS = {"subscriptionResponse", "pong", "mmlab.session"}


def _ws_line(text: str, state: _WsState, builder: TapeBuilder, line_number: int, file: Path) -> None:
    ts_text, _, payload = text.strip().partition(" ")
    if not re.fullmatch(r"\d+", ts_text):
        raise _BadField("ts_local", f"line must start with the local receive time in integer ns, got {ts_text[:40]!r}")
    ts_local = int(ts_text)
    try:
        message = json.loads(payload)
    except json.JSONDecodeError as err:
        raise _BadField("json", f"not valid JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(message, dict) or "channel" not in message:
        raise _BadField("channel", "the message has no 'channel'")
    channel = message["channel"]
    data = message.get("data")
    if channel == "l2Book":
        if not isinstance(data, dict):
            raise _BadField("data", "must be an object")
        if not state.keep(data.get("coin"), "data.coin", file, line_number):
            return
        ts_exch = _integer(data, "time", "data.time") * NS_PER_MS
        bids, asks = _levels(data, state.sizes_seen)
        builder.snapshot(ts_exch, ts_local, bids, asks)
    elif channel == "trades":
        if not isinstance(data, list):
            raise _BadField("data", "must be a list of trades")
        rows = []
        for index, trade in enumerate(data):
            where = f"data[{index}]"
            if not isinstance(trade, dict):
                raise _BadField(where, "must be an object")
            if not state.keep(trade.get("coin"), f"{where}.coin", file, line_number):
                continue
            side_text = trade.get("side")
            if side_text not in ("B", "A"):
                raise _BadField(f"{where}.side", f"must be 'B' or 'A', got {side_text!r}")
            price = _number(trade, "px", f"{where}.px", positive=True)
            size = _number(trade, "sz", f"{where}.sz", positive=True)
            trade_id = _integer(trade, "tid", f"{where}.tid")
            ts_exch = _integer(trade, "time", f"{where}.time") * NS_PER_MS
            users = _users(trade, f"{where}.users")
            rows.append((ts_exch, 1 if side_text == "B" else -1, price, size, trade_id, str(trade["sz"]), users))
        # the whole message is validated before any of it is kept, so a skipped line leaves no part behind
        for ts_exch, aggressor, price, size, trade_id, size_text, users in rows:
            if trade_id in state.trade_ids:
                state.duplicates += 1
                if state.first_duplicate_line is None:
                    state.first_duplicate_line, state.first_duplicate_file = line_number, str(file)
                continue
            state.trade_ids.add(trade_id)
            if users is not None:
                state.users[trade_id] = users
            state.sizes_seen.append(_decimals(size_text))
            builder.trade(ts_exch, ts_local, aggressor, price, size, trade_id)
    elif channel == "activeAssetCtx":
        if not isinstance(data, dict):
            raise _BadField("data", "must be an object")
        if not state.keep(data.get("coin"), "data.coin", file, line_number):
            return
        ctx = data.get("ctx")
        if not isinstance(ctx, dict):
            raise _BadField("data.ctx", "is missing")
        mark_price = _number(ctx, "markPx", "data.ctx.markPx", positive=True)
        open_interest = _number(ctx, "openInterest", "data.ctx.openInterest")
        try:
            rate = float(ctx["funding"])
        except (KeyError, TypeError, ValueError):
            raise _BadField("data.ctx.funding", f"is missing or not a number: {ctx.get('funding')!r}") from None
        if not math.isfinite(rate):
            raise _BadField("data.ctx.funding", f"must be finite, got {ctx['funding']!r}")
        # the channel carries no exchange time; the local time is the best available stamp
        builder.asset_ctx(ts_local, ts_local, mark_price, open_interest, rate)
    elif channel == "mmlab.gap":
        if not isinstance(data, dict):
            raise _BadField("data", "must be an object")
        since_ns = _integer(data, "since_ns", "data.since_ns")
        until_ns = _integer(data, "until_ns", "data.until_ns")
        reason = str(data.get("reason", "no reason given"))
        builder.note(line_number, None, f"recording gap of {(until_ns - since_ns) / NS_PER_S:.1f} s: {reason}", severity="warning", file=str(file))
    elif channel in _IGNORED_CHANNELS:
        return
    else:
        state.ignored[str(channel)] = state.ignored.get(str(channel), 0) + 1


# -- S3 archive -----------------------------------------------------------------------------


def read_s3_l2book(path: Path, *, strict: bool = True, **options: Any) -> ImportResult:
    """Import ``l2Book`` snapshots of Hyperliquid's S3 archive (LZ4-framed JSON lines).

    Parameters
    ----------
    path : Path
        ``market_data/YYYYMMDD/H/l2Book/COIN.lz4``, or a folder: then every ``<coin>.lz4`` below
        it is read (option ``coin`` required).
    strict : bool
        Raise :class:`ImportError_` on the first corrupt line (else skip it and report it).
    **options
        ``coin`` (default: the file's name), ``sz_decimals`` (default: most decimals seen).

    Returns
    -------
    ImportResult
        One snapshot per line; ``ts_local`` is the archive's receive time (``time``, ISO with
        ns, UTC), ``ts_exch`` is ``raw.data.time`` (ms).
    """
    import lz4.frame  # a dependency of mmlab; imported here so other formats do not need it

    path = Path(path)
    options = _options(options, {"coin", "sz_decimals"}, "hyperliquid-s3")
    coin: str | None = options.get("coin")
    sz_decimals = sz_decimals_option(options.get("sz_decimals"), "hyperliquid-s3")
    if path.is_dir():
        if coin is None:
            raise ImportError_(f"{path}: importing a folder of the S3 archive needs the option coin=...")
        files = sorted(path.rglob(f"{coin}.lz4"), key=_natural_key)
        if not files:
            raise ImportError_(f"{path}: no {coin}.lz4 files below this folder")
    else:
        files = [path]
        coin = coin or path.name.removesuffix(".lz4")
    builder = TapeBuilder(path, "hyperliquid-s3", strict=strict)
    sizes_seen: list[int] = []
    for file in files:
        for line_number, text in text_lines(file, builder, lambda f: lz4.frame.open(f, "rt", encoding="utf-8")):
            if not text.strip():
                continue
            try:
                _s3_line(text, coin, builder, sizes_seen)
            except _BadField as bad:
                builder.problem(line_number, bad.field_name, bad.problem, file=str(file))
    builder.cannot_check("trades: the archive's l2Book files hold no trades")
    builder.cannot_check(FUNDING_NOT_RECORDED)
    builder.cannot_check("depth beyond the 20 levels per side an l2Book message carries")
    return builder.finish(_instrument(coin, sz_decimals, sizes_seen), venue=VENUE, extra={"files": [str(f) for f in files]})


def _iso_to_ns(text: Any) -> int:
    """``"2024-01-01T12:00:01.138942031"`` (UTC, no zone) as integer ns, all nine digits kept."""
    if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?", text):
        raise _BadField("time", f"must be an ISO time like 2024-01-01T12:00:01.138942031, got {text!r}")
    try:
        return int(np.datetime64(text, "ns").astype(np.int64))
    except ValueError as err:
        raise _BadField("time", f"is not a valid time: {text!r} ({err})") from None


def _s3_line(text: str, coin: str, builder: TapeBuilder, sizes_seen: list[int]) -> None:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise _BadField("json", f"not valid JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(record, dict):
        raise _BadField("json", "a line must be a JSON object")
    ts_local = _iso_to_ns(record.get("time"))
    raw = record.get("raw")
    data = raw.get("data") if isinstance(raw, dict) else None
    if not isinstance(data, dict) or raw.get("channel") != "l2Book":
        raise _BadField("raw", "must be an l2Book websocket message")
    if data.get("coin") != coin:
        return
    ts_exch = _integer(data, "time", "raw.data.time") * NS_PER_MS
    bids, asks = _levels(data, sizes_seen)
    builder.snapshot(ts_exch, ts_local, bids, asks)


# -- collector CSVs -------------------------------------------------------------------------


def read_collector_csv(path: Path, *, strict: bool = True, **options: Any) -> ImportResult:
    """Import one coin of a Hyperliquid_data_collector folder (``orderbooks_``, ``trades_``, ``prices_``).

    Parameters
    ----------
    path : Path
        The folder holding ``orderbooks_{COIN}.csv``, ``trades_{COIN}.csv`` and
        ``prices_{COIN}.csv`` (or one of those files: its folder and coin are used).
    strict : bool
        Raise :class:`ImportError_` on the first corrupt row (else skip it and report it).
    **options
        ``coin`` (required unless a file was given), ``sz_decimals`` (default: most decimals seen).

    Returns
    -------
    ImportResult
        A snapshot per order-book row and the trades de-duplicated on ``trade_id``. The BBO rows
        of ``prices_`` do not go into the tape; each bid/ask pair is compared with the top level
        of the snapshot with the same ``exchange_timestamp`` (check ``"bbo vs snapshot"``).
    """
    path = Path(path)
    options = _options(options, {"coin", "sz_decimals"}, "hyperliquid-collector-csv")
    coin: str | None = options.get("coin")
    sz_decimals = sz_decimals_option(options.get("sz_decimals"), "hyperliquid-collector-csv")
    folder = path
    if path.is_file():
        folder = path.parent
        coin = coin or path.stem.partition("_")[2]
    if not coin:
        raise ImportError_(f"{path}: the collector folder holds several coins; choose one with the option coin=...")
    files = {kind: folder / f"{kind}_{coin}.csv" for kind in ("orderbooks", "trades", "prices")}
    missing = [str(f) for kind, f in files.items() if kind != "prices" and not f.is_file()]
    if missing:
        raise ImportError_(f"{missing[0]}: no such file (coin {coin!r})")
    builder = TapeBuilder(folder, "hyperliquid-collector-csv", strict=strict)
    sizes_seen: list[int] = []
    tops = _collector_books(files["orderbooks"], builder, sizes_seen)
    duplicates = _collector_trades(files["trades"], builder, sizes_seen)
    if files["prices"].is_file():
        _collector_bbo_check(files["prices"], builder, tops)
    else:
        builder.cannot_check(f"BBO against the snapshots: {files['prices'].name} is missing")
    builder.cannot_check(FUNDING_NOT_RECORDED)
    builder.cannot_check("sequence gaps: the collector's 'sequence' is the exchange time, not a message counter")
    builder.cannot_check("order counts per level: the collector does not keep Hyperliquid's 'n'")
    return builder.finish(
        _instrument(coin, sz_decimals, sizes_seen),
        venue=VENUE,
        extra={"duplicate_trades_dropped": duplicates, "files": [str(f) for f in files.values()]},
    )


def _csv_rows(file: Path, required: list[str], builder: TapeBuilder) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, row)`` of a CSV with a header; a short or malformed row is a problem."""
    with open(file, newline="", encoding="utf-8") as stream:
        reader = csv.reader(stream)
        header = next(reader, None)
        if header is None:
            raise ImportError_(f"{file}: empty file, expected a header row")
        absent = [name for name in required if name not in header]
        if absent:
            raise ImportError_(f"{file}:1: field {absent[0]!r} missing from the header")
        for values in reader:
            line_number = reader.line_num
            if not values:
                continue
            if len(values) != len(header):
                builder.problem(line_number, None, f"has {len(values)} fields, the header has {len(header)}", file=str(file))
                continue
            yield line_number, dict(zip(header, values))


def _timestamps(row: dict[str, str]) -> tuple[int, int]:
    """``(ts_exch, ts_local)`` in ns of a collector row."""
    try:
        ts_local = seconds_text_to_ns(row["timestamp"])
    except ValueError as err:
        raise _BadField("timestamp", str(err)) from None
    return _integer(row, "exchange_timestamp", "exchange_timestamp") * NS_PER_MS, ts_local


def _collector_books(file: Path, builder: TapeBuilder, sizes_seen: list[int]) -> dict[int, list[tuple[float, float, float, float]]]:
    """Add a snapshot per row; return exchange time -> top levels (bid px, bid sz, ask px, ask sz)."""
    with open(file, newline="", encoding="utf-8") as stream:
        header = next(csv.reader(stream), [])
    depth = sum(1 for name in header if name.startswith("bid_price_"))
    if depth == 0:
        raise ImportError_(f"{file}:1: field 'bid_price_0' missing from the header")
    required = ["timestamp", "exchange_timestamp"] + [f"{s}_{q}_{i}" for i in range(depth) for s in ("bid", "ask") for q in ("price", "size")]
    tops: dict[int, list[tuple[float, float, float, float]]] = {}
    previous_ts_local, hidden = -1, 0
    for line_number, row in _csv_rows(file, required, builder):
        try:
            ts_exch, ts_local = _timestamps(row)
            sides: dict[str, list[tuple[float, float]]] = {"bid": [], "ask": []}
            for side in sides:
                for i in range(depth):
                    price_text, size_text = row[f"{side}_price_{i}"], row[f"{side}_size_{i}"]
                    if not price_text and not size_text:
                        break  # a thin book leaves the deeper columns empty
                    price = _number(row, f"{side}_price_{i}", f"{side}_price_{i}", positive=True)
                    size = _number(row, f"{side}_size_{i}", f"{side}_size_{i}")
                    sizes_seen.append(_decimals(size_text))
                    sides[side].append((price, size))
        except _BadField as bad:
            builder.problem(line_number, bad.field_name, bad.problem, file=str(file))
            continue
        builder.snapshot(ts_exch, ts_local, sides["bid"], sides["ask"])
        # rows sharing a local time are one update of the tape: the earlier snapshot is never seen
        hidden += ts_local == previous_ts_local
        previous_ts_local = ts_local
        if sides["bid"] and sides["ask"]:
            tops.setdefault(ts_exch, []).append((*sides["bid"][0], *sides["ask"][0]))
    if hidden:
        builder.note(None, "timestamp", f"{hidden} snapshots share their local time with the previous row (same flush); only the last of each such group is visible", severity="info", file=str(file))
    return tops


def _collector_trades(file: Path, builder: TapeBuilder, sizes_seen: list[int]) -> int:
    """Add the trades (first copy of each trade id); return the number of copies dropped."""
    seen: set[int] = set()
    duplicates = 0
    first_duplicate_line: int | None = None
    for line_number, row in _csv_rows(file, ["timestamp", "price", "size", "side", "trade_id", "exchange_timestamp"], builder):
        try:
            ts_exch, ts_local = _timestamps(row)
            price = _number(row, "price", "price", positive=True)
            size = _number(row, "size", "size", positive=True)
            if row["side"] not in ("buy", "sell"):
                raise _BadField("side", f"must be 'buy' or 'sell', got {row['side']!r}")
            trade_id = _integer(row, "trade_id", "trade_id")
        except _BadField as bad:
            builder.problem(line_number, bad.field_name, bad.problem, file=str(file))
            continue
        if trade_id in seen:
            duplicates += 1
            first_duplicate_line = first_duplicate_line or line_number
            continue
        seen.add(trade_id)
        sizes_seen.append(_decimals(row["size"]))
        builder.trade(ts_exch, ts_local, 1 if row["side"] == "buy" else -1, price, size, trade_id)
    _drop_duplicate_trades(builder, duplicates, first_duplicate_line, str(file))
    return duplicates


def _collector_bbo_check(file: Path, builder: TapeBuilder, tops: dict[int, list[tuple[float, float, float, float]]]) -> None:
    """Compare each BBO bid/ask pair with the top of the snapshot(s) of the same exchange time.

    The collector subscribes to ``bbo`` and ``l2Book`` separately; both come from the same
    exchange book, so at an identical exchange time their best levels must agree. When two
    snapshots share an exchange time, agreeing with either counts as a match.
    """
    pending: tuple[int, str, float, float] | None = None  # the bid row waiting for its ask
    compared = matched = unpaired = without_snapshot = 0
    first_mismatch: str | None = None
    for line_number, row in _csv_rows(file, ["timestamp", "price", "size", "side", "exchange_timestamp"], builder):
        try:
            ts_exch, _ = _timestamps(row)
            price = _number(row, "price", "price", positive=True)
            size = _number(row, "size", "size")
            side = row["side"]
            if side not in ("bid", "ask"):
                raise _BadField("side", f"must be 'bid' or 'ask', got {side!r}")
        except _BadField as bad:
            builder.problem(line_number, bad.field_name, bad.problem, file=str(file))
            pending = None
            continue
        if side == "bid":
            unpaired += pending is not None
            pending = (ts_exch, row["timestamp"], price, size)
            continue
        if pending is None or pending[0] != ts_exch or pending[1] != row["timestamp"]:
            unpaired += 1
            pending = None
            continue
        bbo = (pending[2], pending[3], price, size)
        pending = None
        if ts_exch not in tops:
            without_snapshot += 1
            continue
        compared += 1
        if bbo in tops[ts_exch]:
            matched += 1
        elif first_mismatch is None:
            first_mismatch = f"line {line_number}: BBO {bbo} vs snapshot top {tops[ts_exch][0]}"
    builder.check("bbo vs snapshot", f"{matched} of {compared} match")
    builder.check("bbo pairs without a snapshot at the same exchange time", str(without_snapshot))
    if unpaired:
        builder.note(None, "side", f"{unpaired} BBO rows without their other side", severity="warning", file=str(file))
    if first_mismatch is not None:
        builder.note(None, None, f"{compared - matched} BBO pairs differ from the snapshot top; first at {first_mismatch}", severity="warning", file=str(file))
