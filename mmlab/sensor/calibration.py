"""Fit the sensor's fair-value observations from a tape: coefficients and noise covariance.

Every feature ``f_j`` (a price layer's log offset from the mid, or a signal such as book
imbalance) becomes an observation of ln V

    z_j(t) = ln mid(t) + b_j · f_j(t),          z_j = ln V + e_j,   Cov(e) = Σ

and the mid itself is the layer ``z_0 = ln mid`` (b = 0). Nothing here is picked by hand:

1. **Coefficients.** Fair value is what the mid is expected to become (Stoikov's definition of a
   micro-price), so ``b_j`` is the least-squares slope of the future mid change
   ``y_H = ln mid(t + H) − ln mid(t)`` on ``f_j`` at the fair-value horizon H.
2. **Diffusion and the mid's noise (variance signature).** With ln mid = ln V + e_0, V a
   martingale with variance rate σ² and e_0 stationary and short-memory,
   ``Var(ln mid(t + h) − ln mid(t)) = 2 R_0 + σ² h`` for h beyond e_0's memory. Two horizons
   h₁ < h₂ give ``σ² = (v₂ − v₁)/(h₂ − h₁)`` and ``R_0 = (v₁ − σ² h₁)/2``.
3. **Noise covariance.** Take fair value to be the best prediction of the future mid,
   ``ln V(t) = E[ln mid(t + H) | what the features know at t]``. The error of z_j against the
   future mid, ``u_j = z_j(t) − ln mid(t + H) = e_j(t) − η``, then has ``η = ln mid(t + H) − ln V(t)``
   uncorrelated with anything known at t, so ``Cov(u_i, u_j) = Σ_ij + C`` with the common
   ``C = Var(η)``, estimated by the residual variance of the joint least-squares prediction of
   ``y_H`` from all features. ``Σ = Cov(u) − C·11ᵀ`` is then positive semi-definite (the joint
   prediction is the best in the span); its zero direction is that prediction itself, whose only
   error is estimation error, about ``C·K/n_eff`` out of sample for K layers and ``n_eff = n/H``
   independent windows, added to the diagonal. (Under a latent-price model with independent
   errors, Σ so defined is smaller than the errors against the latent V by the combined layer's
   own error variance, which this definition counts in C.)
4. **Persistence.** A book that does not change repeats its error every cycle; a filter taking
   the errors as white would average them over time, adding lag and removing nothing. Only the
   new part of an AR(1) error is news, ``Var(e_t − ρ e_{t−1}) = (1 − ρ²) Var(e)``, so Σ is scaled by
   ``1 − ρ²`` with ρ the one-row autocorrelation of the combined adjustment.

The layers' errors are strongly correlated (they all contain the mid's), so the sensor does not
hand them to the filter as if independent: with ``Σ_S = L Lᵀ`` over the layers S available in a
cycle, the rows of ``L⁻¹ z`` are independent observations of ``c ln V`` with ``c = L⁻¹ 1`` and unit
noise, i.e. observation ``(L⁻¹ z)_i / c_i`` of ln V with variance ``1/c_i²``
(:func:`decorrelate`). Their precision-weighted mean is the generalized-least-squares estimate
``1ᵀΣ⁻¹z / 1ᵀΣ⁻¹1`` of ln V, exactly what a filter would get from the full covariance.

Fit on one stretch of data and use on the next: :func:`fit_sensor` takes the frame of features
sampled on the quote grid (:func:`feature_frame`), normally over the first half of a tape.
"""

from __future__ import annotations

import math
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol, Sequence

import numpy as np

from mmlab.config import MID_LAYER as MID
from mmlab.config import SensorCalibration, SimConfig, check_field
from mmlab.data.tape import Tape
from mmlab.types import VenueUpdate
from mmlab.units import NS_PER_S, s_to_ns

__all__ = [
    "Feature",
    "FeatureFrame",
    "SensorCalibration",
    "feature_frame",
    "fit_sensor",
    "fit_vol_observations",
    "effective_dof",
    "VolObservationFit",
    "fit_mid_noise",
    "MidNoiseFit",
    "decorrelate",
    "solve_lower",
    "replay_updates",
    "MID",
]



class Feature(Protocol):
    """An online feature: ``update`` absorbs one venue update, ``value`` is its current value.

    A price layer's value is ``ln(layer price) − ln(mid)``; a signal's is its own unit. Positive
    means evidence for a higher price; NaN means not defined yet.
    """

    name: str

    def update(self, update: VenueUpdate) -> None: ...

    @property
    def value(self) -> float: ...


@dataclass(frozen=True, slots=True)
class FeatureFrame:
    """Features sampled on a time grid: ``ts_local`` (ns), ``log_mid`` and one column per feature.

    Rows without a usable book have ``log_mid`` NaN; a feature not yet defined is NaN.
    ``log_half_spread`` is ln((ask − bid) / (2 mid)) per row (None when not recorded).
    """

    ts_local: np.ndarray
    log_mid: np.ndarray
    columns: dict[str, np.ndarray]
    interval_s: float
    log_half_spread: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.ts_local.size)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.columns)

    def slice(self, start: int, stop: int) -> "FeatureFrame":
        return FeatureFrame(
            ts_local=self.ts_local[start:stop],
            log_mid=self.log_mid[start:stop],
            columns={k: v[start:stop] for k, v in self.columns.items()},
            interval_s=self.interval_s,
            log_half_spread=None if self.log_half_spread is None else self.log_half_spread[start:stop],
        )

    def halves(self) -> tuple["FeatureFrame", "FeatureFrame"]:
        """First and second half (by rows): fit on the first, judge on the second."""
        half = len(self) // 2
        return self.slice(0, half), self.slice(half, len(self))


