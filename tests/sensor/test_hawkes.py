"""Hawkes intensities: the exact likelihood, its derivatives, recovery of the synthetic market's
parameters, and the online filter against the batch intensities."""

import math

import numpy as np
import pytest

from mmlab.data.synth import SynthConfig, generate
from mmlab.sensor.hawkes import (
    PARAM_NAMES,
    HawkesIntensity,
    HawkesParams,
    compensator_increments,
    fit_hawkes,
    fit_hawkes_tape,
    hawkes_intensities,
    hawkes_loglik,
    simulate_hawkes,
)
from mmlab.sensor.flow import trade_events
from mmlab.testing import T0_NS as T0
from mmlab.testing import make_book, make_update
from mmlab.types import Side, Trade

S = 1_000_000_000
TRUTH = HawkesParams(baseline_per_s=(0.4, 0.4), branching=((0.35, 0.15), (0.15, 0.35)), decay_per_s=2.0)


def _brute_loglik(theta, t, sides, start, end):
    """ln L by the double sum of the definition, O(n²)."""
    mu, alpha, beta = theta[:2], np.reshape(theta[2:6], (2, 2)), theta[6]
    comp = (np.asarray(sides) < 0).astype(int)
    total = 0.0
    for k in range(t.size):
        lam = mu[comp[k]] + sum(alpha[comp[k], comp[l]] * beta * math.exp(-beta * (t[k] - t[l])) for l in range(k) if t[l] < t[k])
        total += math.log(lam)
    compensator = mu.sum() * (end - start) + sum(
        alpha[i, comp[l]] * (1.0 - math.exp(-beta * (end - t[l]))) for i in (0, 1) for l in range(t.size)
    )
    return total - compensator


def _trade(ts, side, price=100.0, size=1.0, ts_local=None):
    return Trade(ts_exch=ts, ts_local=ts if ts_local is None else ts_local, price=price, size=size, aggressor=Side(side))


@pytest.mark.parametrize("decay_per_s", [0.01, 2.0, 300.0])
def test_loglik_equals_the_double_sum_of_the_definition(decay_per_s):
    rng = np.random.default_rng(11)
    t, sides = simulate_hawkes(TRUTH, 150.0, rng)
    # ties: simultaneous events must not excite each other
    t[10] = t[9]
    params = HawkesParams(baseline_per_s=(0.3, 0.5), branching=((0.2, 0.1), (0.3, 0.25)), decay_per_s=decay_per_s)
    exact = _brute_loglik(params.to_vector(), t, sides, -1.0, t[-1] + 2.0)
    assert hawkes_loglik(params, t, sides, start_s=-1.0, end_s=t[-1] + 2.0) == pytest.approx(exact, rel=1e-12, abs=1e-9)


