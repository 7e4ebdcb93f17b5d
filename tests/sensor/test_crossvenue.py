"""Cross-venue lead-lag: recovery on venues with a known lag, the online layer, real Binance data."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from mmlab.config import InstrumentSpec, SimConfig
from mmlab.data.synth import SynthConfig, generate
from mmlab.data.tape import EventKind, Tape
from mmlab.sensor.crossvenue import (
    CrossVenueMid,
    LeadLagParams,
    cross_venue_series,
    fit_lead_lag,
    mid_series,
    out_of_sample_lead_lag,
)
from mmlab.sim.venue import SimVenue
from mmlab.testing import T0_NS, make_book, make_update
from mmlab.types import L2Book

SIGMA_PER_SQRT_S = 2e-4
UPDATES_PER_S = 30.0


def venue_tape(ts: np.ndarray, log_mid: np.ndarray, tick: float, coin: str) -> Tape:
    """A one-level book per update (clear, bid, ask) whose touch brackets exp(log_mid) on the tick grid."""
    mid = np.exp(log_mid)
    bid = np.floor(mid / tick) * tick
    n = ts.size
    columns = {
        "ts_local": np.repeat(ts, 3),
        "kind": np.tile([EventKind.BOOK_CLEAR, EventKind.BOOK, EventKind.BOOK], n),
        "side": np.tile([0, 1, -1], n),
        "price": np.column_stack([np.full(n, np.nan), bid, bid + tick]).ravel(),
        "size": np.tile([0.0, 1.0, 1.0], n),
        "rate": np.full(3 * n, np.nan),
        "trade_id": np.zeros(3 * n),
    }
    columns["ts_exch"] = columns["ts_local"]
    return Tape.from_columns(columns, instrument=InstrumentSpec(coin=coin), venue=coin.lower())


def two_venues(seed: int, *, lag_s: float = 0.25, basis: float = 3e-4, seconds: float = 600.0) -> tuple[Tape, Tape]:
    """A latent log price y (Brownian, σ per √s) on a 1 ms grid; the target shows y(t − lag_s) and
    the other venue y(t) − basis, each at its own Poisson update times (rate 30/s)."""
    rng = np.random.default_rng(seed)
    step_ns = 1_000_000
    n = int(seconds * 1000)
    latent = math.log(100.0) + np.cumsum(rng.normal(0.0, SIGMA_PER_SQRT_S * math.sqrt(1e-3), n))

    def update_times() -> np.ndarray:
        t = np.cumsum(rng.exponential(1.0 / UPDATES_PER_S, int(seconds * UPDATES_PER_S * 1.2)))
        return np.unique((T0_NS + 1e9 * t[t < seconds - 1.0]).astype(np.int64))

    ts_target, ts_other = update_times(), update_times()
    lag_ns = int(round(lag_s * 1e9))
    target = latent[np.clip((ts_target - lag_ns - T0_NS) // step_ns, 0, n - 1)]
    other = latent[(ts_other - T0_NS) // step_ns] - basis
    return venue_tape(ts_target, target, 1e-3, "TGT"), venue_tape(ts_other, other, 1e-3, "OTH")


@pytest.fixture(scope="module")
def venues() -> tuple[Tape, Tape]:
    return two_venues(1)


def test_fit_recovers_a_known_lag_basis_and_noise(venues: tuple[Tape, Tape]) -> None:
    target, other = venues
    result = fit_lead_lag(target, other, max_lag_s=1.0, grid_s=0.01)
    p, se = result.params, result.std_err
    assert abs(p.lag_s - 0.25) < max(3 * se["lag_s"], 0.01)
    assert result.lags_s[int(np.argmax(result.correlation))] == pytest.approx(0.25)
    assert abs(p.basis - 3e-4) < 3 * se["basis"] + 2e-6  # + the tick's rounding bias
    # the layer's error is the staleness of two Poisson(λ) feeds: Var = σ² E|age_T − age_O| = σ²/λ
    assert p.noise_var == pytest.approx(SIGMA_PER_SQRT_S**2 / UPDATES_PER_S, rel=0.15)
    assert abs(p.bias) < 0.05 * math.sqrt(p.noise_var)
    low, high = result.conf_int()["lag_s"]
    assert low < 0.25 < high or abs(p.lag_s - 0.25) < 0.01
    text = result.summary()
    assert "OTH leads by" in text and "bps" in text
    assert result.correlation.flags.writeable is False


def test_a_lagging_other_venue_gives_a_negative_lag(venues: tuple[Tape, Tape]) -> None:
    target, other = venues
    result = fit_lead_lag(other, target, max_lag_s=1.0, bootstrap_replicates=50)
    assert result.params.lag_s == pytest.approx(-0.25, abs=0.01)
    assert result.params.basis == pytest.approx(-3e-4, abs=1e-5)


def test_the_leading_venue_improves_the_forecast_out_of_sample(venues: tuple[Tape, Tape]) -> None:
    target, other = venues
    fit, table = out_of_sample_lead_lag(target, other, max_lag_s=1.0, bootstrap_replicates=50)
    one_second = table.set_index("horizon_s").loc[1.0]
    # the other venue knows the target's next 0.25 s: MSE ratio ≈ (1 − 0.25) + noise ≈ 0.8
    assert one_second["ratio_layer"] < 0.9
    assert one_second["n"] > 1000
    # a venue lagging by 0.25 s adds nothing for the target's future (weights near 0 or worse)
    _, reverse = out_of_sample_lead_lag(other, target, max_lag_s=1.0, bootstrap_replicates=50)
    assert reverse.set_index("horizon_s").loc[1.0, "ratio_layer"] > 1.0


def test_the_synthetic_latent_value_as_a_second_venue() -> None:
    """A venue that shows generate()'s latent value 0.5 s late: the synthetic book reacts to order
    flow at once (impact), so the target leads by 0.5 s, but the latent value still forecasts the
    lagging public mid 10 s ahead better than the mid itself."""
    market = generate(SynthConfig(seed=3, minutes=20))
    path = market.path
    delay_ns = 500_000_000
    ts = path["ts_exch"].to_numpy() + int(market.config.feed_latency_s * 1e9) + delay_ns
    other = venue_tape(ts, path["log_fair_value"].to_numpy() - 2e-4, 1e-4, "V")
    fit, table = out_of_sample_lead_lag(market.tape, other, max_lag_s=3.0, bootstrap_replicates=50)
    assert fit.params.lag_s == pytest.approx(-0.5, abs=0.05)
    assert table.set_index("horizon_s").loc[10.0, "ratio_layer"] < 0.95


def test_online_layer_matches_the_batch_series(venues: tuple[Tape, Tape]) -> None:
    target, other = venues
    params = fit_lead_lag(target, other, max_lag_s=1.0, bootstrap_replicates=20).params
    # a short half-life makes the basis move at every step, so the comparison is not trivial
    params = dataclasses.replace(params, basis_half_life_s=2.0)
    start = int(target.ts_local[0]) - 200_000_000
    grid = np.arange(start, start + 60 * 10**9, 50_000_000)
    feature = CrossVenueMid(params)
    target_venue, other_venue = SimVenue(target, SimConfig()), SimVenue(other, SimConfig())
    online = []
    for t in grid.tolist():
        feature.update_other(other_venue.poll(t))
        feature.update(target_venue.poll(t))
        online.append(feature.value)
    batch = cross_venue_series(target, other, params, grid)
    assert np.array_equal(np.isnan(online), np.isnan(batch["value"].to_numpy()))
    np.testing.assert_allclose(online, batch["value"].to_numpy(), rtol=0, atol=1e-13)
    assert np.isfinite(batch["value"].to_numpy()[-1]) and feature.basis != params.basis
    assert feature.dropped >= 1  # the polls before the first book


def _params(**changes: float) -> LeadLagParams:
    values = dict(lag_s=0.2, basis=1e-4, basis_half_life_s=60.0, noise_var=1e-8, bias=0.0, peak_correlation=0.5, grid_s=0.01)
    return LeadLagParams(**{**values, **changes})


def test_layer_sign_staleness_and_bad_books() -> None:
    feature = CrossVenueMid(_params(), max_staleness_s=1.0)
    assert math.isnan(feature.value)
    target = make_book(bid=99.99, ask=100.01, ts=T0_NS)
    other = make_book(bid=100.09, ask=100.11, ts=T0_NS)
    feature.update_other(make_update(other))
    feature.update(make_update(target))
    # ln(100.10) + 1e-4 − ln(100.00) > 0: the other venue is higher, the target should rise
    expected = math.log(100.10) + 1e-4 - math.log(100.0)
    assert feature.value == pytest.approx(expected, abs=1e-12)
    before = (feature.value, feature.basis)
    bad = [
        None,
        make_book(bid=100.2, ask=100.1, ts=T0_NS + 1),  # crossed
        make_book(bid=float("nan"), ask=100.1, ts=T0_NS + 1),
        make_book(bid=99.0, ask=float("inf"), ts=T0_NS + 1),
    ]
    for book in bad:
        feature.update(make_update(book, ts=T0_NS + 10))
        feature.update_other(make_update(book, ts=T0_NS + 10))
    one_sided = L2Book.from_levels(ts_exch=T0_NS, ts_local=T0_NS, bid_px=[99.0], bid_sz=[1.0], ask_px=[], ask_sz=[])
    feature.update(make_update(one_sided, ts=T0_NS + 10))
    assert (feature.dropped, feature.dropped_other) == (5, 4)
    assert (feature.value, feature.basis) == before
    # the other venue's book is now older than max_staleness_s
    feature.update(make_update(make_book(bid=99.99, ask=100.01, ts=T0_NS + 2 * 10**9)))
    assert math.isnan(feature.value)


def test_fit_rejects_bad_input(venues: tuple[Tape, Tape]) -> None:
    target, other = venues
    with pytest.raises(ValueError, match="'grid_s'"):
        fit_lead_lag(target, other, grid_s=0.0)
    end = int(target.ts_local[-1])
    later = venue_tape(np.array([end + 10**9, end + 2 * 10**9]), np.log([100.0, 100.1]), 1e-3, "LATE")
    with pytest.raises(ValueError, match="do not overlap"):
        fit_lead_lag(target, later)
    with pytest.raises(ValueError, match="'clock'"):
        mid_series(target, clock="venue")
    with pytest.raises(ValueError, match="max_staleness_s"):
        CrossVenueMid(_params(), max_staleness_s=-1.0)


def test_real_btcusdt_against_btcusd_perp(shared_data: Path) -> None:
    """The two Binance BTC perpetuals recorded together (README: 23:54:16–23:59:59 UTC)."""
    from mmlab.data.importers import import_file

    folder = shared_data / "binance-futures-hftbacktest"
    usdm = mid_series(import_file(folder / "usdm/btcusdt_20240808.gz", "binance-ws").tape)
    coin_m = mid_series(import_file(folder / "cm/btcusd_perp_20240808.gz", "binance-ws").tape)
    result = fit_lead_lag(usdm, coin_m, target_name="BTCUSDT", other_name="BTCUSD_PERP", max_lag_s=2.0, grid_s=0.01)
    p = result.params
    assert result.span_s > 330
    # same asset, same exchange: nearly simultaneous, clearly correlated, a basis of about a bp
    assert abs(p.lag_s) < 0.2 and p.peak_correlation > 0.1
    assert abs(p.basis_bps) < 5 and p.noise_std_bps < 3
    fit, table = out_of_sample_lead_lag(usdm, coin_m, max_lag_s=2.0)
    assert set(table["horizon_s"]) == {1.0, 10.0} and (table["n"] > 1000).all()
    assert np.isfinite(table[["mse_mid", "mse_layer", "mse_combined"]].to_numpy()).all()
