"""Bayesian online change-point detection (Adams & MacKay 2007) of the mid's volatility.

Observations are 1 s log-mid returns x_t (in bps, so the numbers are O(1)), modelled within a
run as x ~ N(0, 1/λ) with an unknown precision λ ~ Gamma(α₀, β₀) (shape, rate) drawn afresh at
every change point. With run length r_t (samples since the last change) the posterior of λ after
the run's r samples is Gamma(α_r, β_r),

    α_r = α₀ + r / 2,   β_r = β₀ + ½ Σ x²  (sum over the run)

and the predictive density of the next return is a Student t with 2 α_r degrees of freedom:

    p(x | r) = Γ(α_r + ½) / Γ(α_r) · (2π β_r)^{−½} · (1 + x² / (2 β_r))^{−(α_r + ½)}

With a constant hazard H = 1/T (T the mean run in samples) the run-length posterior moves as

    growth:  P(r_t = r + 1, x_1:t) = P(r_{t−1} = r, x_1:t−1) · p(x_t | r) · (1 − H)
    change:  P(r_t = 0,     x_1:t) = Σ_r P(r_{t−1} = r, x_1:t−1) · p(x_t | r) · H

then is normalised. Run lengths are truncated at R_max − 1: the mass that would grow past it
stays in the last slot, whose statistics are those of the last R_max − 1 samples, so the state
is two arrays of R_max floats and one step costs O(R_max).

The prior rate β₀ = α₀ · v̄ centres a fresh run's variance on v̄, an exponentially weighted
mean of x² over a long half-life (empirical Bayes: the detector needs no price scale), and α₀
(``changepoint_prior_shape``) says how many half-samples that prior is worth.

Prices live on a grid, so a quoted mid often does not move for a second: an exact zero return
carries the information |y| < Δ/2 (Δ the grid of the returns, taken as the smallest non-zero
|x| seen), not a density at 0; scoring zeros by the density would make every quiet stretch look
like a collapse of the variance and every next tick like a change. A zero is therefore scored
by its interval probability under the Student t, and updates the run's precision with the
expected y² of a value uniform on the interval:

    p(0 | r) = P(|t_{2α_r}| < (Δ/2) / √(β_r / α_r)),     β_{r+1} = β_r + ½ Δ² / 12

``changepoint_prob`` is P(r_t < W), the posterior mass on a change within the last W samples
(``changepoint_window_samples``).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln, stdtr

__all__ = ["ChangePointDetector"]


class ChangePointDetector:
    """Run-length posterior over a stream of returns (see the module docstring).

    Parameters
    ----------
    hazard_timescale_samples : float
        T, the prior mean run length in samples (hazard H = 1/T).
    max_run_length : int
        R_max, the number of run lengths kept.
    window_samples : int
        W: :attr:`changepoint_prob` is the posterior mass on run lengths below W.
    prior_shape : float
        α₀ of the Gamma prior on the precision of a new run.
    variance_half_life_samples : float
        Half-life of the exponentially weighted mean v̄ of x² that centres the prior.
    """

    def __init__(
        self,
        *,
        hazard_timescale_samples: float,
        max_run_length: int,
        window_samples: int,
        prior_shape: float,
        variance_half_life_samples: float,
    ) -> None:
        if not hazard_timescale_samples > 1.0:
            raise ValueError(f"hazard_timescale_samples must be > 1, got {hazard_timescale_samples!r}")
        if not 2 <= max_run_length:
            raise ValueError(f"max_run_length must be >= 2, got {max_run_length!r}")
        if not 1 <= window_samples < max_run_length:
            raise ValueError(f"window_samples must be in [1, max_run_length), got {window_samples!r}")
        if not prior_shape > 0.0:
            raise ValueError(f"prior_shape must be > 0, got {prior_shape!r}")
        if not variance_half_life_samples > 0.0:
            raise ValueError(f"variance_half_life_samples must be > 0, got {variance_half_life_samples!r}")
        self.hazard = 1.0 / hazard_timescale_samples
        self.max_run_length = int(max_run_length)
        self.window_samples = int(window_samples)
        self.prior_shape = float(prior_shape)
        self._variance_decay = 0.5 ** (1.0 / variance_half_life_samples)
        n = self.max_run_length
        # α_r = α₀ + r/2 is fixed per slot; the last slot keeps the longest run's statistics
        self._alpha = self.prior_shape + 0.5 * np.arange(n, dtype=float)
        # ln Γ(α_r + ½) − ln Γ(α_r) − ½ ln 2π, precomputed once
        self._log_norm = gammaln(self._alpha + 0.5) - gammaln(self._alpha) - 0.5 * math.log(2.0 * math.pi)
        self._rate = np.ones(n)  # slots of zero mass only need a positive β
        self._log_prob = np.full(n, -np.inf)
        self._log_prob[0] = 0.0
        self._variance_sum = 0.0
        self._variance_weight = 0.0
        self.samples = 0
        self.changepoint_prob = 0.0
        self.grid = math.inf  # Δ, the smallest non-zero |x| seen
        #: Σ ln p(x_t | x_1:t−1) over the samples after the first: the model's evidence, which
        #: :func:`mmlab.calibrate.changepoint.fit_changepoint` maximises over the hyperparameters
        self.log_evidence = 0.0

    @property
    def mean_variance(self) -> float:
        """v̄, the exponentially weighted mean of x² (NaN before any sample)."""
        return self._variance_sum / self._variance_weight if self._variance_weight > 0.0 else math.nan

    @property
    def run_length_probs(self) -> np.ndarray:
        """P(r_t = r | x_1:t) for r = 0 … R_max − 1 (a copy)."""
        return np.exp(self._log_prob)

    def update(self, x: float) -> float:
        """Absorb one return x (bps); return the new :attr:`changepoint_prob`."""
        if not math.isfinite(x):
            raise ValueError(f"ChangePointDetector.update: return must be finite, got {x!r}")
        x2 = x * x
        if x != 0.0:
            self.grid = min(self.grid, abs(x))
        if self.samples == 0:
            # the first sample only sets the prior scale
            self._variance_sum, self._variance_weight = x2, 1.0
            prior_rate = self.prior_shape * max(x2, 1e-12)
            self._rate[:] = prior_rate
            self.samples = 1
            return self.changepoint_prob
        prior_rate = self.prior_shape * max(self.mean_variance, 1e-12)
        rate = self._rate
        alpha = self._alpha
        update_x2 = x2
        if x == 0.0 and math.isfinite(self.grid):
            half = 0.5 * self.grid
            # p(0 | r) = P(|t_{2α}| < (Δ/2) / √(β/α)) = 2 F_{2α}((Δ/2) / √(β/α)) − 1
            inside = 2.0 * stdtr(2.0 * alpha, half / np.sqrt(rate / alpha)) - 1.0
            log_pred = np.log(np.maximum(inside, 1e-300))
            # E[y² | |y| < Δ/2] for y uniform on the interval
            update_x2 = self.grid * self.grid / 12.0
        else:
            # ln p(x | r) = ln Γ(α+½) − ln Γ(α) − ½ ln 2π − ½ ln β − (α+½) ln(1 + x²/(2β))
            log_pred = self._log_norm - 0.5 * np.log(rate) - (alpha + 0.5) * np.log1p(x2 / (2.0 * rate))
        joint = self._log_prob + log_pred
        top = float(np.max(joint))
        weights = np.exp(joint - top)
        total = float(weights.sum())
        # ln p(x_t | x_1:t−1) = ln Σ_r P(r_{t−1} = r | x_1:t−1) p(x_t | r)
        self.log_evidence += top + math.log(total)
        new = np.empty_like(weights)
        # growth: r → r + 1 with probability 1 − H; the last slot absorbs the run that outgrows it
        new[1:] = weights[:-1] * (1.0 - self.hazard)
        new[-1] += weights[-1] * (1.0 - self.hazard)
        # change: every run length → 0 with probability H
        new[0] = total * self.hazard
        new /= new.sum()
        with np.errstate(divide="ignore"):
            self._log_prob = np.log(new)
        # β_{r+1} = β_r + x²/2; a new run starts at the prior β₀ (the merged last slot keeps the
        # statistics of a run of R_max − 1 samples, so α and β stay consistent)
        rate[1:] = rate[:-1] + 0.5 * update_x2
        rate[0] = prior_rate
        # v̄ ← decayed mean of x² (after the step, so the sample is not its own prior)
        self._variance_sum = self._variance_decay * self._variance_sum + x2
        self._variance_weight = self._variance_decay * self._variance_weight + 1.0
        self.samples += 1
        self.changepoint_prob = min(1.0, float(new[: self.window_samples].sum()))
        return self.changepoint_prob
