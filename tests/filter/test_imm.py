"""The IMM filter: its regime chain, its mixing, the pure step against the class, fills, bad input."""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.linalg import expm
from scipy.stats import truncnorm

from mmlab.config import ConfigError, FilterConfig
from mmlab.filter import FilterError, ImmParams, LatentStateFilter, changepoint_reset, step
from mmlab.filter.imm import REGIME_COUNT, regime_generator
from mmlab.filter.ukf import ProcessParams, ukf_predict, ukf_update
from mmlab.testing import T0_NS
from mmlab.types import Fill, Observation, ParameterUpdates, Regime, Side, StateComponent

PARAMS = ImmParams.from_config(FilterConfig())


def _observation(ts: int, value: float, component=StateComponent.LOG_FAIR_VALUE, noise_var=1e-9, source="test"):
    return Observation(ts_local=ts, component=component, value=value, noise_var=noise_var, source=source)


def _fill(ts: int, side: Side, price: float, order_id: int = 1) -> Fill:
    return Fill(ts_exch=ts, ts_local=ts, order_id=order_id, side=side, price=price, size=1.0, fee_usd=0.0)


# -- the regime chain --------------------------------------------------------------------------


@given(dt_s=st.floats(1e-4, 5_000.0))
def test_transition_probs_are_the_matrix_exponential_of_the_generator(dt_s):
    want = expm(PARAMS.generator_per_s * dt_s)
    got = PARAMS.transition_probs(dt_s)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=0, atol=1e-14)


def test_transition_probs_compose_and_keep_the_stationary_law():
    np.testing.assert_allclose(PARAMS.transition_probs(0.3) @ PARAMS.transition_probs(0.7), PARAMS.transition_probs(1.0), atol=1e-14)
    stationary = PARAMS.stationary_probs
    np.testing.assert_allclose(stationary @ PARAMS.transition_probs(0.1), stationary, atol=1e-15)
    # the synthetic market's chain (durations 600 / 180 / 60 s) spends 76 / 20 / 4 % in each regime
    np.testing.assert_allclose(stationary, [0.7603, 0.2033, 0.0364], atol=1e-4)
    # a stay in r lasts T_r on average: the generator's diagonal is −1 / T_r
    np.testing.assert_allclose(-1.0 / np.diag(PARAMS.generator_per_s), FilterConfig().regime_mean_duration_s)


def test_bad_regime_chains_are_refused():
    with pytest.raises(ValueError, match="zero diagonal"):
        regime_generator((1.0, 1.0, 1.0), ((0.5, 0.5, 0.0), (0.5, 0.0, 0.5), (0.5, 0.5, 0.0)))
    with pytest.raises(ValueError, match="durations"):
        regime_generator((1.0, 0.0, 1.0), ((0.0, 0.5, 0.5),) * 3)
    with pytest.raises(ConfigError, match=r"FilterConfig.regime_transition\[1\]\[1\]"):
        FilterConfig(regime_transition=((0.0, 0.5, 0.5), (0.5, 0.5, 0.0), (0.5, 0.5, 0.0)))
    with pytest.raises(ConfigError, match=r"FilterConfig.regime_transition\[2\] must sum to 1"):
        FilterConfig(regime_transition=((0.0, 0.5, 0.5), (0.5, 0.0, 0.5), (0.5, 0.4, 0.0)))
    with pytest.raises(ConfigError, match=r"FilterConfig.regime_vol_multiplier\[2\]"):
        FilterConfig(regime_vol_multiplier=(1.0, 1.5, -4.0))
    with pytest.raises(ConfigError, match="FilterConfig.informed_fraction_horizon_s"):
        FilterConfig(informed_fraction_horizon_s=0.0)


def test_config_round_trips_and_an_old_file_without_regimes_still_loads():
    config = FilterConfig(regime_vol_multiplier=(1.0, 2.0, 5.0))
    assert FilterConfig.from_dict(config.to_dict()) == config
    old = {"drift_reversion_s": 60.0, "drift_std_per_s": 2e-5, "vol_prior_bps_per_sqrt_s": 1.0, "log_vol_reversion_s": 300.0,
           "log_vol_std": 0.5, "initial_fair_value_std_bps": 10.0, "informed_fraction_prior": 0.1}  # fmt: skip
    assert FilterConfig.from_dict(old).regime_mean_duration_s == (600.0, 180.0, 60.0)


# -- mixing and combination ----------------------------------------------------------------------


