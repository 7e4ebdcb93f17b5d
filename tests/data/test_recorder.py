"""The websocket recorder against a local Hyperliquid-like server on 127.0.0.1 (never the network).

The server replays the real hftbacktest recording btcusd_20250126.gz (55 messages) to a client once
it has subscribed to all three channels, optionally drops the first connection midway, and
records every text it receives so the tests can check the resubscription.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import signal
import sys
from pathlib import Path

import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket

from mmlab.data.recorder import (
    NS_PER_HOUR,
    Backoff,
    Recorder,
    RecordingWriter,
    read_recording_lines,
    recording_path,
    subscription_messages,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_TIMEOUT_S = 15.0


def _replayed_texts(shared_data: Path) -> list[str]:
    path = shared_data / "hyperliquid-api-samples" / "hftbacktest-ws-recording" / "btcusd_20250126.gz"
    with gzip.open(path, "rt", encoding="utf-8") as stream:
        return [line.rstrip("\n").split(" ", 1)[1] for line in stream if line.strip()]


class FakeHyperliquid:
    """Speaks enough of Hyperliquid's websocket protocol: subscribe, ping/pong, replay, drop.

    Parameters
    ----------
    texts
        Messages to replay, in order, across connections (a reconnect continues where the drop left off).
    drop_after
        Close the first connection after sending this many replayed messages (None: never).
    pause_after
        Stop after this many replayed messages until :attr:`resume` is set (None: never).
    """

    def __init__(self, texts: list[str], *, drop_after: int | None = None, pause_after: int | None = None) -> None:
        self.texts = texts
        self.drop_after = drop_after
        self.pause_after = pause_after
        self.next_index = 0
        self.received: list[list[str]] = []  # per connection, every text the client sent
        self.paused = asyncio.Event()
        self.resume = asyncio.Event()
        self.all_sent = asyncio.Event()
        self.port = 0
        self._server: tornado.httpserver.HTTPServer | None = None

    def start(self) -> None:
        hub = self

        class Handler(tornado.websocket.WebSocketHandler):
            def open(self) -> None:
                self.connection_number = len(hub.received)
                self.received: list[str] = []
                self.subscribed: set[str] = set()
                hub.received.append(self.received)

            def on_message(self, message: str | bytes) -> None:
                assert isinstance(message, str)
                self.received.append(message)
                request = json.loads(message)
                if request["method"] == "ping":
                    self.write_message('{"channel":"pong"}')
                elif request["method"] == "subscribe":
                    self.write_message(
                        json.dumps({"channel": "subscriptionResponse", "data": request}, separators=(",", ":"))
                    )
                    self.subscribed.add(request["subscription"]["type"])
                    if len(self.subscribed) == 3:
                        asyncio.ensure_future(self.replay())

            async def replay(self) -> None:
                sent_here = 0
                while hub.next_index < len(hub.texts):
                    if hub.drop_after is not None and self.connection_number == 0 and sent_here == hub.drop_after:
                        self.close(1012, "test drop")
                        return
                    if hub.pause_after is not None and hub.next_index == hub.pause_after and not hub.resume.is_set():
                        hub.paused.set()
                        await hub.resume.wait()
                    await self.write_message(hub.texts[hub.next_index])
                    hub.next_index += 1
                    sent_here += 1
                hub.all_sent.set()

        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self._server = tornado.httpserver.HTTPServer(tornado.web.Application([(r"/ws", Handler)]))
        self._server.add_sockets(sockets)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()


def _all_lines(paths: list[Path]) -> list[tuple[int, bytes]]:
    """Every line of the files, each checked to decompress completely."""
    out = []
    for path in paths:
        lines, complete = read_recording_lines(path)
        assert complete, f"{path} did not decompress completely"
        with gzip.open(path, "rb") as stream:  # the plain reader the importer would use agrees
            assert stream.read().split(b"\n")[:-1] == lines
        for line in lines:
            ts, raw = line.split(b" ", 1)
            out.append((int(ts), raw))
    return out


def _channel(raw: bytes) -> str:
    return json.loads(raw)["channel"]


def _files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.jsonl.gz"))


def test_reconnects_resubscribes_and_records_every_message_once(shared_data: Path, tmp_path: Path) -> None:
    texts = _replayed_texts(shared_data)
    drop_after = 20

    async def scenario() -> tuple[FakeHyperliquid, object]:
        server = FakeHyperliquid(texts, drop_after=drop_after)
        server.start()
        recorder = Recorder(
            server.url, "BTC", tmp_path, backoff=Backoff(initial_delay_s=0.05, max_delay_s=0.2, seed=7), fsync=False
        )
        task = asyncio.ensure_future(recorder.run())
        await asyncio.wait_for(server.all_sent.wait(), TEST_TIMEOUT_S)
        await asyncio.sleep(0.2)  # let the last messages arrive before stopping
        recorder.stop()
        summary = await asyncio.wait_for(task, TEST_TIMEOUT_S)
        server.stop()
        return server, summary

    server, summary = asyncio.run(scenario())

    # the subscriptions were sent on both connections, in full
    assert len(server.received) == 2
    for received in server.received:
        assert sorted(received) == sorted(subscription_messages("BTC"))

    files = _files(tmp_path)
    assert files and summary.paths and set(summary.paths) == set(files)
    lines = _all_lines(files)
    ts = [t for t, _ in lines]
    assert ts == sorted(ts)

    # every replayed message exactly once, in order, byte for byte
    replayed = [raw.decode() for _, raw in lines if _channel(raw) in ("l2Book", "trades", "activeAssetCtx")]
    assert replayed == texts

    channels = [_channel(raw) for _, raw in lines]
    assert channels[0] == "mmlab.session" and json.loads(lines[0][1])["data"]["event"] == "start"
    assert json.loads(lines[-1][1])["data"] == {"event": "stop", "coin": "BTC", "url": server.url}
    assert channels.count("subscriptionResponse") == 6

    # one gap, from the last message before the drop to the first after the reconnect
    (gap_index,) = [i for i, c in enumerate(channels) if c == "mmlab.gap"]
    gap = json.loads(lines[gap_index][1])["data"]
    assert gap["since_ns"] < gap["until_ns"]
    assert "1012" in gap["reason"] and "test drop" in gap["reason"]
    assert gap["since_ns"] == lines[gap_index - 2][0]  # the line before the reconnect marker
    assert lines[gap_index - 2][1].decode() == texts[drop_after - 1]
    assert json.loads(lines[gap_index - 1][1])["data"]["event"] == "reconnect"
    assert gap["until_ns"] == lines[gap_index + 1][0] == lines[gap_index][0]
    assert summary.gaps == 1 and summary.connections == 2


def test_hourly_rotation_puts_each_line_in_the_file_of_its_hour(shared_data: Path, tmp_path: Path) -> None:
    texts = _replayed_texts(shared_data)
    # 2025-01-26 10:59:59.800 UTC, 10 ms per clock reading: the hour turns after ~20 lines
    ts_start_ns = 1_737_889_199_800_000_000
    readings = iter(range(ts_start_ns, ts_start_ns + 10**12, 10_000_000))

    async def scenario() -> FakeHyperliquid:
        server = FakeHyperliquid(texts)
        server.start()
        # 3 subscription answers + every replayed message, then the bound stops the recorder
        recorder = Recorder(server.url, "BTC", tmp_path, clock=lambda: next(readings), max_messages=3 + len(texts), fsync=False)
        await asyncio.wait_for(recorder.run(), TEST_TIMEOUT_S)
        server.stop()
        return server

    asyncio.run(scenario())
    files = _files(tmp_path)
    assert files == [tmp_path / "BTC" / "20250126" / "10.jsonl.gz", tmp_path / "BTC" / "20250126" / "11.jsonl.gz"]
    for path in files:
        lines = _all_lines([path])
        assert lines
        for ts, _ in lines:
            assert recording_path(tmp_path, "BTC", ts) == path
            assert ts // NS_PER_HOUR == (ts_start_ns // NS_PER_HOUR) + files.index(path)
    replayed = [raw.decode() for _, raw in _all_lines(files) if _channel(raw) in ("l2Book", "trades")]
    assert replayed == texts


def test_pings_keep_the_connection_and_max_seconds_stops(tmp_path: Path) -> None:
    async def scenario() -> FakeHyperliquid:
        server = FakeHyperliquid([])  # subscribes, answers pings, sends no data
        server.start()
        recorder = Recorder(server.url, "ETH", tmp_path, ping_interval_s=0.1, max_seconds=0.6, fsync=False)
        summary = await asyncio.wait_for(recorder.run(), TEST_TIMEOUT_S)
        server.stop()
        assert 0.6 <= summary.duration_s < 3.0
        return server

    server = asyncio.run(scenario())
    (received,) = server.received
    assert received.count('{"method":"ping"}') >= 3
    channels = [_channel(raw) for _, raw in _all_lines(_files(tmp_path))]
    assert channels.count("pong") >= 3
    assert channels[-1] == "mmlab.session" and "mmlab.gap" not in channels


def test_unreachable_server_retries_with_backoff_and_records_the_open_gap(tmp_path: Path) -> None:
    # a port bound but never listened on refuses connections, without leaving the host
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    for sock in sockets:
        sock.close()
    recorder = Recorder(
        f"ws://127.0.0.1:{port}/ws",
        "BTC",
        tmp_path,
        backoff=Backoff(initial_delay_s=0.02, max_delay_s=0.1, seed=1),
        max_seconds=0.5,
        fsync=False,
    )
    summary = asyncio.run(asyncio.wait_for(recorder.run(), TEST_TIMEOUT_S))
    assert summary.messages == 0 and summary.gaps == 1
    lines = _all_lines(_files(tmp_path))
    gap = json.loads(lines[-2][1])["data"]
    assert gap["since_ns"] == lines[0][0] < gap["until_ns"] == lines[-1][0]
    assert "connect failed" in gap["reason"] and "had not come back" in gap["reason"]


def test_backoff_doubles_to_its_cap_with_bounded_seeded_jitter() -> None:
    backoff = Backoff(initial_delay_s=0.5, max_delay_s=30.0, jitter_fraction=0.5, seed=3)
    rng = random.Random(backoff.seed)
    delays_s = [backoff.delay_s(k, rng) for k in range(12)]
    for k, delay_s in enumerate(delays_s):
        ceiling_s = min(30.0, 0.5 * 2**k)
        assert 0.5 * ceiling_s < delay_s <= ceiling_s
    same_seed = random.Random(backoff.seed)
    assert delays_s == [backoff.delay_s(k, same_seed) for k in range(12)]  # reproducible for a seed
    assert backoff.delay_s(10_000, rng) <= 30.0
    with pytest.raises(ValueError):
        Backoff(initial_delay_s=1.0, max_delay_s=0.5)


def test_file_cut_anywhere_yields_every_line_up_to_the_last_flush(tmp_path: Path) -> None:
    rng = random.Random(11)
    ts_ns = 1_737_889_000_000_000_000
    flushed: list[tuple[int, int]] = []  # (file size in bytes, lines written) after each flush
    with RecordingWriter(tmp_path, "BTC", fsync=False) as writer:
        for batch in range(20):
            for _ in range(rng.randint(1, 30)):
                ts_ns += rng.randint(1, 10**6)
                writer.write(ts_ns, json.dumps({"channel": "trades", "data": rng.random()}).encode())
            writer.flush()
            (path,) = writer.paths
            flushed.append((path.stat().st_size, writer.lines_written))
    full = path.read_bytes()
    all_lines, complete = read_recording_lines(path)
    assert complete and len(all_lines) == flushed[-1][1]
    for cut in sorted(rng.sample(range(len(full)), 60)) + [size for size, _ in flushed[:-1]]:
        cut_path = tmp_path / "cut.jsonl.gz"
        cut_path.write_bytes(full[:cut])
        lines, complete = read_recording_lines(cut_path)
        expected = max((count for size, count in flushed if size <= cut), default=0)
        assert not complete
        assert len(lines) >= expected and lines == all_lines[: len(lines)]


def test_reopening_a_crashed_hour_repairs_it_and_appends(tmp_path: Path) -> None:
    ts_ns = 1_737_889_000_000_000_000
    writer = RecordingWriter(tmp_path, "BTC", fsync=False)
    for i in range(5):
        writer.write(ts_ns + i, b'{"n":%d}' % i)
    writer.flush()
    (path,) = writer.paths
    crashed = path.read_bytes() + b"\x00garbage"  # a flushed prefix and an unterminated tail
    writer.close()
    path.write_bytes(crashed)
    with RecordingWriter(tmp_path, "BTC", fsync=False) as again:
        again.write(ts_ns + 10, b'{"n":10}')
    lines = _all_lines([path])
    assert [raw for _, raw in lines] == [b'{"n":%d}' % i for i in range(5)] + [b'{"n":10}']
    assert len(list(path.parent.glob("*.damaged-*"))) == 1


def test_killed_recorder_keeps_every_line_flushed_before_the_kill(shared_data: Path, tmp_path: Path) -> None:
    """SIGKILL the ``mmlab record`` process; everything received a second before must be on disk."""
    texts = _replayed_texts(shared_data)
    pause_after = 30

    async def scenario() -> int:
        server = FakeHyperliquid(texts, pause_after=pause_after)
        server.start()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mmlab.cli", "record", "--coin", "BTC", "--url", server.url, "--out", str(tmp_path),
            "--max-seconds", "20", cwd=REPO_ROOT, stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await asyncio.wait_for(server.paused.wait(), TEST_TIMEOUT_S)
            await asyncio.sleep(1.5)  # > the 0.5 s flush period: the first batch must be on disk
            server.resume.set()
            await asyncio.wait_for(server.all_sent.wait(), TEST_TIMEOUT_S)
            process.send_signal(signal.SIGKILL)  # mid-stream, before the next flush is likely
        finally:
            if process.returncode is None:
                process.kill()
            return_code = await process.wait()
            server.stop()
        return return_code

    assert asyncio.run(scenario()) == -signal.SIGKILL
    (path,) = _files(tmp_path)
    lines, complete = read_recording_lines(path)
    assert not complete  # killed: no gzip trailer
    raws = [line.split(b" ", 1)[1] for line in lines]
    replayed = [raw.decode() for raw in raws if _channel(raw) in ("l2Book", "trades")]
    assert len(replayed) >= pause_after
    assert replayed == texts[: len(replayed)]


def test_sigterm_stops_the_command_cleanly(shared_data: Path, tmp_path: Path) -> None:
    texts = _replayed_texts(shared_data)

    async def scenario() -> int:
        server = FakeHyperliquid(texts)
        server.start()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mmlab.cli", "record", "--coin", "BTC", "--url", server.url, "--out", str(tmp_path),
            "--max-seconds", "20", cwd=REPO_ROOT, stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await asyncio.wait_for(server.all_sent.wait(), TEST_TIMEOUT_S)
            await asyncio.sleep(0.2)
            process.send_signal(signal.SIGTERM)
            return_code = await asyncio.wait_for(process.wait(), TEST_TIMEOUT_S)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            server.stop()
        return return_code

    assert asyncio.run(scenario()) == 0
    lines = _all_lines(_files(tmp_path))
    assert [raw.decode() for _, raw in lines if _channel(raw) in ("l2Book", "trades")] == texts
    assert json.loads(lines[-1][1])["data"]["event"] == "stop"


def test_a_silent_connection_is_dropped_and_replaced(tmp_path: Path) -> None:
    async def scenario() -> FakeHyperliquid:
        server = FakeHyperliquid([])  # answers the subscriptions, then says nothing
        server.start()
        recorder = Recorder(
            server.url,
            "BTC",
            tmp_path,
            ping_interval_s=10.0,
            stale_after_s=0.3,
            backoff=Backoff(initial_delay_s=0.05, max_delay_s=0.1, seed=2),
            max_seconds=1.0,
            fsync=False,
        )
        await asyncio.wait_for(recorder.run(), TEST_TIMEOUT_S)
        server.stop()
        return server

    server = asyncio.run(scenario())
    assert len(server.received) >= 2
    gaps = [json.loads(raw)["data"] for _, raw in _all_lines(_files(tmp_path)) if _channel(raw) == "mmlab.gap"]
    assert gaps and all(gap["reason"].startswith("no message for") for gap in gaps)
    assert all(gap["since_ns"] < gap["until_ns"] for gap in gaps)
