"""The compiled engine gives exactly the reference SimVenue's results; its pieces equal mmlab's.

Real tapes (Binance BTCUSDT depth diffs, the Hyperliquid collector's BTC snapshots, a synthetic
market) are replayed through both engines with the same strategy (a fixed-spread quoter at the
touch, the full pipeline, or a seeded random strategy that sends every kind of action: PLACE,
CANCEL, MODIFY and TAKE), under every queue model, with random order and response latencies
and the recorded feed latency. Funding rows are added to each tape (none of these short
recordings contains a funding time) so that payments are exercised too. Everything the strategy
and the account see must be identical: every update (book, open orders, pending cancels,
position), every fill (ts, order id, side, price, size, fee), rejections, failed cancels, funding
payments and cash.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmlab.config import InstrumentSpec, SimConfig, StrategyConfig
from mmlab.data.synth import SynthConfig, generate
from mmlab.data.tape import EventKind, Tape
from mmlab.pipeline import Pipeline
from mmlab.sim import ProbabilisticQueue, SimVenue, make_sim_venue
from mmlab.sim.baselines import FixedSpreadQuoter
from mmlab.sim.engine import (
    FastSimVenue,
    _grid_above,
    _grid_below,
    _grid_round,
    _on_depth,
    _round_size,
    _tick_units,
    queue_model_code,
    run_fixed_spread,
)
from mmlab.sim.models import queue_model_from_name
from mmlab.testing import make_tape
from mmlab.types import ActionKind, OrderAction, Side

QUEUE_MODELS = ("risk_averse", "power:2", "log", "power2:2", "log2", "power3:3")
SLICE_S = 30.0
STEP_NS = 100_000_000  # a quote cycle every 100 ms


def random_latencies(seed: int, **fields) -> SimConfig:
    """Drawn order and response latencies, and the feed latency recorded on the tape."""
    return SimConfig(
        order_latency_samples_s=(0.004, 0.015, 0.03, 0.08, 0.25),
        response_latency_samples_s=(0.001, 0.006, 0.02, 0.12),
        latency_seed=seed,
        feed_latency_mode="recorded",
        feed_latency_s=0.015,
        **fields,
    )


def with_funding(tape: Tape, every_s: float) -> Tape:
    """``tape`` plus a FUNDING row every ``every_s`` of local time, at the last trade's price.

    The rates alternate in sign; ``ts_exch`` carries the tape's median recorded delay.
    """
    first, last = int(tape.ts_local[0]), int(tape.ts_local[-1])
    times = np.arange(first + int(every_s * 1e9), last, int(every_s * 1e9), dtype=np.int64)
    trades = np.flatnonzero(tape.kind == EventKind.TRADE)
    delay = int(np.median(tape.ts_local - tape.ts_exch))
    columns = {name: getattr(tape, name) for name in ("ts_exch", "ts_local", "kind", "side", "price", "size", "rate", "trade_id")}
    at = np.searchsorted(tape.ts_local, times, side="right")
    previous_trade = trades[np.maximum(np.searchsorted(trades, at, side="left") - 1, 0)]
    rates = np.where(np.arange(times.size) % 2 == 0, 1.3e-4, -0.7e-4)
    insert = {
        "ts_exch": times - delay,
        "ts_local": times,
        "kind": np.full(times.size, int(EventKind.FUNDING)),
        "side": np.zeros(times.size),
        "price": tape.price[previous_trade],
        "size": np.zeros(times.size),
        "rate": rates,
        "trade_id": np.zeros(times.size),
    }
    merged = {name: np.insert(columns[name], at, insert[name].astype(columns[name].dtype)) for name in columns}
    return Tape.from_columns(
        merged, instrument=tape.instrument, venue=tape.venue, source=tape.source, funding_interval_s=tape.funding_interval_s
    )


@pytest.fixture(scope="module")
def tapes(binance_btcusdt, hyperliquid_btc) -> dict[str, Tape]:
    """30-second slices of the two real tapes and a synthetic market, with funding rows."""
    synthetic = generate(SynthConfig(minutes=0.5, seed=11)).tape
    sliced = {}
    for name, tape in (("binance", binance_btcusdt), ("hyperliquid", hyperliquid_btc), ("synthetic", synthetic)):
        first = int(tape.ts_local[0])
        sliced[name] = with_funding(tape.slice_time(first, first + int(SLICE_S * 1e9)), every_s=7.0)
    return sliced


class Outcome(NamedTuple):
    updates: tuple
    fills: tuple
    rejections: int
    failed_cancels: int
    orders_placed: int
    funding_events: tuple
    account: object
    modifies_sent: int = 0
    takes_sent: int = 0


def replay(venue, strategy, tape: Tape, step_ns: int = STEP_NS) -> Outcome:
    """run_backtest's loop: poll every ``step_ns``, one cycle, submit; record everything seen."""
    ts = int(tape.ts_local[0]) + step_ns
    updates, fills = [], []
    while ts <= int(tape.ts_local[-1]):
        update = venue.poll(ts)
        book = update.book
        books = (book.bid_px.tolist(), book.bid_sz.tolist(), book.ask_px.tolist(), book.ask_sz.tolist()) if book else None
        mark = update.mark_price if math.isfinite(update.mark_price) else None  # NaN != NaN
        updates.append((books, update.trades, update.open_orders, update.pending_cancels, update.position, mark))
        fills.extend(update.fills)
        venue.submit(strategy.cycle(update).actions, ts)
        ts += step_ns
    return Outcome(
        updates=tuple(updates),
        fills=tuple(fills),
        rejections=venue.rejections,
        failed_cancels=venue.failed_cancels,
        orders_placed=venue.orders_placed,
        funding_events=tuple(venue.funding_events),
        account=venue.account(),
        modifies_sent=venue.modifies_sent,
        takes_sent=venue.takes_sent,
    )


