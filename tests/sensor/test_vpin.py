"""VPIN and bucket order imbalance: exact buckets on hand-made prints, batch equals online."""

import math

import numpy as np
import pytest
from scipy.stats import norm

from mmlab.data.synth import SynthConfig, generate
from mmlab.data.tape import EventKind
from mmlab.sensor.calibration import replay_updates
from mmlab.sensor.flow import prints_from_updates, trade_prints
from mmlab.sensor.vpin import VPIN, VPINParams, daily_bucket_volume, fit_vpin, vpin_buckets
from mmlab.testing import T0_NS as T0
from mmlab.testing import make_tape, make_update
from mmlab.types import Side, Trade

S = 1_000_000_000
NAN = float("nan")


def _trade(ts, side, size, price=100.0):
    return Trade(ts_exch=ts, ts_local=ts, price=price, size=size, aggressor=Side(side))


def _feed(feature, trades):
    for trade in trades:
        feature.update(make_update(None, ts=trade.ts_local, trades=[trade]))


def _tape(trades):
    return make_tape([(t.ts_local, int(EventKind.TRADE), int(t.aggressor), t.price, t.size, NAN, 0) for t in trades])


@pytest.fixture(scope="module")
def synthetic_updates():
    market = generate(SynthConfig(seed=4, minutes=10.0))
    return market, list(replay_updates(market.tape, 0.1))


def test_aggressor_buckets_split_prints_pro_rata_exact_values():
    # bucket volume 2: buy 1.5, sell 1.0 (0.5 of it into bucket 1), buy 3.0 (1.5 into bucket 2,
    # 1.5 into bucket 3), sell 0.5 closes bucket 3
    trades = [_trade(T0, +1, 1.5), _trade(T0 + S, -1, 1.0), _trade(T0 + 2 * S, +1, 3.0), _trade(T0 + 3 * S, -1, 0.5)]
    params = VPINParams(bucket_volume_coins=2.0, window_buckets=2)
    feature = VPIN(params)
    signed = VPIN(params, signed=True)
    _feed(feature, trades[:2])
    _feed(signed, trades[:2])
    assert feature.buckets == 1 and math.isnan(feature.value)
    _feed(feature, trades[2:])
    _feed(signed, trades[2:])
    # buckets: (V_B, V_S) = (1.5, 0.5), (1.5, 0.5), (1.5, 0.5)
    imbalance = (1.5 - 0.5) / 2.0
    assert feature.buckets == 3
    assert feature.value == pytest.approx(imbalance)
    assert signed.value == pytest.approx(imbalance) and signed.name == "vpin_order_imbalance"
    frame = vpin_buckets(_tape(trades), params)
    np.testing.assert_allclose(frame["buy_volume"], [1.5, 1.5, 1.5])
    np.testing.assert_allclose(frame["vpin"].iloc[1:], [imbalance, imbalance])
    np.testing.assert_array_equal(frame["ts_exch"], [T0 + S, T0 + 2 * S, T0 + 3 * S])


def test_vpin_is_unsigned_and_order_imbalance_signed():
    params = VPINParams(bucket_volume_coins=1.0, window_buckets=2)
    trades = [_trade(T0, +1, 1.0), _trade(T0 + S, -1, 1.0)]
    feature, signed = VPIN(params), VPIN(params, signed=True)
    _feed(feature, trades)
    _feed(signed, trades)
    # |+1| and |−1| average to 1; +1 and −1 to 0
    assert feature.value == pytest.approx(1.0)
    assert signed.value == pytest.approx(0.0)