def feature_frame(
    tape: Tape,
    features: Sequence[Feature] | Callable[[], Sequence[Feature]],
    *,
    interval_s: float = 0.1,
    updates: Iterable[VenueUpdate] | None = None,
) -> FeatureFrame:
    """Replay ``tape`` (no orders) and sample every feature and the log mid each ``interval_s``.

    ``features`` are fresh online features (or a factory of them); each sees every update.
    ``updates`` replaces the replay when the caller already has the venue updates.
    """
    check_field("feature_frame", "interval_s", interval_s, gt=0.0)
    feats = list(features() if callable(features) else features)
    names = [f.name for f in feats]
    if len(set(names)) != len(names) or MID in names:
        raise ValueError(f"feature_frame: feature names must be unique and not {MID!r}, got {names}")
    if updates is None:
        updates = replay_updates(tape, interval_s)
    ts, log_mid, log_half_spread, values = [], [], [], [[] for _ in feats]
    for update in updates:
        for feature in feats:
            feature.update(update)
        ts.append(update.ts_local)
        book = update.book
        mid = half = math.nan
        if book is not None and book.bid_px.size and book.ask_px.size:
            bid, ask = float(book.bid_px[0]), float(book.ask_px[0])
            if 0.0 < bid < ask < math.inf:
                mid = 0.5 * (bid + ask)
                half = 0.5 * (ask - bid) / mid
        log_mid.append(math.log(mid) if mid == mid else math.nan)
        log_half_spread.append(math.log(half) if half == half else math.nan)
        for column, feature in zip(values, feats):
            column.append(feature.value)
    return FeatureFrame(
        ts_local=np.array(ts, dtype=np.int64),
        log_mid=np.array(log_mid, dtype=np.float64),
        columns={name: np.array(column, dtype=np.float64) for name, column in zip(names, values)},
        interval_s=float(interval_s),
        log_half_spread=np.array(log_half_spread, dtype=np.float64),
    )


def replay_updates(tape: Tape, interval_s: float) -> Iterable[VenueUpdate]:
    """The venue updates a strategy polling every ``interval_s`` would see, without trading."""
    from mmlab.sim.venue import SimVenue

    venue = SimVenue(tape, SimConfig(feed_latency_s=0.0, order_latency_s=0.0))
    step_ns = s_to_ns(interval_s)
    start = int(tape.ts_local[0]) + step_ns
    end = int(tape.ts_local[-1])
    for ts in range(start, end + 1, step_ns):
        yield venue.poll(ts)


