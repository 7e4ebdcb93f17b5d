"""Baseline quoters run by the same simulator as the pipeline, for comparisons and benchmarks.

A baseline has the pipeline's one method, ``cycle(update) -> CycleOutput``, so the backtester
cannot tell them apart.
"""

from __future__ import annotations

import math

from mmlab.config import InstrumentSpec
from mmlab.evaluator import MarkoutEvaluator
from mmlab.executor import limit_exposure, reconcile
from mmlab.pipeline import CycleOutput
from mmlab.types import Quote, QuoteSet, RiskBudget, Side, VenueUpdate

__all__ = ["FixedSpreadQuoter"]


class FixedSpreadQuoter:
    """One bid and one ask at ``half_spread_bps`` either side of the mid, fixed size.

    The plain rule a market maker starts from: no model, no skew. It still respects the
    position cap (through the same exposure limit as the executor) and never crosses the book.
    """

    def __init__(
        self,
        instrument: InstrumentSpec,
        *,
        half_spread_bps: float = 2.0,
        size: float = 0.01,
        q_max: float = 0.1,
        reprice_tolerance_bps: float = 1.0,
    ) -> None:
        if not (half_spread_bps > 0 and size > 0 and q_max > 0):
            raise ValueError("FixedSpreadQuoter: half_spread_bps, size and q_max must be > 0")
        self.instrument = instrument
        self.half_spread_bps = half_spread_bps
        self.size = instrument.round_size(size)
        self.q_max = q_max
        self.reprice_tolerance_bps = reprice_tolerance_bps
        self.evaluator = MarkoutEvaluator()

    def cycle(self, update: VenueUpdate) -> CycleOutput:
        book = update.book
        ts = update.ts_local
        quotes = QuoteSet(ts_local=ts, bids=(), asks=())
        if book is not None and book.has_both_sides and not book.is_crossed and self.size > 0:
            grid = self.instrument
            mid = book.mid
            offset = mid * self.half_spread_bps * 1e-4
            bid = min(grid.round_bid(mid - offset), grid.price_below(book.best_ask))
            ask = max(grid.round_ask(mid + offset), grid.price_above(book.best_bid))
            quotes = QuoteSet(
                ts_local=ts,
                bids=(Quote(side=Side.BUY, price=bid, size=self.size),),
                asks=(Quote(side=Side.SELL, price=ask, size=self.size),),
            )
        budget = RiskBudget(
            ts_local=ts, position=update.position, gamma_per_usd=0.0, q_max=self.q_max,
            max_buy_size=max(0.0, self.q_max - update.position), max_sell_size=max(0.0, self.q_max + update.position),
            max_order_size=self.size, funding_carry_bps=0.0, marginal_cost_bps=0.0, holding_horizon_s=math.inf,
        )
        actions = reconcile(quotes, update.open_orders, self.reprice_tolerance_bps, 0.0)
        actions = limit_exposure(actions, update.open_orders, update.pending_cancels, budget, self.instrument)
        return CycleOutput(
            ts_local=ts, observations=(), belief=None, budget=budget, surface=None, quotes=quotes,
            actions=actions, updates=self.evaluator.evaluate(update),
        )
