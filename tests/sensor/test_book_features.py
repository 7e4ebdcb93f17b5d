"""Book features: BIM, ΔBIM, BPG, OFI and book sweeps against hand-computed values, the online
classes against their ``*_series`` on real and synthetic tapes, and the handling of bad books."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmlab.data.importers import import_file
from mmlab.data.synth import SynthConfig, generate
from mmlab.data.tape import EventKind
from mmlab.sensor.book_features import (
    SWEEP_WEIGHTS,
    BookFrame,
    BookImbalance,
    BookImbalanceChange,
    BookPressureGradient,
    BookSweep,
    OrderFlowImbalance,
    book_frame,
    book_frame_from_updates,
    book_sweeps,
    future_log_return,
    imbalance_change_series,
    imbalance_series,
    ofi_series,
    pressure_gradient_series,
    signal_correlation,
    sweep_pressure_series,
    usable_levels,
    usable_mask,
)
from mmlab.sensor.calibration import replay_updates
from mmlab.testing import T0_NS as T0
from mmlab.testing import book_from_levels
from mmlab.testing import make_tape
from mmlab.types import L2Book, Side, Trade, VenueUpdate

S = 1_000_000_000
MS = 1_000_000
NAN = math.nan
INF = math.inf


_book = book_from_levels


def _update(ts, book, trades=()) -> VenueUpdate:
    return VenueUpdate(ts_local=ts, book=book, trades=tuple(trades), fills=(), position=0.0, open_orders=())


def _trade(ts, side, price=100.0, size=1.0) -> Trade:
    return Trade(ts_exch=ts, ts_local=ts, price=price, size=size, aggressor=Side(side))


def _run(feature, updates) -> np.ndarray:
    out = []
    for update in updates:
        feature.update(update)
        out.append(feature.value)
    return np.array(out)


def _assert_same(online, batch, atol=1e-12):
    """Equal where defined, NaN at the same rows."""
    online, batch = np.asarray(online), np.asarray(batch)
    np.testing.assert_array_equal(np.isnan(online), np.isnan(batch))
    np.testing.assert_allclose(online[np.isfinite(online)], batch[np.isfinite(batch)], rtol=1e-9, atol=atol)


# --------------------------------------------------------------------------------------------
# Tapes
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def binance_tape(shared_data):
    path = shared_data / "binance-futures-hftbacktest/usdm/btcusdt_20240808.gz"
    return import_file(path, "binance-ws").tape


@pytest.fixture(scope="module")
def binance_minute(binance_tape):
    """The first 60 s of the Binance BTCUSDT capture (it opens with the REST snapshot), polled
    every 20 ms: the venue updates and their frame."""
    tape = binance_tape.slice_time(None, int(binance_tape.ts_local[0]) + 60 * S)
    updates = list(replay_updates(tape, 0.02))
    return updates, book_frame_from_updates(updates, levels=20)


@pytest.fixture(scope="module")
def synthetic():
    """Five minutes of the synthetic market polled every 100 ms."""
    market = generate(SynthConfig(seed=11, minutes=5.0))
    updates = list(replay_updates(market.tape, 0.1))
    return updates, book_frame_from_updates(updates, levels=20)


ONLINE_AND_BATCH = [
    ("bim touch", lambda: BookImbalance(1), lambda f: imbalance_series(f, 1)),
    ("bim 5 levels", lambda: BookImbalance(5), lambda f: imbalance_series(f, 5)),
    ("bim 20 unweighted", lambda: BookImbalance(20, depth_scale_bps=None), lambda f: imbalance_series(f, 20, depth_scale_bps=None)),
    ("bim 20 δ=0.2 bps", lambda: BookImbalance(20, depth_scale_bps=0.2), lambda f: imbalance_series(f, 20, depth_scale_bps=0.2)),
    ("dbim touch 1 s", lambda: BookImbalanceChange(1.0), lambda f: imbalance_change_series(f, 1.0)),
    ("dbim 5 levels 0.5 s", lambda: BookImbalanceChange(0.5, 5), lambda f: imbalance_change_series(f, 0.5, 5)),
    ("bpg 10", lambda: BookPressureGradient(10), lambda f: pressure_gradient_series(f, 10)),
    ("bpg 2", lambda: BookPressureGradient(2), lambda f: pressure_gradient_series(f, 2)),
    ("ofi 1 s", lambda: OrderFlowImbalance(1.0), lambda f: ofi_series(f, 1.0)),
    ("ofi 5 levels 0.3 s", lambda: OrderFlowImbalance(0.3, 5), lambda f: ofi_series(f, 0.3, 5)),
    *[
        (f"sweep {w}", (lambda w=w: BookSweep(0.5, weight=w)), (lambda f, w=w: sweep_pressure_series(f, 0.5, weight=w)))
        for w in SWEEP_WEIGHTS
    ],
]


@pytest.mark.parametrize(("name", "online", "batch"), ONLINE_AND_BATCH, ids=[c[0] for c in ONLINE_AND_BATCH])
def test_online_equals_series_on_the_binance_capture(binance_minute, name, online, batch):
    updates, frame = binance_minute
    values = _run(online(), updates)
    # OFI sums thousands of coins in a running window: rounding of the running sums
    _assert_same(values, batch(frame), atol=1e-9)
    assert np.isfinite(values).mean() > 0.95, name


@pytest.mark.parametrize(("name", "online", "batch"), ONLINE_AND_BATCH, ids=[c[0] for c in ONLINE_AND_BATCH])
def test_online_equals_series_on_the_synthetic_market(synthetic, name, online, batch):
    updates, frame = synthetic
    _assert_same(_run(online(), updates), batch(frame), atol=1e-9)


def test_the_binance_minute_has_sweeps_and_the_features_move(binance_minute):
    """The comparisons above are not vacuous: the features vary and sweeps happen."""
    updates, frame = binance_minute
    sweeps = book_sweeps(frame)
    assert len(sweeps) >= 10 and set(sweeps["side"]) == {1, -1}
    assert (sweeps["levels"] >= 2).all()
    for values in (imbalance_series(frame, 5), pressure_gradient_series(frame, 10), ofi_series(frame, 1.0)):
        assert np.nanstd(values) > 0.0
    feature = BookSweep(0.5)
    _run(feature, updates)
    assert feature.sweeps == len(sweeps)
    assert feature.last_sweep.ts_local == sweeps["ts_local"].iloc[-1] and feature.last_sweep.levels == sweeps["levels"].iloc[-1]
    assert feature.last_sweep.size_coins == pytest.approx(sweeps["size_coins"].iloc[-1])


# --------------------------------------------------------------------------------------------
# Imbalance, its change and the pressure gradient by hand
# --------------------------------------------------------------------------------------------


def test_touch_imbalance_by_hand():
    book = _book([(99.0, 3.0), (98.0, 100.0)], [(101.0, 1.0), (102.0, 7.0)])
    feature = BookImbalance(1)
    feature.update(_update(T0, book))
    # (q^b − q^a) / (q^b + q^a) = (3 − 1) / 4; deeper levels and δ do not matter
    assert feature.value == pytest.approx(0.5, abs=1e-15)
    assert feature.name == "bim"


def test_depth_weighted_imbalance_by_hand():
    bids = [(99.99, 2.0), (99.98, 1.0), (99.90, 4.0)]
    asks = [(100.01, 1.0), (100.03, 5.0), (100.10, 2.0)]
    book = _book(bids, asks)
    mid, delta = 100.0, 1.5
    # w_i = exp(−d_i/δ), d_i = 1e4 |p_i − m| / m
    bid_weighted = sum(math.exp(-1e4 * abs(p - mid) / mid / delta) * q for p, q in bids)
    ask_weighted = sum(math.exp(-1e4 * abs(p - mid) / mid / delta) * q for p, q in asks)
    expected = (bid_weighted - ask_weighted) / (bid_weighted + ask_weighted)
    feature = BookImbalance(3, depth_scale_bps=delta)
    feature.update(_update(T0, book))
    assert feature.value == pytest.approx(expected, rel=1e-12)
    # unweighted over two levels: (3 − 6) / 9
    plain = BookImbalance(2, depth_scale_bps=None)
    plain.update(_update(T0, book))
    assert plain.value == pytest.approx(-1.0 / 3.0, rel=1e-12)
    frame = book_frame_from_updates([_update(T0, book)], levels=3)
    assert imbalance_series(frame, 3, depth_scale_bps=delta)[0] == pytest.approx(expected, rel=1e-12)
    assert imbalance_series(frame, 2, depth_scale_bps=None)[0] == pytest.approx(-1.0 / 3.0, rel=1e-12)


def test_imbalance_change_refers_to_the_last_book_at_or_before_t_minus_w():
    def touch(bid_size):
        return _book([(99.0, bid_size)], [(101.0, 1.0)])

    bim = lambda q: (q - 1.0) / (q + 1.0)  # noqa: E731
    sizes_at_ms = [(0, 1.0), (500, 3.0), (1000, 2.0), (1600, 4.0), (1800, None), (2000, 9.0)]
    updates = [_update(T0 + ms * MS, touch(q) if q is not None else _book([(101.0, 1.0)], [(100.0, 1.0)])) for ms, q in sizes_at_ms]
    expected = [
        NAN,  # no history W back
        NAN,
        bim(2.0) - bim(1.0),  # t − W = 0 exactly: "at or before"
        bim(4.0) - bim(3.0),  # t − W = 0.6 s: the book of 0.5 s
        NAN,  # crossed book
        bim(9.0) - bim(2.0),  # t − W = 1.0 s
    ]
    feature = BookImbalanceChange(1.0)
    values = _run(feature, updates)
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-15)
    assert feature.dropped == 1
    frame = book_frame_from_updates(updates, levels=1)
    np.testing.assert_allclose(imbalance_change_series(frame, 1.0), expected, rtol=0, atol=1e-15)


def test_pressure_gradient_is_minus_the_fitted_slope_of_the_cumulative_imbalance():
    bids = [(99.0, 5.0), (98.0, 1.0), (97.0, 1.0), (96.0, 1.0)]
    asks = [(101.0, 1.0), (102.0, 2.0), (103.0, 2.0), (104.0, 2.0), (105.0, 9.0)]
    book = _book(bids, asks)
    k = 4  # the bid side has four levels
    bid_cum = np.cumsum([q for _, q in bids])[:k]
    ask_cum = np.cumsum([q for _, q in asks])[:k]
    cumulative = (bid_cum - ask_cum) / (bid_cum + ask_cum)
    slope = np.polyfit(np.arange(1, k + 1), cumulative, 1)[0]
    feature = BookPressureGradient(10)
    feature.update(_update(T0, book))
    assert feature.value == pytest.approx(-slope, rel=1e-12)
    # buying interest concentrated at the touch: the cumulative imbalance falls with depth
    assert feature.value > 0.0
    frame = book_frame_from_updates([_update(T0, book)], levels=10)
    assert pressure_gradient_series(frame, 10)[0] == pytest.approx(-slope, rel=1e-12)
    # one level on a side: no gradient, but the book is not bad input
    thin = BookPressureGradient(10)
    thin.update(_update(T0, _book([(99.0, 1.0)], asks)))
    assert math.isnan(thin.value) and thin.dropped == 0


@st.composite
def books(draw) -> L2Book:
    """A valid book of 1–5 levels per side: prices strictly away from the touch, sizes > 0."""
    bid = draw(st.floats(10.0, 1_000.0))
    spread = draw(st.floats(1e-4, 5.0))
    size = st.floats(1e-3, 1e3)
    bid_steps = draw(st.lists(st.floats(1e-3, 2.0), min_size=0, max_size=4))
    ask_steps = draw(st.lists(st.floats(1e-3, 2.0), min_size=0, max_size=4))
    bid_px = bid - np.concatenate([[0.0], np.cumsum(bid_steps)])
    ask_px = bid + spread + np.concatenate([[0.0], np.cumsum(ask_steps)])
    bid_sz = [draw(size) for _ in bid_px]
    ask_sz = [draw(size) for _ in ask_px]
    return L2Book.from_levels(ts_exch=T0, ts_local=T0, bid_px=bid_px, bid_sz=bid_sz, ask_px=ask_px, ask_sz=ask_sz)


@settings(max_examples=60)
@given(book=books(), delta=st.one_of(st.none(), st.floats(0.1, 50.0)))
def test_imbalance_and_gradient_are_bounded_and_agree_with_their_series_on_any_book(book, delta):
    frame = book_frame_from_updates([_update(T0, book)], levels=5)
    bim = BookImbalance(5, depth_scale_bps=delta)
    bpg = BookPressureGradient(5)
    for feature in (bim, bpg):
        feature.update(_update(T0, book))
        assert feature.dropped == 0
    assert -1.0 <= bim.value <= 1.0
    assert bim.value == pytest.approx(imbalance_series(frame, 5, depth_scale_bps=delta)[0], rel=1e-9, abs=1e-12)
    if min(book.bid_px.size, book.ask_px.size) >= 2:
        # I_k in [−1, 1] over at most 5 levels: the slope is bounded by 2 / 1 per level
        assert abs(bpg.value) <= 2.0
        assert bpg.value == pytest.approx(pressure_gradient_series(frame, 5)[0], rel=1e-9, abs=1e-12)
    else:
        assert math.isnan(bpg.value) and math.isnan(pressure_gradient_series(frame, 5)[0])


# --------------------------------------------------------------------------------------------
# Order-flow imbalance by hand
# --------------------------------------------------------------------------------------------


def _cks_event(prev: tuple, now: tuple) -> float:
    """e_n of Cont, Kukanov & Stoikov by cases: (bid, bid size, ask, ask size) before and after."""
    (pb0, qb0, pa0, qa0), (pb1, qb1, pa1, qa1) = prev, now
    if pb1 > pb0:
        bid = qb1  # a better bid: all of its size is new demand
    elif pb1 == pb0:
        bid = qb1 - qb0
    else:
        bid = -qb0  # the old best bid was taken or cancelled
    if pa1 < pa0:
        ask = -qa1
    elif pa1 == pa0:
        ask = -(qa1 - qa0)
    else:
        ask = qa0
    return bid + ask


#: (ms, bid, bid size, ask, ask size): every case of the bid and of the ask
TOUCHES = [
    (0, 100.0, 2.0, 101.0, 3.0),
    (300, 100.0, 5.0, 101.0, 1.0),  # bid same +3, ask same −(1 − 3): e = 5
    (600, 100.5, 4.0, 101.0, 2.0),  # bid up +4, ask same −1: e = 3
    (900, 99.5, 6.0, 100.5, 7.0),  # bid down −4, ask down −7: e = −11
    (1200, 99.5, 6.0, 101.5, 1.0),  # bid same 0, ask up +7: e = 7
    (1500, 99.0, 1.0, 101.5, 2.0),  # bid down −6, ask same −1: e = −7
    (2700, 99.0, 3.0, 101.5, 2.0),  # after a gap longer than the window: e = 2
]


def test_ofi_is_the_windowed_sum_of_cks_events_over_the_average_depth():
    updates = [_update(T0 + ms * MS, _book([(b, qb)], [(a, qa)])) for ms, b, qb, a, qa in TOUCHES]
    touches = [t[1:] for t in TOUCHES]
    events = [0.0] + [_cks_event(touches[n - 1], touches[n]) for n in range(1, len(touches))]
    assert events == [0.0, 5.0, 3.0, -11.0, 7.0, -7.0, 2.0]
    times = [ms * MS for ms, *_ in TOUCHES]
    depth = [(qb + qa) / 2.0 for _, _, qb, _, qa in TOUCHES]
    window = 1000 * MS
    expected = []
    for n, now in enumerate(times):
        inside = [j for j in range(n + 1) if now - window < times[j] <= now]
        expected.append(sum(events[j] for j in inside) / np.mean([depth[j] for j in inside]))
    expected[0] = NAN  # defined from the second book on
    feature = OrderFlowImbalance(1.0)
    values = _run(feature, updates)
    np.testing.assert_allclose(values, expected, rtol=1e-12)
    # spot check: at 1.2 s the window (0.2 s, 1.2 s] holds the books of 0.3 … 1.2 s
    assert values[4] == pytest.approx((5 + 3 - 11 + 7) / np.mean([3.0, 3.0, 6.5, 3.5]))
    np.testing.assert_allclose(ofi_series(book_frame_from_updates(updates, levels=1), 1.0), expected, rtol=1e-12)
    np.testing.assert_allclose(feature.level_values, [expected[-1]])


def test_multi_level_ofi_applies_the_cks_rule_level_by_level():
    prev = _book([(100.0, 2.0), (99.0, 4.0)], [(101.0, 3.0), (102.0, 1.0)])
    now = _book([(100.0, 1.0), (99.5, 2.0)], [(101.0, 3.0), (101.5, 6.0)])
    level_events = [
        _cks_event((100.0, 2.0, 101.0, 3.0), (100.0, 1.0, 101.0, 3.0)),  # −1
        _cks_event((99.0, 4.0, 102.0, 1.0), (99.5, 2.0, 101.5, 6.0)),  # +2 − 6 = −4
    ]
    depth_prev, depth_now = (2 + 4 + 3 + 1) / 4.0, (1 + 2 + 3 + 6) / 4.0
    feature = OrderFlowImbalance(5.0, levels=2)
    feature.update(_update(T0, prev))
    assert math.isnan(feature.value)
    feature.update(_update(T0 + 100 * MS, now))
    average = (depth_prev + depth_now) / 2.0
    np.testing.assert_allclose(feature.level_values, np.array(level_events) / average, rtol=1e-12)
    assert feature.value == pytest.approx(sum(level_events) / average, rel=1e-12)
    frame = book_frame_from_updates([_update(T0, prev), _update(T0 + 100 * MS, now)], levels=2)
    assert ofi_series(frame, 5.0, 2)[1] == pytest.approx(feature.value, rel=1e-12)


def test_ofi_skips_bad_books_and_keeps_its_window():
    good = [_book([(100.0, 2.0)], [(101.0, 3.0)]), _book([(100.0, 5.0)], [(101.0, 3.0)])]
    bad = _book([(100.0, NAN)], [(101.0, 3.0)])
    updates = [_update(T0, good[0]), _update(T0 + 100 * MS, bad), _update(T0 + 200 * MS, good[1]), _update(T0 + 300 * MS, None)]
    feature = OrderFlowImbalance(1.0)
    values = _run(feature, updates)
    # e = 5 − 2 between the two good books, the bad one in between ignored; AD = (2.5 + 4) / 2
    np.testing.assert_allclose(values, [NAN, NAN, 3.0 / 3.25, 3.0 / 3.25])
    assert feature.dropped == 2
    np.testing.assert_allclose(ofi_series(book_frame_from_updates(updates, levels=1), 1.0), values)


# --------------------------------------------------------------------------------------------
# Book sweeps by hand
# --------------------------------------------------------------------------------------------


ASKS = [(101.0, 1.0), (102.0, 2.0), (103.0, 3.0), (104.0, 4.0)]
BIDS = [(100.0, 1.0), (99.0, 2.0), (98.0, 3.0), (97.0, 4.0)]


def test_an_up_sweep_needs_a_buy_print_and_counts_the_levels_taken():
    before = _book(BIDS, ASKS, ts=T0)
    after = _book(BIDS, [(103.5, 1.0), (104.0, 4.0)], ts=T0 + 100 * MS)
    tau_s = 0.5
    swept = BookSweep(tau_s)
    swept.update(_update(T0, before))
    swept.update(_update(T0 + 100 * MS, after, [_trade(T0 + 90 * MS, +1, 103.0)]))
    # previous asks below the new best ask: 101, 102, 103
    assert swept.sweeps == 1
    event = swept.last_sweep
    assert (event.side, event.levels) == (1, 3)
    assert event.size_coins == pytest.approx(6.0)
    assert event.depth_bps == pytest.approx(1e4 * math.log(103.5 / 101.0))
    assert swept.value == pytest.approx(3.0)
    # decays exp(−Δt/τ), and the weights are what they say
    swept.update(_update(T0 + 600 * MS, after))
    assert swept.value == pytest.approx(3.0 * math.exp(-0.5 / tau_s))
    for weight, expected in (("size_coins", 6.0), ("depth_bps", 1e4 * math.log(103.5 / 101.0))):
        feature = BookSweep(tau_s, weight=weight)
        feature.update(_update(T0, before))
        feature.update(_update(T0 + 100 * MS, after, [_trade(T0 + 90 * MS, +1, 103.0)]))
        assert feature.value == pytest.approx(expected)
    # the same jump without trades, or with only a sell, is no sweep
    for trades in ((), [_trade(T0 + 90 * MS, -1, 100.0)]):
        quiet = BookSweep(tau_s)
        quiet.update(_update(T0, before))
        quiet.update(_update(T0 + 100 * MS, after, trades))
        assert quiet.sweeps == 0 and quiet.value == 0.0


def test_a_down_sweep_is_negative_and_one_level_is_not_a_sweep():
    before = _book(BIDS, ASKS, ts=T0)
    down = _book([(97.5, 2.0), (97.0, 4.0)], ASKS, ts=T0 + 100 * MS)
    one_level = _book([(99.5, 1.0), (99.0, 2.0)], ASKS, ts=T0 + 200 * MS)
    updates = [
        _update(T0, before),
        _update(T0 + 100 * MS, down, [_trade(T0 + 50 * MS, -1, 98.0)]),
        _update(T0 + 150 * MS, before),
        _update(T0 + 200 * MS, one_level, [_trade(T0 + 180 * MS, -1, 99.0)]),
    ]
    feature = BookSweep(1.0, weight="size_coins")
    values = _run(feature, updates)
    assert feature.sweeps == 1
    # bids above 97.5 gone: 100, 99, 98 holding 1 + 2 + 3 coins
    assert feature.last_sweep.side == -1 and feature.last_sweep.levels == 3
    assert values[1] == pytest.approx(-6.0)
    assert values[3] == pytest.approx(-6.0 * math.exp(-0.1))
    # the one-level move is a sweep with min_levels = 1
    loose = BookSweep(1.0, min_levels=1)
    _run(loose, updates)
    assert loose.sweeps == 2
    frame = book_frame_from_updates(updates, levels=4)
    table = book_sweeps(frame)
    assert list(table["side"]) == [-1] and list(table["levels"]) == [3]
    assert table["depth_bps"].iloc[0] == pytest.approx(1e4 * math.log(100.0 / 97.5))
    np.testing.assert_allclose(sweep_pressure_series(frame, 1.0, weight="size_coins"), values)
    assert len(book_sweeps(frame, min_levels=1)) == 2


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


GOOD = _book([(100.0, 2.0), (99.0, 1.0), (98.0, 1.0)], [(101.0, 1.0), (102.0, 3.0), (103.0, 1.0)])
BAD_BOOKS = {
    "none": None,
    "no asks": _book([(100.0, 1.0)], []),
    "no bids": _book([], [(101.0, 1.0)]),
    "crossed": _book([(101.5, 1.0)], [(101.0, 1.0)]),
    "locked": _book([(101.0, 1.0)], [(101.0, 1.0)]),
    "nan bid": _book([(NAN, 1.0)], [(101.0, 1.0)]),
    "inf ask": _book([(100.0, 1.0)], [(INF, 1.0)]),
    "nan size": _book([(100.0, NAN)], [(101.0, 1.0)]),
    "inf size": _book([(100.0, 1.0)], [(101.0, INF)]),
    "zero size": _book([(100.0, 0.0)], [(101.0, 1.0)]),
    "negative size": _book([(100.0, 1.0)], [(101.0, -1.0)]),
    "negative price": _book([(-100.0, 1.0)], [(101.0, 1.0)]),
    "sizes missing": L2Book.from_levels(ts_exch=T0, ts_local=T0, bid_px=[100.0, 99.0], bid_sz=[1.0], ask_px=[101.0], ask_sz=[1.0]),
}
#: bad only for a feature reading more than one level
BAD_DEEP = {
    "nan second bid": _book([(100.0, 1.0), (NAN, 1.0)], [(101.0, 1.0), (102.0, 1.0)]),
    "bids not falling": _book([(100.0, 1.0), (100.5, 1.0)], [(101.0, 1.0), (102.0, 1.0)]),
    "asks repeated": _book([(100.0, 1.0), (99.0, 1.0)], [(101.0, 1.0), (101.0, 1.0)]),
    "zero second ask": _book([(100.0, 1.0), (99.0, 1.0)], [(101.0, 1.0), (102.0, 0.0)]),
}

FEATURES = {
    "bim": lambda: BookImbalance(3),
    "dbim": lambda: BookImbalanceChange(0.05, 3),
    "bpg": lambda: BookPressureGradient(3),
    "ofi": lambda: OrderFlowImbalance(1.0, 3),
    "sweep": lambda: BookSweep(1.0, levels=3),
}


@pytest.mark.parametrize("bad", [*BAD_BOOKS, *BAD_DEEP])
@pytest.mark.parametrize("name", FEATURES)
def test_bad_books_are_dropped_counted_and_never_valued(name, bad):
    book = BAD_BOOKS.get(bad, BAD_DEEP.get(bad))
    updates = [_update(T0 + k * 100 * MS, b) for k, b in enumerate([GOOD, GOOD, book, GOOD])]
    feature = FEATURES[name]()
    values = _run(feature, updates)
    assert feature.dropped == 1
    assert usable_levels(book, 3) is None
    if name in ("bim", "dbim", "bpg"):
        # a description of the current book: none for a bad one
        assert math.isnan(values[2]) and np.isfinite(values[3])
    else:
        # cumulative: the window carries on, fed by good books only
        assert values[2] == values[1] and values[3] == values[1]
    frame = book_frame_from_updates(updates, levels=3)
    np.testing.assert_array_equal(usable_mask(frame, 3), [True, True, False, True])
    batch = {
        "bim": lambda f: imbalance_series(f, 3),
        "dbim": lambda f: imbalance_change_series(f, 0.05, 3),
        "bpg": lambda f: pressure_gradient_series(f, 3),
        "ofi": lambda f: ofi_series(f, 1.0, 3),
        "sweep": lambda f: sweep_pressure_series(f, 1.0, levels=3),
    }[name](frame)
    _assert_same(values, batch)


@pytest.mark.parametrize("bad", BAD_DEEP)
def test_a_bad_deep_level_does_not_spoil_the_touch(bad):
    feature = BookImbalance(1)
    feature.update(_update(T0, BAD_DEEP[bad]))
    assert feature.dropped == 0 and feature.value == pytest.approx(0.0)
    assert usable_mask(book_frame_from_updates([_update(T0, BAD_DEEP[bad])], levels=2), 1).all()


def test_a_short_side_is_read_as_far_as_it_goes():
    book = _book([(100.0, 3.0)], [(101.0, 1.0), (102.0, 1.0), (103.0, 1.0)])
    feature = BookImbalance(5, depth_scale_bps=None)
    feature.update(_update(T0, book))
    assert feature.dropped == 0 and feature.value == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: BookImbalance(0), "levels"),
        (lambda: BookImbalance(True), "levels"),
        (lambda: BookImbalance(2.0), "levels"),
        (lambda: BookImbalance(1, depth_scale_bps=0.0), "depth_scale_bps"),
        (lambda: BookImbalance(1, depth_scale_bps=NAN), "depth_scale_bps"),
        (lambda: BookImbalanceChange(0.0), "window_s"),
        (lambda: BookImbalanceChange(INF), "window_s"),
        (lambda: BookImbalanceChange(1.0, levels=-1), "levels"),
        (lambda: BookPressureGradient(1), "levels"),
        (lambda: OrderFlowImbalance(-1.0), "window_s"),
        (lambda: OrderFlowImbalance(1.0, levels=0), "levels"),
        (lambda: BookSweep(0.0), "decay_s"),
        (lambda: BookSweep(1.0, weight="notional"), "weight"),
        (lambda: BookSweep(1.0, min_levels=0), "'min_levels'"),
        (lambda: book_sweeps(_FRAME, min_levels=0), "'min_levels'"),
        (lambda: imbalance_series(_FRAME, 0), "levels"),
        (lambda: ofi_series(_FRAME, NAN), "window_s"),
        (lambda: pressure_gradient_series(_FRAME, 1), "levels"),
        (lambda: sweep_pressure_series(_FRAME, 1.0, weight="x"), "weight"),
        (lambda: book_frame_from_updates([]), "no venue updates"),
        (lambda: future_log_return(_FRAME, 0.0), "horizon_s"),
        (lambda: signal_correlation(_FRAME, np.zeros(3), 1.0), "values"),
        (lambda: _FRAME.split_time(1.0), "fraction"),
    ],
)
def test_bad_arguments_raise_naming_the_field(make, field):
    with pytest.raises(ValueError, match=field):
        make()


# --------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------


_FRAME = book_frame_from_updates([_update(T0 + k * S, GOOD) for k in range(4)], levels=3)


def test_book_frame_replays_a_tape_one_row_per_update_group():
    book, trade, clear = int(EventKind.BOOK), int(EventKind.TRADE), int(EventKind.BOOK_CLEAR)
    rows = [
        (T0, book, 1, 100.0, 2.0, NAN, 0),
        (T0, book, 1, 99.0, 1.0, NAN, 0),
        (T0, book, -1, 101.0, 3.0, NAN, 0),
        (T0 + S, trade, 1, 101.0, 0.5, NAN, 7),
        (T0 + S, book, -1, 101.0, 2.5, NAN, 0),
        (T0 + 2 * S, book, 1, 100.0, 0.0, NAN, 0),  # the bid touch deleted
        (T0 + 3 * S, clear, 0, NAN, NAN, NAN, 0),
        (T0 + 4 * S, book, 1, 50.0, 1.0, NAN, 0),
        (T0 + 4 * S, book, -1, 51.0, 1.0, NAN, 0),
    ]
    frame = book_frame(make_tape(rows), levels=2)
    assert len(frame) == 5 and frame.levels == 2
    np.testing.assert_array_equal(frame.ts_local, [T0 + k * S for k in range(5)])
    np.testing.assert_array_equal(frame.bid_levels, [2, 2, 1, 0, 1])
    np.testing.assert_array_equal(frame.ask_levels, [1, 1, 1, 0, 1])
    np.testing.assert_array_equal(frame.bid_px[:3], [[100.0, 99.0], [100.0, 99.0], [99.0, NAN]])
    np.testing.assert_array_equal(frame.ask_sz[:3, 0], [3.0, 2.5, 2.5])
    np.testing.assert_array_equal(frame.trade_row, [1])
    np.testing.assert_array_equal(frame.trade_side, [1])
    np.testing.assert_array_equal(frame.touch_usable, [True, True, True, False, True])
    np.testing.assert_allclose(frame.mid, [100.5, 100.5, 100.0, NAN, 50.5])
    # slices keep the trades that came with their rows
    tail = frame.slice(1, 5)
    assert len(tail) == 4 and list(tail.trade_row) == [0]
    first, second = frame.split_time(0.5)
    assert len(first) == 2 and len(second) == 3 and list(first.trade_row) == [1] and len(second.trade_row) == 0
    with pytest.raises(ValueError, match="trade_row"):
        BookFrame(**{name: getattr(frame, name) for name in BookFrame.__slots__} | {"trade_row": np.array([9])})
    with pytest.raises(ValueError, match="ask_sz"):
        BookFrame(**{name: getattr(frame, name) for name in BookFrame.__slots__} | {"ask_sz": np.zeros((5, 3))})
    assert not frame.bid_px.flags.writeable


def test_future_log_return_and_signal_correlation_by_hand():
    mids = [100.0, 101.0, 99.0, 102.0, 103.0]
    updates = [_update(T0 + k * 500 * MS, _book([(m - 0.5, 1.0)], [(m + 0.5, 1.0)])) for k, m in enumerate(mids)]
    frame = book_frame_from_updates(updates, levels=1)
    # one second ahead: two rows later; the last two rows have no future
    expected = [math.log(99 / 100), math.log(102 / 101), math.log(103 / 99), NAN, NAN]
    np.testing.assert_allclose(future_log_return(frame, 1.0), expected, rtol=1e-12)
    # 0.7 s ahead: the last row at or before t + 0.7 s is one row later (none after 1.3 s)
    np.testing.assert_allclose(future_log_return(frame, 0.7), [*np.diff(np.log(mids))[:3], NAN, NAN], rtol=1e-12)
    values = np.array([1.0, 2.0, 4.0, 0.0, 0.0])
    corr, n = signal_correlation(frame, values, 1.0)
    assert n == 3 and corr == pytest.approx(np.corrcoef(values[:3], expected[:3])[0, 1])


# --------------------------------------------------------------------------------------------
# The sign of BPG on the recordings (the module docstring's claim)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def binance_polled(binance_tape):
    """The whole Binance BTCUSDT capture (5.75 min) polled every 100 ms, as the sensor sees it."""
    return book_frame(binance_tape, levels=20, interval_s=0.1)


@pytest.fixture(scope="module")
def hyperliquid_btc(shared_data):
    """Hyperliquid BTC, 20-level snapshots (collector CSVs, 446 snapshots over 9 min)."""
    tape = import_file(shared_data / "hyperliquid-ws-collector-csv/HL_data", "hyperliquid-collector-csv", coin="BTC").tape
    return book_frame(tape, levels=20)


@pytest.mark.parametrize("horizon_s", [1.0, 10.0])
def test_bpg_is_positively_correlated_with_the_future_mid_on_hyperliquid(hyperliquid_btc, horizon_s):
    corr, n = signal_correlation(hyperliquid_btc, pressure_gradient_series(hyperliquid_btc, 10), horizon_s)
    assert n > 500 and corr > 0.0


def test_bpg_is_positively_correlated_with_the_mid_one_second_ahead_on_binance(binance_polled):
    corr, n = signal_correlation(binance_polled, pressure_gradient_series(binance_polled, 10), 1.0)
    assert n > 3000 and corr > 0.0