def test_three_identical_modes_are_one_ukf():
    """With the same process model in every mode, mixing and combination must change nothing."""
    one = ProcessParams(drift_reversion_s=60.0, drift_std_per_s=2e-5, log_vol_mean=math.log(1.2e-4), log_vol_reversion_s=30.0, log_vol_std=0.2)
    params = dataclasses.replace(
        PARAMS,
        process=ProcessParams(
            **{name: np.full(REGIME_COUNT, float(getattr(one, name))) for name in ProcessParams.__dataclass_fields__}
        ),
    )
    rng = np.random.default_rng(3)
    ts, state = T0_NS, None
    x = P = None
    for k in range(50):
        ts += 100_000_000 + int(rng.integers(0, 50_000_000))
        batch = (
            _observation(ts, math.log(100.0) + 1e-4 * rng.normal(), noise_var=(0.5e-4) ** 2),
            _observation(ts, 1e-5 * rng.normal(), component=StateComponent.DRIFT, noise_var=(4e-5) ** 2),
        )
        if k % 10 == 9:
            batch += (_observation(ts, math.log(1e-4) + 0.2 * rng.normal(), component=StateComponent.LOG_VOL, noise_var=0.05),)
        previous_ts = state.ts_local if state is not None else None
        state, output = step(state, ts, batch, (), params)
        z = np.array([o.value for o in batch])
        R = np.array([o.noise_var for o in batch])
        components = np.array([int(o.component) for o in batch])
        if x is None:
            # the IMM's start: ln V at the first observation, μ = 0, ln σ at its level
            x = np.array([batch[0].value, 0.0, float(params.process.log_vol_mean[0])])
            P = np.diag([params.initial_fair_value_var, float(one.drift_std_per_s) ** 2, float(one.log_vol_std) ** 2])
        else:
            x, P = ukf_predict(x, P, (ts - previous_ts) / 1e9, one)
        single = ukf_update(x, P, z, R, components)
        x, P = single.x, single.P
        np.testing.assert_allclose(output.belief.log_fair_value_var, P[0, 0], rtol=1e-9)
        assert math.log(output.belief.fair_value) == pytest.approx(x[0], abs=1e-13)
        assert output.belief.drift_per_s == pytest.approx(x[1], abs=1e-9 * math.sqrt(P[1, 1]))
        # 1e-12: the sigma-point mean of ln V ≈ 4.6 carries W0 = −99 times it
        assert np.all(np.abs(output.innovation - single.innovation) <= 1e-9 * np.sqrt(np.diag(single.innovation_cov)) + 1e-12)
        # equal likelihoods: the regime probabilities stay at the chain's stationary law
        np.testing.assert_allclose(output.belief.regime_probs, PARAMS.stationary_probs, atol=1e-12)


def test_regime_probabilities_sum_to_one_and_follow_the_evidence():
    """A burst of large moves makes CRISIS (4 bps/√s) the most probable regime."""
    rng = np.random.default_rng(0)
    filt = LatentStateFilter()
    ts, log_value = T0_NS, math.log(100.0)
    for k in range(1200):
        ts += 100_000_000
        sigma = 1e-4 if k < 600 else 4e-4
        log_value += sigma * math.sqrt(0.1) * rng.normal()
        belief = filt.step(ts, (_observation(ts, log_value + 0.3e-4 * rng.normal(), noise_var=(0.3e-4) ** 2),), ())
        assert sum(belief.regime_probs) == pytest.approx(1.0, abs=1e-12)
        if k == 599:
            assert int(np.argmax(belief.regime_probs)) == Regime.QUIET
    assert int(np.argmax(belief.regime_probs)) == Regime.CRISIS


# -- pure step and class -------------------------------------------------------------------------


def test_the_pure_step_and_the_class_agree_exactly(short_sensor_stream):
    stream = short_sensor_stream
    filt = LatentStateFilter()
    state = None
    for index, (ts, batch) in enumerate(zip(stream.ts, stream.observations)):
        fills = ()
        if index in (300, 301, 700):
            price = filt.belief().fair_value * (1 + 1e-4 * (1 if index != 301 else -1))
            fills = (_fill(ts, Side.SELL if index != 301 else Side.BUY, price, order_id=index),)
        updates = ParameterUpdates(ts_local=ts, fills_marked=1, informed_fraction=0.3) if index == 900 else None
        belief = filt.step(ts, batch, fills, updates)
        state, output = step(state, ts, batch, fills, PARAMS, updates)
        if state is None:
            assert belief is None
            continue
        assert belief == output.belief
        for name in ("mode_means", "mode_covs", "mode_probs", "informed_log_posterior"):
            np.testing.assert_array_equal(getattr(filt.state, name), getattr(state, name))
        assert filt.state.pending_fills == state.pending_fills
    assert belief.informed_fraction == 0.3
    assert state.fills_judged == 3


