"""Fill intensities Λ_s(δ) = A_s e^{−κ_s δ} per side, fitted from a tape's trades.

A resting bid at depth δ bps below the reference price is filled by a seller-initiated trade that
prints at or below it, so the rate at which such trades print, λ_b(δ) (per second), is the
bid's fill intensity (and the mirror for asks with buyer-initiated trades at or above the
reference + δ). The reference of a trade is the mid of the book as it stood before the update
that delivered the trade (so a trade's own book change does not move its reference).

Method. The cumulative counts N(≥ δ) at different δ share their trades, so their errors are
correlated; the fit uses disjoint bins instead, from the shallowest trade δ_0 outward (nothing prints inside
the spread, so λ is flat there; A is the fitted line extrapolated to δ = 0). With bins
[δ_j, δ_j + h) the count n_j is
Poisson with mean T (Λ(δ_j) − Λ(δ_j + h)) = T A (1 − e^{−κ h}) e^{−κ δ_j}, so

    log n_j = log(T A (1 − e^{−κ h})) − κ δ_j + ε_j,      Var ε_j ≈ 1 / n_j,

a weighted least-squares line in δ_j with weights n_j (the inverse variances), over the bins
from δ_0 outward up to the first bin with fewer than ``min_count`` trades (so that the tail is
not selected on upward fluctuations). The standard errors are those of the known-variance WLS,
(Xᵀ W X)^{−1}, multiplied by χ²/dof when that exceeds 1 (the quasi-likelihood correction
for counts that scatter more than Poisson or a depth profile that is not exactly exponential);
A's follows by the delta method from log A = c − log T − log(1 − e^{−κ h}).
T is the time the tape's touch was usable. The per-δ rates λ(δ) = N(≥ δ)/T on the bin edges are
kept in the result for inspection.
"""

from __future__ import annotations

from collections.abc import Sequence

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from mmlab.config import ActuaryConfig
from mmlab.data.tape import Tape

