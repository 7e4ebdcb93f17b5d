"""Sensor calibration: coefficients, noise covariance and decorrelation against a model with known answers.

The model: ln V a random walk (σ per row), ln mid = ln V + e₀ with e₀ ~ N(0, R₀) independent
per row, and a feature f = (ln V − ln mid) + ε with ε ~ N(0, s²). Then the best layer is
``ln mid + b f`` with ``b = R₀ / (R₀ + s²)`` and error variance ``R₀ s² / (R₀ + s²)``.
"""

import math

import numpy as np
import pytest

from mmlab.sensor import MicrostructureSensor
from mmlab.sensor.calibration import MID, FeatureFrame, SensorCalibration, decorrelate, fit_sensor
from mmlab.testing import T0_NS, make_book, make_update
from mmlab.types import StateComponent

SIGMA, R0, S2 = 1e-5, 4e-10, 2e-10  # per row, (ln USD)²


def model_frame(n: int = 60_000, seed: int = 3) -> tuple[FeatureFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    log_v = math.log(100.0) + np.cumsum(rng.normal(0.0, SIGMA, n))
    e0 = rng.normal(0.0, math.sqrt(R0), n)
    log_mid = log_v + e0
    feature = (log_v - log_mid) + rng.normal(0.0, math.sqrt(S2), n)
    ts = T0_NS + np.arange(n, dtype=np.int64) * 100_000_000
    return FeatureFrame(ts_local=ts, log_mid=log_mid, columns={"signal": feature}, interval_s=0.1), log_v


def test_fit_recovers_coefficient_diffusion_and_the_combined_noise():
    frame, _ = model_frame()
    cal = fit_sensor(frame, fair_value_horizon_s=1.0, signature_horizons_s=(1.0, 2.0))
    assert cal.names == (MID, "signal")
    b = R0 / (R0 + S2)
    assert cal.coefs[1] == pytest.approx(b, rel=0.05)
    assert cal.sigma_per_sqrt_s == pytest.approx(SIGMA / math.sqrt(0.1), rel=0.05)
    assert cal.mid_noise_var == pytest.approx(R0, rel=0.15)
    # fair value is the best prediction of the mid (module docstring, item 3): against it the
    # fitted layer is exact up to estimation error, and the mid is off by R₀ minus the error
    # F = R₀ s²/(R₀ + s²) that the best layer still has against the latent value
    combined_error = R0 * S2 / (R0 + S2)
    cov = np.array(cal.noise_cov)
    assert cov[0, 0] == pytest.approx(R0 - combined_error, rel=0.15)
    assert cov[1, 1] < 0.05 * combined_error
    assert "signal" in cal.summary() and "bps" in cal.summary()


def test_fitted_layers_estimate_fair_value_better_than_the_mid_out_of_sample():
    frame, log_v = model_frame()
    first, second = frame.halves()
    cal = fit_sensor(first, fair_value_horizon_s=1.0, signature_horizons_s=(1.0, 2.0))
    cov = np.array(cal.noise_cov)
    half = len(first)
    z = np.column_stack([second.log_mid, second.log_mid + cal.coefs[1] * second.columns["signal"]])
    inverse = np.linalg.inv(cov)
    # the GLS combination 1ᵀΣ⁻¹z / 1ᵀΣ⁻¹1
    fused = z @ inverse.sum(axis=1) / inverse.sum()
    truth = log_v[half:]
    mse_fused = np.mean((fused - truth) ** 2)
    mse_mid = np.mean((second.log_mid - truth) ** 2)
    assert mse_mid == pytest.approx(R0, rel=0.05)
    assert mse_fused == pytest.approx(R0 * S2 / (R0 + S2), rel=0.1)


def test_decorrelated_observations_combine_to_the_gls_estimate():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    cov = a @ a.T + 0.1 * np.eye(4)
    z = rng.normal(size=4)
    values, noise_vars = decorrelate(cov=cov, z=z)
    precision = 1.0 / noise_vars
    inverse = np.linalg.inv(cov)
    assert np.sum(precision * values) / np.sum(precision) == pytest.approx(inverse.sum(axis=1) @ z / inverse.sum(), rel=1e-10)
    # the combined precision is 1ᵀΣ⁻¹1, what the full-covariance update would give
    assert np.sum(precision) == pytest.approx(inverse.sum(), rel=1e-10)


class _Constant:
    """A feature whose value is set by the test."""

    def __init__(self, name: str, value: float) -> None:
        self.name, self.value, self.updates = name, value, 0

    def update(self, update) -> None:
        self.updates += 1


def test_sensor_emits_decorrelated_layers_and_skips_broken_features():
    cal = SensorCalibration(
        names=(MID, "a", "b"),
        coefs=(0.0, 1e-4, 2e-4),
        noise_cov=((4e-10, 1e-10, 0.0), (1e-10, 3e-10, 5e-11), (0.0, 5e-11, 2e-10)),
    )
    a, b = _Constant("a", 0.5), _Constant("b", -0.25)
    sensor = MicrostructureSensor(calibration=cal, features=[b, a, _Constant("unused", 1.0)])
    update = make_update(make_book(bid=99.99, ask=100.01, ts=T0_NS))
    obs = [o for o in sensor.observe(update) if o.component is StateComponent.LOG_FAIR_VALUE]
    assert [o.source for o in obs] == [MID, "a", "b"] and a.updates == b.updates == 1
    log_mid = math.log(100.0)
    z = np.array([log_mid, log_mid + 1e-4 * 0.5, log_mid + 2e-4 * -0.25])
    inverse = np.linalg.inv(np.array(cal.noise_cov))
    precision = np.array([1.0 / o.noise_var for o in obs])
    combined = np.sum(precision * np.array([o.value for o in obs])) / precision.sum()
    assert combined == pytest.approx(inverse.sum(axis=1) @ z / inverse.sum(), abs=1e-12)
    # an infinite feature is left out and counted; the others still observe ln V
    b.value = math.inf
    obs = [o for o in sensor.observe(update) if o.component is StateComponent.LOG_FAIR_VALUE]
    assert [o.source for o in obs] == [MID, "a"] and sensor.dropped_features == 1
    assert all(math.isfinite(o.value) and o.noise_var > 0 for o in obs)
    with pytest.raises(ValueError, match="no feature for the calibration's layer 'a'"):
        MicrostructureSensor(calibration=cal, features=[b])


def test_bad_calibrations_and_frames_are_refused():
    with pytest.raises(ValueError, match="positive definite"):
        SensorCalibration(names=(MID, "a"), coefs=(0.0, 1.0), noise_cov=((1.0, 2.0), (2.0, 1.0)))
    with pytest.raises(ValueError, match="must start with 'mid'"):
        SensorCalibration(names=("a",), coefs=(0.0,), noise_cov=((1.0,),))
    frame, _ = model_frame(n=100)
    with pytest.raises(ValueError, match="too few"):
        fit_sensor(frame)
    never = FeatureFrame(frame.ts_local, frame.log_mid, {"flat": np.full(100, np.nan)}, 0.1)
    big, _ = model_frame(n=5_000)
    cal = fit_sensor(FeatureFrame(big.ts_local, big.log_mid, {"signal": big.columns["signal"], "never": np.full(5_000, np.nan)}, 0.1))
    # a feature the data never define is left out, not a reason to fail
    assert cal.names == (MID, "signal") and never.names == ("flat",)


def test_selection_keeps_the_signal_and_leaves_out_noise_and_flat_features():
    frame, _ = model_frame(n=20_000, seed=5)
    rng = np.random.default_rng(9)
    columns = {
        "noise_a": rng.normal(size=len(frame)),
        "signal": frame.columns["signal"],
        "noise_b": rng.normal(size=len(frame)),
        "flat": np.ones(len(frame)),
    }
    cal = fit_sensor(FeatureFrame(frame.ts_local, frame.log_mid, columns, 0.1), fair_value_horizon_s=1.0, signature_horizons_s=(1.0, 2.0))
    assert cal.names == (MID, "signal")
    why = dict(cal.dropped)
    assert why["flat"] == "never varies"
    assert why["noise_a"].startswith("not selected") and why["noise_b"].startswith("not selected")
    everything = fit_sensor(FeatureFrame(frame.ts_local, frame.log_mid, columns, 0.1), fair_value_horizon_s=1.0, signature_horizons_s=(1.0, 2.0), select=False)
    assert everything.names == (MID, "noise_a", "signal", "noise_b")


def test_features_are_clipped_to_the_range_they_were_fitted_on():
    frame, _ = model_frame(n=20_000, seed=6)
    cal = fit_sensor(frame, fair_value_horizon_s=1.0, signature_horizons_s=(1.0, 2.0), clip_quantile=0.01)
    signal = frame.columns["signal"]
    low, high = cal.bounds[1]
    assert low == pytest.approx(np.quantile(signal, 0.01)) and high == pytest.approx(np.quantile(signal, 0.99))
    # a value ten times beyond the fitted range observes ln V as the bound does
    update = make_update(make_book(bid=99.99, ask=100.01, ts=T0_NS))
    observed = {}
    for value in (10 * high, high):
        sensor = MicrostructureSensor(calibration=cal, features=[_Constant("signal", value)])
        observed[value] = [o.value for o in sensor.observe(update) if o.component is StateComponent.LOG_FAIR_VALUE]
    assert observed[10 * high] == observed[high]
    with pytest.raises(ValueError, match="bounds"):
        SensorCalibration(names=(MID, "a"), coefs=(0.0, 1.0), noise_cov=((1.0, 0.0), (0.0, 1.0)), bounds=((0.0, 0.0), (1.0, -1.0)))


def _switching_vol_frame(seed: int = 3, minutes: float = 60.0):
    """A mid that diffuses with σ switching between 1 and 3 bps/√s every 120 s; the half spread
    follows ln h = −4 + 0.55 ln σ plus noise of std 0.05 (fixed within each 10 s window)."""
    from mmlab.sensor.calibration import FeatureFrame

    rng = np.random.default_rng(seed)
    dt, n = 0.1, int(minutes * 600)
    t = np.arange(n) * dt
    sigma = np.where((t // 120) % 2 == 0, 1e-4, 3e-4)
    log_mid = np.log(100.0) + np.cumsum(sigma * math.sqrt(dt) * rng.normal(size=n))
    window_noise = np.repeat(0.05 * rng.normal(size=n // 100 + 1), 100)[:n]
    log_half_spread = -4.0 + 0.55 * np.log(sigma) + window_noise
    ts = T0_NS + (t * 1e9).astype(np.int64)
    return FeatureFrame(ts_local=ts, log_mid=log_mid, columns={}, interval_s=dt, log_half_spread=log_half_spread)


def test_vol_observations_fit_the_return_noise_and_the_spread_link():
    from mmlab.sensor.calibration import fit_vol_observations

    frame = _switching_vol_frame()
    fit = fit_vol_observations(frame, realized_var_ratio=1.0)
    # independent Gaussian returns: ν near N = 10 (R = ψ'(ν/2)/4 within sampling error)
    assert 7.0 < fit.dof < 14.0, fit
    assert fit.spread_slope == pytest.approx(0.55, rel=0.15), fit
    assert fit.spread_intercept == pytest.approx(-4.0, abs=0.15 * 0.55 * 9.2), fit
    # s² is the spread's own noise, 0.05²: within a factor of 2 (the realized-vol noise is subtracted)
    assert 0.5 * 0.0025 < fit.spread_noise_var < 2.0 * 0.0025, fit
    # a spread that never varies carries no vol information: no spread observation
    flat = FeatureFrame(frame.ts_local, frame.log_mid, {}, 0.1, np.full(len(frame), -9.0))
    none = fit_vol_observations(flat, realized_var_ratio=1.0)
    assert none.spread_slope == 0.0 and "no variation" in none.why_no_spread


def test_fit_sensor_stores_the_vol_fits_and_they_round_trip():
    frame = _switching_vol_frame(minutes=30.0)
    cal = fit_sensor(frame, select=False)
    assert cal.spread_vol_slope > 0.0 and cal.realized_vol_dof > 0.0
    assert 0.0 < cal.fair_value_evidence_weight <= 1.0
    assert SensorCalibration.from_dict(cal.to_dict()) == cal
    with pytest.raises(Exception, match="spread_vol_noise_var"):
        SensorCalibration(spread_vol_slope=0.5, spread_vol_noise_var=0.0)


def test_mid_noise_is_fitted_as_intercept_plus_slope_times_the_variance():
    """The adjustment's variance is a + c σ² with a = 1e-10, c = 0.5 s on the switching-vol mid:
    the errors-in-variables correction recovers c from noisy realized variances."""
    from mmlab.sensor.calibration import fit_mid_noise

    frame = _switching_vol_frame()
    rng = np.random.default_rng(11)
    t = np.arange(len(frame)) * frame.interval_s
    sigma2_per_s = np.where((t // 120) % 2 == 0, 1e-4, 3e-4) ** 2
    a, c = 1e-10, 0.5
    adjustment = rng.normal(size=len(frame)) * np.sqrt(a + c * sigma2_per_s)
    fit = fit_mid_noise(frame, adjustment, combined_var=1e-12, realized_var_ratio=1.0, dof=10.0)
    assert fit.why_constant == "" and fit.windows > 300, fit
    assert fit.vol_slope_s == pytest.approx(c, rel=0.15), fit
    # R₀ = a + Var(e_c), within the slope's error times the quiet σ²
    assert fit.intercept == pytest.approx(a + 1e-12, abs=0.15 * c * 1e-8), fit
    # an adjustment unrelated to σ: constant noise, its mean square plus Var(e_c)
    flat = rng.normal(size=len(frame)) * 1e-5
    constant = fit_mid_noise(frame, flat, combined_var=1e-12, realized_var_ratio=1.0, dof=10.0)
    assert constant.vol_slope_s == 0.0 and "not related" in constant.why_constant, constant
    assert constant.intercept == pytest.approx(float(np.mean(flat**2)) + 1e-12, rel=1e-9)
    with pytest.raises(ValueError, match="dof"):
        fit_mid_noise(frame, adjustment, combined_var=0.0, realized_var_ratio=1.0, dof=0.0)
    with pytest.raises(ValueError, match="adjustment has shape"):
        fit_mid_noise(frame, adjustment[:-1], combined_var=0.0, realized_var_ratio=1.0, dof=10.0)


def test_fit_sensor_fits_the_mid_noise_only_with_other_layers_and_it_round_trips():
    frame, _ = model_frame()
    cal = fit_sensor(frame, fair_value_horizon_s=1.0, signature_horizons_s=(1.0, 2.0), select=False)
    # σ is constant in this model: the mid's noise is a constant, the mean square of the
    # adjustment b f plus the combined layer's error under Σ (about 0: Σ is measured against the
    # best prediction), b² (R₀ + s²) = R₀²/(R₀ + s²)
    assert cal.mid_noise_vol_slope_s == 0.0
    assert cal.mid_noise_intercept == pytest.approx(R0**2 / (R0 + S2), rel=0.1), cal
    assert SensorCalibration.from_dict(cal.to_dict()) == cal
    mid_only = fit_sensor(FeatureFrame(frame.ts_local, frame.log_mid, {}, 0.1), fair_value_horizon_s=1.0, signature_horizons_s=(1.0, 2.0))
    assert mid_only.mid_noise_intercept == 0.0 and ("mid_noise_vol", "the mid is the only layer") in mid_only.dropped
    with pytest.raises(Exception, match="mid_noise_vol_slope_s"):
        SensorCalibration(mid_noise_vol_slope_s=-1.0)
