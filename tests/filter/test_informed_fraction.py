"""The informed fraction π as an output: the judge of each fill, its smoother, and recovery of π."""

import math

import numpy as np
import pytest
from scipy.stats import norm

from mmlab.config import FilterConfig
from mmlab.filter import LatentStateFilter, PendingFill, fill_responsibility
from mmlab.filter.fills import informed_likelihood_ratio
from mmlab.testing import T0_NS
from mmlab.types import Fill, Observation, ParameterUpdates, Side, StateComponent

SIGMA_PER_SQRT_S = 1e-4  # the quiet regime's vol, so the default filter's model is right
NOISE_VAR = (0.5e-4) ** 2


@pytest.mark.parametrize("side", [Side.SELL, Side.BUY])
@pytest.mark.parametrize(("offset_std", "evidence_std"), [(0.0, 1.0), (0.7, 0.5), (-1.2, 2.0), (2.0, 0.3)])
def test_likelihood_ratio_matches_quadrature(side, offset_std, evidence_std):
    mean, std = math.log(100.0), 3e-5
    log_price = mean + offset_std * std
    evidence_var = (evidence_std * std) ** 2
    evidence = mean + 0.8 * std * (1 if side is Side.SELL else -1)
    x = np.linspace(mean - 12 * std, mean + 12 * std, 200_001)
    prior = norm.pdf(x, mean, std)
    beyond = (x > log_price) if side is Side.SELL else (x < log_price)
    likelihood = norm.pdf(evidence, x, math.sqrt(evidence_var))
    # p(y | informed) / p(y | uninformed), both integrals over the prior
    informed = np.sum(prior * beyond * likelihood) / np.sum(prior * beyond)
    uninformed = np.sum(prior * likelihood) / np.sum(prior)
    got = informed_likelihood_ratio(side, log_price, mean, std**2, evidence, evidence_var)
    # the grid step is 1.2e-4 std and the integrand jumps at the price
    assert got == pytest.approx(informed / uninformed, rel=1e-3)
    r = fill_responsibility(side, log_price, mean, std**2, evidence, evidence_var, 0.2)
    assert r == pytest.approx(0.2 * got / (0.2 * got + 0.8))


def test_the_smoother_is_the_exact_estimate_of_value_at_the_fill_from_later_data():
    """GLS with a flat prior: z_j = V_fill + W(t_j) + e_j, W a random walk of variance σ² t."""
    rng = np.random.default_rng(5)
    sigma2 = SIGMA_PER_SQRT_S**2
    fill = PendingFill.start(ts_local=0, side=Side.SELL, log_price=0.0, prior_mean=0.0, prior_var=1e-9)
    times, values, noise = [], [], []
    t = 0.0
    for _ in range(30):
        dt = rng.uniform(0.05, 0.3)
        t += dt
        batch = list(rng.normal(0.0, 1e-4, size=rng.integers(0, 3)))
        batch_noise = list(rng.uniform(0.2, 2.0, size=len(batch)) * NOISE_VAR)
        fill = fill.advance(dt, sigma2, batch, batch_noise)
        times += [t] * len(batch)
        values += batch
        noise += batch_noise
    times, values = np.array(times), np.array(values)
    cov = sigma2 * np.minimum.outer(times, times) + np.diag(noise)
    ones = np.ones_like(values)
    information = ones @ np.linalg.solve(cov, ones)
    # the flat start is 1e6 prior variances wide: its weight is ~1e-6 of the data's
    assert fill.evidence_var == pytest.approx(1.0 / information, rel=1e-5)
    assert fill.evidence_mean == pytest.approx(ones @ np.linalg.solve(cov, values) / information, abs=1e-5 * math.sqrt(fill.evidence_var))
    assert fill.observations == len(values)


