"""Cross-venue lead-lag: a second venue's mid as an observation of fair value.

Model
-----
Two venues quote the same asset: the *target* (where we trade) and the *other* venue. On a grid
``t_k = t_0 + k·Δ`` (``Δ = grid_s``) both log-mids are sampled previous-tick (the last mid
published at or before ``t_k``) and differenced into returns ``r_T[k]``, ``r_O[k]``. The lead of the
other venue is the lag ``ℓ`` that maximizes the cross-correlation of returns,

    ρ(ℓ) = Σ_k r_T[k] r_O[k − ℓ] / sqrt(Σ_k r_T[k]² · Σ_k r_O[k]²),   ℓ = −L … L,

refined between grid points by a parabola through the peak and its two neighbours (a
grid cross-correlation of previous-tick returns, not Hayashi–Yoshida: with mids sampled at 10 ms
the grid is finer than the update rate of either book, and the argmax, which is all that is
used, is not biased by the Epps shrinkage of the correlation's level). ``lag_s > 0`` means the
other venue moves first:

    ln mid_T(t) = ln mid_O(t − lag_s) + b(t) + ε(t).

The basis ``b`` (mean log price difference: contract type, funding, index) drifts slowly; it is
tracked by an EWMA of ``e(t) = ln mid_T(t − a) − ln mid_O(t − c)`` with ``a = max(0, −lag_s)``,
``c = max(0, lag_s)`` (both known at ``t``), started at the fitted mean basis:

    b(t_k) = b(t_{k−1}) + (1 − 2^{−(t_k − t_{k−1}) / H}) · (e(t_k) − b(t_{k−1})).

The half-life ``H`` is chosen on a log grid to minimize the in-sample mean squared error of
``b(t)`` as a forecast of ``e(t + basis_horizon_s)``: the basis should follow what persists for
``basis_horizon_s``, not the lead-lag noise the layer is meant to measure.

The layer, at time ``t``, is ``z(t) = ln mid_O(t) + b(t)``: an observation of the target's log
mid ``max(lag_s, 0)`` ahead, i.e. of ln V at ``t`` when the other venue leads, and of the current
mid (with the staleness of ``|lag_s|``) when it lags. Its noise variance is the in-sample mean
square of ``ln mid_T(t + max(lag_s, 0)) − z(t)`` (this includes the target mid's own error about
V, so it is an upper bound for the error of z about V). The feature reports the price-layer value
``z(t) − ln mid_T(t)``.

Standard errors: the lag by a block bootstrap of the return pairs (non-overlapping blocks of
``block_s``, resampled with replacement); the basis and the noise variance by batch means over
blocks of the same length.

Time is local receive time (``clock="local"``, what a strategy can act on) unless
``clock="exchange"`` is asked for.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

import numpy as np
import pandas as pd

from mmlab.data.book import OrderBook
from mmlab.data.tape import EventKind, Tape
from mmlab.types import L2Book, VenueUpdate

__all__ = [
    "MidSeries",
    "mid_series",
    "usable_log_mid",
    "LeadLagParams",
    "LeadLagResult",
    "fit_lead_lag",
    "cross_venue_series",
    "CrossVenueMid",
    "out_of_sample_lead_lag",
]

_NS_PER_S = 1_000_000_000
#: candidate basis half-lives, seconds (log-spaced, 0.5 s … 2 h)
_HALF_LIFE_GRID_S = tuple(float(h) for h in np.geomspace(0.5, 7200.0, 25))


# -- mids of a tape --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class MidSeries:
    """The mid after every update group of a tape whose book is two-sided and not crossed.

    ``ts`` (int ns, sorted) is the group's local time, or with ``clock="exchange"`` the largest
    exchange time in the group (then re-sorted); ``mid`` is in USD.
    """

    ts: np.ndarray
    mid: np.ndarray

    @property
    def log_mid(self) -> np.ndarray:
        return np.log(self.mid)

    def __len__(self) -> int:
        return int(self.ts.shape[0])


def mid_series(tape: Tape, *, clock: str = "local") -> MidSeries:
    """Replay the tape's book and list its mid after every update group (rows sharing ``ts_local``).

    Groups that leave the book one-sided, crossed or locked give no mid.

    Raises
    ------
    ValueError
        If ``clock`` is not "local" or "exchange", or the tape never has a two-sided book.
    """
    if clock not in ("local", "exchange"):
        raise ValueError(f"mid_series: field 'clock' must be 'local' or 'exchange', got {clock!r}")
    book = OrderBook()
    kinds, sides, prices, sizes = (c.tolist() for c in (tape.kind, tape.side, tape.price, tape.size))
    ts_local, ts_exch = tape.ts_local.tolist(), tape.ts_exch.tolist()
    book_kind, clear_kind = int(EventKind.BOOK), int(EventKind.BOOK_CLEAR)
    out_ts: list[int] = []
    out_mid: list[float] = []
    n = len(kinds)
    touched = False
    group_exch = 0
    for i in range(n):
        kind = kinds[i]
        if kind == book_kind:
            book.apply(sides[i], prices[i], sizes[i])
            touched = True
            group_exch = max(group_exch, ts_exch[i])
        elif kind == clear_kind:
            book.clear()
            touched = True
            group_exch = max(group_exch, ts_exch[i])
        if touched and (i + 1 == n or ts_local[i + 1] != ts_local[i]):
            touched = False
            bid, ask = book.best_bid(), book.best_ask()
            if bid < ask:  # NaN (an empty side) compares False
                out_ts.append(ts_local[i] if clock == "local" else group_exch)
                out_mid.append(0.5 * (bid + ask))
            group_exch = 0
    if not out_ts:
        raise ValueError(f"mid_series: tape {tape.source or tape.instrument.coin!r} never has a two-sided, uncrossed book")
    ts = np.array(out_ts, dtype=np.int64)
    mid = np.array(out_mid, dtype=np.float64)
    if clock == "exchange":
        order = np.argsort(ts, kind="stable")
        ts, mid = ts[order], mid[order]
    ts.setflags(write=False)
    mid.setflags(write=False)
    return MidSeries(ts=ts, mid=mid)


def usable_log_mid(book: L2Book | None) -> float:
    """ln of the book's mid, or NaN when the book is None, one-sided, crossed/locked or not finite."""
    if book is None or book.bid_px.size == 0 or book.ask_px.size == 0:
        return math.nan
    bid, ask = float(book.bid_px[0]), float(book.ask_px[0])
    if not (math.isfinite(bid) and math.isfinite(ask) and 0.0 < bid < ask):
        return math.nan
    return math.log(0.5 * (bid + ask))


