"""Markouts, their decomposition, the messages the evaluator sends and its config."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmlab.config import ConfigError, EvaluatorConfig
from mmlab.evaluator import MarkoutEvaluator, decompose_markouts
from mmlab.testing import book_from_levels
from mmlab.types import Fill, Side, VenueUpdate

S = 1_000_000_000


def _update(ts: int, mid: float, fills=()) -> VenueUpdate:
    book = book_from_levels([(mid - 0.01, 5.0)], [(mid + 0.01, 5.0)], ts=ts)
    return VenueUpdate(ts_local=ts, book=book, trades=(), fills=tuple(fills), position=0.0, open_orders=())


def _fill(ts: int, side: Side, price: float, *, fee_bps: float = 1.5, maker: bool = True) -> Fill:
    return Fill(ts_exch=ts, ts_local=ts, order_id=1, side=side, price=price, size=2.0, fee_usd=price * 2.0 * fee_bps * 1e-4, is_maker=maker)


def test_markouts_and_their_decomposition_by_hand():
    config = EvaluatorConfig(decomposition_short_horizon_s=1.0, decomposition_long_horizon_s=60.0)
    evaluator = MarkoutEvaluator(config)
    # we buy at 99.99 with the mid at 100; the mid drops to 99.95 at 1 s, recovers to 99.98 by 60 s
    path = {0: 100.0, 1: 99.95, 5: 99.96, 10: 99.97, 30: 99.98, 60: 99.98, 300: 99.98}
    evaluator.evaluate(_update(0, 100.0, [_fill(0, Side.BUY, 99.99)]))
    for second in sorted(path)[1:]:
        evaluator.evaluate(_update(second * S, path[second]))
    row = evaluator.markouts_frame().iloc[0]
    spread = (100.0 - 99.99) / 99.99 * 1e4
    assert row["spread_captured_bps"] == pytest.approx(spread)
    assert row["markout_1s_bps"] == pytest.approx((99.95 - 99.99) / 99.99 * 1e4)
    assert row["markout_60s_bps"] == pytest.approx((99.98 - 99.99) / 99.99 * 1e4)
    # permanent: the 2 bps that stayed; temporary: the 3 bps that reverted between 1 s and 60 s
    assert row["permanent_impact_bps"] == pytest.approx((100.0 - 99.98) / 99.99 * 1e4)
    assert row["temporary_impact_bps"] == pytest.approx((99.98 - 99.95) / 99.99 * 1e4)
    assert row["realized_spread_bps"] == pytest.approx(row["markout_60s_bps"])
    updates = evaluator.updates(300 * S)
    assert updates.fills_marked == 1
    assert updates.adverse_selection_bps == pytest.approx((100.0 - 99.97) / 99.99 * 1e4)
    assert updates.fee_bps == pytest.approx(1.5)
    assert "adverse selection" in evaluator.summary()


@given(
    spread=st.floats(-20, 20),
    short=st.floats(-50, 50),
    long=st.floats(-50, 50),
)
def test_the_decomposition_adds_up(spread, short, long):
    realized, temporary, permanent = decompose_markouts(np.array([spread]), np.array([short]), np.array([long]))
    # spread captured = realized spread + permanent impact; markout_short = realized − temporary
    assert realized[0] + permanent[0] == pytest.approx(spread, abs=1e-9)
    assert realized[0] - temporary[0] == pytest.approx(short, abs=1e-9)


def test_unmatured_fills_have_nan_decomposition_and_the_fee_counts_marked_fills_only():
    evaluator = MarkoutEvaluator()
    evaluator.evaluate(_update(0, 100.0, [_fill(0, Side.SELL, 100.01, fee_bps=-0.2)]))
    evaluator.evaluate(_update(11 * S, 100.0, [_fill(11 * S, Side.BUY, 99.99, fee_bps=3.0, maker=False)]))
    frame = evaluator.markouts_frame()
    assert math.isnan(frame["permanent_impact_bps"].iloc[0])  # its 60 s markout has not matured
    updates = evaluator.updates(11 * S)
    assert updates.fills_marked == 1
    assert updates.fee_bps == pytest.approx(-0.2)
    # the counterfactual fee is our maker fills' (a rebate here), not the config's 1.5 bps
    assert evaluator.counterfactual_fee_bps == pytest.approx(-0.2)


def test_nothing_is_sent_before_there_is_evidence():
    updates = MarkoutEvaluator().evaluate(_update(S, 100.0))
    assert updates.informed_fraction is None
    assert updates.spread_adjust_bps == 0.0
    assert updates.changepoint_prob == 0.0
    assert updates.fills_marked == 0
    assert all(math.isnan(m) for m in updates.markout_bps)
    assert len(updates.counterfactual_pnl_bps) == len(EvaluatorConfig().counterfactual_adjust_bps)


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        (dict(decomposition_short_horizon_s=2.0), "decomposition_short_horizon_s"),
        (dict(decomposition_short_horizon_s=60.0, decomposition_long_horizon_s=10.0), "decomposition_short_horizon_s"),
        (dict(counterfactual_adjust_bps=()), "counterfactual_adjust_bps"),
        (dict(counterfactual_adjust_bps=(0.0, 1.0, 1.0)), "counterfactual_adjust_bps"),
        (dict(counterfactual_round_s=0.0), "counterfactual_round_s"),
        (dict(changepoint_window_samples=300), "changepoint_window_samples"),
        (dict(informed_memory_fills=1.0), "informed_memory_fills"),
        (dict(changepoint_hazard_timescale_s=math.nan), "changepoint_hazard_timescale_s"),
        (dict(informed_min_fills=2.5), "informed_min_fills"),
    ],
)
def test_bad_config_names_the_field(fields, name):
    with pytest.raises(ConfigError, match=name):
        EvaluatorConfig(**fields)


def test_config_round_trips():
    config = EvaluatorConfig(counterfactual_adjust_bps=(-0.5, 0.0, 1.0), informed_min_fills=10)
    assert EvaluatorConfig.from_dict(config.to_dict()) == config
