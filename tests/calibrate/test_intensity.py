"""Fill intensities A e^{−κ δ} per side fitted from trades."""

import numpy as np
import pytest

from mmlab.calibrate.intensity import fit_fill_intensity, fit_intensity_from_depths
from mmlab.config import ActuaryConfig, InstrumentSpec
from mmlab.data.tape import EventKind, Tape

S = 1_000_000_000
TRUTH = dict(bid=(3.0, 0.8), ask=(1.5, 1.4))  # (A per s, κ per bps)


def _poisson_tape(seed=11, duration_s=4000.0, mid=100.0):
    """A constant book around ``mid`` and Poisson trades per side whose depths are exponential:
    exactly Λ(δ) = A e^{−κ δ} (δ ≥ 0)."""
    rng = np.random.default_rng(seed)
    rows = [(0, int(EventKind.BOOK), 1, mid - 0.0001, 5.0), (0, int(EventKind.BOOK), -1, mid + 0.0001, 5.0)]
    for side, aggressor in (("bid", -1), ("ask", 1)):
        A, kappa = TRUTH[side]
        n = rng.poisson(A * duration_s)
        times = np.sort(rng.uniform(1.0, duration_s, n))
        depth = rng.exponential(1.0 / kappa, n)
        price = mid * (1.0 + aggressor * 1e-4 * depth)
        rows += [(int(t * S), int(EventKind.TRADE), aggressor, p, 0.01) for t, p in zip(times, price)]
    rows.append((int(duration_s * S), int(EventKind.BOOK), 1, mid - 0.0001, 5.0))
    rows.sort(key=lambda r: r[0])
    ts, kind, side, price, size = (np.array(c) for c in zip(*rows))
    n = len(ts)
    columns = dict(
        ts_exch=ts, ts_local=ts, kind=kind, side=side, price=price, size=size, rate=np.full(n, np.nan), trade_id=np.arange(n)
    )
    return Tape.from_columns(columns, instrument=InstrumentSpec(coin="SIM"), venue="synthetic", source="poisson")


def test_recovers_known_intensities_within_three_standard_errors():
    fit = fit_fill_intensity(_poisson_tape(), bin_bps=0.1)
    for name in ("bid", "ask"):
        side = getattr(fit, name)
        A, kappa = TRUTH[name]
        assert abs(side.intensity_per_s - A) < 3 * side.intensity_se_per_s, fit.summary()
        assert abs(side.decay_per_bps - kappa) < 3 * side.decay_se_per_bps, fit.summary()
        assert side.intensity_se_per_s < 0.1 * A and side.decay_se_per_bps < 0.1 * kappa
        # the cumulative rates fall with depth
        assert np.all(np.diff(side.rate_per_s) <= 0)
    config = fit.actuary_config(ActuaryConfig(levels=3))
    assert config.levels == 3 and config.intensity_decay_ask_per_bps == fit.ask.decay_per_bps
    assert "bid" in fit.summary()


def test_binance_btcusdt_gives_finite_positive_values(shared_data):
    from mmlab.data.importers import import_file

    tape = import_file(shared_data / "binance-futures-hftbacktest/usdm/btcusdt_20240808.gz", "binance-ws").tape
    fit = fit_fill_intensity(tape.slice_time(None, int(tape.ts_local[0]) + 120 * S))
    for side in (fit.bid, fit.ask):
        values = (side.intensity_per_s, side.decay_per_bps, side.intensity_se_per_s, side.decay_se_per_bps)
        assert all(np.isfinite(v) and v > 0 for v in values), fit.summary()


def test_too_few_trades_is_an_error_naming_the_side():
    with pytest.raises(ValueError, match="ask side"):
        fit_intensity_from_depths(np.linspace(0, 3, 200), np.array([0.1, 0.2]), 100.0)
    with pytest.raises(ValueError, match="duration_s"):
        fit_intensity_from_depths(np.linspace(0, 3, 200), np.linspace(0, 3, 200), 0.0)
