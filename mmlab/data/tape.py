"""The tape: one instrument's merged, time-ordered stream of market events, stored as parquet.

Schema (one row per event, sorted by ``ts_local`` then file order)
-------------------------------------------------------------------
============  =======  =====================================================================
column        dtype    meaning
============  =======  =====================================================================
ts_exch       int64    venue time, ns since the epoch (UTC)
ts_local      int64    local receive time, ns since the epoch (UTC)
kind          uint8    :class:`EventKind`
side          int8     +1 bid / buyer-initiated, -1 ask / seller-initiated, 0 not applicable
price         float64  BOOK: level price; TRADE: trade price; FUNDING, ASSET_CTX: mark price (USD)
size          float64  BOOK: new absolute size at the level, 0 deletes it; TRADE: size (coins);
                       ASSET_CTX: open interest (coins); FUNDING: position-independent, 0
rate          float64  FUNDING: the rate paid now; ASSET_CTX: current predicted rate (fraction
                       per funding interval); NaN on other rows
trade_id      int64    TRADE: venue trade id; 0 elsewhere
============  =======  =====================================================================

Optional columns, present only for venues whose public trades name both parties (Hyperliquid):

============  ==============================  ===============================================
column        parquet type                    meaning
============  ==============================  ===============================================
buyer         dictionary<int32, string>       TRADE: the buying address; null elsewhere or
                                              when the venue did not say
seller        dictionary<int32, string>       TRADE: the selling address; null likewise
============  ==============================  ===============================================

In memory they are int32 codes into one address table shared by both columns
(:attr:`Tape.addresses`), ``-1`` for "no address" (:data:`NO_ADDRESS`); in the file they are
dictionary-encoded strings, so any parquet reader sees the addresses themselves. A tape without
them (every other venue, every tape written before they existed) has ``buyer is None``.

A BOOK_CLEAR row (side 0, price NaN, size 0) empties both sides; the levels that follow it with the same ``ts_local``
rebuild the book (a snapshot). Rows sharing a ``ts_local`` form one update: a consumer looks at
the book only after all of them are applied. Metadata (coin, venue, szDecimals, source, funding
interval) lives in the parquet schema under the key ``mmlab.tape``.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mmlab.config import InstrumentSpec

__all__ = [
    "EventKind",
    "Tape",
    "TapeError",
    "TAPE_SCHEMA",
    "TAPE_FORMAT_VERSION",
    "ADDRESS_COLUMNS",
    "NO_ADDRESS",
    "encode_addresses",
    "read_tape",
    "write_tape",
    "validate_tape",
]

TAPE_FORMAT_VERSION = 1
METADATA_KEY = b"mmlab.tape"


class EventKind(enum.IntEnum):
    BOOK = 1
    TRADE = 2
    FUNDING = 3
    ASSET_CTX = 4
    BOOK_CLEAR = 5


class TapeError(ValueError):
    """A tape file is missing, corrupt, truncated or inconsistent."""


TAPE_SCHEMA = pa.schema(
    [
        ("ts_exch", pa.int64()),
        ("ts_local", pa.int64()),
        ("kind", pa.uint8()),
        ("side", pa.int8()),
        ("price", pa.float64()),
        ("size", pa.float64()),
        ("rate", pa.float64()),
        ("trade_id", pa.int64()),
    ]
)
_COLUMNS = tuple(TAPE_SCHEMA.names)
_DTYPES = {f.name: np.dtype(f.type.to_pandas_dtype()) for f in TAPE_SCHEMA}

#: optional per-row address columns (codes into :attr:`Tape.addresses`)
ADDRESS_COLUMNS = ("buyer", "seller")
#: the code of "no address" in the buyer and seller columns
NO_ADDRESS = -1
_ADDRESS_TYPE = pa.dictionary(pa.int32(), pa.string())


def encode_addresses(buyer: Sequence[str | None], seller: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Codes of per-row buyer and seller addresses into one shared table.

    Parameters
    ----------
    buyer, seller : sequence of str or None
        One entry per tape row; None (or "") where the row has no address.

    Returns
    -------
    buyer_codes, seller_codes : np.ndarray
        int32 codes into ``addresses``, :data:`NO_ADDRESS` where there is none.
    addresses : tuple of str
        The distinct addresses, in order of first appearance (buyers of a row before its seller).
    """
    if len(buyer) != len(seller):
        raise TapeError(f"encode_addresses: buyer has {len(buyer)} rows, seller {len(seller)}")
    table: dict[str, int] = {}
    codes = np.full((2, len(buyer)), NO_ADDRESS, dtype=np.int32)
    for row, pair in enumerate(zip(buyer, seller)):
        for column, address in enumerate(pair):
            if address:
                codes[column, row] = table.setdefault(str(address), len(table))
    return codes[0], codes[1], tuple(table)


