"""A pure-numpy unscented Kalman filter for the state ``x = [ln V, μ, ln σ]``.

The functions here are the hot path of the filter stage: no classes with state, no scipy, and
every function accepts a leading batch of filters (shape ``(..., 3)`` means and ``(..., 3, 3)``
covariances, process parameters broadcastable to ``(...)``), so the three mode-matched filters of
the IMM (:mod:`mmlab.filter.imm`) run in one set of numpy calls.

Process model over an interval Δt (exact for the linear parts):

    ln V' = ln V + μ τ_μ (1 − e^{−Δt/τ_μ})            drift integrated over the interval
    μ'    = μ e^{−Δt/τ_μ}                             Ornstein–Uhlenbeck, mean 0
    ln σ' = m + (ln σ − m) e^{−Δt/τ_σ}                 Ornstein–Uhlenbeck, mean m
    Q     = diag(σ² Δt, s_μ² (1 − e^{−2Δt/τ_μ}), s_σ² (1 − e^{−2Δt/τ_σ})),   σ = e^{ln σ} at the mean

Sigma points are van der Merwe's scaled points (α = 0.1, β = 2, κ = 0, as filterpy's
``MerweScaledSigmaPoints``): with λ = α² (n + κ) − n and the lower Cholesky factor
L L^T = (n + λ) P,

    χ_0 = x,   χ_k = x + L[:, k−1],   χ_{n+k} = x − L[:, k−1]          k = 1 … n
    W^m_0 = λ / (n + λ),  W^c_0 = W^m_0 + 1 − α² + β,  W_k = 1 / (2 (n + λ))

Observations measure one component each (``H`` is a selection of components) with noise
variances R; all observations of a cycle are stacked into one update. The arithmetic follows
filterpy's ``UnscentedKalmanFilter.predict`` / ``update`` step for step (sigma points redrawn
from the current ``(x, P)`` before an update), so the two agree to rounding; see
``tests/filter/test_ukf.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mmlab.types import readonly

__all__ = [
    "STATE_DIM",
    "MerweWeights",
    "ProcessParams",
    "UkfUpdate",
    "FilterError",
    "merwe_weights",
    "sigma_points",
    "transition",
    "transition_matrices",
    "process_noise",
    "ukf_predict",
    "ukf_update",
]

#: Dimension of x = [ln V, μ, ln σ].
STATE_DIM = 3
_LOG_2PI = math.log(2.0 * math.pi)


class FilterError(ValueError):
    """The filter met a value it cannot use (non-finite, not positive definite, time reversal)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MerweWeights:
    """Weights of van der Merwe's scaled sigma points for an ``n``-dimensional state.

    ``scale`` is n + λ, the factor of P whose Cholesky factor spreads the points.
    """

    n: int
    alpha: float
    beta: float
    kappa: float
    scale: float
    mean_weights: np.ndarray
    cov_weights: np.ndarray