# -- the Glosten–Milgrom update ------------------------------------------------------------------


def _truncated_posterior_mean(mean: float, var: float, log_price: float, side: Side, informed_fraction: float) -> float:
    """(1 − π) m + π E[x | x beyond c] for x ~ N(m, s²): the mean of the GM mixture posterior."""
    std = math.sqrt(var)
    c = (log_price - mean) / std
    beyond = truncnorm(c, np.inf, loc=mean, scale=std) if side is Side.SELL else truncnorm(-np.inf, c, loc=mean, scale=std)
    return (1.0 - informed_fraction) * mean + informed_fraction * float(beyond.mean())


@pytest.mark.parametrize(("side", "offset_bps"), [(Side.SELL, 0.5), (Side.BUY, -0.5), (Side.SELL, 1.5), (Side.BUY, 0.0)])
def test_a_fill_moves_fair_value_by_the_truncated_posterior_through_the_imm(short_sensor_stream, side, offset_bps):
    stream = short_sensor_stream
    filt = LatentStateFilter()
    for ts, batch in zip(stream.ts[:600], stream.observations[:600]):
        before = filt.step(ts, batch, ())
    state = filt.state
    log_price = math.log(before.fair_value) + offset_bps * 1e-4
    pi = state.informed_fraction
    after = filt.step(ts, (), (_fill(ts, side, math.exp(log_price)),))
    # the combined mean is Σ_j μ_j m_j', each mode moved to its own mixture-posterior mean
    want = sum(
        state.mode_probs[j] * _truncated_posterior_mean(state.mode_means[j, 0], state.mode_covs[j, 0, 0], log_price, side, pi)
        for j in range(REGIME_COUNT)
    )
    shift = math.log(after.fair_value) - math.log(before.fair_value)
    assert math.log(after.fair_value) == pytest.approx(want, abs=1e-6 * abs(shift))
    # an informed buyer lifted our ask: V is more likely above; a hit bid says below
    assert shift * (1 if side is Side.SELL else -1) > 0
    # the fill's likelihood is 1 in every mode: the regime probabilities do not move
    assert after.regime_probs == before.regime_probs


def test_the_informed_fraction_override_is_used_by_the_fill_update():
    base = LatentStateFilter()
    ts = T0_NS
    base.step(ts, (_observation(ts, math.log(100.0)),), ())
    overridden = LatentStateFilter()
    overridden.step(ts, (_observation(ts, math.log(100.0)),), (), ParameterUpdates(ts_local=ts, fills_marked=5, informed_fraction=0.5))
    fill = (_fill(ts, Side.SELL, 100.001),)
    small = math.log(base.step(ts, (), fill).fair_value / 100.0)
    large = math.log(overridden.step(ts, (), fill).fair_value / 100.0)
    assert overridden.informed_fraction == 0.5
    assert large > small > 0.0


# -- bad input never reaches the state -----------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_observations_cannot_be_made(value):
    with pytest.raises(ValueError, match="Observation.value must be finite"):
        _observation(T0_NS, value)
    with pytest.raises(ValueError, match="Observation.noise_var must be finite"):
        _observation(T0_NS, 1.0, noise_var=value)


def test_an_update_with_a_non_finite_result_raises_and_leaves_the_state():
    filt = LatentStateFilter()
    filt.step(T0_NS, (_observation(T0_NS, math.log(100.0)),), ())
    before = filt.state
    ts = T0_NS + 100_000_000
    # finite, but V = e^(1e6): no float can hold the result
    with pytest.raises(FilterError, match="no finite exponential"):
        filt.step(ts, (_observation(ts, 1e6, noise_var=1e-12),), ())
    # finite, but the innovation's square overflows: the mode likelihoods are NaN
    with pytest.raises(FilterError, match="non-finite"):
        filt.step(ts, (_observation(ts, 1e200, noise_var=1e-12),), ())
    assert filt.state is before
    assert filt.step(ts, (_observation(ts, math.log(100.0)),), ()) is not None


def test_time_going_backwards_bad_fills_and_bad_overrides_are_refused():
    filt = LatentStateFilter()
    filt.step(T0_NS, (_observation(T0_NS, math.log(100.0)),), ())
    with pytest.raises(FilterError, match="time went backwards"):
        filt.step(T0_NS - 1, (), ())
    with pytest.raises(FilterError, match="Fill.price"):
        filt.step(T0_NS, (), (_fill(T0_NS, Side.SELL, 0.0),))
    with pytest.raises(FilterError, match="ParameterUpdates.informed_fraction"):
        filt.step(T0_NS, (), (), ParameterUpdates(ts_local=T0_NS, fills_marked=1, informed_fraction=1.0))
    assert filt.step(T0_NS + 1, (), ()).informed_fraction == pytest.approx(FilterConfig().informed_fraction_prior, abs=1e-3)