def quoter_at_touch(tape: Tape) -> FixedSpreadQuoter:
    # 0.001 bps from the mid rounds onto the touch: queue position decides every fill
    return FixedSpreadQuoter(tape.instrument, half_spread_bps=0.001, size=0.002 if tape.instrument.sz_decimals >= 3 else 0.5, q_max=10.0)


def both_engines(tape: Tape, config: SimConfig, make_strategy) -> tuple[Outcome, Outcome]:
    reference = replay(make_sim_venue(tape, config.replace(engine="reference")), make_strategy(tape), tape)
    compiled = replay(make_sim_venue(tape, config.replace(engine="compiled")), make_strategy(tape), tape)
    return reference, compiled


# -- equivalence on real tapes -------------------------------------------------------------------


@pytest.mark.parametrize("queue_model", QUEUE_MODELS)
def test_fixed_spread_quoter_gets_identical_results_on_both_engines(tapes, queue_model):
    races = [0, 0]
    for seed, (name, tape) in enumerate(tapes.items()):
        config = random_latencies(seed, queue_model=queue_model)
        reference, compiled = both_engines(tape, config, quoter_at_touch)
        assert compiled == reference, (name, queue_model)
        assert len(reference.fills) > 0 and len(reference.funding_events) == 4, name
        assert any(event.position != 0.0 for event in reference.funding_events), name
        races[0] += reference.rejections
        races[1] += reference.failed_cancels
    # post-only rejections and cancels that lose to a fill both happen on these slices
    assert races[0] > 0 and races[1] > 0, races


def test_the_default_config_gets_identical_results_on_both_engines(tapes):
    counts = {}
    for name, tape in tapes.items():
        reference, compiled = both_engines(tape, SimConfig(), quoter_at_touch)
        assert compiled == reference, name
        counts[name] = (len(reference.fills), reference.rejections, reference.failed_cancels)
    assert all(fills > 0 for fills, _, _ in counts.values()), counts
    assert sum(rejections for _, rejections, _ in counts.values()) > 0, counts


def test_the_pipeline_gets_identical_results_on_both_engines(tapes):
    def pipeline(tape: Tape) -> Pipeline:
        return Pipeline.from_config(StrategyConfig(instrument=tape.instrument), funding_interval_s=tape.funding_interval_s)

    for seed, (name, tape) in enumerate(tapes.items()):
        short = tape.slice_time(None, int(tape.ts_local[0]) + int(15e9))
        config = random_latencies(seed, queue_model=QUEUE_MODELS[seed + 1], maker_fee_bps=-0.2)
        reference, compiled = both_engines(short, config, pipeline)
        assert compiled == reference, name
        assert reference.orders_placed > 0, name


