"""The pure-numpy UKF against filterpy's UnscentedKalmanFilter, and the laws of its process model."""

import math

import numpy as np
import pytest
from filterpy.kalman import MerweScaledSigmaPoints, UnscentedKalmanFilter
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import multivariate_normal

from mmlab.filter.ukf import (
    DEFAULT_WEIGHTS,
    FilterError,
    ProcessParams,
    merwe_weights,
    process_noise,
    sigma_points,
    transition,
    ukf_predict,
    ukf_update,
)

# state scales: ln V (1 bps = 1e-4), μ (per s), ln σ
SCALES = np.array([1e-4, 2e-5, 0.3])


def _params(seed: int) -> ProcessParams:
    rng = np.random.default_rng(seed)
    return ProcessParams(
        drift_reversion_s=rng.uniform(5.0, 300.0),
        drift_std_per_s=rng.uniform(1e-6, 5e-5),
        log_vol_mean=math.log(rng.uniform(0.3e-4, 5e-4)),
        log_vol_reversion_s=rng.uniform(1.0, 600.0),
        log_vol_std=rng.uniform(0.05, 1.0),
    )


def _state(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A realistic mean and a random positive-definite covariance."""
    rng = np.random.default_rng(seed)
    x = np.array([math.log(rng.uniform(0.5, 1e5)), rng.normal() * 2e-5, math.log(1e-4) + rng.normal() * 0.5])
    factor = rng.normal(size=(3, 3)) * SCALES[:, None] * rng.uniform(0.1, 10.0, size=3)[:, None]
    return x, factor @ factor.T + np.diag(SCALES**2 * 1e-3)


def _assert_means_agree(got: np.ndarray, want: np.ndarray, cov: np.ndarray) -> None:
    """Within 1e-8 standard deviations plus 1e-11 of the magnitude: the sigma-point mean sums
    W0 = −99 times x, so its rounding grows with |x| (ln V ≈ 11 for BTC)."""
    tolerance = 1e-8 * np.sqrt(np.diag(cov)) + 1e-11 * np.abs(want)
    assert np.all(np.abs(got - want) <= tolerance), (got - want, tolerance)


def _reference_log_likelihood(y: np.ndarray, S: np.ndarray) -> float:
    # scipy treats S as singular when its diagonal spans 1e-10 .. 1e-1: standardise it first
    scale = np.sqrt(np.diag(S))
    correlation = S / np.outer(scale, scale)
    return float(multivariate_normal(cov=correlation).logpdf(y / scale) - np.log(scale).sum())


def test_weights_and_sigma_points_are_filterpys():
    points = MerweScaledSigmaPoints(n=3, alpha=0.1, beta=2.0, kappa=0.0)
    np.testing.assert_array_equal(DEFAULT_WEIGHTS.mean_weights, points.Wm)
    np.testing.assert_array_equal(DEFAULT_WEIGHTS.cov_weights, points.Wc)
    x, P = _state(3)
    np.testing.assert_allclose(sigma_points(x, P), points.sigma_points(x, P), rtol=0, atol=1e-15 * abs(x).max())


@settings(max_examples=60)
@given(
    seed=st.integers(0, 2**32 - 1),
    dt_s=st.floats(1e-3, 30.0),
    components=st.lists(st.integers(0, 2), min_size=1, max_size=10),
)
def test_predict_and_update_agree_with_filterpy(seed, dt_s, components):
    params = _params(seed)
    x, P = _state(seed + 1)
    rng = np.random.default_rng(seed + 2)
    components = np.array(components)
    R = SCALES[components] ** 2 * rng.uniform(0.1, 10.0, size=components.size)

    ukf = UnscentedKalmanFilter(
        dim_x=3,
        dim_z=1,
        dt=dt_s,
        hx=None,
        fx=lambda s, dt: transition(s[None, :], dt, params)[0],
        points=MerweScaledSigmaPoints(n=3, alpha=0.1, beta=2.0, kappa=0.0),
    )
    ukf.x, ukf.P, ukf.Q = x.copy(), P.copy(), process_noise(x, dt_s, params)
    ukf.predict(dt=dt_s)
    x_prior, P_prior = ukf_predict(x, P, dt_s, params)
    scale = np.sqrt(np.diag(ukf.P))
    _assert_means_agree(x_prior, ukf.x, ukf.P)
    np.testing.assert_allclose(P_prior / np.outer(scale, scale), ukf.P / np.outer(scale, scale), rtol=0, atol=1e-10)

    z = ukf.x[components] + rng.normal(size=components.size) * np.sqrt(R)
    ukf.update(z, R=np.diag(R), hx=lambda s, components: s[components], components=components)
    result = ukf_update(x_prior, P_prior, z, R, components)
    # P⁺ = P⁻ − K S K^T cancels when the data are far more precise than the prior: compare on
    # the prior's scale, from which both were computed
    scale = np.sqrt(np.diag(P_prior))
    _assert_means_agree(result.x, ukf.x, P_prior)
    np.testing.assert_allclose(result.P / np.outer(scale, scale), ukf.P / np.outer(scale, scale), rtol=0, atol=1e-10)
    s_scale = np.sqrt(np.diag(ukf.S))
    np.testing.assert_allclose(result.innovation_cov / np.outer(s_scale, s_scale), ukf.S / np.outer(s_scale, s_scale), rtol=0, atol=1e-10)
    _assert_means_agree(result.innovation, ukf.y, ukf.S)
    # the log-density of y under S: equal up to the rounding of y (1e-12 of ln V over std(y))
    tolerance = 1e-7 * max(1.0, float(np.abs(ukf.y / s_scale).max()) * abs(x).max())
    assert float(result.log_likelihood) == pytest.approx(_reference_log_likelihood(ukf.y, ukf.S), abs=tolerance)


def test_full_noise_covariance_equals_diagonal_variances():
    x, P = _state(11)
    components = np.array([0, 0, 1, 2])
    R = SCALES[components] ** 2
    z = x[components] + 0.5 * SCALES[components]
    by_vector = ukf_update(x, P, z, R, components)
    by_matrix = ukf_update(x, P, z, np.diag(R), components)
    np.testing.assert_allclose(by_vector.x, by_matrix.x, rtol=0, atol=1e-15 * abs(x).max())
    np.testing.assert_allclose(by_vector.P, by_matrix.P, rtol=1e-13, atol=0)


def test_a_batch_equals_its_filters_one_by_one():
    states = [_state(seed) for seed in (1, 2, 3)]
    per_filter = [_params(seed) for seed in (4, 5, 6)]
    batch = ProcessParams(
        **{name: np.array([getattr(p, name) for p in per_filter]) for name in ProcessParams.__dataclass_fields__}
    )
    x = np.stack([s[0] for s in states])
    P = np.stack([s[1] for s in states])
    x_prior, P_prior = ukf_predict(x, P, 0.1, batch)
    components = np.array([0, 0, 1, 2, 0])
    R = SCALES[components] ** 2
    z = x_prior[0, components] + SCALES[components]
    result = ukf_update(x_prior, P_prior, z, R, components)
    for j in range(3):
        xj, Pj = ukf_predict(x[j], P[j], 0.1, per_filter[j])
        np.testing.assert_allclose(x_prior[j], xj, rtol=0, atol=1e-15 * abs(xj).max())
        np.testing.assert_allclose(P_prior[j], Pj, rtol=1e-13, atol=0)
        single = ukf_update(xj, Pj, z, R, components)
        np.testing.assert_allclose(result.x[j], single.x, rtol=0, atol=1e-15 * abs(xj).max())
        np.testing.assert_allclose(result.P[j], single.P, rtol=1e-12, atol=1e-30)
        assert result.log_likelihood[j] == pytest.approx(float(single.log_likelihood), rel=1e-12)


@given(seed=st.integers(0, 2**32 - 1), first_s=st.floats(0.01, 50.0), second_s=st.floats(0.01, 50.0))
def test_transition_composes_over_intervals(seed, first_s, second_s):
    """f(f(x, a), b) = f(x, a + b): the process model is exact, not a small-step approximation."""
    params = _params(seed)
    x, _ = _state(seed)
    twice = transition(transition(x[None, :], first_s, params), second_s, params)
    once = transition(x[None, :], first_s + second_s, params)
    np.testing.assert_allclose(twice, once, rtol=1e-12, atol=1e-13 * abs(x).max())


def test_process_noise_follows_the_stationary_spreads():
    params = _params(7)
    x, _ = _state(7)
    Q = process_noise(x, 1e6, params)
    # over a long interval the OU components reach their stationary variances
    assert Q[1, 1] == pytest.approx(float(params.drift_std_per_s) ** 2)
    assert Q[2, 2] == pytest.approx(float(params.log_vol_std) ** 2)
    # and ln V diffuses at σ = e^{ln σ}
    assert process_noise(x, 2.0, params)[0, 0] == pytest.approx(math.exp(2 * x[2]) * 2.0)


def test_a_covariance_that_is_not_positive_definite_raises():
    x, P = _state(1)
    with pytest.raises(FilterError, match="state covariance P is not positive definite"):
        ukf_predict(x, -P, 0.1, _params(1))
    with pytest.raises(FilterError, match="innovation covariance S"):
        ukf_update(x, P, x[:1], np.array([-1.0]), np.array([0]))


def test_bad_parameters_are_refused_by_name():
    with pytest.raises(ValueError, match="drift_reversion_s"):
        ProcessParams(drift_reversion_s=0.0, drift_std_per_s=1e-5, log_vol_mean=-9.0, log_vol_reversion_s=1.0, log_vol_std=0.1)
    with pytest.raises(ValueError, match="log_vol_mean"):
        ProcessParams(drift_reversion_s=1.0, drift_std_per_s=1e-5, log_vol_mean=math.nan, log_vol_reversion_s=1.0, log_vol_std=0.1)
    with pytest.raises(ValueError, match="alpha"):
        merwe_weights(alpha=0.0)
