"""Price layers: the L1 and depth micro-prices by hand, Stoikov's G* against the closed form on a
Markov chain with known matrices, the trade-informed layer's decay and fit, the online layers
against their ``*_series`` on real and synthetic tapes, and bad input."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmlab.data.importers import import_file
from mmlab.data.synth import SynthConfig, generate
from mmlab.sensor.book_features import BookFrame, book_frame_from_updates, future_log_return
from mmlab.sensor.calibration import replay_updates
from mmlab.sensor.microprice import (
    DepthMicroPrice,
    MicroPriceL1,
    StoikovFit,
    StoikovMicroPrice,
    StoikovTable,
    TradeMicroPrice,
    TradeMicroPriceFit,
    calibrated_forecast_mse,
    depth_microprice_series,
    fit_stoikov_microprice,
    fit_trade_microprice,
    forecast_mse,
    micro_l1_series,
    stoikov_series,
    trade_microprice_series,
)
from mmlab.testing import T0_NS as T0
from mmlab.testing import book_from_levels
from mmlab.types import L2Book, Side, Trade, VenueUpdate

S = 1_000_000_000
MS = 1_000_000
NAN = math.nan
INF = math.inf


_book = book_from_levels


def _touch(mid: float, half_spread: float = 0.05, bid_size: float = 1.0, ask_size: float = 1.0, ts=T0) -> L2Book:
    return _book([(mid - half_spread, bid_size)], [(mid + half_spread, ask_size)], ts=ts)


def _update(ts, book, trades=()) -> VenueUpdate:
    return VenueUpdate(ts_local=ts, book=book, trades=tuple(trades), fills=(), position=0.0, open_orders=())


def _trade(ts, price, side=1, size=1.0) -> Trade:
    return Trade(ts_exch=ts, ts_local=ts, price=price, size=size, aggressor=Side(side))


def _run(layer, updates) -> np.ndarray:
    out = []
    for update in updates:
        layer.update(update)
        out.append(layer.value)
    return np.array(out)


def _assert_same(online, batch):
    online, batch = np.asarray(online), np.asarray(batch)
    np.testing.assert_array_equal(np.isnan(online), np.isnan(batch))
    np.testing.assert_allclose(online[np.isfinite(online)], batch[np.isfinite(batch)], rtol=1e-9, atol=1e-15)


# --------------------------------------------------------------------------------------------
# L1 and depth micro-prices by hand
# --------------------------------------------------------------------------------------------


def test_l1_microprice_by_hand():
    bid, ask, bid_size, ask_size = 100.0, 101.0, 3.0, 1.0
    layer = MicroPriceL1()
    layer.update(_update(T0, _book([(bid, bid_size), (99.0, 50.0)], [(ask, ask_size)])))
    # (bid q^a + ask q^b) / (q^b + q^a) = (100 + 303) / 4 = 100.75 = mid + h (q^b − q^a)/(q^b + q^a)
    micro = (bid * ask_size + ask * bid_size) / (bid_size + ask_size)
    assert micro == pytest.approx(100.5 + 0.5 * (3.0 - 1.0) / 4.0)
    assert layer.value == pytest.approx(math.log(100.75 / 100.5), rel=1e-13)
    # a balanced touch is the mid; the thinner side is where the price leans
    layer.update(_update(T0, _touch(100.0, 0.5, 2.0, 2.0)))
    assert layer.value == pytest.approx(0.0, abs=1e-16)
    layer.update(_update(T0, _touch(100.0, 0.5, 1.0, 9.0)))
    assert layer.value < 0.0


def test_depth_microprice_by_hand():
    bids = [(100.0, 2.0), (99.0, 1.0), (98.0, 5.0)]
    asks = [(101.0, 1.0), (102.0, 3.0), (103.0, 4.0)]
    book = _book(bids, asks)
    # N = 2: P̄^b = (200 + 99)/3, D^b = 3; P̄^a = (101 + 306)/4, D^a = 4
    bid_avg, bid_depth = (200.0 + 99.0) / 3.0, 3.0
    ask_avg, ask_depth = (101.0 + 306.0) / 4.0, 4.0
    expected = (bid_avg * ask_depth + ask_avg * bid_depth) / (bid_depth + ask_depth)
    assert expected == pytest.approx((4.0 * 299.0 / 3.0 + 3.0 * 407.0 / 4.0) / 7.0)
    layer = DepthMicroPrice(2)
    layer.update(_update(T0, book))
    assert layer.value == pytest.approx(math.log(expected / 100.5), rel=1e-13)
    assert layer.name == "micro_depth_2"
    # N = 1 is the L1 micro-price
    one, l1 = DepthMicroPrice(1), MicroPriceL1()
    one.update(_update(T0, book))
    l1.update(_update(T0, book))
    assert one.value == pytest.approx(l1.value, rel=1e-14)
    # N beyond the levels present reads what there is (here all three levels)
    deep = DepthMicroPrice(10)
    deep.update(_update(T0, book))
    bid_avg, ask_avg = (200.0 + 99.0 + 490.0) / 8.0, (101.0 + 306.0 + 412.0) / 8.0
    assert deep.value == pytest.approx(math.log((bid_avg * 8.0 + ask_avg * 8.0) / 16.0 / 100.5), rel=1e-13)
    frame = book_frame_from_updates([_update(T0, book)], levels=3)
    assert depth_microprice_series(frame, 2)[0] == pytest.approx(math.log(expected / 100.5), rel=1e-13)
    assert micro_l1_series(frame)[0] == pytest.approx(l1.value, rel=1e-14)


@st.composite
def books(draw) -> L2Book:
    """A valid book of 1–5 levels per side: prices strictly away from the touch, sizes > 0."""
    bid = draw(st.floats(10.0, 1_000.0))
    spread = draw(st.floats(1e-4, 5.0))
    size = st.floats(1e-3, 1e3)
    bid_px = bid - np.concatenate([[0.0], np.cumsum(draw(st.lists(st.floats(1e-3, 2.0), max_size=4)))])
    ask_px = bid + spread + np.concatenate([[0.0], np.cumsum(draw(st.lists(st.floats(1e-3, 2.0), max_size=4)))])
    bid_sz = [draw(size) for _ in bid_px]
    ask_sz = [draw(size) for _ in ask_px]
    return L2Book.from_levels(ts_exch=T0, ts_local=T0, bid_px=bid_px, bid_sz=bid_sz, ask_px=ask_px, ask_sz=ask_sz)


@settings(max_examples=60)
@given(book=books(), levels=st.integers(1, 6))
def test_micro_prices_lie_between_the_sides_and_agree_with_their_series_on_any_book(book, levels):
    frame = book_frame_from_updates([_update(T0, book)], levels=6)
    l1, depth = MicroPriceL1(), DepthMicroPrice(levels)
    for layer in (l1, depth):
        layer.update(_update(T0, book))
        assert layer.dropped == 0
    mid = 0.5 * (book.best_bid + book.best_ask)
    # bid ≤ p_L1 ≤ ask
    assert math.log(book.best_bid / mid) - 1e-12 <= l1.value <= math.log(book.best_ask / mid) + 1e-12
    # P̄^b ≤ p_N ≤ P̄^a: a weighted mean of the two sides' average prices
    n_bid, n_ask = min(levels, book.bid_px.size), min(levels, book.ask_px.size)
    bid_avg = float(book.bid_px[:n_bid] @ book.bid_sz[:n_bid]) / float(book.bid_sz[:n_bid].sum())
    ask_avg = float(book.ask_px[:n_ask] @ book.ask_sz[:n_ask]) / float(book.ask_sz[:n_ask].sum())
    assert math.log(bid_avg / mid) - 1e-12 <= depth.value <= math.log(ask_avg / mid) + 1e-12
    assert l1.value == pytest.approx(micro_l1_series(frame)[0], rel=1e-9, abs=1e-15)
    assert depth.value == pytest.approx(depth_microprice_series(frame, levels)[0], rel=1e-9, abs=1e-15)


# --------------------------------------------------------------------------------------------
# Tapes: online layers against their series
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def binance_minute(shared_data):
    """The first 60 s of the Binance BTCUSDT capture (it opens with the REST snapshot): the tape,
    its venue updates polled every 20 ms and their frame."""
    tape = import_file(shared_data / "binance-futures-hftbacktest/usdm/btcusdt_20240808.gz", "binance-ws").tape
    tape = tape.slice_time(None, int(tape.ts_local[0]) + 60 * S)
    updates = list(replay_updates(tape, 0.02))
    return tape, updates, book_frame_from_updates(updates, levels=20)


@pytest.fixture(scope="module")
def synthetic():
    market = generate(SynthConfig(seed=4, minutes=5.0))
    updates = list(replay_updates(market.tape, 0.1))
    return market.tape, updates, book_frame_from_updates(updates, levels=20)


@pytest.fixture(scope="module")
def binance_stoikov(binance_minute):
    tape, _, _ = binance_minute
    return fit_stoikov_microprice(tape, n_bootstrap=10)


LAYERS = [
    ("l1", lambda fit: MicroPriceL1(), lambda f, fit: micro_l1_series(f)),
    ("depth 5", lambda fit: DepthMicroPrice(5), lambda f, fit: depth_microprice_series(f, 5)),
    ("depth 20", lambda fit: DepthMicroPrice(20), lambda f, fit: depth_microprice_series(f, 20)),
    ("trade 0.5 s", lambda fit: TradeMicroPrice(0.5), lambda f, fit: trade_microprice_series(f, 0.5)),
    ("trade 5 s", lambda fit: TradeMicroPrice(5.0), lambda f, fit: trade_microprice_series(f, 5.0)),
    ("stoikov", lambda fit: StoikovMicroPrice(fit), lambda f, fit: stoikov_series(f, fit)),
]


@pytest.mark.parametrize(("name", "online", "batch"), LAYERS, ids=[c[0] for c in LAYERS])
def test_online_equals_series_on_the_binance_capture(binance_minute, binance_stoikov, name, online, batch):
    _, updates, frame = binance_minute
    values = _run(online(binance_stoikov), updates)
    _assert_same(values, batch(frame, binance_stoikov))
    assert np.isfinite(values).mean() > 0.95 and np.nanstd(values) > 0.0


@pytest.mark.parametrize(("name", "online", "batch"), LAYERS, ids=[c[0] for c in LAYERS])
def test_online_equals_series_on_the_synthetic_market(synthetic, name, online, batch):
    tape, updates, frame = synthetic
    # the synthetic instrument has no tick: the fit takes the smallest spread
    fit = fit_stoikov_microprice(tape, n_imbalance_bins=4, n_bootstrap=0) if name == "stoikov" else None
    values = _run(online(fit), updates)
    _assert_same(values, batch(frame, fit))
    assert np.isfinite(values).mean() > 0.5


def test_stoikov_fit_on_the_binance_capture_is_antisymmetric_and_stores_as_json(binance_minute, binance_stoikov):
    _, updates, _ = binance_minute
    fit = binance_stoikov
    assert fit.tick_usd == 0.1 and fit.series_converged and fit.n_transitions >= 50
    n = fit.n_imbalance_bins
    # edges and centres symmetric about 1/2, G*(I) = −G*(1 − I)
    np.testing.assert_allclose(fit.imbalance_edges + fit.imbalance_edges[::-1], 1.0, atol=1e-12)
    np.testing.assert_allclose(fit.imbalance_centres + fit.imbalance_centres[::-1], 1.0, atol=1e-12)
    visited = np.isfinite(fit.g_ticks)
    np.testing.assert_allclose(fit.g_ticks[visited], -fit.g_ticks[:, ::-1][visited], atol=1e-9)
    assert fit.g_ticks[0, n - 1] > 0.0  # a heavy bid leans up
    # a JSON round trip of the table gives the same layer, update by update
    table = StoikovTable.from_dict(json.loads(json.dumps(fit.table.to_dict())))
    assert table == fit.table
    _assert_same(_run(StoikovMicroPrice(table), updates), _run(StoikovMicroPrice(fit), updates))
    for name in ("spread_ticks", "g_ticks", "std_err_ticks", "transitions"):
        assert name in fit.to_frame().columns
    assert "G*" in fit.summary() and set(fit.params) == set(fit.std_err)


# --------------------------------------------------------------------------------------------
# Stoikov's G* on a Markov chain with known matrices
# --------------------------------------------------------------------------------------------


N_BINS, M_SPREADS = 4, 2
CHANGES_TICKS = np.array([-1, 0, 1])


def _mirror(state: int) -> int:
    spread, bucket = divmod(state, N_BINS)
    return spread * N_BINS + (N_BINS - 1 - bucket)


def _symmetric_kernel(seed: int) -> np.ndarray:
    """W[x, y, c] = P(X' = y, ΔM = CHANGES_TICKS[c] | X = x) for states x = (spread − 1)·n + bin;
    invariant under (x, y, k) ↦ (mirror x, mirror y, −k), with mid moves leaning toward the
    heavier side."""
    rng = np.random.default_rng(seed)
    states = N_BINS * M_SPREADS
    raw = rng.uniform(0.2, 1.0, (states, states, CHANGES_TICKS.size))
    raw[:, :, 1] *= 4.0  # most transitions leave the mid alone
    lean = (np.arange(states) % N_BINS - (N_BINS - 1) / 2.0) / N_BINS
    raw[:, :, 2] *= np.exp(2.0 * lean)[:, None]
    raw[:, :, 0] *= np.exp(-2.0 * lean)[:, None]
    mirror = np.array([_mirror(x) for x in range(states)])
    kernel = 0.5 * (raw + raw[mirror][:, mirror][:, :, ::-1])
    return kernel / kernel.sum(axis=(1, 2), keepdims=True)


def _closed_form(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """G¹ = (1 − Q)⁻¹ R K and G* = (1 − B)⁻¹ G¹ from the true kernel.

    B is stochastic, so 1 − B is singular; (1 − B)⁻¹ G¹ is taken on the complement of its null
    space, (1 − B + 1 πᵀ)⁻¹ G¹ with π the stationary law of B, which equals Σ_k B^k G¹ when
    π G¹ = 0 (asserted)."""
    q = kernel[:, :, 1]
    t = kernel[:, :, 0] + kernel[:, :, 2]
    rk = kernel @ CHANGES_TICKS.astype(float)
    rk = rk.sum(axis=1)
    eye = np.eye(q.shape[0])
    g1 = np.linalg.solve(eye - q, rk)
    b = np.linalg.solve(eye - q, t)
    np.testing.assert_allclose(b.sum(axis=1), 1.0, atol=1e-12)
    values, vectors = np.linalg.eig(b.T)
    stationary = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
    stationary /= stationary.sum()
    assert abs(stationary @ g1) < 1e-12
    g_star = np.linalg.solve(eye - b + np.outer(np.ones(q.shape[0]), stationary), g1)
    return g1, g_star


def _chain_frame(kernel: np.ndarray, transitions: int, seed: int) -> BookFrame:
    """Books every 100 ms from the chain: the state sets the spread (ticks of 1 USD) and the bin of
    I = q^b/(q^b + q^a) (drawn uniformly inside the bin), the mid moves by the drawn change."""
    rng = np.random.default_rng(seed)
    states = kernel.shape[0]
    flat = kernel.reshape(states, -1).cumsum(axis=1)
    draws = rng.random(transitions)
    x = np.empty(transitions + 1, dtype=np.int64)
    mid = np.empty(transitions + 1)
    x[0], mid[0] = 0, 10_000.0
    for n in range(transitions):
        cell = min(int(np.searchsorted(flat[x[n]], draws[n], "right")), flat.shape[1] - 1)
        y, c = divmod(cell, CHANGES_TICKS.size)
        x[n + 1], mid[n + 1] = y, mid[n] + CHANGES_TICKS[c]
    spread = x // N_BINS + 1
    imbalance = (x % N_BINS + rng.uniform(0.05, 0.95, x.size)) / N_BINS
    rows = x.size
    column = lambda values: np.asarray(values, dtype=np.float64).reshape(rows, 1)  # noqa: E731
    return BookFrame(
        ts_local=T0 + np.arange(rows, dtype=np.int64) * 100 * MS,
        bid_px=column(mid - spread / 2.0),
        bid_sz=column(10.0 * imbalance),
        ask_px=column(mid + spread / 2.0),
        ask_sz=column(10.0 * (1.0 - imbalance)),
        bid_levels=np.ones(rows, dtype=np.int64),
        ask_levels=np.ones(rows, dtype=np.int64),
        trade_row=np.zeros(0, dtype=np.int64),
        trade_ts_local=np.zeros(0, dtype=np.int64),
        trade_price=np.zeros(0),
        trade_size=np.zeros(0),
        trade_side=np.zeros(0, dtype=np.int64),
    )


@pytest.fixture(scope="module")
def chain():
    kernel = _symmetric_kernel(seed=2)
    frame = _chain_frame(kernel, 100_000, seed=3)
    fit = fit_stoikov_microprice(frame, n_imbalance_bins=N_BINS, max_spread_ticks=M_SPREADS, bins="uniform", tick_usd=1.0, n_bootstrap=40)
    return kernel, frame, fit


def test_stoikov_g_star_equals_the_closed_form_within_sampling_error(chain):
    kernel, _, fit = chain
    assert isinstance(fit, StoikovFit) and not fit.g_ticks.flags.writeable
    g1, g_star = _closed_form(kernel)
    # the chain is informative: G* spans several tenths of a tick
    assert np.ptp(g_star) > 0.4
    assert fit.n_transitions == 100_000 and fit.dropped_transitions == 0 and fit.series_converged
    np.testing.assert_array_equal(fit.imbalance_edges, [0.25, 0.5, 0.75])
    estimate, std_err = fit.g_ticks.ravel(), fit.std_err_ticks.ravel()
    assert np.all(std_err > 0.0) and np.all(std_err < 0.05)
    assert np.all(np.abs(estimate - g_star) < 4.0 * std_err), (estimate, g_star, std_err)
    np.testing.assert_allclose(fit.g1_ticks.ravel(), g1, atol=0.02)
    # the bins' centres are the mean imbalance of their (symmetrized) samples: ≈ mid-bin here
    np.testing.assert_allclose(fit.imbalance_centres, (np.arange(N_BINS) + 0.5) / N_BINS, atol=0.01)


def test_stoikov_g_star_is_antisymmetric_in_the_imbalance(chain):
    _, _, fit = chain
    np.testing.assert_allclose(fit.g_ticks, -fit.g_ticks[:, ::-1], atol=1e-10)
    for spread in (1, 2):
        for imbalance in np.linspace(0.0, 1.0, 41):
            assert fit.adjustment_ticks(imbalance, spread) == pytest.approx(-fit.adjustment_ticks(1.0 - imbalance, spread), abs=1e-10)
    assert math.isnan(fit.adjustment_ticks(0.5, 3)) and math.isnan(fit.adjustment_ticks(0.5, 0))


def test_stoikov_layer_interpolates_g_star_between_the_bin_centres(chain):
    _, _, fit = chain
    centres, g = fit.imbalance_centres, fit.g_ticks[1]
    halfway = 0.5 * (centres[1] + centres[2])
    assert fit.adjustment_ticks(halfway, 2) == pytest.approx(0.5 * (g[1] + g[2]), abs=1e-12)
    # flat beyond the outermost centres
    assert fit.adjustment_ticks(0.0, 2) == pytest.approx(g[0]) and fit.adjustment_ticks(1.0, 2) == pytest.approx(g[-1])
    # the layer: ln(m + G* tick) − ln m, from the fit or from its table
    book = _book([(9_999.0, 3.0)], [(10_001.0, 7.0)])  # spread 2 ticks, I = 0.3
    for source in (fit, StoikovTable.from_dict(json.loads(json.dumps(fit.table.to_dict())))):
        layer = StoikovMicroPrice(source)
        layer.update(_update(T0, book))
        assert layer.value == pytest.approx(math.log((10_000.0 + fit.adjustment_ticks(0.3, 2) * 1.0) / 10_000.0), rel=1e-12)
    # a spread the fit has no state for gives NaN, counted apart from bad books
    layer = StoikovMicroPrice(fit)
    layer.update(_update(T0, _book([(9_998.0, 1.0)], [(10_001.0, 1.0)])))
    assert math.isnan(layer.value) and layer.outside == 1 and layer.dropped == 0


def test_stoikov_time_sampling_of_a_regular_frame_equals_book_sampling(chain):
    _, frame, fit = chain
    small = frame.slice(0, 20_000)
    options = dict(n_imbalance_bins=N_BINS, max_spread_ticks=M_SPREADS, tick_usd=1.0, n_bootstrap=0)
    by_book = fit_stoikov_microprice(small, bins="uniform", **options)
    by_time = fit_stoikov_microprice(small, bins="uniform", sample=0.1, **options)
    np.testing.assert_allclose(by_time.g_ticks, by_book.g_ticks, rtol=1e-12)
    assert np.all(np.isnan(by_book.std_err_ticks))
    # equal-count bins: edges symmetric about 1/2, each bin a quarter of the symmetrized samples
    quantile = fit_stoikov_microprice(small, **options)
    edges = quantile.imbalance_edges
    np.testing.assert_allclose(edges + edges[::-1], 1.0, atol=1e-12)
    imbalance = small.bid_sz[:, 0] / (small.bid_sz[:, 0] + small.ask_sz[:, 0])
    symmetrized = np.concatenate([imbalance, 1.0 - imbalance])
    shares = np.bincount(np.searchsorted(edges, symmetrized, "right"), minlength=N_BINS) / symmetrized.size
    np.testing.assert_allclose(shares, 0.25, atol=0.01)


def test_stoikov_jumps_beyond_the_limit_are_dropped_and_counted(chain):
    kernel, frame, _ = chain
    small = frame.slice(0, 5_000)
    changes = np.diff(0.5 * (small.bid_px[:, 0] + small.ask_px[:, 0]))
    fit = fit_stoikov_microprice(
        small, n_imbalance_bins=N_BINS, max_spread_ticks=1, bins="uniform", tick_usd=1.0, n_bootstrap=0, max_mid_change_ticks=0.5
    )
    spread = np.rint(small.ask_px[:, 0] - small.bid_px[:, 0])
    inside = (spread[:-1] == 1) & (spread[1:] == 1)
    assert fit.dropped_transitions == int((~inside).sum())
    assert fit.dropped_jumps == int((inside & (np.abs(changes) > 0.5)).sum())
    assert fit.n_transitions == int((inside & (changes == 0)).sum())


# --------------------------------------------------------------------------------------------
# The trade-informed layer
# --------------------------------------------------------------------------------------------


def test_trade_layer_decays_to_the_mid_with_its_time_constant():
    tau_s = 0.4
    tau_ns = int(tau_s * S)
    layer = TradeMicroPrice(tau_s)
    offset = math.log(100.2 / 100.0)
    steps = [
        (_update(T0, _touch(100.0)), NAN),  # no print yet
        (_update(T0 + S, _touch(100.0), [_trade(T0 + S, 100.2)]), offset),
        (_update(T0 + S + tau_ns, _touch(100.0)), math.exp(-1.0) * offset),
        # the mid moved toward the print: the offset is from the current mid
        (_update(T0 + S + 3 * tau_ns, _touch(100.1)), math.exp(-3.0) * math.log(100.2 / 100.1)),
        (_update(T0 + S + 4 * tau_ns, _touch(100.1), [_trade(T0 + S + 4 * tau_ns, NAN, -1)]), math.exp(-4.0) * math.log(100.2 / 100.1)),
        (_update(T0 + S + 5 * tau_ns, _book([(100.2, 1.0)], [(100.1, 1.0)])), NAN),  # crossed book
        # a new print replaces the old one; the age counts from its local receive time
        (_update(T0 + 3 * S, _touch(100.0), [_trade(T0 + 3 * S - tau_ns, 99.9, -1)]), math.exp(-1.0) * math.log(99.9 / 100.0)),
        (_update(T0 + 3 * S + 40 * tau_ns, _touch(100.0)), math.exp(-41.0) * math.log(99.9 / 100.0)),
    ]
    values = _run(layer, [u for u, _ in steps])
    np.testing.assert_allclose(values, [v for _, v in steps], rtol=1e-12, atol=0)
    assert layer.dropped == 1 and layer.dropped_prints == 1
    assert abs(values[-1]) < 1e-20  # back at the mid
    frame = book_frame_from_updates([u for u, _ in steps], levels=1)
    np.testing.assert_allclose(trade_microprice_series(frame, tau_s), values, rtol=1e-12, atol=0)


def _tick_tape(kind: str, seconds: int = 300, seed: int = 0) -> list[VenueUpdate]:
    """Polls every 100 ms with a print every 2 s, 2 bps either side of the mid.

    ``informative``: the mid jumps to the print's price 0.5 s after it and stays there.
    ``noise``: the mid ignores the prints and takes random ±0.5 bps steps every 0.5 s.
    """
    rng = np.random.default_rng(seed)
    mid = 100.0
    updates, pending = [], None
    for k in range(seconds * 10):
        ts = T0 + k * 100 * MS
        trades = []
        if kind == "informative" and pending is not None and ts >= pending[0]:
            mid, pending = pending[1], None
        if kind == "noise" and k % 5 == 0:
            mid *= 1.0 + 5e-5 * rng.choice([-1.0, 1.0])
        if k % 20 == 10:
            side = int(rng.choice([-1, 1]))
            price = mid * (1.0 + 2e-4 * side)
            trades = [_trade(ts, price, side)]
            pending = (ts + 500 * MS, price)
        updates.append(_update(ts, _touch(mid, 0.005), trades))
    return updates


def _mse_by_hand(updates: list[VenueUpdate], tau_s: float, horizon_s: float):
    """(layer, target) per row by brute force: the last valid print and the mid H ahead."""
    ts = [u.ts_local for u in updates]
    mids = [0.5 * (u.book.bid_px[0] + u.book.ask_px[0]) for u in updates]
    last, ahead = None, 0
    layer, target = [], []
    for n, update in enumerate(updates):
        for trade in update.trades:
            last = trade
        while ahead + 1 < len(ts) and ts[ahead + 1] <= ts[n] + horizon_s * S:
            ahead += 1
        if last is None or ts[n] + horizon_s * S > ts[-1]:
            continue
        age_s = (ts[n] - last.ts_local) / S
        layer.append(math.exp(-age_s / tau_s) * (math.log(last.price) - math.log(mids[n])))
        target.append(math.log(mids[ahead]) - math.log(mids[n]))
    return np.array(layer), np.array(target)


@pytest.mark.parametrize(("kind", "best"), [("informative", 30.0), ("noise", 0.1)])
def test_trade_layer_fit_picks_the_decay_with_the_least_squared_error(kind, best):
    updates = _tick_tape(kind)
    frame = book_frame_from_updates(updates, levels=1)
    decays = (0.1, 0.5, 2.0, 30.0)
    fit = fit_trade_microprice(frame, horizon_s=1.0, decays_s=decays)
    assert isinstance(fit, TradeMicroPriceFit)
    expected = {}
    for tau in decays:
        layer, target = _mse_by_hand(updates, tau, 1.0)
        expected[tau] = float(np.mean((1e4 * (target - layer)) ** 2))
    assert fit.n_rows == layer.size
    assert [tau for tau, _ in fit.mse_bps2] == list(decays)
    np.testing.assert_allclose([mse for _, mse in fit.mse_bps2], [expected[t] for t in decays], rtol=1e-9)
    assert fit.mse_mid_bps2 == pytest.approx(float(np.mean((1e4 * target) ** 2)), rel=1e-9)
    assert fit.decay_s == best == min(expected, key=expected.get)
    layer, target = _mse_by_hand(updates, best, 1.0)
    assert fit.slope == pytest.approx(float(layer @ target / (layer @ layer)), rel=1e-9)
    assert fit.std_err["slope"] > 0.0
    if kind == "informative":
        # the print is where the mid goes: the layer at its right scale removes the predictable half
        # of the error (the other half is the next print's move, in the last 0.5 s of each 2 s)
        assert dict(fit.mse_bps2)[best] == pytest.approx(0.5 * fit.mse_mid_bps2, rel=0.01)
        assert abs(fit.slope - 1.0) < 0.05
    else:
        assert dict(fit.mse_bps2)[best] > fit.mse_mid_bps2
    assert f"τ = {best:g} s" in fit.summary()
    # from the layer's own fit
    assert TradeMicroPrice(fit).decay_s == best


def test_trade_layer_fit_on_the_binance_capture(binance_minute):
    tape, _, frame = binance_minute
    fit = fit_trade_microprice(tape, interval_s=0.1)
    assert fit.decay_s in (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
    assert fit.n_rows > 500 and len(fit.mse_bps2) == 8
    assert dict(fit.mse_bps2)[fit.decay_s] == min(mse for _, mse in fit.mse_bps2)


def test_forecast_mse_by_hand():
    updates = _tick_tape("informative", seconds=60)
    frame = book_frame_from_updates(updates, levels=1)
    rng = np.random.default_rng(1)
    values = rng.normal(0.0, 1e-4, len(frame))
    values[::7] = NAN
    target = np.array([math.log(updates[j].book.bid_px[0] + 0.005) for j in range(len(updates))])
    ahead = np.full(len(frame), NAN)
    ahead[:-10] = target[10:] - target[:-10]  # 1 s = 10 polls
    ok = np.isfinite(values) & np.isfinite(ahead)
    ok[:100] = False
    result = forecast_mse(frame, values, 1.0, start_row=100)
    assert result["n"] == int(ok.sum())
    assert result["mse_layer_bps2"] == pytest.approx(float(np.mean((1e4 * (ahead[ok] - values[ok])) ** 2)), rel=1e-6)
    assert result["mse_mid_bps2"] == pytest.approx(float(np.mean((1e4 * ahead[ok]) ** 2)), rel=1e-6)
    assert result["ratio"] == pytest.approx(result["mse_layer_bps2"] / result["mse_mid_bps2"])
    # the calibrated form fits b on the rows before the split: on this tape b ≈ 1 for the trade layer
    layer = trade_microprice_series(frame, 30.0)
    calibrated = calibrated_forecast_mse(frame, layer, 1.0, split_row=300)
    fit_rows = np.isfinite(layer) & np.isfinite(future_log_return(frame, 1.0))
    fit_rows[300:] = False
    slope = float(layer[fit_rows] @ ahead[fit_rows]) / float(layer[fit_rows] @ layer[fit_rows])
    assert calibrated["slope"] == pytest.approx(slope, rel=1e-6)
    assert calibrated["ratio"] < 1.0
    with pytest.raises(ValueError, match="values"):
        forecast_mse(frame, values[:-1], 1.0)


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


BAD_BOOKS = {
    "none": None,
    "no asks": _book([(100.0, 1.0)], []),
    "crossed": _book([(100.2, 1.0)], [(100.1, 1.0)]),
    "locked": _book([(100.1, 1.0)], [(100.1, 1.0)]),
    "nan bid": _book([(NAN, 1.0)], [(100.1, 1.0)]),
    "inf ask": _book([(100.0, 1.0)], [(INF, 1.0)]),
    "nan size": _book([(100.0, NAN)], [(100.1, 1.0)]),
    "zero size": _book([(100.0, 0.0)], [(100.1, 1.0)]),
    "negative size": _book([(100.0, 1.0)], [(100.1, -2.0)]),
}


@pytest.mark.parametrize("bad", BAD_BOOKS)
@pytest.mark.parametrize("name", ["l1", "depth", "trade", "stoikov"])
def test_bad_books_are_dropped_counted_and_give_nan(chain, name, bad):
    _, _, fit = chain
    layer = {
        "l1": MicroPriceL1,
        "depth": lambda: DepthMicroPrice(3),
        "trade": lambda: TradeMicroPrice(1.0),
        "stoikov": lambda: StoikovMicroPrice(fit),
    }[name]()
    good = _book([(9_999.5, 2.0), (9_999.0, 1.0)], [(10_000.5, 1.0), (10_001.0, 1.0)])
    updates = [
        _update(T0, good, [_trade(T0, 10_000.2)]),
        _update(T0 + 100 * MS, BAD_BOOKS[bad], [_trade(T0 + 100 * MS, 10_000.3)]),
        _update(T0 + 200 * MS, good),
    ]
    values = _run(layer, updates)
    assert layer.dropped == 1
    assert np.isfinite(values[0]) and math.isnan(values[1]) and np.isfinite(values[2])
    frame = book_frame_from_updates(updates, levels=3)
    batch = {
        "l1": lambda: micro_l1_series(frame),
        "depth": lambda: depth_microprice_series(frame, 3),
        "trade": lambda: trade_microprice_series(frame, 1.0),
        "stoikov": lambda: stoikov_series(frame, fit),
    }[name]()
    _assert_same(values, batch)


def test_a_bad_deep_level_spoils_the_depth_layer_only():
    book = _book([(100.0, 1.0), (NAN, 1.0)], [(100.1, 1.0), (100.2, 1.0)])
    l1, depth = MicroPriceL1(), DepthMicroPrice(2)
    for layer in (l1, depth):
        layer.update(_update(T0, book))
    assert l1.value == pytest.approx(0.0, abs=1e-15) and l1.dropped == 0
    assert math.isnan(depth.value) and depth.dropped == 1


@pytest.mark.parametrize(("price", "size", "side"), [(NAN, 1.0, 1), (INF, 1.0, 1), (-1.0, 1.0, -1), (100.0, 0.0, 1), (100.0, NAN, -1)])
def test_invalid_prints_are_ignored_and_counted(price, size, side):
    layer = TradeMicroPrice(1.0)
    layer.update(_update(T0, _touch(100.0), [Trade(ts_exch=T0, ts_local=T0, price=price, size=size, aggressor=Side(side))]))
    assert math.isnan(layer.value) and layer.dropped_prints == 1 and layer.dropped == 0


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: DepthMicroPrice(0), "levels"),
        (lambda: DepthMicroPrice(2.5), "levels"),
        (lambda: TradeMicroPrice(0.0), "decay_s"),
        (lambda: TradeMicroPrice(-1.0), "decay_s"),
        (lambda: TradeMicroPrice(NAN), "decay_s"),
        (lambda: trade_microprice_series(_FRAME, INF), "decay_s"),
        (lambda: depth_microprice_series(_FRAME, 0), "levels"),
        (lambda: fit_stoikov_microprice(_FRAME, n_imbalance_bins=1), "n_imbalance_bins"),
        (lambda: fit_stoikov_microprice(_FRAME, max_spread_ticks=0), "'max_spread_ticks'"),
        (lambda: fit_stoikov_microprice(_FRAME, n_imbalance_bins=0), "'n_imbalance_bins'"),
        (lambda: fit_stoikov_microprice(_FRAME, bins="equal"), "bins"),
        (lambda: fit_stoikov_microprice(_FRAME, sample=-0.1), "sample"),
        (lambda: fit_stoikov_microprice(_FRAME, n_bootstrap=-1), "n_bootstrap"),
        (lambda: fit_stoikov_microprice(_FRAME, tick_usd=0.0), "tick_usd"),
        (lambda: fit_stoikov_microprice(_FRAME, max_mid_change_ticks=-1.0), "max_mid_change_ticks"),
        (lambda: fit_stoikov_microprice(_FRAME, tick_usd=1.0), "transitions"),
        (lambda: fit_trade_microprice(_FRAME, decays_s=()), "decays_s"),
        (lambda: fit_trade_microprice(_FRAME, decays_s=(1.0, -1.0)), "decays_s"),
        (lambda: fit_trade_microprice(_FRAME, horizon_s=0.0), "horizon_s"),
        (lambda: fit_trade_microprice(_FRAME), "print"),
        (lambda: StoikovTable(tick_usd=0.0, rows=()), "tick_usd"),
        (lambda: StoikovTable(tick_usd=1.0, rows=(((0.2, 0.8), (1.0,)),)), "rows"),
        (lambda: StoikovTable(tick_usd=1.0, rows=(((0.8, 0.2), (1.0, -1.0)),)), "rows"),
        (lambda: StoikovTable(tick_usd=1.0, rows=(((0.2, 0.8), (NAN, 1.0)),)), "rows"),
    ],
)
def test_bad_arguments_raise_naming_the_field(make, field):
    with pytest.raises(ValueError, match=field):
        make()


def test_stoikov_layer_needs_a_fit():
    with pytest.raises(TypeError, match="fit"):
        StoikovMicroPrice({"tick_usd": 1.0, "rows": []})
    with pytest.raises(TypeError, match="data"):
        fit_stoikov_microprice([1, 2, 3])


_FRAME = book_frame_from_updates([_update(T0 + k * S, _touch(100.0, 0.5, 1.0 + k, 1.0)) for k in range(20)], levels=1)
