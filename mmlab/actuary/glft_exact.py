"""Exact finite-inventory market-making solutions (offline / diagnostic).

Two control problems, one solver. Inventory q is counted in lots of Δ coins, q ∈ {−Q, …, Q};
per-lot units are S' = Δ S, σ' = Δ σ_V, μ' = Δ μ_V (USD per lot) and κ'_s = κ_s / Δ (κ_s per
USD of depth per coin), with fill intensity Λ_s(δ) = A_s e^{−κ_s δ} per side s ∈ {b, a}.

1. **GLFT (Guéant, Lehalle & Fernandez-Tapia 2013; drift and asymmetric sides as in Guéant
   2017)**: maximise E[−exp(−γ (X_T + q_T S_T))] with constant CARA γ. With the ansatz
   u = −exp(−γ (x + q S + θ_q(t))) the HJB reduces to the ODE system

       0 = ∂_t θ_q + μ' q − ½ γ σ'² q² + 1{q<Q} H_b(θ_q − θ_{q+1}) + 1{q>−Q} H_a(θ_q − θ_{q−1})
       H_s(p) = A_s / (κ'_s + γ) · (1 + γ/κ'_s)^{−κ'_s/γ} · e^{−κ'_s p}
       δ'_s   = p_s + (1/γ) ln(1 + γ/κ'_s)

   with θ_q(T) = 0, p_b = θ_q − θ_{q+1}, p_a = θ_q − θ_{q−1}.

2. **Risk-neutral value with a running inventory penalty (Cartea–Jaimungal style)**: maximise
   E[X_T + q_T S_T − ∫ g(q_t) dt] with the convex running cost g(q) = ½ γ(q) σ'² q² (USD per
   second; γ(q) may depend on q). Writing the value as x + q S + θ_q(t) gives the same system
   with γ → 0 in the fill terms:

       0 = ∂_t θ_q + μ' q − g(q) + 1{q<Q} H⁰_b(θ_q − θ_{q+1}) + 1{q>−Q} H⁰_a(θ_q − θ_{q−1})
       H⁰_s(p) = A_s / (e κ'_s) · e^{−κ'_s p},        δ'_s = p_s + 1/κ'_s

   (the γ → 0 limit of H_s, since (1 + γ/κ)^{−κ/γ} → 1/e). The spread δ'_b + δ'_a = 2/κ' +
   2θ_q − θ_{q+1} − θ_{q−1} grows with the penalty's convexity.

Both are solved backward from T with :func:`scipy.integrate.solve_ivp` in τ = T − t:
dθ_q/dτ = μ' q − g(q) + H_b + H_a. Far from T the depths stop depending on t (the stationary
regime the closed-form approximations describe). For the risk-neutral problem with equal decays
(κ_b = κ_a) the substitution θ = (1/κ') ln w makes the system linear,
dw/dτ = M w with M = diag(κ' (μ' q − g(q))) + (A_b/e) on the super- and (A_a/e) on the
sub-diagonal, and the stationary depths follow from M's Perron eigenvector:
δ'_b = 1/κ' + (1/κ') ln(w_q / w_{q+1}); :func:`stationary_depths_linear` computes them as an
independent check of the ODE solver.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp

__all__ = ["ExactGlftSolution", "solve_glft_exact", "stationary_depths_linear", "quadratic_penalty"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExactGlftSolution:
    """Optimal depths on the inventory grid, per coin in USD, at the requested times.

    Attributes
    ----------
    inventory_lots : np.ndarray
        (2Q+1,) inventories −Q … Q, lots.
    times_to_end_s : np.ndarray
        (m,) times to the horizon T − t at which the depths are reported, seconds (increasing).
    bid_depth_usd, ask_depth_usd : np.ndarray
        (m, 2Q+1) optimal depths from the fair value, USD per coin; NaN where that side may not
        trade (no bid at q = Q, no ask at q = −Q).
    lot_size : float
        Δ, coins per lot.
    utility_gamma_per_usd : float
        γ of the CARA objective (0 for the risk-neutral penalised problem).
    """

    inventory_lots: np.ndarray
    times_to_end_s: np.ndarray
    bid_depth_usd: np.ndarray
    ask_depth_usd: np.ndarray
    lot_size: float
    utility_gamma_per_usd: float

    def index(self, position_lots: int) -> int:
        """Column of ``position_lots`` in the depth arrays."""
        q_max = int(self.inventory_lots[-1])
        if not -q_max <= position_lots <= q_max:
            raise ValueError(f"ExactGlftSolution: position_lots {position_lots} outside ±{q_max}")
        return int(position_lots) + q_max

    def stationary_depths_usd(self, position_lots: int) -> tuple[float, float]:
        """(bid, ask) depths at the largest time to the horizon, USD per coin."""
        j = self.index(position_lots)
        return float(self.bid_depth_usd[-1, j]), float(self.ask_depth_usd[-1, j])

    def convergence(self) -> float:
        """Largest relative change of any finite depth between the last two reported times."""
        if self.times_to_end_s.size < 2:
            return math.nan
        rel = []
        for depth in (self.bid_depth_usd, self.ask_depth_usd):
            last, prev = depth[-1], depth[-2]
            ok = np.isfinite(last) & np.isfinite(prev)
            rel.append(np.max(np.abs(last[ok] - prev[ok]) / np.abs(last[ok])))
        return float(max(rel))

    def summary(self) -> str:
        q = self.inventory_lots
        j = q.size // 2
        bid, ask = self.stationary_depths_usd(int(q[j]))
        model = "CARA" if self.utility_gamma_per_usd > 0.0 else "risk-neutral + running penalty"
        return (
            f"exact {model} market making over q ∈ [{int(q[0])}, {int(q[-1])}] lots of {self.lot_size:g}: "
            f"at T−t = {self.times_to_end_s[-1]:g} s, flat depths bid {bid:.6g} / ask {ask:.6g} USD, "
            f"last relative change {self.convergence():.2e}"
        )


def quadratic_penalty(
    *, fair_value: float, sigma_per_sqrt_s: float, lot_size: float, max_lots: int, gamma_of_coins
) -> np.ndarray:
    """g(q) = ½ γ(q) σ'² q² on q = −Q … Q lots (USD per second), γ given as a function of coins."""
    q = np.arange(-max_lots, max_lots + 1, dtype=float)
    coins = q * lot_size
    gamma = np.array([float(gamma_of_coins(x)) for x in coins])
    sigma_lot = lot_size * fair_value * sigma_per_sqrt_s
    # g(q) = ½ γ(q) σ'² q²
    return 0.5 * gamma * sigma_lot**2 * q**2


