"""Informed-fraction posterior: recovery of a known π from simulated fills."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmlab.config import EvaluatorConfig
from mmlab.evaluator import MarkoutEvaluator
from mmlab.evaluator.informed import InformedFractionPosterior
from mmlab.testing import book_from_levels
from mmlab.types import Fill, Side, VenueUpdate

#: stated uncertainty: the truth lies within this many posterior standard deviations
Z_MAX = 2.5


def _adverse_moves(rng: np.random.Generator, pi: float, n: int, noise_bps: float, ratio: float) -> np.ndarray:
    """a = e + 1{informed} b, e ~ N(0, s²), b ~ HalfNormal(k s)."""
    informed = rng.random(n) < pi
    return rng.normal(0.0, noise_bps, n) + informed * np.abs(rng.normal(0.0, ratio * noise_bps, n))


@pytest.mark.parametrize("pi", [0.1, 0.3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_a_known_informed_fraction_within_its_uncertainty(pi, seed):
    rng = np.random.default_rng(100 * seed + int(10 * pi))
    noise_bps = 2.0
    moves = _adverse_moves(rng, pi, 1000, noise_bps, ratio=3.0)
    posterior = InformedFractionPosterior()
    for a in moves:
        posterior.add(a, noise_bps)
    assert posterior.fills == 1000
    assert 0.0 < posterior.std < 0.04
    assert abs(posterior.mean - pi) <= Z_MAX * posterior.std
    assert 2.0 < posterior.ratio < 5.0


def test_no_informed_flow_gives_a_small_fraction_and_the_prior_alone_gives_its_mean():
    prior = InformedFractionPosterior(prior_a=2.0, prior_b=8.0)
    assert prior.mean == pytest.approx(0.2, abs=0.005)
    rng = np.random.default_rng(9)
    posterior = InformedFractionPosterior()
    for a in rng.normal(0.0, 1.0, 1000):
        posterior.add(a, 1.0)
    assert posterior.mean < 0.05


def test_forgetting_follows_a_change_in_the_informed_fraction():
    rng = np.random.default_rng(12)
    posterior = InformedFractionPosterior(memory_fills=300.0)
    for a in _adverse_moves(rng, 0.05, 1500, 1.0, 3.0):
        posterior.add(a, 1.0)
    early = posterior.mean
    for a in _adverse_moves(rng, 0.4, 1500, 1.0, 3.0):
        posterior.add(a, 1.0)
    assert early < 0.12
    assert abs(posterior.mean - 0.4) < 3.0 * posterior.std + 0.02
    assert posterior.effective_fills == pytest.approx(300.0, rel=0.01)


def test_bad_input_raises():
    posterior = InformedFractionPosterior()
    with pytest.raises(ValueError, match="adverse_bps"):
        posterior.add(math.nan, 1.0)
    with pytest.raises(ValueError, match="noise_std_bps"):
        posterior.add(0.1, 0.0)


def test_the_evaluator_estimates_the_informed_fraction_of_its_fills():
    """Mids with a known diffusion; after each fill the mid moves against it by a half-normal
    jump with probability π; the evaluator judges the fills at h = 10 s."""
    rng = np.random.default_rng(21)
    pi, sigma_bps = 0.3, 1.0
    config = EvaluatorConfig(informed_min_fills=50)
    evaluator = MarkoutEvaluator(config)
    log_mid = math.log(100.0)
    ts, order_id = 0, 0
    sent = []
    for second in range(30000):
        ts += 1_000_000_000
        fills = ()
        jump = 0.0
        if second % 60 == 0 and second > 60:
            order_id += 1
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            mid = math.exp(log_mid)
            price = mid * (1.0 - int(side) * 1e-4)
            fills = (Fill(ts_exch=ts, ts_local=ts, order_id=order_id, side=side, price=price, size=1.0, fee_usd=price * 1.5e-4),)
            if rng.random() < pi:
                # informed: the mid moves against us right after the fill
                jump = -int(side) * abs(rng.normal(0.0, 3.0 * sigma_bps * math.sqrt(10.0))) * 1e-4
        mid = math.exp(log_mid)
        book = book_from_levels([(mid - 0.001, 1.0)], [(mid + 0.001, 1.0)], ts=ts)
        update = VenueUpdate(ts_local=ts, book=book, trades=(), fills=fills, position=0.0, open_orders=())
        sent.append(evaluator.evaluate(update).informed_fraction)
        log_mid += jump + rng.normal(0.0, sigma_bps * 1e-4)
    judged = evaluator.informed.fills
    assert judged > 450
    first_sent = next(i for i, value in enumerate(sent) if value is not None)
    assert all(value is None for value in sent[:first_sent])
    assert evaluator.updates(ts).fills_marked >= 50
    estimate = sent[-1]
    # s_h is measured from all mids, informed jumps included (a slight overstatement here)
    assert evaluator.diffusion_bps == pytest.approx(sigma_bps * math.sqrt(10.0), rel=0.15)
    assert evaluator.informed.std < 0.06
    assert abs(estimate - pi) <= Z_MAX * evaluator.informed.std
    assert evaluator.updates(ts).fee_bps == pytest.approx(1.5, rel=1e-6)
