"""Bayesian online change-point detection: variance jumps, false alarms, synthetic regimes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmlab.config import EvaluatorConfig
from mmlab.evaluator import MarkoutEvaluator
from mmlab.evaluator.changepoint import ChangePointDetector
from mmlab.testing import book_from_levels, make_update

CHANGE_AT = 600
#: stated: a ×4 variance jump is flagged (P > 0.5) on every seed within this many samples,
#: on 90% of seeds within Q90_DELAY_SAMPLES, and within MEDIAN_DELAY_SAMPLES in the median
MAX_DELAY_SAMPLES = 120
Q90_DELAY_SAMPLES = 20
MEDIAN_DELAY_SAMPLES = 12
#: stated: fraction of pre-change samples with P > 0.5, over all seeds
FALSE_ALARM_RATE = 0.01


def _detector(config: EvaluatorConfig | None = None) -> ChangePointDetector:
    cfg = config or EvaluatorConfig()
    return ChangePointDetector(
        hazard_timescale_samples=cfg.changepoint_hazard_timescale_s,
        max_run_length=cfg.changepoint_max_run_length,
        window_samples=cfg.changepoint_window_samples,
        prior_shape=cfg.changepoint_prior_shape,
        variance_half_life_samples=cfg.volatility_half_life_s,
    )


def test_a_fourfold_variance_jump_is_detected_quickly_without_false_alarms():
    delays, alarms, before = [], 0, 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        returns = np.concatenate([rng.normal(0.0, 1.0, CHANGE_AT), rng.normal(0.0, 2.0, 120)])
        detector = _detector()
        probs = np.array([detector.update(x) for x in returns])
        # skip the first 100 samples, while the prior scale settles
        alarms += int(np.sum(probs[100:CHANGE_AT] > 0.5))
        before += CHANGE_AT - 100
        hits = np.nonzero(probs[CHANGE_AT:] > 0.5)[0]
        delays.append(int(hits[0]) if hits.size else math.inf)
    assert max(delays) <= MAX_DELAY_SAMPLES, delays
    assert np.quantile(delays, 0.9) <= Q90_DELAY_SAMPLES, delays
    assert np.median(delays) <= MEDIAN_DELAY_SAMPLES, delays
    assert alarms / before <= FALSE_ALARM_RATE


def test_zero_returns_of_a_price_grid_are_not_taken_for_a_collapse_of_the_variance():
    # a constant-volatility log price on a grid of 2σ: about 60% of the returns are exactly 0
    alarms = 0
    for seed in range(3):
        rng = np.random.default_rng(seed)
        grid_bps = 0.6
        prices = np.round(np.cumsum(rng.normal(0.0, 0.3, 3000)) / grid_bps) * grid_bps
        returns = np.diff(prices)
        assert 0.5 < np.mean(returns == 0.0) < 0.7
        detector = _detector()
        probs = np.array([detector.update(x) for x in returns])
        assert detector.grid == pytest.approx(grid_bps)
        alarms += int(np.sum(probs[100:] > 0.5))
    # scored as densities at 0, these zeros raise ~1.2% false alarms; as interval probabilities
    assert alarms / (3 * 2899) < 0.002


def test_the_run_length_posterior_is_a_distribution_that_grows_with_a_stable_series():
    rng = np.random.default_rng(3)
    detector = _detector()
    for x in rng.normal(0.0, 1.0, 400):
        detector.update(x)
        probs = detector.run_length_probs
        assert probs.shape == (300,)
        assert math.isclose(probs.sum(), 1.0, rel_tol=1e-9)
    # a long calm run: little mass on recent changes, most on long runs
    assert detector.changepoint_prob < 0.2
    assert detector.run_length_probs[100:].sum() > 0.5
    assert math.isclose(detector.mean_variance, 1.0, rel_tol=0.3)


def test_a_scaled_series_gives_the_same_probabilities():
    # empirical-Bayes prior: the detector has no price scale
    rng = np.random.default_rng(8)
    returns = np.concatenate([rng.normal(0.0, 1.0, 300), rng.normal(0.0, 3.0, 50)])
    a, b = _detector(), _detector()
    pa = [a.update(x) for x in returns]
    pb = [b.update(50.0 * x) for x in returns]
    np.testing.assert_allclose(pa, pb, atol=1e-9)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="finite"):
        _detector().update(math.nan)
    with pytest.raises(ValueError, match="window_samples"):
        ChangePointDetector(
            hazard_timescale_samples=100.0, max_run_length=10, window_samples=10, prior_shape=1.0, variance_half_life_samples=10.0
        )


def test_the_evaluator_samples_the_mid_every_second_from_its_updates():
    rng = np.random.default_rng(4)
    evaluator = MarkoutEvaluator()
    log_mid = math.log(100.0)
    ts = 0
    probs = []
    # 10 updates a second; the mid's 1 s variance jumps ×4 after 600 s
    for second in range(720):
        sigma = 1e-4 if second < 600 else 2e-4
        for _ in range(10):
            ts += 100_000_000
            log_mid += rng.normal(0.0, sigma / math.sqrt(10.0))
            mid = math.exp(log_mid)
            book = book_from_levels([(mid - 0.005, 1.0)], [(mid + 0.005, 1.0)], ts=ts)
            probs.append(evaluator.evaluate(make_update(book, ts=ts)).changepoint_prob)
    assert evaluator.detector.samples == pytest.approx(720, abs=2)
    probs = np.array(probs)
    assert np.mean(probs[1000:6000] > 0.5) < FALSE_ALARM_RATE
    assert probs[6000 : 6000 + 10 * Q90_DELAY_SAMPLES].max() > 0.5
    # s_h at h = 10 s from the h-second mid changes: σ √h = 1 bps · √10 before the jump
    assert 2.0 < evaluator.diffusion_bps < 6.0


@pytest.mark.slow
def test_regime_changes_of_the_synthetic_market_are_detected():
    from mmlab.data.synth import SynthConfig, generate

    market = generate(SynthConfig(seed=1, minutes=120.0))
    path = market.path
    ts = path["ts_exch"].to_numpy()
    log_mid = path["log_public_price"].to_numpy()
    regime = path["regime"].to_numpy()
    # the public mid (the centre of the displayed book) sampled every second (10 grid steps)
    per_second = slice(0, None, 10)
    returns = np.diff(log_mid[per_second]) * 1e4
    detector = _detector()
    probs = np.array([detector.update(x) for x in returns])
    sample_ts = ts[per_second][1:]
    changes = np.nonzero(np.diff(regime))[0] + 1
    crisis_delays = []
    for index in changes:
        if regime[index] != 2:
            continue
        after = sample_ts >= ts[index]
        hits = np.nonzero(probs[after][:60] > 0.5)[0]
        crisis_delays.append(hits[0] + 1 if hits.size else math.inf)
    assert len(crisis_delays) >= 3
    # entering CRISIS (×7 to ×16 variance, seen through a mid that lags V by 2 s): flagged within
    # 30 s on every entry and within 10 s in the median
    assert max(crisis_delays) <= 30, crisis_delays
    assert np.median(crisis_delays) <= 10, crisis_delays
