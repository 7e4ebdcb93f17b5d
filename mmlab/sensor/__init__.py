"""Sensor: turn the book and the tape into observations ``(z, R)`` of the filter's state.

Every observation measures one component of ``x = [ln V, μ, ln σ]`` with its own noise variance,
so the filter weighs it by its precision.

Fair value (ln V)
-----------------
Online features (:class:`~mmlab.sensor.calibration.Feature`: price layers such as micro-prices,
and signals such as book imbalance or trade flow) each give a layer ``z_j = ln mid + b_j f_j``.
With a :class:`~mmlab.sensor.calibration.SensorCalibration` (fitted from data by
:func:`~mmlab.sensor.calibration.fit_sensor`: coefficients ``b_j`` and the layers' error
covariance Σ), the layers available in a cycle are decorrelated (``L⁻¹ z`` with ``Σ_S = L Lᵀ``)
into independent observations of ln V, so the filter's update equals the generalized-least-squares
combination of all layers instead of counting the mid's error once per layer.

Before any fit the sensor uses the spread, the only scale it has: if V were anywhere inside the
spread with equal chance, the error of ln mid would be uniform on ±h (h the half spread as a
fraction), ``R = h²/3``; the L1 micro-price ``(bid · ask_size + ask · bid_size)/(bid_size +
ask_size)`` leans toward the side about to be taken and its error is uniform on ±h/2,
``R = h²/12``. Those two (correlated, but nothing better is known yet) are the prior observations.

Volatility (ln σ)
-----------------
Realized volatility observes ln σ, once per window of N non-overlapping returns of the mid
sampled at least one second apart. With N log-returns r_i over intervals Δt_i,
``Σ r_i² / Σ Δt_i ~ σ² · χ²_N / N``, hence ``E[ln(RV)] = 2 ln σ + ψ(N/2) + ln(2/N)`` and
``Var[ln(RV)] = ψ'(N/2)`` (ψ the digamma function), so ``z = ½ (ln RV − ψ(N/2) − ln(2/N))`` is
unbiased for ln σ with ``R = ψ'(N/2)/4``. Returns of a lagging, tick-rounded mid are neither
independent nor Gaussian: a calibration replaces N by ν, the effective number of returns fitted
from the spread of adjacent windows (:func:`~mmlab.sensor.calibration.fit_vol_observations`),
and divides RV by the fitted variance ratio κ.

The quoted spread widens with volatility. With a calibration whose spread link is fitted
(``ln h = a + b ln σ + e``, Var(e) = s², h the half spread as a fraction of the mid), each
realized-vol observation comes with one of the spread: ȳ the mean of ln h over the cycles of the
same window, ``z = (ȳ − a)/b`` observes ln σ with ``R = s²/b²`` (source ``spread_vol``).

Bad input
---------
A book that is missing one side, crossed or holds a non-finite value produces no observations
and is counted in ``dropped_books``; a feature whose value is not finite is left out of that
cycle's layers and counted in ``dropped_features``. Nothing non-finite reaches the filter.
"""
from __future__ import annotations

import math
from collections import deque
from typing import Protocol, Sequence

import numpy as np
from scipy.special import digamma, polygamma

from mmlab.config import SensorConfig
from mmlab.sensor.calibration import Feature, SensorCalibration, solve_lower
from mmlab.sensor.features import make_features
from mmlab.types import L2Book, Observation, StateComponent, VenueUpdate

__all__ = ["Sensor", "MicrostructureSensor", "realized_vol_observation"]

# Mid returns are sampled at least this far apart so the bid-ask bounce of one tick does not
# dominate the realized variance.
_VOL_SAMPLE_INTERVAL_NS = 1_000_000_000


class Sensor(Protocol):
    def observe(self, update: VenueUpdate) -> tuple[Observation, ...]:
        """Observations of the latent state made from one venue update."""
        ...


def realized_vol_observation(sum_sq_returns: float, sum_dt_s: float, n_returns: int, dof: float | None = None) -> tuple[float, float]:
    """Unbiased observation of ln σ from N squared log-returns, and its noise variance.

    ``dof`` is ν, the effective number of independent returns (fitted); N when omitted.
    """
    nu = float(n_returns) if dof is None else float(dof)
    if not (math.isfinite(nu) and nu > 0.0):
        raise ValueError(f"realized_vol_observation: dof must be finite and > 0, got {dof!r}")
    # RV / σ² ~ χ²_ν / ν  =>  E[ln RV] = 2 ln σ + ψ(ν/2) + ln(2/ν)
    log_rv = math.log(sum_sq_returns / sum_dt_s)
    bias = float(digamma(nu / 2.0)) + math.log(2.0 / nu)
    z = 0.5 * (log_rv - bias)
    # Var[ln RV] = ψ'(ν/2), and z = ½ ln RV
    noise_var = float(polygamma(1, nu / 2.0)) / 4.0
    return z, noise_var