def fit_sensor(
    frame: FeatureFrame,
    *,
    fair_value_horizon_s: float = 3.0,
    signature_horizons_s: tuple[float, float] = (3.0, 6.0),
    min_noise_var: float | None = None,
    min_samples: int = 200,
    min_defined_fraction: float = 0.5,
    select: bool = True,
    validation_fraction: float = 0.3,
    clip_quantile: float = 0.001,
    min_dm_statistic: float = 0.5,
    vol_window_returns: int = 10,
    vol_floor_bps_per_sqrt_s: float = 0.05,
) -> SensorCalibration:
    """Fit coefficients and the noise covariance of the features in ``frame`` (module docstring).

    Features are first screened: one defined on fewer than ``min_defined_fraction`` of the rows
    with a mid, or that never varies, is left out (``SensorCalibration.dropped`` says why). Each
    kept feature is clipped to its ``clip_quantile`` and ``1 − clip_quantile`` quantiles on the
    fitting data (the bounds are kept, and the sensor clips the same way): a coefficient fitted on
    a one-tick spread must not multiply the offset of a spread ten ticks wide.

    With ``select`` the layers are chosen by forward selection validated inside the fitting data:
    fit on its first ``1 − validation_fraction``, add the feature whose layer most lowers the
    squared error of the combined estimate against ``ln mid(t + H)`` on the rest, and stop when
    that improvement is too small to trust (Diebold–Mariano statistic, Newey–West variance, at
    or below ``min_dm_statistic``); then the chosen layers are refitted on all of ``frame``.
    Many correlated features and a few hundred independent windows overfit otherwise: the joint
    combination of every feature predicts worse out of sample than the best single one.

    Parameters
    ----------
    frame : FeatureFrame
        Features on a regular grid (normally the first half of a tape).
    fair_value_horizon_s : float
        H: fair value is the mid expected H seconds ahead.
    signature_horizons_s : (float, float)
        h₁ < h₂ of the variance signature; both beyond the memory of the mid's noise.
    min_noise_var : float, optional
        Floor of Σ's eigenvalues, (ln USD)²; default the estimation error C·K/n_eff.
    min_samples : int
        Fewer complete rows than this raise ``ValueError``.
    min_defined_fraction : float
        See above.
    select : bool
        Choose the layers by validated forward selection (else keep every screened feature).
    validation_fraction : float
        Share of the fitting rows (the last ones) the selection is judged on.
    clip_quantile : float
        Tail quantile of the clipping bounds (0 disables clipping).
    vol_window_returns, vol_floor_bps_per_sqrt_s : int, float
        The sensor's realized-vol window and floor (:class:`~mmlab.config.SensorConfig`), for
        :func:`fit_vol_observations`, which fits the realized-vol noise and the spread's link
        to ln σ (stored in the calibration).
    min_dm_statistic : float
        Smallest Diebold–Mariano statistic for which a feature joins. 0.5 (one-sided 31 %): the
        validation block is short and its test weak; at 1.96 no feature joined on the
        Hyperliquid S3 hour, whose second half the depth micro-price then predicts 4 % better.

    Raises
    ------
    ValueError
        Too few samples, horizons not on the grid, or a mid that does not diffuse.
    """
    check_field("fit_sensor", "fair_value_horizon_s", fair_value_horizon_s, gt=0.0)
    check_field("fit_sensor", "validation_fraction", validation_fraction, gt=0.0, lt=1.0)
    check_field("fit_sensor", "clip_quantile", clip_quantile, ge=0.0, lt=0.5)
    h1_s, h2_s = signature_horizons_s
    if not 0.0 < h1_s < h2_s:
        raise ValueError(f"fit_sensor: signature_horizons_s must be 0 < h1 < h2, got {signature_horizons_s!r}")
    dt = frame.interval_s
    steps = tuple(max(1, round(h / dt)) for h in (fair_value_horizon_s, h1_s, h2_s))
    if len(frame) <= max(steps) + min_samples:
        raise ValueError(f"fit_sensor: {len(frame)} rows are too few for horizons of {max(steps)} rows and {min_samples} samples")
    log_mid = frame.log_mid
    has_mid = np.isfinite(log_mid)
    columns: dict[str, np.ndarray] = {}
    bounds: dict[str, tuple[float, float]] = {}
    dropped: list[tuple[str, str]] = []
    for name, column in frame.columns.items():
        defined = np.isfinite(column[has_mid])
        if defined.mean() < min_defined_fraction:
            # a feature the data rarely define (trade flow on a tape without trades) cannot be fitted
            dropped.append((name, f"defined on {defined.mean():.0%} of the rows"))
            continue
        values = column[has_mid][defined]
        low, high = (float(np.quantile(values, clip_quantile)), float(np.quantile(values, 1.0 - clip_quantile))) if clip_quantile > 0 else (-math.inf, math.inf)
        if not np.nanmax(values) > np.nanmin(values) or not high > low:
            dropped.append((name, "never varies"))
            continue
        columns[name] = np.clip(column, low, high)
        bounds[name] = (low, high)
    names = list(columns)
    if select and names:
        names, dropped_by_selection = _forward_selection(frame, columns, steps, validation_fraction, min_samples, min_dm_statistic)
        dropped.extend(dropped_by_selection)
    fit = _fit_layers(log_mid, [columns[name] for name in names], steps, min_noise_var, min_samples)
    # κ = Var(Δ_1s ln mid) / (σ² · 1 s), σ² from the signature at h₁, h₂ beyond the mid's memory
    one_second = max(1, round(1.0 / dt))
    changes = (_ahead(log_mid, one_second) - log_mid)[np.isfinite(log_mid)]
    changes = changes[np.isfinite(changes)]
    ratio = float(np.var(changes)) / (fit.sigma2_per_step * one_second) if changes.size > min_samples else 1.0
    ratio = ratio if ratio > 0.0 else 1.0
    # w = (1 − ρ)/(1 + ρ), ρ the one-row autocorrelation of e = ln mid − its centred mean over ± H
    evidence_weight = _evidence_weight(log_mid, steps[0])
    vol = fit_vol_observations(frame, realized_var_ratio=ratio, window_returns=vol_window_returns, vol_floor_bps_per_sqrt_s=vol_floor_bps_per_sqrt_s)
    if vol.why_no_spread:
        dropped.append(("spread_vol", vol.why_no_spread))
    mid_noise = MidNoiseFit(0.0, 0.0, 0, "the mid is the only layer")
    if names:
        adjustment = fit.estimate(log_mid, [columns[name] for name in names]) - log_mid
        # Var(e_c) = 1 / 1ᵀΣ⁻¹1, the combined layer's own error under Σ
        combined_var = 1.0 / float(np.linalg.inv(fit.cov).sum())
        mid_noise = fit_mid_noise(
            frame, adjustment, combined_var=combined_var, realized_var_ratio=ratio, dof=vol.dof, window_returns=vol_window_returns
        )
    if mid_noise.why_constant:
        dropped.append(("mid_noise_vol", mid_noise.why_constant))
    ts = frame.ts_local
    return SensorCalibration(
        names=(MID, *names),
        coefs=tuple(float(c) for c in fit.coefs),
        noise_cov=tuple(tuple(float(x) for x in row) for row in fit.cov),
        fair_value_horizon_s=steps[0] * dt,
        sigma_per_sqrt_s=math.sqrt(fit.sigma2_per_step / dt),
        mid_noise_var=fit.mid_noise_var,
        samples=fit.samples,
        fitted_from_ns=int(ts[0]) if ts.size else 0,
        fitted_to_ns=int(ts[-1]) if ts.size else 0,
        bounds=((0.0, 0.0), *(bounds[name] for name in names)),
        dropped=tuple(dropped),
        realized_var_ratio=ratio,
        fair_value_evidence_weight=evidence_weight,
        realized_vol_dof=vol.dof,
        spread_vol_intercept=vol.spread_intercept,
        spread_vol_slope=vol.spread_slope,
        spread_vol_noise_var=vol.spread_noise_var,
        mid_noise_intercept=mid_noise.intercept,
        mid_noise_vol_slope_s=mid_noise.vol_slope_s,
    )


