"""Backtest: run the pipeline over a tape on the simulated venue and account for every dollar.

Every ``cycle_interval_s`` of local time the runner polls the venue, runs one quote cycle and
submits the actions. PnL is split exactly, with m_k the mid we saw at cycle k and fills valued at
the mid of the cycle that delivered them:

    spread capture   = Σ_fills s (m_k − p) size          what we earned against the mid
    inventory PnL    = Σ_k q_{k−1} (m_k − m_{k−1})        marking the position we carried
    fees             = −Σ fees paid                      (a rebate is positive)
    funding          = Σ funding received
    total            = cash + q_end m_end = spread + inventory + fees + funding

The identity is algebraic (the cross terms telescope), so :func:`run_backtest` checks it against
the venue's own cash accounting and raises if they disagree by more than a micro-dollar.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from mmlab.config import SimConfig, StrategyConfig
from mmlab.data.tape import Tape
from mmlab.evaluator import markouts_from_mids
from mmlab.pipeline import CycleOutput, Pipeline
from mmlab.sim.venue import make_sim_venue
from mmlab.types import MARKOUT_HORIZONS_S, ActionKind, VenueUpdate

__all__ = ["BacktestSummary", "BacktestResult", "run_backtest", "load_backtest", "backtest_synthetic", "with_maker_fee", "AccountingError"]


class Strategy(Protocol):
    """Anything that turns a venue update into order actions: the pipeline or a baseline."""

    def cycle(self, update: VenueUpdate) -> CycleOutput: ...


class AccountingError(RuntimeError):
    """The PnL decomposition does not add up to the venue's cash accounting."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BacktestSummary:
    """Headline figures of one backtest; money in USD, markouts in bps."""

    tape_source: str
    coin: str
    span_s: float
    cycles: int
    fills: int
    volume_usd: float
    pnl_usd: float
    spread_capture_usd: float
    inventory_pnl_usd: float
    fees_usd: float
    funding_usd: float
    max_abs_position: float
    final_position: float
    orders_placed: int
    cancels_sent: int
    modifies_sent: int
    takes_sent: int
    rejections: int
    markout_1s_bps: float
    markout_5s_bps: float
    markout_10s_bps: float
    markout_30s_bps: float
    markout_60s_bps: float
    markout_300s_bps: float
    strategy_config_hash: str
    sim_config_hash: str
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{k}</th><td>{_fmt(v)}</td></tr>" for k, v in self.to_dict().items()
        )
        return f"<table>{rows}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}"
    return str(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class BacktestResult:
    """Summary plus per-cycle, per-fill and per-quote tables."""

    summary: BacktestSummary
    cycles: pd.DataFrame
    fills: pd.DataFrame
    quotes: pd.DataFrame
    strategy: StrategyConfig
    sim: SimConfig

    def plot_prices(self):
        """Mid, V̂ with its band, our best quotes and the position (plotly figure)."""
        from mmlab.reports.plots import prices_figure

        return prices_figure(self.cycles)

    def plot_pnl(self):
        """Cumulative PnL split into spread capture, inventory, fees and funding."""
        from mmlab.reports.plots import pnl_figure

        return pnl_figure(self.cycles)

    def plot_markouts(self):
        """Mean fill markout per horizon with error bars."""
        from mmlab.reports.plots import markouts_figure

        return markouts_figure(self.fills)

    def write(self, directory: str | Path) -> Path:
        """Write ``summary.json``, ``cycles.parquet``, ``fills.parquet`` and ``quotes.parquet``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.cycles.to_parquet(directory / "cycles.parquet", index=False)
        self.fills.to_parquet(directory / "fills.parquet", index=False)
        self.quotes.to_parquet(directory / "quotes.parquet", index=False)
        document = {
            "summary": self.summary.to_dict(),
            "strategy_config": self.strategy.to_dict(),
            "sim_config": self.sim.to_dict(),
        }
        # summary last: its presence marks a complete run directory
        tmp = directory / "summary.json.tmp"
        tmp.write_text(json.dumps(document, indent=2) + "\n")
        tmp.replace(directory / "summary.json")
        return directory


def load_backtest(directory: str | Path) -> BacktestResult:
    """Read a run directory written by :meth:`BacktestResult.write`."""
    directory = Path(directory)
    summary_path = directory / "summary.json"
    if not summary_path.exists():
        raise FileNotFoundError(f"{summary_path}: no backtest summary (is {directory} a run directory?)")
    document = json.loads(summary_path.read_text())
    frames = {}
    for name in ("cycles", "fills", "quotes"):
        path = directory / f"{name}.parquet"
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing from the run directory")
        frames[name] = pd.read_parquet(path)
    return BacktestResult(
        summary=BacktestSummary(**document["summary"]),
        strategy=StrategyConfig.from_dict(document["strategy_config"], where=f"{summary_path}: strategy_config"),
        sim=SimConfig.from_dict(document["sim_config"], where=f"{summary_path}: sim_config"),
        **frames,
    )


def run_backtest(
    tape: Tape,
    strategy: StrategyConfig | None = None,
    sim: SimConfig | None = None,
    *,
    pipeline: Strategy | None = None,
) -> BacktestResult:
    """Replay ``tape`` through ``pipeline`` (built from ``strategy`` if not given) on a simulated venue.

    ``pipeline`` may be any :class:`Strategy`, for example a baseline quoter. The venue is the
    engine ``sim.engine`` names: the compiled :class:`~mmlab.sim.engine.FastSimVenue` by default,
    or the reference :class:`~mmlab.sim.venue.SimVenue`; both give the same result.
    """
    strategy = strategy or StrategyConfig(instrument=tape.instrument)
    sim = sim or SimConfig()
    if strategy.instrument != tape.instrument:
        strategy = strategy.replace(instrument=tape.instrument)
    pipeline = pipeline or Pipeline.from_config(strategy, funding_interval_s=tape.funding_interval_s)
    venue = make_sim_venue(tape, sim)
    step_ns = int(round(strategy.cycle_interval_s * 1e9))
    first, last = int(tape.ts_local[0]), int(tape.ts_local[-1])
    started = time.perf_counter()

    cycle_rows: list[tuple] = []
    quote_rows: list[tuple] = []
    fill_rows: list[tuple] = []
    spread_capture = inventory_pnl = 0.0
    position = 0.0
    max_abs_position = 0.0
    cancels_sent = 0
    mark = math.nan
    ts = first + step_ns
    while ts <= last:
        update = venue.poll(ts)
        book = update.book
        new_mark = book.mid if book is not None and book.has_both_sides and not book.is_crossed else mark
        if math.isfinite(mark) and math.isfinite(new_mark):
            # inventory PnL: the position carried into this cycle, marked to the new mid
            inventory_pnl += position * (new_mark - mark)
        mark = new_mark
        for fill in update.fills:
            value_mark = mark if math.isfinite(mark) else fill.price
            # spread capture: s (m_k − p) size
            spread_capture += int(fill.side) * (value_mark - fill.price) * fill.size
            position += int(fill.side) * fill.size
            fill_rows.append((fill.ts_exch, fill.ts_local, fill.order_id, int(fill.side), fill.price, fill.size, fill.fee_usd, value_mark))
        max_abs_position = max(max_abs_position, abs(position))
        account = venue.account()
        out = pipeline.cycle(update)
        venue.submit(out.actions, ts)
        cancels_sent += sum(1 for a in out.actions if a.kind is ActionKind.CANCEL)
        belief, surface = out.belief, out.surface
        quotes = out.quotes
        cycle_rows.append(
            (
                ts,
                book.best_bid if book is not None else math.nan,
                book.best_ask if book is not None else math.nan,
                mark,
                belief.fair_value if belief else math.nan,
                belief.fair_value_std_bps if belief else math.nan,
                belief.drift_per_s * 1e4 if belief else math.nan,
                belief.sigma_bps_per_sqrt_s if belief else math.nan,
                surface.reservation_price if surface else math.nan,
                surface.half_spread_bps if surface else math.nan,
                quotes.bids[0].price if quotes.bids else math.nan,
                quotes.asks[0].price if quotes.asks else math.nan,
                sum(q.size for q in quotes.bids),
                sum(q.size for q in quotes.asks),
                position,
                len(out.actions),
                out.updates.adverse_selection_bps,
                spread_capture,
                inventory_pnl,
                -account.fees_usd,
                account.funding_usd,
            )
        )
        for q in quotes.all:
            quote_rows.append((ts, int(q.side), q.level, q.price, q.size))
        ts += step_ns

    account = venue.account()
    if abs(account.position - position) > 1e-9:
        raise AccountingError(f"position from fills {position} != venue position {account.position}")
    fees = -account.fees_usd
    funding = account.funding_usd
    total = account.equity_usd(mark) if math.isfinite(mark) else account.cash_usd
    decomposed = spread_capture + inventory_pnl + fees + funding
    if abs(total - decomposed) > 1e-6 * max(1.0, account.volume_usd):
        raise AccountingError(f"PnL {total:.9f} USD != decomposition {decomposed:.9f} USD")

    cycles_frame = pd.DataFrame(
        cycle_rows,
        columns=[
            "ts_local", "best_bid", "best_ask", "mid", "fair_value", "fair_value_std_bps", "drift_bps_per_s",
            "sigma_bps_per_sqrt_s", "reservation_price", "half_spread_bps", "quote_bid", "quote_ask",
            "bid_size", "ask_size", "position", "actions", "adverse_selection_bps",
            "spread_capture_usd", "inventory_pnl_usd", "fees_usd", "funding_usd",
        ],
    )
    fills = pd.DataFrame(
        fill_rows, columns=["ts_exch", "ts_local", "order_id", "side", "price", "size", "fee_usd", "mid_at_fill"]
    )
    markouts = markouts_from_mids(
        fills["ts_local"].to_numpy(), fills["side"].to_numpy(), fills["price"].to_numpy(),
        cycles_frame["ts_local"].to_numpy(), cycles_frame["mid"].to_numpy(), MARKOUT_HORIZONS_S,
    )
    fills = pd.concat([fills, markouts], axis=1)
    quotes_frame = pd.DataFrame(quote_rows, columns=["ts_local", "side", "level", "price", "size"])
    summary = BacktestSummary(
        tape_source=tape.source,
        coin=tape.instrument.coin,
        span_s=tape.span_s,
        cycles=len(cycle_rows),
        fills=len(fill_rows),
        volume_usd=account.volume_usd,
        pnl_usd=total,
        spread_capture_usd=spread_capture,
        inventory_pnl_usd=inventory_pnl,
        fees_usd=fees,
        funding_usd=funding,
        max_abs_position=max_abs_position,
        final_position=position,
        orders_placed=venue.orders_placed,
        cancels_sent=cancels_sent,
        modifies_sent=venue.modifies_sent,
        takes_sent=venue.takes_sent,
        rejections=venue.rejections,
        **{
            f"markout_{h:g}s_bps": _size_weighted_mean(fills[f"markout_{h:g}s_bps"], fills["size"])
            for h in MARKOUT_HORIZONS_S
        },
        strategy_config_hash=strategy.hash_id,
        sim_config_hash=sim.hash_id,
        wall_s=time.perf_counter() - started,
    )
    cycles_frame["pnl_usd"] = cycles_frame[["spread_capture_usd", "inventory_pnl_usd", "fees_usd", "funding_usd"]].sum(axis=1)
    return BacktestResult(summary=summary, cycles=cycles_frame, fills=fills, quotes=quotes_frame, strategy=strategy, sim=sim)


def _size_weighted_mean(values: pd.Series, sizes: pd.Series) -> float:
    mask = values.notna().to_numpy()
    if not mask.any():
        return math.nan
    v, w = values.to_numpy()[mask], sizes.to_numpy()[mask]
    return float(np.sum(v * w) / np.sum(w))


def backtest_synthetic(
    minutes: float = 10.0,
    seed: int = 7,
    *,
    maker_fee_bps: float | None = None,
    strategy: StrategyConfig | None = None,
    sim: SimConfig | None = None,
) -> BacktestResult:
    """Generate a synthetic market in memory and backtest the pipeline on it.

    ``maker_fee_bps`` (negative for a rebate) sets the venue's fee and the actuary's belief
    together, as ``mmlab backtest --maker-fee-bps`` does.
    """
    from mmlab.data.synth import SynthConfig, generate

    market = generate(SynthConfig(minutes=minutes, seed=seed))
    strategy = strategy or StrategyConfig(instrument=market.tape.instrument)
    sim = sim or SimConfig()
    if maker_fee_bps is not None:
        strategy, sim = with_maker_fee(strategy, sim, maker_fee_bps)
    return run_backtest(market.tape, strategy, sim)


def with_maker_fee(strategy: StrategyConfig, sim: SimConfig, maker_fee_bps: float) -> tuple[StrategyConfig, SimConfig]:
    """One fee tier everywhere: the venue charges it, the actuary prices with it and the evaluator
    charges it to counterfactual fills.

    An explicit fee replaces a named tier, so the venue's ``fee_tier`` is cleared.
    """
    return (
        strategy.replace(
            actuary=strategy.actuary.replace(maker_fee_bps=maker_fee_bps),
            evaluator=strategy.evaluator.replace(maker_fee_bps=maker_fee_bps),
        ),
        sim.replace(maker_fee_bps=maker_fee_bps, fee_tier=""),
    )