def _fill_terms(utility_gamma: float, kappa_lot: float, intensity: float) -> tuple[float, float]:
    """(C, c) with H(p) = C e^{−κ' p} and the depth offset δ' − p = c, for one side."""
    if utility_gamma > 0.0:
        ratio = utility_gamma / kappa_lot
        # H(p) = A/(κ'+γ) (1+γ/κ')^{−κ'/γ} e^{−κ' p};  c = (1/γ) ln(1 + γ/κ')
        scale = intensity / (kappa_lot + utility_gamma) * math.exp(-math.log1p(ratio) / ratio)
        return scale, math.log1p(ratio) / utility_gamma
    # H⁰(p) = A/(e κ') e^{−κ' p};  c = 1/κ'
    return intensity / (math.e * kappa_lot), 1.0 / kappa_lot


def solve_glft_exact(
    *,
    fair_value: float,
    sigma_per_sqrt_s: float,
    drift_per_s: float,
    lot_size: float,
    max_lots: int,
    intensity_bid_per_s: float,
    intensity_ask_per_s: float,
    decay_bid_per_bps: float,
    decay_ask_per_bps: float,
    horizon_s: float,
    utility_gamma_per_usd: float = 0.0,
    penalty_usd_per_s: np.ndarray | None = None,
    report_times_s: np.ndarray | None = None,
    rtol: float = 1e-9,
    atol: float = 1e-12,
) -> ExactGlftSolution:
    """Solve the finite-inventory ODE system of the module docstring backward from T.

    Parameters
    ----------
    utility_gamma_per_usd : float
        γ > 0 solves the CARA problem of GLFT (its running term is ½ γ σ'² q² unless
        ``penalty_usd_per_s`` is given); 0 solves the risk-neutral penalised problem, which needs
        ``penalty_usd_per_s``.
    penalty_usd_per_s : np.ndarray, optional
        (2Q+1,) running cost g(q) on q = −Q … Q, USD per second (see :func:`quadratic_penalty`).
    report_times_s : np.ndarray, optional
        Times to the horizon T − t at which to report depths (default: 8 points up to T).

    Raises
    ------
    ValueError
        If a parameter is not finite and positive where it must be, naming it.
    """
    for name, value in (
        ("fair_value", fair_value),
        ("sigma_per_sqrt_s", sigma_per_sqrt_s),
        ("lot_size", lot_size),
        ("intensity_bid_per_s", intensity_bid_per_s),
        ("intensity_ask_per_s", intensity_ask_per_s),
        ("decay_bid_per_bps", decay_bid_per_bps),
        ("decay_ask_per_bps", decay_ask_per_bps),
        ("horizon_s", horizon_s),
    ):
        if not (math.isfinite(value) and value > 0.0):
            raise ValueError(f"solve_glft_exact: {name} must be finite and > 0, got {value!r}")
    if not math.isfinite(drift_per_s):
        raise ValueError(f"solve_glft_exact: drift_per_s must be finite, got {drift_per_s!r}")
    if not (math.isfinite(utility_gamma_per_usd) and utility_gamma_per_usd >= 0.0):
        raise ValueError(f"solve_glft_exact: utility_gamma_per_usd must be ≥ 0, got {utility_gamma_per_usd!r}")
    if not (isinstance(max_lots, (int, np.integer)) and max_lots >= 1):
        raise ValueError(f"solve_glft_exact: max_lots must be an integer ≥ 1, got {max_lots!r}")
    n = 2 * int(max_lots) + 1
    q = np.arange(-max_lots, max_lots + 1, dtype=float)
    bps_usd = 1e-4 * fair_value
    sigma_lot = lot_size * fair_value * sigma_per_sqrt_s
    drift_lot = lot_size * fair_value * drift_per_s
    if penalty_usd_per_s is None:
        if utility_gamma_per_usd == 0.0:
            raise ValueError("solve_glft_exact: penalty_usd_per_s is required when utility_gamma_per_usd is 0")
        # CARA: running term ½ γ σ'² q²
        penalty = 0.5 * utility_gamma_per_usd * sigma_lot**2 * q**2
    else:
        penalty = np.asarray(penalty_usd_per_s, dtype=float)
        if penalty.shape != (n,) or not np.all(np.isfinite(penalty)):
            raise ValueError(f"solve_glft_exact: penalty_usd_per_s must be {n} finite values (q = −Q … Q)")
    # κ' = κ / Δ with κ per USD per coin = κ_bps / (1 bps in USD)
    kappa_b = decay_bid_per_bps / bps_usd / lot_size
    kappa_a = decay_ask_per_bps / bps_usd / lot_size
    scale_b, offset_b = _fill_terms(utility_gamma_per_usd, kappa_b, intensity_bid_per_s)
    scale_a, offset_a = _fill_terms(utility_gamma_per_usd, kappa_a, intensity_ask_per_s)
    # μ' q − g(q)
    running = drift_lot * q - penalty

    def rhs(_tau: float, theta: np.ndarray) -> np.ndarray:
        out = running.copy()
        # H_b(θ_q − θ_{q+1}) for q < Q ;  H_a(θ_q − θ_{q−1}) for q > −Q
        out[:-1] += scale_b * np.exp(-kappa_b * (theta[:-1] - theta[1:]))
        out[1:] += scale_a * np.exp(-kappa_a * (theta[1:] - theta[:-1]))
        return out

    times = np.linspace(horizon_s / 8, horizon_s, 8) if report_times_s is None else np.asarray(report_times_s, dtype=float)
    if times.ndim != 1 or times.size == 0 or np.any(np.diff(times) <= 0) or times[0] <= 0 or times[-1] > horizon_s:
        raise ValueError("solve_glft_exact: report_times_s must increase within (0, horizon_s]")
    result = solve_ivp(rhs, (0.0, horizon_s), np.zeros(n), method="LSODA", t_eval=times, rtol=rtol, atol=atol)
    if not result.success:
        raise RuntimeError(f"solve_glft_exact: the ODE solver failed: {result.message}")
    theta = result.y.T  # (m, n)
    bid = np.full(theta.shape, np.nan)
    ask = np.full(theta.shape, np.nan)
    # δ'_b = θ_q − θ_{q+1} + c_b ;  δ'_a = θ_q − θ_{q−1} + c_a ; per coin: divide by Δ
    bid[:, :-1] = (theta[:, :-1] - theta[:, 1:] + offset_b) / lot_size
    ask[:, 1:] = (theta[:, 1:] - theta[:, :-1] + offset_a) / lot_size
    return ExactGlftSolution(
        inventory_lots=q.astype(int),
        times_to_end_s=times,
        bid_depth_usd=bid,
        ask_depth_usd=ask,
        lot_size=lot_size,
        utility_gamma_per_usd=utility_gamma_per_usd,
    )


