"""Executor: sizes per level, the venue grid, the orders that turn live quotes into targets, unwind.

1. Sizes come from the convex program in :mod:`mmlab.executor.sizing` (exact KKT solution in the
   hot path, the cvxpy program on request): per-level cap ``max_order_size``, side caps
   C_b = max(0, min(max_buy_size, S*/V̂ − q)) and C_a = max(0, min(max_sell_size, S*/V̂ + q))
   (risk budget and Kelly exposure S* = ``kelly_notional_usd``), and a cap on the resting notional
   of both sides. A level whose expected PnL is not positive gets no size, so there is no gate.
   When the unwind policy wants to cross the spread, the side it trades on keeps room for it.
2. Prices go onto Hyperliquid's grid only here: bids round down and asks round up, and a bid is
   never placed at or above the best ask (nor an ask at or below the best bid), so post-only
   orders are not rejected. Sizes round down to ``szDecimals`` so caps still hold; orders below
   the venue's minimum notional are dropped; levels that land on one price are merged.
3. The reconciler keeps each live order that is within tolerance of a target (a maximum matching,
   so as many as possible are kept), MODIFYs the remaining live orders into the remaining targets
   (paired best price first), cancels what is left over and places what is missing. The price
   tolerance is ``reprice_tolerance_bps / (1 + urgency)`` times the target's tolerance scale;
   urgency = ``budget.urgency`` plus the executor's own fair-value jump term max(0, z − k),
   z = |ln(V̂_t / V̂_{t−1})| / (σ̂ √Δt), k = ``jump_urgency_sigmas``. The scale is
   min(``max_tolerance_scale``, √(p_0 / p_k)) with p_k the level's fill probability and p_0 the
   first level's: near its optimum a level's expected PnL falls quadratically with its distance x
   from the target, ≈ ½ p_k κ² x² per unit notional, so every level loses the same when its
   tolerance grows as 1/√p_k. Deep levels, which rarely fill, are repriced less often. Exposure: an order being cancelled or modified can still fill until
   the venue acknowledges, so new orders on a side are trimmed until
   ``position + Σ at-risk + new ≤ q_max`` (and the mirror for sells), counting an order with a
   modify in flight at old + new size (a modify is a cancel and a new order: the old version can
   fill in part and the new one still rest in full); a TAKE is never larger than |position| nor on the side
   that would increase it.
4. :meth:`LadderExecutor.unwind` sends a TAKE when the Bellman policy of
   :mod:`mmlab.executor.unwind` says crossing beats waiting. Call it after :meth:`reconcile` in
   the same cycle: the TAKE is sized within the room that reconcile left on its side.

There are no quotes at all on a missing or crossed book.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import bisect
import math

import numpy as np

from mmlab.config import ActuaryConfig, ExecutorConfig, GovernorConfig, InstrumentSpec
from mmlab.executor.sizing import LadderProgram, solve_ladder_exact
from mmlab.executor.unwind import UnwindPolicy, inputs_from
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

__all__ = ["Executor", "LadderExecutor", "reconcile", "limit_exposure", "jump_urgency", "take_limit_price"]


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

    def unwind(self, surface: PricingSurface, budget: RiskBudget, book: L2Book | None) -> tuple[OrderAction, ...]:
        """A TAKE that reduces the position when crossing beats waiting, else ()."""
        ...


class LadderExecutor:
    """Convex ladder sizing, grid snapping, reconciliation and the unwind policy for one instrument.

    ``gamma_beta`` is the governor's β in γ(q) = γ_base (1 + β (q / q_max)²) and ``impact_beta`` the
    actuary's β in α (size / depth)^β; the unwind policy needs both shapes (pass
    ``GovernorConfig.gamma_beta`` and ``ActuaryConfig.impact_beta``).
    """

    def __init__(
        self,
        instrument: InstrumentSpec,
        config: ExecutorConfig | None = None,
        *,
        levels: int,
        gamma_beta: float = GovernorConfig().gamma_beta,
        impact_beta: float = ActuaryConfig().impact_beta,
    ) -> None:
        self.instrument = instrument
        self.config = config or ExecutorConfig()
        self.levels = levels
        self.gamma_beta = gamma_beta
        self.impact_beta = impact_beta
        self._program = LadderProgram(levels) if self.config.solver == "cvxpy" else None
        self.unwind_policy = UnwindPolicy(recompute_rel=self.config.unwind_recompute_rel)
        self._last_fair: tuple[int, float] | None = None  # (ts_local, V̂) of the previous surface
        self._jump: tuple[int, float] = (-1, 0.0)  # (ts_local, jump urgency) of the latest surface
        self._room: tuple[int, dict[Side, float]] | None = None  # room left by the last reconcile

    # -- sizing -----------------------------------------------------------------------------

    def side_caps(self, budget: RiskBudget, fair_value: float) -> tuple[float, float]:
        """C_b, C_a in coins: the risk budget and the Kelly exposure S*/V̂ on each side."""
        kelly_coins = budget.kelly_notional_usd / fair_value
        # no side may take |position| beyond S*/V̂: buys to S*/V̂ − q, sells to S*/V̂ + q
        buy_cap = max(0.0, min(budget.max_buy_size, kelly_coins - budget.position))
        sell_cap = max(0.0, min(budget.max_sell_size, kelly_coins + budget.position))
        return buy_cap, sell_cap

    def sizes(
        self,
        surface: PricingSurface,
        budget: RiskBudget,
        sigma_usd_per_sqrt_s: float,
        reserve_buy: float = 0.0,
        reserve_sell: float = 0.0,
    ) -> np.ndarray:
        """Optimal sizes (coins) stacked as [bids..., asks...] before grid rounding.

        ``reserve_buy`` / ``reserve_sell`` (coins) are kept free on a side for a TAKE.
        """
        levels = surface.bids + surface.asks
        if len(surface.bids) != self.levels or len(surface.asks) != self.levels:
            raise ValueError(
                f"PricingSurface.bids/asks must hold {self.levels} levels each, got {len(surface.bids)}/{len(surface.asks)}"
            )
        prices = np.fromiter((lv.price for lv in levels), dtype=float, count=2 * self.levels)
        fill_prob = np.fromiter((lv.fill_prob for lv in levels), dtype=float, count=2 * self.levels)
        expected_bps = np.fromiter((lv.expected_pnl_bps for lv in levels), dtype=float, count=2 * self.levels)
        # e_k: expected PnL of one coin at level k, USD
        edge = expected_bps * 1e-4 * prices
        # w_k = ½ γ σ_V² H p_k (1 − p_k)
        weight = 0.5 * budget.gamma_per_usd * sigma_usd_per_sqrt_s**2 * budget.holding_horizon_s * fill_prob * (1.0 - fill_prob)
        cap = np.full(edge.shape, budget.max_order_size)
        buy_cap, sell_cap = self.side_caps(budget, surface.fair_value)
        buy_cap, sell_cap = max(0.0, buy_cap - reserve_buy), max(0.0, sell_cap - reserve_sell)
        total = self.config.max_resting_notional_usd
        if self._program is not None:
            return self._program.solve(edge, weight, cap, buy_cap, sell_cap, prices, total)
        return solve_ladder_exact(edge, weight, cap, buy_cap, sell_cap, self.levels, prices, total)

    def quotes(self, surface: PricingSurface, budget: RiskBudget, book: L2Book | None) -> QuoteSet:
        ts = surface.ts_local
        self._track_jump(surface)
        if book is None or not book.has_both_sides or book.is_crossed:
            return QuoteSet(ts_local=ts, bids=(), asks=())
        sigma_usd = surface.fair_value * surface.sigma_per_sqrt_s
        take = self._take_size(surface, budget, book) if _has_intensities(surface) else 0.0
        reserve_buy = take if budget.position < 0.0 else 0.0
        reserve_sell = take if budget.position > 0.0 else 0.0
        sizes = self.sizes(surface, budget, sigma_usd, reserve_buy, reserve_sell)
        n = self.levels
        bids = self._snap(surface.bids, sizes[:n], Side.BUY, book, budget.max_order_size)
        asks = self._snap(surface.asks, sizes[n:], Side.SELL, book, budget.max_order_size)
        return QuoteSet(ts_local=ts, bids=bids, asks=asks)

    # -- reconciliation ---------------------------------------------------------------------

    def urgency(self, target: QuoteSet, budget: RiskBudget | None) -> float:
        """budget.urgency plus the fair-value jump term of the surface ``target`` was built from."""
        base = budget.urgency if budget is not None else 0.0
        jump_ts, jump = self._jump
        return base + (jump if jump_ts == target.ts_local else 0.0)

    def reconcile(
        self,
        target: QuoteSet,
        live: Sequence[OpenOrder],
        pending_cancels: Sequence[OpenOrder] = (),
        budget: RiskBudget | None = None,
    ) -> tuple[OrderAction, ...]:
        # tol = reprice_tolerance_bps / (1 + urgency)
        tolerance_bps = self.config.reprice_tolerance_bps / (1.0 + self.urgency(target, budget))
        actions = reconcile(target, live, tolerance_bps, self.config.resize_tolerance_frac)
        room: dict[Side, float] = {}
        kept = limit_exposure(actions, live, pending_cancels, budget, self.instrument, room_out=room)
        self._room = (budget.ts_local, room) if budget is not None else None
        return kept

    # -- unwind -----------------------------------------------------------------------------

    def unwind(self, surface: PricingSurface, budget: RiskBudget, book: L2Book | None) -> tuple[OrderAction, ...]:
        """A TAKE (IOC up to the price that fills its size) when the Bellman policy says so, else ().

        The size is x*(q) lots, at most |position|, rounded down to the size grid and within the
        room the last :meth:`reconcile` of this cycle left on that side (no reconcile for this
        budget: no TAKE, since the orders that could still fill are unknown).
        """
        if book is None or not book.has_both_sides or book.is_crossed or budget.position == 0.0:
            return ()
        if self._room is None or self._room[0] != budget.ts_local:
            return ()
        side = Side.SELL if budget.position > 0.0 else Side.BUY
        size = min(self._take_size(surface, budget, book), self._room[1].get(side, 0.0))
        size = self.instrument.round_size(max(0.0, size))
        if size <= 0.0:
            return ()
        price = take_limit_price(book, side, size)
        if size * price < self.instrument.min_order_notional_usd:
            return ()
        action = OrderAction(kind=ActionKind.TAKE, side=side, price=price, size=size)
        return limit_exposure((action,), (), (), budget, self.instrument)

    def _take_size(self, surface: PricingSurface, budget: RiskBudget, book: L2Book) -> float:
        """x*(q) lots in coins, capped at |position| (0 when flat)."""
        if budget.position == 0.0:
            return 0.0
        cfg = self.config
        inputs = inputs_from(
            surface, budget, book,
            gamma_beta=self.gamma_beta, impact_beta=self.impact_beta,
            taker_fee_bps=cfg.taker_fee_bps, max_lots=cfg.unwind_max_lots,
        )
        solution = self.unwind_policy.solve(inputs)
        return min(solution.take_at(budget.position) * inputs.lot, abs(budget.position))

    # -- internals -------------------------------------------------------------------------

    def _track_jump(self, surface: PricingSurface) -> None:
        previous = self._last_fair
        self._last_fair = (surface.ts_local, surface.fair_value)
        if previous is None or surface.ts_local <= previous[0]:
            self._jump = (surface.ts_local, 0.0)
            return
        dt_s = (surface.ts_local - previous[0]) * 1e-9
        self._jump = (
            surface.ts_local,
            jump_urgency(previous[1], surface.fair_value, surface.sigma_per_sqrt_s, dt_s, self.config.jump_urgency_sigmas),
        )

    def _snap(
        self, levels: Sequence[LevelPricing], sizes: np.ndarray, side: Side, book: L2Book, max_order_size: float
    ) -> tuple[Quote, ...]:
        instrument = self.instrument
        min_notional = instrument.min_order_notional_usd
        if side is Side.BUY:
            limit = instrument.price_below(book.best_ask)  # best price a post-only bid may take
        else:
            limit = instrument.price_above(book.best_bid)
        merged: dict[float, float] = {}
        fill_prob: dict[float, float] = {}
        for level, size in zip(levels, sizes):
            if size <= 0.0:
                continue
            if side is Side.BUY:
                price = min(instrument.round_bid(level.price), limit)
            else:
                price = max(instrument.round_ask(level.price), limit)
            merged[price] = merged.get(price, 0.0) + float(size)
            fill_prob[price] = max(fill_prob.get(price, 0.0), level.fill_prob)
        # tolerance scale √(p_0 / p_k) (module docstring), capped
        first_prob = levels[0].fill_prob if levels else 0.0
        max_scale = self.config.max_tolerance_scale
        quotes = []
        for k, price in enumerate(sorted(merged, reverse=side is Side.BUY)):
            # levels merged onto one price still make one order, within the per-order cap
            size = instrument.round_size(min(merged[price], max_order_size))
            if size <= 0.0 or size * price < min_notional:
                continue
            prob = fill_prob[price]
            scale = min(max_scale, math.sqrt(first_prob / prob)) if prob > 0.0 and first_prob > prob else 1.0
            quotes.append(Quote(side=side, price=price, size=size, level=k, tolerance_scale=max(1.0, scale)))
        return tuple(quotes)


def _has_intensities(surface: PricingSurface) -> bool:
    return all(
        math.isfinite(v) and v > 0.0
        for v in (surface.intensity_bid_per_s, surface.intensity_ask_per_s, surface.decay_bid_per_bps, surface.decay_ask_per_bps)
    )


def jump_urgency(previous_fair: float, fair: float, sigma_per_sqrt_s: float, dt_s: float, k_sigmas: float) -> float:
    """Urgency from a fair-value jump: max(0, z − k), z = |ln(V̂_t / V̂_{t−1})| / (σ̂ √Δt).

    Zero for moves within k standard deviations of the diffusion over Δt, then growing linearly
    (continuous, so the tolerance shrinks smoothly as the jump grows).
    """
    if dt_s <= 0.0 or sigma_per_sqrt_s <= 0.0:
        return 0.0
    z = abs(math.log(fair / previous_fair)) / (sigma_per_sqrt_s * math.sqrt(dt_s))
    return max(0.0, z - k_sigmas)


def take_limit_price(book: L2Book, side: Side, size: float) -> float:
    """Limit of an IOC that crosses until ``size`` coins of displayed depth: the touch plus the
    depth needed (the deepest displayed level when the book is too thin)."""
    prices, sizes = (book.bid_px, book.bid_sz) if side is Side.SELL else (book.ask_px, book.ask_sz)
    depth = np.cumsum(sizes)
    index = int(np.searchsorted(depth, size - 1e-12, side="left"))
    return float(prices[min(index, prices.size - 1)])


def _match(wanted: Sequence[Quote], resting: list[OpenOrder], tolerance_bps: float, resize_frac: float) -> dict[int, int]:
    """Maximum matching target index → live index among pairs within tolerance (Kuhn's algorithm).

    A pair is compatible when |p_live − p_target| ≤ tol · scale · p_target (scale: the target's
    ``tolerance_scale``) and |s_live − s_target| ≤ frac · s_target. Candidates are found by bisection on the live prices and tried closest first.
    """
    if not wanted or not resting:
        return {}
    order = sorted(range(len(resting)), key=lambda i: resting[i].price)
    prices = [resting[i].price for i in order]
    candidates: list[list[int]] = []
    for quote in wanted:
        reach = tolerance_bps * quote.tolerance_scale * 1e-4 * quote.price * (1.0 + 1e-12) + 1e-12 * quote.price
        lo = bisect.bisect_left(prices, quote.price - reach)
        hi = bisect.bisect_right(prices, quote.price + reach)
        size_reach = resize_frac * quote.size * (1.0 + 1e-12) + 1e-12
        found = [order[j] for j in range(lo, hi) if abs(resting[order[j]].size - quote.size) <= size_reach]
        found.sort(key=lambda i: abs(resting[i].price - quote.price))
        candidates.append(found)
    owner: dict[int, int] = {}  # live index → target index

    def augment(t: int, seen: set[int]) -> bool:
        for i in candidates[t]:
            if i in seen:
                continue
            seen.add(i)
            if i not in owner or augment(owner[i], seen):
                owner[i] = t
                return True
        return False

    for t in range(len(wanted)):
        if candidates[t]:
            augment(t, set())
    return {t: i for i, t in owner.items()}


def reconcile(
    target: QuoteSet, live: Sequence[OpenOrder], reprice_tolerance_bps: float, resize_tolerance_frac: float
) -> tuple[OrderAction, ...]:
    """Cancels, modifies and placements that turn ``live`` into ``target`` with the fewest actions.

    Per side: keep the largest set of live orders that are each within ``reprice_tolerance_bps``
    (of the target's price) and ``resize_tolerance_frac`` (of its size) of a distinct target; pair
    the remaining live orders with the remaining targets best price first and MODIFY them; cancel
    the live orders left over and place the targets left over. With L live orders, T targets and
    K kept that is max(L, T) − K actions per side, one per level at most. Cancels come first, then
    modifies, then placements.
    """
    cancels: list[OrderAction] = []
    modifies: list[OrderAction] = []
    places: list[OrderAction] = []
    for side, wanted in ((Side.BUY, target.bids), (Side.SELL, target.asks)):
        resting = [order for order in live if order.side is side]
        matched = _match(wanted, resting, reprice_tolerance_bps, resize_tolerance_frac)
        kept = set(matched.values())
        best_first = side is Side.BUY  # bids best = highest
        spare = sorted((o for i, o in enumerate(resting) if i not in kept), key=lambda o: o.price, reverse=best_first)
        missing = sorted((q for t, q in enumerate(wanted) if t not in matched), key=lambda q: q.price, reverse=best_first)
        for order, quote in zip(spare, missing):
            modifies.append(OrderAction(kind=ActionKind.MODIFY, side=side, price=quote.price, size=quote.size, order_id=order.order_id))
        cancels.extend(
            OrderAction(kind=ActionKind.CANCEL, side=o.side, price=o.price, size=o.size, order_id=o.order_id)
            for o in spare[len(missing):]
        )
        places.extend(
            OrderAction(kind=ActionKind.PLACE, side=side, price=q.price, size=q.size) for q in missing[len(spare):]
        )
    return tuple(cancels + modifies + places)


def limit_exposure(
    actions: Sequence[OrderAction],
    live: Sequence[OpenOrder],
    pending_cancels: Sequence[OpenOrder],
    budget: RiskBudget | None,
    instrument: InstrumentSpec,
    room_out: dict[Side, float] | None = None,
) -> tuple[OrderAction, ...]:
    """Trim actions so that every order that could still fill keeps |position| ≤ q_max.

    Worst case on the buy side: the position plus every bid that is live, being cancelled or
    being modified, all filled. A modify is a cancel and a new order (Hyperliquid's semantics, and
    the simulator's): the old version can fill in part before the modify lands and the new one then
    rests in full, so an order id that appears both live (new price/size) and pending (old
    price/size, a modify in flight) counts at old + new, and a MODIFY to size s needs s of room
    beyond what its order already has at risk, as a PLACE does. A TAKE needs its size and is also
    never larger than |position| nor on the side that increases it. Actions are kept in order
    (best first); the last one that does not fit is shrunk, rounded down to the size grid, and a
    MODIFY that cannot keep any size becomes a CANCEL. ``room_out`` receives the room left per side.
    """
    if budget is None:
        return tuple(a for a in actions if a.kind is ActionKind.CANCEL)
    at_risk_by_id: dict[int, tuple[Side, float]] = {}
    for order in list(live) + list(pending_cancels):
        known = at_risk_by_id.get(order.order_id)
        at_risk_by_id[order.order_id] = (order.side, order.size if known is None else known[1] + order.size)
    at_risk = {Side.BUY: 0.0, Side.SELL: 0.0}
    for side, size in at_risk_by_id.values():
        at_risk[side] += size
    room = {
        Side.BUY: budget.q_max - budget.position - at_risk[Side.BUY],
        Side.SELL: budget.q_max + budget.position - at_risk[Side.SELL],
    }
    kept: list[OrderAction] = []
    for action in actions:
        if action.kind is ActionKind.CANCEL:
            kept.append(action)
            continue
        side = action.side
        if action.kind is ActionKind.MODIFY:
            size = instrument.round_size(min(action.size, max(0.0, room[side])))
            if size <= 0.0:
                already = at_risk_by_id.get(action.order_id, (side, 0.0))[1]
                kept.append(OrderAction(kind=ActionKind.CANCEL, side=side, price=action.price, size=already, order_id=action.order_id))
                continue
            room[side] -= size
        else:
            limit = room[side]
            if action.kind is ActionKind.TAKE:
                # a TAKE only reduces |position|: opposite to the position's sign, at most |q|
                reduces = (side is Side.SELL and budget.position > 0.0) or (side is Side.BUY and budget.position < 0.0)
                limit = min(limit, abs(budget.position)) if reduces else 0.0
            size = instrument.round_size(min(action.size, limit))
            if size <= 0.0:
                continue
            room[side] -= size
        kept.append(action if size == action.size else OrderAction(
            kind=action.kind, side=side, price=action.price, size=size, order_id=action.order_id
        ))
    if room_out is not None:
        room_out.update(room)
    return tuple(kept)
