"""The full pipeline against two baselines on the same synthetic markets, the same simulator.

Strategies, all backtested by :func:`mmlab.sim.backtest.run_backtest` with one
:class:`~mmlab.config.SimConfig` (same fees, latencies and queue model) and one cycle interval:

- ``pipeline``: the six-stage pipeline, configured by :func:`pipeline_config`.
- ``avellaneda_stoikov``: :class:`mmlab.sim.baselines.AvellanedaStoikovQuoter` on the mid with a
  constant γ.
- ``fixed_spread``: :class:`mmlab.sim.baselines.FixedSpreadQuoter`.

Fairness protocol (printed with the results):

- Test markets: ``--seeds`` (default 1..5), each ``--minutes`` (30) of :mod:`mmlab.data.synth`
  with ``informed_fraction`` 0.2; training markets: ``--train-seeds`` (default 101..103), same
  length and settings. No parameter of any strategy is chosen on a test seed.
- Shared by all three: the position cap ``q_max`` (coins), the order size (coins), the maker fee
  (default −0.2 bps, the demo's Hyperliquid top-tier rebate; the venue and the actuary use the same
  fee through :func:`~mmlab.sim.backtest.with_maker_fee`), and the horizon τ = the governor's
  holding horizon. The pipeline's governor gets the same ``q_max`` and ``max_order_size``.
- Fixed spread: the half-spread by grid search over :data:`HALF_SPREAD_GRID_BPS`, maximising
  mean / |std| of the per-run PnL over the training seeds.
- Avellaneda–Stoikov: the decay k of the fill intensity is fitted on the training markets
  (exponential MLE of the depth market orders reach,
  :func:`~mmlab.sim.baselines.fit_depth_decay_per_bps`); then γ by grid search over
  :data:`GAMMA_GRID_PER_USD` with the same criterion. σ is estimated online by the quoter itself.
- Pipeline: :func:`pipeline_config` (:func:`~mmlab.calibrate.strategy.calibrate_strategy`: the
  sensor fitted on the first training market, the fill intensities on all three). Its preferences
  (γ_base, β, Kelly fractions) are the library's defaults, not searched.

Per strategy, over the test runs: ``pnl_mean`` and ``pnl_std`` (USD per run, std with ddof 1),
``sharpe_per_min`` = mean / std of the per-minute PnL increments pooled over the runs,
``max_abs_q`` the largest |position| (coins) over all runs, ``fills`` the mean number per run and
``markout_10s_bps`` the size-weighted mean 10 s markout over all fills, ``actions_per_min`` the
order traffic (places, takes, cancels and modifies sent per minute). A last line names the
strategy with the highest ``pnl_mean / pnl_std``. Progress goes to stderr. At most two worker
processes (``--workers``).

Run: ``python benchmarks/bench_strategy.py [--seeds 1 2 3 4 5] [--minutes 30] [--fee-bps -0.2]``.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from mmlab.calibrate.strategy import calibrate_strategy
from mmlab.config import GovernorConfig, SimConfig, StrategyConfig
from mmlab.data.synth import SynthConfig, generate
from mmlab.data.tape import Tape
from mmlab.sim.backtest import BacktestResult, run_backtest, with_maker_fee
from mmlab.sim.baselines import AvellanedaStoikovQuoter, FixedSpreadQuoter, fit_depth_decay_per_bps, sweep_depths_bps

#: candidate half-spreads of the fixed-spread quoter, bps
HALF_SPREAD_GRID_BPS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
#: candidate risk aversions of the Avellaneda–Stoikov quoter, 1/USD
GAMMA_GRID_PER_USD = (0.1, 0.3, 0.5, 1.0, 2.0, 3.0, 10.0)
#: the demo's maker fee (Makefile DEMO_MAKER_FEE_BPS): Hyperliquid's top-tier rebate
DEFAULT_MAKER_FEE_BPS = -0.2
STRATEGIES = ("pipeline", "avellaneda_stoikov", "fixed_spread")


@dataclass(frozen=True, slots=True, kw_only=True)
class Shared:
    """What every strategy shares: cap and order size (coins), fee (bps), horizon (s), market."""

    minutes: float
    informed_fraction: float
    maker_fee_bps: float
    q_max: float
    order_size: float
    horizon_s: float


def log(message: str) -> None:
    print(f"[bench_strategy {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def market_tape(seed: int, shared: Shared) -> Tape:
    return generate(SynthConfig(seed=seed, minutes=shared.minutes, informed_fraction=shared.informed_fraction)).tape


def base_configs(tape: Tape, shared: Shared) -> tuple[StrategyConfig, SimConfig]:
    """The strategy config every baseline runs under (instrument, cycle) and the one venue."""
    return with_maker_fee(StrategyConfig(instrument=tape.instrument), SimConfig(), shared.maker_fee_bps)


def pipeline_config(train_tapes: Sequence[Tape], shared: Shared) -> StrategyConfig:
    """The pipeline's config, every fitted piece fitted on training tapes only.

    :func:`~mmlab.calibrate.strategy.calibrate_strategy` (the sensor on the first training tape,
    the fill intensities on all of them) on a base whose governor has the shared cap, order size
    and horizon, and whose fee is the shared one.
    """
    if not train_tapes:
        raise ValueError("pipeline_config: train_tapes must not be empty")
    base = StrategyConfig(
        instrument=train_tapes[0].instrument,
        governor=GovernorConfig().replace(q_max=shared.q_max, max_order_size=shared.order_size, holding_horizon_s=shared.horizon_s),
    )
    base, _ = with_maker_fee(base, SimConfig(), shared.maker_fee_bps)
    calibration = calibrate_strategy(train_tapes, base=base)
    log(f"pipeline: {calibration.summary()}")
    return calibration.config


def fixed_spread(tape: Tape, shared: Shared, half_spread_bps: float) -> FixedSpreadQuoter:
    return FixedSpreadQuoter(tape.instrument, half_spread_bps=half_spread_bps, size=shared.order_size, q_max=shared.q_max)


def avellaneda_stoikov(tape: Tape, shared: Shared, gamma_per_usd: float, decay_per_bps: float) -> AvellanedaStoikovQuoter:
    return AvellanedaStoikovQuoter(
        tape.instrument, gamma_per_usd=gamma_per_usd, decay_per_bps=decay_per_bps, horizon_s=shared.horizon_s,
        size=shared.order_size, q_max=shared.q_max,
    )


def run_stats(result: BacktestResult) -> dict[str, Any]:
    """The per-run figures the aggregation needs (small, so they cross process boundaries cheaply)."""
    cycles = result.cycles
    ts = cycles["ts_local"].to_numpy()
    pnl = cycles["pnl_usd"].to_numpy()
    start = int(ts[0]) - int(round(result.strategy.cycle_interval_s * 1e9))
    marks = start + np.arange(0, int(result.summary.span_s // 60) + 1) * 60_000_000_000
    # PnL at each minute mark: the last cycle at or before it (0 before the first cycle)
    index = np.searchsorted(ts, marks, side="right") - 1
    pnl_at = np.where(index >= 0, pnl[np.clip(index, 0, None)], 0.0)
    fills = result.fills
    markout = fills["markout_10s_bps"].to_numpy() if len(fills) else np.empty(0)
    size = fills["size"].to_numpy() if len(fills) else np.empty(0)
    ok = np.isfinite(markout)
    return {
        "pnl_usd": float(result.summary.pnl_usd),
        "fills": int(result.summary.fills),
        # order traffic: every message sent to the venue
        "actions": int(
            result.summary.orders_placed + result.summary.takes_sent + result.summary.cancels_sent + result.summary.modifies_sent
        ),
        "span_min": float(result.summary.span_s / 60.0),
        "max_abs_q": float(result.summary.max_abs_position),
        "minute_pnl_usd": np.diff(pnl_at).tolist(),
        "markout_10s_weighted_sum": float(np.sum(markout[ok] * size[ok])),
        "markout_10s_weight": float(np.sum(size[ok])),
        "wall_s": float(result.summary.wall_s),
    }


def score(pnls: Sequence[float]) -> float:
    """The selection criterion: mean / |std| of per-run PnL (±inf for a sure sign, 0 for no PnL)."""
    values = np.asarray(pnls, dtype=float)
    mean = float(np.mean(values))
    std = float(np.std(values, ddof=1)) if values.size > 1 else 0.0
    if std > 0:
        return mean / std
    return math.copysign(math.inf, mean) if mean != 0 else 0.0


# -- worker tasks (module-level so multiprocessing can pickle them) ----------------------------


def train_market_task(seed: int, shared: Shared) -> tuple[int, Tape, np.ndarray, dict[float, float]]:
    """Generate one training market; its market-order depths and the fixed-spread grid's PnLs."""
    tape = market_tape(seed, shared)
    strategy, sim = base_configs(tape, shared)
    depths = sweep_depths_bps(tape, interval_s=strategy.cycle_interval_s)
    pnls = {}
    for half in HALF_SPREAD_GRID_BPS:
        pnls[half] = run_backtest(tape, strategy, sim, pipeline=fixed_spread(tape, shared, half)).summary.pnl_usd
    log(f"train seed {seed}: fixed-spread grid done")
    return seed, tape, depths, pnls


