"""Record Hyperliquid's public websocket feed for one coin into hourly gzip files.

:class:`Recorder` subscribes to ``l2Book``, ``trades`` and ``activeAssetCtx`` for one coin and
writes every received message, byte for byte, through a :class:`RecordingWriter`.

File format
-----------
Gzip text, one line per received message::

    <local receive time, integer ns since the epoch> <the raw JSON text as received>\\n

A file holds one UTC hour of local receive times: ``<out>/<COIN>/<YYYYMMDD>/<HH>.jsonl.gz``.
The recorder's own markers are lines of the same shape, on two channels of its own:

- ``{"channel":"mmlab.session","data":{"event":"start"|"reconnect"|"stop","coin":...,"url":...}}``
- ``{"channel":"mmlab.gap","data":{"since_ns":...,"until_ns":...,"reason":...}}``, where
  ``since_ns`` is the receive time of the last message before the connection dropped (or of the
  session start, if none had arrived) and ``until_ns`` the receive time of the first message of
  the new connection. Both markers are written when the feed comes back, just before that first
  message and with its timestamp; a gap still open at stop is closed at the stop time.

Crash safety
------------
The gzip stream is sync-flushed (``Z_SYNC_FLUSH``: the deflate stream ends on a byte boundary
with everything written so far decodable) and the file flushed to the OS and fsynced every
``flush_interval_s`` (at most one second), so a kill loses at most that long. A file cut anywhere
decompresses up to its last flush; :func:`read_recording_lines` reads such a file. Reopening an
hour's file that a crash left unterminated rewrites its readable lines as one complete gzip
member (the damaged original is kept beside it) before appending, because a new gzip member
appended to an unterminated deflate stream would be unreadable.

Reconnection
------------
After a drop the recorder waits ``min(max_delay_s, initial_delay_s · 2^k) · (1 − jitter · u)``
(``k`` failed attempts so far, ``u ~ U[0, 1)`` from a seeded RNG), reconnects and re-sends every
subscription. Hyperliquid closes connections idle for 60 s, so the recorder sends
``{"method":"ping"}`` every ``ping_interval_s`` and drops a connection that has delivered
nothing (not even a ``pong``) for ``stale_after_s``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import json
import logging
import os
import random
import signal
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable

if TYPE_CHECKING:
    from tornado.websocket import WebSocketClientConnection

__all__ = [
    "DEFAULT_URL",
    "Backoff",
    "Recorder",
    "RecordingSummary",
    "RecordingWriter",
    "read_recording_lines",
    "recording_path",
    "subscription_messages",
]

logger = logging.getLogger(__name__)

#: Hyperliquid's mainnet websocket endpoint
DEFAULT_URL = "wss://api.hyperliquid.xyz/ws"

#: the channels recorded for a coin, as Hyperliquid's subscription types
SUBSCRIPTION_TYPES = ("l2Book", "trades", "activeAssetCtx")

NS_PER_S = 1_000_000_000
NS_PER_HOUR = 3600 * NS_PER_S

_PING_TEXT = '{"method":"ping"}'
_READ_CHUNK_BYTES = 1 << 16


def _compact_json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def subscription_messages(coin: str) -> list[str]:
    """The subscribe messages for every recorded channel of ``coin``, as JSON text."""
    return [
        _compact_json({"method": "subscribe", "subscription": {"type": kind, "coin": coin}})
        for kind in SUBSCRIPTION_TYPES
    ]


def recording_path(out_dir: Path | str, coin: str, ts_ns: int) -> Path:
    """The file holding a line received at ``ts_ns``: ``<out>/<COIN>/<YYYYMMDD>/<HH>.jsonl.gz`` (UTC)."""
    hour_start = dt.datetime.fromtimestamp((ts_ns // NS_PER_HOUR) * 3600, tz=dt.timezone.utc)
    return Path(out_dir) / coin / hour_start.strftime("%Y%m%d") / f"{hour_start:%H}.jsonl.gz"


def read_recording_lines(path: Path | str) -> tuple[list[bytes], bool]:
    """Every complete line of a recording file, tolerating a cut or unterminated end.

    Parameters
    ----------
    path
        A gzip file of one or more members, possibly truncated anywhere.

    Returns
    -------
    lines
        The complete lines (without their newline) up to the first undecodable byte; a partial
        last line is dropped.
    complete
        True when every gzip member ended properly and the text ends with a newline.
    """
    data = Path(path).read_bytes()
    pieces: list[bytes] = []
    complete = True
    position = 0
    while position < len(data):
        decompressor = zlib.decompressobj(wbits=31)  # 31: expect a gzip header and trailer
        corrupt = False
        while position < len(data) and not decompressor.eof and not corrupt:
            chunk = data[position : position + _READ_CHUNK_BYTES]
            before_chunk = decompressor.copy()
            try:
                pieces.append(decompressor.decompress(chunk))
                position += len(chunk) - len(decompressor.unused_data)
            except zlib.error:
                # replay the chunk a byte at a time to keep everything before the corrupt byte
                decompressor, corrupt = before_chunk, True
                for offset in range(len(chunk)):
                    try:
                        pieces.append(decompressor.decompress(chunk[offset : offset + 1]))
                    except zlib.error:
                        break
        if corrupt or not decompressor.eof:
            complete = False
            break
    text = b"".join(pieces)
    lines = text.split(b"\n")
    if lines[-1]:
        complete = False
    return lines[:-1], complete


class RecordingWriter:
    """Appends ``<ts_ns> <raw>`` lines to hourly gzip files and flushes them on request.

    Parameters
    ----------
    out_dir
        Root folder; files go to ``<out_dir>/<coin>/<YYYYMMDD>/<HH>.jsonl.gz``.
    coin
        Coin name, used as a folder name.
    fsync
        Also ``os.fsync`` on every flush, so a power loss (not only a kill) keeps flushed lines.
    compress_level
        zlib level; 6 keeps up with a busy book at a fraction of a core.
    """

    def __init__(self, out_dir: Path | str, coin: str, *, fsync: bool = True, compress_level: int = 6) -> None:
        if not coin or "/" in coin or os.sep in coin or coin in (".", ".."):
            raise ValueError(f"coin {coin!r} cannot name a folder")
        self.out_dir = Path(out_dir)
        self.coin = coin
        self.fsync = fsync
        self.compress_level = compress_level
        self.paths: list[Path] = []
        self.lines_written = 0
        self._hour: int | None = None
        self._raw_file: BinaryIO | None = None
        self._gzip_file: gzip.GzipFile | None = None
        self._dirty = False

    def write(self, ts_ns: int, raw: bytes) -> None:
        """Write one line, switching files when ``ts_ns`` falls in another UTC hour."""
        hour = ts_ns // NS_PER_HOUR
        if hour != self._hour:
            self.close()
            self._open(ts_ns)
            self._hour = hour
        # a raw newline would split the line; JSON allows only whitespace there, so a space is equivalent
        if b"\n" in raw or b"\r" in raw:
            raw = raw.replace(b"\r", b" ").replace(b"\n", b" ")
        assert self._gzip_file is not None
        self._gzip_file.write(b"%d %s\n" % (ts_ns, raw))
        self.lines_written += 1
        self._dirty = True

    def flush(self) -> None:
        """Sync-flush the gzip stream and push the file to the OS (and disk, if ``fsync``)."""
        if not self._dirty or self._gzip_file is None or self._raw_file is None:
            return
        self._gzip_file.flush(zlib.Z_SYNC_FLUSH)  # also flushes the file object to the OS
        if self.fsync:
            os.fsync(self._raw_file.fileno())
        self._dirty = False

    def close(self) -> None:
        """Terminate the gzip member and close the current file, if any."""
        if self._gzip_file is None or self._raw_file is None:
            return
        self._gzip_file.close()  # writes the gzip trailer; leaves the raw file open
        self._raw_file.flush()
        if self.fsync:
            os.fsync(self._raw_file.fileno())
        self._raw_file.close()
        self._gzip_file = None
        self._raw_file = None
        self._hour = None
        self._dirty = False

    def _open(self, ts_ns: int) -> None:
        path = recording_path(self.out_dir, self.coin, ts_ns)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size > 0:
            self._repair(path)
        self._raw_file = open(path, "ab")
        # a new member appended to a complete file: gzip readers concatenate members
        self._gzip_file = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw_file, compresslevel=self.compress_level)
        if path not in self.paths:
            self.paths.append(path)

    @staticmethod
    def _repair(path: Path) -> None:
        lines, complete = read_recording_lines(path)
        if complete:
            return
        damaged = path.with_name(f"{path.name}.damaged-{time.time_ns()}")
        repaired = path.with_name(f"{path.name}.repair")
        with gzip.open(repaired, "wb") as stream:
            stream.writelines(line + b"\n" for line in lines)
        os.replace(path, damaged)
        os.replace(repaired, path)
        logger.warning("%s ended unterminated; kept %d readable lines, original moved to %s", path, len(lines), damaged)

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Reconnection delays: exponential, capped, with multiplicative jitter.

    ``delay_s(k) = min(max_delay_s, initial_delay_s · 2^k) · (1 − jitter_fraction · u)``, ``u ~ U[0, 1)``;
    jitter keeps many recorders from reconnecting in lockstep after a venue-wide drop.
    """

    initial_delay_s: float = 0.5
    max_delay_s: float = 30.0
    jitter_fraction: float = 0.5
    seed: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.initial_delay_s <= self.max_delay_s:
            raise ValueError(f"need 0 < initial_delay_s <= max_delay_s, got {self.initial_delay_s}, {self.max_delay_s}")
        if not 0 <= self.jitter_fraction < 1:
            raise ValueError(f"jitter_fraction must be in [0, 1), got {self.jitter_fraction}")

    def delay_s(self, failed_attempts: int, rng: random.Random) -> float:
        """The wait before the next attempt after ``failed_attempts`` consecutive failures."""
        # the exponent is capped so a recorder left failing for days cannot overflow a float
        ceiling_s = min(self.max_delay_s, self.initial_delay_s * 2.0 ** min(failed_attempts, 64))
        return ceiling_s * (1.0 - self.jitter_fraction * rng.random())


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingSummary:
    """What one :meth:`Recorder.run` did."""

    messages: int
    """messages received from the venue (subscription answers and pongs included)"""
    connections: int
    """websocket connections that delivered at least one message"""
    gaps: int
    """gap markers written"""
    paths: tuple[Path, ...]
    """files written to, in order of first use"""
    duration_s: float
    """wall time of the run"""


