"""The informed share of market-order flow, and the fair-value gap informed traders act on.

Model (a hidden-Markov "PIN" on aggressor events and the mid)
-------------------------------------------------------------
Informed traders know on which side of the mid the fair value lies; the rest trade for reasons of
their own. Let g = ln V − ln mid (in bps) be the gap between fair value and the mid. The mid
adjusts partially toward V (a lag of ``adjustment_time_s`` = L), so g is an Ornstein–Uhlenbeck
process with stationary standard deviation s_g (``gap_std_bps``): over Δt,

    g' | g ~ N(a g, s_g² (1 − a²)),     a = exp(−Δt / L)

The filter carries g on a grid of K values ``s_g · z_j``, z_j = Φ⁻¹((j − ½)/K) (K equal-probability
cells of the stationary law; none at 0), with the transition probabilities of that Gaussian
integrated over the cells. The data arrive as venue updates n = 1 … N (polls of the venue, as the
sensor sees them), each with the mid and the aggressor events (:mod:`mmlab.sensor.flow`) since
the previous update. Given g:

- **Sides.** An event is informed with probability π (``informed_fraction``) and then trades
  toward V, side = sign g; otherwise it takes the side the Hawkes process of
  :mod:`mmlab.sensor.hawkes` would give it, buy with probability h = λ_buy / (λ_buy + λ_sell) just
  before it:

      P(side = s | g) = (1 − π) h_s + π [s = sign g],     h_{+1} = h, h_{−1} = 1 − h

  This is how :mod:`mmlab.data.synth` draws sides (its informed traders take the sign of
  V − mid), with the Hawkes parameters fitted to the same tape standing in for the true ones.
- **Mid.** The mid closes the fraction 1 − a of the gap, and moves with the immediate impact of
  the events of this and the previous update (Σ s the sum of their signs) and with noise:

      Δ ln mid_n (bps) ~ N((1 − a_n) g_n + ι₀ Σ_{k∈n} s_k + ι₁ Σ_{k∈n−1} s_k,  ν · max(Δt_n, Δt₀))

  ν (``noise_bps2_per_s``) absorbs what the gap does not explain (diffusion, tick rounding,
  bounce). On a regular poll grid a diffusive and a per-update part of that variance cannot be
  told apart, so there is one; Δt₀ (``min_interval_s``, the median update interval of the fitting
  data) keeps an update that follows another closely from being judged by a vanishing variance.

Only observables enter: sides, exchange times (through h) and mids. The likelihood is that of a
K-state hidden Markov model, ``P = 1ᵀ M_N ⋯ M_1 p_0`` with ``M_n = diag(e_n) T_n`` (e_n the emission
probabilities of update n in each state, T_n the transition over Δt_n, p_0 uniform over the
cells); the fit evaluates the product by a balanced tree of rescaled K×K products (numpy, no
Python loop over updates; runs of identical quiet updates, with no events and an unchanged
mid, enter as one matrix power) and maximizes it over θ = (π, L, s_g, ι₀, ι₁, ν) with L-BFGS-B;
standard errors come from the observed information (a central-difference Hessian).

Signals
-------
:class:`InformedFlow` runs the forward filter online, q_n(j) = P(g_n = s_g z_j | updates ≤ n):

- ``gap`` = E[g] · 1e-4, a **price layer**: the expected log offset ln V − ln mid;
- ``drift_per_s`` = E[g] · 1e-4 / L, the rate at which the mid is expected to move toward V
  (fraction of price per second), usable as an observation of μ;
- ``direction`` = P(g > 0) − P(g < 0) ∈ [−1, 1], the expected sign of informed orders;
- ``informed_fraction``, the estimated informed share of the *current* flow: the exponentially
  weighted mean, over the last ``window_events`` events, of each event's posterior probability
  of being informed given the updates up to its own,

      P(informed_k | data) = P(sign g = s_k | data) · π / ((1 − π) h_{s_k} + π),

  whose expectation is π (the tower property), so it tracks π where the model holds.

All are positive when the price is expected to rise, except ``informed_fraction`` (unsigned).

Bad input: a book that is missing a side, crossed or not finite gives no mid (the update's
events still count; its price term is skipped) and is counted in ``dropped_books``; invalid prints
are ignored and counted in ``dropped_prints``; ``dropped`` is their sum.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
from scipy import optimize, stats
from scipy.special import ndtr, ndtri

from mmlab.data.tape import Tape
from mmlab.sensor.features import usable_touch
from mmlab.sensor.flow import PrintFilter
from mmlab.sensor.hawkes import HawkesFit, HawkesParams
from mmlab.types import VenueUpdate
from mmlab.units import NS_PER_S

__all__ = [
    "InformedFlowParams",
    "InformedFlowFit",
    "FlowSteps",
    "INFORMED_PARAM_NAMES",
    "flow_steps",
    "informed_loglik",
    "informed_filter",
    "fit_informed_flow",
    "InformedFlow",
]

#: names of θ in the order the fit uses
INFORMED_PARAM_NAMES: tuple[str, ...] = (
    "informed_fraction",
    "adjustment_time_s",
    "gap_std_bps",
    "impact_bps",
    "impact_lag_bps",
    "noise_bps2_per_s",
)
_BPS = 1e4
_MAX_INFORMED = 0.95
_ADJUSTMENT_BOUNDS_S = (1e-2, 1e3)
_GAP_BOUNDS_BPS = (1e-3, 1e3)


@dataclass(frozen=True, slots=True, kw_only=True)
class InformedFlowParams:
    """Parameters of the informed-flow model (module docstring): θ, the Hawkes process that gives
    uninformed events their side probabilities, Δt₀ (``min_interval_s``) and the number of grid
    cells K (``gap_cells``, even)."""

    informed_fraction: float
    adjustment_time_s: float
    gap_std_bps: float
    impact_bps: float
    impact_lag_bps: float
    noise_bps2_per_s: float
    hawkes: HawkesParams
    min_interval_s: float
    gap_cells: int = 8

    def __post_init__(self) -> None:
        owner = "InformedFlowParams"
        for name in INFORMED_PARAM_NAMES:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not math.isfinite(value):
                raise ValueError(f"{owner}.{name} must be a finite number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if not 0.0 <= self.informed_fraction < 1.0:
            raise ValueError(f"{owner}.informed_fraction must be in [0, 1), got {self.informed_fraction!r}")
        for name in ("adjustment_time_s", "gap_std_bps", "noise_bps2_per_s"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{owner}.{name} must be > 0, got {getattr(self, name)!r}")
        if not isinstance(self.hawkes, HawkesParams):
            raise ValueError(f"{owner}.hawkes must be HawkesParams, got {type(self.hawkes).__name__}")
        if not (0.0 < self.min_interval_s < math.inf):
            raise ValueError(f"{owner}.min_interval_s must be finite and > 0, got {self.min_interval_s!r}")
        object.__setattr__(self, "min_interval_s", float(self.min_interval_s))
        if isinstance(self.gap_cells, bool) or not isinstance(self.gap_cells, int) or self.gap_cells < 2 or self.gap_cells % 2:
            raise ValueError(f"{owner}.gap_cells must be an even integer >= 2, got {self.gap_cells!r}")

    def to_vector(self) -> np.ndarray:
        return np.array([getattr(self, name) for name in INFORMED_PARAM_NAMES])

    @classmethod
    def from_vector(cls, theta: Sequence[float], hawkes: HawkesParams, min_interval_s: float, gap_cells: int = 8) -> "InformedFlowParams":
        values = dict(zip(INFORMED_PARAM_NAMES, (float(x) for x in theta)))
        return cls(**values, hawkes=hawkes, min_interval_s=min_interval_s, gap_cells=gap_cells)

    def to_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in INFORMED_PARAM_NAMES}


@dataclass(frozen=True, slots=True)
class FlowSteps:
    """The data of the model, one row per venue update and one per aggressor event.

    ``ts_local`` (ns), ``log_mid`` (NaN without a usable book), ``dt_s`` (since the previous
    update; 0 for the first), ``mid_change_bps`` (NaN where this or the previous update has no
    usable mid), ``signed_events`` and ``signed_events_prev`` (Σ side of this / the previous
    update's events); per event ``event_step`` (its update), ``event_side`` (±1) and
    ``event_buy_prob`` (h).
    """

    ts_local: np.ndarray
    log_mid: np.ndarray
    dt_s: np.ndarray
    mid_change_bps: np.ndarray
    signed_events: np.ndarray
    signed_events_prev: np.ndarray
    event_step: np.ndarray
    event_side: np.ndarray
    event_buy_prob: np.ndarray
    dropped_books: int = 0
    dropped_prints: int = 0

    def __len__(self) -> int:
        return int(self.ts_local.size)

    def slice(self, start: int, stop: int) -> "FlowSteps":
        """Updates ``start … stop − 1`` and their events, as if the first were the first seen."""
        keep = (self.event_step >= start) & (self.event_step < stop)
        change = self.mid_change_bps[start:stop].copy()
        prev = self.signed_events_prev[start:stop].copy()
        dt = self.dt_s[start:stop].copy()
        if change.size:
            change[0], prev[0], dt[0] = math.nan, 0.0, 0.0
        return FlowSteps(
            ts_local=self.ts_local[start:stop],
            log_mid=self.log_mid[start:stop],
            dt_s=dt,
            mid_change_bps=change,
            signed_events=self.signed_events[start:stop],
            signed_events_prev=prev,
            event_step=self.event_step[keep] - start,
            event_side=self.event_side[keep],
            event_buy_prob=self.event_buy_prob[keep],
        )


class _HawkesSideProbability:
    """h = λ_buy / (λ_buy + λ_sell) just before each aggressor event (strictly earlier events
    only), updated in O(1) per event on the exchange clock; shared by the batch and online code."""

    __slots__ = ("mu", "jump", "decay_per_ns", "x", "x_at_ts", "ts", "key")

    def __init__(self, hawkes: HawkesParams) -> None:
        self.mu = hawkes.baseline_per_s
        beta = hawkes.decay_per_s
        (a_bb, a_bs), (a_sb, a_ss) = hawkes.branching
        self.jump = {1: (a_bb * beta, a_sb * beta), -1: (a_bs * beta, a_ss * beta)}
        self.decay_per_ns = beta / NS_PER_S
        self.x = [0.0, 0.0]  # excitation after every event so far
        self.x_at_ts = [0.0, 0.0]  # excitation at the current exchange time, before its events
        self.ts: int | None = None
        self.key: tuple[int, int] | None = None

    def event(self, ts_exch: int, side: int) -> float | None:
        """Absorb one valid print's (time, side); h for a new event, None for another print of
        the same event."""
        key = (ts_exch, side)
        if key == self.key:
            return None
        self.key = key
        if self.ts is None or ts_exch > self.ts:
            relax = math.exp(-(ts_exch - self.ts) * self.decay_per_ns) if self.ts is not None else 0.0
            self.x = [self.x[0] * relax, self.x[1] * relax]
            self.x_at_ts = list(self.x)
            self.ts = ts_exch
        # simultaneous events do not excite each other: h from the state before this time
        buy = self.mu[0] + self.x_at_ts[0]
        sell = self.mu[1] + self.x_at_ts[1]
        jump_buy, jump_sell = self.jump[side]
        self.x[0] += jump_buy
        self.x[1] += jump_sell
        total = buy + sell
        return buy / total if total > 0.0 else 0.5


def _log_mid(update: VenueUpdate) -> float | None:
    touch = usable_touch(update.book)
    if touch is None:
        return None
    return math.log(0.5 * (touch[0] + touch[1]))


def flow_steps(updates: Iterable[VenueUpdate], hawkes: HawkesParams | HawkesFit) -> FlowSteps:
    """Collect the model's data from a sequence of venue updates (the same rules as
    :class:`InformedFlow`)."""
    if isinstance(hawkes, HawkesFit):
        hawkes = hawkes.params
    side_prob = _HawkesSideProbability(hawkes)
    keep = PrintFilter()
    ts_local: list[int] = []
    log_mid: list[float] = []
    ev_step: list[int] = []
    ev_side: list[int] = []
    ev_h: list[float] = []
    dropped_books = 0
    for n, update in enumerate(updates):
        ts_local.append(int(update.ts_local))
        lm = _log_mid(update)
        if lm is None:
            if update.book is not None:
                dropped_books += 1
            lm = math.nan
        log_mid.append(lm)
        for trade in update.trades:
            if not keep.accept(trade):
                continue
            side = int(trade.aggressor)
            h = side_prob.event(int(trade.ts_exch), side)
            if h is not None:
                ev_step.append(n)
                ev_side.append(side)
                ev_h.append(h)
    ts = np.array(ts_local, dtype=np.int64)
    lm = np.array(log_mid, dtype=np.float64)
    n_steps = ts.size
    dt = np.zeros(n_steps)
    dt[1:] = np.maximum(np.diff(ts), 0) / NS_PER_S
    change = np.full(n_steps, np.nan)
    change[1:] = (lm[1:] - lm[:-1]) * _BPS
    step = np.array(ev_step, dtype=np.int64)
    side = np.array(ev_side, dtype=np.int8)
    signed = np.bincount(step, weights=side, minlength=n_steps).astype(np.float64) if n_steps else np.empty(0)
    signed_prev = np.zeros(n_steps)
    signed_prev[1:] = signed[:-1]
    return FlowSteps(
        ts_local=ts,
        log_mid=lm,
        dt_s=dt,
        mid_change_bps=change,
        signed_events=signed,
        signed_events_prev=signed_prev,
        event_step=step,
        event_side=side,
        event_buy_prob=np.array(ev_h, dtype=np.float64),
        dropped_books=dropped_books,
        dropped_prints=keep.dropped,
    )


# --------------------------------------------------------------------------------------------
# The gap grid
# --------------------------------------------------------------------------------------------


class _GapGrid:
    """Cells of the stationary law of g in standard units and OU transitions between them."""

    def __init__(self, cells: int) -> None:
        self.cells = cells
        # z_j = Φ⁻¹((j − ½)/K): the cell centres; edges Φ⁻¹(j/K)
        self.z = ndtri((np.arange(cells) + 0.5) / cells)
        self.edges = ndtri(np.arange(1, cells) / cells)
        self.sign = np.sign(self.z)
        self.positive = self.z > 0

    def transition(self, decay: float) -> np.ndarray:
        """T[i, j] = P(cell i | cell j) for g' ~ N(a g, 1 − a²) in standard units, a = ``decay``."""
        sd = math.sqrt(max(1.0 - decay * decay, 1e-300))
        cdf = ndtr((self.edges[None, :] - decay * self.z[:, None]) / sd)
        k = self.cells
        cdf = np.concatenate((np.zeros((k, 1)), cdf, np.ones((k, 1))), axis=1)
        return np.diff(cdf, axis=1).T

    def transitions(self, adjustment_time_s: float, dt_s: np.ndarray) -> np.ndarray:
        """Stacked transitions for each Δt (computed once per distinct Δt, to the µs)."""
        rounded = np.round(dt_s, 6)
        unique, inverse = np.unique(rounded, return_inverse=True)
        table = np.stack([self.transition(math.exp(-d / adjustment_time_s)) for d in unique])
        return table[inverse]