def test_the_compiled_fixed_spread_run_equals_the_python_quoter_on_the_reference_engine(tapes):
    fills_seen = 0
    for seed, (name, tape) in enumerate(tapes.items()):
        for config in (SimConfig(queue_model="power:2"), random_latencies(seed, queue_model="log")):
            reference = replay(make_sim_venue(tape, config.replace(engine="reference")), quoter_at_touch(tape), tape)
            run = run_fixed_spread(tape, quoter_at_touch(tape), config)
            fills = [
                (f.ts_exch, f.ts_local, f.order_id, int(f.side), f.price, f.size, f.fee_usd) for f in reference.fills
            ]
            assert list(run.fills.itertuples(index=False, name=None)) == fills, name
            assert run.funding_events == reference.funding_events
            assert (run.rejections, run.failed_cancels, run.orders_placed) == (
                reference.rejections,
                reference.failed_cancels,
                reference.orders_placed,
            )
            assert run.account == reference.account
            assert run.cycles["position"].tolist() == [update[4] for update in reference.updates]
            fills_seen += len(fills)
    assert fills_seen > 0


@pytest.mark.slow
def test_the_benchmark_run_equals_the_python_quoter_on_the_whole_binance_tape(binance_btcusdt):
    # benchmarks/bench_replay.py's second line: the compiled rule against FixedSpreadQuoter +
    # the reference SimVenue, on the whole capture
    from mmlab.sim.backtest import run_backtest

    tape = binance_btcusdt

    def quoter() -> FixedSpreadQuoter:
        return FixedSpreadQuoter(tape.instrument, half_spread_bps=1.0, size=0.01, q_max=0.1)

    reference = run_backtest(tape, sim=SimConfig(engine="reference"), pipeline=quoter())
    run = run_fixed_spread(tape, quoter(), SimConfig())
    columns = ["ts_exch", "ts_local", "order_id", "side", "price", "size", "fee_usd"]
    assert run.fills[columns].equals(reference.fills[columns])
    assert len(run.fills) > 50
    assert (run.rejections, run.orders_placed, run.cancels_sent) == (
        reference.summary.rejections,
        reference.summary.orders_placed,
        reference.summary.cancels_sent,
    )
    assert run.cycles["position"].tolist() == reference.cycles["position"].tolist()


class RandomActions:
    """A seeded strategy that sends PLACE, CANCEL, MODIFY and TAKE actions around the book it sees.

    Its choices depend only on its seed and on the updates, so two engines that report the same
    updates receive the same actions. Prices are mostly the book's own levels (and sometimes a
    price the tape never shows, or one that crosses, so that post-only rejections of PLACEs and
    MODIFYs happen); it modifies open orders, orders it asked to cancel and orders already gone.
    """

    def __init__(self, seed: int, size: float) -> None:
        self.rng = np.random.default_rng(seed)
        self.size = size
        self.sides: dict[int, Side] = {}  # every order id seen, with its side

    def _price(self, book, side: Side) -> float:
        own = book.bid_px if side is Side.BUY else book.ask_px
        other = book.ask_px if side is Side.BUY else book.bid_px
        u = self.rng.random()
        if u < 0.12 and other.size:
            return float(other[0])  # at the opposite touch: crosses
        if u < 0.2 and own.size >= 2:
            return float(0.5 * (own[0] + own[1]))  # between two levels: a price the tape may never show
        return float(own[min(int(self.rng.integers(0, 4)), own.size - 1)]) if own.size else float(other[0])

    def cycle(self, update):
        from mmlab.pipeline import CycleOutput
        from mmlab.types import ParameterUpdates, QuoteSet

        rng = self.rng
        book = update.book
        actions: list[OrderAction] = []
        listed = {order.order_id for order in update.open_orders + update.pending_cancels}
        for order in update.open_orders + update.pending_cancels:
            self.sides[order.order_id] = order.side
        gone = [order_id for order_id in self.sides if order_id not in listed][-20:]  # modifying them fails
        if book is not None and book.bid_px.size and book.ask_px.size:
            size = lambda: float(self.size * rng.integers(1, 4))  # noqa: E731
            if len(update.open_orders) < 4 or rng.random() < 0.2:
                side = Side.BUY if rng.random() < 0.5 else Side.SELL
                actions.append(OrderAction(kind=ActionKind.PLACE, side=side, price=self._price(book, side), size=size()))
            for order in update.open_orders:
                u = rng.random()
                if u < 0.25:
                    actions.append(OrderAction(
                        kind=ActionKind.MODIFY, side=order.side, price=self._price(book, order.side), size=size(),
                        order_id=order.order_id,
                    ))  # fmt: skip
                elif u < 0.35:
                    actions.append(OrderAction(kind=ActionKind.CANCEL, side=order.side, price=order.price, size=order.size, order_id=order.order_id))
            for order in update.pending_cancels:
                if rng.random() < 0.05:  # a modify racing its own cancel (or an unanswered modify)
                    actions.append(OrderAction(
                        kind=ActionKind.MODIFY, side=order.side, price=self._price(book, order.side), size=size(),
                        order_id=order.order_id,
                    ))  # fmt: skip
            if gone and rng.random() < 0.1:
                order_id = gone[int(rng.integers(0, len(gone)))]
                side = self.sides[order_id]
                actions.append(OrderAction(kind=ActionKind.MODIFY, side=side, price=self._price(book, side), size=size(), order_id=order_id))
            if rng.random() < 0.08:
                side = Side.BUY if rng.random() < 0.5 else Side.SELL
                opposite = book.ask_px if side is Side.BUY else book.bid_px
                limit = float(opposite[min(int(rng.integers(0, 3)), opposite.size - 1)])
                actions.append(OrderAction(kind=ActionKind.TAKE, side=side, price=limit, size=float(self.size * rng.integers(1, 30))))
        return CycleOutput(
            ts_local=update.ts_local, observations=(), belief=None, budget=None, surface=None,
            quotes=QuoteSet(ts_local=update.ts_local, bids=(), asks=()), actions=tuple(actions),
            updates=ParameterUpdates(ts_local=update.ts_local, fills_marked=0),
        )  # fmt: skip


