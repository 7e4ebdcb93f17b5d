"""Buy/sell Hawkes intensities of market orders: exact maximum likelihood and an online filter.

Model
-----
Aggressor events (:mod:`mmlab.sensor.flow`; one event per taker order) of side i ∈ {buy, sell}
arrive with intensities

    λ_i(t) = μ_i + Σ_j Σ_{t_l^j < t} α_ij · β · exp(−β (t − t_l^j))

μ_i the baseline rates (1/s), α_ij the branching ratios (the expected number of side-i events one
side-j event triggers), β the decay (1/s). This is exactly the parametrization of
:mod:`mmlab.data.synth` (``hawkes_baseline_per_s``, ``hawkes_branching[i][j]``,
``hawkes_decay_per_s``). The process is stationary when the spectral radius of A = (α_ij) is
below one; its mean rates are then Λ = (I − A)⁻¹ μ.

Likelihood
----------
With S_j(t) = Σ_{t_l^j < t} exp(−β (t − t_l^j)) (strictly earlier events: simultaneous events do not
excite each other), on a window [0, T]:

    ln L = Σ_k ln λ_{i_k}(t_k) − Σ_i Λ_i(T),    Λ_i(T) = μ_i T + Σ_j α_ij Σ_{l∈j} (1 − exp(−β (T − t_l)))

S_j obeys S_j(t_k) = exp(−β (t_k − t_{k−1})) (S_j(t_{k−1}) + [i_{k−1} = j]), an O(n) recursion. Here it
is evaluated without a Python loop: times are cut into blocks of β-length ``_BLOCK`` (30); inside
a block the sum is a cumulative sum of exp(β τ_l) (τ measured from the block's start, so nothing
overflows), and each block inherits the decayed sums of the three blocks before it (older ones
are below exp(−90) and dropped). The gradient and the observed information (the negative
Hessian) are analytic, from the same sums weighted by the lags (t_k − t_l) and (t_k − t_l)²:

    ∂λ/∂μ_i = [i_k = i]    ∂λ/∂α_ij = [i_k = i] β S_j    ∂λ/∂β = Σ_j α_{i_k j} (S_j − β D_j)
    ∂²λ/∂α_ij∂β = [i_k = i] (S_j − β D_j)                ∂²λ/∂β² = Σ_j α_{i_k j} (β E_j − 2 D_j)

with D_j = Σ (t − t_l) e^{−β(t−t_l)} and E_j = Σ (t − t_l)² e^{−β(t−t_l)}. The fit maximizes ln L
over (μ, α, ln β) with L-BFGS-B and bounds μ > 0, α ≥ 0, from several starting decays; standard
errors are the square roots of the diagonal of the inverse observed information (over the
parameters not at a bound; a parameter at its bound gets NaN).

Goodness of fit (time-rescaling theorem)
----------------------------------------
If the model is right, the compensator increments between consecutive side-i events,
Λ_i(t_k^i) − Λ_i(t_{k−1}^i) with Λ_i(t) = μ_i t + Σ_j α_ij (N_j(t⁻) − S_j(t)), are i.i.d. Exp(1). The fit
reports the Kolmogorov–Smirnov statistic and p-value of all increments against Exp(1) (and per
side).

Online intensities
------------------
:class:`HawkesIntensity` keeps the excitation x_i = λ_i − μ_i at the last event and updates it in
O(1) per event: x ← x · exp(−β Δt) for the exchange time Δt since the previous event, then
x_i += α_{i, side} β. Between events the value decays on the local clock: at an update received
at local time t the intensity is μ_i + x_i · exp(−β (t − t_last)), t_last the local time the last
event was received (the feed latency cancels out).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy import optimize, stats

from mmlab.data.tape import Tape
from mmlab.sensor.flow import PrintFeatureMixin, PrintFilter, TradeEvents, trade_events
from mmlab.types import VenueUpdate
from mmlab.units import NS_PER_S

__all__ = [
    "HawkesParams",
    "HawkesFit",
    "PARAM_NAMES",
    "hawkes_loglik",
    "fit_hawkes",
    "fit_hawkes_tape",
    "hawkes_intensities",
    "compensator_increments",
    "simulate_hawkes",
    "HawkesIntensity",
]

#: names of the parameter vector θ = (μ_buy, μ_sell, α_bb, α_bs, α_sb, α_ss, β); α_bs is the
#: effect of a sell on the buy intensity
PARAM_NAMES: tuple[str, ...] = (
    "baseline_per_s.buy",
    "baseline_per_s.sell",
    "branching.buy_from_buy",
    "branching.buy_from_sell",
    "branching.sell_from_buy",
    "branching.sell_from_sell",
    "decay_per_s",
)

# β-length of a block of the vectorised recursion, and the blocks a block inherits from
_BLOCK = 30.0
_CARRY_BLOCKS = 3
_MIN_BASELINE_PER_S = 1e-9
_LOG_DECAY_BOUNDS = (math.log(1e-4), math.log(1e6))


@dataclass(frozen=True, slots=True, kw_only=True)
class HawkesParams:
    """Parameters of the bivariate Hawkes process (module docstring); index 0 buy, 1 sell.

    ``branching[i][j]`` is α_ij, the expected number of side-i events a side-j event triggers.
    """

    baseline_per_s: tuple[float, float]
    branching: tuple[tuple[float, float], tuple[float, float]]
    decay_per_s: float

    def __post_init__(self) -> None:
        base = tuple(float(x) for x in self.baseline_per_s)
        branch = tuple(tuple(float(x) for x in row) for row in self.branching)
        if len(base) != 2 or len(branch) != 2 or any(len(row) != 2 for row in branch):
            raise ValueError("HawkesParams: baseline_per_s must have 2 entries and branching must be 2x2")
        for i, value in enumerate(base):
            if not (0.0 <= value < math.inf):
                raise ValueError(f"HawkesParams.baseline_per_s[{i}] must be finite and >= 0, got {value!r}")
        for i, row in enumerate(branch):
            for j, value in enumerate(row):
                if not (0.0 <= value < math.inf):
                    raise ValueError(f"HawkesParams.branching[{i}][{j}] must be finite and >= 0, got {value!r}")
        if not (0.0 < float(self.decay_per_s) < math.inf):
            raise ValueError(f"HawkesParams.decay_per_s must be finite and > 0, got {self.decay_per_s!r}")
        object.__setattr__(self, "baseline_per_s", base)
        object.__setattr__(self, "branching", branch)
        object.__setattr__(self, "decay_per_s", float(self.decay_per_s))

    @classmethod
    def from_vector(cls, theta: Sequence[float]) -> "HawkesParams":
        """From θ = (μ_b, μ_s, α_bb, α_bs, α_sb, α_ss, β) (:data:`PARAM_NAMES`)."""
        t = [float(x) for x in theta]
        if len(t) != 7:
            raise ValueError(f"HawkesParams.from_vector: expected 7 values, got {len(t)}")
        return cls(baseline_per_s=(t[0], t[1]), branching=((t[2], t[3]), (t[4], t[5])), decay_per_s=t[6])

    def to_vector(self) -> np.ndarray:
        (a, b), (c, d) = self.branching
        return np.array([*self.baseline_per_s, a, b, c, d, self.decay_per_s])

    def to_dict(self) -> dict[str, float]:
        return dict(zip(PARAM_NAMES, (float(x) for x in self.to_vector())))

    @property
    def spectral_radius(self) -> float:
        """Largest |eigenvalue| of A; below one for a stationary process."""
        return float(np.max(np.abs(np.linalg.eigvals(np.array(self.branching)))))

    @property
    def stationary_rate_per_s(self) -> tuple[float, float]:
        """Mean rates Λ = (I − A)⁻¹ μ (inf when not stationary)."""
        if self.spectral_radius >= 1.0:
            return (math.inf, math.inf)
        rate = np.linalg.solve(np.eye(2) - np.array(self.branching), np.array(self.baseline_per_s))
        return (float(rate[0]), float(rate[1]))


# --------------------------------------------------------------------------------------------
# Vectorised recursion
# --------------------------------------------------------------------------------------------


def _kernel_sums(t: np.ndarray, weight: np.ndarray, beta: float, order: int) -> list[np.ndarray]:
    """``[S, D, E][:order + 1]`` at each event: Σ over strictly earlier events l of
    ``weight_l · (t_k − t_l)^m · exp(−β (t_k − t_l))`` for m = 0, 1, 2. ``t`` sorted (s)."""
    n = t.size
    if n == 0:
        return [np.empty(0) for _ in range(order + 1)]
    # block g holds times with β (t − t_0) in [g B, (g + 1) B)
    grid = np.floor((t - t[0]) * beta / _BLOCK).astype(np.int64)
    new_block = np.r_[True, grid[1:] != grid[:-1]]
    starts = np.flatnonzero(new_block)
    block_of = np.cumsum(new_block) - 1
    block_grid = grid[starts]
    block_t0 = t[0] + block_grid * (_BLOCK / beta)
    tau = t - block_t0[block_of]
    x = weight * np.exp(beta * tau)
    # exclusive prefix sums inside each block, at the first index of each group of equal times
    # (strictly earlier events only)
    first_equal = np.searchsorted(t, t, "left")
    moments = [x, tau * x, tau * tau * x][: order + 1]
    prefix = [_segment_prefix(m, starts, block_of, first_equal) for m in moments]
    # block totals, referred to each block's start
    totals = [np.add.reduceat(m, starts) for m in moments]
    nb = starts.size
    carry = [np.zeros(nb) for _ in range(order + 1)]
    for back in range(1, _CARRY_BLOCKS + 1):
        if back >= nb:
            break
        src = np.arange(nb - back)
        dst = src + back
        # Δ = start of the receiving block − start of the source block
        delta = (block_grid[dst] - block_grid[src]) * (_BLOCK / beta)
        decay = np.exp(-beta * delta)
        s0 = totals[0][src]
        carry[0][dst] += decay * s0
        if order >= 1:
            s1 = totals[1][src]
            # Σ (Δ + (−τ_l)) … : lags to the new start are Δ − τ_l
            carry[1][dst] += decay * (delta * s0 - s1)
        if order >= 2:
            s2 = totals[2][src]
            carry[2][dst] += decay * (delta * delta * s0 - 2.0 * delta * s1 + s2)
    out = []
    decay_in = np.exp(-beta * tau)
    c0 = carry[0][block_of]
    S = decay_in * (c0 + prefix[0])
    out.append(S)
    if order >= 1:
        c1 = carry[1][block_of]
        # D = e^{−βτ}[(τ C0 + C1)_carried + τ P0 − P1]
        D = decay_in * (tau * c0 + c1 + tau * prefix[0] - prefix[1])
        out.append(np.maximum(D, 0.0))
    if order >= 2:
        c2 = carry[2][block_of]
        E = decay_in * (tau * tau * c0 + 2.0 * tau * c1 + c2 + tau * tau * prefix[0] - 2.0 * tau * prefix[1] + prefix[2])
        out.append(np.maximum(E, 0.0))
    return out


def _segment_prefix(values: np.ndarray, starts: np.ndarray, segment_of: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Σ of ``values`` from the start of each index's segment up to (excluding) index ``at``.

    Each segment is summed on its own: a global cumulative sum would carry the earlier segments'
    (much larger) totals and lose the small terms to rounding.
    """
    n = values.size
    lengths = np.diff(np.append(starts, n))
    width = int(lengths.max())
    position = np.arange(n) - starts[segment_of]
    if starts.size * (width + 1) <= max(4 * n, 1 << 20):
        table = np.zeros((starts.size, width + 1))
        table[segment_of, position + 1] = values
        np.cumsum(table, axis=1, out=table)
        return table[segment_of, at - starts[segment_of]]
    out = np.empty(n)
    for s, length in zip(starts, lengths):  # a few huge segments among many small ones
        c = np.concatenate(([0.0], np.cumsum(values[s : s + length])))
        out[s : s + length] = c[at[s : s + length] - s]
    return out