def _previous_tick(ts: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """``values`` at the last ``ts <= at`` (NaN before the first)."""
    index = np.searchsorted(ts, at, side="right") - 1
    out = np.where(index >= 0, values[np.maximum(index, 0)], np.nan)
    return out


# -- the fit ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LeadLagParams:
    """Fitted lead-lag parameters (see the module docstring).

    Attributes
    ----------
    lag_s : float
        Lead of the other venue over the target, s (> 0: the other venue moves first).
    basis : float
        Mean of ``ln mid_T(t − a) − ln mid_O(t − c)``, a log-price difference (fraction).
    basis_half_life_s : float
        Half-life of the EWMA that tracks the basis, s.
    noise_var : float
        Mean square of ``ln mid_T(t + max(lag_s, 0)) − (ln mid_O(t) + b(t))``, (ln USD)².
    bias : float
        Mean of the same error (ln USD); near 0 when the EWMA tracks the basis.
    peak_correlation : float
        ρ at the grid lag nearest ``lag_s``.
    grid_s : float
        Sampling grid of the fit, s.
    """

    lag_s: float
    basis: float
    basis_half_life_s: float
    noise_var: float
    bias: float
    peak_correlation: float
    grid_s: float

    @property
    def basis_bps(self) -> float:
        return self.basis * 1e4

    @property
    def noise_std_bps(self) -> float:
        return math.sqrt(self.noise_var) * 1e4


@dataclass(frozen=True, slots=True, kw_only=True)
class LeadLagResult:
    """What :func:`fit_lead_lag` estimated, with standard errors and the correlation curve.

    ``std_err`` maps ``lag_s``, ``basis`` and ``noise_var`` to their standard errors (read-only);
    ``lags_s`` and ``correlation`` are the curve ρ(ℓ) (read-only arrays); ``half_life_grid_s`` and
    ``half_life_mse`` the basis-forecast MSE (ln USD)² of each candidate half-life.
    """

    params: LeadLagParams
    std_err: Mapping[str, float]
    lags_s: np.ndarray
    correlation: np.ndarray
    half_life_grid_s: np.ndarray
    half_life_mse: np.ndarray
    n_samples: int
    span_s: float
    ts_start: int
    ts_end: int
    target: str
    other: str
    clock: str
    bootstrap_replicates: int

    def conf_int(self, z: float = 1.959964) -> dict[str, tuple[float, float]]:
        """Normal-approximation intervals ``estimate ± z · std_err`` (default 95 %)."""
        return {name: (getattr(self.params, name) - z * se, getattr(self.params, name) + z * se) for name, se in self.std_err.items()}

    def summary(self) -> str:
        p, se = self.params, self.std_err
        leader = self.other if p.lag_s > 0 else self.target
        lines = [
            f"Lead-lag of {self.other} (other) vs {self.target} (target), {self.clock} clock",
            f"  {self.n_samples:,} grid samples of {p.grid_s * 1e3:g} ms over {self.span_s:,.1f} s",
            f"  lag_s              {p.lag_s:+.4f} s  (std err {se['lag_s']:.4f} s, {self.bootstrap_replicates} block-bootstrap replicates); "
            f"{leader} leads by {abs(p.lag_s) * 1e3:.1f} ms",
            f"  peak correlation   {p.peak_correlation:.3f} (of {self.correlation.size} lags in ±{self.lags_s[-1]:g} s)",
            f"  basis              {p.basis_bps:+.3f} bps  (std err {se['basis'] * 1e4:.3f} bps)",
            f"  basis half-life    {p.basis_half_life_s:,.1f} s",
            f"  noise std          {p.noise_std_bps:.3f} bps  (noise_var {p.noise_var:.3e}, std err {se['noise_var']:.2e}); bias {p.bias * 1e4:+.3f} bps",
        ]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return "<pre>" + self.summary().replace("&", "&amp;").replace("<", "&lt;") + "</pre>"


def _name(tape: Tape) -> str:
    return f"{tape.venue}:{tape.instrument.coin}"


def _as_mids(source: Tape | MidSeries, clock: str) -> MidSeries:
    return source if isinstance(source, MidSeries) else mid_series(source, clock=clock)


def _check_positive(name: str, value: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"fit_lead_lag: field {name!r} must be positive and finite, got {value!r}")
    return value


def _block_lagged_products(r_target: np.ndarray, r_other: np.ndarray, max_lag: int, block: int, n_blocks: int) -> np.ndarray:
    """``P[j, b] = Σ_{k in block b} r_T[k] · r_O[k − ℓ_j]`` (terms with ``k − ℓ`` outside dropped),
    ``ℓ_j = j − max_lag``; one lag at a time, so memory stays O(n)."""
    n = r_target.size
    used = n_blocks * block
    out = np.empty((2 * max_lag + 1, n_blocks))
    product = np.empty(n)
    for j, lag in enumerate(range(-max_lag, max_lag + 1)):
        product.fill(0.0)
        if lag >= 0:
            np.multiply(r_target[lag:], r_other[: n - lag], out=product[lag:])
        else:
            np.multiply(r_target[:lag], r_other[-lag:], out=product[:lag])
        out[j] = product[:used].reshape(n_blocks, block).sum(axis=1)
    return out


def _refined_peak(correlation: np.ndarray) -> float:
    """Index of the maximum refined by a parabola through it and its neighbours (grid units)."""
    j = int(np.argmax(correlation))
    if 0 < j < correlation.size - 1:
        left, mid, right = correlation[j - 1], correlation[j], correlation[j + 1]
        curvature = left - 2.0 * mid + right
        if curvature < 0.0:
            # vertex of the parabola through (−1, left), (0, mid), (1, right)
            return j + 0.5 * (left - right) / curvature
    return float(j)


def _ewma_basis(e: np.ndarray, ts: np.ndarray, half_life_s: float, start: float) -> np.ndarray:
    """The basis after each sample, as :class:`CrossVenueMid` tracks it.

    ``b`` starts at ``start``; the first defined ``e`` only starts the EWMA's clock; each later one
    moves it by ``b ← b + (1 − 2^{−Δt/H}) (e − b)``, Δt the time since the previous defined ``e``.
    NaN samples leave ``b`` and its clock unchanged.
    """
    out = np.empty(e.size)
    basis = float(start)
    last_ts: int | None = None
    half_life_ns = half_life_s * _NS_PER_S
    for k, (value, t) in enumerate(zip(e.tolist(), ts.tolist())):
        if value == value:  # not NaN
            if last_ts is not None:
                # weight of the new pair: 1 − 2^(−Δt/H)
                weight = 1.0 - 0.5 ** ((t - last_ts) / half_life_ns)
                basis += weight * (value - basis)
            last_ts = t
        out[k] = basis
    return out


def fit_lead_lag(
    target_tape: Tape | MidSeries,
    other_tape: Tape | MidSeries,
    *,
    max_lag_s: float = 2.0,
    grid_s: float = 0.01,
    basis_horizon_s: float = 10.0,
    block_s: float = 10.0,
    bootstrap_replicates: int = 200,
    clock: str = "local",
    seed: int = 0,
    target_name: str | None = None,
    other_name: str | None = None,
) -> LeadLagResult:
    """Fit the lag, basis and noise of the other venue's mid as an observation of the target's.

    Parameters
    ----------
    target_tape, other_tape : Tape or MidSeries
        The venue we trade and the second venue (tapes are replayed with :func:`mid_series`).
    max_lag_s : float
        Largest lag searched, either way, s.
    grid_s : float
        Sampling grid of the returns, s (finer than either venue's update interval).
    basis_horizon_s : float
        Horizon at which the basis EWMA is judged when choosing its half-life, s.
    block_s : float
        Block length of the bootstrap and of the batch means, s.
    bootstrap_replicates : int
        Block-bootstrap replicates for the lag's standard error.
    clock : {"local", "exchange"}
        Which timestamps to align the venues by.
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    LeadLagResult

    Raises
    ------
    ValueError
        If a parameter is out of range, the venues do not overlap, or the overlap holds fewer
        returns than ten blocks or four times ``max_lag_s``.
    """
    grid_s = _check_positive("grid_s", grid_s)
    max_lag_s = _check_positive("max_lag_s", max_lag_s)
    basis_horizon_s = _check_positive("basis_horizon_s", basis_horizon_s)
    block_s = _check_positive("block_s", block_s)
    if int(bootstrap_replicates) < 2:
        raise ValueError(f"fit_lead_lag: field 'bootstrap_replicates' must be >= 2, got {bootstrap_replicates!r}")
    target = _as_mids(target_tape, clock)
    other = _as_mids(other_tape, clock)
    target_name = target_name or (_name(target_tape) if isinstance(target_tape, Tape) else "target")
    other_name = other_name or (_name(other_tape) if isinstance(other_tape, Tape) else "other")
    grid_ns = int(round(grid_s * _NS_PER_S))
    ts_start = max(int(target.ts[0]), int(other.ts[0]))
    ts_end = min(int(target.ts[-1]), int(other.ts[-1]))
    if ts_end <= ts_start:
        raise ValueError(f"fit_lead_lag: {target_name} and {other_name} do not overlap in time ({clock} clock)")
    grid = np.arange(ts_start, ts_end + 1, grid_ns, dtype=np.int64)
    max_lag = int(round(max_lag_s / grid_s))
    block = max(1, int(round(block_s / grid_s)))
    n_returns = grid.size - 1
    if n_returns < max(10 * block, 4 * max_lag + 2):
        raise ValueError(
            f"fit_lead_lag: the overlap of {(ts_end - ts_start) / _NS_PER_S:.1f} s holds {n_returns} returns; "
            f"need at least ten blocks of {block_s:g} s and four times max_lag_s"
        )
    log_target, log_other = target.log_mid, other.log_mid
    target_grid = _previous_tick(target.ts, log_target, grid)
    other_grid = _previous_tick(other.ts, log_other, grid)
    r_target, r_other = np.diff(target_grid), np.diff(other_grid)

    # ρ(ℓ) = Σ r_T[k] r_O[k−ℓ] / sqrt(Σ r_T² Σ r_O²)
    n_blocks = n_returns // block
    used = n_blocks * block
    block_products = _block_lagged_products(r_target, r_other, max_lag, block, n_blocks)
    block_target_sq = (r_target[:used] ** 2).reshape(n_blocks, block).sum(axis=1)
    block_other_sq = (r_other[:used] ** 2).reshape(n_blocks, block).sum(axis=1)
    denominator = math.sqrt(float(block_target_sq.sum() * block_other_sq.sum()))
    if denominator == 0.0:
        raise ValueError(f"fit_lead_lag: a mid never moves on the {grid_s:g} s grid ({target_name} or {other_name})")
    correlation = block_products.sum(axis=1) / denominator
    lags = np.arange(-max_lag, max_lag + 1)
    peak = _refined_peak(correlation)
    lag_s = (peak - max_lag) * grid_s

    # block bootstrap: resample whole non-overlapping blocks of return pairs, with replacement
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_blocks, np.full(n_blocks, 1.0 / n_blocks), size=int(bootstrap_replicates)).astype(float)
    boot_numerator = counts @ block_products.T
    boot_denominator = np.sqrt((counts @ block_target_sq) * (counts @ block_other_sq))
    boot_lags = np.array([(_refined_peak(row / d) - max_lag) * grid_s for row, d in zip(boot_numerator, boot_denominator) if d > 0])
    lag_std_err = float(np.std(boot_lags, ddof=1))

    # the basis pairs known at t: ln T(t − a) − ln O(t − c)
    lag_ns = int(round(lag_s * _NS_PER_S))
    a_ns, c_ns = max(0, -lag_ns), max(0, lag_ns)
    e = _previous_tick(target.ts, log_target, grid - a_ns) - _previous_tick(other.ts, log_other, grid - c_ns)
    basis_mean = float(np.nanmean(e))
    horizon = max(1, int(round(basis_horizon_s / grid_s)))
    mse = []
    for half_life in _HALF_LIFE_GRID_S:
        basis = _ewma_basis(e, grid, half_life, basis_mean)
        # b(t) as a forecast of e(t + horizon)
        error = e[horizon:] - basis[:-horizon]
        mse.append(float(np.nanmean(error**2)))
    best = int(np.argmin(mse))
    half_life_s = _HALF_LIFE_GRID_S[best]
    basis = _ewma_basis(e, grid, half_life_s, basis_mean)

    # z(t) = ln O(t) + b(t) observes ln T(t + max(lag, 0))
    ahead_ns = max(0, lag_ns)
    observed = grid + ahead_ns <= ts_end
    truth = _previous_tick(target.ts, log_target, grid[observed] + ahead_ns)
    error = truth - (other_grid[observed] + basis[observed])
    error = error[np.isfinite(error)]
    noise_var = float(np.mean(error**2))
    bias = float(np.mean(error))

    params = LeadLagParams(
        lag_s=float(lag_s),
        basis=basis_mean,
        basis_half_life_s=half_life_s,
        noise_var=noise_var,
        bias=bias,
        peak_correlation=float(correlation[int(round(peak))]),
        grid_s=grid_s,
    )
    std_err = MappingProxyType(
        {"lag_s": lag_std_err, "basis": _batch_means_std_err(e, block), "noise_var": _batch_means_std_err(error**2, block)}
    )
    return LeadLagResult(
        params=params,
        std_err=std_err,
        lags_s=_readonly(lags * grid_s),
        correlation=_readonly(correlation),
        half_life_grid_s=_readonly(_HALF_LIFE_GRID_S),
        half_life_mse=_readonly(mse),
        n_samples=int(grid.size),
        span_s=(ts_end - ts_start) / _NS_PER_S,
        ts_start=ts_start,
        ts_end=ts_end,
        target=target_name,
        other=other_name,
        clock=clock,
        bootstrap_replicates=int(boot_lags.size),
    )