def _simulate(informed_arrival: float, offset_std: float, seconds: float, seed: int, config: FilterConfig):
    """A market where the filter's model holds, and fills drawn from the Glosten–Milgrom model.

    ln V is a random walk at the quiet vol, observed every 100 ms with the stated noise. Once a
    second we quote at the filter's mean ± ``offset_std`` posterior standard deviations on a
    random side. An informed taker (probability ``informed_arrival``) trades only when V is
    beyond our price, an uninformed one always: then, given a fill, it is informed with
    probability π = q P(beyond) / (q P(beyond) + 1 − q) and V has exactly the filter's mixture
    posterior. The realised share of informed fills is the π to recover.
    """
    rng = np.random.default_rng(seed)
    filt = LatentStateFilter(config)
    log_value, ts = math.log(100.0), T0_NS
    informed_flags = []
    responsibilities = []
    for k in range(int(seconds * 10)):
        ts += 100_000_000
        log_value += SIGMA_PER_SQRT_S * math.sqrt(0.1) * rng.standard_normal()
        z = log_value + math.sqrt(NOISE_VAR) * rng.standard_normal()
        obs = (Observation(ts_local=ts, component=StateComponent.LOG_FAIR_VALUE, value=z, noise_var=NOISE_VAR, source="direct"),)
        belief = filt.step(ts, obs, ())
        responsibilities += filt.last_output.responsibilities
        if k % 10 != 5 or k < 50:
            continue
        side = Side.SELL if rng.random() < 0.5 else Side.BUY
        # our ask sits above the mean, our bid below
        log_price = math.log(belief.fair_value) - int(side) * offset_std * math.sqrt(belief.log_fair_value_var)
        informed = rng.random() < informed_arrival
        if informed and not (log_value > log_price if side is Side.SELL else log_value < log_price):
            continue
        informed_flags.append(informed)
        fill = Fill(ts_exch=ts, ts_local=ts, order_id=k, side=side, price=math.exp(log_price), size=1.0, fee_usd=0.0)
        filt.step(ts, (), (fill,))
    return filt, np.array(informed_flags), np.array(responsibilities)


def test_the_informed_fraction_is_recovered_from_our_fills():
    config = FilterConfig(informed_fraction_prior=0.1, informed_fraction_prior_fills=2.0)
    filt, informed, responsibilities = _simulate(0.6, 0.5, seconds=1200.0, seed=11, config=config)
    state = filt.state
    truth = informed[: state.fills_judged].mean()
    assert state.fills_judged > 500
    assert 0.25 < truth < 0.4  # q P(beyond) / (q P(beyond) + 1 − q) = 0.32 for q = 0.6 at +0.5 std
    assert state.informed_fraction_std < 0.08
    assert abs(state.informed_fraction_estimate - truth) < 2.5 * state.informed_fraction_std
    assert filt.belief().informed_fraction == state.informed_fraction_estimate
    # the judge tells informed fills from the others
    judged = informed[: responsibilities.size]
    assert responsibilities[judged].mean() > responsibilities[~judged].mean() + 0.05


def test_no_informed_fills_drive_the_estimate_below_the_prior():
    config = FilterConfig(informed_fraction_prior=0.1, informed_fraction_prior_fills=2.0)
    filt, informed, _ = _simulate(0.0, 0.5, seconds=1200.0, seed=12, config=config)
    assert not informed.any()
    assert filt.state.informed_fraction_estimate < 0.05


def test_the_evaluators_override_wins_while_the_estimate_keeps_learning():
    config = FilterConfig(informed_fraction_prior=0.1, informed_fraction_prior_fills=2.0)
    filt = LatentStateFilter(config)
    rng = np.random.default_rng(1)
    ts, log_value = T0_NS, math.log(100.0)
    estimates = []
    for k in range(400):
        ts += 100_000_000
        log_value += SIGMA_PER_SQRT_S * math.sqrt(0.1) * rng.standard_normal()
        obs = (Observation(ts_local=ts, component=StateComponent.LOG_FAIR_VALUE, value=log_value, noise_var=NOISE_VAR, source="direct"),)
        updates = ParameterUpdates(ts_local=ts, fills_marked=3, informed_fraction=0.45)
        fills = ()
        if k % 10 == 0:
            # every fill is at the mean and V moves away from it: a run of uninformed-looking fills
            fills = (Fill(ts_exch=ts, ts_local=ts, order_id=k, side=Side.SELL, price=math.exp(log_value + 5e-4), size=1.0, fee_usd=0.0),)
        belief = filt.step(ts, obs, fills, updates)
        assert belief.informed_fraction == 0.45
        estimates.append(filt.state.informed_fraction_estimate)
    assert filt.state.fills_judged > 20
    assert estimates[-1] != estimates[0]
