"""Issue 4 on a synthetic market with known truth (regimes, informed fraction 0.2): the filter's
V̂, from a sensor fitted on the first half, is nearer the latent value on the second half than the
mid and than every single micro-price layer; and it predicts the mid better than both anchors."""

import math

import numpy as np
import pytest

from mmlab.calibrate.belief import belief_frame, calibrate_sensor, forecast_mse, latent_log_value, split_tape
from mmlab.config import SensorConfig, StrategyConfig
from mmlab.data.synth import SynthConfig, generate
from mmlab.sensor.calibration import feature_frame
from mmlab.sensor.features import make_features

MICRO_LAYERS = ("micro_l1", "micro_depth5", "micro_stoikov", "micro_trade")


@pytest.mark.slow
def test_fair_value_is_nearer_the_latent_value_than_the_mid_and_every_micro_price_layer():
    market = generate(SynthConfig(seed=11, minutes=20.0))
    assert market.config.informed_fraction == pytest.approx(0.2)
    tape = market.tape
    first, _ = split_tape(tape)
    cut = int(first.ts_local[-1])
    calibration = calibrate_sensor(first)
    frame = belief_frame(tape, StrategyConfig(instrument=tape.instrument), calibration)
    ts = frame["ts_local"].to_numpy()
    latent = latent_log_value(market, ts)
    judged = ts > cut

    def rmse_bps(log_price: np.ndarray) -> float:
        ok = judged & np.isfinite(log_price)
        return 1e4 * math.sqrt(float(np.mean((log_price[ok] - latent[ok]) ** 2)))

    log_mid = np.log(frame["mid"].to_numpy())
    rmse = {"vhat": rmse_bps(np.log(frame["fair_value"].to_numpy())), "mid": rmse_bps(log_mid)}
    # each micro-price layer on its own, its model fitted on the first half like the sensor
    from mmlab.sensor.features import fit_feature_params

    params = fit_feature_params(MICRO_LAYERS, first)
    layers = feature_frame(tape, lambda: make_features(MICRO_LAYERS, SensorConfig(), params), interval_s=0.1)
    assert np.array_equal(layers.ts_local, ts)
    for name in MICRO_LAYERS:
        rmse[name] = rmse_bps(layers.log_mid + layers.columns[name])
    best_layer = min(MICRO_LAYERS, key=rmse.get)
    assert rmse["vhat"] < rmse["mid"] and rmse["vhat"] < rmse[best_layer], rmse
    for horizon in (1.0, 10.0):
        mse = forecast_mse(frame, horizon, start_ns=cut)
        assert mse["mse_vhat"] < mse["mse_mid"] and mse["mse_vhat"] < mse["mse_micro_l1"], (horizon, mse)