def train_as_task(seed: int, tape: Tape, shared: Shared, decay_per_bps: float) -> tuple[int, dict[float, float]]:
    strategy, sim = base_configs(tape, shared)
    pnls = {}
    for gamma in GAMMA_GRID_PER_USD:
        quoter = avellaneda_stoikov(tape, shared, gamma, decay_per_bps)
        pnls[gamma] = run_backtest(tape, strategy, sim, pipeline=quoter).summary.pnl_usd
    log(f"train seed {seed}: Avellaneda–Stoikov grid done")
    return seed, pnls


def calibrate_task(train_tapes: list[Tape], shared: Shared) -> StrategyConfig:
    started = time.perf_counter()
    config = pipeline_config(train_tapes, shared)
    log(f"pipeline calibrated on the training market in {time.perf_counter() - started:.1f} s")
    return config


def test_task(seed: int, group: str, shared: Shared, choice: dict[str, Any]) -> tuple[int, dict[str, dict[str, Any]]]:
    """Run one test seed: the pipeline alone, or both baselines (the market is regenerated)."""
    tape = market_tape(seed, shared)
    strategy, sim = base_configs(tape, shared)
    out: dict[str, dict[str, Any]] = {}
    if group == "pipeline":
        out["pipeline"] = run_stats(run_backtest(tape, choice["pipeline_config"], sim))
    else:
        quoter = avellaneda_stoikov(tape, shared, choice["gamma_per_usd"], choice["decay_per_bps"])
        out["avellaneda_stoikov"] = run_stats(run_backtest(tape, strategy, sim, pipeline=quoter))
        quoter = fixed_spread(tape, shared, choice["half_spread_bps"])
        out["fixed_spread"] = run_stats(run_backtest(tape, strategy, sim, pipeline=quoter))
    log(f"test seed {seed}: {group} done (" + ", ".join(f"{k} pnl {v['pnl_usd']:.3f} USD" for k, v in out.items()) + ")")
    return seed, out


