"""Open interest and liquidation pressure: hand-made contexts, a real liquidation fill, synthetic data."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mmlab.data.synth import SynthConfig, generate
from mmlab.sensor.context import (
    AssetContext,
    LiquidationFill,
    LiquidationPressure,
    OpenInterestFlow,
    context_series,
    contexts_of,
    fit_context,
    parse_liquidation_fills,
)
from mmlab.sensor.participants import trades_of
from mmlab.testing import T0_NS, make_update
from mmlab.types import Side, Trade

S = 1_000_000_000
LN2 = math.log(2.0)


def ctx(t_s: float, open_interest: float, mark: float) -> AssetContext:
    return AssetContext(ts_local=T0_NS + int(t_s * S), open_interest=open_interest, mark_price=mark)


def trade(t_s: float, side: Side, size: float) -> Trade:
    ts = T0_NS + int(t_s * S)
    return Trade(ts_exch=ts, ts_local=ts, price=100.0, size=size, aggressor=side)


@pytest.mark.parametrize(
    ("oi_after", "mark_after", "sign"),
    [
        (1010.0, 101.0, +1),  # new longs
        (1010.0, 99.0, -1),  # new shorts
        (990.0, 101.0, -1),  # short covering
        (990.0, 99.0, +1),  # long liquidation
    ],
)
def test_position_build_reads_the_four_cases(oi_after: float, mark_after: float, sign: int) -> None:
    feature = OpenInterestFlow()
    feature.update_context(ctx(0, 1000.0, 100.0))
    assert math.isnan(feature.value)
    feature.update_context(ctx(10, oi_after, mark_after))
    rate = math.log(oi_after / 1000.0) / 10.0
    assert feature.oi_change_per_s == pytest.approx(rate)
    assert feature.value == pytest.approx(sign * abs(rate))


def test_open_interest_ignores_repeats_and_bad_contexts() -> None:
    feature = OpenInterestFlow()
    feature.update_context(ctx(0, 1000.0, 100.0))
    feature.update_context(ctx(5, 1000.0, 100.0))  # the same context polled again: no interval
    feature.update_context(ctx(6, float("nan"), 100.0))
    feature.update_context(ctx(6, 1000.0, 0.0))
    feature.update_context(ctx(10, 1020.0, 100.5))
    assert feature.dropped == 2
    assert feature.oi_change_per_s == pytest.approx(math.log(1.02) / 10.0)
    before = feature.value
    feature.update_context(ctx(9, 1030.0, 100.0))  # time going back
    assert feature.dropped == 3 and feature.value == before
    # an update that carries open interest (a field VenueUpdate may gain) is a context
    carrier = SimpleNamespace(ts_local=T0_NS + 20 * S, open_interest=1000.0, mark_price=100.0, funding_rate=0.0, trades=(), book=None)
    feature.update(carrier)
    assert feature.oi_change_per_s == pytest.approx(math.log(1000.0 / 1020.0) / 10.0)


def test_liquidation_proxy_one_sided_flow_while_oi_falls() -> None:
    feature = LiquidationPressure(half_life_s=60.0)
    assert math.isnan(feature.value)
    feature.update_context(ctx(0, 1000.0, 100.0))
    assert feature.value == 0.0
    # 8 coins bought, 2 sold (F = 0.6) while OI falls by 10: 6 coins of forced buying
    feature.update(make_update(None, ts=T0_NS + 5 * S, trades=[trade(4, Side.BUY, 8.0), trade(5, Side.SELL, 2.0)]))
    feature.update_context(ctx(10, 990.0, 100.2))
    assert feature.value == pytest.approx(6.0 * LN2 / 60.0)
    # one half-life later it has halved
    feature.update(make_update(None, ts=T0_NS + 70 * S))
    assert feature.value == pytest.approx(3.0 * LN2 / 60.0)
    # rising OI or balanced flow add nothing
    feature.update(make_update(None, ts=T0_NS + 75 * S, trades=[trade(75, Side.SELL, 5.0), trade(75, Side.BUY, 5.0)]))
    feature.update_context(ctx(80, 900.0, 100.0))
    feature.update(make_update(None, ts=T0_NS + 85 * S, trades=[trade(85, Side.SELL, 5.0)]))
    feature.update_context(ctx(90, 950.0, 99.0))
    assert feature.value == pytest.approx(6.0 * 0.5 ** (80.0 / 60.0) * LN2 / 60.0)
    # sellers while OI falls: forced selling, negative
    feature.update(make_update(None, ts=T0_NS + 95 * S, trades=[trade(95, Side.SELL, 4.0)]))
    feature.update_context(ctx(100, 930.0, 98.0))
    assert feature.proxy_coins_per_s == pytest.approx((6.0 * 0.5 ** (90.0 / 60.0) - 20.0) * LN2 / 60.0)
    feature.update(make_update(None, ts=T0_NS + 101 * S, trades=[trade(101, Side.BUY, float("nan"))]))
    assert feature.dropped == 1


def test_marked_liquidations_count_once() -> None:
    feature = LiquidationPressure(half_life_s=60.0)
    feature.update_context(ctx(0, 1000.0, 100.0))
    fill = LiquidationFill(
        ts_exch=T0_NS, coin="BTC", price=100.0, size=3.0, fill_side=Side.SELL, forced_side=Side.BUY, liquidated_user="0xL", mark_price=100.0, method="market"
    )
    feature.add_liquidation(fill, T0_NS + 2 * S)
    feature.update(make_update(None, ts=T0_NS + 5 * S, trades=[trade(2, Side.BUY, 3.0), trade(4, Side.BUY, 7.0)]))
    feature.update_context(ctx(10, 990.0, 100.2))
    # 3 marked + (10 − 3 closed) · F(=1) from the proxy
    assert feature.marked_coins_per_s == pytest.approx(3.0 * 0.5 ** (8.0 / 60.0) * LN2 / 60.0)
    assert feature.proxy_coins_per_s == pytest.approx(7.0 * LN2 / 60.0)
    assert feature.value == pytest.approx(feature.marked_coins_per_s + feature.proxy_coins_per_s)


def test_real_liquidation_fill(shared_data: Path) -> None:
    path = shared_data / "hyperliquid-api-samples/nautilus-hyperliquid-test-data/ws_user_fill_liquidation.json"
    text = path.read_text()
    raw = json.loads(text)["data"]["fills"][0]
    (fill,) = parse_liquidation_fills(text, where=str(path))
    assert fill.liquidated_user == raw["liquidation"]["liquidatedUser"]
    assert (fill.size, fill.price, fill.mark_price) == (float(raw["sz"]), float(raw["px"]), float(raw["liquidation"]["markPx"]))
    assert fill.ts_exch == raw["time"] * 1_000_000 and fill.method == "market"
    # the owner sold to the liquidated user: a short was bought in
    assert fill.fill_side is Side.SELL and fill.forced_side is Side.BUY and fill.signed_forced_size > 0
    (own,) = parse_liquidation_fills(text, user=raw["liquidation"]["liquidatedUser"])
    assert own.forced_side is Side.SELL
    # fills without a liquidation object are skipped
    plain = {"channel": "userFills", "data": {"user": "0xU", "fills": [{k: v for k, v in raw.items() if k != "liquidation"}]}}
    assert parse_liquidation_fills(plain) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [({"sz": "abc"}, "'sz'"), ({"side": "X"}, "'side'"), ({"time": "soon"}, "'time'"), ({"liquidation": {"markPx": "1"}}, "'liquidatedUser'")],
)
def test_malformed_liquidation_fills_name_the_field(shared_data: Path, change: dict, field: str) -> None:
    path = shared_data / "hyperliquid-api-samples/nautilus-hyperliquid-test-data/ws_user_fill_liquidation.json"
    message = json.loads(path.read_text())
    message["data"]["fills"][0].update(change)
    with pytest.raises(ValueError, match=f"f.json:7: data.fills\\[0\\].*{field}"):
        parse_liquidation_fills(message, where="f.json:7")
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_liquidation_fills("{", where="f.json:8")


@pytest.fixture(scope="module")
def market():
    return generate(SynthConfig(seed=2, minutes=30))


def test_online_features_match_the_batch_series(market) -> None:
    tape = market.tape
    grid = np.arange(int(tape.ts_local[0]), int(tape.ts_local[-1]), S // 2)
    batch = context_series(tape, grid, half_life_s=60.0).to_numpy()
    open_interest, pressure = OpenInterestFlow(), LiquidationPressure(half_life_s=60.0)
    trades, contexts = trades_of(tape), contexts_of(tape)
    trade_ts = np.array([t.ts_local for t in trades])
    context_ts = np.array([c.ts_local for c in contexts])
    online, t_start, c_start = [], 0, 0
    for t in grid.tolist():
        t_end = int(np.searchsorted(trade_ts, t, side="right"))
        c_end = int(np.searchsorted(context_ts, t, side="right"))
        for context in contexts[c_start:c_end]:
            # the trades up to a context belong to the interval it closes
            cut = int(np.searchsorted(trade_ts, context.ts_local, side="right"))
            for item in trades[t_start:cut]:
                pressure.add_trade(item)
            t_start = max(t_start, cut)
            open_interest.update_context(context)
            pressure.update_context(context)
        c_start = c_end
        pressure.update(make_update(None, ts=t, trades=trades[t_start:t_end]))
        t_start = t_end
        online.append((open_interest.oi_change_per_s, open_interest.value, pressure.value))
    online = np.array(online)
    assert np.array_equal(np.isnan(online), np.isnan(batch))
    np.testing.assert_allclose(online, batch, rtol=1e-9, atol=1e-15)
    assert np.nanmax(np.abs(batch[:, 2])) > 0  # some interval had falling OI and one-sided flow


def test_synthetic_open_interest_predicts_nothing(market) -> None:
    """The synthetic OI is an OU process independent of the price, so the position-build signal
    (OI change × price-change sign) must have a slope of 0 within noise. The liquidation proxy is
    not tested for 0: its flow-share factor F carries the (real) information of signed flow."""
    result = fit_context(market.tape)
    p = result.params
    assert p.n_contexts == 30 and p.mean_interval_s == pytest.approx(60.0)
    # OU of stationary log-std 0.02 and correlation time 3600 s: |d ln O / dt| over 60 s is ~1e-4 /s
    assert 1e-6 < p.oi_change_per_s_std < 1e-3
    for horizon, slope in p.slope_position_build.items():
        se = result.std_err[f"slope_position_build@{horizon:g}s"]
        assert np.isfinite(se) and abs(slope) < 3.5 * se, horizon
    assert all(np.isfinite(list(p.slope_liquidation_pressure.values())))
    assert "public data do not flag liquidations" in result.summary()


def test_fit_context_needs_asset_contexts(shared_data: Path) -> None:
    from mmlab.data.importers import import_file

    tape = import_file(shared_data / "hyperliquid-api-samples/hftbacktest-ws-recording/btcusd_20250126.gz", "hyperliquid-ws").tape
    with pytest.raises(ValueError, match="ASSET_CTX rows .*'size' = open interest"):
        fit_context(tape)
