"""Filter: a Bayesian posterior over ``x = [ln V, μ, ln σ]`` from the sensor's observations.

Process model over an interval Δt (exact for the linear parts):

    ln V' = ln V + μ τ_μ (1 − e^{−Δt/τ_μ})            drift integrated over the interval
    μ'    = μ e^{−Δt/τ_μ}                             Ornstein–Uhlenbeck, mean 0
    ln σ' = m + (ln σ − m) e^{−Δt/τ_σ}                 Ornstein–Uhlenbeck, mean m = ln σ_prior
    Q     = diag(σ² Δt, s_μ² (1 − e^{−2Δt/τ_μ}), s_σ² (1 − e^{−2Δt/τ_σ}))

with σ = e^{ln σ}, so the diffusion of ln V is itself estimated; that non-linearity is why this is
an unscented Kalman filter (filterpy's ``UnscentedKalmanFilter`` with Merwe sigma points).
Observations each measure one component with their own noise variance and are stacked into one
update per cycle.

Our own fills are evidence about V (Glosten–Milgrom). When our ask at price a is lifted, the taker
was informed with probability π and then knew ln V > ln a; otherwise the fill says nothing. The
posterior of ln V is the mixture

    p(x | fill) ∝ N(x; m, s²) · [(1 − π) + π · 1{x > ln a} / P(x > ln a)]

whose first two moments are matched by a Gaussian (see :func:`gm_fill_update`); the other state
components move through their covariance with ln V. The size of the shift follows from π and the
current uncertainty s, not from a tuned constant.
"""

from __future__ import annotations

import math
from typing import Protocol, Sequence

import numpy as np
from filterpy.kalman import MerweScaledSigmaPoints, UnscentedKalmanFilter
from scipy.special import erfc

from mmlab.config import FilterConfig
from mmlab.types import Fill, MarketBelief, Observation, ParameterUpdates, Side, StateComponent

__all__ = ["Filter", "LatentStateFilter", "gm_fill_update"]

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class Filter(Protocol):
    def step(
        self,
        ts_local: int,
        observations: Sequence[Observation],
        fills: Sequence[Fill],
        updates: ParameterUpdates | None,
    ) -> MarketBelief | None:
        """Advance to ``ts_local``, absorb observations and fills; None until initialised."""
        ...


def gm_fill_update(
    mean: float, var: float, log_price: float, side: Side, informed_fraction: float
) -> tuple[float, float]:
    """Moment-matched posterior of ln V after our order on ``side`` was filled at ``log_price``.

    ``side`` is OUR side: a filled SELL (our ask lifted) says an informed taker saw ln V above
    the price; a filled BUY (our bid hit) says ln V below it.

    Returns
    -------
    mean, var : float
        Mean and variance of the Gaussian that matches the mixture posterior.
    """
    if not 0.0 <= informed_fraction < 1.0:
        raise ValueError(f"informed_fraction must be in [0, 1), got {informed_fraction}")
    std = math.sqrt(var)
    # Work on the side where the truncation is x > c with c standardised; a bid fill mirrors x.
    sign = 1.0 if side is Side.SELL else -1.0
    c = sign * (log_price - mean) / std
    # tail = P(x beyond the price); the informed component is N truncated to that tail
    tail = 0.5 * erfc(c / _SQRT2)
    if tail < 1e-300:
        # The prior says V essentially cannot be beyond our price: an informed taker would not
        # have traded, so the fill is (1 - π)-probable noise and carries no usable information.
        return mean, var
    # inverse Mills ratio λ = φ(c) / (1 − Φ(c))
    mills = _INV_SQRT_2PI * math.exp(-0.5 * c * c) / tail
    truncated_mean = mills  # E[u | u > c] for u ~ N(0, 1)
    truncated_var = 1.0 + c * mills - mills * mills  # Var[u | u > c]
    # Mixture weights: (1 − π) for the uninformed fill, π for the informed one (both normalised).
    w_informed = informed_fraction
    w_noise = 1.0 - informed_fraction
    # law of total expectation / variance on the standardised scale
    mixture_mean = w_informed * truncated_mean
    mixture_second = w_noise * 1.0 + w_informed * (truncated_var + truncated_mean**2)
    mixture_var = mixture_second - mixture_mean**2
    return mean + sign * std * mixture_mean, var * mixture_var


