"""Evaluator: mark every fill to the market and feed what it learns back to filter and actuary.

For a fill on side s (+1 bought, −1 sold) at price p, with mid m_0 when the fill reached us and
m_h the first mid seen at or after h seconds later:

    markout_h       = s (m_h − p) / p · 1e4          bps, positive when the fill made money
    spread_captured = s (m_0 − p) / p · 1e4          the markout at h = 0
    adverse_h       = spread_captured − markout_h = −s (m_h − m_0) / p · 1e4

``adverse_h`` at ``adverse_selection_horizon_s`` is smoothed over fills with an exponential
weight (half-life in fills) and sent to the actuary as ``adverse_selection_bps``, which it charges
every quote. Means are size-weighted.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from mmlab.config import EvaluatorConfig
from mmlab.types import Fill, ParameterUpdates, VenueUpdate

__all__ = ["Evaluator", "MarkoutEvaluator", "FillRecord", "markouts_from_mids"]


class Evaluator(Protocol):
    def evaluate(self, update: VenueUpdate) -> ParameterUpdates:
        """Absorb new fills and the current market; return what the other stages should use."""
        ...


@dataclass(slots=True)
class FillRecord:
    """One fill and its markouts as they mature (NaN until then)."""

    fill: Fill
    mid_at_fill: float
    markout_bps: list[float] = field(default_factory=list)

    @property
    def spread_captured_bps(self) -> float:
        return int(self.fill.side) * (self.mid_at_fill - self.fill.price) / self.fill.price * 1e4


class MarkoutEvaluator:
    """Markouts at fixed horizons and an adverse-selection estimate (see the module docstring)."""

    def __init__(self, config: EvaluatorConfig | None = None) -> None:
        self.config = config or EvaluatorConfig()
        self.horizons_s = tuple(self.config.markout_horizons_s)
        self._horizons_ns = tuple(int(round(h * 1e9)) for h in self.horizons_s)
        self._as_index = self.horizons_s.index(self.config.adverse_selection_horizon_s)
        self.records: list[FillRecord] = []
        # one queue of record indices per horizon, in fill-time order
        self._pending: tuple[deque[int], ...] = tuple(deque() for _ in self.horizons_s)
        self._sum_size = np.zeros(len(self.horizons_s))
        self._sum_markout = np.zeros(len(self.horizons_s))
        self._adverse_bps = 0.0
        self._adverse_weight = 0.0
        self._marked = 0
        self._decay = 0.5 ** (1.0 / self.config.adverse_selection_half_life_fills)
        self._last_mid = math.nan

    def evaluate(self, update: VenueUpdate) -> ParameterUpdates:
        book = update.book
        if book is not None and book.has_both_sides and not book.is_crossed:
            self._last_mid = book.mid
        mid = self._last_mid
        for fill in update.fills:
            if not math.isfinite(mid):
                mid = fill.price  # no book yet: the fill price is the best mark we have
            self.records.append(FillRecord(fill=fill, mid_at_fill=mid, markout_bps=[math.nan] * len(self.horizons_s)))
            index = len(self.records) - 1
            for queue in self._pending:
                queue.append(index)
        if math.isfinite(mid):
            self._mature(update.ts_local, mid)
        return self.updates(update.ts_local)

    def updates(self, ts_local: int) -> ParameterUpdates:
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(self._sum_size > 0, self._sum_markout / np.where(self._sum_size > 0, self._sum_size, 1.0), np.nan)
        adverse = self._adverse_bps / self._adverse_weight if self._adverse_weight > 0 else 0.0
        return ParameterUpdates(
            ts_local=ts_local,
            fills_marked=self._marked,
            markout_bps=tuple(float(m) for m in means),
            adverse_selection_bps=max(0.0, adverse),
        )

    def _mature(self, now: int, mid: float) -> None:
        for h, (horizon_ns, queue) in enumerate(zip(self._horizons_ns, self._pending)):
            while queue and now - self.records[queue[0]].fill.ts_local >= horizon_ns:
                record = self.records[queue.popleft()]
                fill = record.fill
                # markout_h = s (m_h − p) / p · 1e4
                markout = int(fill.side) * (mid - fill.price) / fill.price * 1e4
                record.markout_bps[h] = markout
                self._sum_size[h] += fill.size
                self._sum_markout[h] += fill.size * markout
                if h == self._as_index:
                    # adverse_h = spread captured − markout_h, smoothed over fills
                    adverse = record.spread_captured_bps - markout
                    self._adverse_bps = self._decay * self._adverse_bps + adverse
                    self._adverse_weight = self._decay * self._adverse_weight + 1.0
                    self._marked += 1

    def markouts_frame(self) -> pd.DataFrame:
        """One row per fill: time, side, price, size, mid at fill and each horizon's markout."""
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
        return pd.DataFrame(rows)


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
