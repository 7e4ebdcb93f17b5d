"""The change-point detector's hazard and prior shape, chosen by its evidence."""

import numpy as np
import pytest

from mmlab.calibrate.changepoint import fit_changepoint, sampled_returns_bps
from mmlab.config import EvaluatorConfig
from mmlab.data.synth import SynthConfig, generate
from mmlab.evaluator.changepoint import ChangePointDetector


def _detector(hazard, shape=1.0):
    return ChangePointDetector(hazard_timescale_samples=hazard, max_run_length=300, window_samples=30, prior_shape=shape,
                               variance_half_life_samples=300.0)


def _regime_series(mean_run, n, seed):
    rng = np.random.default_rng(seed)
    out, std = [], 1.0
    while len(out) < n:
        run = int(rng.geometric(1.0 / mean_run))
        std = float(np.exp(rng.normal(0.0, 0.8)))
        out.extend(rng.normal(0.0, std, run))
    return np.array(out[:n])


def test_log_evidence_is_the_sum_of_one_step_predictive_log_densities():
    # with no change possible in practice and a huge prior shape the predictive is ~ N(0, v̄)
    x = np.random.default_rng(1).normal(0.0, 2.0, 3_000)
    detector = _detector(1e12, shape=1e6)
    for value in x:
        detector.update(float(value))
    gaussian = np.sum(-0.5 * np.log(2 * np.pi * 4.0) - x[1:] ** 2 / 8.0)
    assert detector.log_evidence == pytest.approx(gaussian, rel=0.02)


def test_evidence_prefers_the_true_hazard_over_far_wrong_ones():
    x = _regime_series(mean_run=100, n=20_000, seed=3)
    evidence = {}
    for hazard in (10.0, 100.0, 3_000.0):
        detector = _detector(hazard)
        for value in x:
            detector.update(float(value))
        evidence[hazard] = detector.log_evidence
    assert max(evidence, key=evidence.get) == 100.0


def test_fit_on_the_synthetic_market_and_its_config():
    tape = generate(SynthConfig(minutes=30.0, seed=100)).tape
    returns = sampled_returns_bps(tape)
    assert len(returns) == pytest.approx(30 * 60, abs=2) and np.all(np.isfinite(returns))
    fit = fit_changepoint(tape)
    assert fit.log_evidence[(fit.hazard_timescale_s, fit.prior_shape)] == max(fit.log_evidence.values())
    assert 0.0 <= fit.alarm_fraction <= 1.0 and "T =" in fit.summary()
    config = fit.evaluator_config(EvaluatorConfig(maker_fee_bps=-0.2))
    assert config.changepoint_hazard_timescale_s == fit.hazard_timescale_s and config.maker_fee_bps == -0.2


def test_too_short_a_tape_is_refused_naming_the_need():
    tape = generate(SynthConfig(minutes=2.0, seed=1)).tape
    with pytest.raises(ValueError, match="need at least"):
        fit_changepoint(tape)