def test_no_belief_before_a_fair_value_observation():
    filt = LatentStateFilter()
    assert filt.step(T0_NS, (_observation(T0_NS, 0.0, component=StateComponent.DRIFT),), ()) is None
    assert filt.step(T0_NS, (), (_fill(T0_NS, Side.SELL, 100.0),)) is None
    assert not filt.initialised


# -- change points from the evaluator ------------------------------------------------------------


def _settled_filter(seconds: float = 120.0, sigma: float = 4e-4) -> tuple[LatentStateFilter, int]:
    """A filter that has watched a crisis-like market for ``seconds``: far from the stationary mix."""
    rng = np.random.default_rng(3)
    filt = LatentStateFilter()
    ts, log_value = T0_NS, math.log(100.0)
    for _ in range(int(seconds * 10)):
        ts += 100_000_000
        log_value += sigma * math.sqrt(0.1) * rng.normal()
        filt.step(ts, (_observation(ts, log_value + 0.3e-4 * rng.normal(), noise_var=(0.3e-4) ** 2),), ())
    return filt, ts


def _changepoint(ts: int, prob: float) -> ParameterUpdates:
    return ParameterUpdates(ts_local=ts, fills_marked=0, changepoint_prob=prob)


def test_no_updates_or_a_zero_changepoint_probability_changes_nothing():
    filt, ts = _settled_filter(30.0)
    state = filt.state
    ts += 100_000_000
    batch = (_observation(ts, float(state.mode_means[0, 0])),)
    without, _ = step(state, ts, batch, (), PARAMS, None)
    zero, _ = step(state, ts, batch, (), PARAMS, _changepoint(ts, 0.0))
    for name in ("mode_means", "mode_covs", "mode_probs"):
        np.testing.assert_array_equal(getattr(without, name), getattr(zero, name))


def test_a_certain_change_point_resets_the_regimes_to_the_stationary_mix():
    filt, ts = _settled_filter()
    state = filt.state
    assert int(np.argmax(state.mode_probs)) == Regime.CRISIS
    means, covs, probs = changepoint_reset(state.mode_means, state.mode_covs, state.mode_probs, 1.0, PARAMS)
    np.testing.assert_allclose(probs, PARAMS.stationary_probs, atol=1e-15)
    # ln σ in mode j: its stationary law N(m_j, s_σ²), independent of ln V and μ
    np.testing.assert_allclose(means[:, 2], PARAMS.process.log_vol_mean, atol=1e-15)
    np.testing.assert_allclose(covs[:, 2, 2], np.broadcast_to(PARAMS.process.log_vol_std**2, (3,)), rtol=1e-12)
    np.testing.assert_array_equal(covs[:, 2, :2], 0.0)
    # ln V and μ keep their moments
    np.testing.assert_array_equal(means[:, :2], state.mode_means[:, :2])
    np.testing.assert_array_equal(covs[:, :2, :2], state.mode_covs[:, :2, :2])
    # through the step (no observation, no elapsed time): the belief is the stationary mix
    new_state, output = step(state, state.ts_local, (), (), PARAMS, _changepoint(state.ts_local, 1.0))
    np.testing.assert_allclose(output.belief.regime_probs, PARAMS.stationary_probs, atol=1e-15)
    assert new_state.changepoint_prob == 1.0


@given(weight=st.floats(0.0, 1.0))
def test_a_partial_change_point_is_the_moment_matched_mixture(weight):
    """w of a fresh regime: probabilities, ln σ mean and variance are those of the two-part mixture."""
    filt, _ = _SETTLED
    state = filt.state
    means, covs, probs = changepoint_reset(state.mode_means, state.mode_covs, state.mode_probs, weight, PARAMS)
    np.testing.assert_allclose(probs, (1 - weight) * state.mode_probs + weight * PARAMS.stationary_probs, atol=1e-15)
    assert probs.sum() == pytest.approx(1.0, abs=1e-14)
    # Monte Carlo-free check of the mixture's moments per mode: E and Var of ln σ under
    # (1 − w) N(x, P) + w N(m, s²)
    x, p = state.mode_means[:, 2], state.mode_covs[:, 2, 2]
    m, s2 = PARAMS.process.log_vol_mean, PARAMS.process.log_vol_std**2
    mean = (1 - weight) * x + weight * m
    second = (1 - weight) * (p + x**2) + weight * (s2 + m**2)
    np.testing.assert_allclose(means[:, 2], mean, rtol=0, atol=1e-12)
    np.testing.assert_allclose(covs[:, 2, 2], second - mean**2, rtol=1e-9, atol=1e-15)
    # the result is a covariance: positive definite in every mode
    assert np.all(np.linalg.eigvalsh(covs) > 0.0)
    # the ln σ variance grows by w (1 − w)(x − m)² beyond the weighted mean of the two variances
    assert np.all(covs[:, 2, 2] >= (1 - weight) * p + weight * s2 - 1e-15)


