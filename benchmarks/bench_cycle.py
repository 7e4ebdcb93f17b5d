"""Time one quote cycle (all six stages, 10 levels a side) on a synthetic market.

The sensor is fitted on another synthetic market with six fair-value layers and no selection (mid,
L1 and depth micro-prices, 5-level imbalance, multi-level OFI, Hawkes imbalance), more than the
selection usually keeps, so the filter's update is timed at its heavy end.

The venue updates are recorded first by replaying the tape through the simulated venue with the
pipeline quoting, so the timed cycles see real books, trades and fills; then a fresh pipeline is
timed on those updates alone. Prints one JSON line: cycle_p50_us, cycle_p99_us, and per-stage
p50 / p99 in microseconds.
"""

from __future__ import annotations

import json
import platform
import time

import numpy as np

from mmlab.calibrate.belief import calibrate_sensor
from mmlab.config import SensorConfig, SimConfig, StrategyConfig
from mmlab.data.synth import SynthConfig, generate
from mmlab.pipeline import STAGES, Pipeline
from mmlab.sim.venue import SimVenue

CYCLES = 6_000
WARMUP = 200


LAYERS = ("micro_l1", "micro_depth5", "bim_5", "ofi_5_1s", "hawkes_imbalance")


def record_updates(minutes: float, seed: int) -> tuple[list, StrategyConfig]:
    market = generate(SynthConfig(minutes=minutes, seed=seed))
    tape = market.tape
    calibration = calibrate_sensor(generate(SynthConfig(minutes=10.0, seed=seed + 1)).tape, features=LAYERS, select=False)
    strategy = StrategyConfig(instrument=tape.instrument, sensor=SensorConfig(calibration=calibration))
    assert strategy.actuary.levels == 10
    pipeline = Pipeline.from_config(strategy, funding_interval_s=tape.funding_interval_s)
    venue = SimVenue(tape, SimConfig())
    step = int(strategy.cycle_interval_s * 1e9)
    ts = int(tape.ts_local[0]) + step
    updates = []
    while ts <= int(tape.ts_local[-1]) and len(updates) < CYCLES + WARMUP:
        update = venue.poll(ts)
        venue.submit(pipeline.cycle(update).actions, ts)
        updates.append(update)
        ts += step
    return updates, strategy


def main() -> None:
    updates, strategy = record_updates(minutes=(CYCLES + WARMUP) / 600 + 1, seed=5)
    pipeline = Pipeline.from_config(strategy)
    for update in updates[:WARMUP]:
        pipeline.cycle(update)
    pipeline.timed = True
    totals = []
    for update in updates[WARMUP:]:
        start = time.perf_counter_ns()
        pipeline.cycle(update)
        totals.append(time.perf_counter_ns() - start)
    totals_us = np.array(totals) / 1e3
    result = {
        "benchmark": "cycle",
        "cycles": len(totals),
        "levels_per_side": strategy.actuary.levels,
        "cycle_p50_us": round(float(np.percentile(totals_us, 50)), 1),
        "cycle_p99_us": round(float(np.percentile(totals_us, 99)), 1),
        "cycle_mean_us": round(float(totals_us.mean()), 1),
        "budget_p50_us": 1000,
        "budget_p99_us": 3000,
        "budget_filter_p50_us": 600,
        "stages": {
            stage: {
                "p50_us": round(float(np.percentile([c[stage] for c in pipeline.stage_ns], 50)) / 1e3, 1),
                "p99_us": round(float(np.percentile([c[stage] for c in pipeline.stage_ns], 99)) / 1e3, 1),
            }
            for stage in STAGES
        },
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
