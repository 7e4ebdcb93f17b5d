"""The reconciler sends nothing when live equals target and the minimum otherwise."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from mmlab.config import ExecutorConfig, InstrumentSpec
from mmlab.executor import LadderExecutor, jump_urgency, limit_exposure, reconcile
from mmlab.types import ActionKind, OpenOrder, OrderAction, Quote, QuoteSet, RiskBudget, Side


def _target(bids, asks):
    return QuoteSet(
        ts_local=0,
        bids=tuple(Quote(side=Side.BUY, price=p, size=s, level=i) for i, (p, s) in enumerate(bids)),
        asks=tuple(Quote(side=Side.SELL, price=p, size=s, level=i) for i, (p, s) in enumerate(asks)),
    )


def _live(orders):
    return [OpenOrder(order_id=i + 1, side=side, price=p, size=s, ts_local_sent=0) for i, (side, p, s) in enumerate(orders)]


def test_no_actions_when_live_equals_target():
    target = _target([(99.98, 0.5), (99.96, 0.5)], [(100.02, 0.5)])
    live = _live([(Side.BUY, 99.98, 0.5), (Side.BUY, 99.96, 0.5), (Side.SELL, 100.02, 0.5)])
    assert reconcile(target, live, 0.5, 0.25) == ()


def test_one_moved_level_is_one_modify():
    target = _target([(99.97, 0.5), (99.96, 0.5)], [(100.02, 0.5)])
    live = _live([(Side.BUY, 99.98, 0.5), (Side.BUY, 99.96, 0.5), (Side.SELL, 100.02, 0.5)])
    actions = reconcile(target, live, 0.5, 0.25)
    assert [(a.kind, a.price, a.size, a.order_id) for a in actions] == [(ActionKind.MODIFY, 99.97, 0.5, 1)]


def test_extra_live_is_cancelled_and_missing_target_placed():
    target = _target([(99.98, 0.5)], [(100.02, 0.5), (100.04, 0.5)])
    live = _live([(Side.BUY, 99.98, 0.5), (Side.BUY, 99.90, 0.5), (Side.SELL, 100.02, 0.5)])
    actions = reconcile(target, live, 0.5, 0.25)
    assert [(a.kind, a.price) for a in actions] == [(ActionKind.CANCEL, 99.90), (ActionKind.PLACE, 100.04)]


def test_maximum_matching_keeps_more_than_greedy_would():
    # both live orders are 0.5 bps from the 99.99 target; greedy would give it 99.985, the only
    # order within 1.5 bps of the 99.975 target, and then modify one of them
    target = _target([(99.99, 0.5), (99.975, 0.5)], [])
    live = _live([(Side.BUY, 99.985, 0.5), (Side.BUY, 99.995, 0.5)])
    assert reconcile(target, live, 1.5, 0.25) == ()


def test_small_moves_inside_tolerance_are_ignored():
    target = _target([(99.975, 0.45)], [])
    live = _live([(Side.BUY, 99.98, 0.5)])
    assert reconcile(target, live, 0.6, 0.25) == ()


def test_empty_target_cancels_everything():
    live = _live([(Side.BUY, 99.98, 0.5), (Side.SELL, 100.02, 0.5)])
    actions = reconcile(_target([], []), live, 0.5, 0.25)
    assert sorted(a.order_id for a in actions) == [1, 2]
    assert all(a.kind is ActionKind.CANCEL for a in actions)


# -- property: one action per level at most, the result is the target, nothing when equal ------------

prices = st.integers(9_900, 10_100).map(lambda c: c / 100.0)
sizes = st.integers(1, 20).map(lambda c: c / 10.0)


@st.composite
def books(draw):
    bids = draw(st.lists(st.tuples(prices, sizes), max_size=6, unique_by=lambda t: t[0]))
    asks = draw(st.lists(st.tuples(prices, sizes), max_size=6, unique_by=lambda t: t[0]))
    live = draw(st.lists(st.tuples(st.sampled_from([Side.BUY, Side.SELL]), prices, sizes), max_size=10))
    tol = draw(st.sampled_from([0.0, 0.5, 2.0]))
    return _target(sorted(bids, reverse=True), sorted(asks)), _live(live), tol


def _apply(live, actions):
    book = {o.order_id: (o.side, o.price, o.size) for o in live}
    new = []
    for a in actions:
        if a.kind is ActionKind.CANCEL:
            del book[a.order_id]
        elif a.kind is ActionKind.MODIFY:
            assert book[a.order_id][0] is a.side
            book[a.order_id] = (a.side, a.price, a.size)
        else:
            new.append((a.side, a.price, a.size))
    return list(book.values()) + new


@settings(max_examples=200)
@given(books())
def test_reconcile_reaches_the_target_with_one_action_per_level(case):
    target, live, tol = case
    actions = reconcile(target, live, tol, 0.25)
    ids = [a.order_id for a in actions if a.kind in (ActionKind.CANCEL, ActionKind.MODIFY)]
    assert len(ids) == len(set(ids))  # each live order touched at most once
    for side, wanted in ((Side.BUY, target.bids), (Side.SELL, target.asks)):
        n_live = sum(o.side is side for o in live)
        side_actions = [a for a in actions if a.side is side]
        assert len(side_actions) <= max(n_live, len(wanted))  # at most one per level
    result = _apply(live, actions)
    for side, wanted in ((Side.BUY, target.bids), (Side.SELL, target.asks)):
        have = sorted((p, s) for sd, p, s in result if sd is side)
        assert len(have) == len(wanted)
        # every target has a distinct resulting order within tolerance (greedy is enough to check)
        free = list(have)
        for q in sorted(wanted, key=lambda q: q.price):
            hit = next(i for i, (p, s) in enumerate(free)
                       if abs(p - q.price) <= tol * 1e-4 * q.price * (1 + 1e-9) + 1e-9 and abs(s - q.size) <= 0.25 * q.size + 1e-9)
            free.pop(hit)


@settings(max_examples=100)
@given(books())
def test_nothing_is_sent_when_live_equals_target(case):
    target, _, tol = case
    live = _live([(q.side, q.price, q.size) for q in target.all])
    assert reconcile(target, live, tol, 0.25) == ()


# -- urgency shrinks the price tolerance ------------------------------------------------------------

def _budget(position=0.0, urgency=0.0, q_max=2.0, ts=0):
    return RiskBudget(
        ts_local=ts, position=position, gamma_per_usd=1.0, q_max=q_max, max_buy_size=q_max - position,
        max_sell_size=q_max + position, max_order_size=0.5, funding_carry_bps=0.0, marginal_cost_bps=0.0,
        holding_horizon_s=60.0, urgency=urgency,
    )


def test_urgency_shrinks_the_price_tolerance():
    executor = LadderExecutor(InstrumentSpec(), ExecutorConfig(reprice_tolerance_bps=1.0), levels=1)
    target = _target([(99.99, 0.5)], [])
    live = _live([(Side.BUY, 99.985, 0.5)])  # 0.5 bps away
    assert executor.reconcile(target, live, (), _budget(urgency=0.0)) == ()
    assert executor.reconcile(target, live, (), _budget(urgency=0.5)) == ()  # tol 0.67 bps
    actions = executor.reconcile(target, live, (), _budget(urgency=2.0))  # tol 0.33 bps
    assert [(a.kind, a.price) for a in actions] == [(ActionKind.MODIFY, 99.99)]


def test_jump_urgency_formula():
    # a 10 bps move with σ̂ = 1 bps/√s over 1 s is z = 10 standard deviations: urgency 10 − 3
    assert math.isclose(jump_urgency(100.0, 100.0 * math.exp(1e-3), 1e-4, 1.0, 3.0), 7.0)
    assert jump_urgency(100.0, 100.0 * math.exp(2e-4), 1e-4, 1.0, 3.0) == 0.0
    assert math.isclose(jump_urgency(100.0, 100.0 * math.exp(-1e-3), 1e-4, 4.0, 3.0), 2.0)


# -- exposure with MODIFY and TAKE --------------------------------------------------------------------

GRID = InstrumentSpec(sz_decimals=2, min_order_notional_usd=0.0)


def test_modify_in_flight_counts_old_plus_new():
    # a modify is a cancel and a new order: the old version (1.0) can fill in part before the
    # modify lands and the new version (0.5) still rests in full
    live = [OpenOrder(order_id=1, side=Side.BUY, price=99.9, size=0.5, ts_local_sent=0)]
    pending = [OpenOrder(order_id=1, side=Side.BUY, price=99.8, size=1.0, ts_local_sent=0)]  # old size
    place = OrderAction(kind=ActionKind.PLACE, side=Side.BUY, price=99.7, size=1.0)
    room = {}
    kept = limit_exposure([place], live, pending, _budget(position=0.25), GRID, room_out=room)
    # q + 0.5 + 1.0 = 1.75 of 2.0: only 0.25 more fits
    assert [a.size for a in kept] == [0.25]
    assert math.isclose(room[Side.BUY], 0.0, abs_tol=1e-12)


def test_modify_needs_room_for_its_whole_new_size():
    live = [OpenOrder(order_id=7, side=Side.BUY, price=99.9, size=0.5, ts_local_sent=0)]
    grow = OrderAction(kind=ActionKind.MODIFY, side=Side.BUY, price=99.95, size=2.0, order_id=7)
    kept = limit_exposure([grow], live, (), _budget(position=1.0), GRID)
    # room beyond the order's own 0.5 at risk: 2 − 1 − 0.5 = 0.5, so the new version may rest 0.5
    assert [(a.kind, a.size, a.order_id) for a in kept] == [(ActionKind.MODIFY, 0.5, 7)]
    # with no room left the modify becomes a cancel (the order is repriced by cancel, then place)
    full = limit_exposure([grow], live, (), _budget(position=1.5), GRID)
    assert [(a.kind, a.order_id) for a in full] == [(ActionKind.CANCEL, 7)]


@settings(max_examples=200)
@given(
    st.floats(-2.0, 2.0), st.sampled_from([Side.BUY, Side.SELL]), st.floats(0.0, 5.0),
    st.lists(st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.floats(0.01, 1.0)), max_size=5),
)
def test_take_never_increases_abs_position_nor_breaks_the_cap(position, side, size, resting):
    live = [OpenOrder(order_id=i + 1, side=s, price=100.0, size=round(z, 2), ts_local_sent=0) for i, (s, z) in enumerate(resting)]
    take = OrderAction(kind=ActionKind.TAKE, side=side, price=100.0, size=size)
    budget = _budget(position=position)
    kept = limit_exposure([take], live, (), budget, GRID)
    for action in kept:
        assert action.size <= abs(position) + 1e-12
        assert int(action.side) * position < 0.0  # on the reducing side only
        at_risk = sum(o.size for o in live if o.side is action.side)
        assert abs(position + int(action.side) * (action.size + at_risk)) <= budget.q_max + 1e-9 or (
            at_risk + abs(position) > budget.q_max  # already beyond the cap: then nothing may be added
            and action.size == 0.0
        )
