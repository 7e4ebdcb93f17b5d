"""Importers: real recordings in, a validated :class:`~mmlab.data.tape.Tape` and a report out.

Every importer is a function ``read(path, *, strict=True, **options) -> ImportResult`` registered
in :data:`FORMATS` under the name ``mmlab import --format`` takes. It parses with a
:class:`TapeBuilder`, which collects rows and format-specific findings; ``builder.finish`` sorts
the rows by local time, replays the book to check it, and returns the tape with an
:class:`ImportReport` (span, counts, gaps, crossed or locked books, out-of-order timestamps,
duplicate trades, and what the format did not let it check).

Bad input is never skipped silently. With ``strict=True`` (the default) the first corrupt line
raises :class:`ImportError_` naming file, line and field. With ``strict=False`` the line is
skipped and an entry naming file, line and field goes into the report.
"""

from __future__ import annotations

import gzip
import importlib
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

import numpy as np

from mmlab.config import InstrumentSpec
from mmlab.data.book import OrderBook
from mmlab.data.tape import EventKind, Tape

__all__ = [
    "FORMATS",
    "ImportError_",
    "ImportIssue",
    "ImportReport",
    "ImportResult",
    "TapeBuilder",
    "import_file",
    "decimals_of",
    "open_text",
    "text_lines",
    "sz_decimals_option",
    "price_tick_option",
    "tick_of_decimals",
    "MAX_SZ_DECIMALS",
]

#: gaps in local time longer than this are listed in the report, seconds
GAP_THRESHOLD_S = 5.0