def stationary_depths_linear(
    *,
    fair_value: float,
    drift_per_s: float,
    lot_size: float,
    penalty_usd_per_s: np.ndarray,
    intensity_bid_per_s: float,
    intensity_ask_per_s: float,
    decay_per_bps: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Stationary (T − t → ∞) depths of the risk-neutral penalised problem with κ_b = κ_a, from
    the Perron eigenvector of the linear system (module docstring); USD per coin, NaN where a side
    may not trade."""
    penalty = np.asarray(penalty_usd_per_s, dtype=float)
    n = penalty.size
    max_lots = (n - 1) // 2
    q = np.arange(-max_lots, max_lots + 1, dtype=float)
    kappa = decay_per_bps / (1e-4 * fair_value) / lot_size
    drift_lot = lot_size * fair_value * drift_per_s
    # M = diag(κ' (μ' q − g)) + (A_b/e) super-diagonal + (A_a/e) sub-diagonal
    matrix = np.diag(kappa * (drift_lot * q - penalty))
    matrix += np.diag(np.full(n - 1, intensity_bid_per_s / math.e), 1)
    matrix += np.diag(np.full(n - 1, intensity_ask_per_s / math.e), -1)
    values, vectors = np.linalg.eig(matrix)
    lead = np.argmax(values.real)
    w = np.abs(vectors[:, lead].real)
    bid = np.full(n, np.nan)
    ask = np.full(n, np.nan)
    # δ_b = (1/κ' + (1/κ') ln(w_q / w_{q+1})) / Δ ; δ_a likewise with w_{q−1}
    bid[:-1] = (1.0 + np.log(w[:-1] / w[1:])) / kappa / lot_size
    ask[1:] = (1.0 + np.log(w[1:] / w[:-1])) / kappa / lot_size
    return bid, ask
