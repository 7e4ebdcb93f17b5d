"""The reconciler sends nothing when live equals target and the minimum otherwise."""

from mmlab.executor import reconcile
from mmlab.types import ActionKind, OpenOrder, Quote, QuoteSet, Side


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


def test_one_moved_level_is_one_cancel_and_one_place():
    target = _target([(99.97, 0.5), (99.96, 0.5)], [(100.02, 0.5)])
    live = _live([(Side.BUY, 99.98, 0.5), (Side.BUY, 99.96, 0.5), (Side.SELL, 100.02, 0.5)])
    actions = reconcile(target, live, 0.5, 0.25)
    assert [(a.kind, a.price) for a in actions] == [(ActionKind.CANCEL, 99.98), (ActionKind.PLACE, 99.97)]
    assert actions[0].order_id == 1


def test_small_moves_inside_tolerance_are_ignored():
    target = _target([(99.975, 0.45)], [])
    live = _live([(Side.BUY, 99.98, 0.5)])
    assert reconcile(target, live, 0.6, 0.25) == ()


def test_empty_target_cancels_everything():
    live = _live([(Side.BUY, 99.98, 0.5), (Side.SELL, 100.02, 0.5)])
    actions = reconcile(_target([], []), live, 0.5, 0.25)
    assert sorted(a.order_id for a in actions) == [1, 2]
    assert all(a.kind is ActionKind.CANCEL for a in actions)
