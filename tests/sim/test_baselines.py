"""The Avellaneda–Stoikov baseline: closed form, monotone skew, volatility estimate, grid and cap."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmlab.config import InstrumentSpec, SimConfig, StrategyConfig
from mmlab.data.synth import SynthConfig, generate
from mmlab.sim.backtest import run_backtest, with_maker_fee
from mmlab.sim.baselines import (
    AvellanedaStoikovQuoter,
    avellaneda_stoikov_quotes,
    fit_depth_decay_per_bps,
)
from mmlab.testing import T0_NS, make_book, make_update
from mmlab.types import ActionKind, Side

INSTRUMENT = InstrumentSpec(coin="SYN", sz_decimals=2)
STEP_NS = 100_000_000  # 0.1 s cycles


def quotes_at(**overrides: float):
    args = dict(mid=100.0, position=0.0, gamma_per_usd=0.5, sigma_usd_per_sqrt_s=0.02, horizon_s=60.0, decay_per_usd=50.0)
    args.update(overrides)
    return avellaneda_stoikov_quotes(**args)


def test_closed_form_matches_a_hand_computed_case() -> None:
    # γσ²τ = 0.5 · 0.2² · 10 = 0.2;  r = 100 − 2 · 0.2 = 99.6
    # spread = 0.2 + (2 / 0.5) ln(1 + 0.5 / 1.5) = 0.2 + 4 ln(4/3) = 1.3507282898071236
    out = avellaneda_stoikov_quotes(
        mid=100.0, position=2.0, gamma_per_usd=0.5, sigma_usd_per_sqrt_s=0.2, horizon_s=10.0, decay_per_usd=1.5
    )
    assert out.reservation_price == pytest.approx(99.6, abs=1e-12)
    assert out.total_spread_usd == pytest.approx(1.3507282898071236, abs=1e-12)
    assert out.bid_price == pytest.approx(99.6 - 0.6753641449035618, abs=1e-12)
    assert out.ask_price == pytest.approx(99.6 + 0.6753641449035618, abs=1e-12)


def test_quotes_move_down_as_inventory_grows() -> None:
    positions = np.linspace(-2.0, 2.0, 17)
    outs = [quotes_at(position=float(q)) for q in positions]
    bids = np.array([o.bid_price for o in outs])
    asks = np.array([o.ask_price for o in outs])
    assert np.all(np.diff(bids) < 0) and np.all(np.diff(asks) < 0)
    # the spread itself does not depend on q
    assert np.ptp([o.total_spread_usd for o in outs]) < 1e-12


def test_spread_widens_with_sigma_and_gamma() -> None:
    sigmas = np.linspace(0.0, 0.1, 11)
    spreads = [quotes_at(sigma_usd_per_sqrt_s=float(s)).total_spread_usd for s in sigmas]
    assert np.all(np.diff(spreads) > 0)
    # with σ > 0 the spread grows with γ over this grid (γ σ² τ outgrows the falling 2/γ ln(1 + γ/k))
    gammas = np.geomspace(0.1, 100.0, 13)
    spreads = [quotes_at(gamma_per_usd=float(g), sigma_usd_per_sqrt_s=0.05).total_spread_usd for g in gammas]
    assert np.all(np.diff(spreads) > 0)


def test_bad_parameters_raise_naming_the_field() -> None:
    with pytest.raises(ValueError, match="gamma_per_usd"):
        AvellanedaStoikovQuoter(INSTRUMENT, gamma_per_usd=0.0)
    with pytest.raises(ValueError, match="warmup_returns"):
        AvellanedaStoikovQuoter(INSTRUMENT, warmup_returns=0)
    with pytest.raises(ValueError, match="decay_per_usd"):
        quotes_at(decay_per_usd=-1.0)


def drive(quoter: AvellanedaStoikovQuoter, mids: np.ndarray, *, position: float = 0.0, half_spread: float = 0.01):
    """Feed one book per 0.1 s around ``mids`` and return every cycle's output."""
    outputs = []
    for k, mid in enumerate(mids):
        ts = T0_NS + (k + 1) * STEP_NS
        book = make_book(bid=round(mid - half_spread, 2), ask=round(mid + half_spread, 2), ts=ts, levels=3)
        outputs.append(quoter.cycle(make_update(book, ts=ts, position=position)))
    return outputs


