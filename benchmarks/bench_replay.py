"""Replay the real Binance BTCUSDT capture through the backtester, with a quote cycle every 100 ms.

``events`` counts the recording's messages (depth diffs, trades and book tickers, about 94,000
over 5.75 minutes), the unit the budgets are written in; ``tape_rows`` counts the level updates
they expand to. Every line times the whole replay from the imported tape to the fills (venue
set-up and tape checks included); the compiled engine is compiled (or loaded from numba's cache)
before any timing and that time is printed on its own line as ``compile_s``.

- ``compile``: time to compile the engine's entry points, or to load them from the cache.
- ``pipeline``: the full six-stage pipeline on the compiled engine (``run_backtest``).
  Budget: the whole tape in <= 15 s.
- ``fixed_spread``: the engine's own speed: the fixed-spread rule compiled into the replay loop
  (:func:`mmlab.sim.engine.run_fixed_spread`). Budget: >= 500,000 events/s. Its fills must equal
  those of the next line, which ``fills_equal_python_quoter`` reports.
- ``fixed_spread_python``: the Python ``FixedSpreadQuoter`` through ``run_backtest`` on the
  compiled engine: the same fills, plus the per-cycle Python cost of the quoter, the evaluator
  and the result tables.
- ``fixed_spread_reference``: the same on the reference (pure Python) engine, for comparison.
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
FILL_COLUMNS = ["ts_exch", "ts_local", "order_id", "side", "price", "size", "fee_usd"]


def count_messages(path: Path) -> int:
    with gzip.open(path, "rt") as lines:
        return sum(1 for _ in lines)


def line(name: str, engine: str, tape, events: int, wall: float, cycles: int, fills: int, **extra) -> dict:
    return {
        "benchmark": "replay",
        "strategy": name,
        "engine": engine,
        "events": events,
        "tape_rows": len(tape),
        "cycles": cycles,
        "fills": fills,
        "wall_s": round(wall, 3),
        "events_per_s": round(events / wall),
        "speedup_vs_realtime": round(tape.span_s / wall, 1),
        **extra,
    }


def backtest(tape, strategy, sim: SimConfig):
    started = time.perf_counter()
    result = run_backtest(tape, StrategyConfig(instrument=tape.instrument), sim, pipeline=strategy)
    return result, time.perf_counter() - started


def quoter(tape) -> FixedSpreadQuoter:
    return FixedSpreadQuoter(tape.instrument, half_spread_bps=1.0, size=0.01, q_max=0.1)


def main() -> None:
    events = count_messages(CAPTURE)
    started = time.perf_counter()
    tape = import_file(CAPTURE, "binance-ws").tape
    import_s = time.perf_counter() - started

    from mmlab.sim.engine import run_fixed_spread, warm_up

    print(json.dumps({"benchmark": "replay", "strategy": "compile", "engine": "compiled", "compile_s": round(warm_up(), 2)}))

    from mmlab.pipeline import Pipeline

    pipeline = Pipeline.from_config(StrategyConfig(instrument=tape.instrument), funding_interval_s=tape.funding_interval_s)
    result, wall = backtest(tape, pipeline, SimConfig())
    print(json.dumps(line("pipeline", "compiled", tape, events, wall, result.summary.cycles, result.summary.fills,
                          budget_wall_s=15.0, import_s=round(import_s, 2))))  # fmt: skip

    python_run, python_wall = backtest(tape, quoter(tape), SimConfig())
    started = time.perf_counter()
    compiled_run = run_fixed_spread(tape, quoter(tape), SimConfig(), cycle_interval_s=0.1)
    wall = time.perf_counter() - started
    same = compiled_run.fills[FILL_COLUMNS].equals(python_run.fills[FILL_COLUMNS])
    print(json.dumps(line("fixed_spread", "compiled", tape, events, wall, len(compiled_run.cycles), len(compiled_run.fills),
                          budget_events_per_s=500_000, fills_equal_python_quoter=bool(same))))  # fmt: skip
    print(json.dumps(line("fixed_spread_python", "compiled", tape, events, python_wall, python_run.summary.cycles,
                          python_run.summary.fills)))  # fmt: skip
    reference_run, reference_wall = backtest(tape, quoter(tape), SimConfig(engine="reference"))
    print(json.dumps(line("fixed_spread_reference", "reference", tape, events, reference_wall,
                          reference_run.summary.cycles, reference_run.summary.fills)))  # fmt: skip


if __name__ == "__main__":
    main()