__all__ = ["SideIntensity", "IntensityFit", "fit_fill_intensity", "fit_intensity_from_depths", "trade_depths"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SideIntensity:
    """Λ(δ) = A e^{−κ δ} for one side with standard errors and the data behind it."""

    intensity_per_s: float
    intensity_se_per_s: float
    decay_per_bps: float
    decay_se_per_bps: float
    trades: int
    bins_used: int
    bin_bps: float
    chi2_per_dof: float
    edges_bps: np.ndarray
    rate_per_s: np.ndarray

    def summary(self) -> str:
        return (
            f"A = {self.intensity_per_s:.4g} ± {self.intensity_se_per_s:.2g} per s, "
            f"κ = {self.decay_per_bps:.4g} ± {self.decay_se_per_bps:.2g} per bps "
            f"({self.trades} trades, {self.bins_used} bins of {self.bin_bps:.3g} bps, χ²/dof {self.chi2_per_dof:.2f})"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class IntensityFit:
    """Fitted fill intensities of both sides (bid: filled by sellers, ask: by buyers)."""

    bid: SideIntensity
    ask: SideIntensity
    duration_s: float
    source: str = ""

    def summary(self) -> str:
        where = f" on {self.source}" if self.source else ""
        return (
            f"fill intensity{where} over {self.duration_s:.1f} s\n"
            f"  bid: {self.bid.summary()}\n"
            f"  ask: {self.ask.summary()}"
        )

    def actuary_config(self, base: ActuaryConfig | None = None) -> ActuaryConfig:
        """``base`` (default: the default config) with the fitted A and κ of both sides."""
        return dataclasses.replace(
            base or ActuaryConfig(),
            intensity_at_touch_bid_per_s=self.bid.intensity_per_s,
            intensity_at_touch_ask_per_s=self.ask.intensity_per_s,
            intensity_decay_bid_per_bps=self.bid.decay_per_bps,
            intensity_decay_ask_per_bps=self.ask.decay_per_bps,
        )


def trade_depths(tape: Tape) -> tuple[np.ndarray, np.ndarray, float]:
    """Depths (bps from the pre-trade mid) of seller-initiated trades (bid side) and
    buyer-initiated trades (ask side), and the time the touch was usable (s).

    Raises
    ------
    ValueError
        If the tape has no usable book or no trades with one.
    """
    from mmlab.sensor.book_features import book_frame  # the sensor's book replay (one row per update)

    frame = book_frame(tape, levels=1)
    mid = frame.mid
    usable = np.isfinite(mid)
    ts = frame.ts_local.astype(np.int64)
    duration_s = float(np.sum(np.diff(ts)[usable[:-1]])) / 1e9
    if not duration_s > 0.0:
        raise ValueError(f"trade_depths: tape {tape.source or tape.instrument.coin!r} has no usable touch")
    # reference: the mid before the update that delivered the trade
    before = frame.trade_row - 1
    ok = before >= 0
    ref = np.full(before.shape, np.nan)
    ref[ok] = mid[before[ok]]
    ok &= np.isfinite(ref)
    if not ok.any():
        raise ValueError(f"trade_depths: tape {tape.source or tape.instrument.coin!r} has no trade with a usable book before it")
    side = frame.trade_side[ok]
    price = frame.trade_price[ok]
    ref = ref[ok]
    # bid side: sellers at ref·(1 − δ);  ask side: buyers at ref·(1 + δ)
    depth = 1e4 * (price - ref) / ref
    return -depth[side < 0], depth[side > 0], duration_s


def _fit_side(
    depth_bps: np.ndarray, duration_s: float, bin_bps: float | None, min_count: int, name: str, min_bin_bps: float
) -> SideIntensity:
    depth = np.asarray(depth_bps, dtype=float)
    depth = depth[np.isfinite(depth) & (depth >= 0.0)]
    if depth.size < 3 * min_count:
        raise ValueError(f"fit_fill_intensity: {name} side has {depth.size} trades at depth ≥ 0; need at least {3 * min_count}")
    if bin_bps is None:
        # default bin: a tenth of the mean depth (for an exponential, 1/(10 κ)), at least a price tick
        bin_bps = max(float(np.mean(depth)) / 10.0, min_bin_bps)
        if not bin_bps > 0.0:
            raise ValueError(f"fit_fill_intensity: {name} side trades all print at depth 0; give bin_bps")
    # bins start at the shallowest trade: no trade prints inside the spread, so λ(δ) is flat
    # there and the exponential describes the depths from the touch outward (A extrapolates it to δ = 0)
    origin = float(depth.min())
    counts = np.bincount(np.floor((depth - origin) / bin_bps).astype(np.int64))
    short = np.flatnonzero(counts < min_count)
    used = int(short[0]) if short.size else counts.size
    if used < 3:
        raise ValueError(
            f"fit_fill_intensity: {name} side has fewer than 3 bins of {bin_bps:.3g} bps with ≥ {min_count} trades; widen bin_bps"
        )
    n = counts[:used].astype(float)
    left = origin + np.arange(used) * bin_bps
    # log n_j = c − κ δ_j, weights n_j
    design = np.column_stack([np.ones(used), -left])
    y = np.log(n)
    xtw = design.T * n
    cov = np.linalg.inv(xtw @ design)
    c, kappa = cov @ (xtw @ y)
    residual = y - design @ np.array([c, kappa])
    chi2 = float(np.sum(n * residual**2) / max(used - 2, 1))
    # over-dispersion or misfit (χ²/dof > 1) inflates the covariance (quasi-likelihood scaling)
    cov = cov * max(1.0, chi2)
    if not kappa > 0.0:
        raise ValueError(f"fit_fill_intensity: {name} side fill rate does not fall with depth (κ = {kappa:.3g} per bps)")
    # A = e^c / (T (1 − e^{−κ h}))
    survive = -math.expm1(-kappa * bin_bps)
    intensity = math.exp(c) / (duration_s * survive)
    # ∂ log A / ∂(c, κ) = (1, −h e^{−κh} / (1 − e^{−κh}))
    grad = np.array([1.0, -bin_bps * math.exp(-kappa * bin_bps) / survive])
    log_a_se = math.sqrt(float(grad @ cov @ grad))
    edges = origin + np.arange(used + 1) * bin_bps
    # λ(δ) = N(≥ δ) / T on the bin edges
    rate = np.searchsorted(np.sort(depth), edges, side="left")
    rate = (depth.size - rate) / duration_s
    return SideIntensity(
        intensity_per_s=float(intensity),
        intensity_se_per_s=float(intensity * log_a_se),
        decay_per_bps=float(kappa),
        decay_se_per_bps=float(math.sqrt(cov[1, 1])),
        trades=int(depth.size),
        bins_used=used,
        bin_bps=float(bin_bps),
        chi2_per_dof=chi2,
        edges_bps=edges,
        rate_per_s=rate.astype(float),
    )


def fit_intensity_from_depths(
    depth_bid_bps: np.ndarray,
    depth_ask_bps: np.ndarray,
    duration_s: float,
    *,
    bin_bps: float | None = None,
    min_count: int = 5,
    source: str = "",
    min_bin_bps: float = 0.0,
) -> IntensityFit:
    """Fit both sides from trade depths (bps, ≥ 0 kept) observed over ``duration_s`` seconds;
    see the module docstring. ``bin_bps`` defaults to a tenth of each side's mean depth, but no
    less than ``min_bin_bps`` (a price tick, so that bins between ticks are not empty)."""
    if not (math.isfinite(duration_s) and duration_s > 0.0):
        raise ValueError(f"fit_fill_intensity: duration_s must be > 0, got {duration_s!r}")
    if not (isinstance(min_count, int) and min_count >= 1):
        raise ValueError(f"fit_fill_intensity: min_count must be an integer ≥ 1, got {min_count!r}")
    if bin_bps is not None and not (math.isfinite(bin_bps) and bin_bps > 0.0):
        raise ValueError(f"fit_fill_intensity: bin_bps must be > 0, got {bin_bps!r}")
    return IntensityFit(
        bid=_fit_side(depth_bid_bps, duration_s, bin_bps, min_count, "bid", min_bin_bps),
        ask=_fit_side(depth_ask_bps, duration_s, bin_bps, min_count, "ask", min_bin_bps),
        duration_s=float(duration_s),
        source=source,
    )


def fit_fill_intensity(tape: Tape | Sequence[Tape], *, bin_bps: float | None = None, min_count: int = 5) -> IntensityFit:
    """Fit A and κ per side from one tape or several pooled (:func:`trade_depths` of each, their
    usable durations added, then :func:`fit_intensity_from_depths`)."""
    from mmlab.data.tape import EventKind

    tapes = [tape] if isinstance(tape, Tape) else list(tape)
    if not tapes:
        raise ValueError("fit_fill_intensity: no tape given")
    bids, asks, duration_s, tick_bps = [], [], 0.0, math.inf
    for one in tapes:
        bid, ask, duration = trade_depths(one)
        bids.append(bid)
        asks.append(ask)
        duration_s += duration
        # the price grid: the smallest gap between distinct trade prices, in bps of their median
        prices = np.unique(one.price[one.kind == int(EventKind.TRADE)])
        gaps = np.diff(prices)
        gaps = gaps[gaps > 1e-9 * prices[-1]] if prices.size > 1 else gaps
        if gaps.size:
            tick_bps = min(tick_bps, float(1e4 * gaps.min() / np.median(prices)))
    source = " + ".join(one.source or one.instrument.coin for one in tapes)
    return fit_intensity_from_depths(
        np.concatenate(bids),
        np.concatenate(asks),
        duration_s,
        bin_bps=bin_bps,
        min_count=min_count,
        source=source,
        min_bin_bps=tick_bps if math.isfinite(tick_bps) else 0.0,
    )