def test_bulk_classification_exact_on_hand_made_bars():
    sigma = 1e-4
    params = VPINParams(bucket_volume_coins=1.0, window_buckets=1, bar_s=1.0, bar_return_std=sigma)
    price_2 = 100.0 * math.exp(1e-4)
    trades = [
        _trade(T0, +1, 0.4, price=100.0),  # bar 0: first price 100, close 100, Δ = 0
        _trade(T0 + S, -1, 1.0, price=price_2),  # bar 1: Δ = +σ
        _trade(T0 + 2 * S, -1, 0.1, price=price_2),  # closes bar 1
    ]
    feature = VPIN(params, classification="bulk")
    _feed(feature, trades)
    assert feature.name == "vpin_bvc"
    # bucket 1 = 0.4 of bar 0 (buy share ½) + 0.6 of bar 1 (buy share Φ(1))
    buy = 0.4 * 0.5 + 0.6 * norm.cdf(1.0)
    assert feature.buckets == 1
    assert feature.order_imbalance == pytest.approx(2.0 * buy - 1.0)
    assert feature.value == pytest.approx(abs(2.0 * buy - 1.0))
    frame = vpin_buckets(_tape(trades), params, classification="bulk")
    assert len(frame) == 1 and frame["buy_volume"].iloc[0] == pytest.approx(buy)
    assert frame["ts_exch"].iloc[0] == T0 + 2 * S


@pytest.mark.parametrize("classification", ["aggressor", "bulk"])
def test_batch_buckets_equal_the_online_feature_on_a_synthetic_tape(synthetic_updates, classification):
    market, updates = synthetic_updates
    fit = fit_vpin(market.tape, buckets=120, window_buckets=10, bar_s=1.0)
    online, signed = VPIN(fit, classification=classification), VPIN(fit, classification=classification, signed=True)
    values, changes, last_rows = [], [], []
    for update in updates:
        before = online.buckets
        online.update(update)
        signed.update(update)
        if online.buckets != before:
            # the batch row of the last bucket this update completed
            values.append(online.value)
            changes.append(signed.value)
            last_rows.append(online.buckets - 1)
    prints, _ = prints_from_updates(updates)
    frame = vpin_buckets(prints, fit.params, classification=classification)
    assert online.buckets == len(frame) >= 100
    np.testing.assert_allclose(values, frame["vpin"].to_numpy()[last_rows], rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(changes, frame["order_imbalance"].to_numpy()[last_rows], rtol=1e-9, atol=1e-12, equal_nan=True)


def test_fit_vpin_sigma_is_the_std_of_bar_log_price_changes(synthetic_updates):
    market, _ = synthetic_updates
    fit = fit_vpin(market.tape, buckets=50, bar_s=2.0)
    prints = trade_prints(market.tape)
    # independent computation with pandas: close of each 2 s bar, changes between bars with trades
    import pandas as pd

    frame = pd.DataFrame({"bar": prints.ts_exch // (2 * S), "log_price": np.log(prints.price)})
    close = frame.groupby("bar")["log_price"].last().to_numpy()
    changes = np.diff(np.concatenate(([np.log(prints.price[0])], close)))
    assert fit.params.bar_return_std == pytest.approx(np.std(changes, ddof=1), rel=1e-12)
    assert fit.params.bucket_volume_coins == pytest.approx(prints.size.sum() / 50)
    assert "bucket volume" in fit.summary()
    daily = daily_bucket_volume(market.tape)
    span_s = (prints.ts_exch[-1] - prints.ts_exch[0]) / S
    assert daily == pytest.approx(prints.size.sum() / span_s * 86400 / 50)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 0.0])
def test_bad_prints_are_ignored_and_counted(bad):
    feature = VPIN(VPINParams(bucket_volume_coins=1.0, window_buckets=1))
    _feed(feature, [_trade(T0, +1, bad), _trade(T0 + S, +1, 1.0, price=bad), _trade(T0 + 2 * S, +1, 1.0)])
    assert feature.dropped == 2 and feature.buckets == 1 and feature.value == pytest.approx(1.0)


def test_bad_parameters_raise_naming_the_field():
    with pytest.raises(ValueError, match="bucket_volume_coins"):
        VPINParams(bucket_volume_coins=0.0)
    with pytest.raises(ValueError, match="window_buckets"):
        VPINParams(bucket_volume_coins=1.0, window_buckets=0)
    with pytest.raises(ValueError, match="bar_return_std"):
        VPIN(VPINParams(bucket_volume_coins=1.0), classification="bulk")