@dataclass(frozen=True, slots=True, kw_only=True)
class Tape:
    """Columns of a tape as read-only numpy arrays, plus its instrument and provenance."""

    ts_exch: np.ndarray
    ts_local: np.ndarray
    kind: np.ndarray
    side: np.ndarray
    price: np.ndarray
    size: np.ndarray
    rate: np.ndarray
    trade_id: np.ndarray
    instrument: InstrumentSpec
    venue: str = "synthetic"
    source: str = ""
    funding_interval_s: float = 3600.0
    extra: dict[str, Any] = field(default_factory=dict)
    #: optional int32 codes into ``addresses`` of each row's buyer / seller (NO_ADDRESS: none)
    buyer: np.ndarray | None = None
    seller: np.ndarray | None = None
    addresses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = self.ts_local.shape[0]
        for name in _COLUMNS:
            column = getattr(self, name)
            if column.shape != (n,):
                raise TapeError(f"tape column {name!r} has shape {column.shape}, expected ({n},)")
            if column.flags.writeable:
                column.setflags(write=False)
        if (self.buyer is None) != (self.seller is None):
            raise TapeError("tape columns 'buyer' and 'seller' must be given together")
        if not isinstance(self.addresses, tuple):
            object.__setattr__(self, "addresses", tuple(self.addresses))
        if self.buyer is None:
            if self.addresses:
                raise TapeError("tape has an address table but no 'buyer'/'seller' columns")
            return
        for name in ADDRESS_COLUMNS:
            column = getattr(self, name)
            if not isinstance(column, np.ndarray) or column.dtype != np.int32 or column.shape != (n,):
                raise TapeError(f"tape column {name!r} must be an int32 array of shape ({n},)")
            if column.size and (column.min() < NO_ADDRESS or column.max() >= len(self.addresses)):
                row = int(np.flatnonzero((column < NO_ADDRESS) | (column >= len(self.addresses)))[0])
                raise TapeError(f"row {row}: field {name!r} code {int(column[row])} is outside the address table of {len(self.addresses)}")
            if column.flags.writeable:
                column.setflags(write=False)

    @classmethod
    def from_columns(cls, columns: dict[str, np.ndarray], **meta: Any) -> "Tape":
        """Build a tape from column arrays (cast to the schema's dtypes).

        ``buyer`` and ``seller`` code columns are taken when present (with ``addresses=`` in
        ``meta``).
        """
        missing = [c for c in _COLUMNS if c not in columns]
        if missing:
            raise TapeError(f"tape is missing column {missing[0]!r}")
        arrays = {c: np.ascontiguousarray(columns[c], dtype=_DTYPES[c]) for c in _COLUMNS}
        for name in ADDRESS_COLUMNS:
            if columns.get(name) is not None:
                arrays[name] = np.ascontiguousarray(columns[name], dtype=np.int32)
        return cls(**arrays, **meta)

    @property
    def has_addresses(self) -> bool:
        """True when the tape carries buyer and seller address columns."""
        return self.buyer is not None

    def with_addresses(self, buyer: np.ndarray, seller: np.ndarray, addresses: Sequence[str]) -> "Tape":
        """A copy of this tape with buyer / seller code columns (see :func:`encode_addresses`)."""
        return Tape.from_columns(
            {**{c: getattr(self, c) for c in _COLUMNS}, "buyer": buyer, "seller": seller},
            instrument=self.instrument,
            venue=self.venue,
            source=self.source,
            funding_interval_s=self.funding_interval_s,
            extra=dict(self.extra),
            addresses=tuple(addresses),
        )

    def address(self, code: int) -> str | None:
        """The address a buyer / seller code stands for (None for :data:`NO_ADDRESS`)."""
        return None if code == NO_ADDRESS else self.addresses[code]

    def __len__(self) -> int:
        return int(self.ts_local.shape[0])

    @property
    def span_s(self) -> float:
        return (int(self.ts_local[-1]) - int(self.ts_local[0])) / 1e9 if len(self) else 0.0

    def count(self, kind: EventKind) -> int:
        return int(np.count_nonzero(self.kind == kind))

    def metadata(self) -> dict[str, Any]:
        return {
            "format_version": TAPE_FORMAT_VERSION,
            "instrument": self.instrument.to_dict(),
            "venue": self.venue,
            "source": self.source,
            "funding_interval_s": self.funding_interval_s,
            "extra": self.extra,
        }

    def slice_time(self, start_ns: int | None = None, end_ns: int | None = None) -> "Tape":
        """Rows with ``start_ns <= ts_local < end_ns`` (local time)."""
        lo = 0 if start_ns is None else int(np.searchsorted(self.ts_local, start_ns, "left"))
        hi = len(self) if end_ns is None else int(np.searchsorted(self.ts_local, end_ns, "left"))
        columns = {c: getattr(self, c)[lo:hi] for c in _COLUMNS}
        if self.buyer is not None:
            columns["buyer"], columns["seller"] = self.buyer[lo:hi], self.seller[lo:hi]
        return Tape.from_columns(
            columns,
            instrument=self.instrument,
            venue=self.venue,
            source=self.source,
            funding_interval_s=self.funding_interval_s,
            extra=dict(self.extra),
            addresses=self.addresses,
        )


