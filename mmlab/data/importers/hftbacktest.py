"""hftbacktest's event arrays (``.npz`` with key ``data``): read into a tape, and write a tape out.

hftbacktest feeds its backtester a numpy structured array with one row per event::

    ev u8, exch_ts i8, local_ts i8, px f8, qty f8, order_id u8, ival i8, fval f8

``ev`` is a kind in the low bits plus flag bits. Constants and dtype as in nkaz001/hftbacktest,
``py-hftbacktest/hftbacktest/types.py`` (commit 27f2e9e5d0a27937a53f8f1f8639b7c1e7c12db6):
DEPTH_EVENT = 1, TRADE_EVENT = 2, DEPTH_CLEAR_EVENT = 3, DEPTH_SNAPSHOT_EVENT = 4,
EXCH_EVENT = 1 << 31, LOCAL_EVENT = 1 << 30, BUY_EVENT = 1 << 29, SELL_EVENT = 1 << 28, and
``event_dtype`` with exactly the fields above (``align=True`` adds no padding: all are 8 bytes).
DEPTH_BBO_EVENT = 5 is from hftbacktest's Rust ``types.rs`` ("the best bid and best ask update
event is received").

Mapping to tape rows (only events with LOCAL_EVENT set: they are what a local strategy sees;
exchange-only copies are skipped and counted)

==========================================  ==================================================
hftbacktest event                           tape row
==========================================  ==================================================
DEPTH, DEPTH_SNAPSHOT, DEPTH_BBO            BOOK: side +1 with BUY_EVENT, -1 with SELL_EVENT;
                                            qty is the new absolute size (0 deletes)
DEPTH_CLEAR                                 BOOK_CLEAR (consecutive clears at one local time,
                                            e.g. one per side, become one)
TRADE                                       TRADE, aggressor +1 with BUY_EVENT, -1 with SELL;
                                            trade id from ``ival``
==========================================  ==================================================

hftbacktest has no funding or asset-context event, so :func:`write_npz` drops FUNDING and
ASSET_CTX rows (and says how many). A DEPTH_CLEAR with a side flag clears that side only *up to
its price* in hftbacktest; a tape's BOOK_CLEAR empties both sides, so a lone one-sided clear is
imported as a full clear and reported. :func:`write_npz` writes each BOOK_CLEAR as one clear
with no side flag (``px = 0``), the snapshot levels after it as DEPTH_SNAPSHOT events, and puts
the trade id in ``ival``; every event has both EXCH_EVENT and LOCAL_EVENT set. The instrument
is saved beside ``data`` under the key ``mmlab`` (JSON), which hftbacktest ignores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mmlab.config import InstrumentSpec
from mmlab.data.importers import MAX_SZ_DECIMALS, ImportError_, ImportResult, TapeBuilder, decimals_of, price_tick_option, tick_of_decimals
from mmlab.data.tape import EventKind, Tape

__all__ = [
    "read_npz",
    "write_npz",
    "EVENT_DTYPE",
    "EXCH_EVENT",
    "LOCAL_EVENT",
    "BUY_EVENT",
    "SELL_EVENT",
    "DEPTH_EVENT",
    "TRADE_EVENT",
    "DEPTH_CLEAR_EVENT",
    "DEPTH_SNAPSHOT_EVENT",
    "DEPTH_BBO_EVENT",
]

FORMAT_NAME = "hftbacktest-npz"
DEPTH_EVENT = 1
TRADE_EVENT = 2
DEPTH_CLEAR_EVENT = 3
DEPTH_SNAPSHOT_EVENT = 4
DEPTH_BBO_EVENT = 5
EXCH_EVENT = 1 << 31
LOCAL_EVENT = 1 << 30
BUY_EVENT = 1 << 29
SELL_EVENT = 1 << 28
#: the kind lives in the low byte; the flags are bits 28-31
KIND_MASK = 0xFF
EVENT_DTYPE = np.dtype(
    [
        ("ev", "<u8"),
        ("exch_ts", "<i8"),
        ("local_ts", "<i8"),
        ("px", "<f8"),
        ("qty", "<f8"),
        ("order_id", "<u8"),
        ("ival", "<i8"),
        ("fval", "<f8"),
    ],
    align=True,
)
METADATA_KEY = "mmlab"

_BOOK_KINDS = (DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT, DEPTH_BBO_EVENT)


def read_npz(path: Path, *, strict: bool = True, **options: Any) -> ImportResult:
    """Import an hftbacktest event array (``.npz`` with key ``data``, or a raw ``.npy``).

    Parameters
    ----------
    path : Path
        The file.
    strict : bool
        Raise :class:`ImportError_` at the first bad event (default); when False skip it and list it.
    **options
        ``coin`` (default: saved by :func:`write_npz`, else the file name before the first
        ``_``), ``venue`` (default: saved, else ``"hftbacktest"``), ``sz_decimals`` (default:
        saved, else the most decimals in any size), ``price_tick`` in USD (default: saved; else
        Hyperliquid's significant-figure rule when the venue is ``hyperliquid``; else ``10^−d`` for
        the most decimals ``d`` in any price, flagged in the report as inferred).

    Returns
    -------
    ImportResult
        The tape and its report; rows are the events that carry LOCAL_EVENT.
    """
    unknown = sorted(set(options) - {"coin", "venue", "sz_decimals", "price_tick"})
    if unknown:
        raise ImportError_(f"{FORMAT_NAME}: unknown option {unknown[0]!r}; known: coin, price_tick, sz_decimals, venue")
    price_tick = price_tick_option(options.get("price_tick"), FORMAT_NAME)
    path = Path(path)
    if not path.is_file():
        raise ImportError_(f"{path}: no such file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ImportError_(f"{path}: not a readable .npz/.npy file ({err})") from None
    saved: dict[str, Any] = {}
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            if "data" not in loaded.files:
                raise ImportError_(f"{path}: field 'data' is missing (keys: {', '.join(loaded.files)})")
            events = loaded["data"]
            if METADATA_KEY in loaded.files:
                saved = json.loads(str(loaded[METADATA_KEY]))
    else:
        events = loaded
    missing = [name for name in EVENT_DTYPE.names if events.dtype.names is None or name not in events.dtype.names]
    if missing:
        raise ImportError_(f"{path}: field {missing[0]!r} is missing from the event dtype {events.dtype}")

    builder = TapeBuilder(path, FORMAT_NAME, strict=strict)
    ev = events["ev"].astype(np.uint64)
    kinds = (ev & np.uint64(KIND_MASK)).astype(np.int64).tolist()
    local = ((ev & np.uint64(LOCAL_EVENT)) != 0).tolist()
    buy = ((ev & np.uint64(BUY_EVENT)) != 0).tolist()
    sell = ((ev & np.uint64(SELL_EVENT)) != 0).tolist()
    exch_ts = events["exch_ts"].astype(np.int64).tolist()
    local_ts = events["local_ts"].astype(np.int64).tolist()
    prices = events["px"].astype(np.float64).tolist()
    sizes = events["qty"].astype(np.float64).tolist()
    ivals = events["ival"].astype(np.int64).tolist()
    exchange_only = other_kinds = lone_side_clears = 0
    last_clear_ts: int | None = None
    clear_sides_at_ts: set[str] = set()
    for index in range(len(kinds)):
        if not local[index]:
            exchange_only += 1
            continue
        kind, ts_local, ts_exch = kinds[index], local_ts[index], exch_ts[index]
        # one row per event: row numbers in messages are 1-based event indices
        row = index + 1
        side = 1 if buy[index] else -1 if sell[index] else 0
        if kind == DEPTH_CLEAR_EVENT:
            if last_clear_ts == ts_local:
                clear_sides_at_ts.add("buy" if side == 1 else "sell" if side == -1 else "both")
                continue
            if last_clear_ts is not None and _is_lone_side(clear_sides_at_ts):
                lone_side_clears += 1
            last_clear_ts = ts_local
            clear_sides_at_ts = {"buy" if side == 1 else "sell" if side == -1 else "both"}
            builder.clear(ts_exch, ts_local)
        elif kind in _BOOK_KINDS or kind == TRADE_EVENT:
            price, size = prices[index], sizes[index]
            if side == 0:
                builder.problem(row, "ev", f"event {kind} has neither BUY_EVENT nor SELL_EVENT set")
                continue
            if not (0.0 < price < np.inf):
                builder.problem(row, "px", f"must be positive and finite, got {price!r}")
                continue
            if not (0.0 <= size < np.inf) or (kind == TRADE_EVENT and size == 0.0):
                builder.problem(row, "qty", f"must be {'positive' if kind == TRADE_EVENT else '>= 0'} and finite, got {size!r}")
                continue
            if kind == TRADE_EVENT:
                builder.trade(ts_exch, ts_local, side, price, size, ivals[index])
            else:
                builder.book(ts_exch, ts_local, side, price, size)
        else:
            other_kinds += 1
    if last_clear_ts is not None and _is_lone_side(clear_sides_at_ts):
        lone_side_clears += 1
    if exchange_only:
        builder.note(None, "ev", f"{exchange_only:,} exchange-only events (no LOCAL_EVENT flag) skipped", severity="info")
    if other_kinds:
        builder.note(None, "ev", f"{other_kinds:,} events of kinds other than depth/trade/clear (order events, user events) skipped", severity="info")
    if lone_side_clears:
        builder.note(
            None,
            "ev",
            f"{lone_side_clears:,} one-sided DEPTH_CLEAR events (clear up to a price) imported as full clears",
            severity="warning",
        )
    builder.cannot_check("funding and asset context: hftbacktest's event arrays have no such events")
    builder.cannot_check("exchange-side ordering: only events flagged LOCAL_EVENT are imported")

    coin = options.get("coin") or saved.get("coin") or path.name.split("_")[0].split(".")[0].upper()
    venue = options.get("venue") or saved.get("venue") or "hftbacktest"
    sz_decimals: Any = options.get("sz_decimals", saved.get("sz_decimals"))
    if sz_decimals is None:
        unique_sizes = np.unique(events["qty"])
        sz_decimals = max((decimals_of(repr(float(q))) for q in unique_sizes[np.isfinite(unique_sizes)]), default=0)
        sz_decimals = min(sz_decimals, MAX_SZ_DECIMALS)
    if price_tick is None:
        price_tick = saved.get("price_tick")
    if price_tick is None:
        if str(venue).lower() == "hyperliquid":
            price_tick = 0.0  # InstrumentSpec's Hyperliquid rule: 5 significant figures
        else:
            unique_prices = np.unique(events["px"][events["px"] > 0])
            price_tick = tick_of_decimals(decimals_of(repr(float(p))) for p in unique_prices[np.isfinite(unique_prices)])
            builder.note(
                None, "px", f"price tick {price_tick:g} USD inferred from the decimals of the prices; give option price_tick to override", severity="info"
            )
    try:
        sz_decimals = int(sz_decimals)
        instrument = InstrumentSpec(coin=str(coin), sz_decimals=sz_decimals, price_tick=float(price_tick))
    except (TypeError, ValueError) as err:
        raise ImportError_(f"{FORMAT_NAME}: option 'sz_decimals', 'price_tick' or 'coin' is invalid: {err}") from None
    return builder.finish(instrument, venue=str(venue), extra={"file": str(path)})


def _is_lone_side(sides: set[str]) -> bool:
    return "both" not in sides and len(sides) == 1


def write_npz(tape: Tape, path: str | Path) -> tuple[Path, int]:
    """Write a tape's book and trade rows as hftbacktest events in ``path`` (``.npz``, key ``data``).

    Parameters
    ----------
    tape : Tape
        The tape to convert.
    path : str or Path
        Output file; written compressed with :func:`numpy.savez_compressed`.

    Returns
    -------
    tuple of (Path, int)
        The path written and the number of rows hftbacktest cannot represent and that were
        therefore dropped (FUNDING and ASSET_CTX).
    """
    path = Path(path)
    kind = tape.kind
    keep = np.isin(kind, [EventKind.BOOK, EventKind.BOOK_CLEAR, EventKind.TRADE])
    dropped = int(np.count_nonzero(~keep))
    events = np.zeros(int(np.count_nonzero(keep)), dtype=EVENT_DTYPE)
    kind, side = kind[keep], tape.side[keep]
    ts_local = tape.ts_local[keep]
    flags = np.uint64(EXCH_EVENT | LOCAL_EVENT)
    side_flag = np.where(side == 1, np.uint64(BUY_EVENT), np.where(side == -1, np.uint64(SELL_EVENT), np.uint64(0)))
    # book rows in the same update group as a clear are the levels of a snapshot
    clear_times = ts_local[kind == EventKind.BOOK_CLEAR]
    in_snapshot = np.isin(ts_local, clear_times)
    book_kind = np.where(in_snapshot, np.uint64(DEPTH_SNAPSHOT_EVENT), np.uint64(DEPTH_EVENT))
    event_kind = np.select(
        [kind == EventKind.BOOK, kind == EventKind.TRADE],
        [book_kind, np.full(kind.shape, TRADE_EVENT, dtype=np.uint64)],
        default=np.uint64(DEPTH_CLEAR_EVENT),
    ).astype(np.uint64)
    is_clear = kind == EventKind.BOOK_CLEAR
    events["ev"] = event_kind | flags | np.where(is_clear, np.uint64(0), side_flag)
    events["exch_ts"] = tape.ts_exch[keep]
    events["local_ts"] = ts_local
    events["px"] = np.where(is_clear, 0.0, tape.price[keep])
    events["qty"] = tape.size[keep]
    events["ival"] = tape.trade_id[keep]
    metadata = json.dumps(
        {
            "coin": tape.instrument.coin,
            "sz_decimals": tape.instrument.sz_decimals,
            "price_tick": tape.instrument.price_tick,
            "venue": tape.venue,
            "source": tape.source,
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as stream:  # a file object: numpy would otherwise append ".npz"
        np.savez_compressed(stream, data=events, **{METADATA_KEY: np.array(metadata)})
    return path, dropped