@pytest.mark.parametrize("queue_model", ("risk_averse", "power:2"))
def test_modify_and_take_actions_get_identical_results_on_both_engines(tapes, queue_model):
    seen = {"modifies": 0, "takes": 0, "taker_fills": 0, "maker_fills": 0, "rejections": 0, "failed": 0, "both": 0}
    for seed, (name, tape) in enumerate(tapes.items()):
        short = tape.slice_time(None, int(tape.ts_local[0]) + int(15e9))
        size = 0.002 if tape.instrument.sz_decimals >= 3 else 0.5
        config = random_latencies(seed + 7, queue_model=queue_model, maker_fee_bps=-0.2, taker_fee_bps=3.5)
        reference, compiled = both_engines(short, config, lambda _tape: RandomActions(seed, size))
        assert compiled == reference, (name, queue_model)
        seen["modifies"] += reference.modifies_sent
        seen["takes"] += reference.takes_sent
        seen["taker_fills"] += sum(not fill.is_maker for fill in reference.fills)
        seen["maker_fills"] += sum(fill.is_maker for fill in reference.fills)
        seen["rejections"] += reference.rejections
        seen["failed"] += reference.failed_cancels
        # an order listed twice: new version open, old version pending (a modify in flight)
        seen["both"] += sum(
            bool({o.order_id for o in update[2]} & {o.order_id for o in update[3]}) for update in reference.updates
        )
        assert any(event.position != 0.0 for event in reference.funding_events), name
    assert all(count > 0 for count in seen.values()), seen


def test_a_take_sweeping_more_levels_than_the_buffer_holds_grows_it():
    # 300 ask levels, one take through all of them (the take-fills buffer starts at 64 rows)
    rows = [(_at(0), EventKind.BOOK_CLEAR, 0, 0.0, 0.0, math.nan, 0), (_at(0), EventKind.BOOK, 1, 100.0, 5.0, math.nan, 0)]
    rows += [(_at(0), EventKind.BOOK, -1, round(100.1 + 0.1 * k, 1), 0.5, math.nan, 0) for k in range(300)]
    rows += [(_at(500), EventKind.TRADE, 1, 100.1, 0.1, math.nan, 1)]
    tape = make_tape(rows)
    config = SimConfig(feed_latency_s=0.01, order_latency_s=0.02)
    outcomes = []
    for venue in (SimVenue(tape, config), FastSimVenue(tape, config)):
        venue.poll(_at(10))
        venue.submit([OrderAction(kind=ActionKind.TAKE, side=Side.BUY, price=200.0, size=1_000.0)] * 2, _at(10))
        update = venue.poll(_at(100))
        outcomes.append((update.fills, venue.account()))
    assert outcomes[0] == outcomes[1]
    assert len(outcomes[0][0]) == 600 and outcomes[0][1].position == 300.0


# -- capacity: more live orders, actions and fills than the initial arrays hold -------------------

MS = 1_000_000
T0 = 1_700_000_000_000_000_000


def _at(ms: float) -> int:
    return T0 + int(round(ms * MS))