_GRIDS: dict[int, _GapGrid] = {}


def _grid(cells: int) -> _GapGrid:
    grid = _GRIDS.get(cells)
    if grid is None:
        grid = _GRIDS[cells] = _GapGrid(cells)
    return grid


# --------------------------------------------------------------------------------------------
# Likelihood
# --------------------------------------------------------------------------------------------


def _log_emissions(theta: np.ndarray, steps: FlowSteps, grid: _GapGrid, min_interval_s: float) -> np.ndarray:
    """ln e_n(j) for every update n and cell j, shape (N, K)."""
    pi, adjust_s, gap_std, iota0, iota1, noise = theta
    n = len(steps)
    out = np.zeros((n, grid.cells))
    if steps.event_step.size:
        s, h = steps.event_side, steps.event_buy_prob
        h_s = np.where(s > 0, h, 1.0 - h)
        # P(s | g) = (1 − π) h_s + π [s = sign g]: one value for each sign of g
        for positive in (True, False):
            p = (1.0 - pi) * h_s + pi * (s == (1 if positive else -1))
            column = np.bincount(steps.event_step, weights=np.log(p), minlength=n)
            out[:, grid.positive == positive] += column[:, None]
    change = steps.mid_change_bps
    ok = np.isfinite(change)
    if np.any(ok):
        dt = steps.dt_s[ok]
        # Δm ~ N((1 − a) g + ι₀ Σs + ι₁ Σs_prev, ν max(Δt, Δt₀)),  a = exp(−Δt / L)
        closed = -np.expm1(-dt / adjust_s)
        mean = iota0 * steps.signed_events[ok] + iota1 * steps.signed_events_prev[ok]
        var = noise * np.maximum(dt, min_interval_s)
        resid = change[ok][:, None] - mean[:, None] - closed[:, None] * (gap_std * grid.z[None, :])
        out[ok] += -0.5 * (np.log(2.0 * math.pi * var)[:, None] + resid * resid / var[:, None])
    return out