@dataclass(frozen=True, slots=True)
class _LayerFit:
    coefs: np.ndarray  # b, the mid's first (0)
    cov: np.ndarray  # Σ
    sigma2_per_step: float
    mid_noise_var: float
    samples: int

    @property
    def weights(self) -> np.ndarray:
        """GLS weights Σ⁻¹1 / 1ᵀΣ⁻¹1 of the layers."""
        inverse = np.linalg.inv(self.cov)
        return inverse.sum(axis=1) / inverse.sum()

    def estimate(self, log_mid: np.ndarray, features: Sequence[np.ndarray]) -> np.ndarray:
        """The combined layer ``1ᵀΣ⁻¹z / 1ᵀΣ⁻¹1 = ln mid + Σ_j w_j b_j f_j`` (NaN where a feature is)."""
        adjustment = np.zeros_like(log_mid)
        for w, b, f in zip(self.weights[1:], self.coefs[1:], features):
            adjustment = adjustment + w * b * f
        return log_mid + adjustment


def _forward_selection(
    frame: FeatureFrame,
    columns: dict[str, np.ndarray],
    steps: tuple[int, int, int],
    validation_fraction: float,
    min_samples: int,
    min_dm_statistic: float,
) -> tuple[list[str], list[tuple[str, str]]]:
    """Greedy forward selection of layers by the validation error of the combined estimate (see :func:`fit_sensor`)."""
    cut = int(len(frame) * (1.0 - validation_fraction))
    horizon = steps[0]
    log_mid = frame.log_mid
    # the validation target ln mid(t + H), only from rows after the cut
    target = _ahead(log_mid, horizon)[cut:]
    rows = np.isfinite(target) & np.isfinite(log_mid[cut:])
    for column in columns.values():
        rows &= np.isfinite(column[cut:])
    if rows.sum() < min_samples or cut <= max(steps) + min_samples:
        return list(columns), []

    def squared_errors(chosen: list[str]) -> np.ndarray:
        fit = _fit_layers(log_mid[:cut], [columns[name][:cut] for name in chosen], steps, None, min_samples)
        estimate = fit.estimate(log_mid[cut:], [columns[name][cut:] for name in chosen])
        return (estimate[rows] - target[rows]) ** 2

    chosen: list[str] = []
    best = squared_errors(chosen)
    baseline = float(best.mean())
    remaining = list(columns)
    scores: dict[str, tuple[float, float]] = {}
    while remaining:
        trials: dict[str, tuple[float, float, np.ndarray]] = {}
        for name in remaining:
            try:
                errors = squared_errors([*chosen, name])
            except (ValueError, np.linalg.LinAlgError):
                continue
            trials[name] = (float(errors.mean()), diebold_mariano(best, errors, horizon), errors)
        if not trials:
            break
        name = min(trials, key=lambda key: trials[key][0])
        scores.update({key: value[:2] for key, value in trials.items()})
        # added only if it lowers the error by more than min_dm_statistic standard errors (Diebold–Mariano)
        if not trials[name][1] > min_dm_statistic:
            break
        chosen.append(name)
        remaining.remove(name)
        best = trials[name][2]
    chosen_ratio = float(best.mean()) / baseline
    dropped = [
        (name, f"not selected: validation MSE ratio {scores[name][0] / baseline:.4f} with it (DM {scores[name][1]:+.2f}) vs {chosen_ratio:.4f} chosen")
        if name in scores
        else (name, "not selected: its layer could not be fitted on the selection rows")
        for name in remaining
    ]
    return chosen, dropped


def diebold_mariano(errors_a: np.ndarray, errors_b: np.ndarray, horizon: int) -> float:
    """Diebold–Mariano statistic that ``b``'s losses are below ``a``'s (positive: b better).

    ``d_t = a_t − b_t``; ``DM = mean(d) / sqrt(V/n)`` with V the Newey–West long-run variance of d
    over ``horizon`` lags (the forecasts' overlapping windows make d autocorrelated up to H − 1).
    """
    d = np.asarray(errors_a, dtype=np.float64) - np.asarray(errors_b, dtype=np.float64)
    n = d.size
    if n < 2:
        return 0.0
    centred = d - d.mean()
    # V = γ_0 + 2 Σ_{l=1}^{L} (1 − l/(L+1)) γ_l, Bartlett weights
    variance = float(centred @ centred) / n
    lags = min(horizon, n - 1)
    for lag in range(1, lags + 1):
        variance += 2.0 * (1.0 - lag / (lags + 1)) * float(centred[lag:] @ centred[:-lag]) / n
    if not variance > 0.0:
        return 0.0
    return float(d.mean() / math.sqrt(variance / n))