def merwe_weights(n: int = STATE_DIM, alpha: float = 0.1, beta: float = 2.0, kappa: float = 0.0) -> MerweWeights:
    """Sigma-point weights; the defaults are those of the filter (and of the old filterpy filter)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"merwe_weights: n must be a positive integer, got {n!r}")
    if not (math.isfinite(alpha) and alpha > 0.0):
        raise ValueError(f"merwe_weights: alpha must be finite and > 0, got {alpha!r}")
    # λ = α² (n + κ) − n
    lam = alpha**2 * (n + kappa) - n
    scale = n + lam
    if not scale > 0.0:
        raise ValueError(f"merwe_weights: n + λ must be > 0, got {scale!r} (alpha={alpha}, kappa={kappa})")
    # W_k = 1 / (2 (n + λ)) for k ≥ 1
    mean_weights = np.full(2 * n + 1, 0.5 / scale)
    cov_weights = mean_weights.copy()
    # W^m_0 = λ / (n + λ),  W^c_0 = W^m_0 + 1 − α² + β
    mean_weights[0] = lam / scale
    cov_weights[0] = lam / scale + (1.0 - alpha**2 + beta)
    return MerweWeights(
        n=n,
        alpha=float(alpha),
        beta=float(beta),
        kappa=float(kappa),
        scale=float(scale),
        mean_weights=readonly(mean_weights),
        cov_weights=readonly(cov_weights),
    )


#: The filter's sigma points: α = 0.1, β = 2, κ = 0 over the 3-dimensional state.
DEFAULT_WEIGHTS = merwe_weights()


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessParams:
    """Parameters of the process model; each a float or an array over a batch of filters.

    Values are stored as read-only float arrays (0-d for a single filter), so the hot path never
    converts them.

    Parameters
    ----------
    drift_reversion_s : float or ndarray
        τ_μ, the Ornstein–Uhlenbeck reversion time of the drift μ, seconds.
    drift_std_per_s : float or ndarray
        s_μ, the stationary standard deviation of μ, 1/s.
    log_vol_mean : float or ndarray
        m, the level ln σ reverts to, ln(1/√s) (``ln(1e-4)`` for 1 bps/√s).
    log_vol_reversion_s : float or ndarray
        τ_σ, the reversion time of ln σ, seconds.
    log_vol_std : float or ndarray
        s_σ, the stationary standard deviation of ln σ (dimensionless).
    """

    drift_reversion_s: np.ndarray
    drift_std_per_s: np.ndarray
    log_vol_mean: np.ndarray
    log_vol_reversion_s: np.ndarray
    log_vol_std: np.ndarray

    def __post_init__(self) -> None:
        for name in _PROCESS_FIELDS:
            value = np.array(getattr(self, name), dtype=float)
            if value.ndim > 1 or not np.all(np.isfinite(value)):
                raise ValueError(f"ProcessParams.{name} must be a finite number or 1-d array, got {getattr(self, name)!r}")
            if name != "log_vol_mean" and not np.all(value > 0.0):
                raise ValueError(f"ProcessParams.{name} must be > 0, got {getattr(self, name)!r}")
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return np.broadcast_shapes(*(getattr(self, name).shape for name in _PROCESS_FIELDS))


_PROCESS_FIELDS = ("drift_reversion_s", "drift_std_per_s", "log_vol_mean", "log_vol_reversion_s", "log_vol_std")


@dataclass(frozen=True, slots=True, kw_only=True)
class UkfUpdate:
    """Result of :func:`ukf_update` (leading batch dimensions as the inputs').

    ``innovation`` is y = z − ẑ, ``innovation_cov`` its predicted covariance S, and
    ``log_likelihood`` ln N(y; 0, S), the evidence the observations give this filter.
    """

    x: np.ndarray
    P: np.ndarray
    innovation: np.ndarray
    innovation_cov: np.ndarray
    log_likelihood: np.ndarray


def _cholesky(matrix: np.ndarray, what: str) -> np.ndarray:
    try:
        return np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        raise FilterError(f"{what} is not positive definite: {np.round(matrix, 300).tolist()}") from None


def sigma_points(x: np.ndarray, P: np.ndarray, weights: MerweWeights = DEFAULT_WEIGHTS) -> np.ndarray:
    """The 2n + 1 sigma points of ``(x, P)``, shape ``(..., 2n + 1, n)``."""
    # L L^T = (n + λ) P
    factor = _cholesky(weights.scale * P, "the state covariance P")
    # χ_0 = x, χ_k = x + L[:, k−1], χ_{n+k} = x − L[:, k−1]: the columns of L are the offsets
    columns = np.swapaxes(factor, -1, -2)
    center = x[..., None, :]
    return np.concatenate((center, center + columns, center - columns), axis=-2)


def transition_matrices(dt_s: float, params: ProcessParams) -> tuple[np.ndarray, np.ndarray]:
    """The process model over ``dt_s`` as f(x) = F x + b; F ``(..., 3, 3)``, b ``(..., 3)``.

    The model is affine in x, so this is f exactly, not a linearisation.
    """
    shape = params.batch_shape
    drift_decay = np.exp(-dt_s / params.drift_reversion_s)
    vol_decay = np.exp(-dt_s / params.log_vol_reversion_s)
    F = np.zeros(shape + (STATE_DIM, STATE_DIM))
    b = np.zeros(shape + (STATE_DIM,))
    # ln V' = ln V + μ τ_μ (1 − e^{−Δt/τ_μ})
    F[..., 0, 0] = 1.0
    F[..., 0, 1] = params.drift_reversion_s * -np.expm1(-dt_s / params.drift_reversion_s)
    # μ' = μ e^{−Δt/τ_μ}
    F[..., 1, 1] = drift_decay
    # ln σ' = m + (ln σ − m) e^{−Δt/τ_σ} = e^{−Δt/τ_σ} ln σ + m (1 − e^{−Δt/τ_σ})
    F[..., 2, 2] = vol_decay
    b[..., 2] = params.log_vol_mean * (1.0 - vol_decay)
    return F, b


def transition(points: np.ndarray, dt_s: float, params: ProcessParams) -> np.ndarray:
    """f(x, Δt) applied to points ``(..., k, 3)``; params broadcast over the batch ``...``."""
    F, b = transition_matrices(dt_s, params)
    return points @ np.swapaxes(F, -1, -2) + b[..., None, :]


def process_noise(x: np.ndarray, dt_s: float, params: ProcessParams) -> np.ndarray:
    """Q over Δt for filters with means ``x`` ``(..., 3)``; shape ``(..., 3, 3)``."""
    Q = np.zeros(x.shape[:-1] + (STATE_DIM, STATE_DIM))
    # σ² Δt with σ = e^{ln σ} at the mean
    Q[..., 0, 0] = np.exp(2.0 * x[..., 2]) * dt_s
    # s_μ² (1 − e^{−2Δt/τ_μ})
    Q[..., 1, 1] = params.drift_std_per_s**2 * -np.expm1(-2.0 * dt_s / params.drift_reversion_s)
    # s_σ² (1 − e^{−2Δt/τ_σ})
    Q[..., 2, 2] = params.log_vol_std**2 * -np.expm1(-2.0 * dt_s / params.log_vol_reversion_s)
    return Q


def ukf_predict(
    x: np.ndarray, P: np.ndarray, dt_s: float, params: ProcessParams, weights: MerweWeights = DEFAULT_WEIGHTS
) -> tuple[np.ndarray, np.ndarray]:
    """Predict ``(x, P)`` forward by ``dt_s`` seconds (filterpy's ``predict``).

    Q is evaluated at the mean before the step, as the filterpy filter did.
    """
    Q = process_noise(x, dt_s, params)
    # χ_f = f(χ, Δt)
    propagated = transition(sigma_points(x, P, weights), dt_s, params)
    # x⁻ = Σ W^m_k χ_f,k
    x_prior = weights.mean_weights @ propagated
    # P⁻ = Σ W^c_k (χ_f,k − x⁻)(χ_f,k − x⁻)^T + Q
    deviations = propagated - x_prior[..., None, :]
    P_prior = np.swapaxes(deviations * weights.cov_weights[:, None], -1, -2) @ deviations
    P_prior += Q
    return x_prior, P_prior


def ukf_update(
    x: np.ndarray,
    P: np.ndarray,
    z: np.ndarray,
    R: np.ndarray,
    components: np.ndarray,
    weights: MerweWeights = DEFAULT_WEIGHTS,
    *,
    diagonal: bool | None = None,
) -> UkfUpdate:
    """Update ``(x, P)`` with observations ``z`` of the state components ``components``.

    Parameters
    ----------
    x, P : ndarray
        Prior means ``(..., 3)`` and covariances ``(..., 3, 3)``.
    z : ndarray
        Observations, shape ``(m,)`` (shared by every filter of the batch).
    R : ndarray
        Noise: variances ``(m,)`` (independent observations), variances per filter of the batch
        ``(..., m)`` (with ``diagonal=True``), or a covariance ``(m, m)``.
    components : ndarray of int
        Which component of x each observation measures (``h(x) = x[components]``).
    weights : MerweWeights
        Sigma-point weights.
    diagonal : bool, optional
        Whether R holds variances (its last axis) rather than a covariance; default ``R.ndim == 1``.

    Returns
    -------
    UkfUpdate
        Posterior, innovation y = z − ẑ, its covariance S and ln N(y; 0, S).
    """
    points = sigma_points(x, P, weights)
    # χ_h = h(χ) = χ[components]
    observed = points[..., components]
    # ẑ = Σ W^m_k χ_h,k
    z_pred = weights.mean_weights @ observed
    dz = observed - z_pred[..., None, :]
    weighted_dz = dz * weights.cov_weights[:, None]
    weighted_dz_t = np.swapaxes(weighted_dz, -1, -2)
    # S = Σ W^c_k (χ_h,k − ẑ)(χ_h,k − ẑ)^T + R
    S = weighted_dz_t @ dz
    if diagonal if diagonal is not None else R.ndim == 1:
        index = np.arange(R.shape[-1])
        S[..., index, index] += R
    else:
        S += R
    # P_zx = Σ W^c_k (χ_h,k − ẑ)(χ_k − x)^T  (the transpose of the cross covariance P_xz)
    cross_t = weighted_dz_t @ (points - x[..., None, :])
    # y = z − ẑ
    innovation = z - z_pred
    chol = _cholesky(S, "the innovation covariance S")
    # [K^T | S⁻¹ y] from one solve against S
    solved = np.linalg.solve(S, np.concatenate((cross_t, innovation[..., :, None]), axis=-1))
    gain_t = solved[..., :-1]
    # x⁺ = x + K y = x + (K^T)^T y
    x_post = x + (innovation[..., None, :] @ gain_t)[..., 0, :]
    # P⁺ = P − K S K^T, and K S = P_xz
    P_post = P - np.swapaxes(cross_t, -1, -2) @ gain_t
    # ln N(y; 0, S) = −½ (m ln 2π + ln|S| + y^T S⁻¹ y),  ln|S| = 2 Σ ln diag(chol S)
    mahalanobis = (innovation[..., None, :] @ solved[..., -1:])[..., 0, 0]
    log_det = 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(axis=-1)
    log_likelihood = -0.5 * (z.shape[-1] * _LOG_2PI + log_det + mahalanobis)
    return UkfUpdate(x=x_post, P=P_post, innovation=innovation, innovation_cov=S, log_likelihood=log_likelihood)
