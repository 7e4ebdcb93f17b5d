"""Replaying a real tape with one plain quoter under each queue model orders the fills as expected.

The risk-averse model only lets trades advance our queue position; the probabilistic ones also
credit part of every cancellation ahead of us. With the same quotes, the risk-averse model must
never fill more than any probabilistic one. The tapes come from ``tests/sim/conftest.py``.
"""

import pytest

from mmlab.config import SimConfig
from mmlab.sim.backtest import run_backtest
from mmlab.sim.baselines import FixedSpreadQuoter

PROBABILISTIC = ("power:2", "power:3", "log")


def _fills_by_model(tape, half_spread_bps, size, q_max):
    fills = {}
    for model in ("risk_averse",) + PROBABILISTIC:
        quoter = FixedSpreadQuoter(tape.instrument, half_spread_bps=half_spread_bps, size=size, q_max=q_max)
        result = run_backtest(tape, sim=SimConfig(queue_model=model), pipeline=quoter)
        fills[model] = (result.summary.fills, result.fills["size"].sum())
    return fills


def test_risk_averse_never_fills_more_than_probabilistic_on_hyperliquid_btc(hyperliquid_btc):
    # The book is one 1-USD tick (0.09 bps) wide: 0.01 bps either side of the mid rounds onto the
    # touch itself, where our queue position decides the fills. The position cap is far away so
    # the quotes depend on the book alone.
    fills = _fills_by_model(hyperliquid_btc, half_spread_bps=0.01, size=0.001, q_max=10.0)
    risk_averse_count, risk_averse_volume = fills["risk_averse"]
    assert risk_averse_count > 0
    for model in PROBABILISTIC:
        count, volume = fills[model]
        assert risk_averse_count <= count and risk_averse_volume <= volume + 1e-12, (model, fills)
    # cancellations ahead of us are real on this tape: some model must gain from them
    assert any(fills[m][0] > risk_averse_count for m in PROBABILISTIC), fills


def test_risk_averse_never_fills_more_than_probabilistic_on_binance_btcusdt(binance_btcusdt):
    # depth diffs carry every cancellation; quotes 0.001 bps from the mid round onto the touch
    # of Binance's 0.1 USDT grid (the importer reads the tick from the prices)
    tape = binance_btcusdt
    assert tape.instrument.price_tick == pytest.approx(0.1)
    fills = _fills_by_model(tape, half_spread_bps=0.001, size=0.002, q_max=10.0)
    risk_averse_count, risk_averse_volume = fills["risk_averse"]
    assert risk_averse_count > 100
    for model in PROBABILISTIC:
        count, volume = fills[model]
        assert risk_averse_count <= count and risk_averse_volume <= volume + 1e-12, (model, fills)
    assert all(fills[m][1] > risk_averse_volume for m in PROBABILISTIC), fills
