"""Funding: the expected carry of a position held for a random time, and the rate's OU fit.

Hyperliquid settles funding every interval I (one hour) at fixed times; a long position pays the
settlement's rate r_k times its notional if it is still held then (a short receives it). The rate is
modelled as an Ornstein–Uhlenbeck process sampled at settlements,

    r_{k+1} = r̄ + φ (r_k − r̄) + s √(1 − φ²) ε,      φ = exp(−I / τ_f),

and the venue's current rate is taken as the prediction of the next settlement, r_1. Then

    E[r_k] = r̄ + (r_1 − r̄) φ^{k−1}.

A market maker holds a coin for a random time; with an exponential holding time of mean H the coin
is still held at the k-th settlement, t_k = t_1 + (k − 1) I from now, with probability e^{−t_k/H}.
The expected funding paid per coin long, as a fraction of its value, is therefore

    C = Σ_{k≥1} e^{−t_k/H} E[r_k]
      = e^{−t_1/H} ( r̄ / (1 − ρ) + (r_1 − r̄) / (1 − ρ φ) ),      ρ = e^{−I/H}.

For H ≫ I this tends to r̄ H / I + (r_1 − r̄) τ_f / I (funding accrues at its mean rate); for H ≪ I it
is ≈ r_1 e^{−t_1/H}: only a position still open at the next settlement pays, so the carry rises as
the settlement approaches and vanishes just after it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["expected_funding_carry", "seconds_to_next_settlement", "FundingFit", "fit_funding_ou"]


def seconds_to_next_settlement(ts_ns: int, interval_s: float) -> float:
    """Time from ``ts_ns`` to the next settlement, which falls on multiples of ``interval_s``
    since the Unix epoch (Hyperliquid settles on the hour). A settlement exactly at ``ts_ns`` has
    already been paid, so the answer is in (0, interval_s]."""
    interval_ns = int(round(interval_s * 1e9))
    return (interval_ns - ts_ns % interval_ns) / 1e9


def expected_funding_carry(
    *,
    next_rate: float,
    mean_rate: float,
    reversion_s: float,
    interval_s: float,
    to_next_s: float,
    holding_horizon_s: float,
) -> float:
    """Expected funding paid by one coin long held for an exponential time of mean H (a fraction of
    its value; negative when longs are paid). See the module docstring for the formula."""
    # ρ = e^{−I/H}: probability of still holding one interval later;  φ = e^{−I/τ_f}
    rho = math.exp(-interval_s / holding_horizon_s)
    phi = math.exp(-interval_s / reversion_s)
    # C = e^{−t_1/H} ( r̄ / (1 − ρ) + (r_1 − r̄) / (1 − ρ φ) )
    survive = math.exp(-to_next_s / holding_horizon_s)
    return survive * (mean_rate / (1.0 - rho) + (next_rate - mean_rate) / (1.0 - rho * phi))


@dataclass(frozen=True, slots=True, kw_only=True)
class FundingFit:
    """OU parameters of a funding-rate history (rates per funding interval)."""

    mean_rate: float
    reversion_s: float
    std_rate: float
    samples: int
    phi: float
    interval_s: float

    def summary(self) -> str:
        return (
            f"funding OU over {self.samples} settlements: mean {self.mean_rate:.3e} per interval, "
            f"reversion {self.reversion_s / 3600:.1f} h (φ = {self.phi:.3f} per {self.interval_s:g} s), "
            f"stationary std {self.std_rate:.3e}"
        )


def fit_funding_ou(ts_ns: np.ndarray, rates: np.ndarray, *, where: str = "funding history") -> FundingFit:
    """Fit the OU model by least squares of r_{k+1} on r_k at the history's own spacing.

    The settlements must be equally spaced (the median gap is the interval; a gap that differs
    from it by more than 1 % is an error naming the row), so the AR(1) regression is the exact
    discretisation: φ = slope, r̄ = intercept / (1 − φ), τ_f = −I / ln φ, and the stationary std is
    the residual std / √(1 − φ²). A φ outside (0, 1) has no OU reading and is an error.
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    r = np.asarray(rates, dtype=float)
    if ts.shape != r.shape or ts.ndim != 1:
        raise ValueError(f"{where}: times and rates must be 1-D arrays of one length")
    if len(r) < 8:
        raise ValueError(f"{where}: need at least 8 settlements to fit, got {len(r)}")
    bad = np.flatnonzero(~np.isfinite(r))
    if len(bad):
        raise ValueError(f"{where}: rate at row {bad[0]} is not finite ({r[bad[0]]!r})")
    gaps = np.diff(ts)
    interval_ns = float(np.median(gaps))
    off = np.flatnonzero(np.abs(gaps - interval_ns) > 0.01 * interval_ns)
    if len(off):
        raise ValueError(
            f"{where}: settlements must be equally spaced; row {off[0] + 1} is {gaps[off[0]] / 1e9:.0f} s "
            f"after the previous one, the median gap is {interval_ns / 1e9:.0f} s"
        )
    x, y = r[:-1], r[1:]
    # r_{k+1} = a + φ r_k + e
    phi, intercept = np.polyfit(x, y, 1)
    if not 0.0 < phi < 1.0:
        raise ValueError(f"{where}: AR(1) coefficient {phi:.3f} is outside (0, 1); the rates do not mean-revert as an OU")
    residual = y - (intercept + phi * x)
    interval_s = interval_ns / 1e9
    return FundingFit(
        mean_rate=float(intercept / (1.0 - phi)),
        reversion_s=float(-interval_s / math.log(phi)),
        std_rate=float(np.std(residual, ddof=2) / math.sqrt(1.0 - phi**2)),
        samples=len(r),
        phi=float(phi),
        interval_s=interval_s,
    )
