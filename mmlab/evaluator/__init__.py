"""Evaluator: mark every fill to the market and feed what it learns back to filter and actuary.

For a fill on side s (+1 bought, −1 sold) at price p, with mid m_0 when the fill reached us and
m_h the first mid seen at or after h seconds later:

    markout_h       = s (m_h − p) / p · 1e4          bps, positive when the fill made money
    spread_captured = s (m_0 − p) / p · 1e4          the markout at h = 0
    adverse_h       = spread_captured − markout_h = −s (m_h − m_0) / p · 1e4

``adverse_h`` at ``adverse_selection_horizon_s`` is smoothed over fills with an exponential
weight (half-life in fills) and sent to the actuary as ``adverse_selection_bps``, which it charges
every quote. Means are size-weighted.

Decomposition (:func:`decompose_markouts`), with a short horizon h_s and a long one h_L:

    permanent_impact = adverse_{h_L}                       the move against us that stays
    temporary_impact = adverse_{h_s} − adverse_{h_L}       what reverted between h_s and h_L
    realized_spread  = spread_captured − permanent_impact  = markout_{h_L}

so ``spread_captured = realized_spread + permanent_impact`` and
``markout_{h_s} = realized_spread − temporary_impact``.

Feedback, all sent as :class:`~mmlab.types.ParameterUpdates` (the coordinator passes them to the
filter and the actuary on the next cycle):

- ``informed_fraction``: π̂ from the adverse moves of our fills (:mod:`.informed`), None until
  ``informed_min_fills`` fills are judged. The diffusion s_h of the mid over h is measured from
  the sampled mids: the mean squared h-second change of ln mid.
- ``counterfactual_pnl_bps`` and ``spread_adjust_bps``: counterfactual first levels at each
  candidate adjustment (:mod:`.counterfactual`), weighed by AdaHedge (:mod:`.weights`) in
  rounds of ``counterfactual_round_s`` (a round's gains are the PnL of the counterfactual fills
  that matured in it); the adjustment is the weighted mean of the candidates (0 until one round
  has been played).
- ``changepoint_prob``: Bayesian online change-point detection on the 1 s log-mid returns
  (:mod:`.changepoint`).
- ``fee_bps``: the size-weighted mean fee of the marked fills per unit notional.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from mmlab.config import EvaluatorConfig
from mmlab.evaluator.changepoint import ChangePointDetector
from mmlab.evaluator.counterfactual import CounterfactualLedger
from mmlab.evaluator.informed import InformedFractionPosterior
from mmlab.evaluator.weights import AdaHedge
from mmlab.types import Fill, ParameterUpdates, PricingSurface, QuoteSet, VenueUpdate

__all__ = [
    "Evaluator",
    "MarkoutEvaluator",
    "FillRecord",
    "markouts_from_mids",
    "decompose_markouts",
    "AdaHedge",
    "ChangePointDetector",
    "CounterfactualLedger",
    "InformedFractionPosterior",
]


class Evaluator(Protocol):
    def evaluate(
        self, update: VenueUpdate, surface: PricingSurface | None = None, quotes: QuoteSet | None = None
    ) -> ParameterUpdates:
        """Absorb new fills and the current market (and what was priced and targeted this
        cycle, None for baselines); return what the other stages should use."""
        ...


@dataclass(slots=True)
class FillRecord:
    """One fill and its markouts as they mature (NaN until then).

    ``diffusion_bps`` is s_h, the measured std of the h-second mid move at the fill (NaN when
    the evaluator had not seen enough mids), used to judge whether the fill was informed.
    """

    fill: Fill
    mid_at_fill: float
    markout_bps: list[float] = field(default_factory=list)
    diffusion_bps: float = math.nan

    @property
    def spread_captured_bps(self) -> float:
        return int(self.fill.side) * (self.mid_at_fill - self.fill.price) / self.fill.price * 1e4


def decompose_markouts(
    spread_captured_bps: np.ndarray, markout_short_bps: np.ndarray, markout_long_bps: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split each fill's spread captured into (realized spread, temporary impact, permanent
    impact), bps, from its markouts at a short and a long horizon (see the module docstring)."""
    spread = np.asarray(spread_captured_bps, dtype=float)
    short = np.asarray(markout_short_bps, dtype=float)
    long = np.asarray(markout_long_bps, dtype=float)
    # permanent = adverse_L = spread captured − markout_L
    permanent = spread - long
    # temporary = adverse_s − adverse_L = markout_L − markout_s
    temporary = long - short
    # realized = spread captured − permanent = markout_L
    realized = spread - permanent
    return realized, temporary, permanent


