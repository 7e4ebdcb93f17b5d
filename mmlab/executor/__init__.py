"""Executor: sizes per level, the venue grid, and the orders that turn live quotes into targets.

1. Sizes come from the convex program in :mod:`mmlab.executor.sizing` (exact KKT solution in the
   hot path, the cvxpy program on request); a level whose expected PnL is not positive gets no
   size, so there is no separate gate.
2. Prices go onto Hyperliquid's grid only here: bids round down and asks round up, and a bid is
   never placed at or above the best ask (nor an ask at or below the best bid), so post-only
   orders are not rejected. Sizes round down to ``szDecimals`` so caps still hold; orders below
   the venue's minimum notional are dropped; levels that land on one price are merged.
3. The reconciler keeps a live order whose price is within ``reprice_tolerance_bps`` and whose
   size within ``resize_tolerance_frac`` of a target, cancels the rest and places what is missing.
   An order being cancelled can still fill until the cancel lands, so new orders on a side are
   trimmed until ``position + kept + cancelling + new ≤ q_max`` (and the mirror for sells):
   the position cap holds whatever the latency.

There are no quotes at all on a missing or crossed book.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from mmlab.config import ExecutorConfig, InstrumentSpec
from mmlab.executor.sizing import LadderProgram, solve_ladder_exact
from mmlab.types import (
    ActionKind,
    L2Book,
    LevelPricing,
    OpenOrder,
    OrderAction,
    PricingSurface,
    Quote,
    QuoteSet,
    RiskBudget,
    Side,
)

__all__ = ["Executor", "LadderExecutor", "reconcile", "limit_exposure"]


class Executor(Protocol):
    def quotes(self, surface: PricingSurface, budget: RiskBudget, book: L2Book | None) -> QuoteSet:
        """Target ladder on the venue grid."""
        ...

    def reconcile(
        self,
        target: QuoteSet,
        live: Sequence[OpenOrder],
        pending_cancels: Sequence[OpenOrder] = (),
        budget: RiskBudget | None = None,
    ) -> tuple[OrderAction, ...]:
        """Actions that turn the live orders into the target without risking the position cap."""
        ...


class LadderExecutor:
    """Convex ladder sizing, grid snapping and reconciliation for one instrument."""

    def __init__(self, instrument: InstrumentSpec, config: ExecutorConfig | None = None, *, levels: int) -> None:
        self.instrument = instrument
        self.config = config or ExecutorConfig()
        self.levels = levels
        self._program = LadderProgram(levels) if self.config.solver == "cvxpy" else None

    def sizes(self, surface: PricingSurface, budget: RiskBudget, sigma_usd_per_sqrt_s: float) -> np.ndarray:
        """Optimal sizes (coins) stacked as [bids..., asks...] before grid rounding."""
        levels = surface.bids + surface.asks
        prices = np.fromiter((lv.price for lv in levels), dtype=float)
        fill_prob = np.fromiter((lv.fill_prob for lv in levels), dtype=float)
        expected_bps = np.fromiter((lv.expected_pnl_bps for lv in levels), dtype=float)
        # e_k: expected PnL of one coin at level k, USD
        edge = expected_bps * 1e-4 * prices
        # w_k = ½ γ σ_V² H p_k (1 − p_k)
        weight = 0.5 * budget.gamma_per_usd * sigma_usd_per_sqrt_s**2 * budget.holding_horizon_s * fill_prob * (1.0 - fill_prob)
        cap = np.full(edge.shape, budget.max_order_size)
        if self._program is not None:
            return self._program.solve(edge, weight, cap, budget.max_buy_size, budget.max_sell_size)
        return solve_ladder_exact(edge, weight, cap, budget.max_buy_size, budget.max_sell_size, self.levels)

    def quotes(self, surface: PricingSurface, budget: RiskBudget, book: L2Book | None) -> QuoteSet:
        ts = surface.ts_local
        if book is None or not book.has_both_sides or book.is_crossed:
            return QuoteSet(ts_local=ts, bids=(), asks=())
        sigma_usd = surface.fair_value * surface.sigma_per_sqrt_s
        sizes = self.sizes(surface, budget, sigma_usd)
        n = self.levels
        bids = self._snap(surface.bids, sizes[:n], Side.BUY, book)
        asks = self._snap(surface.asks, sizes[n:], Side.SELL, book)
        return QuoteSet(ts_local=ts, bids=bids, asks=asks)

    def reconcile(
        self,
        target: QuoteSet,
        live: Sequence[OpenOrder],
        pending_cancels: Sequence[OpenOrder] = (),
        budget: RiskBudget | None = None,
    ) -> tuple[OrderAction, ...]:
        actions = reconcile(target, live, self.config.reprice_tolerance_bps, self.config.resize_tolerance_frac)
        return limit_exposure(actions, live, pending_cancels, budget, self.instrument)

    # -- internals -------------------------------------------------------------------------

    def _snap(self, levels: Sequence[LevelPricing], sizes: np.ndarray, side: Side, book: L2Book) -> tuple[Quote, ...]:
        instrument = self.instrument
        min_notional = instrument.min_order_notional_usd
        if side is Side.BUY:
            limit = instrument.price_below(book.best_ask)  # best price a post-only bid may take
        else:
            limit = instrument.price_above(book.best_bid)
        merged: dict[float, float] = {}
        for level, size in zip(levels, sizes):
            if size <= 0.0:
                continue
            if side is Side.BUY:
                price = min(instrument.round_bid(level.price), limit)
            else:
                price = max(instrument.round_ask(level.price), limit)
            merged[price] = merged.get(price, 0.0) + float(size)
        quotes = []
        for k, price in enumerate(sorted(merged, reverse=side is Side.BUY)):
            size = instrument.round_size(merged[price])
            if size <= 0.0 or size * price < min_notional:
                continue
            quotes.append(Quote(side=side, price=price, size=size, level=k))
        return tuple(quotes)


def reconcile(
    target: QuoteSet, live: Sequence[OpenOrder], reprice_tolerance_bps: float, resize_tolerance_frac: float
) -> tuple[OrderAction, ...]:
    """Cancels and placements that turn ``live`` into ``target``.

    A live order is kept when a target on its side is within ``reprice_tolerance_bps`` of its
    price and ``resize_tolerance_frac`` of its size; each live order serves at most one target.
    Cancels come first so the venue frees exposure before new orders add it.
    """
    cancels: list[OrderAction] = []
    places: list[OrderAction] = []
    for side, wanted in ((Side.BUY, target.bids), (Side.SELL, target.asks)):
        resting = [order for order in live if order.side is side]
        kept: set[int] = set()
        for quote in wanted:
            match = None
            for order in resting:
                if order.order_id in kept:
                    continue
                price_gap_bps = abs(order.price - quote.price) / quote.price * 1e4
                size_gap = abs(order.size - quote.size)
                if price_gap_bps <= reprice_tolerance_bps and size_gap <= resize_tolerance_frac * quote.size:
                    match = order
                    break
            if match is not None:
                kept.add(match.order_id)
            else:
                places.append(
                    OrderAction(kind=ActionKind.PLACE, side=side, price=quote.price, size=quote.size)
                )
        cancels.extend(
            OrderAction(kind=ActionKind.CANCEL, side=order.side, price=order.price, size=order.size, order_id=order.order_id)
            for order in resting
            if order.order_id not in kept
        )
    return tuple(cancels + places)


def limit_exposure(
    actions: Sequence[OrderAction],
    live: Sequence[OpenOrder],
    pending_cancels: Sequence[OpenOrder],
    budget: RiskBudget | None,
    instrument: InstrumentSpec,
) -> tuple[OrderAction, ...]:
    """Trim new orders so that every order that could still fill keeps |position| ≤ q_max.

    Worst case on the buy side: the position plus every bid that is live, being cancelled now or
    with a cancel in flight, plus the new bids, all filled. New bids are kept in order (best
    first) and the last one that does not fit is shrunk, rounded down to the size grid.
    """
    if budget is None:
        return tuple(a for a in actions if a.kind is ActionKind.CANCEL)
    at_risk = {Side.BUY: 0.0, Side.SELL: 0.0}
    for order in list(live) + list(pending_cancels):
        at_risk[order.side] += order.size
    room = {
        Side.BUY: budget.q_max - budget.position - at_risk[Side.BUY],
        Side.SELL: budget.q_max + budget.position - at_risk[Side.SELL],
    }
    kept: list[OrderAction] = []
    for action in actions:
        if action.kind is ActionKind.CANCEL:
            kept.append(action)
            continue
        size = instrument.round_size(min(action.size, room[action.side]))
        if size <= 0.0:
            continue
        room[action.side] -= size
        kept.append(action if size == action.size else OrderAction(
            kind=action.kind, side=action.side, price=action.price, size=size, order_id=action.order_id
        ))
    return tuple(kept)
