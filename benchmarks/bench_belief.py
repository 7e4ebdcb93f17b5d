"""Does V̂ predict the mid better than the mid itself and the L1 micro-price? Out of sample.

For each data set the sensor is fitted on the first half of the tape (local time) and sensor and
filter run over the whole tape with a cycle every 100 ms; the errors are measured on the second
half only. One JSON line per data set and horizon:

    {"dataset": ..., "horizon_s": 1, "mse_vhat": ..., "mse_mid": ..., "mse_micro_l1": ...}

MSEs are of the log price, in bps²; ``ratio_vhat_mid`` < 1 means V̂ wins. The synthetic market
also reports the RMSE (bps) of V̂, the mid and the micro-price against its latent value.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from mmlab.calibrate.belief import belief_frame, calibrate_sensor, forecast_mse, latent_log_value, split_tape
from mmlab.config import StrategyConfig
from mmlab.data.importers import import_file
from mmlab.data.synth import SynthConfig, generate

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REAL = [
    ("binance_btcusdt", "binance-futures-hftbacktest/usdm/btcusdt_20240808.gz", "binance-ws"),
    ("hyperliquid_btc_s3_hour", "hyperliquid-s3-l2book/market_data/20240101/12/l2Book/BTC.lz4", "hyperliquid-s3"),
    ("hyperliquid_eth_collector", "hyperliquid-ws-collector-csv/HL_data/orderbooks_ETH.csv", "hyperliquid-collector-csv"),
    ("hyperliquid_sol_collector", "hyperliquid-ws-collector-csv/HL_data/orderbooks_SOL.csv", "hyperliquid-collector-csv"),
    ("hyperliquid_btc_collector", "hyperliquid-ws-collector-csv/HL_data/orderbooks_BTC.csv", "hyperliquid-collector-csv"),
]
HORIZONS_S = (1.0, 10.0)


def judge(name: str, tape, extra: dict | None = None) -> list[dict]:
    started = time.perf_counter()
    first, _ = split_tape(tape)
    calibration = calibrate_sensor(first)
    fit_s = time.perf_counter() - started
    config = StrategyConfig(instrument=tape.instrument)
    frame = belief_frame(tape, config, calibration)
    run_s = time.perf_counter() - started - fit_s
    cut = int(first.ts_local[-1])
    lines = []
    for horizon in HORIZONS_S:
        mse = forecast_mse(frame, horizon, start_ns=cut)
        lines.append(
            {
                "benchmark": "belief",
                "dataset": name,
                "horizon_s": horizon,
                **{k: (round(v, 6) if isinstance(v, float) else v) for k, v in mse.items()},
                "ratio_vhat_mid": round(mse["mse_vhat"] / mse["mse_mid"], 4),
                "ratio_vhat_micro_l1": round(mse["mse_vhat"] / mse["mse_micro_l1"], 4),
                "unit": "bps^2",
                "layers": list(calibration.names),
                "fit_s": round(fit_s, 2),
                "run_s": round(run_s, 2),
                **(extra or {}),
            }
        )
    return lines, frame


def synthetic(seed: int) -> None:
    market = generate(SynthConfig(seed=seed, minutes=30.0))
    lines, frame = judge(f"synthetic_seed{seed}", market.tape)
    latent = latent_log_value(market, frame["ts_local"].to_numpy())
    second = frame["ts_local"].to_numpy() >= int(split_tape(market.tape)[0].ts_local[-1])
    rmse = {}
    for column in ("fair_value", "mid", "micro_l1"):
        log_price = np.log(frame[column].to_numpy())
        ok = second & np.isfinite(log_price)
        rmse[f"rmse_latent_{column}_bps"] = round(float(1e4 * math.sqrt(np.mean((log_price[ok] - latent[ok]) ** 2))), 4)
    for line in lines:
        line.update(rmse)
        print(json.dumps(line))


def main() -> None:
    for seed in (11, 12, 13):
        synthetic(seed)
    for name, relative, fmt in REAL:
        tape = import_file(SHARED / relative, fmt).tape
        lines, _ = judge(name, tape)
        for line in lines:
            print(json.dumps(line))


if __name__ == "__main__":
    main()