class LatentStateFilter:
    """UKF over ``[ln V, μ, ln σ]`` with Glosten–Milgrom fill updates."""

    def __init__(self, config: FilterConfig | None = None) -> None:
        self.config = config or FilterConfig()
        self.informed_fraction = self.config.informed_fraction_prior
        points = MerweScaledSigmaPoints(n=3, alpha=1e-1, beta=2.0, kappa=0.0)
        self._ukf = UnscentedKalmanFilter(dim_x=3, dim_z=1, dt=0.1, hx=_observe_nothing, fx=self._transition, points=points)
        self._ts: int | None = None
        self.last_innovations: tuple[tuple[str, float], ...] = ()

    @property
    def initialised(self) -> bool:
        return self._ts is not None

    def step(
        self,
        ts_local: int,
        observations: Sequence[Observation],
        fills: Sequence[Fill],
        updates: ParameterUpdates | None = None,
    ) -> MarketBelief | None:
        if updates is not None and updates.informed_fraction is not None:
            self.informed_fraction = updates.informed_fraction
        if not self.initialised:
            if not self._initialise(ts_local, observations):
                return None
        else:
            self._predict(ts_local)
        self._update(observations)
        for fill in fills:
            self._update_fill(fill)
        return self.belief()

    def belief(self) -> MarketBelief:
        x, P = self._ukf.x, self._ukf.P
        return MarketBelief(
            ts_local=int(self._ts),
            fair_value=math.exp(x[0]),
            log_fair_value_var=float(P[0, 0]),
            drift_per_s=float(x[1]),
            drift_var=float(P[1, 1]),
            sigma_per_sqrt_s=math.exp(x[2]),
            log_sigma_var=float(P[2, 2]),
            informed_fraction=self.informed_fraction,
        )

    # -- internals -------------------------------------------------------------------------

    def _initialise(self, ts_local: int, observations: Sequence[Observation]) -> bool:
        first = next((o for o in observations if o.component is StateComponent.LOG_FAIR_VALUE), None)
        if first is None:
            return False
        cfg = self.config
        self._ukf.x = np.array([first.value, 0.0, math.log(cfg.vol_prior_bps_per_sqrt_s * 1e-4)])
        self._ukf.P = np.diag(
            [(cfg.initial_fair_value_std_bps * 1e-4) ** 2, cfg.drift_std_per_s**2, cfg.log_vol_std**2]
        )
        self._ts = ts_local
        return True

    def _transition(self, x: np.ndarray, dt: float) -> np.ndarray:
        cfg = self.config
        drift_decay = math.exp(-dt / cfg.drift_reversion_s)
        vol_decay = math.exp(-dt / cfg.log_vol_reversion_s)
        log_vol_mean = math.log(cfg.vol_prior_bps_per_sqrt_s * 1e-4)
        return np.array(
            [
                # ln V' = ln V + μ τ_μ (1 − e^{−Δt/τ_μ})
                x[0] + x[1] * cfg.drift_reversion_s * (1.0 - drift_decay),
                # μ' = μ e^{−Δt/τ_μ}
                x[1] * drift_decay,
                # ln σ' = m + (ln σ − m) e^{−Δt/τ_σ}
                log_vol_mean + (x[2] - log_vol_mean) * vol_decay,
            ]
        )

    def _predict(self, ts_local: int) -> None:
        dt = (ts_local - self._ts) / 1e9
        if dt < 0:
            raise ValueError(f"filter time went backwards: {ts_local} < {self._ts}")
        self._ts = ts_local
        if dt == 0.0:
            return
        cfg = self.config
        sigma2 = math.exp(2.0 * self._ukf.x[2])
        # Q = diag(σ² Δt, s_μ² (1 − e^{−2Δt/τ_μ}), s_σ² (1 − e^{−2Δt/τ_σ}))
        self._ukf.Q = np.diag(
            [
                sigma2 * dt,
                cfg.drift_std_per_s**2 * (1.0 - math.exp(-2.0 * dt / cfg.drift_reversion_s)),
                cfg.log_vol_std**2 * (1.0 - math.exp(-2.0 * dt / cfg.log_vol_reversion_s)),
            ]
        )
        self._ukf.predict(dt=dt)

    def _update(self, observations: Sequence[Observation]) -> None:
        if not observations:
            self.last_innovations = ()
            return
        components = np.fromiter((int(o.component) for o in observations), dtype=np.intp)
        z = np.fromiter((o.value for o in observations), dtype=float)
        R = np.diag(np.fromiter((o.noise_var for o in observations), dtype=float))
        self._ukf.update(z, R=R, hx=_select, components=components)
        self.last_innovations = tuple((o.source, float(y)) for o, y in zip(observations, self._ukf.y))

    def _update_fill(self, fill: Fill) -> None:
        x, P = self._ukf.x, self._ukf.P
        mean, var = float(x[0]), float(P[0, 0])
        new_mean, new_var = gm_fill_update(mean, var, math.log(fill.price), fill.side, self.informed_fraction)
        # Move the other components through their regression on ln V (their conditional given
        # ln V is unchanged by evidence about ln V alone).
        gain = P[:, 0] / var
        self._ukf.x = x + gain * (new_mean - mean)
        self._ukf.P = P - np.outer(gain, gain) * (var - new_var)


def _select(x: np.ndarray, components: np.ndarray) -> np.ndarray:
    return x[components]


def _observe_nothing(x: np.ndarray) -> np.ndarray:
    raise RuntimeError("the filter always passes its measurement function per update")