class ImportError_(ValueError):
    """A recording cannot be imported; the message names the file, line and field."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportIssue:
    """One finding: where it is (file, 1-based line, field) and what is wrong."""

    file: str
    line: int | None
    field: str | None
    problem: str
    severity: str = "error"  # "error": data was skipped or is wrong; "warning": suspicious; "info"

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line is not None else "")
        what = f" field {self.field!r}" if self.field else ""
        return f"{self.severity}: {where}:{what} {self.problem}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportReport:
    """What an import found. Times are ns; counts are rows of the resulting tape."""

    source: str
    format: str
    rows: int
    book_rows: int
    trades: int
    funding_rows: int
    asset_ctx_rows: int
    snapshots: int
    ts_local_first: int
    ts_local_last: int
    gaps: tuple[tuple[int, int], ...]
    crossed_or_locked: int
    out_of_order_exch: int
    duplicate_trades: int  # found in the recording, whether dropped or left in the tape
    issues: tuple[ImportIssue, ...]
    unchecked: tuple[str, ...]
    checks: tuple[tuple[str, str], ...] = ()

    @property
    def span_s(self) -> float:
        return (self.ts_local_last - self.ts_local_first) / 1e9

    @property
    def errors(self) -> tuple[ImportIssue, ...]:
        return tuple(i for i in self.issues if i.severity == "error")

    def summary(self) -> str:
        lines = [
            f"{self.format} import of {self.source}",
            f"  span {self.span_s:,.1f} s, {self.rows:,} rows: {self.book_rows:,} book, {self.trades:,} trades, "
            f"{self.funding_rows} funding, {self.asset_ctx_rows} asset ctx, {self.snapshots} snapshots",
            f"  gaps > {GAP_THRESHOLD_S:g} s: {len(self.gaps)}; crossed/locked books: {self.crossed_or_locked}; "
            f"exchange time going backwards: {self.out_of_order_exch}; duplicate trades: {self.duplicate_trades}",
        ]
        lines += [f"  check: {name}: {result}" for name, result in self.checks]
        lines += [f"  {issue}" for issue in self.issues[:20]]
        if len(self.issues) > 20:
            lines.append(f"  ... and {len(self.issues) - 20} more issues")
        lines += [f"  not checked: {text}" for text in self.unchecked]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return "<pre>" + self.summary().replace("&", "&amp;").replace("<", "&lt;") + "</pre>"


@dataclass(frozen=True, slots=True)
class ImportResult:
    tape: Tape
    report: ImportReport


class TapeBuilder:
    """Collects tape rows and findings while a file is parsed."""

    def __init__(self, source: str | Path, format_name: str, *, strict: bool = True) -> None:
        self.source = str(source)
        self.format_name = format_name
        self.strict = strict
        self._ts_exch: list[int] = []
        self._ts_local: list[int] = []
        self._kind: list[int] = []
        self._side: list[int] = []
        self._price: list[float] = []
        self._size: list[float] = []
        self._rate: list[float] = []
        self._trade_id: list[int] = []
        self.issues: list[ImportIssue] = []
        self.unchecked: list[str] = []
        self.checks: list[tuple[str, str]] = []
        #: trades an importer dropped because their id had been seen (feeds replay on reconnect)
        self.duplicate_trades_dropped = 0

    # -- rows ------------------------------------------------------------------------------

    def _row(self, ts_exch: int, ts_local: int, kind: EventKind, side: int, price: float, size: float, rate: float, trade_id: int) -> None:
        self._ts_exch.append(ts_exch)
        self._ts_local.append(ts_local)
        self._kind.append(kind)
        self._side.append(side)
        self._price.append(price)
        self._size.append(size)
        self._rate.append(rate)
        self._trade_id.append(trade_id)

    def book(self, ts_exch: int, ts_local: int, side: int, price: float, size: float) -> None:
        """Absolute size at a price level (0 deletes it)."""
        self._row(ts_exch, ts_local, EventKind.BOOK, side, price, size, math.nan, 0)

    def clear(self, ts_exch: int, ts_local: int) -> None:
        """Empty both sides: the book rows that follow at the same local time are a snapshot."""
        self._row(ts_exch, ts_local, EventKind.BOOK_CLEAR, 0, math.nan, 0.0, math.nan, 0)

    def snapshot(self, ts_exch: int, ts_local: int, bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> None:
        """A full book: a clear followed by every level."""
        self.clear(ts_exch, ts_local)
        for price, size in bids:
            self.book(ts_exch, ts_local, 1, price, size)
        for price, size in asks:
            self.book(ts_exch, ts_local, -1, price, size)

    def trade(self, ts_exch: int, ts_local: int, aggressor: int, price: float, size: float, trade_id: int = 0) -> None:
        self._row(ts_exch, ts_local, EventKind.TRADE, aggressor, price, size, math.nan, trade_id)

    def funding(self, ts_exch: int, ts_local: int, mark_price: float, rate: float) -> None:
        self._row(ts_exch, ts_local, EventKind.FUNDING, 0, mark_price, 0.0, rate, 0)

    def asset_ctx(self, ts_exch: int, ts_local: int, mark_price: float, open_interest: float, rate: float) -> None:
        self._row(ts_exch, ts_local, EventKind.ASSET_CTX, 0, mark_price, open_interest, rate, 0)

    # -- findings --------------------------------------------------------------------------

    def problem(self, line: int | None, field_name: str | None, problem: str, *, file: str | None = None) -> None:
        """A bad line: raise when strict, otherwise record it as an error (the line is skipped)."""
        issue = ImportIssue(file=file or self.source, line=line, field=field_name, problem=problem)
        if self.strict:
            raise ImportError_(str(issue).removeprefix("error: "))
        self.issues.append(issue)

    def note(self, line: int | None, field_name: str | None, problem: str, *, severity: str = "warning", file: str | None = None) -> None:
        """A finding that does not stop the import (a gap, a duplicate, a suspicious value)."""
        self.issues.append(ImportIssue(file=file or self.source, line=line, field=field_name, problem=problem, severity=severity))

    def check(self, name: str, result: str) -> None:
        """Record the outcome of a format-specific check (for example a BBO comparison)."""
        self.checks.append((name, result))

    def cannot_check(self, text: str) -> None:
        self.unchecked.append(text)

    # -- the result ------------------------------------------------------------------------

    def finish(self, instrument: InstrumentSpec, *, venue: str, funding_interval_s: float = 3600.0, extra: dict[str, Any] | None = None) -> ImportResult:
        if not self._ts_local:
            raise ImportError_(f"{self.source}: no market data found")
        columns = {
            "ts_exch": np.array(self._ts_exch, dtype=np.int64),
            "ts_local": np.array(self._ts_local, dtype=np.int64),
            "kind": np.array(self._kind, dtype=np.uint8),
            "side": np.array(self._side, dtype=np.int8),
            "price": np.array(self._price, dtype=np.float64),
            "size": np.array(self._size, dtype=np.float64),
            "rate": np.array(self._rate, dtype=np.float64),
            "trade_id": np.array(self._trade_id, dtype=np.int64),
        }
        # stable: rows that arrived together keep their file order (a clear before its levels)
        order = np.argsort(columns["ts_local"], kind="stable")
        columns = {name: values[order] for name, values in columns.items()}
        tape = Tape.from_columns(columns, instrument=instrument, venue=venue, source=self.source, funding_interval_s=funding_interval_s, extra=extra or {})
        return ImportResult(tape=tape, report=self._report(tape))

    def _report(self, tape: Tape) -> ImportReport:
        ts_local = tape.ts_local
        steps = np.diff(ts_local)
        gap_idx = np.flatnonzero(steps > GAP_THRESHOLD_S * 1e9)
        gaps = tuple((int(ts_local[i]), int(ts_local[i + 1])) for i in gap_idx)
        trades = tape.kind == EventKind.TRADE
        trade_ts_exch = tape.ts_exch[trades]
        out_of_order = int(np.count_nonzero(np.diff(trade_ts_exch) < 0))
        ids = tape.trade_id[trades]
        ids = ids[ids != 0]
        # duplicates still in the tape plus those the importer recognised and dropped
        duplicates = int(ids.size - np.unique(ids).size) + self.duplicate_trades_dropped
        return ImportReport(
            source=self.source,
            format=self.format_name,
            rows=len(tape),
            book_rows=tape.count(EventKind.BOOK),
            trades=int(trades.sum()),
            funding_rows=tape.count(EventKind.FUNDING),
            asset_ctx_rows=tape.count(EventKind.ASSET_CTX),
            snapshots=tape.count(EventKind.BOOK_CLEAR),
            ts_local_first=int(ts_local[0]),
            ts_local_last=int(ts_local[-1]),
            gaps=gaps,
            crossed_or_locked=count_crossed_books(tape),
            out_of_order_exch=out_of_order,
            duplicate_trades=duplicates,
            issues=tuple(self.issues),
            unchecked=tuple(self.unchecked),
            checks=tuple(self.checks),
        )


def count_crossed_books(tape: Tape) -> int:
    """Replay the book and count the update groups (rows sharing ts_local) after which it is crossed or locked."""
    book = OrderBook()
    crossed = 0
    kinds, sides, prices, sizes, ts = (c.tolist() for c in (tape.kind, tape.side, tape.price, tape.size, tape.ts_local))
    n = len(kinds)
    touched = False
    for i in range(n):
        kind = kinds[i]
        if kind == EventKind.BOOK:
            book.apply(sides[i], prices[i], sizes[i])
            touched = True
        elif kind == EventKind.BOOK_CLEAR:
            book.clear()
            touched = True
        if touched and (i + 1 == n or ts[i + 1] != ts[i]):
            touched = False
            bid, ask = book.best_bid(), book.best_ask()
            if bid >= ask:  # NaN (an empty side) compares False
                crossed += 1
    return crossed


#: Hyperliquid perps allow at most 6 decimals in a price, so szDecimals is at most 6 too
MAX_SZ_DECIMALS = 6


def sz_decimals_option(value: Any, format_name: str) -> int | None:
    """The ``sz_decimals`` option from the command line (a string), checked; None when absent."""
    if value is None:
        return None
    try:
        decimals = int(value)
    except (TypeError, ValueError):
        raise ImportError_(f"{format_name}: option 'sz_decimals' must be an integer, got {value!r}") from None
    if not 0 <= decimals <= MAX_SZ_DECIMALS:
        raise ImportError_(f"{format_name}: option 'sz_decimals' must be in [0, {MAX_SZ_DECIMALS}], got {decimals}")
    return decimals


def price_tick_option(value: Any, format_name: str) -> float | None:
    """The ``price_tick`` option (USD, a string from the command line), checked; None when absent."""
    if value is None:
        return None
    try:
        tick = float(value)
    except (TypeError, ValueError):
        raise ImportError_(f"{format_name}: option 'price_tick' must be a number, got {value!r}") from None
    if not (0.0 < tick < math.inf):
        raise ImportError_(f"{format_name}: option 'price_tick' must be positive and finite, got {value!r}")
    return tick


def tick_of_decimals(decimals: Iterable[int]) -> float:
    """The venue tick a fixed-tick venue's prices imply: ``10^−d`` for the most decimals ``d`` written.

    An inference, not a fact: a tick of 0.5 written as 0.5, 1.0, 1.5 reads as 0.1, and a tick
    finer than any price in the file shows is not seen. Importers say so in their report and take
    the ``price_tick`` option instead when the user gives it.
    """
    return 10.0 ** -max(decimals, default=0)


def open_text(file: Path) -> IO[str]:
    """Open a text file, gzip-compressed or plain (told apart by gzip's magic bytes)."""
    with open(file, "rb") as probe:
        compressed = probe.read(2) == b"\x1f\x8b"
    return gzip.open(file, "rt", encoding="utf-8") if compressed else open(file, encoding="utf-8")


def text_lines(
    file: Path, builder: TapeBuilder, opener: Callable[[Path], IO[str]] = open_text
) -> Iterator[tuple[int, str]]:
    """``(1-based line number, text)`` of a (compressed) text file; a cut stream ends with a warning.

    A recorder killed mid-write leaves a compressed stream without its end; everything
    decompressed before that point is good data, so it is yielded and the truncation is reported
    (naming the file and the last complete line) rather than raised.
    """
    line_number = 0
    try:
        with opener(file) as stream:
            for text in stream:
                line_number += 1
                yield line_number, text
    # RuntimeError is what lz4.frame raises on a cut frame
    except (EOFError, zlib.error, gzip.BadGzipFile, RuntimeError, OSError, UnicodeDecodeError) as err:
        builder.note(
            line_number or None,
            None,
            f"{file.name} ends mid-stream (truncated or corrupt): imported up to line {line_number}, "
            f"the last complete one ({type(err).__name__}: {err})",
            severity="warning",
            file=str(file),
        )


def decimals_of(text: str) -> int:
    """Number of decimals written in a decimal string ("0.00123" -> 5, "12" -> 0)."""
    _, _, fraction = text.partition(".")
    return len(fraction.rstrip("0")) if "e" not in text.lower() else 0


#: format name -> "module:function"; each function is ``read(path, *, strict=True, **options)``
FORMATS: dict[str, str] = {
    "hyperliquid-ws": "mmlab.data.importers.hyperliquid:read_ws_recording",
    "hyperliquid-s3": "mmlab.data.importers.hyperliquid:read_s3_l2book",
    "hyperliquid-collector-csv": "mmlab.data.importers.hyperliquid:read_collector_csv",
    "binance-ws": "mmlab.data.importers.binance:read_ws_capture",
    "tardis-csv": "mmlab.data.importers.tardis:read_tardis_csv",
    "hftbacktest-npz": "mmlab.data.importers.hftbacktest:read_npz",
}


def importer(format_name: str) -> Callable[..., ImportResult]:
    if format_name not in FORMATS:
        raise ImportError_(f"unknown format {format_name!r}; known: {', '.join(sorted(FORMATS))}")
    module_name, _, function_name = FORMATS[format_name].partition(":")
    return getattr(importlib.import_module(module_name), function_name)


def import_file(path: str | Path, format_name: str, *, strict: bool = True, **options: Any) -> ImportResult:
    """Import one recording (a file, or a folder for formats that span several files)."""
    path = Path(path)
    if not path.exists():
        raise ImportError_(f"{path}: no such file or directory")
    return importer(format_name)(path, strict=strict, **options)