def _fit_layers(
    log_mid: np.ndarray, features: Sequence[np.ndarray], steps: tuple[int, int, int], min_noise_var: float | None, min_samples: int
) -> _LayerFit:
    """Coefficients, Σ and the variance signature of the mid and ``features`` (module docstring)."""
    horizon, h1, h2 = steps
    k = len(features) + 1
    values = np.column_stack([np.zeros_like(log_mid), *features])
    # the rows every estimate below uses: mid, every feature and the mid h₂ rows ahead known
    ok = np.isfinite(log_mid) & np.all(np.isfinite(values), axis=1) & np.isfinite(_ahead(log_mid, h2))
    n = int(ok.sum())
    if n < min_samples:
        raise ValueError(f"fit_sensor: only {n} rows have the mid, its future and every feature (need {min_samples})")

    # variance signature on those rows: Var(Δ_h ln mid) = 2 R_0 + σ² h
    v1 = float(np.var((_ahead(log_mid, h1) - log_mid)[ok]))
    v2 = float(np.var((_ahead(log_mid, h2) - log_mid)[ok]))
    sigma2_per_step = (v2 - v1) / (h2 - h1)
    if not sigma2_per_step > 0.0:
        raise ValueError("fit_sensor: the mid's variance does not grow with the horizon (a flat or too short tape)")
    mid_noise_var = max(0.5 * (v1 - sigma2_per_step * h1), 1e-6 * sigma2_per_step)

    y = (_ahead(log_mid, horizon) - log_mid)[ok]
    f_ok = values[ok]
    x = f_ok[:, 1:] - f_ok[:, 1:].mean(axis=0)
    yc = y - y.mean()
    denom = np.einsum("ij,ij->j", x, x)
    if np.any(denom <= 0.0):
        raise ValueError("fit_sensor: a feature never varies on the rows used")
    # b_j = Cov(y_H, f_j) / Var(f_j)
    b = np.concatenate([[0.0], (x.T @ yc) / denom])
    # u_j = z_j(t) − ln mid(t + H) = b_j f_j − y_H
    u = f_ok * b - y[:, None]
    # C = Var(η), the part of the future mid no feature predicts: the joint least-squares residual
    beta = np.linalg.lstsq(x, yc, rcond=None)[0] if k > 1 else np.zeros(0)
    common = float(np.var(yc - x @ beta))
    # the fitted combination's own error out of sample: C·K/n_eff, with n_eff = n / H rows
    # because returns over overlapping H-row windows are not independent
    effective_n = max(n / horizon, float(k) + 1.0)
    floor = common * k / effective_n if min_noise_var is None else min_noise_var
    cov = np.atleast_2d(np.cov(u, rowvar=False)) - common
    eigenvalues, vectors = np.linalg.eigh(cov)
    cov = (vectors * np.maximum(eigenvalues, 0.0)) @ vectors.T + floor * np.eye(k)
    cov = 0.5 * (cov + cov.T)
    # The errors persist from one cycle to the next (a book that does not change repeats its
    # error), and a filter that took them as white noise would average them over time, adding
    # lag and removing nothing. Only the new part of an AR(1) error, ξ = e_t − ρ e_{t−1}, is news:
    # Var(ξ) = (1 − ρ²) Var(e), with ρ the one-row autocorrelation of the combined adjustment.
    inverse = np.linalg.inv(cov)
    weights = inverse.sum(axis=1) / inverse.sum()
    adjustment = np.where(np.isfinite(values), values, 0.0) @ (weights * b)
    rho = _lag_one_autocorrelation(adjustment, ok)
    cov = cov * (1.0 - rho * rho)
    return _LayerFit(coefs=b, cov=cov, sigma2_per_step=sigma2_per_step, mid_noise_var=float(mid_noise_var), samples=n)


def _evidence_weight(log_mid: np.ndarray, horizon: int) -> float:
    """(1 − ρ)/(1 + ρ): the share of independent evidence in n cycles of an AR(1) error.

    The mid's error is taken as ``e = ln mid − m``, m the mean of ln mid over the 2H + 1 rows
    centred on each row (a fair-value proxy that knows the future; the rows near a gap are
    left out); ρ is e's autocorrelation between consecutive rows (clipped to [0, 0.999]).
    """
    window = 2 * horizon + 1
    finite = np.isfinite(log_mid)
    if finite.sum() <= 2 * window:
        return 1.0
    values = np.where(finite, log_mid, 0.0)
    sums = np.convolve(values, np.ones(window), mode="same")
    counts = np.convolve(finite.astype(float), np.ones(window), mode="same")
    ok = finite & (counts == window)
    error = np.where(ok, log_mid - sums / np.maximum(counts, 1.0), 0.0)
    rho = _lag_one_autocorrelation(error, ok)
    return float(max((1.0 - rho) / (1.0 + rho), 1e-4))


def _lag_one_autocorrelation(x: np.ndarray, ok: np.ndarray) -> float:
    """Autocorrelation of ``x`` between consecutive rows that are both usable, clipped to [0, 0.999]."""
    both = ok[1:] & ok[:-1]
    a, b = x[1:][both], x[:-1][both]
    if a.size < 3 or np.std(a) == 0.0 or np.std(b) == 0.0:
        return 0.0
    return float(np.clip(np.corrcoef(a, b)[0, 1], 0.0, 0.999))


def _ahead(x: np.ndarray, steps: int) -> np.ndarray:
    """``x`` shifted ``steps`` rows into the future (NaN past the end)."""
    out = np.full_like(x, np.nan)
    out[:-steps] = x[steps:]
    return out


