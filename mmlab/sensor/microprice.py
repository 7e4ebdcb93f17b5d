"""Price layers of the sensor: estimates of fair value built from the book and the tape.

Every layer is an online feature (:class:`~mmlab.sensor.calibration.Feature`) whose ``value`` is
its log offset from the mid, ``ln(layer price) − ln(mid)`` (a dimensionless fraction), so that
``ln mid + value`` is an observation of ln V. Notation as in :mod:`mmlab.sensor.book_features`:
bid levels ``(p^b_i, q^b_i)``, ask levels ``(p^a_i, q^a_i)``, i = 1 the touch, mid ``m``, half spread
``h = (p^a_1 − p^b_1)/2``.

L1 micro-price (:class:`MicroPriceL1`)
--------------------------------------
The touch prices weighted by the opposite side's size, so the price leans toward the side that
is about to be taken:

    p_L1 = (p^b_1 q^a_1 + p^a_1 q^b_1) / (q^b_1 + q^a_1) = m + h · (q^b_1 − q^a_1)/(q^b_1 + q^a_1)

Depth-weighted micro-price over N levels (:class:`DepthMicroPrice`)
-------------------------------------------------------------------
The L1 formula applied to the first N levels of each side taken as one block: each side is
replaced by its size-weighted average price and its total size,

    P̄^b = Σ_{i≤N} p^b_i q^b_i / D^b,   D^b = Σ_{i≤N} q^b_i     (likewise P̄^a, D^a)
    p_N = (P̄^b D^a + P̄^a D^b) / (D^b + D^a)

Why this weighting: it nests the L1 micro-price (N = 1), needs no parameter beyond N, is defined
whenever both sides have one level, and it reads the *shape* of the book as well as its
imbalance: ``p_N = (P̄^b + P̄^a)/2 + (P̄^a − P̄^b)/2 · (D^b − D^a)/(D^b + D^a)``, so a side whose
size sits close to the touch (a short distance to its average price) pulls the estimate less
than a side whose size sits far out (little resistance near the touch). The other candidate,
the mid of the prices at which cumulative depth reaches a fixed notional, needs a notional per
venue and is undefined whenever the N levels hold less than it (a quarter of the time on the
Binance BTCUSDT capture at one touch depth). Measured on the Binance BTCUSDT capture (out of
sample, 100 ms grid) this layer is the only book layer that beats the mid at 1 s without any
fitted coefficient; on Hyperliquid, whose 20 levels are sparse, deep levels pull it too far and it
must be scaled down (the sensor's calibration fits that coefficient).

Stoikov's micro-price (:func:`fit_stoikov_microprice`, :class:`StoikovMicroPrice`)
----------------------------------------------------------------------------------
S. Stoikov, "The micro-price: a high-frequency estimator of future prices", Quantitative Finance
18(12), 2018. The state is ``X = (I, S)``: imbalance ``I = q^b_1/(q^b_1 + q^a_1)`` cut into n bins and
the spread S in ticks, 1 … m. From consecutive samples of the touch (every change of the touch,
as in the paper, or a time grid) the transition counts estimate, per state x,

    Q_xy = P(M' − M = 0, X' = y | X = x)        transitions without a mid change
    T_xy = P(M' − M ≠ 0, X' = y | X = x)        transitions with a mid change
    (R K)_x = Σ_k P(M' − M = k | X = x) · k = E[M' − M | X = x]     (ticks)

(R K is computed as the mean mid change, which equals the paper's R·K for any set K of changes.)
The data are symmetrized as in the paper: every transition ``(I, S) → (I', S')`` with change k is
also counted as ``(1 − I, S) → (1 − I', S')`` with change −k (bucket b ↦ n − 1 − b), which makes
the estimate antisymmetric, ``G(I) = −G(1 − I)``, and the series below converge. Then

    G¹ = (1 − Q)⁻¹ R K,    B = (1 − Q)⁻¹ T,    G* = Σ_{k≥0} B^k G¹

is the expected mid change (ticks) from state x until the process forgets it, and the
micro-price is ``m + G*(I, S) · tick``. B is a stochastic matrix; with symmetric data its stationary
distribution π has ``π G¹ = 0``, so the terms ``B^k G¹`` decay geometrically; the fit stops when the
largest term is below ``tol`` times the largest |G¹| and reports how many terms it took.

Imbalance bins are equal-count (quantiles of the symmetrized imbalance, as the paper's ``qcut``)
or equal-width; the layer interpolates G* linearly in I between the bins' mean imbalances (flat
beyond the outermost), separately for each spread. Standard errors come from a parametric
bootstrap of the Markov chain's maximum-likelihood estimate: given its number of visits, the
transitions out of each state are multinomial, so each replicate redraws them, re-symmetrizes and
recomputes G*.

Trade-informed layer (:func:`fit_trade_microprice`, :class:`TradeMicroPrice`)
------------------------------------------------------------------------------
The price of the last valid print, relative to the mid, decaying with its age:

    value(t) = exp(−(t − t_last) / τ) · (ln p_last − ln m(t))

Why: a print is the freshest price on the tape. Feeds deliver trades as they happen and books
in batches (Binance's depth stream every 100 ms, Hyperliquid's l2Book every 0.5–1 s), so right
after a trade the mid often still shows the state before it, and the price the trade printed at
is where the mid goes next (the old view of Hasbrouck, 1991, that trades carry information the
quotes take time to absorb). A buy that printed above the current mid says the ask side is
thinner than the stale book shows. Of the variants tried on the real recordings (an
exponentially weighted VWAP of recent prints, the decayed signed trade volume scaled by the half
spread, and this one), the last print is the only one that beats the mid out of sample at 1 s
on every recording with trades, with a fitted slope near 1 (so its scale is right as it
stands); the VWAP keeps stale prints after the flow stops and the signed volume loses the price
at which the flow printed. τ is fitted (:func:`fit_trade_microprice`) by least squares on the
future mid at a horizon H over a grid of decays.

Bad input
---------
A book that is None, one-sided, crossed, locked or not finite in the levels a layer reads (see
:func:`~mmlab.sensor.book_features.usable_levels`) is ignored and counted in ``dropped``, and the
layer's value is NaN until the next usable book (a layer is an offset from the current mid, and
there is none). Invalid prints (price or size not finite and positive, aggressor not ±1) are
ignored and counted in ``dropped_prints``.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from mmlab.data.tape import Tape
from mmlab.sensor.book_features import (
    UsableBookMixin,
    BookFrame,
    _check_levels,
    _check_positive,
    _valid_print,
    book_frame,
    future_log_return,
    usable_levels,
    usable_mask,
)
from mmlab.types import VenueUpdate
from mmlab.units import NS_PER_S

__all__ = [
    "MicroPriceL1",
    "DepthMicroPrice",
    "StoikovMicroPrice",
    "StoikovFit",
    "StoikovTable",
    "fit_stoikov_microprice",
    "TradeMicroPrice",
    "TradeMicroPriceFit",
    "fit_trade_microprice",
    "micro_l1_series",
    "depth_microprice_series",
    "stoikov_series",
    "trade_microprice_series",
    "forecast_mse",
    "calibrated_forecast_mse",
]


def _html(text: str) -> str:
    return "<pre>" + text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") + "</pre>"


# --------------------------------------------------------------------------------------------
# L1 and depth-weighted micro-prices
# --------------------------------------------------------------------------------------------


class MicroPriceL1(UsableBookMixin):
    """The L1 size-weighted micro-price as a log offset from the mid (module docstring).

    Attributes
    ----------
    dropped : int
        Unusable books ignored.
    """

    def __init__(self, *, name: str = "micro_l1") -> None:
        self.name = name
        self.dropped = 0
        self._value = math.nan

    def update(self, update: VenueUpdate) -> None:
        book = self._usable_book(update, 1)
        if book is None:
            return
        bid, ask = float(book[0][0]), float(book[2][0])
        bid_size, ask_size = float(book[1][0]), float(book[3][0])
        mid = 0.5 * (bid + ask)
        # p_L1 = (p^b q^a + p^a q^b) / (q^b + q^a)
        micro = (bid * ask_size + ask * bid_size) / (bid_size + ask_size)
        self._value = math.log(micro / mid)

    @property
    def value(self) -> float:
        """``ln p_L1 − ln m``; NaN after an unusable book."""
        return self._value


def micro_l1_series(frame: BookFrame) -> np.ndarray:
    """:class:`MicroPriceL1` over every row of ``frame``."""
    ok = usable_mask(frame, 1)
    bid, ask = frame.bid_px[:, 0], frame.ask_px[:, 0]
    bid_size, ask_size = frame.bid_sz[:, 0], frame.ask_sz[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        micro = (bid * ask_size + ask * bid_size) / (bid_size + ask_size)
        value = np.log(micro / (0.5 * (bid + ask)))
    return np.where(ok, value, np.nan)


class DepthMicroPrice(UsableBookMixin):
    """The depth-weighted micro-price over the first ``levels`` levels (module docstring).

    Parameters
    ----------
    levels : int
        N, levels per side (1 gives the L1 micro-price).
    name : str, optional
        Default ``"micro_depth_<levels>"``.

    Attributes
    ----------
    dropped : int
        Books unusable over the levels read, ignored.
    """

    def __init__(self, levels: int = 5, *, name: str | None = None) -> None:
        self.levels = _check_levels("DepthMicroPrice", levels)
        self.name = name or f"micro_depth_{self.levels}"
        self.dropped = 0
        self._value = math.nan

    def update(self, update: VenueUpdate) -> None:
        book = self._usable_book(update, self.levels)
        if book is None:
            return
        bid_px, bid_sz, ask_px, ask_sz = book
        bid_depth, ask_depth = float(bid_sz.sum()), float(ask_sz.sum())
        # P̄ = Σ p q / D per side
        bid_avg = float(bid_px @ bid_sz) / bid_depth
        ask_avg = float(ask_px @ ask_sz) / ask_depth
        # p_N = (P̄^b D^a + P̄^a D^b) / (D^b + D^a)
        micro = (bid_avg * ask_depth + ask_avg * bid_depth) / (bid_depth + ask_depth)
        mid = 0.5 * (float(bid_px[0]) + float(ask_px[0]))
        self._value = math.log(micro / mid)

    @property
    def value(self) -> float:
        """``ln p_N − ln m``; NaN after an unusable book."""
        return self._value


def depth_microprice_series(frame: BookFrame, levels: int = 5) -> np.ndarray:
    """:class:`DepthMicroPrice` over every row of ``frame``."""
    levels = min(_check_levels("depth_microprice_series", levels), frame.levels)
    ok = usable_mask(frame, levels)
    column = np.arange(levels)[None, :]
    out = []
    for px, sz, count in ((frame.bid_px, frame.bid_sz, frame.bid_levels), (frame.ask_px, frame.ask_sz, frame.ask_levels)):
        read = column < np.minimum(count, levels)[:, None]
        q = np.where(read, sz[:, :levels], 0.0)
        p = np.where(read, px[:, :levels], 0.0)
        depth = q.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(((p * q).sum(axis=1) / depth, depth))
    (bid_avg, bid_depth), (ask_avg, ask_depth) = out
    with np.errstate(invalid="ignore", divide="ignore"):
        micro = (bid_avg * ask_depth + ask_avg * bid_depth) / (bid_depth + ask_depth)
        value = np.log(micro / (0.5 * (frame.bid_px[:, 0] + frame.ask_px[:, 0])))
    return np.where(ok, value, np.nan)


# --------------------------------------------------------------------------------------------
# Stoikov's micro-price
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StoikovFit:
    """Stoikov's micro-price adjustment G*(imbalance bin, spread) fitted from a tape.

    Arrays are read-only; the first axis is the spread in ticks (row s − 1 for spread s), the
    second the imbalance bin (0: the ask side much larger, n − 1: the bid side much larger).

    Attributes
    ----------
    tick_usd : float
        Price tick the spread and mid changes are counted in, USD.
    n_imbalance_bins, max_spread_ticks : int
        n and m.
    bins : str
        "quantile" (equal-count bins of the symmetrized imbalance) or "uniform".
    sample : str or float
        "book" (every change of the touch) or the sampling interval, s.
    imbalance_edges : np.ndarray
        (n − 1,) inner bin edges of I = q^b/(q^b + q^a).
    imbalance_centres : np.ndarray
        (n,) mean imbalance of the symmetrized samples in each bin (where the layer places G*).
    g_ticks : np.ndarray
        (m, n) G*, ticks; NaN for states never visited.
    g1_ticks : np.ndarray
        (m, n) G¹ = (1 − Q)⁻¹ R K, ticks (the expected change at the next mid move).
    std_err_ticks : np.ndarray
        (m, n) bootstrap standard error of G*, ticks (NaN without bootstrap or visits).
    transitions_per_state : np.ndarray
        (m, n) int transitions observed out of each state, before symmetrization.
    n_samples, n_transitions : int
        Samples of the touch used, and transitions between consecutive samples inside the state
        space (before symmetrization).
    dropped_transitions : int
        Transitions leaving or entering a spread outside 1 … m.
    dropped_jumps : int
        Transitions whose mid change exceeded ``max_mid_change_ticks``.
    mid_change_counts : tuple of (float, int)
        Observed mid changes (ticks) and how often, before symmetrization.
    series_terms : int
        Terms of Σ B^k G¹ summed.
    series_converged : bool
        Whether the last term fell below ``tol`` × max|G¹|.
    series_term_max_ticks : tuple of float
        max_x |(B^k G¹)_x| for k = 0, 1, … (the convergence of the series).
    n_bootstrap : int
        Bootstrap replicates behind ``std_err_ticks``.
    """

    tick_usd: float
    n_imbalance_bins: int
    max_spread_ticks: int
    bins: str
    sample: str | float
    imbalance_edges: np.ndarray
    imbalance_centres: np.ndarray
    g_ticks: np.ndarray
    g1_ticks: np.ndarray
    std_err_ticks: np.ndarray
    transitions_per_state: np.ndarray
    n_samples: int
    n_transitions: int
    dropped_transitions: int
    dropped_jumps: int
    mid_change_counts: tuple[tuple[float, int], ...]
    series_terms: int
    series_converged: bool
    series_term_max_ticks: tuple[float, ...]
    n_bootstrap: int
    _rows: tuple[tuple[tuple[float, ...], tuple[float, ...]], ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        for name in ("imbalance_edges", "imbalance_centres", "g_ticks", "g1_ticks", "std_err_ticks", "transitions_per_state"):
            array = getattr(self, name)
            if array.flags.writeable:
                array.setflags(write=False)
        rows = []
        for s in range(self.max_spread_ticks):
            defined = np.isfinite(self.g_ticks[s]) & np.isfinite(self.imbalance_centres)
            rows.append((tuple(self.imbalance_centres[defined].tolist()), tuple(self.g_ticks[s][defined].tolist())))
        object.__setattr__(self, "_rows", tuple(rows))

    @property
    def params(self) -> dict[str, float]:
        """G* per state, ``"g_ticks.spread<s>.bin<b>"`` → ticks."""
        return {
            f"g_ticks.spread{s + 1}.bin{b}": float(self.g_ticks[s, b])
            for s in range(self.max_spread_ticks)
            for b in range(self.n_imbalance_bins)
        }

    @property
    def std_err(self) -> dict[str, float]:
        """Bootstrap standard error of each entry of :attr:`params`, ticks."""
        return {
            f"g_ticks.spread{s + 1}.bin{b}": float(self.std_err_ticks[s, b])
            for s in range(self.max_spread_ticks)
            for b in range(self.n_imbalance_bins)
        }

    def adjustment_ticks(self, imbalance: float, spread_ticks: int) -> float:
        """G* at imbalance I (linear between bin centres, flat beyond) and spread s; NaN outside 1 … m."""
        return _interpolate_rows(self._rows, imbalance, spread_ticks)

    @property
    def table(self) -> "StoikovTable":
        """What the online layer needs (tick, and G* against the imbalance per spread), storable as JSON."""
        return StoikovTable(tick_usd=self.tick_usd, rows=self._rows)

    def to_frame(self) -> pd.DataFrame:
        """One row per state: spread_ticks, bin, imbalance_centre, g_ticks, std_err_ticks, g1_ticks, transitions."""
        s, b = np.meshgrid(np.arange(1, self.max_spread_ticks + 1), np.arange(self.n_imbalance_bins), indexing="ij")
        return pd.DataFrame(
            {
                "spread_ticks": s.ravel(),
                "bin": b.ravel(),
                "imbalance_centre": np.broadcast_to(self.imbalance_centres, s.shape).ravel(),
                "g_ticks": self.g_ticks.ravel(),
                "std_err_ticks": self.std_err_ticks.ravel(),
                "g1_ticks": self.g1_ticks.ravel(),
                "transitions": self.transitions_per_state.ravel(),
            }
        )

    def summary(self) -> str:
        sample = "every change of the touch" if self.sample == "book" else f"every {self.sample:g} s"
        lines = [
            "Stoikov micro-price G*(imbalance, spread)",
            f"  tick {self.tick_usd:g} USD; sampled {sample}; {self.n_samples:,} samples, {self.n_transitions:,} transitions"
            f" in the state space ({self.dropped_transitions:,} outside spreads 1..{self.max_spread_ticks},"
            f" {self.dropped_jumps:,} dropped jumps)",
            f"  imbalance bins ({self.bins}): edges " + ", ".join(f"{e:.3f}" for e in self.imbalance_edges),
            f"  series Σ B^k G¹: {self.series_terms} terms, converged {self.series_converged},"
            f" last term {self.series_term_max_ticks[-1]:.2e} ticks; std err from {self.n_bootstrap} bootstrap replicates",
            "  G* in ticks (± std err) [transitions out of the state]:",
            "  " + f"{'spread':>8}" + "".join(f"{'I≈' + format(c, '.2f'):>22}" for c in self.imbalance_centres),
        ]
        for s in range(self.max_spread_ticks):
            cells = "".join(
                f"{self.g_ticks[s, b]:>+9.4f} ±{self.std_err_ticks[s, b]:<6.4f}[{self.transitions_per_state[s, b]:>5d}]"
                for b in range(self.n_imbalance_bins)
            )
            lines.append(f"  {s + 1:>8}" + cells)
        changes = ", ".join(f"{k:+g}: {c:,}" for k, c in sorted(self.mid_change_counts, key=lambda kc: -kc[1])[:7])
        lines.append(f"  most frequent mid changes (ticks: count): {changes}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return _html(self.summary())


def _interpolate_rows(rows, imbalance: float, spread_ticks: int) -> float:
    if not 1 <= spread_ticks <= len(rows):
        return math.nan
    centres, values = rows[spread_ticks - 1]
    if not centres:
        return math.nan
    j = bisect_right(centres, imbalance)
    if j == 0:
        return values[0]
    if j == len(centres):
        return values[-1]
    x0, x1 = centres[j - 1], centres[j]
    y0, y1 = values[j - 1], values[j]
    return y0 + (y1 - y0) * (imbalance - x0) / (x1 - x0)


@dataclass(frozen=True, slots=True)
class StoikovTable:
    """The fitted G* the online layer reads: ``rows[s − 1] = (imbalance centres, G* ticks)`` for spread s.

    States never visited are left out of their row. Built by :attr:`StoikovFit.table`; plain
    numbers only, so a parameters file can hold it (:meth:`to_dict`, :meth:`from_dict`).
    """

    tick_usd: float
    rows: tuple[tuple[tuple[float, ...], tuple[float, ...]], ...]

    def __post_init__(self) -> None:
        if not (math.isfinite(self.tick_usd) and self.tick_usd > 0):
            raise ValueError(f"StoikovTable: field 'tick_usd' must be positive, got {self.tick_usd!r}")
        for s, (centres, values) in enumerate(self.rows):
            if len(centres) != len(values) or not all(math.isfinite(v) for v in (*centres, *values)):
                raise ValueError(f"StoikovTable: field 'rows[{s}]' needs as many finite centres as values")
            if any(b <= a for a, b in zip(centres, centres[1:])):
                raise ValueError(f"StoikovTable: field 'rows[{s}]' centres must increase")

    @property
    def max_spread_ticks(self) -> int:
        return len(self.rows)

    def adjustment_ticks(self, imbalance: float, spread_ticks: int) -> float:
        """G* at imbalance I and spread s (as :meth:`StoikovFit.adjustment_ticks`)."""
        return _interpolate_rows(self.rows, imbalance, spread_ticks)

    def to_dict(self) -> dict:
        return {"tick_usd": self.tick_usd, "rows": [[list(c), list(v)] for c, v in self.rows]}

    @classmethod
    def from_dict(cls, data: dict) -> "StoikovTable":
        rows = tuple((tuple(float(x) for x in c), tuple(float(x) for x in v)) for c, v in data["rows"])
        return cls(tick_usd=float(data["tick_usd"]), rows=rows)


def _touch_samples(frame: BookFrame, sample: str | float) -> np.ndarray:
    """Rows of ``frame`` that are samples of the touch."""
    ok = usable_mask(frame, 1)
    rows = np.flatnonzero(ok)
    if rows.size == 0:
        return rows
    if sample == "book":
        touch = np.column_stack([frame.bid_px[rows, 0], frame.ask_px[rows, 0], frame.bid_sz[rows, 0], frame.ask_sz[rows, 0]])
        changed = np.ones(rows.size, dtype=bool)
        changed[1:] = np.any(touch[1:] != touch[:-1], axis=1)
        return rows[changed]
    step_ns = int(round(sample * NS_PER_S))
    grid = np.arange(int(frame.ts_local[rows[0]]), int(frame.ts_local[-1]) + 1, step_ns, dtype=np.int64)
    at = np.searchsorted(frame.ts_local, grid, "right") - 1
    return at[ok[at]]


def _symmetrized_counts(
    x: np.ndarray, y: np.ndarray, dm_half: np.ndarray, count: np.ndarray, n_bins: int, n_states: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Visits N, Q and T (probabilities) and R K (ticks) of the symmetrized transition cells."""

    def mirror(state: np.ndarray) -> np.ndarray:
        # (s, b) ↦ (s, n − 1 − b)
        return (state // n_bins) * n_bins + (n_bins - 1 - state % n_bins)

    xs = np.concatenate([x, mirror(x)])
    ys = np.concatenate([y, mirror(y)])
    dms = np.concatenate([dm_half, -dm_half])
    cs = np.concatenate([count, count]).astype(np.float64)
    visits = np.bincount(xs, weights=cs, minlength=n_states)
    still = dms == 0
    q = np.zeros((n_states, n_states))
    t = np.zeros((n_states, n_states))
    np.add.at(q, (xs[still], ys[still]), cs[still])
    np.add.at(t, (xs[~still], ys[~still]), cs[~still])
    # (R K)_x = E[M' − M | x], ticks (dm is in half ticks)
    rk = np.bincount(xs, weights=cs * dms * 0.5, minlength=n_states)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(visits > 0, 1.0 / visits, 0.0)
    return visits, q * scale[:, None], t * scale[:, None], rk * scale


def _g_star(
    q: np.ndarray, t: np.ndarray, rk: np.ndarray, *, tol: float, max_terms: int
) -> tuple[np.ndarray, np.ndarray, list[float], bool]:
    """G¹, G* = Σ B^k G¹ and the largest |term| of each power k."""
    eye = np.eye(q.shape[0])
    try:
        # G¹ = (1 − Q)⁻¹ R K
        g1 = np.linalg.solve(eye - q, rk)
        # B = (1 − Q)⁻¹ T
        b = np.linalg.solve(eye - q, t)
    except np.linalg.LinAlgError:
        stuck = np.flatnonzero(np.isclose(np.diag(q), 1.0))
        raise ValueError(
            f"fit_stoikov_microprice: 1 − Q is singular: states {stuck.tolist()} never leave without a mid change;"
            " use more data or fewer bins"
        ) from None
    scale = float(np.max(np.abs(g1))) if g1.size else 0.0
    g = g1.copy()
    term = g1
    norms = [scale]
    converged = scale == 0.0
    k = 0
    while not converged and k < max_terms:
        # G* = Σ_k B^k G¹
        term = b @ term
        g += term
        k += 1
        norms.append(float(np.max(np.abs(term))))
        converged = norms[-1] <= tol * scale
    return g1, g, norms, converged


def fit_stoikov_microprice(
    data: Tape | BookFrame,
    *,
    n_imbalance_bins: int = 5,
    max_spread_ticks: int = 3,
    sample: str | float = "book",
    bins: str = "quantile",
    tick_usd: float | None = None,
    max_mid_change_ticks: float | None = None,
    n_bootstrap: int = 100,
    seed: int = 0,
    tol: float = 1e-10,
    max_terms: int = 10_000,
    min_transitions: int = 50,
) -> StoikovFit:
    """Fit Stoikov's micro-price (module docstring) on a tape or a frame of books.

    Parameters
    ----------
    data : Tape or BookFrame
        A tape (its books are replayed, one row per update group) or books already in a frame.
    n_imbalance_bins : int
        n, bins of I = q^b/(q^b + q^a) (at least 2).
    max_spread_ticks : int
        m, largest spread (ticks) in the state space; samples with wider spreads are not states.
    sample : "book" or float
        "book": every change of the touch (price or size), as in the paper; a number: the touch
        every ``sample`` seconds.
    bins : {"quantile", "uniform"}
        Equal-count bins of the symmetrized imbalance (the paper's ``qcut``) or equal width.
    tick_usd : float, optional
        Price tick. Default: the tape's ``instrument.price_tick`` when positive, else the
        smallest positive spread in the samples.
    max_mid_change_ticks : float, optional
        Drop transitions whose mid moved more than this (the paper keeps |ΔM| ≤ 1 tick on large-
        tick stocks); None keeps all, so R K is the full mean change.
    n_bootstrap : int
        Bootstrap replicates for the standard errors (0: none, std_err NaN).
    seed : int
        Seed of the bootstrap.
    tol, max_terms : float, int
        Stop the series when max|B^k G¹| ≤ tol · max|G¹|, or after max_terms terms.
    min_transitions : int
        Fewer transitions inside the state space raise ``ValueError``.

    Raises
    ------
    ValueError
        On an invalid argument, too few transitions, bins that cannot be formed (too many ties
        for equal-count bins), or a singular 1 − Q.
    """
    owner = "fit_stoikov_microprice"
    n = _check_levels(owner, n_imbalance_bins, "n_imbalance_bins")
    m = _check_levels(owner, max_spread_ticks, "max_spread_ticks")
    if n < 2:
        raise ValueError(f"{owner}: field 'n_imbalance_bins' must be >= 2, got {n_imbalance_bins!r}")
    if bins not in ("quantile", "uniform"):
        raise ValueError(f"{owner}: field 'bins' must be 'quantile' or 'uniform', got {bins!r}")
    if sample != "book":
        sample = _check_positive(owner, "sample", sample)
    _check_positive(owner, "tol", tol)
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)) or n_bootstrap < 0:
        raise ValueError(f"{owner}: field 'n_bootstrap' must be an integer >= 0, got {n_bootstrap!r}")
    if max_mid_change_ticks is not None:
        _check_positive(owner, "max_mid_change_ticks", max_mid_change_ticks)

    if isinstance(data, Tape):
        if tick_usd is None and data.instrument.price_tick > 0.0:
            tick_usd = float(data.instrument.price_tick)
        frame = book_frame(data, levels=1)
    elif isinstance(data, BookFrame):
        frame = data
    else:
        raise TypeError(f"{owner}: field 'data' must be a Tape or a BookFrame, got {type(data).__name__}")
    rows = _touch_samples(frame, sample)
    if rows.size < 2:
        raise ValueError(f"{owner}: fewer than two usable samples of the touch")
    bid, ask = frame.bid_px[rows, 0], frame.ask_px[rows, 0]
    bid_size, ask_size = frame.bid_sz[rows, 0], frame.ask_sz[rows, 0]
    spread = ask - bid
    if tick_usd is None:
        # the smallest quoted spread is one tick on any venue with a one-tick minimum
        tick_usd = float(f"{float(spread.min()):.10g}")
    tick = _check_positive(owner, "tick_usd", tick_usd)
    spread_ticks = np.rint(spread / tick).astype(np.int64)
    imbalance = bid_size / (bid_size + ask_size)
    in_space = (spread_ticks >= 1) & (spread_ticks <= m)
    if not in_space.any():
        raise ValueError(f"{owner}: no sample has a spread of 1..{m} ticks of {tick:g} USD")

    # imbalance bins: edges symmetric about 1/2, so bucket b mirrors to n − 1 − b
    if bins == "uniform":
        edges = np.arange(1, n) / n
    else:
        sym = np.concatenate([imbalance[in_space], 1.0 - imbalance[in_space]])
        raw = np.quantile(sym, np.arange(1, n) / n)
        edges = 0.5 * (raw + 1.0 - raw[::-1])
        if np.any(np.diff(edges) <= 0.0) or edges[0] <= 0.0 or edges[-1] >= 1.0:
            raise ValueError(
                f"{owner}: {n} equal-count imbalance bins cannot be formed (too many equal imbalances); "
                "use fewer bins or bins='uniform'"
            )
    bucket = np.searchsorted(edges, imbalance, "right")
    state = (spread_ticks - 1) * n + bucket
    n_states = m * n

    # transitions between consecutive samples
    dm_half = np.rint(2.0 * np.diff(0.5 * (bid + ask)) / tick).astype(np.int64)
    keep = in_space[:-1] & in_space[1:]
    dropped_transitions = int((~keep).sum())
    dropped_jumps = 0
    if max_mid_change_ticks is not None:
        jump = keep & (np.abs(dm_half) > 2.0 * max_mid_change_ticks + 1e-9)
        dropped_jumps = int(jump.sum())
        keep &= ~jump
    x, y, dm = state[:-1][keep], state[1:][keep], dm_half[keep]
    if x.size < min_transitions:
        raise ValueError(f"{owner}: only {x.size} transitions inside the state space, need {min_transitions}")
    cells, count = np.unique(np.column_stack([x, y, dm]), axis=0, return_counts=True)
    cx, cy, cdm = cells[:, 0], cells[:, 1], cells[:, 2]

    visits, q, t, rk = _symmetrized_counts(cx, cy, cdm, count, n, n_states)
    g1, g, norms, converged = _g_star(q, t, rk, tol=tol, max_terms=max_terms)
    unvisited = visits == 0
    g1[unvisited] = np.nan
    g[unvisited] = np.nan

    std_err = np.full(n_states, np.nan)
    if n_bootstrap > 0:
        rng = np.random.default_rng(seed)
        order = np.argsort(cx, kind="stable")
        cx, cy, cdm, count = cx[order], cy[order], cdm[order], count[order]
        starts = np.searchsorted(cx, np.arange(n_states + 1))
        replicates = []
        for _ in range(n_bootstrap):
            drawn = np.empty_like(count)
            for s in range(n_states):
                lo, hi = starts[s], starts[s + 1]
                if hi > lo:
                    cell_counts = count[lo:hi]
                    # transitions out of a state, given its visits, are multinomial
                    drawn[lo:hi] = rng.multinomial(int(cell_counts.sum()), cell_counts / cell_counts.sum())
            _, bq, bt, brk = _symmetrized_counts(cx, cy, cdm, drawn, n, n_states)
            try:
                replicates.append(_g_star(bq, bt, brk, tol=tol, max_terms=max_terms)[1])
            except ValueError:
                continue
        if len(replicates) > 1:
            std_err = np.std(np.array(replicates), axis=0, ddof=1)
            std_err[unvisited] = np.nan

    sym_imbalance = np.concatenate([imbalance[in_space], 1.0 - imbalance[in_space]])
    sym_bucket = np.concatenate([bucket[in_space], n - 1 - bucket[in_space]])
    sums = np.bincount(sym_bucket, weights=sym_imbalance, minlength=n)
    hits = np.bincount(sym_bucket, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        centres = np.where(hits > 0, sums / hits, np.nan)
    changes, change_counts = np.unique(dm, return_counts=True)
    return StoikovFit(
        tick_usd=tick,
        n_imbalance_bins=n,
        max_spread_ticks=m,
        bins=bins,
        sample=sample,
        imbalance_edges=np.asarray(edges, dtype=np.float64),
        imbalance_centres=centres,
        g_ticks=g.reshape(m, n),
        g1_ticks=g1.reshape(m, n),
        std_err_ticks=std_err.reshape(m, n),
        transitions_per_state=np.bincount(cx, weights=count, minlength=n_states).astype(np.int64).reshape(m, n),
        n_samples=int(rows.size),
        n_transitions=int(x.size),
        dropped_transitions=dropped_transitions,
        dropped_jumps=dropped_jumps,
        mid_change_counts=tuple((0.5 * float(k), int(c)) for k, c in zip(changes, change_counts)),
        series_terms=len(norms) - 1,
        series_converged=bool(converged),
        series_term_max_ticks=tuple(norms),
        n_bootstrap=int(n_bootstrap),
    )


class StoikovMicroPrice(UsableBookMixin):
    """Stoikov's micro-price ``m + G*(I, S) · tick`` as a log offset from the mid.

    Parameters
    ----------
    fit : StoikovFit or StoikovTable
        From :func:`fit_stoikov_microprice` (or its :attr:`~StoikovFit.table`).
    name : str
        Feature name.

    Attributes
    ----------
    dropped : int
        Unusable books ignored.
    outside : int
        Usable books whose spread is outside the fitted 1 … m ticks (value NaN: the model says
        nothing there).
    """

    def __init__(self, fit: StoikovFit | StoikovTable, *, name: str = "micro_stoikov") -> None:
        if isinstance(fit, StoikovFit):
            fit = fit.table
        if not isinstance(fit, StoikovTable):
            raise TypeError(f"StoikovMicroPrice: field 'fit' must be a StoikovFit or StoikovTable, got {type(fit).__name__}")
        self.fit = fit
        self.name = name
        self.dropped = 0
        self.outside = 0
        self._value = math.nan

    def update(self, update: VenueUpdate) -> None:
        book = self._usable_book(update, 1)
        if book is None:
            return
        bid, ask = float(book[0][0]), float(book[2][0])
        bid_size, ask_size = float(book[1][0]), float(book[3][0])
        tick = self.fit.tick_usd
        spread_ticks = int(round((ask - bid) / tick))
        g = self.fit.adjustment_ticks(bid_size / (bid_size + ask_size), spread_ticks)
        if math.isnan(g):
            self.outside += 1
            self._value = math.nan
            return
        # ln(m + G tick) − ln m
        self._value = math.log1p(g * tick / (0.5 * (bid + ask)))

    @property
    def value(self) -> float:
        """``ln(m + G* tick) − ln m``; NaN after an unusable book or outside the fitted spreads."""
        return self._value


def stoikov_series(frame: BookFrame, fit: StoikovFit) -> np.ndarray:
    """:class:`StoikovMicroPrice` over every row of ``frame``."""
    ok = usable_mask(frame, 1)
    bid, ask = frame.bid_px[:, 0], frame.ask_px[:, 0]
    bid_size, ask_size = frame.bid_sz[:, 0], frame.ask_sz[:, 0]
    tick = fit.tick_usd
    out = np.full(len(frame), np.nan)
    with np.errstate(invalid="ignore"):
        spread_ticks = np.where(ok, np.rint((ask - bid) / tick), 0).astype(np.int64)
        imbalance = bid_size / (bid_size + ask_size)
    for s in range(1, fit.max_spread_ticks + 1):
        centres, values = fit._rows[s - 1]
        rows = ok & (spread_ticks == s)
        if not centres or not rows.any():
            continue
        g = np.interp(imbalance[rows], centres, values)
        out[rows] = np.log1p(g * tick / (0.5 * (bid[rows] + ask[rows])))
    return out


# --------------------------------------------------------------------------------------------
# Trade-informed layer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeMicroPriceFit:
    """Decay of the trade-informed layer, chosen by least squares on the future mid.

    Attributes
    ----------
    params : dict
        ``{"decay_s": τ}``, seconds.
    std_err : dict
        ``{"slope": ...}``: Newey–West standard error of ``slope`` (τ is chosen on a grid and has
        no standard error).
    horizon_s : float
        H of the fit.
    slope : float
        Least-squares slope (through 0) of ``ln m(t + H) − ln m(t)`` on the layer at the chosen τ;
        1 means the layer's scale is right as it stands.
    mse_bps2 : tuple of (float, float)
        (τ, mean squared error of ``ln m(t) + value`` predicting ``ln m(t + H)``, bps²) per candidate.
    mse_mid_bps2 : float
        The same error for the mid itself, on the same rows.
    n_rows : int
        Rows used.
    """

    params: dict[str, float]
    std_err: dict[str, float]
    horizon_s: float
    slope: float
    mse_bps2: tuple[tuple[float, float], ...]
    mse_mid_bps2: float
    n_rows: int

    @property
    def decay_s(self) -> float:
        return self.params["decay_s"]

    def summary(self) -> str:
        best = dict(self.mse_bps2)[self.decay_s]
        lines = [
            "Trade-informed layer: exp(−age/τ) · (ln p_last − ln mid)",
            f"  fitted on {self.n_rows:,} rows, horizon {self.horizon_s:g} s",
            f"  decay_s τ = {self.decay_s:g} s; MSE {best:.5g} bps² vs mid {self.mse_mid_bps2:.5g} bps²"
            f" (ratio {best / self.mse_mid_bps2:.4f})",
            f"  slope of the future mid change on the layer {self.slope:.4f} ± {self.std_err['slope']:.4f} (1 = calibrated)",
            "  MSE by τ (bps²): " + ", ".join(f"{tau:g} s: {mse:.5g}" for tau, mse in self.mse_bps2),
        ]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return _html(self.summary())


class TradeMicroPrice(UsableBookMixin):
    """The trade-informed layer: the last print's price, relative to the mid, decaying with age.

    Parameters
    ----------
    fit : TradeMicroPriceFit or float
        A fit from :func:`fit_trade_microprice`, or τ in seconds.
    name : str
        Feature name.

    Attributes
    ----------
    dropped : int
        Unusable books ignored.
    dropped_prints : int
        Invalid prints ignored.
    """

    def __init__(self, fit: TradeMicroPriceFit | float, *, name: str = "micro_trade") -> None:
        decay_s = fit.decay_s if isinstance(fit, TradeMicroPriceFit) else fit
        self.decay_s = _check_positive("TradeMicroPrice", "decay_s", decay_s)
        self.name = name
        self.dropped = 0
        self.dropped_prints = 0
        self._decay_ns = self.decay_s * NS_PER_S
        self._last_log_price = math.nan
        self._last_ts = 0
        self._value = math.nan

    def update(self, update: VenueUpdate) -> None:
        for trade in update.trades:
            if _valid_print(trade.price, trade.size, int(trade.aggressor)):
                self._last_log_price = math.log(trade.price)
                self._last_ts = trade.ts_local
            else:
                self.dropped_prints += 1
        book = self._usable_book(update, 1)
        if book is None:
            return
        if math.isnan(self._last_log_price):
            self._value = math.nan
            return
        log_mid = math.log(0.5 * (float(book[0][0]) + float(book[2][0])))
        # value = exp(−(t − t_last)/τ) · (ln p_last − ln m)
        self._value = math.exp(-(update.ts_local - self._last_ts) / self._decay_ns) * (self._last_log_price - log_mid)

    @property
    def value(self) -> float:
        """Decayed log offset of the last print from the mid; NaN before any print or after an unusable book."""
        return self._value


def trade_microprice_series(frame: BookFrame, decay_s: float) -> np.ndarray:
    """:class:`TradeMicroPrice` over every row of ``frame``."""
    decay_ns = _check_positive("trade_microprice_series", "decay_s", decay_s) * NS_PER_S
    valid = (
        np.isfinite(frame.trade_price)
        & (frame.trade_price > 0.0)
        & np.isfinite(frame.trade_size)
        & (frame.trade_size > 0.0)
        & np.isin(frame.trade_side, (1, -1))
    )
    trade_rows = frame.trade_row[valid]
    out = np.full(len(frame), np.nan)
    if trade_rows.size == 0:
        return out
    # the last valid print delivered at or before each row
    last = np.searchsorted(trade_rows, np.arange(len(frame)), "right") - 1
    has = (last >= 0) & usable_mask(frame, 1)
    j = last[has]
    age_ns = frame.ts_local[has] - frame.trade_ts_local[valid][j]
    log_mid = np.log(0.5 * (frame.bid_px[has, 0] + frame.ask_px[has, 0]))
    out[has] = np.exp(-age_ns / decay_ns) * (np.log(frame.trade_price[valid][j]) - log_mid)
    return out


def _newey_west_slope(x: np.ndarray, y: np.ndarray, lags: int) -> tuple[float, float]:
    """Least-squares slope through 0 of y on x, and its Newey–West (Bartlett) standard error."""
    sxx = float(x @ x)
    slope = float(x @ y) / sxx
    score = x * (y - slope * x)
    s = float(score @ score)
    for lag in range(1, min(lags, score.size - 1) + 1):
        s += 2.0 * (1.0 - lag / (lags + 1)) * float(score[lag:] @ score[:-lag])
    return slope, math.sqrt(max(s, 0.0)) / sxx


def fit_trade_microprice(
    data: Tape | BookFrame,
    *,
    horizon_s: float = 1.0,
    decays_s: Sequence[float] = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0),
    interval_s: float = 0.1,
) -> TradeMicroPriceFit:
    """Choose τ of the trade-informed layer by the mean squared error of predicting the mid H ahead.

    Parameters
    ----------
    data : Tape or BookFrame
        A frame of books and trades on a polling grid, or a tape (replayed every ``interval_s``).
    horizon_s : float
        H, seconds.
    decays_s : sequence of float
        Candidate τ, seconds.
    interval_s : float
        Polling interval when ``data`` is a tape, seconds.

    Raises
    ------
    ValueError
        If no row has a print, a mid and a future mid, or an argument is invalid.
    """
    owner = "fit_trade_microprice"
    horizon_s = _check_positive(owner, "horizon_s", horizon_s)
    candidates = [_check_positive(owner, "decays_s", tau) for tau in decays_s]
    if not candidates:
        raise ValueError(f"{owner}: field 'decays_s' is empty")
    frame = book_frame(data, levels=1, interval_s=interval_s) if isinstance(data, Tape) else data
    target = future_log_return(frame, horizon_s)
    series = {tau: trade_microprice_series(frame, tau) for tau in candidates}
    # a print exists and the touch is usable on the same rows for every τ
    ok = np.isfinite(target) & np.isfinite(series[candidates[0]])
    n_rows = int(ok.sum())
    if n_rows < 10:
        raise ValueError(f"{owner}: only {n_rows} rows have a print, a mid and the mid {horizon_s:g} s later")
    y = target[ok]
    mse = tuple((tau, float(np.mean((1e4 * (y - series[tau][ok])) ** 2))) for tau in candidates)
    best = min(mse, key=lambda pair: pair[1])[0]
    steps = max(1, int(round(horizon_s * NS_PER_S / max(1.0, float(np.median(np.diff(frame.ts_local)))))))
    slope, slope_se = _newey_west_slope(series[best][ok], y, steps)
    return TradeMicroPriceFit(
        params={"decay_s": best},
        std_err={"slope": slope_se},
        horizon_s=horizon_s,
        slope=slope,
        mse_bps2=mse,
        mse_mid_bps2=float(np.mean((1e4 * y) ** 2)),
        n_rows=n_rows,
    )