def _readonly(values: object) -> np.ndarray:
    array = np.array(values, dtype=np.float64)
    array.setflags(write=False)
    return array


def _batch_means_std_err(x: np.ndarray, block: int) -> float:
    """Standard error of the mean of a dependent series by non-overlapping batch means."""
    x = x[np.isfinite(x)]
    n_blocks = x.size // block
    if n_blocks < 2:
        return math.nan
    means = x[: n_blocks * block].reshape(n_blocks, block).mean(axis=1)
    return float(np.std(means, ddof=1) / math.sqrt(n_blocks))


# -- the layer over a grid and online -------------------------------------------------------


def _params_of(fit: LeadLagResult | LeadLagParams) -> LeadLagParams:
    if isinstance(fit, LeadLagResult):
        return fit.params
    if isinstance(fit, LeadLagParams):
        return fit
    raise TypeError(f"expected a LeadLagResult or LeadLagParams, got {type(fit).__name__}")


def _sampled(series: MidSeries, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What polling ``series`` at ``grid`` delivers: the index of the mid seen at each grid time
    (−1 before the first), and the (ts, ln mid) of every distinct mid seen, in order."""
    index = np.searchsorted(series.ts, grid, side="right") - 1
    seen = np.unique(index[index >= 0])
    return index, series.ts[seen], series.log_mid[seen]


def cross_venue_series(
    target: Tape | MidSeries,
    other: Tape | MidSeries,
    fit: LeadLagResult | LeadLagParams,
    grid_ts: np.ndarray,
    *,
    max_staleness_s: float = 10.0,
) -> pd.DataFrame:
    """The :class:`CrossVenueMid` layer as if both venues were polled at every ``grid_ts`` (local ns).

    At each grid time the other venue's update is absorbed first, then the target's, exactly as
    the online feature sees them (a test checks that both agree). One difference: a poll that
    finds a crossed book makes the online feature skip it, while here the last uncrossed mid
    stands in (:func:`mid_series` drops crossed states).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``ts_local`` (ns): ``log_mid_target``, ``log_mid_other`` (ln USD, NaN before the
        first book), ``basis`` (fraction) and ``value`` (``ln mid_O + basis − ln mid_T``, NaN
        while either mid is missing or the other venue's book is older than ``max_staleness_s``).
    """
    params = _params_of(fit)
    target_mids, other_mids = _as_mids(target, "local"), _as_mids(other, "local")
    grid = np.asarray(grid_ts, dtype=np.int64)
    if grid.ndim != 1 or np.any(np.diff(grid) < 0):
        raise ValueError("cross_venue_series: field 'grid_ts' must be a sorted 1-D array of ns")
    target_index, target_seen_ts, target_seen = _sampled(target_mids, grid)
    other_index, other_seen_ts, other_seen = _sampled(other_mids, grid)
    log_target = np.where(target_index >= 0, target_mids.log_mid[np.maximum(target_index, 0)], np.nan)
    log_other = np.where(other_index >= 0, other_mids.log_mid[np.maximum(other_index, 0)], np.nan)
    other_stamp = np.where(other_index >= 0, other_mids.ts[np.maximum(other_index, 0)], np.iinfo(np.int64).min)
    lag_ns = int(round(params.lag_s * _NS_PER_S))
    a_ns, c_ns = max(0, -lag_ns), max(0, lag_ns)
    # e(t) = ln T(t − a) − ln O(t − c), from the mids seen by t
    e = _previous_tick(target_seen_ts, target_seen, grid - a_ns) - _previous_tick(other_seen_ts, other_seen, grid - c_ns)
    # a target update without a usable book does not move the basis
    e[target_index < 0] = np.nan
    basis = _ewma_basis(e, grid, params.basis_half_life_s, params.basis)
    fresh = (grid - other_stamp) <= max_staleness_s * _NS_PER_S
    value = np.where(fresh, log_other + basis - log_target, np.nan)
    return pd.DataFrame(
        {"log_mid_target": log_target, "log_mid_other": log_other, "basis": basis, "value": value},
        index=pd.Index(grid, name="ts_local"),
    )


class _History:
    """(ts, value) pairs in time order; ``at(t)`` gives the value of the last pair with ts <= t.

    Queries must not go back in time, so pairs older than the answer are dropped: O(1) amortized.
    """

    __slots__ = ("_pairs",)

    def __init__(self) -> None:
        self._pairs: deque[tuple[int, float]] = deque()

    def append(self, ts: int, value: float) -> None:
        if self._pairs and self._pairs[-1][0] == ts:
            self._pairs[-1] = (ts, value)  # the same book again
        elif not self._pairs or ts > self._pairs[-1][0]:
            self._pairs.append((ts, value))

    def at(self, ts: int) -> float:
        pairs = self._pairs
        while len(pairs) >= 2 and pairs[1][0] <= ts:
            pairs.popleft()
        if pairs and pairs[0][0] <= ts:
            return pairs[0][1]
        return math.nan


class CrossVenueMid:
    """Price layer from a second venue's mid: ``value = ln mid_O + b − ln mid_T`` (fraction).

    Feed the second venue's updates to :meth:`update_other` and the target's to :meth:`update`
    (the other venue first when both arrive together). ``ln mid_T + value`` is an observation of
    ln V with noise variance ``params.noise_var`` (module docstring). Positive when the other
    venue prices the asset above the target: evidence that the target's price will go up.

    Parameters
    ----------
    fit : LeadLagResult or LeadLagParams
        From :func:`fit_lead_lag`.
    max_staleness_s : float
        The layer is NaN while the other venue's book is older than this (s, local time).
    name : str
        Feature name.

    Attributes
    ----------
    dropped, dropped_other : int
        Target / other-venue updates whose book was None, one-sided, crossed or not finite.
    basis : float
        Current basis estimate (fraction).
    """

    def __init__(self, fit: LeadLagResult | LeadLagParams, *, max_staleness_s: float = 10.0, name: str = "cross_venue_mid") -> None:
        self.params = _params_of(fit)
        if not (math.isfinite(max_staleness_s) and max_staleness_s > 0.0):
            raise ValueError(f"CrossVenueMid: field 'max_staleness_s' must be positive, got {max_staleness_s!r}")
        self.name = name
        self.dropped = 0
        self.dropped_other = 0
        self.basis = self.params.basis
        lag_ns = int(round(self.params.lag_s * _NS_PER_S))
        self._a_ns, self._c_ns = max(0, -lag_ns), max(0, lag_ns)
        self._half_life_ns = self.params.basis_half_life_s * _NS_PER_S
        self._max_staleness_ns = max_staleness_s * _NS_PER_S
        self._target_history = _History()
        self._other_history = _History()
        self._log_target = math.nan
        self._log_other = math.nan
        self._other_stamp: int | None = None
        self._now: int | None = None
        self._basis_ts: int | None = None

    def update_other(self, update: VenueUpdate) -> None:
        """Absorb one update of the second venue (only its book is used)."""
        log_mid = usable_log_mid(update.book)
        if math.isnan(log_mid):
            self.dropped_other += 1
            return
        stamp = update.book.ts_local
        self._log_other = log_mid
        self._other_stamp = stamp
        self._other_history.append(stamp, log_mid)

    def update(self, update: VenueUpdate) -> None:
        """Absorb one update of the target venue and move the basis."""
        now = update.ts_local
        self._now = now
        log_mid = usable_log_mid(update.book)
        if math.isnan(log_mid):
            self.dropped += 1
            return
        self._log_target = log_mid
        self._target_history.append(update.book.ts_local, log_mid)
        # e(t) = ln T(t − a) − ln O(t − c)
        pair = self._target_history.at(now - self._a_ns) - self._other_history.at(now - self._c_ns)
        if math.isnan(pair):
            return
        if self._basis_ts is not None:
            # b ← b + (1 − 2^(−Δt/H)) (e − b)
            weight = 1.0 - 0.5 ** ((now - self._basis_ts) / self._half_life_ns)
            self.basis += weight * (pair - self.basis)
        self._basis_ts = now

    @property
    def value(self) -> float:
        """``ln mid_O + basis − ln mid_T`` (fraction); NaN until both mids exist or when the other is stale."""
        if self._other_stamp is None or self._now is None or self._now - self._other_stamp > self._max_staleness_ns:
            return math.nan
        return self._log_other + self.basis - self._log_target

    @property
    def noise_var(self) -> float:
        """Noise variance of ``ln mid_T + value`` as an observation of ln V, (ln USD)²."""
        return self.params.noise_var


# -- out-of-sample check ---------------------------------------------------------------------


def out_of_sample_lead_lag(
    target: Tape | MidSeries,
    other: Tape | MidSeries,
    *,
    split: float = 0.5,
    horizons_s: tuple[float, ...] = (1.0, 10.0),
    eval_grid_s: float = 0.1,
    **fit_options: object,
) -> tuple[LeadLagResult, pd.DataFrame]:
    """Fit on the first ``split`` of the overlap, judge predictions of the target mid on the rest.

    Three predictors of ``ln mid_T(t + h)`` at each evaluation grid time ``t``: the current mid;
    the layer ``ln mid_T + value`` (``mid · exp(value)``); and ``ln mid_T + w_h · value`` with
    ``w_h`` the least-squares weight of the layer on the fit half (what a filter that also sees
    the mid makes of it). The feature runs over the whole overlap (its past only), scored on the
    second part.

    Returns
    -------
    (LeadLagResult, pandas.DataFrame)
        The fit, and one row per horizon: ``horizon_s``, ``n``, ``mse_mid``, ``mse_layer``,
        ``mse_combined`` ((ln USD)²), ``weight``, ``ratio_layer`` and ``ratio_combined`` (MSE over
        that of the mid; below 1 is better).
    """
    if not 0.0 < split < 1.0:
        raise ValueError(f"out_of_sample_lead_lag: field 'split' must be in (0, 1), got {split!r}")
    target_mids, other_mids = _as_mids(target, "local"), _as_mids(other, "local")
    ts_start = max(int(target_mids.ts[0]), int(other_mids.ts[0]))
    ts_end = min(int(target_mids.ts[-1]), int(other_mids.ts[-1]))
    ts_split = ts_start + int(split * (ts_end - ts_start))

    def before(series: MidSeries) -> MidSeries:
        keep = series.ts < ts_split
        return MidSeries(ts=series.ts[keep], mid=series.mid[keep])

    names = {
        "target_name": _name(target) if isinstance(target, Tape) else "target",
        "other_name": _name(other) if isinstance(other, Tape) else "other",
    }
    fit = fit_lead_lag(before(target_mids), before(other_mids), **{**names, **fit_options})  # type: ignore[arg-type]
    grid = np.arange(ts_start, ts_end + 1, int(round(eval_grid_s * _NS_PER_S)), dtype=np.int64)
    layer = cross_venue_series(target_mids, other_mids, fit, grid)
    rows = []
    for horizon_s in horizons_s:
        horizon_ns = int(round(horizon_s * _NS_PER_S))
        future = _previous_tick(target_mids.ts, target_mids.log_mid, grid + horizon_ns)
        now = layer["log_mid_target"].to_numpy()
        value = layer["value"].to_numpy()
        ok = np.isfinite(future) & np.isfinite(now) & np.isfinite(value) & (grid + horizon_ns <= ts_end)
        train = ok & (grid + horizon_ns < ts_split)
        test = ok & (grid >= ts_split)
        move, signal = future - now, value
        # w = Σ move·value / Σ value² on the fit half
        weight = float(np.sum(move[train] * signal[train]) / np.sum(signal[train] ** 2))
        mse_mid = float(np.mean(move[test] ** 2))
        mse_layer = float(np.mean((move[test] - signal[test]) ** 2))
        mse_combined = float(np.mean((move[test] - weight * signal[test]) ** 2))
        rows.append(
            {
                "horizon_s": float(horizon_s),
                "n": int(test.sum()),
                "mse_mid": mse_mid,
                "mse_layer": mse_layer,
                "mse_combined": mse_combined,
                "weight": weight,
                "ratio_layer": mse_layer / mse_mid,
                "ratio_combined": mse_combined / mse_mid,
            }
        )
    return fit, pd.DataFrame(rows)