def test_analytic_gradient_and_hessian_match_finite_differences():
    rng = np.random.default_rng(5)
    t, sides = simulate_hawkes(TRUTH, 2000.0, rng)
    theta = np.array([0.35, 0.45, 0.3, 0.2, 0.1, 0.4, 1.7])
    _, grad, hess = hawkes_loglik(theta, t, sides, derivatives=2)
    step = 1e-6 * np.maximum(np.abs(theta), 1.0)
    unit = np.eye(7) * step
    grad_fd = np.array([(hawkes_loglik(theta + unit[i], t, sides) - hawkes_loglik(theta - unit[i], t, sides)) / (2 * step[i]) for i in range(7)])
    hess_fd = np.array(
        [(hawkes_loglik(theta + unit[i], t, sides, derivatives=1)[1] - hawkes_loglik(theta - unit[i], t, sides, derivatives=1)[1]) / (2 * step[i]) for i in range(7)]
    )
    np.testing.assert_allclose(grad, grad_fd, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(hess, hess_fd, rtol=1e-5, atol=1e-2)


def test_compensator_increments_are_exp1_for_the_true_parameters():
    rng = np.random.default_rng(8)
    t, sides = simulate_hawkes(TRUTH, 3000.0, rng)
    buy, sell = compensator_increments(TRUTH, t, sides, start_s=0.0)
    increments = np.concatenate((buy, sell))
    assert buy.size == np.sum(sides > 0) and sell.size == np.sum(sides < 0)
    # mean 1 and variance 1 within 4 standard errors (Exp(1): Var = 1, fourth central moment 9)
    n = increments.size
    assert abs(increments.mean() - 1.0) < 4.0 / math.sqrt(n)
    assert abs(increments.var() - 1.0) < 4.0 * math.sqrt(8.0 / n)


@pytest.fixture(scope="module")
def uninformed_market():
    """One hour of the synthetic market with no informed traders: its sides are then exactly the
    Hawkes components, so the fitted process is the generating one."""
    return generate(SynthConfig(seed=21, minutes=60.0, informed_fraction=0.0))


def test_fit_recovers_the_synthetic_markets_hawkes_parameters(uninformed_market):
    config = uninformed_market.config
    fit = fit_hawkes_tape(uninformed_market.tape)
    truth = HawkesParams(
        baseline_per_s=config.hawkes_baseline_per_s, branching=config.hawkes_branching, decay_per_s=config.hawkes_decay_per_s
    ).to_dict()
    estimate = fit.params.to_dict()
    z = {name: (estimate[name] - truth[name]) / fit.std_err[name] for name in PARAM_NAMES}
    # seed 21: every |z| < 1.5 (the figures are in the report); 3 leaves room for numerics only
    assert all(abs(v) < 3.0 for v in z.values()), z
    assert fit.converged and fit.spectral_radius < 1.0
    assert fit.ks_pvalue > 0.05
    assert "decay_per_s" in fit.summary() and fit._repr_html_().startswith("<pre>")
    low, high = fit.conf_int(0.95)["decay_per_s"]
    assert low < estimate["decay_per_s"] < high


def test_fit_from_event_times_equals_fit_from_the_tape(uninformed_market):
    events = trade_events(uninformed_market.tape)
    t = events.times_s()
    by_tape = fit_hawkes_tape(events)
    by_times = fit_hawkes(t[events.side > 0], t[events.side < 0], start_s=0.0, end_s=float(t[-1]))
    np.testing.assert_allclose(by_tape.params.to_vector(), by_times.params.to_vector(), rtol=1e-6)


def test_the_time_rescaling_test_rejects_a_poisson_fit_to_clustered_data():
    rng = np.random.default_rng(2)
    t, sides = simulate_hawkes(TRUTH, 3000.0, rng)
    poisson = HawkesParams(
        baseline_per_s=(np.sum(sides > 0) / 3000.0, np.sum(sides < 0) / 3000.0), branching=((0.0, 0.0), (0.0, 0.0)), decay_per_s=1.0
    )
    from scipy import stats

    buy, sell = compensator_increments(poisson, t, sides, start_s=0.0)
    assert stats.kstest(np.concatenate((buy, sell)), "expon").pvalue < 1e-6


def test_online_intensity_exact_values_on_hand_made_trades():
    params = HawkesParams(baseline_per_s=(0.5, 0.25), branching=((0.4, 0.1), (0.2, 0.3)), decay_per_s=2.0)
    feature = HawkesIntensity(params)
    assert math.isnan(feature.value)
    book = make_book(bid=99.99, ask=100.01)
    feature.update(make_update(book, ts=T0))
    assert (feature.buy_intensity_per_s, feature.sell_intensity_per_s) == (0.5, 0.25)
    # a buy that walks two levels: one event, λ_i += α_{i,buy} β
    feature.update(make_update(book, ts=T0, trades=[_trade(T0, +1), _trade(T0, +1, price=100.02)]))
    assert feature.buy_intensity_per_s == pytest.approx(0.5 + 0.4 * 2.0)
    assert feature.sell_intensity_per_s == pytest.approx(0.25 + 0.2 * 2.0)
    # half a second later on the local clock: the excitation decays by e^{-1}
    feature.update(make_update(book, ts=T0 + S // 2))
    buy, sell = 0.5 + 0.8 * math.exp(-1.0), 0.25 + 0.4 * math.exp(-1.0)
    assert feature.buy_intensity_per_s == pytest.approx(buy)
    assert feature.value == pytest.approx((buy - sell) / (buy + sell))
    assert feature.events == 1
    # a sell at T0 + 0.5 s: both excitations first decay, then jump by α_{i,sell} β
    feature.update(make_update(book, ts=T0 + S // 2, trades=[_trade(T0 + S // 2, -1)]))
    assert feature.buy_intensity_per_s == pytest.approx(0.5 + 0.8 * math.exp(-1.0) + 0.1 * 2.0)
    assert feature.sell_intensity_per_s == pytest.approx(0.25 + 0.4 * math.exp(-1.0) + 0.3 * 2.0)
    assert HawkesIntensity(params, signal="buy").name == "hawkes_buy_per_s"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_online_intensity_ignores_and_counts_bad_prints_and_books(bad):
    feature = HawkesIntensity(TRUTH)
    feature.update(make_update(make_book(bid=bad, ask=100.0), ts=T0, trades=[_trade(T0, +1, price=bad), _trade(T0, -1, size=bad)]))
    assert feature.dropped == 2 and feature.events == 0
    assert feature.buy_intensity_per_s == 0.4 and feature.value == 0.0


def test_online_intensities_equal_the_batch_intensities_at_every_event(uninformed_market):
    params = HawkesParams(baseline_per_s=(0.4, 0.4), branching=((0.35, 0.15), (0.15, 0.35)), decay_per_s=2.0)
    tape = uninformed_market.tape
    events = trade_events(tape)
    count = 2000
    feature = HawkesIntensity(params)
    online = []
    for k in range(count):
        ts_exch, ts_local = int(events.ts_exch[k]), int(events.ts_local[k])
        feature.update(make_update(None, ts=ts_local, trades=[_trade(ts_exch, int(events.side[k]), ts_local=ts_local)]))
        online.append((feature.buy_intensity_per_s, feature.sell_intensity_per_s))
    batch = hawkes_intensities(params, events.times_s()[:count], events.side[:count], after=True)
    np.testing.assert_allclose(np.array(online), batch, rtol=1e-9)


def test_bad_inputs_raise_naming_the_field():
    with pytest.raises(ValueError, match="decay_per_s"):
        HawkesParams(baseline_per_s=(0.1, 0.1), branching=((0.1, 0.1), (0.1, 0.1)), decay_per_s=0.0)
    with pytest.raises(ValueError, match=r"branching\[1\]\[0\]"):
        HawkesParams(baseline_per_s=(0.1, 0.1), branching=((0.1, 0.1), (float("nan"), 0.1)), decay_per_s=1.0)
    with pytest.raises(ValueError, match="times_buy_s"):
        fit_hawkes(np.array([0.0, float("nan")] + list(range(20))), np.arange(20.0))
    with pytest.raises(ValueError, match="sorted"):
        hawkes_loglik(TRUTH, np.array([0.0, 2.0, 1.0]), np.array([1, 1, -1]))