# --------------------------------------------------------------------------------------------
# Judging a layer
# --------------------------------------------------------------------------------------------


def forecast_mse(frame: BookFrame, values: np.ndarray, horizon_s: float, *, start_row: int = 0) -> dict[str, Any]:
    """Mean squared error (bps²) of ``ln m(t) + value(t)`` and of ``ln m(t)`` predicting ``ln m(t + H)``.

    Rows from ``start_row`` on where the layer, the mid and the future mid are all defined.
    Returns ``{"mse_layer_bps2", "mse_mid_bps2", "ratio", "n"}`` (ratio < 1: the layer beats the mid).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(frame),):
        raise ValueError(f"forecast_mse: field 'values' has shape {values.shape}, expected ({len(frame)},)")
    target = future_log_return(frame, horizon_s)
    ok = np.isfinite(values) & np.isfinite(target)
    ok[:start_row] = False
    n = int(ok.sum())
    if n == 0:
        raise ValueError("forecast_mse: no row has the layer, the mid and the future mid")
    mse_layer = float(np.mean((1e4 * (target[ok] - values[ok])) ** 2))
    mse_mid = float(np.mean((1e4 * target[ok]) ** 2))
    return {"mse_layer_bps2": mse_layer, "mse_mid_bps2": mse_mid, "ratio": mse_layer / mse_mid, "n": n}


def calibrated_forecast_mse(
    frame: BookFrame, values: np.ndarray, horizon_s: float, *, split_row: int
) -> dict[str, Any]:
    """:func:`forecast_mse` of ``b · value`` with b the least-squares slope fitted on rows before ``split_row``.

    This is how the sensor's calibration uses a layer (``z = ln mid + b f``), judged out of
    sample on the rows from ``split_row`` on. Returns the :func:`forecast_mse` keys plus ``slope``.
    """
    values = np.asarray(values, dtype=np.float64)
    target = future_log_return(frame, horizon_s)
    fit_rows = np.isfinite(values) & np.isfinite(target)
    fit_rows[split_row:] = False
    if not fit_rows.any() or float(values[fit_rows] @ values[fit_rows]) == 0.0:
        raise ValueError("calibrated_forecast_mse: no row before split_row to fit the slope on")
    slope = float(values[fit_rows] @ target[fit_rows]) / float(values[fit_rows] @ values[fit_rows])
    out = forecast_mse(frame, slope * values, horizon_s, start_row=split_row)
    out["slope"] = slope
    return out