def test_sigma_estimate_recovers_the_volatility_and_waits_for_warm_up() -> None:
    rng = np.random.default_rng(5)
    sigma = 3e-4  # per √s
    steps = 6000  # 10 minutes of 0.1 s cycles
    log_mid = math.log(100.0) + np.cumsum(sigma * math.sqrt(0.1) * rng.standard_normal(steps))
    quoter = AvellanedaStoikovQuoter(INSTRUMENT, gamma_per_usd=1.0, size=0.2, q_max=1.0, warmup_returns=20, sigma_half_life_s=600.0)
    # the book is on a 0.01 grid; quantisation noise adds a little variance, so the mids are not rounded
    outputs = []
    for k, x in enumerate(np.exp(log_mid)):
        ts = T0_NS + (k + 1) * STEP_NS
        book = make_book(bid=x - 0.01, ask=x + 0.01, ts=ts)
        outputs.append(quoter.cycle(make_update(book, ts=ts)))
        if quoter.returns_seen < 20:
            assert outputs[-1].quotes.bids == () and outputs[-1].quotes.asks == ()
    assert quoter.returns_seen == pytest.approx(steps / 10, abs=2)
    assert quoter.sigma_per_sqrt_s == pytest.approx(sigma, rel=0.15)
    assert outputs[-1].quotes.bids and outputs[-1].quotes.asks


@pytest.mark.parametrize("position", [-5.0, -1.0, 0.0, 1.0, 5.0])
def test_never_crosses_the_book(position: float) -> None:
    rng = np.random.default_rng(11)
    mids = 100.0 * np.exp(np.cumsum(5e-4 * math.sqrt(0.1) * rng.standard_normal(600)))
    # a large γ and a long horizon push the reservation price far beyond the touch
    quoter = AvellanedaStoikovQuoter(INSTRUMENT, gamma_per_usd=50.0, horizon_s=600.0, size=0.2, q_max=10.0, warmup_returns=5)
    outputs = drive(quoter, mids, position=position)
    quoted = 0
    for out, mid in zip(outputs, mids):
        best_bid, best_ask = round(mid - 0.01, 2), round(mid + 0.01, 2)
        for quote in out.quotes.bids:
            assert quote.price < best_ask and INSTRUMENT.is_valid_price(quote.price)
        for quote in out.quotes.asks:
            assert quote.price > best_bid and INSTRUMENT.is_valid_price(quote.price)
        for action in out.actions:
            if action.kind is ActionKind.PLACE:
                assert (action.price < best_ask) if action.side is Side.BUY else (action.price > best_bid)
        quoted += bool(out.quotes.bids or out.quotes.asks)
    assert quoted > 500
    # the skew is visible: long positions quote the ask at the touch, short ones the bid
    last = outputs[-1].quotes
    if position > 0:
        assert last.asks[0].price == INSTRUMENT.price_above(round(mids[-1] - 0.01, 2))
    if position < 0:
        assert last.bids[0].price == INSTRUMENT.price_below(round(mids[-1] + 0.01, 2))


def test_respects_the_position_cap_in_a_synthetic_backtest() -> None:
    market = generate(SynthConfig(seed=3, minutes=4.0, informed_fraction=0.2))
    strategy, sim = with_maker_fee(StrategyConfig(instrument=market.tape.instrument), SimConfig(), -0.2)
    q_max = 0.5
    quoter = AvellanedaStoikovQuoter(
        market.tape.instrument, gamma_per_usd=0.1, decay_per_bps=2.0, size=0.2, q_max=q_max, warmup_returns=10
    )
    result = run_backtest(market.tape, strategy, sim, pipeline=quoter)
    assert result.summary.fills > 10
    assert result.summary.max_abs_position <= q_max + 1e-9
    assert np.all(np.abs(result.cycles["position"].to_numpy()) <= q_max + 1e-9)


def test_depth_decay_fit_recovers_an_exponential_tail() -> None:
    rng = np.random.default_rng(2)
    kappa = 1.7
    # half the orders stop at the touch (1 bps), the rest reach 1 + Exp(κ)
    depths = np.concatenate([np.full(4000, 1.0), 1.0 + rng.exponential(1.0 / kappa, 4000)])
    fit = fit_depth_decay_per_bps(depths)
    assert fit.threshold_bps == pytest.approx(1.0, abs=0.05)
    # the touch orders sit at the threshold with zero excess, so fit only the excess beyond it
    tail_fit = fit_depth_decay_per_bps(1.0 + rng.exponential(1.0 / kappa, 4000), threshold_quantile=0.0)
    assert abs(tail_fit.decay_per_bps - kappa) < 3 * tail_fit.std_err
    assert "per bps" in tail_fit.summary()
    with pytest.raises(ValueError, match="depths_bps"):
        fit_depth_decay_per_bps(np.ones(5))


def test_fixed_spread_never_breaks_its_cap_through_partial_fills_and_modifies():
    # seed 4 at a 0.25 bps half-spread once reached 2.31 coins against a 2-coin cap: a partial fill
    # of the old version of a modified order, then the new version resting in full
    from mmlab.sim.baselines import FixedSpreadQuoter

    tape = generate(SynthConfig(minutes=30.0, seed=4)).tape
    quoter = FixedSpreadQuoter(tape.instrument, half_spread_bps=0.25, size=0.5, q_max=2.0)
    strategy, sim = with_maker_fee(StrategyConfig(instrument=tape.instrument), SimConfig(), -0.2)
    result = run_backtest(tape, strategy, sim, pipeline=quoter)
    assert result.summary.fills > 1_000
    assert result.summary.max_abs_position <= 2.0 + 1e-9
