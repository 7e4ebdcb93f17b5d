"""Our fills as evidence about V (Glosten–Milgrom), and judging after the fact whether they were informed.

When our ask at ln price c is lifted, the taker was informed with probability π and then knew
ln V > c; otherwise the fill says nothing. With the prior ln V ~ N(m, s²) the posterior is

    p(x | fill) ∝ N(x; m, s²) · [(1 − π) + π · 1{x > c} / P(x > c)]

a mixture of the prior and the prior truncated to x > c, whose mean is
(1 − π) m + π E[x | x > c]. :func:`gm_fill_update` returns the Gaussian with the mixture's first
two moments (moment matching); a bid fill mirrors x. The size of the shift follows from π and s,
not from a tuned constant.

:func:`fill_responsibility` judges a fill later: given an observation y of the same ln V with
noise variance v, the likelihood ratio of the informed and uninformed explanations is

    L = P(x > c | y) / P(x > c),   x | y ~ N(m + k (y − m), (1 − k) s²),  k = s² / (s² + v)

and the posterior probability that the fill was informed is r = π L / (π L + 1 − π). Each judged
fill multiplies the likelihood of π by π L + 1 − π.

The observation y must not reuse what the filter knew before the fill, nor the fill itself, or
the judgement would be circular. :class:`PendingFill` therefore carries its own fixed-lag
smoother: a two-state Kalman filter over [ln V_fill, ln V_now] that starts flat (no prior
information) at the fill and absorbs only the ln V observations that arrive after it, with
ln V_now a random walk of variance σ² per second between them:

    predict:  P_nn += σ² Δt
    update with z of variance R:  S = P_nn + R,  K = [P_fn, P_nn] / S,  e = z − a_n
              a += K e,   P_ff −= K_f P_fn,  P_fn −= K_f P_nn,  P_nn −= K_n P_nn

After the horizon, y = a_f and v = P_ff: the later data's evidence about V at the fill time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

from mmlab.types import Side

__all__ = ["PendingFill", "gm_fill_update", "informed_likelihood_ratio", "fill_responsibility"]

# The smoother's flat start: this many times the prior variance, so the prior carries ~1e-6 of
# the weight of the first observation and the arithmetic stays well scaled.
_FLAT_PRIOR_FACTOR = 1e6

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


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
    if not (math.isfinite(var) and var > 0.0):
        raise ValueError(f"gm_fill_update: var must be finite and > 0, got {var!r}")
    std = math.sqrt(var)
    # Work on the side where the truncation is x > c with c standardised; a bid fill mirrors x.
    sign = 1.0 if side is Side.SELL else -1.0
    c = sign * (log_price - mean) / std
    # tail = P(x beyond the price); the informed component is N truncated to that tail
    tail = 0.5 * math.erfc(c / _SQRT2)
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


def informed_likelihood_ratio(
    side: Side, log_price: float, prior_mean: float, prior_var: float, evidence_mean: float, evidence_var: float
) -> float:
    """L = P(x beyond c | y) / P(x beyond c): how much more likely y is if the fill was informed.

    Parameters
    ----------
    side : Side
        Our side of the fill (SELL: our ask was lifted, an informed taker saw x > c).
    log_price : float
        ln of the fill price, c.
    prior_mean, prior_var : float
        The filter's N(m, s²) of ln V just before the fill.
    evidence_mean, evidence_var : float
        y and v: an estimate of the same ln V from later data only, and its error variance.
    """
    sign = 1.0 if side is Side.SELL else -1.0
    std = math.sqrt(prior_var)
    # P(x beyond c) under the prior
    prior_tail = 0.5 * math.erfc(sign * (log_price - prior_mean) / (std * _SQRT2))
    if prior_tail < 1e-300:
        # an informed taker could not have traded: the fill is evidence of nothing
        return 1.0
    # x | y ~ N(m + k (y − m), (1 − k) s²),  k = s² / (s² + v)
    gain = prior_var / (prior_var + evidence_var)
    post_mean = prior_mean + gain * (evidence_mean - prior_mean)
    post_std = math.sqrt((1.0 - gain) * prior_var)
    post_tail = 0.5 * math.erfc(sign * (log_price - post_mean) / (post_std * _SQRT2))
    return post_tail / prior_tail


def fill_responsibility(
    side: Side,
    log_price: float,
    prior_mean: float,
    prior_var: float,
    evidence_mean: float,
    evidence_var: float,
    informed_fraction: float,
) -> float:
    """Posterior probability that a fill was informed: r = π L / (π L + 1 − π).

    Arguments as :func:`informed_likelihood_ratio`, plus π, the prior probability that a fill is
    informed.
    """
    ratio = informed_likelihood_ratio(side, log_price, prior_mean, prior_var, evidence_mean, evidence_var)
    informed = informed_fraction * ratio
    return informed / (informed + 1.0 - informed_fraction)


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingFill:
    """A fill waiting to be judged, with the smoother of the evidence about it.

    ``side`` is ours, ``log_price`` ln of the fill price, ``prior_mean`` and ``prior_var`` the
    filter's N(m, s²) of ln V just before the fill. ``evidence_mean`` / ``current_mean`` and
    ``evidence_var`` / ``cross_cov`` / ``current_var`` are the smoother's mean and covariance of
    [ln V at the fill, ln V now] from the observations after the fill (module docstring);
    ``observations`` counts them.
    """

    ts_local: int
    side: Side
    log_price: float
    prior_mean: float
    prior_var: float
    evidence_mean: float
    current_mean: float
    evidence_var: float
    cross_cov: float
    current_var: float
    observations: int = 0

    @classmethod
    def start(cls, *, ts_local: int, side: Side, log_price: float, prior_mean: float, prior_var: float) -> "PendingFill":
        """A pending fill whose smoother knows nothing yet (a flat start at the prior mean)."""
        flat = _FLAT_PRIOR_FACTOR * prior_var
        return cls(
            ts_local=ts_local,
            side=side,
            log_price=log_price,
            prior_mean=prior_mean,
            prior_var=prior_var,
            evidence_mean=prior_mean,
            current_mean=prior_mean,
            evidence_var=flat,
            cross_cov=flat,
            current_var=flat,
        )

    def advance(self, dt_s: float, sigma2_per_s: float, values: Sequence[float], noise_vars: Sequence[float]) -> "PendingFill":
        """Predict the smoother over ``dt_s`` and absorb ln V observations ``values`` (variances ``noise_vars``)."""
        a_f, a_n = self.evidence_mean, self.current_mean
        p_ff, p_fn, p_nn = self.evidence_var, self.cross_cov, self.current_var
        # P_nn += σ² Δt
        p_nn += sigma2_per_s * dt_s
        for z, r in zip(values, noise_vars):
            # S = P_nn + R,  K = [P_fn, P_nn] / S
            s = p_nn + r
            k_f, k_n = p_fn / s, p_nn / s
            # a += K (z − a_n)
            e = z - a_n
            a_f += k_f * e
            a_n += k_n * e
            # P −= K [P_fn, P_nn]  (P_ff and P_fn use the old P_fn, P_nn)
            p_ff -= k_f * p_fn
            p_fn -= k_f * p_nn
            p_nn -= k_n * p_nn
        return replace(
            self,
            evidence_mean=a_f,
            current_mean=a_n,
            evidence_var=p_ff,
            cross_cov=p_fn,
            current_var=p_nn,
            observations=self.observations + len(values),
        )

    def likelihood_ratio(self) -> float:
        """L of :func:`informed_likelihood_ratio` with the smoother's evidence."""
        return informed_likelihood_ratio(
            self.side, self.log_price, self.prior_mean, self.prior_var, self.evidence_mean, self.evidence_var
        )