@dataclass(frozen=True, slots=True)
class _Layout:
    """The updates the likelihood must evaluate: every update, except that a run of identical
    quiet updates (no events in them or the update before, the same Δt to the µs, the same mid
    change, 0 or undefined) keeps only its first, with the run's length as multiplicity."""

    steps: FlowSteps  # the kept updates (events re-indexed to them)
    multiplicity: np.ndarray
    min_interval_s: float


def _layout(steps: FlowSteps, min_interval_s: float) -> _Layout:
    n = len(steps)
    change = steps.mid_change_bps
    undefined = np.isnan(change)
    counts = np.bincount(steps.event_step, minlength=n)
    # no events at all (a buy and a sell in one update sum to zero signs but still emit)
    quiet = (counts == 0) & (steps.signed_events_prev == 0) & (undefined | (change == 0.0))
    quiet[:1] = False  # the first update starts from p_0
    dt_us = np.round(steps.dt_s * 1e6).astype(np.int64)
    continues = np.zeros(n, dtype=bool)
    continues[1:] = quiet[1:] & quiet[:-1] & (dt_us[1:] == dt_us[:-1]) & (undefined[1:] == undefined[:-1])
    keep = ~continues
    kept = np.flatnonzero(keep)
    # multiplicity: how many updates each kept one stands for
    multiplicity = np.diff(np.append(kept, n))
    new_index = np.cumsum(keep) - 1
    reduced = FlowSteps(
        ts_local=steps.ts_local[kept],
        log_mid=steps.log_mid[kept],
        dt_s=steps.dt_s[kept],
        mid_change_bps=change[kept],
        signed_events=steps.signed_events[kept],
        signed_events_prev=steps.signed_events_prev[kept],
        event_step=new_index[steps.event_step],
        event_side=steps.event_side,
        event_buy_prob=steps.event_buy_prob,
    )
    return _Layout(steps=reduced, multiplicity=multiplicity, min_interval_s=float(min_interval_s))