_SETTLED = _settled_filter(60.0)


def test_a_change_point_reported_on_consecutive_cycles_is_applied_once():
    filt, ts = _settled_filter()
    state = filt.state
    first, _ = step(state, ts, (), (), PARAMS, _changepoint(ts, 0.6))
    np.testing.assert_allclose(first.mode_probs, 0.4 * state.mode_probs + 0.6 * PARAMS.stationary_probs, atol=1e-15)
    # the same report again: nothing new; a report of 0.8: only (0.8 − 0.6) / (1 − 0.6) = 0.5 more
    again, _ = step(first, ts, (), (), PARAMS, _changepoint(ts, 0.6))
    np.testing.assert_array_equal(again.mode_probs, first.mode_probs)
    more, _ = step(first, ts, (), (), PARAMS, _changepoint(ts, 0.8))
    np.testing.assert_allclose(more.mode_probs, 0.5 * first.mode_probs + 0.5 * PARAMS.stationary_probs, atol=1e-15)
    # the class holds the last report between cycles as the pure step does
    filt.step(ts, (), (), _changepoint(ts, 0.6))
    np.testing.assert_array_equal(filt.state.mode_probs, first.mode_probs)
    filt.step(ts, (), (), None)
    np.testing.assert_array_equal(filt.state.mode_probs, first.mode_probs)


def test_a_changepoint_probability_outside_0_1_is_refused():
    filt, ts = _settled_filter(5.0)
    before = filt.state
    for bad in (-0.1, 1.5, math.nan):
        with pytest.raises(FilterError, match="ParameterUpdates.changepoint_prob"):
            filt.step(ts, (), (), _changepoint(ts, bad))
    assert filt.state is before


def test_the_mid_layer_noise_grows_with_each_modes_volatility():
    """R_mid,j = R₀ + c σ_j²: the innovation variance of the mid in mode j is P_j + R₀ + c σ_j²,
    the other layers keep the noise they were sent, and R₀ = 0 leaves the mid's as sent."""
    from mmlab.filter.imm import _update

    r0, c = 1e-10, 0.5
    params = ImmParams.from_config(FilterConfig(mid_noise_intercept=r0, mid_noise_vol_slope_s=c))
    filt = LatentStateFilter()
    filt.step(T0_NS, [_observation(T0_NS, math.log(100.0), noise_var=1e-8, source="mid")], ())
    state = filt.state
    observations = [
        _observation(T0_NS, math.log(100.0) + 1e-4, noise_var=1e-8, source="mid"),
        _observation(T0_NS, math.log(100.0), noise_var=1e-8, source="micro_l1"),
    ]
    means, covs = state.mode_means, state.mode_covs
    *_, innovation_var, _ = _update(means, covs, state.mode_probs, observations, params)
    from mmlab.filter.ukf import ukf_update

    sigma2 = np.exp(2.0 * means[:, 2])
    per_mode = np.column_stack((r0 + c * sigma2, np.full(3, 1e-8)))
    expected = ukf_update(means, covs, np.array([o.value for o in observations]), per_mode, np.zeros(2, dtype=np.intp), diagonal=True)
    S = np.diagonal(expected.innovation_cov, axis1=-2, axis2=-1)
    assert np.allclose(S[:, 0] - covs[:, 0, 0], r0 + c * sigma2, rtol=1e-6)
    assert np.allclose(S[:, 1] - covs[:, 0, 0], 1e-8, rtol=1e-6)
    # the crisis mode (largest σ) expects the noisiest mid
    assert np.argmax(S[:, 0]) == 2
    plain = _update(means, covs, state.mode_probs, observations, ImmParams.from_config(FilterConfig()))
    weighted = _update(means, covs, state.mode_probs, observations, params)
    # the mid's predicted innovation variance changes, the other layer's does not
    assert not np.isclose(plain[5][0], weighted[5][0], rtol=1e-3, atol=0.0)
    assert np.isclose(plain[5][1], weighted[5][1], rtol=1e-9, atol=0.0)
    assert innovation_var.shape == (2,)