class MarkoutEvaluator:
    """Markouts, adverse selection, π̂, counterfactual spreads and change points (module docstring)."""

    def __init__(self, config: EvaluatorConfig | None = None) -> None:
        self.config = cfg = config or EvaluatorConfig()
        self.horizons_s = tuple(cfg.markout_horizons_s)
        self._horizons_ns = tuple(int(round(h * 1e9)) for h in self.horizons_s)
        self._as_index = self.horizons_s.index(cfg.adverse_selection_horizon_s)
        self._short_index = self.horizons_s.index(cfg.decomposition_short_horizon_s)
        self._long_index = self.horizons_s.index(cfg.decomposition_long_horizon_s)
        self.records: list[FillRecord] = []
        # one queue of record indices per horizon, in fill-time order
        self._pending: tuple[deque[int], ...] = tuple(deque() for _ in self.horizons_s)
        self._sum_size = np.zeros(len(self.horizons_s))
        self._sum_markout = np.zeros(len(self.horizons_s))
        self._adverse_bps = 0.0
        self._adverse_weight = 0.0
        self._marked = 0
        self._decay = 0.5 ** (1.0 / cfg.adverse_selection_half_life_fills)
        self._last_mid = math.nan
        # fees of marked fills (all, and maker only for the counterfactual fee)
        self._fee_usd = 0.0
        self._notional_usd = 0.0
        self._maker_fee_usd = 0.0
        self._maker_notional_usd = 0.0
        # mid sampled every interval: change points on returns, s_h from h-second changes
        interval_s = cfg.changepoint_sample_interval_s
        self._interval_ns = int(round(interval_s * 1e9))
        self._as_horizon_ns = self._horizons_ns[self._as_index]
        self._samples: deque[tuple[int, float]] = deque()
        self._next_sample_ns: int | None = None
        self._diffusion_decay = 0.5 ** (interval_s / cfg.volatility_half_life_s)
        self._diffusion_sum = 0.0
        self._diffusion_weight = 0.0
        self.detector = ChangePointDetector(
            hazard_timescale_samples=cfg.changepoint_hazard_timescale_s / interval_s,
            max_run_length=cfg.changepoint_max_run_length,
            window_samples=cfg.changepoint_window_samples,
            prior_shape=cfg.changepoint_prior_shape,
            variance_half_life_samples=cfg.volatility_half_life_s / interval_s,
        )
        self.informed = InformedFractionPosterior(
            prior_a=cfg.informed_prior_a, prior_b=cfg.informed_prior_b, memory_fills=cfg.informed_memory_fills
        )
        self.counterfactual = CounterfactualLedger(tuple(cfg.counterfactual_adjust_bps), cfg.adverse_selection_horizon_s)
        self.hedge = AdaHedge(len(cfg.counterfactual_adjust_bps))
        self._candidates = np.asarray(cfg.counterfactual_adjust_bps, dtype=float)
        self._spread_adjust_bps = 0.0
        self._round_ns = int(round(cfg.counterfactual_round_s * 1e9))
        self._round_end_ns = -(2**62)
        self._round_gains: np.ndarray | None = None
        # what updates() sends, recomputed only when it changes
        self._markout_means = tuple(math.nan for _ in self.horizons_s)
        self._markouts_changed = False
        self._informed_value: float | None = None

    # -- the cycle ---------------------------------------------------------------------------

    def evaluate(
        self, update: VenueUpdate, surface: PricingSurface | None = None, quotes: QuoteSet | None = None
    ) -> ParameterUpdates:
        """Absorb one venue update; ``surface`` and ``quotes`` are what the pipeline priced and
        targeted on this cycle (None for a baseline: no counterfactual levels then)."""
        book = update.book
        now = update.ts_local
        # the adjustment this cycle's surface was priced with: the one sent on the previous call
        applied_adjust_bps = self._spread_adjust_bps
        if book is not None and book.has_both_sides and not book.is_crossed:
            self._last_mid = book.mid
            self._sample_mid(now, self._last_mid)
        mid = self._last_mid
        diffusion = self.diffusion_bps
        for fill in update.fills:
            if not math.isfinite(mid):
                mid = fill.price  # no book yet: the fill price is the best mark we have
            self.records.append(
                FillRecord(fill=fill, mid_at_fill=mid, markout_bps=[math.nan] * len(self.horizons_s), diffusion_bps=diffusion)
            )
            index = len(self.records) - 1
            for queue in self._pending:
                queue.append(index)
        ledger = self.counterfactual
        if update.trades:
            trades = update.trades
            n = len(trades)
            ledger.record_trades(
                now,
                np.fromiter((t.price for t in trades), dtype=float, count=n),
                np.fromiter((int(t.aggressor) for t in trades), dtype=float, count=n),
            )
        if math.isfinite(mid):
            self._mature(now, mid)
            gains = ledger.mature(now, mid, self.counterfactual_fee_bps)
            if gains is not None:
                self._round_gains = gains if self._round_gains is None else self._round_gains + gains
            if self._round_gains is not None and now >= self._round_end_ns:
                # one Hedge round per counterfactual_round_s: losses are the negated PnL
                weights = self.hedge.update(-self._round_gains)
                self._round_gains = None
                self._round_end_ns = now + self._round_ns
                # adjustment = Σ w_k a_k
                self._spread_adjust_bps = float(weights @ self._candidates)
        self._set_counterfactual_levels(surface, quotes, applied_adjust_bps)
        return self.updates(now)

    def _set_counterfactual_levels(self, surface: PricingSurface | None, quotes: QuoteSet | None, applied_bps: float) -> None:
        if surface is None:
            self.counterfactual.clear_levels()
            return
        fair_value = surface.fair_value
        # first-level depth from V̂: the targeted quote where there is one, else the surface's
        if quotes is not None and quotes.bids:
            bid = (fair_value - quotes.bids[0].price) / fair_value * 1e4
        else:
            bid = surface.bids[0].depth_bps if surface.bids else math.nan
        if quotes is not None and quotes.asks:
            ask = (quotes.asks[0].price - fair_value) / fair_value * 1e4
        else:
            ask = surface.asks[0].depth_bps if surface.asks else math.nan
        # the actuary priced with the adjustment we sent last cycle: candidates are relative to
        # the unadjusted depth, or the learner would chase its own output
        self.counterfactual.set_levels(fair_value, bid - applied_bps, ask - applied_bps)

    def _sample_mid(self, now: int, mid: float) -> None:
        if self._next_sample_ns is not None and now < self._next_sample_ns:
            return
        log_mid = math.log(mid)
        samples = self._samples
        if samples:
            last_ts, last_log_mid = samples[-1]
            # a gap of g intervals gives one return scaled to one interval: x = Δ ln m · 1e4 / √g
            gap = (now - last_ts) / self._interval_ns
            self.detector.update((log_mid - last_log_mid) * 1e4 / math.sqrt(gap))
        samples.append((now, log_mid))
        self._next_sample_ns = now + self._interval_ns
        # keep the newest sample at least h old at the front
        horizon = self._as_horizon_ns
        while len(samples) > 1 and samples[1][0] <= now - horizon:
            samples.popleft()
        first_ts, first_log_mid = samples[0]
        if first_ts <= now - horizon:
            # s_h² ← decayed mean of (Δ_h ln m · 1e4)², the change rescaled to exactly h
            change = (log_mid - first_log_mid) * 1e4
            squared = change * change * horizon / (now - first_ts)
            self._diffusion_sum = self._diffusion_decay * self._diffusion_sum + squared
            self._diffusion_weight = self._diffusion_decay * self._diffusion_weight + 1.0

    @property
    def diffusion_bps(self) -> float:
        """s_h, the measured std of the mid's change over the adverse-selection horizon, bps."""
        if self._diffusion_weight <= 0.0:
            return math.nan
        return math.sqrt(self._diffusion_sum / self._diffusion_weight)

    @property
    def counterfactual_fee_bps(self) -> float:
        """Fee charged to a counterfactual fill: our maker fills' mean, else the config's."""
        if self._maker_notional_usd > 0.0:
            return self._maker_fee_usd / self._maker_notional_usd * 1e4
        return self.config.maker_fee_bps

    @property
    def spread_adjust_bps(self) -> float:
        return self._spread_adjust_bps

    def updates(self, ts_local: int) -> ParameterUpdates:
        if self._markouts_changed:
            with np.errstate(invalid="ignore", divide="ignore"):
                means = np.where(self._sum_size > 0, self._sum_markout / np.where(self._sum_size > 0, self._sum_size, 1.0), np.nan)
            self._markout_means = tuple(means.tolist())
            self._markouts_changed = False
        adverse = self._adverse_bps / self._adverse_weight if self._adverse_weight > 0 else 0.0
        return ParameterUpdates(
            ts_local=ts_local,
            fills_marked=self._marked,
            markout_bps=self._markout_means,
            adverse_selection_bps=max(0.0, adverse),
            spread_adjust_bps=self._spread_adjust_bps,
            informed_fraction=self._informed_value,
            changepoint_prob=self.detector.changepoint_prob,
            counterfactual_pnl_bps=tuple(self.counterfactual.cumulative_pnl_bps.tolist()),
            fee_bps=self._fee_usd / self._notional_usd * 1e4 if self._notional_usd > 0.0 else 0.0,
        )

    def _mature(self, now: int, mid: float) -> None:
        for h, (horizon_ns, queue) in enumerate(zip(self._horizons_ns, self._pending)):
            while queue and now - self.records[queue[0]].fill.ts_local >= horizon_ns:
                record = self.records[queue.popleft()]
                fill = record.fill
                # markout_h = s (m_h − p) / p · 1e4
                markout = int(fill.side) * (mid - fill.price) / fill.price * 1e4
                record.markout_bps[h] = markout
                self._markouts_changed = True
                self._sum_size[h] += fill.size
                self._sum_markout[h] += fill.size * markout
                if h == self._as_index:
                    self._judge(record, markout)

    def _judge(self, record: FillRecord, markout: float) -> None:
        """A fill reached the adverse-selection horizon: AS estimate, fees and π̂."""
        fill = record.fill
        # adverse_h = spread captured − markout_h, smoothed over fills
        adverse = record.spread_captured_bps - markout
        self._adverse_bps = self._decay * self._adverse_bps + adverse
        self._adverse_weight = self._decay * self._adverse_weight + 1.0
        self._marked += 1
        notional = fill.notional_usd
        self._fee_usd += fill.fee_usd
        self._notional_usd += notional
        if fill.is_maker:
            self._maker_fee_usd += fill.fee_usd
            self._maker_notional_usd += notional
        diffusion = record.diffusion_bps if math.isfinite(record.diffusion_bps) else self.diffusion_bps
        if math.isfinite(diffusion) and diffusion > 0.0:
            self.informed.add(adverse, diffusion)
            if self.informed.fills >= self.config.informed_min_fills:
                self._informed_value = self.informed.mean

    # -- reports -----------------------------------------------------------------------------

    def markouts_frame(self) -> pd.DataFrame:
        """One row per fill: time, side, price, size, mid at fill, each horizon's markout and the
        decomposition into realized spread, temporary and permanent impact (bps)."""
        rows = {
            "ts_local": [r.fill.ts_local for r in self.records],
            "side": [int(r.fill.side) for r in self.records],
            "price": [r.fill.price for r in self.records],
            "size": [r.fill.size for r in self.records],
            "mid_at_fill": [r.mid_at_fill for r in self.records],
            "spread_captured_bps": [r.spread_captured_bps for r in self.records],
        }
        for h, horizon in enumerate(self.horizons_s):
            rows[f"markout_{horizon:g}s_bps"] = [r.markout_bps[h] for r in self.records]
        realized, temporary, permanent = decompose_markouts(
            np.asarray(rows["spread_captured_bps"], dtype=float),
            np.asarray([r.markout_bps[self._short_index] for r in self.records], dtype=float),
            np.asarray([r.markout_bps[self._long_index] for r in self.records], dtype=float),
        )
        rows["realized_spread_bps"] = realized
        rows["temporary_impact_bps"] = temporary
        rows["permanent_impact_bps"] = permanent
        return pd.DataFrame(rows)

    def summary(self) -> str:
        """What the evaluator has learned, one number per line with its unit."""
        cfg = self.config
        updates = self.updates(0)
        lines = [f"fills marked at {cfg.adverse_selection_horizon_s:g} s: {updates.fills_marked}"]
        for horizon, value in zip(self.horizons_s, updates.markout_bps):
            lines.append(f"mean markout {horizon:g} s: {value:.3f} bps")
        lines.append(f"adverse selection: {updates.adverse_selection_bps:.3f} bps; mean fee {updates.fee_bps:.3f} bps")
        lines.append(
            f"informed fraction: {self.informed.mean:.3f} ± {self.informed.std:.3f} "
            f"({self.informed.fills} fills judged; sent: {updates.informed_fraction is not None})"
        )
        lines.append(f"h-second mid diffusion s_h: {self.diffusion_bps:.3f} bps (h = {cfg.adverse_selection_horizon_s:g} s)")
        weights = self.hedge.weights
        for a, pnl, w, n in zip(self._candidates, self.counterfactual.cumulative_pnl_bps, weights, self.counterfactual.fills):
            lines.append(f"candidate {a:+.2f} bps: counterfactual PnL {pnl:.2f} bps over {n} fills, weight {w:.3f}")
        lines.append(
            f"spread adjustment: {self._spread_adjust_bps:+.3f} bps (AdaHedge η = {self.hedge.learning_rate:.4g}, "
            f"regret {self.hedge.regret:.2f} ≤ {2.0 * self.hedge.mixability_gap:.2f} bps)"
        )
        lines.append(
            f"change-point probability (run < {cfg.changepoint_window_samples} samples): {self.detector.changepoint_prob:.3f}"
        )
        return "\n".join(lines)


def markouts_from_mids(
    fill_ts: np.ndarray,
    side: np.ndarray,
    price: np.ndarray,
    mid_ts: np.ndarray,
    mids: np.ndarray,
    horizons_s: tuple[float, ...],
) -> pd.DataFrame:
    """Markouts of a whole run at once: the first mid at or after t + h for every fill and h.

    The offline twin of :class:`MarkoutEvaluator` (same definition), for reports on a finished
    run; fills whose horizon runs past the last mid get NaN.
    """
    out = {}
    for h in horizons_s:
        idx = np.searchsorted(mid_ts, fill_ts + int(round(h * 1e9)), side="left")
        matured = idx < len(mid_ts)
        future_mid = np.where(matured, mids[np.minimum(idx, len(mid_ts) - 1)], np.nan) if len(mid_ts) else np.full(len(fill_ts), np.nan)
        # markout_h = s (m_h − p) / p · 1e4
        out[f"markout_{h:g}s_bps"] = side * (future_mid - price) / price * 1e4
    return pd.DataFrame(out)
