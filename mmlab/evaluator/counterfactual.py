"""Counterfactual PnL of first levels we did not quote.

For candidate spread adjustments a_k (bps, ``EvaluatorConfig.counterfactual_adjust_bps``) the
counterfactual first level of each side sits at depth d_s + a_k from V̂ (d_s the unadjusted
first-level depth of the cycle's surface, floored at 0):

    b_k = V̂ (1 − (d_bid + a_k) / 1e4),    o_k = V̂ (1 + (d_ask + a_k) / 1e4)

The prices set on one cycle rest until the next, so the trades reported by the *next* update
are tested against them (no look-ahead: the surface of a cycle is priced from the trades that
arrived before it). A sell aggressor at a price ≤ b_k fills a counterfactual bid of one reference
unit at b_k (side s = +1); a buy aggressor at ≥ o_k fills a counterfactual ask at o_k (s = −1).
Each counterfactual fill is marked like a real one at the adverse-selection horizon h, net of the
maker fee f (bps):

    pnl = s (m_h − p) / p · 1e4 − f    bps per unit notional

The candidates must be increasing, so b_k falls and o_k rises with k and a trade that reaches
candidate k reaches every shallower one: one ``searchsorted`` gives how many candidates each
trade reaches, and a reversed cumulative count the fills n_k per candidate, in
O(trades + candidates) vectorised. All fills of one cycle share the due time t + h and the
cycle's prices, so they are kept as one batch (due time, prices, n_k per side) in a deque; at
maturity a side adds n_k · (s (m_h − p_k) / p_k · 1e4 − f) per candidate.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

__all__ = ["CounterfactualLedger"]


class CounterfactualLedger:
    """Pending and cumulative counterfactual fills per candidate (see the module docstring).

    Parameters
    ----------
    adjust_bps : tuple of float
        The candidates a_k, bps.
    horizon_s : float
        h, when a counterfactual fill is marked.
    """

    def __init__(self, adjust_bps: tuple[float, ...], horizon_s: float) -> None:
        if not adjust_bps:
            raise ValueError("CounterfactualLedger: adjust_bps must not be empty")
        if any(b <= a for a, b in zip(adjust_bps, adjust_bps[1:])):
            raise ValueError(f"CounterfactualLedger: adjust_bps must be strictly increasing, got {adjust_bps!r}")
        if not horizon_s > 0.0:
            raise ValueError(f"CounterfactualLedger: horizon_s must be > 0, got {horizon_s!r}")
        self.adjust_bps = np.asarray(adjust_bps, dtype=float)
        self.horizon_ns = int(round(horizon_s * 1e9))
        n = self.adjust_bps.size
        self.cumulative_pnl_bps = np.zeros(n)
        self.fills = np.zeros(n, dtype=np.int64)
        self._pending: deque[tuple[int, np.ndarray | None, np.ndarray | None, np.ndarray | None, np.ndarray | None]] = deque()
        # prices resting since the last call: (bid prices, ask prices) per candidate, or None
        self._bid_px: np.ndarray | None = None
        self._ask_px: np.ndarray | None = None

    @property
    def pending_batches(self) -> int:
        return len(self._pending)

    def set_levels(self, fair_value: float, bid_depth_bps: float, ask_depth_bps: float) -> None:
        """Rest the counterfactual levels around V̂ (NaN depth: no level on that side)."""
        # b_k = V̂ (1 − max(d + a_k, 0) / 1e4),  o_k = V̂ (1 + max(d + a_k, 0) / 1e4)
        if math.isfinite(bid_depth_bps):
            self._bid_px = fair_value * (1.0 - 1e-4 * np.maximum(bid_depth_bps + self.adjust_bps, 0.0))
        else:
            self._bid_px = None
        if math.isfinite(ask_depth_bps):
            self._ask_px = fair_value * (1.0 + 1e-4 * np.maximum(ask_depth_bps + self.adjust_bps, 0.0))
        else:
            self._ask_px = None

    def clear_levels(self) -> None:
        """Nothing rests (a cycle without a surface)."""
        self._bid_px = None
        self._ask_px = None

    def record_trades(self, ts_local: int, trade_px: np.ndarray, trade_aggressor: np.ndarray) -> None:
        """Counterfactual fills of the resting levels by trades (aggressor +1 buy, −1 sell)."""
        bid_px, ask_px = self._bid_px, self._ask_px
        if trade_px.size == 0 or (bid_px is None and ask_px is None):
            return
        n = self.adjust_bps.size
        bid_hits = ask_hits = None
        if bid_px is not None:
            sells = trade_px[trade_aggressor < 0]
            if sells.size:
                # a sell aggressor at ≤ b_k fills our bid (s = +1); b_k falls with k, so a sell
                # reaches the first j_i = #{k : b_k ≥ p_i} candidates and n_k = #{i : j_i > k}
                reach = np.searchsorted(-bid_px, -sells, side="right")
                bid_hits = np.cumsum(np.bincount(reach, minlength=n + 1)[::-1])[::-1][1:]
        if ask_px is not None:
            buys = trade_px[trade_aggressor > 0]
            if buys.size:
                # a buy aggressor at ≥ o_k fills our ask (s = −1); o_k rises with k
                reach = np.searchsorted(ask_px, buys, side="right")
                ask_hits = np.cumsum(np.bincount(reach, minlength=n + 1)[::-1])[::-1][1:]
        if (bid_hits is not None and bid_hits[0]) or (ask_hits is not None and ask_hits[0]):
            self._pending.append((ts_local + self.horizon_ns, bid_px, bid_hits, ask_px, ask_hits))

    def mature(self, ts_local: int, mid: float, fee_bps: float) -> np.ndarray | None:
        """Mark the batches due by ``ts_local`` at ``mid``; return their summed PnL per candidate
        (bps per unit notional), or None when nothing matured."""
        gains = None
        pending = self._pending
        while pending and pending[0][0] <= ts_local:
            _, bid_px, bid_hits, ask_px, ask_hits = pending.popleft()
            pnl = np.zeros(self.adjust_bps.size)
            if bid_hits is not None:
                # n_k fills of the bid b_k:  n_k ((m_h − b_k) / b_k · 1e4 − f)
                pnl += bid_hits * ((mid - bid_px) / bid_px * 1e4 - fee_bps)
                self.fills += bid_hits
            if ask_hits is not None:
                # n_k fills of the ask o_k:  n_k ((o_k − m_h) / o_k · 1e4 − f)
                pnl += ask_hits * ((ask_px - mid) / ask_px * 1e4 - fee_bps)
                self.fills += ask_hits
            gains = pnl if gains is None else gains + pnl
        if gains is not None:
            self.cumulative_pnl_bps += gains
        return gains
