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
    """

    ts_local: np.ndarray
    log_mid: np.ndarray
    columns: dict[str, np.ndarray]
    interval_s: float

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
    ts, log_mid, values = [], [], [[] for _ in feats]
    for update in updates:
        for feature in feats:
            feature.update(update)
        ts.append(update.ts_local)
        book = update.book
        mid = math.nan
        if book is not None and book.bid_px.size and book.ask_px.size:
            bid, ask = float(book.bid_px[0]), float(book.ask_px[0])
            if 0.0 < bid < ask < math.inf:
                mid = 0.5 * (bid + ask)
        log_mid.append(math.log(mid) if mid == mid else math.nan)
        for column, feature in zip(values, feats):
            column.append(feature.value)
    return FeatureFrame(
        ts_local=np.array(ts, dtype=np.int64),
        log_mid=np.array(log_mid, dtype=np.float64),
        columns={name: np.array(column, dtype=np.float64) for name, column in zip(names, values)},
        interval_s=float(interval_s),
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
        realized_var_ratio=ratio if ratio > 0.0 else 1.0,
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