class Recorder:
    """Records one coin's public feed until stopped or a bound is reached.

    Parameters
    ----------
    url
        Websocket endpoint (``wss://api.hyperliquid.xyz/ws``; a local server in tests).
    coin
        Hyperliquid coin name, for example ``"BTC"``.
    out_dir
        Root of the recordings.
    clock
        Local receive time in integer ns since the epoch; injectable so tests can cross hours.
    backoff
        Reconnection delays (seed its RNG for reproducible tests).
    ping_interval_s
        Application-level ping period; Hyperliquid drops connections idle for 60 s.
    stale_after_s
        Drop and reconnect when nothing at all arrived for this long.
    flush_interval_s
        Period of the sync flush; a kill loses at most this long (must be ≤ 1 s).
    connect_timeout_s
        Limit on opening a connection (TCP, TLS and the websocket handshake).
    max_seconds, max_messages
        Stop after this wall time or this many received messages (None: no bound).
    fsync
        Passed to :class:`RecordingWriter`.
    handle_signals
        Stop cleanly on SIGINT/SIGTERM (only from the main thread; the CLI sets it).
    """

    def __init__(
        self,
        url: str,
        coin: str,
        out_dir: Path | str,
        *,
        clock: Callable[[], int] = time.time_ns,
        backoff: Backoff = Backoff(),
        ping_interval_s: float = 20.0,
        stale_after_s: float = 60.0,
        flush_interval_s: float = 0.5,
        connect_timeout_s: float = 10.0,
        max_seconds: float | None = None,
        max_messages: int | None = None,
        fsync: bool = True,
        handle_signals: bool = False,
    ) -> None:
        if not 0 < flush_interval_s <= 1.0:
            raise ValueError(f"flush_interval_s must be in (0, 1] to lose at most a second, got {flush_interval_s}")
        if ping_interval_s <= 0 or stale_after_s <= 0 or connect_timeout_s <= 0:
            raise ValueError("ping_interval_s, stale_after_s and connect_timeout_s must be > 0")
        self.url = url
        self.coin = coin
        self.out_dir = Path(out_dir)
        self.clock = clock
        self.backoff = backoff
        self.ping_interval_s = ping_interval_s
        self.stale_after_s = stale_after_s
        self.flush_interval_s = flush_interval_s
        self.connect_timeout_s = connect_timeout_s
        self.max_seconds = max_seconds
        self.max_messages = max_messages
        self.handle_signals = handle_signals
        self._writer = RecordingWriter(out_dir, coin, fsync=fsync)
        self._rng = random.Random(backoff.seed)
        self._stop_event = asyncio.Event()
        self._messages = 0
        self._connections = 0
        self._gaps = 0
        self._ts_last_message_ns: int | None = None
        self._ts_start_ns = 0
        self._pending_gap: tuple[int, str] | None = None  # (since_ns, reason) until the feed is back
        self._drop_reason: str | None = None
        self._monotonic_last_receive_s = 0.0

    def stop(self) -> None:
        """Ask the recorder to finish: it closes the connection, writes the stop line and returns."""
        self._stop_event.set()

    async def run(self) -> RecordingSummary:
        """Record until :meth:`stop`, a signal, ``max_seconds`` or ``max_messages``."""
        loop = asyncio.get_running_loop()
        start_s = loop.time()
        installed_signals = self._install_signal_handlers(loop)
        deadline = loop.call_later(self.max_seconds, self.stop) if self.max_seconds is not None else None
        flusher = asyncio.create_task(self._flush_periodically())
        self._ts_start_ns = self.clock()
        self._write_marker(self._ts_start_ns, "mmlab.session", self._session_data("start"))
        failed_attempts = 0
        try:
            while not self._stop_event.is_set():
                connected_s = loop.time()
                reason = await self._connect_and_record()
                if self._stop_event.is_set():
                    break
                if self._pending_gap is None:
                    since_ns = self._ts_last_message_ns if self._ts_last_message_ns is not None else self._ts_start_ns
                    self._pending_gap = (since_ns, reason)
                logger.warning("%s %s: %s; reconnecting", self.coin, self.url, reason)
                # a connection that lived a full backoff period was healthy: start the ladder again
                if loop.time() - connected_s >= self.backoff.max_delay_s:
                    failed_attempts = 0
                delay_s = self.backoff.delay_s(failed_attempts, self._rng)
                failed_attempts += 1
                try:
                    await asyncio.wait_for(self._stop_event.wait(), delay_s)
                except TimeoutError:
                    pass
        finally:
            flusher.cancel()
            if deadline is not None:
                deadline.cancel()
            for signal_number in installed_signals:
                loop.remove_signal_handler(signal_number)
            ts_stop_ns = self.clock()
            if self._pending_gap is not None:
                since_ns, reason = self._pending_gap
                self._write_gap(since_ns, ts_stop_ns, f"{reason}; the feed had not come back at stop")
            self._write_marker(ts_stop_ns, "mmlab.session", self._session_data("stop"))
            self._writer.close()
        return RecordingSummary(
            messages=self._messages,
            connections=self._connections,
            gaps=self._gaps,
            paths=tuple(self._writer.paths),
            duration_s=loop.time() - start_s,
        )

    async def _connect_and_record(self) -> str:
        """One connection's life; returns why it ended."""
        from tornado.httpclient import HTTPRequest
        from tornado.iostream import StreamClosedError
        from tornado.websocket import WebSocketClosedError, websocket_connect

        request = HTTPRequest(self.url, connect_timeout=self.connect_timeout_s, request_timeout=self.connect_timeout_s)
        # tornado's protocol pings are off: Hyperliquid expects its own {"method":"ping"}
        connecting = asyncio.ensure_future(websocket_connect(request, ping_interval=None))
        stopping = asyncio.ensure_future(self._stop_event.wait())
        await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not connecting.done():
            connecting.cancel()
            return "stopped while connecting"
        try:
            connection = connecting.result()
        except Exception as error:  # refused, DNS, TLS, timeout, HTTP status: all mean "try again"
            return f"connect failed: {type(error).__name__}: {error}"
        if self._stop_event.is_set():
            connection.close()
            return "stopped while connecting"

        self._drop_reason = None
        self._monotonic_last_receive_s = asyncio.get_running_loop().time()
        keeper = asyncio.create_task(self._keep_alive(connection))
        first_message = True
        try:
            for text in subscription_messages(self.coin):
                await connection.write_message(text)
            while True:
                message = await connection.read_message()
                if message is None:
                    break
                self._on_message(message, first_message)
                first_message = False
                if self._stop_event.is_set():
                    break
        except (WebSocketClosedError, StreamClosedError):
            pass
        finally:
            keeper.cancel()
            connection.close()
        if self._drop_reason is not None:
            return self._drop_reason
        if connection.close_code is not None:
            return f"closed by the server: code {connection.close_code} {connection.close_reason or ''}".rstrip()
        return "connection lost without a close frame"

    def _on_message(self, message: str | bytes, first_of_connection: bool) -> None:
        ts_receive_ns = self.clock()
        self._monotonic_last_receive_s = asyncio.get_running_loop().time()
        if first_of_connection:
            self._connections += 1
            if self._pending_gap is not None:
                since_ns, reason = self._pending_gap
                self._write_marker(ts_receive_ns, "mmlab.session", self._session_data("reconnect"))
                self._write_gap(since_ns, ts_receive_ns, reason)
                self._pending_gap = None
        raw = message.encode("utf-8") if isinstance(message, str) else message
        self._writer.write(ts_receive_ns, raw)
        self._ts_last_message_ns = ts_receive_ns
        self._messages += 1
        if self.max_messages is not None and self._messages >= self.max_messages:
            self.stop()

    async def _keep_alive(self, connection: WebSocketClientConnection) -> None:
        """Ping on schedule; close the connection on stop or when it has gone silent."""
        from tornado.iostream import StreamClosedError
        from tornado.websocket import WebSocketClosedError

        loop = asyncio.get_running_loop()
        next_ping_s = loop.time() + self.ping_interval_s
        while True:
            now_s = loop.time()
            wake_s = min(next_ping_s, self._monotonic_last_receive_s + self.stale_after_s)
            try:
                await asyncio.wait_for(self._stop_event.wait(), max(wake_s - now_s, 0.0))
                connection.close(1000, "recorder stopping")
                return
            except TimeoutError:
                pass
            now_s = loop.time()
            silent_s = now_s - self._monotonic_last_receive_s
            if silent_s >= self.stale_after_s:
                self._drop_reason = f"no message for {silent_s:.1f} s"
                connection.close(1000, "stale")
                return
            if now_s >= next_ping_s:
                try:
                    await connection.write_message(_PING_TEXT)
                except (WebSocketClosedError, StreamClosedError):
                    return
                next_ping_s = now_s + self.ping_interval_s

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval_s)
            self._writer.flush()

    def _session_data(self, event: str) -> dict[str, str]:
        return {"event": event, "coin": self.coin, "url": self.url}

    def _write_marker(self, ts_ns: int, channel: str, data: dict[str, object]) -> None:
        self._writer.write(ts_ns, _compact_json({"channel": channel, "data": data}).encode("utf-8"))

    def _write_gap(self, since_ns: int, until_ns: int, reason: str) -> None:
        self._write_marker(until_ns, "mmlab.gap", {"since_ns": since_ns, "until_ns": until_ns, "reason": reason})
        self._gaps += 1

    def _install_signal_handlers(self, loop: asyncio.AbstractEventLoop) -> list[int]:
        if not self.handle_signals:
            return []
        installed = []
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signal_number, self.stop)
            installed.append(signal_number)
        return installed
