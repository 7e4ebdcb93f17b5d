"""Replay the real Binance BTCUSDT capture through the backtester, with a quote cycle every 100 ms.

Line 1: the full six-stage pipeline. Line 2: the same replay with a fixed-spread quoter in place
of the pipeline, which shows the replay engine's own speed. ``events`` counts the recording's
messages (depth diffs, trades and book tickers, about 94,000 over 5.75 minutes), the unit the
budget is written in; ``tape_rows`` counts the level updates they expand to.
Budgets: the pipeline replays the whole tape in <= 15 s; the engine alone >= 500,000 events/s.
"""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

from mmlab.config import SimConfig, StrategyConfig
from mmlab.data.importers import import_file
from mmlab.sim.backtest import run_backtest
from mmlab.sim.baselines import FixedSpreadQuoter

CAPTURE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance-futures-hftbacktest" / "usdm" / "btcusdt_20240808.gz"


def count_messages(path: Path) -> int:
    with gzip.open(path, "rt") as lines:
        return sum(1 for _ in lines)


def measure(name: str, tape, strategy, events: int, budget: dict) -> dict:
    started = time.perf_counter()
    result = run_backtest(tape, StrategyConfig(instrument=tape.instrument), SimConfig(), pipeline=strategy)
    wall = time.perf_counter() - started
    return {
        "benchmark": "replay",
        "strategy": name,
        "events": events,
        "tape_rows": len(tape),
        "cycles": result.summary.cycles,
        "fills": result.summary.fills,
        "wall_s": round(wall, 3),
        "events_per_s": round(events / wall),
        "speedup_vs_realtime": round(tape.span_s / wall, 1),
        **budget,
    }


def main() -> None:
    events = count_messages(CAPTURE)
    started = time.perf_counter()
    tape = import_file(CAPTURE, "binance-ws").tape
    import_s = time.perf_counter() - started
    strategy = StrategyConfig(instrument=tape.instrument)
    from mmlab.pipeline import Pipeline

    pipeline = Pipeline.from_config(strategy)
    line = measure("pipeline", tape, pipeline, events, {"budget_wall_s": 15.0})
    line["import_s"] = round(import_s, 2)
    print(json.dumps(line))
    quoter = FixedSpreadQuoter(tape.instrument, half_spread_bps=1.0, size=0.01, q_max=0.1)
    print(json.dumps(measure("fixed_spread", tape, quoter, events, {"budget_events_per_s": 500_000})))


if __name__ == "__main__":
    main()