def write_tape(tape: Tape, path: str | Path) -> Path:
    """Write ``tape`` to parquet atomically (a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({c: getattr(tape, c) for c in _COLUMNS}, schema=TAPE_SCHEMA)
    if tape.buyer is not None:
        dictionary = pa.array(tape.addresses, type=pa.string())
        for name in ADDRESS_COLUMNS:
            codes = getattr(tape, name)
            indices = pa.array(codes, type=pa.int32(), mask=codes == NO_ADDRESS)
            table = table.append_column(pa.field(name, _ADDRESS_TYPE), pa.DictionaryArray.from_arrays(indices, dictionary))
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(tape.metadata()).encode()})
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)
    return path


def read_tape(path: str | Path) -> Tape:
    """Read and validate a tape; every problem raises :class:`TapeError` naming file and field."""
    path = Path(path)
    if not path.exists():
        raise TapeError(f"{path}: no such tape file")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise TapeError(f"{path}: not a readable parquet tape (corrupt or truncated): {err}") from None
    meta_raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if meta_raw is None:
        raise TapeError(f"{path}: missing tape metadata key 'mmlab.tape'; not an mmlab tape")
    try:
        meta = json.loads(meta_raw)
    except json.JSONDecodeError as err:
        raise TapeError(f"{path}: tape metadata is not valid JSON ({err.msg})") from None
    version = meta.get("format_version")
    if version != TAPE_FORMAT_VERSION:
        raise TapeError(f"{path}: field 'format_version' is {version!r}, expected {TAPE_FORMAT_VERSION}")
    for f in TAPE_SCHEMA:
        if f.name not in table.column_names:
            raise TapeError(f"{path}: missing column {f.name!r}")
        if table.schema.field(f.name).type != f.type:
            raise TapeError(f"{path}: column {f.name!r} has type {table.schema.field(f.name).type}, expected {f.type}")
    columns: dict[str, Any] = {c: table.column(c).to_numpy() for c in _COLUMNS}
    addresses = _read_addresses(table, path, columns)
    try:
        instrument = InstrumentSpec.from_dict(meta.get("instrument", {}), where=f"{path}: metadata.instrument")
    except ValueError as err:
        raise TapeError(str(err)) from None
    tape = Tape.from_columns(
        columns,
        instrument=instrument,
        venue=str(meta.get("venue", "")),
        source=str(meta.get("source", "")),
        funding_interval_s=float(meta.get("funding_interval_s", 3600.0)),
        extra=dict(meta.get("extra", {})),
        addresses=addresses,
    )
    validate_tape(tape, where=str(path))
    return tape


def _read_addresses(table: pa.Table, path: Path, columns: dict[str, Any]) -> tuple[str, ...]:
    """Put the optional buyer / seller columns of ``table`` into ``columns`` as codes; return the table of addresses."""
    present = [name for name in ADDRESS_COLUMNS if name in table.column_names]
    if not present:
        return ()
    if len(present) != len(ADDRESS_COLUMNS):
        missing = next(name for name in ADDRESS_COLUMNS if name not in present)
        raise TapeError(f"{path}: column {present[0]!r} is present but {missing!r} is missing")
    lookup: dict[str, int] = {}
    for name in ADDRESS_COLUMNS:
        column = table.column(name)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            column = column.dictionary_encode()
        if not (pa.types.is_dictionary(column.type) and pa.types.is_string(column.type.value_type)):
            raise TapeError(f"{path}: column {name!r} has type {column.type}, expected dictionary-encoded strings")
        codes = np.full(len(column), NO_ADDRESS, dtype=np.int32)
        offset = 0
        for chunk in column.chunks:
            # each chunk has its own dictionary: map it into the shared table
            remap = np.array([lookup.setdefault(a, len(lookup)) for a in chunk.dictionary.to_pylist()] + [NO_ADDRESS], dtype=np.int32)
            indices = chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
            if indices.size and indices.max() >= len(remap) - 1:
                raise TapeError(f"{path}: column {name!r} has an index outside its dictionary")
            # -1 (null) picks the NO_ADDRESS sentinel at the end of remap
            codes[offset : offset + len(chunk)] = remap[indices]
            offset += len(chunk)
        columns[name] = codes
    return tuple(lookup)


def validate_tape(tape: Tape, *, where: str = "tape") -> None:
    """Check the invariants a consumer relies on; raise naming the first bad row and field."""
    n = len(tape)
    if n == 0:
        raise TapeError(f"{where}: the tape has no rows")

    def fail(mask: np.ndarray, field_name: str, problem: str) -> None:
        row = int(np.flatnonzero(mask)[0])
        raise TapeError(f"{where}: row {row}: field {field_name!r} {problem}")

    if np.any(np.diff(tape.ts_local) < 0):
        fail(np.r_[False, np.diff(tape.ts_local) < 0], "ts_local", "goes backwards")
    kinds = set(int(k) for k in EventKind)
    bad_kind = ~np.isin(tape.kind, list(kinds))
    if bad_kind.any():
        fail(bad_kind, "kind", f"is not one of {sorted(kinds)}")
    priced = np.isin(tape.kind, [EventKind.BOOK, EventKind.TRADE])
    bad_price = priced & ~(np.isfinite(tape.price) & (tape.price > 0))
    if bad_price.any():
        fail(bad_price, "price", "must be positive and finite on book and trade rows")
    bad_size = priced & ~(np.isfinite(tape.size) & (tape.size >= 0))
    if bad_size.any():
        fail(bad_size, "size", "must be finite and >= 0 on book and trade rows")
    bad_trade = (tape.kind == EventKind.TRADE) & (tape.size <= 0)
    if bad_trade.any():
        fail(bad_trade, "size", "must be > 0 on trade rows")
    sided = np.isin(tape.kind, [EventKind.BOOK, EventKind.TRADE])
    bad_side = sided & ~np.isin(tape.side, [1, -1])
    if bad_side.any():
        fail(bad_side, "side", "must be +1 or -1 on book and trade rows")
    funding = tape.kind == EventKind.FUNDING
    bad_rate = funding & ~np.isfinite(tape.rate)
    if bad_rate.any():
        fail(bad_rate, "rate", "must be finite on funding rows")
    if tape.buyer is not None:
        not_trade = tape.kind != EventKind.TRADE
        for name in ADDRESS_COLUMNS:
            bad_address = not_trade & (getattr(tape, name) != NO_ADDRESS)
            if bad_address.any():
                fail(bad_address, name, "must be empty on rows that are not trades")
