"""Interacting multiple model (IMM) filter over three regimes, as a pure step function.

Three unscented Kalman filters over ``x = [ln V, μ, ln σ]`` (:mod:`mmlab.filter.ukf`), one per
regime (QUIET, TRENDING, CRISIS, the order of :class:`~mmlab.types.Regime`), differ in their
process model: the level ln σ reverts to, the stationary spread of the drift μ and of ln σ. The
regime r is a continuous-time Markov chain: it leaves r at rate 1/T_r (T_r the mean duration)
and jumps to j with probability J[r, j], so its generator and transition matrix over Δt are

    Λ_rj = J_rj / T_r  (j ≠ r),   Λ_rr = −1 / T_r,      Π(Δt) = expm(Λ Δt)

which is right for any cycle interval. One step (Blom & Bar-Shalom 1988), with μ_i the mode
probabilities after the previous step:

    c̄_j     = Σ_i Π_ij μ_i                                    predicted mode probabilities
    μ_{i|j} = Π_ij μ_i / c̄_j                                   mixing weights
    x0_j    = Σ_i μ_{i|j} x_i
    P0_j    = Σ_i μ_{i|j} [P_i + (x_i − x0_j)(x_i − x0_j)^T]   mixed initial conditions
    (x_j, P_j, y_j, S_j) = UKF_j predict and update from (x0_j, P0_j)
    Λ_j     = N(y_j; 0, S_j)                                   mode likelihood (Cholesky of S_j)
    μ_j     ∝ Λ_j c̄_j                                          mode probabilities
    x̂ = Σ_j μ_j x_j,   P̂ = Σ_j μ_j [P_j + (x_j − x̂)(x_j − x̂)^T]    combined posterior

Our fills are evidence about ln V (Glosten–Milgrom, :func:`mmlab.filter.gm_fill_update`),
applied in each mode. Their likelihood is the same in every mode (the mixture
(1 − π) + π 1{beyond} / P(beyond) integrates to one under any prior), so fills move the
means, not the mode probabilities.

The informed fraction π is itself estimated from our fills, judged after the fact
(:mod:`mmlab.filter.fills`). A fill of our ask at ln price c, made when the prior of ln V was
N(m, s²), is judged ``informed_fraction_horizon_s`` later with y, the estimate of V at the fill
time from the ln V observations after it alone (a fixed-lag smoother that starts flat at the
fill, so neither the prior nor the fill's own update is counted twice), of variance v. Under
the informed component V_t ~ N(m, s²) truncated to V_t > c, under the other V_t ~ N(m, s²); the
ratio of the two likelihoods of y is

    L = P(V_t > c | y) / P(V_t > c),   V_t | y ~ N(m + k (y − m), (1 − k) s²),  k = s² / (s² + v)

(mirrored for a bid fill). Each judged fill multiplies the likelihood of π by π L + (1 − π), so
after n fills, with a Beta(a π₀, a (1 − π₀)) prior (π₀ worth a fills),

    ln p(π | fills) = (a π₀ − 1) ln π + (a (1 − π₀) − 1) ln(1 − π) + Σ_i ln(π L_i + 1 − π) + const

which the state holds exactly on a grid of ``INFORMED_GRID_SIZE`` values of π (one vector add
per judged fill); π̂ is the posterior mean and ``informed_fraction_std`` its standard deviation.
A fill's responsibility r = π̂ L / (π̂ L + 1 − π̂) is reported for diagnostics.
An informed fraction sent by the evaluator (``ParameterUpdates.informed_fraction``)
overrides the estimate in the updates and in the belief while the estimate keeps learning.

Change points. The evaluator's ``ParameterUpdates.changepoint_prob`` p is the posterior
probability that the regime changed within the last few seconds. A regime that has just changed
is a fresh draw from the chain, and ln σ in the new regime j is a fresh draw from its stationary
law N(m_j, s_σ²) (the level it reverts to and its stationary spread), independent of ln V and μ.
So the prior of the step is the mixture "(1 − w) what we believed + w a fresh regime", with w the
probability of a change not yet accounted for. Moment-matched, before the IMM mixing:

    μ_j    ← (1 − w) μ_j + w p̄_j                          p̄ the stationary distribution
    x_j,σ  ← (1 − w) x_j,σ + w m_j
    P_j,σσ ← (1 − w) P_j,σσ + w s_σ² + w (1 − w) (x_j,σ − m_j)²
    P_j,kσ ← (1 − w) P_j,kσ                                k = ln V, μ

(the covariance of the two-component mixture, so it stays positive semi-definite; ln V and μ,
the same in both components, keep their moments). w = 0 changes nothing, w = 1 resets the regime
probabilities to p̄ and ln σ to its stationary law in every mode. The evaluator says "within the
last few seconds", so the same change is reported on several consecutive cycles: only what is
new since the last report is applied. With p_prev the previous report (held in the state) and the
event "a change in the window" growing from one report to the next, P(new change | none before)
= (p − p_prev) / (1 − p_prev), so

    w = max(p − p_prev, 0) / (1 − p_prev)        (0 when p_prev = 1: that change was applied)

A report that falls does not undo anything; the chain's own dynamics do that.

The mid's noise. A mid that lags V errs by an amount whose variance grows with σ (about σ² τ/2
for a lag τ), and V̂, held by the other layers, does not absorb that persistent error. With
``mid_noise_intercept`` R₀ > 0 the observation from the source ``mid`` gets, in mode j,

    R_mid,j = R₀ + c σ_j²,     σ_j² = e^{2 x_j,σ} at mode j's predicted mean

in place of the variance the sensor sent (R₀ and c fitted by
:func:`mmlab.sensor.calibration.fit_mid_noise`), so the crisis mode expects a noisier mid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from mmlab.config import MID_LAYER, FilterConfig
from mmlab.filter.fills import PendingFill, gm_fill_update
from mmlab.filter.ukf import DEFAULT_WEIGHTS, FilterError, MerweWeights, ProcessParams, STATE_DIM, ukf_predict, ukf_update
from mmlab.types import Fill, MarketBelief, Observation, ParameterUpdates, Regime, Side, StateComponent, readonly

__all__ = [
    "REGIME_COUNT",
    "INFORMED_GRID",
    "INFORMED_GRID_SIZE",
    "ImmParams",
    "FilterState",
    "FilterOutput",
    "regime_generator",
    "initial_state",
    "step",
    "combine",
    "changepoint_reset",
]

REGIME_COUNT = len(Regime)
_NS_PER_S = 1e9
#: Number of points of the grid on which the posterior of the informed fraction π is held.
INFORMED_GRID_SIZE = 400
#: The grid: midpoints of INFORMED_GRID_SIZE equal cells of [0, 1).
INFORMED_GRID = readonly((np.arange(INFORMED_GRID_SIZE) + 0.5) / INFORMED_GRID_SIZE)
# |ln x| beyond which e^{ln x} is not a usable float.
_MAX_LOG = 700.0
# Floor of a mode probability inside a logarithm (an underflowed probability is 0.0).
_MIN_PROB = 1e-300
# Relative error above which the eigendecomposition of the generator is not trusted.
_EIG_TOLERANCE = 1e-10


def regime_generator(mean_duration_s: Sequence[float], jump_probs: Sequence[Sequence[float]]) -> np.ndarray:
    """The generator Λ of the regime chain: Λ_rj = J_rj / T_r off the diagonal, Λ_rr = −1 / T_r."""
    durations = np.asarray(mean_duration_s, dtype=float)
    jumps = np.asarray(jump_probs, dtype=float)
    n = durations.shape[0]
    if jumps.shape != (n, n):
        raise ValueError(f"regime jump matrix must be {n}x{n}, got shape {jumps.shape}")
    if not (np.all(np.isfinite(durations)) and np.all(durations > 0.0)):
        raise ValueError(f"regime mean durations must be finite and > 0, got {durations.tolist()}")
    if np.any(np.diag(jumps) != 0.0) or np.any(jumps < 0.0) or not np.allclose(jumps.sum(axis=1), 1.0, atol=1e-9):
        raise ValueError(f"regime jump matrix must have a zero diagonal, entries >= 0 and rows summing to 1, got {jumps.tolist()}")
    generator = jumps / durations[:, None]
    generator[np.diag_indices(n)] = -1.0 / durations
    return generator


@dataclass(frozen=True, slots=True, kw_only=True)
class ImmParams:
    """Everything :func:`step` needs besides the state; build it with :meth:`from_config`.

    Parameters
    ----------
    process : ProcessParams
        Per-regime process model, arrays of length 3 in :class:`~mmlab.types.Regime` order.
    generator_per_s : ndarray
        Λ, the regime chain's generator (3×3, 1/s).
    initial_fair_value_var : float
        Prior variance of ln V around the first observation, (ln USD)².
    informed_fraction_prior : float
        π₀, the prior informed fraction.
    informed_fraction_prior_fills : float
        a, how many judged fills the prior is worth.
    informed_fraction_horizon_s : float
        How long after a fill it is judged, seconds.
    fair_value_evidence_weight : float
        w in (0, 1]: the ln V observations' log-likelihood enters the mode probabilities times w
        (see :class:`~mmlab.config.FilterConfig`).
    mid_noise_intercept, mid_noise_vol_slope_s : float
        R₀ ((ln USD)²) and c (s) of the mid layer's noise R₀ + c σ_j² in mode j (module
        docstring, "The mid's noise"); R₀ = 0 keeps the sensor's constant.
    weights : MerweWeights
        Sigma-point weights.
    """

    process: ProcessParams
    generator_per_s: np.ndarray
    initial_fair_value_var: float
    informed_fraction_prior: float
    informed_fraction_prior_fills: float
    informed_fraction_horizon_s: float
    fair_value_evidence_weight: float = 1.0
    mid_noise_intercept: float = 0.0
    mid_noise_vol_slope_s: float = 0.0
    weights: MerweWeights = DEFAULT_WEIGHTS
    stationary_probs: np.ndarray = None  # type: ignore[assignment]  # set in __post_init__
    informed_log_prior: np.ndarray = None  # type: ignore[assignment]  # set in __post_init__
    _eigvals: np.ndarray | None = None
    _eigvecs: np.ndarray | None = None
    _eigvecs_inv: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.process.batch_shape != (REGIME_COUNT,):
            raise ValueError(f"ImmParams.process must hold {REGIME_COUNT} regimes, got batch shape {self.process.batch_shape}")
        generator = readonly(self.generator_per_s)
        if generator.shape != (REGIME_COUNT, REGIME_COUNT) or not np.allclose(generator.sum(axis=1), 0.0, atol=1e-12):
            raise ValueError(f"ImmParams.generator_per_s must be a {REGIME_COUNT}x{REGIME_COUNT} generator (rows sum to 0)")
        object.__setattr__(self, "generator_per_s", generator)
        for name, low, high in (
            ("initial_fair_value_var", 0.0, math.inf),
            ("informed_fraction_prior", -1e-300, 1.0),
            ("informed_fraction_prior_fills", 0.0, math.inf),
            ("informed_fraction_horizon_s", 0.0, math.inf),
            ("fair_value_evidence_weight", 0.0, 1.0 + 1e-12),
            ("mid_noise_intercept", -1e-300, math.inf),
            ("mid_noise_vol_slope_s", -1e-300, math.inf),
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and low < value < high):
                raise ValueError(f"ImmParams.{name} must be finite and in ({low}, {high}), got {value!r}")
        # Λ = V diag(d) V⁻¹, so Π(Δt) = V diag(e^{d Δt}) V⁻¹ costs two small products per step
        eigvals, eigvecs = np.linalg.eig(generator)
        inverse = np.linalg.inv(eigvecs)
        error = np.abs(eigvecs @ np.diag(eigvals) @ inverse - generator).max()
        if error <= _EIG_TOLERANCE * np.abs(generator).max():
            object.__setattr__(self, "_eigvals", eigvals)
            object.__setattr__(self, "_eigvecs", eigvecs)
            object.__setattr__(self, "_eigvecs_inv", inverse)
        # the stationary distribution solves p Λ = 0, Σ p = 1
        system = np.vstack((generator.T, np.ones(REGIME_COUNT)))
        stationary = np.linalg.lstsq(system, np.r_[np.zeros(REGIME_COUNT), 1.0], rcond=None)[0]
        # Beta(a π₀, a (1 − π₀)) on the grid: each cell's probability (exact even where the
        # density is infinite at π = 0), off the hot path
        from scipy.stats import beta as beta_law

        a = self.informed_fraction_prior_fills
        edges = np.linspace(0.0, 1.0, INFORMED_GRID_SIZE + 1)
        # π₀ = 0 is the limit of a vanishing first shape parameter: (almost) all mass in the first cell
        shape = max(a * self.informed_fraction_prior, 1e-6)
        cells = np.diff(beta_law.cdf(edges, shape, a * (1.0 - self.informed_fraction_prior)))
        log_prior = np.log(np.maximum(cells, 1e-300))
        object.__setattr__(self, "informed_log_prior", readonly(log_prior - log_prior.max()))
        object.__setattr__(self, "stationary_probs", readonly(np.clip(stationary, 0.0, None) / np.clip(stationary, 0.0, None).sum()))

    @classmethod
    def from_config(cls, config: FilterConfig) -> ImmParams:
        """Parameters from a :class:`~mmlab.config.FilterConfig` (see its docstring for units)."""
        vol_bps = config.vol_prior_bps_per_sqrt_s * np.asarray(config.regime_vol_multiplier, dtype=float)
        process = ProcessParams(
            drift_reversion_s=np.full(REGIME_COUNT, config.drift_reversion_s),
            drift_std_per_s=config.drift_std_per_s * np.asarray(config.regime_drift_std_multiplier, dtype=float),
            # m_r = ln(σ_r), σ_r in 1/√s
            log_vol_mean=np.log(vol_bps * 1e-4),
            log_vol_reversion_s=np.full(REGIME_COUNT, config.log_vol_reversion_s),
            log_vol_std=np.full(REGIME_COUNT, config.log_vol_std),
        )
        return cls(
            process=process,
            generator_per_s=regime_generator(config.regime_mean_duration_s, config.regime_transition),
            initial_fair_value_var=(config.initial_fair_value_std_bps * 1e-4) ** 2,
            informed_fraction_prior=config.informed_fraction_prior,
            informed_fraction_prior_fills=config.informed_fraction_prior_fills,
            informed_fraction_horizon_s=config.informed_fraction_horizon_s,
            fair_value_evidence_weight=config.fair_value_evidence_weight,
            mid_noise_intercept=config.mid_noise_intercept,
            mid_noise_vol_slope_s=config.mid_noise_vol_slope_s,
        )

    def transition_probs(self, dt_s: float) -> np.ndarray:
        """Π(Δt) = expm(Λ Δt): row r is the distribution of the regime Δt after being in r."""
        if self._eigvals is None:
            from scipy.linalg import expm  # a defective generator: rare, off the hot path

            probs = expm(self.generator_per_s * dt_s)
        else:
            probs = ((self._eigvecs * np.exp(self._eigvals * dt_s)) @ self._eigvecs_inv).real
        # rounding can leave −1e-17 where a probability is 0
        probs = np.clip(probs, 0.0, None)
        return probs / probs.sum(axis=1, keepdims=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class FilterState:
    """The IMM's state after a step; arrays are read-only.

    ``mode_means`` (3×3: regime × component), ``mode_covs`` (3×3×3) and ``mode_probs`` (3) are the
    mode-matched posteriors and the regime probabilities. ``informed_log_posterior`` is
    ln p(π | fills) (up to a constant) on :data:`INFORMED_GRID`; ``fills_judged`` is n.
    ``informed_fraction_override`` is the evaluator's π when it sent one; ``changepoint_prob`` the
    last change-point probability it sent (what has been applied already, see the module docstring).
    """

    ts_local: int
    mode_means: np.ndarray
    mode_covs: np.ndarray
    mode_probs: np.ndarray
    informed_log_posterior: np.ndarray
    fills_judged: int = 0
    pending_fills: tuple[PendingFill, ...] = ()
    informed_fraction_override: float | None = None
    changepoint_prob: float = 0.0

    @property
    def informed_fraction_estimate(self) -> float:
        """π̂, the posterior mean of π."""
        return _posterior_mean(self.informed_log_posterior)

    @property
    def informed_fraction_std(self) -> float:
        """Posterior standard deviation of π."""
        weights = _posterior_weights(self.informed_log_posterior)
        mean = float(weights @ INFORMED_GRID)
        return math.sqrt(max(float(weights @ INFORMED_GRID**2) - mean * mean, 0.0))

    @property
    def informed_fraction(self) -> float:
        """The π in use: the evaluator's override when there is one, else the estimate."""
        if self.informed_fraction_override is not None:
            return self.informed_fraction_override
        return self.informed_fraction_estimate