def _opening_book() -> list[tuple]:
    return [
        (_at(0), EventKind.BOOK_CLEAR, 0, 0.0, 0.0, math.nan, 0),
        (_at(0), EventKind.BOOK, 1, 100.0, 5.0, math.nan, 0),
        (_at(0), EventKind.BOOK, 1, 99.9, 3.0, math.nan, 0),
        (_at(0), EventKind.BOOK, -1, 100.1, 4.0, math.nan, 0),
        (_at(0), EventKind.BOOK, -1, 100.2, 6.0, math.nan, 0),
    ]


class ScriptedStrategy:
    """Places ``burst`` bids at once, then churns: each cycle cancels the newest and places one."""

    def __init__(self, burst: int) -> None:
        self.burst = burst
        self.cycles = 0

    def cycle(self, update):
        from mmlab.pipeline import CycleOutput
        from mmlab.types import ParameterUpdates, QuoteSet

        self.cycles += 1
        if self.cycles == 1:
            # one bid that never fills, then a burst at the touch and at a price the tape never shows
            actions = [OrderAction(kind=ActionKind.PLACE, side=Side.BUY, price=90.0, size=1.0)]
            actions += [
                OrderAction(kind=ActionKind.PLACE, side=Side.BUY, price=100.0 if k % 2 else 99.95, size=0.01)
                for k in range(self.burst)
            ]
        else:
            newest = [order for order in update.open_orders if order.price != 90.0][-1:]
            actions = [
                OrderAction(kind=ActionKind.CANCEL, side=o.side, price=o.price, size=o.size, order_id=o.order_id)
                for o in newest
            ] + [OrderAction(kind=ActionKind.PLACE, side=Side.SELL, price=100.2, size=0.05)]
        return CycleOutput(
            ts_local=update.ts_local, observations=(), belief=None, budget=None, surface=None,
            quotes=QuoteSet(ts_local=update.ts_local, bids=(), asks=()), actions=tuple(actions),
            updates=ParameterUpdates(ts_local=update.ts_local, fills_marked=0),
        )  # fmt: skip


def test_the_compiled_engine_grows_past_its_initial_capacity():
    # 1,500 resting bids (64 order slots at first), all swept by one trade (1,024 effects at
    # first), then 300 cycles of churn while one old order rests (its slot comes round again)
    rows = _opening_book() + [(_at(150), EventKind.TRADE, -1, 99.0, 100.0, math.nan, 1)]
    rows += [(_at(200 + 10 * k), EventKind.TRADE, 1, 100.2, 0.02, math.nan, 2 + k) for k in range(300)]
    tape = make_tape(rows)
    config = SimConfig(feed_latency_s=0.01, order_latency_s=0.02, order_latency_samples_s=(0.01, 0.03), latency_seed=1)
    reference = replay(SimVenue(tape, config), ScriptedStrategy(1500), tape, step_ns=10 * MS)
    compiled_venue = FastSimVenue(tape, config)
    compiled = replay(compiled_venue, ScriptedStrategy(1500), tape, step_ns=10 * MS)
    assert compiled == reference
    assert len(reference.fills) > 1400 and reference.orders_placed > 1700
    engine = compiled_venue._engine
    assert engine.O.order_id.shape[0] >= 2048 and engine.E.kind.shape[0] >= 2048
    assert compiled_venue.queue_ahead(1) == 0.0  # the bid at 90.0 still rests


# -- the pieces ------------------------------------------------------------------------------------


def test_a_custom_queue_model_needs_the_reference_engine():
    custom = ProbabilisticQueue(name="mine", prob=lambda front, back: 0.3)
    tape = make_tape(_opening_book())
    with pytest.raises(ValueError, match="reference engine"):
        FastSimVenue(tape, SimConfig(), queue_model=custom)
    assert SimVenue.builder(tape).queue(custom).engine("reference").build().queue_model is custom