def decorrelate(z: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Independent observations of ln V from layers ``z`` with correlated errors ``cov``.

    With ``cov = L Lᵀ``, row i of ``L⁻¹ z`` observes ``c_i ln V`` with unit noise, ``c = L⁻¹ 1``;
    returns ``values = (L⁻¹ z)/c`` and ``noise_vars = 1/c²`` (rows with ``c_i = 0`` carry no
    information about ln V and get an infinite variance). Their precision-weighted mean is
    ``1ᵀΣ⁻¹z / 1ᵀΣ⁻¹1``.
    """
    chol = np.linalg.cholesky(cov)
    # L w = z and L c = 1 by forward substitution
    w = solve_lower(chol, z)
    c = solve_lower(chol, np.ones_like(z))
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.where(c != 0.0, w / c, 0.0)
        noise_vars = np.where(c != 0.0, 1.0 / (c * c), np.inf)
    return values, noise_vars


def solve_lower(lower: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Forward substitution: x with ``lower @ x = rhs`` (a few µs for the handful of layers)."""
    n = rhs.size
    out = np.empty(n)
    for i in range(n):
        out[i] = (rhs[i] - lower[i, :i] @ out[:i]) / lower[i, i]
    return out


@dataclass(frozen=True, slots=True)
class VolObservationFit:
    """The fitted realized-vol and spread observations of ln σ (:func:`fit_vol_observations`)."""

    dof: float
    noise_var: float
    spread_intercept: float
    spread_slope: float
    spread_noise_var: float
    windows: int
    pairs: int
    why_no_spread: str = ""


@dataclass(frozen=True, slots=True)
class MidNoiseFit:
    """The mid layer's fitted noise ``R₀ + c σ²`` (:func:`fit_mid_noise`); ``windows`` used."""

    intercept: float
    vol_slope_s: float
    windows: int
    why_constant: str = ""


def fit_mid_noise(
    frame: FeatureFrame,
    adjustment: np.ndarray,
    *,
    combined_var: float,
    realized_var_ratio: float,
    dof: float,
    window_returns: int = 10,
    min_windows: int = 20,
) -> MidNoiseFit:
    """Fit the mid layer's noise variance as ``R₀ + c σ²`` from ``frame`` (σ² per second).

    ``adjustment`` is the combined layer minus the mid per row, ``z_c − ln mid`` (the GLS
    combination of the fitted layers), and ``combined_var`` the combined layer's own error
    variance ``Var(e_c) = 1/1ᵀΣ⁻¹1``.

    **What the filter sees of the mid.** The filter's V̂ follows the combined layer, so the mid's
    innovation is ``ln mid − V̂⁻ ≈ e_0 − e_c`` plus the state's own uncertainty. For the GLS
    combination ``Cov(e_0, e_c) = Var(e_c)``, hence

        Var(e_0) = Var(z_0 − z_c) + Var(e_c) = E[adjustment²] + Var(e_c)

    with no factor for persistence: Σ is scaled by ``1 − ρ²`` so that the layers are not averaged
    over time (only the new part of an AR(1) error is news for the weights), but V̂, held by the
    other layers, does not absorb the mid's persistent error, which therefore reappears whole
    in every innovation of the mid.

    **Its dependence on σ.** A mid that lags V (a quote refreshed towards V with a delay τ) errs by
    ``ln mid − ln V`` of variance about σ² τ / 2, so the error grows with the volatility. Over the
    sensor's realized-vol windows k (mid every second, ``window_returns`` returns), the mean of
    ``adjustment²`` over the window's rows is regressed on ``RV_k / κ``, the window's realized
    variance per second on σ²'s scale: ``ā_k = a + c RV_k/κ + u``. RV/κ measures σ² with error
    (``RV/(κσ²) ~ χ²_ν/ν``, ν the fitted ``dof``). The window's own RV shares the mid's noise
    with ``ā_k`` (a bouncing mid inflates both), so the regressor is x_k, the mean of the two
    adjacent windows' RV/κ, which see almost the same σ but independent returns (an instrument;
    its error is that of χ²_{2ν}/(2ν)). That error attenuates the least-squares slope by
    ``λ = Var(σ²)/Var(x)``, with ``E[x²] = E[σ⁴](1 + 1/ν)`` so
    ``Var(σ²) = mean(x²)/(1 + 1/ν) − mean(x)²``; the slope is corrected, ``c = ĉ_OLS/λ``,
    and the intercept refitted through the means, ``a = mean(ā) − c mean(x)`` (if a < 0, a = 0
    and c through the origin, ``c = mean(ā)/mean(x)``). ``R₀ = a + Var(e_c)``. When the slope is
    not significant (t < 2) or not positive, or the windows too few, c = 0 and R₀ is the mean
    ``E[adjustment²] + Var(e_c)`` (``why_constant`` says why).
    """
    check_field("fit_mid_noise", "realized_var_ratio", realized_var_ratio, gt=0.0)
    check_field("fit_mid_noise", "dof", dof, gt=0.0)
    check_field("fit_mid_noise", "combined_var", combined_var, ge=0.0)
    if adjustment.shape != frame.log_mid.shape:
        raise ValueError(f"fit_mid_noise: adjustment has shape {adjustment.shape}, the frame {frame.log_mid.shape}")
    squared = adjustment * adjustment
    usable = np.isfinite(squared)
    if not usable.any():
        return MidNoiseFit(0.0, 0.0, 0, "no row has every layer")
    overall = float(np.mean(squared[usable])) + combined_var
    step = max(1, round(1.0 / frame.interval_s))
    rows = np.arange(0, len(frame), step)
    returns = np.diff(frame.log_mid[rows])
    count = returns.size // window_returns
    if count < min_windows:
        return MidNoiseFit(overall, 0.0, count, f"{count} vol windows (need {min_windows}): constant noise")
    blocks = returns[: count * window_returns].reshape(count, window_returns)
    # RV_k / κ, the realized variance per second on σ²'s scale
    rv = np.sum(blocks * blocks, axis=1) / (window_returns * step * frame.interval_s) / realized_var_ratio
    edges = rows[np.arange(count + 1) * window_returns]
    mean_sq = np.array([np.mean(squared[edges[k] : edges[k + 1]][usable[edges[k] : edges[k + 1]]]) if usable[edges[k] : edges[k + 1]].any() else np.nan for k in range(count)])
    # x_k = ½ (RV_{k−1} + RV_{k+1}) / κ: independent of window k's own returns
    neighbours = np.full(count, np.nan)
    neighbours[1:-1] = 0.5 * (rv[:-2] + rv[2:])
    rv = neighbours
    ok = np.isfinite(rv) & np.isfinite(mean_sq)
    n = int(ok.sum())
    if n < min_windows:
        return MidNoiseFit(overall, 0.0, n, f"{n} vol windows with every layer (need {min_windows}): constant noise")
    x, y = rv[ok], mean_sq[ok]
    var_x = float(np.var(x))
    if not var_x > 0.0:
        return MidNoiseFit(overall, 0.0, n, "the realized variance never varies: constant noise")
    cov_xy = float(np.mean((x - x.mean()) * (y - y.mean())))
    var_y = float(np.var(y))
    r = cov_xy / math.sqrt(var_x * var_y) if var_y > 0.0 else 0.0
    t = r * math.sqrt((n - 2) / max(1.0 - r * r, 1e-12))
    # Var(σ²) = mean(x²)/(1 + 2/(2ν)) − mean(x)²,  λ = Var(σ²)/Var(x)
    signal_var = float(np.mean(x * x)) / (1.0 + 1.0 / dof) - float(x.mean()) ** 2
    if not (t >= 2.0 and cov_xy > 0.0 and signal_var > 0.0):
        return MidNoiseFit(overall, 0.0, n, f"mid error not related to the realized variance (t {t:.2f}): constant noise")
    reliability = min(signal_var / var_x, 1.0)
    # c = Cov(RV/κ, ā)/Var(RV/κ)/λ,  a = mean(ā) − c mean(RV/κ)
    slope = cov_xy / var_x / reliability
    intercept = float(y.mean()) - slope * float(x.mean())
    if intercept < 0.0:
        intercept, slope = 0.0, float(y.mean()) / float(x.mean())
    return MidNoiseFit(intercept + combined_var, float(slope), n)


def effective_dof(noise_var: float) -> float:
    """ν with ψ'(ν/2)/4 = ``noise_var``: the χ²_ν whose log has the observed variance."""
    from scipy.optimize import brentq
    from scipy.special import polygamma

    # ψ' falls from +∞ to 0 as ν grows, so the root is unique
    def gap(log_dof: float) -> float:
        return float(polygamma(1, 0.5 * math.exp(log_dof))) / 4.0 - noise_var

    low, high = math.log(0.05), math.log(1e6)
    if gap(high) >= 0.0:
        return math.exp(high)
    if gap(low) <= 0.0:
        return math.exp(low)
    return math.exp(brentq(gap, low, high, xtol=1e-10))


def fit_vol_observations(
    frame: FeatureFrame,
    *,
    realized_var_ratio: float,
    window_returns: int = 10,
    vol_floor_bps_per_sqrt_s: float = 0.05,
    min_windows: int = 20,
) -> VolObservationFit:
    """Fit the noise of the realized-vol observation and the spread's link to ln σ from ``frame``.

    The sensor's realized vol is rebuilt on the frame: the mid every second, windows of
    ``window_returns`` (N) returns, ``x_k = ½ ln(RV_k / κ)``; ``y_k`` is the mean log half spread
    over the window's rows.

    **Realized-vol noise.** Returns of a mid that lags V, or moves by ticks and jumps, are
    neither independent nor Gaussian, so ψ'(N/2)/4 (independent Gaussian returns) misstates the
    noise. Adjacent windows see almost the same σ, so ``x_k − x_{k−1}`` is the difference of two
    independent errors: ``R = ½ mean((x_k − x_{k−1})²)`` over adjacent pairs whose mean log
    spread moved by no more than the median absolute move (pairs across a change of regime,
    where σ moves too, are left out). ν, the effective number of returns, solves
    ψ'(ν/2)/4 = R, and the unbiased observation is ``z = ½ (ln(RV/κ) − ψ(ν/2) − ln(2/ν))``
    (RV/(κσ²) ~ χ²_ν/ν, Satterthwaite's approximation).

    **Spread.** The quoted spread widens with volatility, and the mean log half spread y of a
    window is measured almost without error, so ln σ is regressed on it: with ``x̃_k`` the unbiased
    realized-vol observation, whose noise (R) is independent of y, least squares of x̃ on y

        x̃ = c + d y + u,   Var(u) = Var(ln σ − c − d y) + R

    is unbiased for the best linear prediction of ln σ from the spread (noise in the dependent
    variable does not bias a slope; regressing y on x̃ would shrink it by Var(ln σ)/Var(x̃)). The
    sensor observes ln σ as ``c + d y`` with variance ``s² = Var(u) − R`` (floored at a tenth of
    Var(u): R is itself estimated). The calibration stores it as the link
    ``y = a + b ln σ`` with ``b = 1/d``, ``a = −c/d`` and noise ``s² b²``. No spread observation
    (slope 0) when the spread does not vary, d ≤ 0, or the regression is not significant
    (t < 2, t = r √((n − 2)/(1 − r²)), r the correlation of x̃ and y).
    """
    from scipy.special import digamma, polygamma

    check_field("fit_vol_observations", "realized_var_ratio", realized_var_ratio, gt=0.0)
    if not isinstance(window_returns, int) or window_returns < 2:
        raise ValueError(f"fit_vol_observations: window_returns must be an integer >= 2, got {window_returns!r}")
    step = max(1, round(1.0 / frame.interval_s))
    rows = np.arange(0, len(frame), step)
    log_mid = frame.log_mid[rows]
    spread = frame.log_half_spread if frame.log_half_spread is not None else np.full(len(frame), np.nan)
    returns = np.diff(log_mid)
    dt_s = step * frame.interval_s
    count = returns.size // window_returns
    default_var = float(polygamma(1, window_returns / 2.0)) / 4.0
    if count < min_windows:
        return VolObservationFit(float(window_returns), default_var, 0.0, 0.0, 0.0, count, 0, f"{count} vol windows (need {min_windows})")
    blocks = returns[: count * window_returns].reshape(count, window_returns)
    floor = (vol_floor_bps_per_sqrt_s * 1e-4) ** 2 * window_returns * dt_s
    sum_sq = np.maximum(np.sum(blocks * blocks, axis=1), floor)
    # x_k = ½ ln(RV_k / κ), RV the variance per second
    x = 0.5 * np.log(sum_sq / (window_returns * dt_s) / realized_var_ratio)
    # the spread over a window: the rows from its first return's start to its last return's end
    edges = rows[np.arange(count + 1) * window_returns]
    y = np.array([np.nanmean(spread[edges[k] : edges[k + 1]]) if np.any(np.isfinite(spread[edges[k] : edges[k + 1]])) else np.nan for k in range(count)])
    ok = np.isfinite(x)
    # R = ½ mean((x_k − x_{k−1})²) over adjacent windows with a steady spread
    dx = np.diff(x)
    pair_ok = ok[1:] & ok[:-1]
    dy = np.abs(np.diff(y))
    if np.any(np.isfinite(dy) & pair_ok):
        steady = np.isfinite(dy) & (dy <= np.nanmedian(dy[pair_ok]))
        pair_ok &= steady
    pairs = int(pair_ok.sum())
    if pairs < min_windows // 2:
        return VolObservationFit(float(window_returns), default_var, 0.0, 0.0, 0.0, count, pairs, f"{pairs} steady window pairs")
    noise_var = 0.5 * float(np.mean(dx[pair_ok] ** 2))
    dof = effective_dof(noise_var)
    # x̃ = x − ½ (ψ(ν/2) + ln(2/ν)): unbiased for ln σ
    unbiased = x - 0.5 * (float(digamma(dof / 2.0)) + math.log(2.0 / dof))
    both = ok & np.isfinite(y)
    n = int(both.sum())
    fit = VolObservationFit(dof, noise_var, 0.0, 0.0, 0.0, count, pairs)
    if n < min_windows:
        return dataclasses.replace(fit, why_no_spread=f"{n} windows with a spread")
    xs, ys = unbiased[both], y[both]
    var_x, var_y = float(np.var(xs)), float(np.var(ys))
    if not (var_y > 0.0 and var_x > 0.0):
        return dataclasses.replace(fit, why_no_spread=f"no variation to fit (Var(x̃) {var_x:.3g}, Var(y) {var_y:.3g})")
    cov_xy = float(np.mean((xs - xs.mean()) * (ys - ys.mean())))
    r = cov_xy / math.sqrt(var_x * var_y)
    t = r * math.sqrt((n - 2) / max(1.0 - r * r, 1e-12))
    # d = Cov(x̃, y) / Var(y),  c = mean(x̃) − d mean(y)
    d = cov_xy / var_y
    c = float(xs.mean()) - d * float(ys.mean())
    residual = float(np.var(xs - c - d * ys))
    if not (t >= 2.0 and d > 0.0):
        return dataclasses.replace(fit, why_no_spread=f"spread not a usable vol signal (t {t:.2f}, d {d:.3g})")
    # s² = Var(u) − R, the part of ln σ the spread does not predict
    noise = max(residual - noise_var, 0.1 * residual)
    slope = 1.0 / d
    # y = a + b ln σ + e with b = 1/d, a = −c/d, Var(e) = s² b²: ln σ = (y − a)/b has variance s²
    return dataclasses.replace(fit, spread_intercept=float(-c * slope), spread_slope=float(slope), spread_noise_var=float(noise * slope * slope))