@dataclass(frozen=True, slots=True, kw_only=True)
class FilterOutput:
    """What one step produced besides the new state.

    ``innovation`` and ``innovation_var`` are per observation (order of the input): the
    innovation of the mode mixture, y = z − Σ_j c̄_j ẑ_j, and its predicted variance
    Σ_j c̄_j (S_j,ii + (y_j,i − y_i)²). ``mode_log_likelihoods`` are ln Λ_j (0 without
    observations). ``responsibilities`` are the r of the fills judged in this step.
    """

    belief: MarketBelief
    sources: tuple[str, ...]
    innovation: np.ndarray
    innovation_var: np.ndarray
    mode_log_likelihoods: np.ndarray
    responsibilities: tuple[float, ...] = ()

    @property
    def normalized_innovation(self) -> np.ndarray:
        """y / √S per observation; N(0, 1) when the filter's model is right."""
        return self.innovation / np.sqrt(self.innovation_var)


def combine(mode_means: np.ndarray, mode_covs: np.ndarray, mode_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x̂ = Σ_j μ_j x_j,  P̂ = Σ_j μ_j [P_j + (x_j − x̂)(x_j − x̂)^T]."""
    mean = mode_probs @ mode_means
    spread = mode_means - mean
    cov = np.einsum("j,jkl->kl", mode_probs, mode_covs) + (spread.T * mode_probs) @ spread
    return mean, cov


def initial_state(
    ts_local: int, observations: Sequence[Observation], params: ImmParams, informed_fraction_override: float | None = None
) -> FilterState | None:
    """A broad prior around the first ln V observation; None when there is none.

    Each mode starts at ln V = z, μ = 0, ln σ = its level, with the stationary spread of μ and
    ln σ and ``initial_fair_value_var`` on ln V; regime probabilities start stationary.
    """
    first = next((o for o in observations if o.component is StateComponent.LOG_FAIR_VALUE), None)
    if first is None:
        return None
    process = params.process
    means = np.zeros((REGIME_COUNT, STATE_DIM))
    means[:, 0] = first.value
    means[:, 2] = process.log_vol_mean
    covs = np.zeros((REGIME_COUNT, STATE_DIM, STATE_DIM))
    covs[:, 0, 0] = params.initial_fair_value_var
    covs[:, 1, 1] = process.drift_std_per_s**2
    covs[:, 2, 2] = process.log_vol_std**2
    return FilterState(
        ts_local=int(ts_local),
        mode_means=readonly(means),
        mode_covs=readonly(covs),
        mode_probs=readonly(params.stationary_probs),
        informed_log_posterior=params.informed_log_prior,
        informed_fraction_override=informed_fraction_override,
    )


def step(
    state: FilterState | None,
    ts_local: int,
    observations: Sequence[Observation],
    fills: Sequence[Fill],
    params: ImmParams,
    updates: ParameterUpdates | None = None,
) -> tuple[FilterState | None, FilterOutput | None]:
    """One IMM step: mix, predict to ``ts_local``, update with ``observations``, then ``fills``.

    Parameters
    ----------
    state : FilterState or None
        The previous state; None before the first ln V observation.
    ts_local : int
        Local time of the step, ns; must not go backwards.
    observations : sequence of Observation
        Stacked into one update of every mode.
    fills : sequence of Fill
        Our fills since the previous step, applied in order after the observations.
    params : ImmParams
        Model parameters.
    updates : ParameterUpdates or None
        The evaluator's last output; its ``informed_fraction`` (when not None) becomes the override,
        and its ``changepoint_prob`` mixes the belief with a fresh regime before the prediction
        (module docstring, "Change points"). None changes nothing.

    Returns
    -------
    (FilterState or None, FilterOutput or None)
        Both None while there has been no ln V observation to start from.

    Raises
    ------
    FilterError
        When time goes backwards, a covariance is not positive definite or a result is not finite.
        The input state is unchanged (it is immutable), so a caller can refuse the step.
    """
    override = state.informed_fraction_override if state is not None else None
    changepoint = state.changepoint_prob if state is not None else 0.0
    if updates is not None:
        if updates.informed_fraction is not None:
            override = float(updates.informed_fraction)
            if not 0.0 <= override < 1.0:
                raise FilterError(f"ParameterUpdates.informed_fraction must be in [0, 1), got {override!r}")
        changepoint = float(updates.changepoint_prob)
        if not 0.0 <= changepoint <= 1.0:
            raise FilterError(f"ParameterUpdates.changepoint_prob must be in [0, 1], got {updates.changepoint_prob!r}")

    if state is None:
        # the initial state is already the stationary mix: a change point adds nothing to it
        state = initial_state(ts_local, observations, params, override)
        if state is None:
            return None, None
        means, covs, predicted_probs = state.mode_means, state.mode_covs, state.mode_probs
    else:
        dt_s = (ts_local - state.ts_local) / _NS_PER_S
        if dt_s < 0.0:
            raise FilterError(f"filter time went backwards: ts_local {ts_local} < {state.ts_local}")
        means, covs, probs = state.mode_means, state.mode_covs, state.mode_probs
        # w = max(p − p_prev, 0) / (1 − p_prev): the part of the reported change not yet applied
        previous = state.changepoint_prob
        weight = max(changepoint - previous, 0.0) / (1.0 - previous) if previous < 1.0 else 0.0
        if weight > 0.0:
            means, covs, probs = changepoint_reset(means, covs, probs, weight, params)
        predicted_probs = probs
        if dt_s > 0.0:
            means, covs, predicted_probs = _mix(means, covs, probs, params.transition_probs(dt_s))
            means, covs = ukf_predict(means, covs, dt_s, params.process, params.weights)

    sources: tuple[str, ...] = ()
    innovation = innovation_var = np.empty(0)
    log_likelihoods = np.zeros(REGIME_COUNT)
    mode_probs = predicted_probs
    if observations:
        means, covs, mode_probs, log_likelihoods, innovation, innovation_var, sources = _update(
            means, covs, predicted_probs, observations, params
        )

    informed_log_posterior = state.informed_log_posterior
    pending = state.pending_fills
    responsibilities: tuple[float, ...] = ()
    if pending:
        pending, informed_log_posterior, responsibilities = _judge_fills(
            pending, state.ts_local, ts_local, observations, means, covs, mode_probs, informed_log_posterior, params
        )

    if fills:
        informed_fraction = override if override is not None else _posterior_mean(informed_log_posterior)
        means, covs, pending = _apply_fills(means, covs, mode_probs, fills, informed_fraction, pending)

    # P⁺ = P⁻ − K S K^T is symmetric in exact arithmetic; keep it so in floating point
    covs = 0.5 * (covs + np.swapaxes(covs, -1, -2))
    new_state = FilterState(
        ts_local=int(ts_local),
        mode_means=_checked(means, "mode_means", observations),
        mode_covs=_checked(covs, "mode_covs", observations),
        mode_probs=_checked(mode_probs, "mode_probs", observations),
        informed_log_posterior=informed_log_posterior,
        fills_judged=state.fills_judged + len(responsibilities),
        pending_fills=pending,
        informed_fraction_override=override,
        changepoint_prob=changepoint,
    )
    mean, cov = combine(new_state.mode_means, new_state.mode_covs, new_state.mode_probs)
    if not (abs(mean[0]) < _MAX_LOG and abs(mean[2]) < _MAX_LOG):
        raise FilterError(f"FilterState.mode_means: ln V = {mean[0]!r} or ln σ = {mean[2]!r} has no finite exponential")
    belief = MarketBelief(
        ts_local=int(ts_local),
        fair_value=math.exp(mean[0]),
        log_fair_value_var=float(cov[0, 0]),
        drift_per_s=float(mean[1]),
        drift_var=float(cov[1, 1]),
        sigma_per_sqrt_s=math.exp(mean[2]),
        log_sigma_var=float(cov[2, 2]),
        regime_probs=(float(mode_probs[0]), float(mode_probs[1]), float(mode_probs[2])),
        informed_fraction=new_state.informed_fraction,
    )
    output = FilterOutput(
        belief=belief,
        sources=sources,
        innovation=readonly(innovation),
        innovation_var=readonly(innovation_var),
        mode_log_likelihoods=readonly(log_likelihoods),
        responsibilities=responsibilities,
    )
    return new_state, output


def changepoint_reset(
    means: np.ndarray, covs: np.ndarray, probs: np.ndarray, weight: float, params: ImmParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mix the belief with a fresh regime by ``weight`` w (module docstring, "Change points").

    Returns new (mode means, mode covariances, mode probabilities); w = 0 returns them unchanged,
    w = 1 the stationary regime probabilities and ln σ ~ N(m_j, s_σ²) in every mode j.
    """
    if not 0.0 <= weight <= 1.0:
        raise FilterError(f"changepoint_reset: weight must be in [0, 1], got {weight!r}")
    keep = 1.0 - weight
    level = params.process.log_vol_mean
    spread = np.broadcast_to(params.process.log_vol_std, (REGIME_COUNT,))
    means, covs = means.copy(), covs.copy()
    gap = means[:, 2] - level
    # μ_j ← (1 − w) μ_j + w p̄_j
    probs = keep * probs + weight * params.stationary_probs
    # x_j,σ ← (1 − w) x_j,σ + w m_j
    means[:, 2] = keep * means[:, 2] + weight * level
    # P_j,σσ ← (1 − w) P_j,σσ + w s_σ² + w (1 − w)(x_j,σ − m_j)²
    variance = keep * covs[:, 2, 2] + weight * spread**2 + weight * keep * gap**2
    # P_j,kσ ← (1 − w) P_j,kσ for k ≠ σ: the fresh ln σ is independent of ln V and μ
    covs[:, 2, :] *= keep
    covs[:, :, 2] *= keep
    covs[:, 2, 2] = variance
    return means, covs, probs


def _update(
    means: np.ndarray,
    covs: np.ndarray,
    predicted_probs: np.ndarray,
    observations: Sequence[Observation],
    params: ImmParams,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """Update every mode with the stacked observations; mode probabilities from the evidence.

    Overflow inside is not warned about but caught: the caller refuses a non-finite result.
    """
    count = len(observations)
    components = np.fromiter((o.component for o in observations), dtype=np.intp, count=count)
    z = np.fromiter((o.value for o in observations), dtype=float, count=count)
    noise_var = np.fromiter((o.noise_var for o in observations), dtype=float, count=count)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        if params.mid_noise_intercept > 0.0:
            noise_var = _mid_noise(noise_var, means, observations, params)
        result = ukf_update(means, covs, z, noise_var, components, params.weights, diagonal=True)
        evidence = result.log_likelihood
        weight = params.fair_value_evidence_weight
        if weight < 1.0:
            evidence = _tempered_log_likelihood(result, components, weight)
        # μ_j ∝ Λ_j c̄_j, in logs so that a likelihood of e^{-800} does not underflow to 0 / 0
        log_probs = np.log(np.maximum(predicted_probs, _MIN_PROB)) + evidence
        log_probs -= log_probs.max()
        mode_probs = np.exp(log_probs)
        mode_probs /= mode_probs.sum()
        # innovation of the predicted mixture and its variance (diagonal of the mixture's S)
        per_mode = result.innovation
        innovation = predicted_probs @ per_mode
        innovation_var = predicted_probs @ (np.diagonal(result.innovation_cov, axis1=-2, axis2=-1) + (per_mode - innovation) ** 2)
    sources = tuple(o.source for o in observations)
    return result.x, result.P, mode_probs, result.log_likelihood, innovation, innovation_var, sources


def _mid_noise(noise_var: np.ndarray, means: np.ndarray, observations: Sequence[Observation], params: ImmParams) -> np.ndarray:
    """Per-mode noise variances (3, m): the mid layer's is R₀ + c σ_j² in mode j, the others' as sent."""
    rows = [i for i, o in enumerate(observations) if o.source == MID_LAYER and o.component is StateComponent.LOG_FAIR_VALUE]
    if not rows:
        return noise_var
    per_mode = np.tile(noise_var, (REGIME_COUNT, 1))
    # R_mid,j = R₀ + c σ_j²,  σ_j² = e^{2 x_j,σ} at mode j's predicted mean
    per_mode[:, rows] = (params.mid_noise_intercept + params.mid_noise_vol_slope_s * np.exp(2.0 * means[:, 2]))[:, None]
    return per_mode


def _tempered_log_likelihood(result, components: np.ndarray, weight: float) -> np.ndarray:
    """ln Λ_j with the ln V observations' part tempered: ln p(z_σ) + w ln p(z_V | z_σ).

    The joint ln N(y; 0, S) is the marginal of the ln σ observations plus the conditional of the
    ln V ones given them; only the conditional is multiplied by w.
    """
    vol = np.flatnonzero(components != 0)
    if vol.size == 0:
        return weight * result.log_likelihood
    # ln N(y_σ; 0, S_σσ), the marginal of the ln σ observations
    S = result.innovation_cov[..., vol[:, None], vol]
    y = result.innovation[..., vol]
    chol = np.linalg.cholesky(S)
    solved = np.linalg.solve(S, y[..., None])[..., 0]
    log_det = 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(axis=-1)
    marginal = -0.5 * (vol.size * math.log(2.0 * math.pi) + log_det + np.einsum("...i,...i->...", y, solved))
    return marginal + weight * (result.log_likelihood - marginal)


def _mix(
    means: np.ndarray, covs: np.ndarray, probs: np.ndarray, transition: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IMM interaction: mixed initial conditions (x0_j, P0_j) and predicted probabilities c̄."""
    # c̄_j = Σ_i Π_ij μ_i
    predicted = probs @ transition
    # μ_{i|j} = Π_ij μ_i / c̄_j
    mixing = transition * probs[:, None] / predicted[None, :]
    # x0_j = Σ_i μ_{i|j} x_i
    mixed_means = mixing.T @ means
    # P0_j = Σ_i μ_{i|j} [P_i + (x_i − x0_j)(x_i − x0_j)^T]
    spread = means[None, :, :] - mixed_means[:, None, :]
    mixed_covs = np.einsum("ij,ikl->jkl", mixing, covs) + np.einsum("ij,jik,jil->jkl", mixing, spread, spread)
    return mixed_means, mixed_covs, predicted


def _apply_fills(
    means: np.ndarray,
    covs: np.ndarray,
    mode_probs: np.ndarray,
    fills: Sequence[Fill],
    informed_fraction: float,
    pending: tuple[PendingFill, ...],
) -> tuple[np.ndarray, np.ndarray, tuple[PendingFill, ...]]:
    """The Glosten–Milgrom update of each mode by each fill, in order; queue fills for judging."""
    means, covs = means.copy(), covs.copy()
    queued = list(pending)
    for fill in fills:
        if not (math.isfinite(fill.price) and fill.price > 0.0):
            raise FilterError(f"Fill.price must be finite and > 0 (order {fill.order_id}), got {fill.price!r}")
        log_price = math.log(fill.price)
        mean, cov = combine(means, covs, mode_probs)
        queued.append(
            PendingFill.start(
                ts_local=int(fill.ts_local), side=fill.side, log_price=log_price, prior_mean=float(mean[0]), prior_var=float(cov[0, 0])
            )
        )
        for j in range(REGIME_COUNT):
            prior_mean, prior_var = float(means[j, 0]), float(covs[j, 0, 0])
            post_mean, post_var = gm_fill_update(prior_mean, prior_var, log_price, fill.side, informed_fraction)
            # the other components move through their regression on ln V: their law given ln V
            # is unchanged by evidence about ln V alone
            gain = covs[j, :, 0] / prior_var
            means[j] += gain * (post_mean - prior_mean)
            covs[j] -= np.outer(gain, gain) * (prior_var - post_var)
    return means, covs, tuple(queued)


def _judge_fills(
    pending: tuple[PendingFill, ...],
    ts_previous: int,
    ts_local: int,
    observations: Sequence[Observation],
    means: np.ndarray,
    covs: np.ndarray,
    mode_probs: np.ndarray,
    informed_log_posterior: np.ndarray,
    params: ImmParams,
) -> tuple[tuple[PendingFill, ...], np.ndarray, tuple[float, ...]]:
    """Advance each pending fill's smoother; judge those past the horizon into p(π | fills)."""
    mean, cov = combine(means, covs, mode_probs)
    # E[σ²] = e^{2 m + 2 s²} for ln σ ~ N(m, s²)
    sigma2_per_s = math.exp(2.0 * mean[2] + 2.0 * cov[2, 2])
    values = [o.value for o in observations if o.component is StateComponent.LOG_FAIR_VALUE]
    noise_vars = [o.noise_var for o in observations if o.component is StateComponent.LOG_FAIR_VALUE]
    dt_s = (ts_local - ts_previous) / _NS_PER_S
    horizon_ns = params.informed_fraction_horizon_s * _NS_PER_S
    kept: list[PendingFill] = []
    judged: list[float] = []
    for fill in pending:
        fill = fill.advance(dt_s, sigma2_per_s, values, noise_vars)
        if ts_local - fill.ts_local < horizon_ns or fill.observations == 0:
            kept.append(fill)
            continue
        ratio = fill.likelihood_ratio()
        # r = π̂ L / (π̂ L + 1 − π̂), before this fill's own evidence enters π̂
        estimate = _posterior_mean(informed_log_posterior)
        judged.append(estimate * ratio / (estimate * ratio + 1.0 - estimate))
        # ln p(π | fills) += ln(π L + 1 − π)
        informed_log_posterior = informed_log_posterior + np.log(INFORMED_GRID * (ratio - 1.0) + 1.0)
    if judged:
        # keep the maximum at 0 so the accumulated log-likelihood never overflows
        informed_log_posterior = readonly(informed_log_posterior - informed_log_posterior.max())
    return tuple(kept), informed_log_posterior, tuple(judged)


def _posterior_weights(log_posterior: np.ndarray) -> np.ndarray:
    weights = np.exp(log_posterior - log_posterior.max())
    return weights / weights.sum()


def _posterior_mean(log_posterior: np.ndarray) -> float:
    return float(_posterior_weights(log_posterior) @ INFORMED_GRID)


def _checked(values: np.ndarray, name: str, observations: Sequence[Observation]) -> np.ndarray:
    """Refuse a non-finite state: raise naming the field and the observations that caused it."""
    if not np.all(np.isfinite(values)):
        sources = ", ".join(f"{o.source}={o.value!r}" for o in observations) or "none"
        raise FilterError(f"FilterState.{name} would become non-finite (observations: {sources})")
    return readonly(values)