def _prepare(times_s: np.ndarray, sides: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(times_s, dtype=np.float64)
    s = np.asarray(sides)
    if t.ndim != 1 or s.shape != t.shape:
        raise ValueError(f"hawkes: times_s and sides must be 1-d of equal length, got {t.shape} and {s.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError(f"hawkes: times_s has a non-finite value at index {int(np.flatnonzero(~np.isfinite(t))[0])}")
    if t.size > 1 and np.any(np.diff(t) < 0.0):
        raise ValueError(f"hawkes: times_s must be sorted; index {int(np.flatnonzero(np.diff(t) < 0)[0]) + 1} goes back")
    if not np.all((s == 1) | (s == -1)):
        raise ValueError(f"hawkes: sides must be +1 (buy) or -1 (sell); index {int(np.flatnonzero((s != 1) & (s != -1))[0])} is {s[(s != 1) & (s != -1)][0]!r}")
    # component index: 0 buy, 1 sell
    return t, (s < 0).astype(np.int64)


def hawkes_loglik(
    params: HawkesParams | Sequence[float],
    times_s: np.ndarray,
    sides: np.ndarray,
    *,
    start_s: float | None = None,
    end_s: float | None = None,
    derivatives: int = 0,
) -> float | tuple:
    """Exact log-likelihood of events on ``[start_s, end_s]`` (module docstring).

    Parameters
    ----------
    params : HawkesParams or sequence
        θ in :data:`PARAM_NAMES` order when a sequence.
    times_s : np.ndarray
        Sorted event times, s.
    sides : np.ndarray
        +1 buy, −1 sell per event.
    start_s, end_s : float, optional
        The observation window; default the first and last event times.
    derivatives : {0, 1, 2}
        Also return the gradient (1) and the Hessian (2) with respect to θ.

    Returns
    -------
    float, or (float, gradient) or (float, gradient, Hessian)
    """
    theta = params.to_vector() if isinstance(params, HawkesParams) else np.asarray(params, dtype=np.float64)
    t, comp = _prepare(times_s, sides)
    return _loglik(theta, t, comp, _window(t, start_s, end_s), derivatives)


def _window(t: np.ndarray, start_s: float | None, end_s: float | None) -> tuple[float, float]:
    start = float(t[0]) if start_s is None else float(start_s)
    end = float(t[-1]) if end_s is None else float(end_s)
    if t.size and (t[0] < start or t[-1] > end):
        raise ValueError(f"hawkes: events lie outside the window [{start}, {end}]")
    if not end > start:
        raise ValueError(f"hawkes: the window must have positive length, got [{start}, {end}]")
    return start, end


def _loglik(theta: np.ndarray, t: np.ndarray, comp: np.ndarray, window: tuple[float, float], derivatives: int):
    mu = theta[0:2]
    alpha = theta[2:6].reshape(2, 2)
    beta = float(theta[6])
    start, end = window
    span = end - start
    is_buy = (comp == 0).astype(np.float64)
    weights = (is_buy, 1.0 - is_buy)
    sums = [_kernel_sums(t, w, beta, derivatives) for w in weights]  # sums[j][m]
    S = np.stack([sums[0][0], sums[1][0]], axis=1)  # (n, 2)
    a_row = alpha[comp]  # α_{i_k, ·}
    # λ_k = μ_{i_k} + β Σ_j α_{i_k j} S_j(t_k)
    lam = mu[comp] + beta * np.einsum("kj,kj->k", a_row, S)
    if np.any(lam <= 0.0):  # an event where the intensity vanishes: impossible under θ
        if derivatives == 0:
            return -math.inf
        return (-math.inf, np.full(7, np.nan), np.full((7, 7), np.nan))[: derivatives + 1]
    # compensator pieces per source side j: G_j = Σ_{l∈j} (1 − e^{−β(T − t_l)})
    lag_end = end - t
    decay_end = np.exp(-beta * lag_end)
    G = np.array([np.sum(w * (1.0 - decay_end)) for w in weights])
    # ln L = Σ ln λ_k − Σ_i [μ_i T + Σ_j α_ij G_j]
    ll = float(np.sum(np.log(lam)) - mu.sum() * span - float(np.sum(alpha @ G)))
    if derivatives == 0:
        return ll
    D = np.stack([sums[0][1], sums[1][1]], axis=1)
    G1 = np.array([np.sum(w * lag_end * decay_end) for w in weights])  # ∂G_j/∂β
    n = t.size
    J = np.zeros((n, 7))  # ∂λ_k/∂θ
    J[:, 0] = comp == 0
    J[:, 1] = comp == 1
    J[:, 2:4] = (comp == 0)[:, None] * beta * S
    J[:, 4:6] = (comp == 1)[:, None] * beta * S
    SmD = S - beta * D
    J[:, 6] = np.einsum("kj,kj->k", a_row, SmD)
    grad_comp = np.zeros(7)
    grad_comp[0:2] = span
    grad_comp[2:4] = G
    grad_comp[4:6] = G
    grad_comp[6] = float(np.sum(alpha @ G1))
    Jn = J / lam[:, None]
    grad = Jn.sum(axis=0) - grad_comp
    if derivatives == 1:
        return ll, grad
    E = np.stack([sums[0][2], sums[1][2]], axis=1)
    G2 = np.array([-np.sum(w * lag_end * lag_end * decay_end) for w in weights])  # ∂²G_j/∂β²
    hess = -(Jn.T @ Jn)
    # second derivatives of λ: only in β
    cross = np.zeros((n, 4))
    cross[:, 0:2] = (comp == 0)[:, None] * SmD
    cross[:, 2:4] = (comp == 1)[:, None] * SmD
    cross_sum = (cross / lam[:, None]).sum(axis=0)
    hbb = np.einsum("kj,kj->k", a_row, beta * E - 2.0 * D)
    hess[2:6, 6] += cross_sum
    hess[6, 2:6] += cross_sum
    hess[6, 6] += float(np.sum(hbb / lam))
    # minus the compensator's second derivatives
    hess[2:4, 6] -= G1
    hess[4:6, 6] -= G1
    hess[6, 2:4] -= G1
    hess[6, 4:6] -= G1
    hess[6, 6] -= float(np.sum(alpha @ G2))
    return ll, grad, hess


# --------------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class HawkesFit:
    """Maximum-likelihood fit of the bivariate Hawkes process (module docstring).

    Attributes
    ----------
    params : HawkesParams
        Estimates.
    std_err : dict
        Standard error of each parameter (:data:`PARAM_NAMES`) from the inverse observed
        information; NaN for a parameter at its bound.
    cov : tuple of tuples
        The 7x7 covariance of the estimates (NaN rows/columns at a bound).
    log_likelihood : float
        ln L at the estimates.
    n_buy, n_sell : int
        Events fitted.
    span_s : float
        Length of the observation window, s.
    ks_statistic, ks_pvalue : float
        Kolmogorov–Smirnov test of all compensator increments against Exp(1).
    ks_pvalue_buy, ks_pvalue_sell : float
        The same per side.
    converged : bool
        The optimizer's success flag.
    fit_time_s : float
        Wall time of the fit.
    """

    params: HawkesParams
    std_err: dict[str, float]
    cov: tuple[tuple[float, ...], ...]
    log_likelihood: float
    n_buy: int
    n_sell: int
    span_s: float
    ks_statistic: float
    ks_pvalue: float
    ks_pvalue_buy: float
    ks_pvalue_sell: float
    converged: bool
    fit_time_s: float
    message: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def spectral_radius(self) -> float:
        """Of the fitted branching matrix; < 1 means stationary."""
        return self.params.spectral_radius

    @property
    def param_names(self) -> tuple[str, ...]:
        return PARAM_NAMES

    def conf_int(self, level: float = 0.95) -> dict[str, tuple[float, float]]:
        """Wald confidence intervals, ``name -> (low, high)``."""
        z = float(stats.norm.ppf(0.5 + level / 2.0))
        values = self.params.to_dict()
        return {name: (values[name] - z * self.std_err[name], values[name] + z * self.std_err[name]) for name in PARAM_NAMES}

    def summary(self) -> str:
        values = self.params.to_dict()
        rate_buy, rate_sell = self.params.stationary_rate_per_s
        lines = [
            "Bivariate Hawkes fit (exponential kernel, exact MLE)",
            f"  events: {self.n_buy:,} buy + {self.n_sell:,} sell over {self.span_s:,.1f} s;"
            f" log-likelihood {self.log_likelihood:,.3f}; converged {self.converged}; fit {self.fit_time_s:.3f} s",
            f"  {'parameter':<28}{'estimate':>12}{'std err':>12}",
        ]
        for name in PARAM_NAMES:
            lines.append(f"  {name:<28}{values[name]:>12.5g}{self.std_err[name]:>12.3g}")
        lines += [
            f"  spectral radius of branching {self.spectral_radius:.4f} ({'stationary' if self.spectral_radius < 1 else 'NOT stationary'})",
            f"  stationary rates: buy {rate_buy:.4g} /s, sell {rate_sell:.4g} /s;"
            f" observed {self.n_buy / self.span_s:.4g} /s, {self.n_sell / self.span_s:.4g} /s",
            f"  time-rescaling KS vs Exp(1): D = {self.ks_statistic:.4f}, p = {self.ks_pvalue:.4g}"
            f" (buy p = {self.ks_pvalue_buy:.4g}, sell p = {self.ks_pvalue_sell:.4g})",
        ]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return "<pre>" + self.summary() + "</pre>"


def compensator_increments(
    params: HawkesParams, times_s: np.ndarray, sides: np.ndarray, *, start_s: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Compensator increments between consecutive events of each side (Exp(1) under the model).

    Returns ``(buy_increments, sell_increments)``; the first increment of a side runs from
    ``start_s`` (default the first event) to its first event.
    """
    t, comp = _prepare(times_s, sides)
    start = float(t[0]) if start_s is None else float(start_s)
    theta = params.to_vector()
    mu, alpha, beta = theta[0:2], theta[2:6].reshape(2, 2), float(theta[6])
    is_buy = (comp == 0).astype(np.float64)
    S = np.stack([_kernel_sums(t, w, beta, 0)[0] for w in (is_buy, 1.0 - is_buy)], axis=1)
    first_equal = np.searchsorted(t, t, "left")
    # N_j(t⁻): side-j events strictly before t
    N = np.stack([np.concatenate(([0.0], np.cumsum(w)))[first_equal] for w in (is_buy, 1.0 - is_buy)], axis=1)
    out = []
    for i in (0, 1):
        idx = np.flatnonzero(comp == i)
        # Λ_i(t) = μ_i (t − t_0) + Σ_j α_ij (N_j(t⁻) − S_j(t))
        lam_c = mu[i] * (t[idx] - start) + (N[idx] - S[idx]) @ alpha[i]
        out.append(np.diff(np.concatenate(([0.0], lam_c))))
    return out[0], out[1]


def fit_hawkes(
    times_buy_s: np.ndarray,
    times_sell_s: np.ndarray,
    *,
    start_s: float | None = None,
    end_s: float | None = None,
    decay_starts_per_s: Sequence[float] | None = None,
) -> HawkesFit:
    """Fit the bivariate Hawkes process to buy and sell event times by exact maximum likelihood.

    Parameters
    ----------
    times_buy_s, times_sell_s : np.ndarray
        Event times of each side, s (each sorted or not; merged stably, buys first on ties).
    start_s, end_s : float, optional
        Observation window; default the first and last event.
    decay_starts_per_s : sequence of float, optional
        Starting values of β; default 1/median inter-event time times 0.1, 1 and 10. The best
        optimum is kept.

    Raises
    ------
    ValueError
        Fewer than 10 events on a side, non-finite times, or an empty window.
    """
    buy = np.sort(np.asarray(times_buy_s, dtype=np.float64))
    sell = np.sort(np.asarray(times_sell_s, dtype=np.float64))
    for name, x in (("times_buy_s", buy), ("times_sell_s", sell)):
        if not np.all(np.isfinite(x)):
            raise ValueError(f"fit_hawkes: {name} has non-finite values")
        if x.size < 10:
            raise ValueError(f"fit_hawkes: {name} has {x.size} events; at least 10 per side are needed")
    t = np.concatenate((buy, sell))
    sides = np.concatenate((np.ones(buy.size, np.int8), -np.ones(sell.size, np.int8)))
    order = np.argsort(t, kind="stable")
    return _fit(t[order], sides[order], start_s, end_s, decay_starts_per_s)


def fit_hawkes_tape(tape: Tape | TradeEvents, *, start_ns: int | None = None, end_ns: int | None = None, **kwargs) -> HawkesFit:
    """Fit the Hawkes process to a tape's aggressor events (exchange times), see :func:`fit_hawkes`.

    ``start_ns`` / ``end_ns`` (exchange time) bound the window; default the first and last event.
    """
    events = tape if isinstance(tape, TradeEvents) else trade_events(tape)
    ts = events.ts_exch
    keep = np.ones(ts.size, dtype=bool)
    if start_ns is not None:
        keep &= ts >= start_ns
    if end_ns is not None:
        keep &= ts <= end_ns
    ts, side = ts[keep], events.side[keep]
    if ts.size < 20:
        raise ValueError(f"fit_hawkes_tape: {ts.size} aggressor events in the window; at least 20 are needed")
    origin = int(ts[0]) if start_ns is None else int(start_ns)
    t = (ts - origin) / NS_PER_S
    start = 0.0
    end = float(t[-1]) if end_ns is None else (int(end_ns) - origin) / NS_PER_S
    for name, count in (("buy", int(np.sum(side > 0))), ("sell", int(np.sum(side < 0)))):
        if count < 10:
            raise ValueError(f"fit_hawkes_tape: {count} {name} events in the window; at least 10 per side are needed")
    return _fit(t, side, start, end, kwargs.get("decay_starts_per_s"))


def _fit(t: np.ndarray, sides: np.ndarray, start_s, end_s, decay_starts) -> HawkesFit:
    clock = time.perf_counter()
    t, comp = _prepare(t, sides)
    window = _window(t, start_s, end_s)
    span = window[1] - window[0]
    n = np.bincount(comp, minlength=2)
    if decay_starts is None:
        gaps = np.diff(t)
        gaps = gaps[gaps > 0]
        typical = float(np.median(gaps)) if gaps.size else span / max(t.size, 1)
        decay_starts = [0.1 / typical, 1.0 / typical, 10.0 / typical]
    bounds = [(_MIN_BASELINE_PER_S, None)] * 2 + [(0.0, None)] * 4 + [_LOG_DECAY_BOUNDS]

    def objective(z: np.ndarray) -> tuple[float, np.ndarray]:
        theta = z.copy()
        theta[6] = math.exp(z[6])
        ll, grad = _loglik(theta, t, comp, window, 1)
        if not math.isfinite(ll):
            return 1e300, np.zeros(7)
        g = grad.copy()
        g[6] *= theta[6]  # ∂/∂ ln β = β ∂/∂β
        # scaled by the event count so the optimizer's tolerances do not depend on the sample size
        return -ll / t.size, -g / t.size

    best = None
    for beta0 in decay_starts:
        beta0 = float(np.clip(beta0, math.exp(_LOG_DECAY_BOUNDS[0]), math.exp(_LOG_DECAY_BOUNDS[1])))
        # start: half of each side's rate from the baseline, a branching matrix of radius 0.5
        z0 = np.array([0.5 * n[0] / span, 0.5 * n[1] / span, 0.25, 0.25, 0.25, 0.25, math.log(beta0)])
        z0[0:2] = np.maximum(z0[0:2], 10 * _MIN_BASELINE_PER_S)
        res = optimize.minimize(objective, z0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-9})
        if best is None or res.fun < best.fun:
            best = res
    theta = best.x.copy()
    theta[6] = math.exp(theta[6])
    ll, grad, hess = _loglik(theta, t, comp, window, 2)
    params = HawkesParams.from_vector(theta)
    # parameters at a bound have no Wald standard error; invert the information of the others
    lower = np.array([_MIN_BASELINE_PER_S] * 2 + [0.0] * 4 + [math.exp(_LOG_DECAY_BOUNDS[0])])
    free = theta > lower * (1 + 1e-6) + 1e-10
    free[6] = _LOG_DECAY_BOUNDS[0] + 1e-6 < best.x[6] < _LOG_DECAY_BOUNDS[1] - 1e-6
    cov = np.full((7, 7), np.nan)
    info = -hess[np.ix_(free, free)]
    try:
        cov[np.ix_(free, free)] = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        pass
    std_err = {name: float(math.sqrt(cov[i, i])) if cov[i, i] > 0 else math.nan for i, name in enumerate(PARAM_NAMES)}
    inc_buy, inc_sell = compensator_increments(params, t, np.where(comp == 0, 1, -1), start_s=window[0])
    ks_all = stats.kstest(np.concatenate((inc_buy, inc_sell)), "expon")
    ks_buy = stats.kstest(inc_buy, "expon")
    ks_sell = stats.kstest(inc_sell, "expon")
    return HawkesFit(
        params=params,
        std_err=std_err,
        cov=tuple(tuple(float(x) for x in row) for row in cov),
        log_likelihood=float(ll),
        n_buy=int(n[0]),
        n_sell=int(n[1]),
        span_s=float(span),
        ks_statistic=float(ks_all.statistic),
        ks_pvalue=float(ks_all.pvalue),
        ks_pvalue_buy=float(ks_buy.pvalue),
        ks_pvalue_sell=float(ks_sell.pvalue),
        converged=bool(best.success),
        fit_time_s=time.perf_counter() - clock,
        message=str(best.message),
        extra={"gradient_norm": float(np.linalg.norm(grad[free]))},
    )


# --------------------------------------------------------------------------------------------
# Batch intensities and simulation
# --------------------------------------------------------------------------------------------


def hawkes_intensities(params: HawkesParams, times_s: np.ndarray, sides: np.ndarray, *, after: bool = True) -> np.ndarray:
    """Intensities (n, 2) = (λ_buy, λ_sell) in 1/s at each event: just after it (``after``, the
    right limit, including the event's own jump and those of simultaneous events) or just
    before it (excluding every event at that time)."""
    t, comp = _prepare(times_s, sides)
    theta = params.to_vector()
    mu, alpha, beta = theta[0:2], theta[2:6].reshape(2, 2), float(theta[6])
    is_buy = (comp == 0).astype(np.float64)
    S = np.stack([_kernel_sums(t, w, beta, 0)[0] for w in (is_buy, 1.0 - is_buy)], axis=1)
    if after:
        # add the events at the same time (including this one): e^0 = 1 each
        last_equal = np.searchsorted(t, t, "right")
        first_equal = np.searchsorted(t, t, "left")
        for j, w in enumerate((is_buy, 1.0 - is_buy)):
            c = np.concatenate(([0.0], np.cumsum(w)))
            S[:, j] += c[last_equal] - c[first_equal]
    # λ_i = μ_i + β Σ_j α_ij S_j
    return mu[None, :] + beta * S @ alpha.T


def simulate_hawkes(params: HawkesParams, duration_s: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Exact simulation by Ogata thinning on [0, duration_s]; returns ``(times_s, sides)``.

    The total intensity only decays between events, so its current value bounds it until the
    next candidate.
    """
    if not duration_s > 0.0:
        raise ValueError(f"simulate_hawkes: duration_s must be > 0, got {duration_s!r}")
    mu = np.array(params.baseline_per_s)
    alpha = np.array(params.branching)
    beta = params.decay_per_s
    excitation = np.zeros(2)
    now = 0.0
    times: list[float] = []
    sides: list[int] = []
    # draw uniforms in batches to keep the loop cheap
    while True:
        bound = float(mu.sum() + excitation.sum())
        wait = rng.exponential(1.0 / bound)
        if now + wait >= duration_s:
            break
        now += wait
        excitation *= math.exp(-beta * wait)
        lam = mu + excitation
        total = float(lam.sum())
        u = rng.random() * bound
        if u > total:
            continue
        i = 0 if u < lam[0] else 1
        times.append(now)
        sides.append(1 if i == 0 else -1)
        # λ_k += α_{k i} β for both components k
        excitation += alpha[:, i] * beta
    return np.array(times), np.array(sides, dtype=np.int8)


# --------------------------------------------------------------------------------------------
# Online feature
# --------------------------------------------------------------------------------------------


class HawkesIntensity(PrintFeatureMixin):
    """Online buy and sell Hawkes intensities and their imbalance (module docstring).

    Parameters
    ----------
    params : HawkesParams or HawkesFit
        Fitted parameters.
    signal : {"imbalance", "buy", "sell"}
        What ``value`` reports: the intensity imbalance (λ_b − λ_s)/(λ_b + λ_s) (dimensionless, in
        [−1, 1], positive when buying pressure dominates), or λ_buy / λ_sell in 1/s.

    Attributes
    ----------
    buy_intensity_per_s, sell_intensity_per_s, imbalance : float
        The current values (NaN before the first update).
    events : int
        Aggressor events absorbed.
    dropped : int
        Invalid prints ignored (the book is not used).
    """

    def __init__(self, params: HawkesParams | HawkesFit, *, signal: str = "imbalance") -> None:
        if isinstance(params, HawkesFit):
            params = params.params
        if not isinstance(params, HawkesParams):
            raise TypeError(f"HawkesIntensity expects HawkesParams or HawkesFit, got {type(params).__name__}")
        if signal not in ("imbalance", "buy", "sell"):
            raise ValueError(f"HawkesIntensity.signal must be 'imbalance', 'buy' or 'sell', got {signal!r}")
        self.params = params
        self.signal = signal
        self.name = "hawkes_imbalance" if signal == "imbalance" else f"hawkes_{signal}_per_s"
        self._mu = params.baseline_per_s
        beta = params.decay_per_s
        (a_bb, a_bs), (a_sb, a_ss) = params.branching
        # jump of (λ_buy, λ_sell) caused by a buy (+1) or a sell (−1) event: α_{·, side} β
        self._jump = {1: (a_bb * beta, a_sb * beta), -1: (a_bs * beta, a_ss * beta)}
        self._decay_per_ns = beta / NS_PER_S
        self._filter = PrintFilter()
        self._x_buy = 0.0
        self._x_sell = 0.0
        self._last_exch_ns: int | None = None
        self._last_local_ns = 0
        self._last_key: tuple[int, int] | None = None
        self._now_ns: int | None = None
        self.events = 0

    def update(self, update: VenueUpdate) -> None:
        for trade in self._filter.valid(update.trades):
            key = (int(trade.ts_exch), int(trade.aggressor))
            if key == self._last_key:
                continue  # another print of the same aggressor event
            self._last_key = key
            ts = key[0]
            if self._last_exch_ns is not None and ts > self._last_exch_ns:
                # x ← x · exp(−β Δt) on the exchange clock
                relax = math.exp(-(ts - self._last_exch_ns) * self._decay_per_ns)
                self._x_buy *= relax
                self._x_sell *= relax
            self._last_exch_ns = ts
            self._last_local_ns = int(trade.ts_local)
            jump_buy, jump_sell = self._jump[key[1]]
            self._x_buy += jump_buy
            self._x_sell += jump_sell
            self.events += 1
        now = int(update.ts_local)
        self._now_ns = now if self._now_ns is None else max(self._now_ns, now)

    def _intensities(self) -> tuple[float, float]:
        if self._now_ns is None:
            return math.nan, math.nan
        if self._last_exch_ns is None:
            return self._mu
        # decay since the last event was received, on the local clock
        relax = math.exp(-max(0, self._now_ns - self._last_local_ns) * self._decay_per_ns)
        return self._mu[0] + self._x_buy * relax, self._mu[1] + self._x_sell * relax

    @property
    def buy_intensity_per_s(self) -> float:
        return self._intensities()[0]

    @property
    def sell_intensity_per_s(self) -> float:
        return self._intensities()[1]

    @property
    def imbalance(self) -> float:
        buy, sell = self._intensities()
        total = buy + sell
        # (λ_b − λ_s)/(λ_b + λ_s); 0/0 (no baseline, no events) is undefined
        return (buy - sell) / total if total > 0.0 else math.nan

    @property
    def value(self) -> float:
        if self.signal == "imbalance":
            return self.imbalance
        return self.buy_intensity_per_s if self.signal == "buy" else self.sell_intensity_per_s