def _power(matrix: np.ndarray, exponent: int) -> tuple[np.ndarray, float]:
    """``matrix ** exponent`` (by squaring) rescaled to a largest entry of 1, and the log of the
    scale."""
    result, log_scale = None, 0.0
    base, base_log = matrix.copy(), 0.0
    while exponent:
        if exponent & 1:
            if result is None:
                result, log_scale = base.copy(), base_log
            else:
                result = base @ result
                big = result.max()
                result /= big
                log_scale += base_log + math.log(big)
        exponent >>= 1
        if exponent:
            base = base @ base
            big = base.max()
            base /= big
            base_log = 2.0 * base_log + math.log(big)
    return result, log_scale


def _tree_loglik(theta: np.ndarray, layout: _Layout, grid: _GapGrid) -> float:
    steps = layout.steps
    n = len(steps)
    if n == 0:
        return 0.0
    log_e = _log_emissions(theta, steps, grid, layout.min_interval_s)
    scale = log_e.max(axis=1)
    e = np.exp(log_e - scale[:, None])
    trans = grid.transitions(theta[1], steps.dt_s)
    trans[0] = np.eye(grid.cells)  # the first update starts from p_0
    # M_n = diag(e_n) T_n
    mats = e[:, :, None] * trans
    multiplicity = layout.multiplicity
    log_total = float(scale @ multiplicity)
    repeated = np.flatnonzero(multiplicity > 1)
    if repeated.size:
        # equal quiet matrices: one power per distinct (Δt, Δm defined, length)
        keys = np.stack([np.round(steps.dt_s[repeated] * 1e6), np.isnan(steps.mid_change_bps[repeated]), multiplicity[repeated]], axis=1)
        unique, inverse = np.unique(keys, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        for u in range(unique.shape[0]):
            rows = repeated[inverse == u]
            power, log_scale = _power(mats[rows[0]], int(unique[u, 2]))
            mats[rows] = power
            log_total += log_scale * rows.size
    eye = np.eye(grid.cells)[None]
    while mats.shape[0] > 1:
        if mats.shape[0] % 2:
            mats = np.concatenate((mats, eye), axis=0)
        # later updates multiply from the left
        mats = np.matmul(mats[1::2], mats[0::2])
        big = mats.max(axis=(1, 2))
        if not np.all(big > 0.0) or not np.all(np.isfinite(big)):
            return -math.inf
        mats /= big[:, None, None]
        log_total += float(np.log(big).sum())
    # 1ᵀ M p_0 with p_0 uniform over the cells
    return log_total + math.log(float(mats[0].sum()) / grid.cells)


def informed_loglik(params: InformedFlowParams, steps: FlowSteps) -> float:
    """Log-likelihood of the data under the model (module docstring), by a balanced tree of
    rescaled K×K matrix products."""
    return _tree_loglik(params.to_vector(), _layout(steps, params.min_interval_s), _grid(params.gap_cells))


def informed_filter(params: InformedFlowParams, steps: FlowSteps, *, window_events: int = 200) -> dict[str, np.ndarray]:
    """The online filter run over ``steps`` in batch. Per update: ``gap_bps`` (E[g]),
    ``prob_up`` (P(g > 0)), ``informed_fraction`` (NaN before the first event) and ``loglik``
    (running log-likelihood)."""
    if isinstance(window_events, bool) or not isinstance(window_events, int) or window_events < 1:
        raise ValueError(f"informed_filter: window_events must be an integer >= 1, got {window_events!r}")
    theta = params.to_vector()
    grid = _grid(params.gap_cells)
    pi = theta[0]
    log_e = _log_emissions(theta, steps, grid, params.min_interval_s)
    trans = grid.transitions(theta[1], steps.dt_s)
    values = theta[2] * grid.z
    n = len(steps)
    gap = np.empty(n)
    prob_up = np.empty(n)
    fraction = np.full(n, np.nan)
    loglik = np.empty(n)
    bounds = np.searchsorted(steps.event_step, np.arange(n + 1))
    q = np.full(grid.cells, 1.0 / grid.cells)
    total, average, seen = 0.0, math.nan, 0
    smoothing = 1.0 / window_events
    for k in range(n):
        if k:
            q = trans[k] @ q
        row = log_e[k]
        m = row.max()
        q = q * np.exp(row - m)
        norm = q.sum()
        total += m + math.log(norm)
        q /= norm
        up = float(q[grid.positive].sum())
        for e in range(bounds[k], bounds[k + 1]):
            posterior = _posterior_informed(pi, up, int(steps.event_side[e]), float(steps.event_buy_prob[e]))
            seen += 1
            # exponentially weighted mean; the first events average with equal weights
            average = posterior if seen == 1 else average + max(smoothing, 1.0 / seen) * (posterior - average)
        gap[k], prob_up[k], fraction[k], loglik[k] = float(values @ q), up, average, total
    return {"gap_bps": gap, "prob_up": prob_up, "informed_fraction": fraction, "loglik": loglik}


def _posterior_informed(pi: float, prob_up: float, side: int, buy_prob: float) -> float:
    h_s = buy_prob if side > 0 else 1.0 - buy_prob
    # P(informed | s, data) = P(sign g = s | data) π / ((1 − π) h_s + π)
    agree = prob_up if side > 0 else 1.0 - prob_up
    denom = (1.0 - pi) * h_s + pi
    return agree * pi / denom if denom > 0.0 else 0.0


# --------------------------------------------------------------------------------------------
# Fit
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class InformedFlowFit:
    """Maximum-likelihood fit of the informed-flow model (module docstring).

    ``null_log_likelihood`` is the maximum with π = 0, for the likelihood-ratio test of any
    informed flow at all (:attr:`likelihood_ratio_pvalue`).
    """

    params: InformedFlowParams
    std_err: dict[str, float]
    log_likelihood: float
    null_log_likelihood: float
    updates: int
    events: int
    span_s: float
    converged: bool
    fit_time_s: float
    message: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def likelihood_ratio_pvalue(self) -> float:
        """p-value of π = 0 (likelihood ratio; π = 0 is on the boundary, so ½ χ²₁)."""
        statistic = 2.0 * (self.log_likelihood - self.null_log_likelihood)
        return float(0.5 * stats.chi2.sf(statistic, 1)) if statistic > 0.0 else 0.5

    def conf_int(self, level: float = 0.95) -> dict[str, tuple[float, float]]:
        """Wald confidence intervals, ``name -> (low, high)``."""
        z = float(stats.norm.ppf(0.5 + level / 2.0))
        values = self.params.to_dict()
        return {k: (values[k] - z * self.std_err[k], values[k] + z * self.std_err[k]) for k in INFORMED_PARAM_NAMES}

    def summary(self) -> str:
        values = self.params.to_dict()
        lines = [
            f"Informed-flow model (gap HMM on {self.params.gap_cells} cells, Hawkes-side mixture)",
            f"  {self.events:,} aggressor events in {self.updates:,} updates over {self.span_s:,.1f} s"
            f" (min interval {self.params.min_interval_s:g} s); log-likelihood {self.log_likelihood:,.3f};"
            f" converged {self.converged}; fit {self.fit_time_s:.2f} s",
            f"  {'parameter':<24}{'estimate':>12}{'std err':>12}",
        ]
        for name in INFORMED_PARAM_NAMES:
            lines.append(f"  {name:<24}{values[name]:>12.5g}{self.std_err[name]:>12.3g}")
        lines.append(
            f"  test of informed_fraction = 0: null log-likelihood {self.null_log_likelihood:,.3f},"
            f" p = {self.likelihood_ratio_pvalue:.3g}"
        )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return "<pre>" + self.summary() + "</pre>"


# optimizer variables z: π, ln L, ln s_g, ι₀, ι₁, ln ν
_BOUNDS = [
    (0.0, _MAX_INFORMED),
    tuple(math.log(x) for x in _ADJUSTMENT_BOUNDS_S),
    tuple(math.log(x) for x in _GAP_BOUNDS_BPS),
    (None, None),
    (None, None),
    (math.log(1e-12), math.log(1e8)),
]
_LOG_COORDINATES = [1, 2, 5]


def _to_theta(z: np.ndarray) -> np.ndarray:
    theta = np.array(z, dtype=np.float64)
    theta[_LOG_COORDINATES] = np.exp(theta[_LOG_COORDINATES])
    return theta


def fit_informed_flow(
    data: FlowSteps | Tape | Sequence[VenueUpdate],
    hawkes: HawkesParams | HawkesFit,
    *,
    interval_s: float = 0.1,
    gap_cells: int = 8,
    informed_starts: Sequence[float] = (0.1,),
) -> InformedFlowFit:
    """Fit the informed-flow model by maximum likelihood (module docstring).

    Parameters
    ----------
    data : FlowSteps, Tape or sequence of VenueUpdate
        A tape is replayed without trading and polled every ``interval_s`` seconds, the updates
        the online feature sees at that cadence (fit at the cadence it will run at: ν and the
        impacts are per update).
    hawkes : HawkesParams or HawkesFit
        Fitted to the same data (:func:`~mmlab.sensor.hawkes.fit_hawkes_tape`).
    gap_cells : int
        K, cells of the gap grid (even).
    informed_starts : sequence of float
        Starting values of π; the best optimum is kept.

    Raises
    ------
    ValueError
        Fewer than 50 events or 100 updates with a mid change.
    """
    clock = time.perf_counter()
    if isinstance(hawkes, HawkesFit):
        hawkes = hawkes.params
    if isinstance(data, Tape):
        from mmlab.sensor.calibration import replay_updates

        data = flow_steps(replay_updates(data, interval_s), hawkes)
    elif not isinstance(data, FlowSteps):
        data = flow_steps(data, hawkes)
    steps = data
    ok = np.isfinite(steps.mid_change_bps)
    n_events = int(steps.event_step.size)
    if n_events < 50 or ok.sum() < 100:
        raise ValueError(
            f"fit_informed_flow: {n_events} events and {int(ok.sum())} updates with a mid change; at least 50 and 100 are needed"
        )
    change, dt = steps.mid_change_bps[ok], steps.dt_s[ok]
    min_interval_s = float(np.median(dt))
    if not min_interval_s > 0.0:
        raise ValueError("fit_informed_flow: the median interval between updates is 0")
    grid = _grid(InformedFlowParams(
        informed_fraction=0.0, adjustment_time_s=1.0, gap_std_bps=1.0, impact_bps=0.0, impact_lag_bps=0.0,
        noise_bps2_per_s=1.0, hawkes=hawkes, min_interval_s=min_interval_s, gap_cells=gap_cells,
    ).gap_cells)  # fmt: skip
    layout = _layout(steps, min_interval_s)
    # starting values: impacts by least squares of Δm on the signed events, ν from the rest of
    # the variance, a gap of the size of one update's noise adjusting over ten updates
    x = np.column_stack([steps.signed_events[ok], steps.signed_events_prev[ok]])
    iota = np.linalg.lstsq(x, change, rcond=None)[0] if np.any(x) else np.zeros(2)
    resid_var = float(np.var(change - x @ iota))
    if not resid_var > 0.0:
        raise ValueError("fit_informed_flow: the mid never moves apart from the events' impacts")
    noise0 = resid_var / float(np.mean(np.maximum(dt, min_interval_s)))
    gap0 = float(np.clip(math.sqrt(resid_var), *_GAP_BOUNDS_BPS))
    adjust0 = float(np.clip(10.0 * min_interval_s, *_ADJUSTMENT_BOUNDS_S))

    def objective(z: np.ndarray) -> float:
        value = _tree_loglik(_to_theta(z), layout, grid)
        return -value / n_events if math.isfinite(value) else 1e300

    options = {"maxiter": 500, "ftol": 1e-10, "gtol": 1e-6}
    best = None
    for pi0 in informed_starts:
        z0 = np.array([pi0, math.log(adjust0), math.log(gap0), iota[0], iota[1], math.log(noise0)])
        res = optimize.minimize(objective, z0, method="L-BFGS-B", bounds=_BOUNDS, options=options)
        if best is None or res.fun < best.fun:
            best = res
    theta = _to_theta(best.x)
    params = InformedFlowParams.from_vector(theta, hawkes, min_interval_s, gap_cells)
    log_likelihood = _tree_loglik(theta, layout, grid)
    # π = 0: the null of the likelihood-ratio test (the gap then only describes the mid)
    null_bounds = list(_BOUNDS)
    null_bounds[0] = (0.0, 0.0)
    z_null = best.x.copy()
    z_null[0] = 0.0
    null = optimize.minimize(objective, z_null, method="L-BFGS-B", bounds=null_bounds, options=options)
    return InformedFlowFit(
        params=params,
        std_err=_std_errors(theta, layout, grid),
        log_likelihood=float(log_likelihood),
        null_log_likelihood=float(min(-null.fun * n_events, log_likelihood)),
        updates=len(steps),
        events=n_events,
        span_s=float((steps.ts_local[-1] - steps.ts_local[0]) / NS_PER_S),
        converged=bool(best.success),
        fit_time_s=time.perf_counter() - clock,
        message=str(best.message),
    )


def _std_errors(theta: np.ndarray, layout: _Layout, grid: _GapGrid) -> dict[str, float]:
    """Square roots of the diagonal of the inverse observed information (central differences)
    over the parameters not at a bound; NaN for those at a bound."""
    free = np.ones(theta.size, dtype=bool)
    free[0] = 1e-4 < theta[0] < _MAX_INFORMED - 1e-4
    free[1] = _ADJUSTMENT_BOUNDS_S[0] * 1.001 < theta[1] < _ADJUSTMENT_BOUNDS_S[1] * 0.999
    free[2] = _GAP_BOUNDS_BPS[0] * 1.001 < theta[2] < _GAP_BOUNDS_BPS[1] * 0.999
    index = np.flatnonzero(free)
    step = 1e-4 * np.maximum(np.abs(theta), 1e-2)
    if free[0]:
        step[0] = min(step[0], 0.5 * theta[0], 0.5 * (_MAX_INFORMED - theta[0]))

    def f(delta: np.ndarray) -> float:
        return _tree_loglik(theta + delta, layout, grid)

    f0 = f(np.zeros(theta.size))
    k = index.size
    hess = np.zeros((k, k))
    unit = np.eye(theta.size) * step
    for a, i in enumerate(index):
        hess[a, a] = (f(unit[i]) - 2.0 * f0 + f(-unit[i])) / step[i] ** 2
        for b in range(a):
            j = index[b]
            hess[a, b] = hess[b, a] = (
                f(unit[i] + unit[j]) - f(unit[i] - unit[j]) - f(-unit[i] + unit[j]) + f(-unit[i] - unit[j])
            ) / (4.0 * step[i] * step[j])
    out = {name: math.nan for name in INFORMED_PARAM_NAMES}
    try:
        cov = np.linalg.inv(-hess)
    except np.linalg.LinAlgError:
        return out
    for a, i in enumerate(index):
        if cov[a, a] > 0.0:
            out[INFORMED_PARAM_NAMES[i]] = float(math.sqrt(cov[a, a]))
    return out


# --------------------------------------------------------------------------------------------
# Online feature
# --------------------------------------------------------------------------------------------

_SIGNALS = {"gap": "informed_gap", "drift": "informed_drift", "direction": "informed_direction", "fraction": "informed_fraction"}


class InformedFlow:
    """Online informed-flow filter (module docstring), O(K²) per update.

    Parameters
    ----------
    params : InformedFlowParams or InformedFlowFit
        Fitted model.
    signal : {"gap", "drift", "direction", "fraction"}
        What ``value`` reports: ``gap`` (price layer, ln V − ln mid), ``drift_per_s`` (fraction
        of price per second), ``direction`` (dimensionless) or ``informed_fraction`` (unsigned
        share).
    window_events : int
        Events in the exponentially weighted mean of ``informed_fraction``.

    Attributes
    ----------
    gap, gap_bps, drift_per_s, direction, informed_fraction, prob_up : float
        The signals; NaN before the first update (``informed_fraction`` before the first event).
    loglik : float
        Running log-likelihood of what the filter has seen.
    dropped_books, dropped_prints, dropped : int
        Unusable books, invalid prints, and their sum.
    """

    def __init__(self, params: InformedFlowParams | InformedFlowFit, *, signal: str = "gap", window_events: int = 200) -> None:
        if isinstance(params, InformedFlowFit):
            params = params.params
        if not isinstance(params, InformedFlowParams):
            raise TypeError(f"InformedFlow expects InformedFlowParams or InformedFlowFit, got {type(params).__name__}")
        if signal not in _SIGNALS:
            raise ValueError(f"InformedFlow.signal must be one of {tuple(_SIGNALS)}, got {signal!r}")
        if isinstance(window_events, bool) or not isinstance(window_events, int) or window_events < 1:
            raise ValueError(f"InformedFlow.window_events must be an integer >= 1, got {window_events!r}")
        self.params = params
        self.signal = signal
        self.name = _SIGNALS[signal]
        self._theta = params.to_vector()
        self._grid = _grid(params.gap_cells)
        self._values_bps = params.gap_std_bps * self._grid.z
        self._transitions: dict[int, np.ndarray] = {}
        self._smoothing = 1.0 / window_events
        self._side_prob = _HawkesSideProbability(params.hawkes)
        self._filter = PrintFilter()
        self._q: np.ndarray | None = None
        self._last_ts = 0
        self._last_log_mid = math.nan
        self._signed_prev = 0.0
        self._fraction = math.nan
        self._seen = 0
        self.loglik = 0.0
        self.dropped_books = 0

    @property
    def dropped_prints(self) -> int:
        return self._filter.dropped

    @property
    def dropped(self) -> int:
        return self.dropped_books + self._filter.dropped

    def _transition(self, dt_s: float) -> np.ndarray:
        key = round(dt_s * 1e6)  # to the µs, as the batch fit
        table = self._transitions.get(key)
        if table is None:
            if len(self._transitions) > 4096:
                self._transitions.clear()
            table = self._transitions[key] = self._grid.transition(math.exp(-(key * 1e-6) / self._theta[1]))
        return table

    def update(self, update: VenueUpdate) -> None:
        pi, adjust_s, _, iota0, iota1, noise = self._theta
        grid = self._grid
        ts = int(update.ts_local)
        events: list[tuple[int, float]] = []
        for trade in self._filter.valid(update.trades):
            side = int(trade.aggressor)
            h = self._side_prob.event(int(trade.ts_exch), side)
            if h is not None:
                events.append((side, h))
        log_mid = _log_mid(update)
        if log_mid is None:
            if update.book is not None:
                self.dropped_books += 1
            log_mid = math.nan
        first = self._q is None
        dt = 0.0 if first else max(0, ts - self._last_ts) / NS_PER_S
        q = np.full(grid.cells, 1.0 / grid.cells) if first else self._transition(dt) @ self._q
        log_e = np.zeros(grid.cells)
        for side, h in events:
            h_s = h if side > 0 else 1.0 - h
            # P(s | g) = (1 − π) h_s + π [s = sign g]
            log_e[grid.positive] += math.log((1.0 - pi) * h_s + pi * (side == 1))
            log_e[~grid.positive] += math.log((1.0 - pi) * h_s + pi * (side == -1))
        signed = float(sum(side for side, _ in events))
        if not first and math.isfinite(log_mid) and math.isfinite(self._last_log_mid):
            change = (log_mid - self._last_log_mid) * _BPS
            # Δm ~ N((1 − a) g + ι₀ Σs + ι₁ Σs_prev, ν max(Δt, Δt₀))
            var = noise * max(dt, self.params.min_interval_s)
            resid = change - iota0 * signed - iota1 * self._signed_prev + math.expm1(-dt / adjust_s) * self._values_bps
            log_e += -0.5 * (math.log(2.0 * math.pi * var) + resid * resid / var)
        m = float(log_e.max())
        q = q * np.exp(log_e - m)
        norm = float(q.sum())
        self.loglik += m + math.log(norm)
        self._q = q / norm
        up = float(self._q[grid.positive].sum())
        for side, h in events:
            posterior = _posterior_informed(pi, up, side, h)
            self._seen += 1
            weight = max(self._smoothing, 1.0 / self._seen)
            self._fraction = posterior if self._seen == 1 else self._fraction + weight * (posterior - self._fraction)
        self._last_ts = ts
        self._last_log_mid = log_mid
        self._signed_prev = signed

    @property
    def gap_bps(self) -> float:
        """E[g | data], bps (NaN before the first update)."""
        return math.nan if self._q is None else float(self._values_bps @ self._q)

    @property
    def gap(self) -> float:
        """E[ln V − ln mid] (fraction): the price layer."""
        return self.gap_bps / _BPS

    @property
    def drift_per_s(self) -> float:
        # the mid closes the gap at rate 1/L: E[d ln mid/dt] = E[g] / L
        return self.gap / self._theta[1]

    @property
    def prob_up(self) -> float:
        return math.nan if self._q is None else float(self._q[self._grid.positive].sum())

    @property
    def direction(self) -> float:
        # P(g > 0) − P(g < 0)
        return 2.0 * self.prob_up - 1.0

    @property
    def informed_fraction(self) -> float:
        return self._fraction

    @property
    def value(self) -> float:
        if self.signal == "gap":
            return self.gap
        if self.signal == "drift":
            return self.drift_per_s
        return self.direction if self.signal == "direction" else self.informed_fraction