# -- main --------------------------------------------------------------------------------------


def aggregate(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    pnls = np.array([r["pnl_usd"] for r in runs])
    minutes = np.concatenate([np.asarray(r["minute_pnl_usd"], dtype=float) for r in runs])
    minute_std = float(np.std(minutes, ddof=1)) if minutes.size > 1 else 0.0
    weight = sum(r["markout_10s_weight"] for r in runs)
    return {
        "benchmark": "strategy",
        "strategy": name,
        "pnl_mean": float(np.mean(pnls)),
        "pnl_std": float(np.std(pnls, ddof=1)) if pnls.size > 1 else math.nan,
        "sharpe_per_min": float(np.mean(minutes) / minute_std) if minute_std > 0 else math.nan,
        "max_abs_q": float(max(r["max_abs_q"] for r in runs)),
        "fills": float(np.mean([r["fills"] for r in runs])),
        "markout_10s_bps": sum(r["markout_10s_weighted_sum"] for r in runs) / weight if weight > 0 else math.nan,
        "actions_per_min": float(sum(r["actions"] for r in runs) / sum(r["span_min"] for r in runs)),
        "pnl_per_seed": [round(float(p), 6) for p in pnls],
        "backtest_wall_s_mean": float(np.mean([r["wall_s"] for r in runs])),
    }


def main(argv: Sequence[str] | None = None) -> None:
    governor = GovernorConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5], help="test seeds")
    parser.add_argument("--train-seeds", type=int, nargs="+", default=[101, 102, 103], help="training seeds")
    parser.add_argument("--minutes", type=float, default=30.0, help="length of each synthetic market")
    parser.add_argument("--fee-bps", type=float, default=DEFAULT_MAKER_FEE_BPS, help="maker fee, bps (negative: rebate)")
    parser.add_argument("--informed-fraction", type=float, default=0.2)
    parser.add_argument("--q-max", type=float, default=governor.q_max, help="position cap, coins (all strategies)")
    parser.add_argument("--order-size", type=float, default=governor.max_order_size, help="order size, coins (all strategies)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (at most 2)")
    args = parser.parse_args(argv)
    if set(args.seeds) & set(args.train_seeds):
        parser.error(f"--seeds and --train-seeds overlap: {sorted(set(args.seeds) & set(args.train_seeds))}")
    if not 1 <= args.workers <= 2:
        parser.error("--workers must be 1 or 2")
    if len(args.train_seeds) < 2:
        parser.error("--train-seeds needs at least two seeds (the criterion divides by a std)")
    shared = Shared(
        minutes=args.minutes, informed_fraction=args.informed_fraction, maker_fee_bps=args.fee_bps,
        q_max=args.q_max, order_size=args.order_size, horizon_s=governor.holding_horizon_s,
    )
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(processes=args.workers) as pool:
        log(f"training on seeds {args.train_seeds}: markets, depths and the fixed-spread grid")
        trained = pool.starmap(train_market_task, [(seed, shared) for seed in args.train_seeds])
        train_tapes = [tape for _, tape, _, _ in trained]
        depth_fit = fit_depth_decay_per_bps(np.concatenate([depths for _, _, depths, _ in trained]))
        log(depth_fit.summary())
        fs_scores = {h: score([pnls[h] for _, _, _, pnls in trained]) for h in HALF_SPREAD_GRID_BPS}
        half_spread = max(HALF_SPREAD_GRID_BPS, key=lambda h: fs_scores[h])
        calibration = pool.apply_async(calibrate_task, (train_tapes, shared))
        as_trained = pool.starmap(
            train_as_task, [(seed, tape, shared, depth_fit.decay_per_bps) for seed, tape, _, _ in trained]
        )
        as_scores = {g: score([pnls[g] for _, pnls in as_trained]) for g in GAMMA_GRID_PER_USD}
        gamma = max(GAMMA_GRID_PER_USD, key=lambda g: as_scores[g])
        config = calibration.get()
        log(f"chosen: fixed-spread half-spread {half_spread} bps, AS γ {gamma} /USD, κ {depth_fit.decay_per_bps:.3f} /bps")
        choice = {
            "pipeline_config": config, "half_spread_bps": half_spread, "gamma_per_usd": gamma,
            "decay_per_bps": depth_fit.decay_per_bps,
        }
        tasks = [(seed, group, shared, choice) for seed in args.seeds for group in ("pipeline", "baselines")]
        tested = pool.starmap(test_task, tasks)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in STRATEGIES}
    for _, out in sorted(tested, key=lambda item: item[0]):
        for name, stats in out.items():
            runs[name].append(stats)
    protocol = {
        "test_seeds": list(args.seeds),
        "train_seeds": list(args.train_seeds),
        **{k: v for k, v in asdict(shared).items()},
        "fee_bps": shared.maker_fee_bps,
        "selection": "grid search on the training seeds maximising mean/|std| of per-run PnL",
    }
    chosen = {
        "pipeline": {"sensor_layers": list(config.sensor.calibration.names) if config.sensor.calibration else [],
                     "strategy_config_hash": config.hash_id, "fitted_on_seed": args.train_seeds[0]},
        "avellaneda_stoikov": {"gamma_per_usd": gamma, "decay_per_bps": round(depth_fit.decay_per_bps, 6),
                               "decay_std_err_per_bps": round(depth_fit.std_err, 6), "horizon_s": shared.horizon_s,
                               "train_scores": {str(g): _finite(s) for g, s in as_scores.items()}},
        "fixed_spread": {"half_spread_bps": half_spread, "train_scores": {str(h): _finite(s) for h, s in fs_scores.items()}},
    }
    lines = []
    for name in STRATEGIES:
        line = {**aggregate(name, runs[name]), "parameters": chosen[name], **protocol}
        lines.append(line)
        print(json.dumps(_json_safe(line)), flush=True)
    ratios = {ln["strategy"]: ln["pnl_mean"] / ln["pnl_std"] if ln["pnl_std"] > 0 else math.nan for ln in lines}
    best = max((n for n in ratios if math.isfinite(ratios[n])), key=lambda n: ratios[n], default=None)
    print(json.dumps(_json_safe({
        "benchmark": "strategy", "best_pnl_mean_over_std": best, "pnl_mean_over_std": ratios,
        "pipeline_is_best": best == "pipeline", "wall_s": round(time.perf_counter() - started, 1),
    })), flush=True)  # fmt: skip


def _finite(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _json_safe(value: Any) -> Any:
    """NaN and ±inf as strings, so every line is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


if __name__ == "__main__":
    main()