class MicrostructureSensor:
    """Fair-value layers, decorrelated with their fitted covariance, and realized volatility.

    Parameters
    ----------
    config : SensorConfig, optional
        Feature settings.
    calibration : SensorCalibration, optional
        Fitted layers (default ``config.calibration``); without any only the mid and the L1 micro-price are observed, with the
        spread-derived variances of the module docstring.
    features : sequence of Feature, optional
        Online features, at least those named by ``calibration.names[1:]`` (others are not run);
        built with :func:`~mmlab.sensor.features.make_features` when omitted.
    """

    def __init__(
        self,
        config: SensorConfig | None = None,
        calibration: SensorCalibration | None = None,
        features: Sequence[Feature] | None = None,
    ) -> None:
        self.config = config or SensorConfig()
        calibration = calibration if calibration is not None else self.config.calibration
        self.calibration = calibration
        if features is None:
            names = calibration.names[1:] if calibration is not None else ()
            params = dict(calibration.feature_params) if calibration is not None else {}
            features = make_features(names, self.config, params)
        if calibration is not None:
            by_name = {f.name: f for f in features}
            missing = [name for name in calibration.names[1:] if name not in by_name]
            if missing:
                raise ValueError(f"MicrostructureSensor: no feature for the calibration's layer {missing[0]!r}; given {sorted(by_name)}")
            # in the calibration's order; features the fit left out are not run
            features = [by_name[name] for name in calibration.names[1:]]
        self.features: tuple[Feature, ...] = tuple(features)
        if calibration is not None:
            self._coefs = np.array(calibration.coefs)
            self._cov = np.array(calibration.noise_cov)
            k = len(calibration.names)
            bounds = calibration.bounds or ((-math.inf, math.inf),) * k
            self._bounds = bounds[1:]
        self._decorrelators: dict[tuple[bool, ...], tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]] = {}
        self.dropped_books = 0
        self.dropped_features = 0
        self._returns: deque[tuple[float, float]] = deque(maxlen=self.config.vol_window_returns)
        self._last_vol_sample: tuple[int, float] | None = None
        # Σ ln h and the count of cycles since the last vol observation (the spread observation)
        self._spread_sum = 0.0
        self._spread_count = 0

    def observe(self, update: VenueUpdate) -> tuple[Observation, ...]:
        for feature in self.features:
            feature.update(update)
        book = update.book
        if book is None:
            return ()
        if not _is_usable(book):
            self.dropped_books += 1
            return ()
        ts = update.ts_local
        bid, ask = float(book.bid_px[0]), float(book.ask_px[0])
        mid = 0.5 * (bid + ask)
        # h: half spread as a fraction of the mid
        half_spread = 0.5 * (ask - bid) / mid
        log_mid = math.log(mid)
        if self.calibration is None:
            observations = self._prior_layers(ts, book, log_mid, half_spread)
        else:
            observations = self._fitted_layers(ts, log_mid)
        self._spread_sum += math.log(half_spread)
        self._spread_count += 1
        vol = self._sample_vol(ts, log_mid, half_spread)
        if vol is not None:
            observations.append(vol)
            spread = self._spread_observation(ts)
            if spread is not None:
                observations.append(spread)
        return tuple(observations)

    def _spread_observation(self, ts: int) -> Observation | None:
        """ln σ from the mean log half spread since the last vol observation (module docstring)."""
        calibration = self.calibration
        mean, count = self._spread_sum / max(self._spread_count, 1), self._spread_count
        self._spread_sum, self._spread_count = 0.0, 0
        if calibration is None or not calibration.spread_vol_slope > 0.0 or count == 0:
            return None
        slope = calibration.spread_vol_slope
        # z = (ȳ − a)/b,  R = s²/b²
        return Observation(
            ts_local=ts,
            component=StateComponent.LOG_VOL,
            value=(mean - calibration.spread_vol_intercept) / slope,
            noise_var=calibration.spread_vol_noise_var / (slope * slope),
            source="spread_vol",
        )

    def _prior_layers(self, ts: int, book: L2Book, log_mid: float, half_spread: float) -> list[Observation]:
        bid, ask = float(book.bid_px[0]), float(book.ask_px[0])
        bid_size, ask_size = float(book.bid_sz[0]), float(book.ask_sz[0])
        micro = (bid * ask_size + ask * bid_size) / (bid_size + ask_size)
        return [
            # uniform error on ±h  =>  R = h²/3
            Observation(ts_local=ts, component=StateComponent.LOG_FAIR_VALUE, value=log_mid, noise_var=half_spread**2 / 3.0, source="mid"),
            # uniform error on ±h/2  =>  R = h²/12
            Observation(
                ts_local=ts,
                component=StateComponent.LOG_FAIR_VALUE,
                value=math.log(micro),
                noise_var=half_spread**2 / 12.0,
                source="micro_l1",
            ),
        ]

    def _fitted_layers(self, ts: int, log_mid: float) -> list[Observation]:
        values = [0.0]
        available = [True]
        for feature, (low, high) in zip(self.features, self._bounds):
            value = feature.value
            finite = math.isfinite(value)
            if not finite and value == value:  # ±inf: a broken feature, not one still warming up
                self.dropped_features += 1
            available.append(finite)
            # clipped to the range it was fitted on
            values.append(min(max(value, low), high) if finite else 0.0)
        key = tuple(available)
        cached = self._decorrelators.get(key)
        if cached is None:
            index = np.flatnonzero(available)
            chol = np.linalg.cholesky(self._cov[np.ix_(index, index)])
            # c = L⁻¹ 1: row i of L⁻¹ z observes c_i ln V with unit noise
            c = solve_lower(chol, np.ones(index.size))
            names = tuple(self.calibration.names[i] for i in index)
            cached = (index, chol, c, names)
            self._decorrelators[key] = cached
        index, chol, c, names = cached
        # z_j = ln mid + b_j f_j
        z = log_mid + self._coefs[index] * np.array(values)[index]
        w = solve_lower(chol, z)
        observations = []
        for i, name in enumerate(names):
            ci = c[i]
            if ci == 0.0:
                continue  # this layer, given the ones before it, says nothing about ln V
            observations.append(
                Observation(
                    ts_local=ts,
                    component=StateComponent.LOG_FAIR_VALUE,
                    # (L⁻¹ z)_i / c_i observes ln V with variance 1/c_i²
                    value=float(w[i] / ci),
                    noise_var=float(1.0 / (ci * ci)),
                    source=name,
                )
            )
        return observations

    def _sample_vol(self, ts: int, log_mid: float, half_spread: float) -> Observation | None:
        last = self._last_vol_sample
        if last is None:
            self._last_vol_sample = (ts, log_mid)
            return None
        if ts - last[0] < _VOL_SAMPLE_INTERVAL_NS:
            return None
        self._returns.append((log_mid - last[1], (ts - last[0]) / 1e9))
        self._last_vol_sample = (ts, log_mid)
        n = len(self._returns)
        if n < self._returns.maxlen:
            return None
        sum_sq = sum(r * r for r, _ in self._returns)
        sum_dt = sum(dt for _, dt in self._returns)
        # Windows do not overlap, so successive observations have independent errors.
        self._returns.clear()
        # A window of unchanged mids says only that σ is small: floor it, never take ln 0.
        floor = (self.config.vol_floor_bps_per_sqrt_s * 1e-4) ** 2 * sum_dt
        # a mid that lags V shows 1 s changes with κ σ² of variance, not σ² (fitted: realized_var_ratio)
        ratio = self.calibration.realized_var_ratio if self.calibration is not None else 1.0
        # ν, the effective number of returns, when the calibration fitted it
        dof = self.calibration.realized_vol_dof if self.calibration is not None and self.calibration.realized_vol_dof > 0.0 else None
        z, noise_var = realized_vol_observation(max(sum_sq, floor) / ratio, sum_dt, n, dof)
        return Observation(
            ts_local=ts, component=StateComponent.LOG_VOL, value=z, noise_var=noise_var, source="realized_vol"
        )


def _is_usable(book: L2Book) -> bool:
    if book.bid_px.size == 0 or book.ask_px.size == 0:
        return False
    bid, ask = book.bid_px[0], book.ask_px[0]
    bid_size, ask_size = book.bid_sz[0], book.ask_sz[0]
    if not (math.isfinite(bid) and math.isfinite(ask) and math.isfinite(bid_size) and math.isfinite(ask_size)):
        return False
    return 0.0 < bid < ask and bid_size > 0.0 and ask_size > 0.0