def test_the_book_view_matches_the_reference_book(binance_btcusdt):
    tape = binance_btcusdt.slice_time(None, int(binance_btcusdt.ts_local[0]) + int(20e9))
    reference = SimVenue(tape, SimConfig())
    compiled = FastSimVenue(tape, SimConfig())
    def levels(book):
        return None if book is None else [a.tolist() for a in (book.bid_px, book.bid_sz, book.ask_px, book.ask_sz)]

    for ts in np.linspace(int(tape.ts_local[0]) + int(1e9), int(tape.ts_local[-1]), 6).astype(np.int64):
        a, b = reference.poll(int(ts)), compiled.poll(int(ts))
        assert levels(a.book) == levels(b.book) and (a.book.ts_exch, a.book.ts_local) == (b.book.ts_exch, b.book.ts_local)
        ours, theirs = compiled.order_book, reference.order_book
        assert math.isfinite(theirs.mid())
        assert (ours.best_bid(), ours.best_ask(), ours.mid()) == (theirs.best_bid(), theirs.best_ask(), theirs.mid())
        for side in (1, -1):
            assert ours.top_levels(side, 30) == theirs.top_levels(side, 30)
            assert ours.level_count(side) == theirs.level_count(side)
            assert ours.depth(side, 10) == theirs.depth(side, 10)
        best = theirs.best_bid()
        for price in (best, best - 0.1, best - 0.05, 1.0):
            assert ours.size_at(1, price) == theirs.size_at(1, price)


@given(
    front=st.floats(0.0, 50.0),
    back=st.floats(0.0, 50.0),
    new_size=st.floats(0.0, 100.0),
    traded=st.floats(0.0, 5.0),
    name=st.sampled_from(QUEUE_MODELS + ("power:0.5", "power3:1.7")),
)
def test_compiled_queue_models_equal_the_python_ones(front, back, new_size, traded, name):
    model = queue_model_from_name(name)
    code, exponent = queue_model_code(model)
    prev_size = front + back
    assert _on_depth(code, exponent, front, prev_size, new_size, traded) == model.on_depth(front, prev_size, new_size, traded)


TICKS = (0.1, 0.5, 0.01, 1.0, 25.0, 0.0001, 0.05)


@given(price=st.floats(2.0, 2e5), sz_decimals=st.integers(0, 5), tick=st.sampled_from((0.0,) + TICKS))
def test_compiled_grid_rounding_equals_the_instrument_grid(price, sz_decimals, tick):
    instrument = InstrumentSpec(sz_decimals=sz_decimals, price_tick=tick)
    if tick > 0 and price < 4 * tick:
        price += 4 * tick  # a grid price below the first tick does not exist
    units, decimals = _tick_units(tick) if tick > 0 else (0.0, 0)
    args = (sz_decimals, tick, units, decimals)
    assert _grid_round(price, False, *args) == instrument.round_bid(price)
    assert _grid_round(price, True, *args) == instrument.round_ask(price)
    assert _grid_below(price, *args) == instrument.price_below(price)
    assert _grid_above(price, *args) == instrument.price_above(price)


@given(size=st.floats(-5.0, 1e4), sz_decimals=st.integers(0, 6))
def test_compiled_size_rounding_equals_the_instrument_grid(size, sz_decimals):
    assert _round_size(size, sz_decimals) == InstrumentSpec(sz_decimals=sz_decimals).round_size(size)


def test_both_engines_report_trade_addresses_and_open_interest():
    """Hyperliquid trades name both parties; asset contexts carry the open interest."""
    from mmlab.config import SimConfig
    from mmlab.data.synth import SynthConfig, generate
    from mmlab.data.tape import EventKind, encode_addresses
    from mmlab.sim.engine import FastSimVenue
    from mmlab.sim.venue import SimVenue

    tape = generate(SynthConfig(seed=3, minutes=3.0)).tape
    trades = tape.kind == EventKind.TRADE
    buyer = [f"0xb{i % 7}" if t else None for i, t in enumerate(trades)]
    seller = [f"0xs{i % 5}" if t else None for i, t in enumerate(trades)]
    b, s, table = encode_addresses(buyer, seller)
    tape = tape.with_addresses(b, s, table)
    ctx = np.flatnonzero((tape.kind == EventKind.ASSET_CTX) & (tape.size > 0))
    assert ctx.size >= 2
    for venue in (SimVenue(tape, SimConfig()), FastSimVenue(tape, SimConfig())):
        t = int(tape.ts_local[0])
        seen = []
        for ts in range(t, int(tape.ts_local[-1]), 5_000_000_000):
            update = venue.poll(ts)
            seen.extend(update.trades)
            last_ctx = ctx[tape.ts_local[ctx] <= ts]
            expected = float(tape.size[last_ctx[-1]]) if last_ctx.size else float("nan")
            assert update.open_interest == expected or (np.isnan(expected) and np.isnan(update.open_interest))
        assert seen and all(trade.buyer.startswith("0xb") and trade.seller.startswith("0xs") for trade in seen)
