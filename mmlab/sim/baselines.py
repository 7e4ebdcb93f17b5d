"""Baseline quoters run by the same simulator as the pipeline, for comparisons and benchmarks.

A baseline has the pipeline's one method, ``cycle(update) -> CycleOutput``, so the backtester
cannot tell them apart.

- :class:`FixedSpreadQuoter`: one bid and one ask a fixed number of bps either side of the mid.
- :class:`AvellanedaStoikovQuoter`: Avellaneda & Stoikov (2008), "High-frequency trading in a
  limit order book", on the exchange mid s with a constant CARA risk aversion γ (1/USD):

      r = s − q γ σ² τ                              reservation price (USD)
      δ_a + δ_b = γ σ² τ + (2/γ) ln(1 + γ/k)         total spread (USD), centred on r

  with q the position (coins), σ the mid's volatility (USD/√s), τ the horizon (s) and k the decay
  of the fill intensity Λ(δ) = A e^{−k δ} (1/USD). The paper's T − t is replaced by a constant τ:
  the stationary (infinite-horizon, rolling-horizon) variant, so the quotes do not drift with the
  clock. σ² is estimated online from the mids the quoter sees: an EWMA of squared log returns of
  the mid sampled every ``sigma_sample_s`` (1 s), bias-corrected by the EWMA of the weights, with
  half-life ``sigma_half_life_s``; no quote before ``warmup_returns`` returns.
  :func:`fit_depth_decay_per_bps` estimates k (per bps) from the market orders of a tape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mmlab.config import InstrumentSpec
from mmlab.evaluator import MarkoutEvaluator
from mmlab.executor import limit_exposure, reconcile
from mmlab.pipeline import CycleOutput
from mmlab.types import L2Book, Quote, QuoteSet, RiskBudget, Side, VenueUpdate

if TYPE_CHECKING:
    from mmlab.data.tape import Tape

__all__ = [
    "FixedSpreadQuoter",
    "AvellanedaStoikovQuoter",
    "AvellanedaStoikovQuotes",
    "avellaneda_stoikov_quotes",
    "DepthDecayFit",
    "fit_depth_decay_per_bps",
    "sweep_depths_bps",
]


class FixedSpreadQuoter:
    """One bid and one ask at ``half_spread_bps`` either side of the mid, fixed size.

    The plain rule a market maker starts from: no model, no skew. It still respects the
    position cap (through the same exposure limit as the executor) and never crosses the book.
    """

    def __init__(
        self,
        instrument: InstrumentSpec,
        *,
        half_spread_bps: float = 2.0,
        size: float = 0.01,
        q_max: float = 0.1,
        reprice_tolerance_bps: float = 1.0,
    ) -> None:
        if not (half_spread_bps > 0 and size > 0 and q_max > 0):
            raise ValueError("FixedSpreadQuoter: half_spread_bps, size and q_max must be > 0")
        self.instrument = instrument
        self.half_spread_bps = half_spread_bps
        self.size = instrument.round_size(size)
        self.q_max = q_max
        self.reprice_tolerance_bps = reprice_tolerance_bps
        self.evaluator = MarkoutEvaluator()

    def cycle(self, update: VenueUpdate) -> CycleOutput:
        book = update.book
        ts = update.ts_local
        quotes = QuoteSet(ts_local=ts, bids=(), asks=())
        if book is not None and book.has_both_sides and not book.is_crossed and self.size > 0:
            grid = self.instrument
            mid = book.mid
            offset = mid * self.half_spread_bps * 1e-4
            bid = min(grid.round_bid(mid - offset), grid.price_below(book.best_ask))
            ask = max(grid.round_ask(mid + offset), grid.price_above(book.best_bid))
            quotes = _one_quote_a_side(grid, ts, bid, ask, self.size, self.q_max, update.position)
        return _send(self, update, quotes, gamma_per_usd=0.0, horizon_s=math.inf)


def _one_quote_a_side(
    grid: InstrumentSpec, ts: int, bid: float, ask: float, size: float, q_max: float, position: float
) -> QuoteSet:
    """A bid at ``bid`` and an ask at ``ask`` (NaN: none) of the fixed size within what the cap
    leaves on each side, so that a resting order that fits is not modified every cycle towards a
    size the exposure limit would cut anyway."""
    bid_size = grid.round_size(min(size, q_max - position))
    ask_size = grid.round_size(min(size, q_max + position))
    return QuoteSet(
        ts_local=ts,
        bids=(Quote(side=Side.BUY, price=bid, size=bid_size),) if bid_size > 0.0 and math.isfinite(bid) else (),
        asks=(Quote(side=Side.SELL, price=ask, size=ask_size),) if ask_size > 0.0 and math.isfinite(ask) else (),
    )


def _send(quoter, update: VenueUpdate, quotes: QuoteSet, *, gamma_per_usd: float, horizon_s: float) -> CycleOutput:
    """Reconcile a baseline's target with its live orders exactly as the executor does, within the
    same exposure limit, and mark its fills with the same evaluator."""
    ts = update.ts_local
    budget = RiskBudget(
        ts_local=ts, position=update.position, gamma_per_usd=gamma_per_usd, q_max=quoter.q_max,
        max_buy_size=max(0.0, quoter.q_max - update.position), max_sell_size=max(0.0, quoter.q_max + update.position),
        max_order_size=quoter.size, funding_carry_bps=0.0, marginal_cost_bps=0.0, holding_horizon_s=horizon_s,
    )
    actions = reconcile(quotes, update.open_orders, quoter.reprice_tolerance_bps, 0.0)
    actions = limit_exposure(actions, update.open_orders, update.pending_cancels, budget, quoter.instrument)
    return CycleOutput(
        ts_local=ts, observations=(), belief=None, budget=budget, surface=None, quotes=quotes,
        actions=actions, updates=quoter.evaluator.evaluate(update),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class AvellanedaStoikovQuotes:
    """The Avellaneda–Stoikov prices before grid rounding, all in USD."""

    reservation_price: float
    total_spread_usd: float
    bid_price: float
    ask_price: float


def avellaneda_stoikov_quotes(
    *,
    mid: float,
    position: float,
    gamma_per_usd: float,
    sigma_usd_per_sqrt_s: float,
    horizon_s: float,
    decay_per_usd: float,
) -> AvellanedaStoikovQuotes:
    """The closed form of Avellaneda & Stoikov (2008) with a constant horizon τ.

    Parameters
    ----------
    mid : float
        Exchange mid s, USD.
    position : float
        Inventory q, coins (positive long).
    gamma_per_usd : float
        CARA absolute risk aversion γ, 1/USD.
    sigma_usd_per_sqrt_s : float
        Volatility of the mid σ, USD/√s.
    horizon_s : float
        τ, the constant stand-in for T − t, seconds.
    decay_per_usd : float
        k in Λ(δ) = A e^{−k δ} with δ in USD, 1/USD.
    """
    if not (mid > 0 and gamma_per_usd > 0 and horizon_s > 0 and decay_per_usd > 0 and sigma_usd_per_sqrt_s >= 0):
        raise ValueError(
            "avellaneda_stoikov_quotes: mid, gamma_per_usd, horizon_s and decay_per_usd must be > 0 and "
            f"sigma_usd_per_sqrt_s >= 0, got mid={mid!r}, gamma_per_usd={gamma_per_usd!r}, horizon_s={horizon_s!r}, "
            f"decay_per_usd={decay_per_usd!r}, sigma_usd_per_sqrt_s={sigma_usd_per_sqrt_s!r}"
        )
    # γ σ² τ, USD per coin of inventory
    risk_usd = gamma_per_usd * sigma_usd_per_sqrt_s**2 * horizon_s
    # r = s − q γ σ² τ
    reservation = mid - position * risk_usd
    # δ_a + δ_b = γ σ² τ + (2/γ) ln(1 + γ/k)
    spread_usd = risk_usd + (2.0 / gamma_per_usd) * math.log1p(gamma_per_usd / decay_per_usd)
    return AvellanedaStoikovQuotes(
        reservation_price=reservation,
        total_spread_usd=spread_usd,
        bid_price=reservation - 0.5 * spread_usd,
        ask_price=reservation + 0.5 * spread_usd,
    )


class AvellanedaStoikovQuoter:
    """One bid and one ask from the Avellaneda–Stoikov closed form on the mid, fixed size.

    Parameters
    ----------
    instrument : InstrumentSpec
        Venue grid; bids round down, asks up, and neither crosses the book (post-only).
    gamma_per_usd : float
        Constant CARA risk aversion γ, 1/USD.
    decay_per_bps : float
        Fill-intensity decay κ per bps of depth from the mid; converted on each cycle to
        k = κ / (mid · 1e-4) per USD, since δ_bps = δ_usd / (mid · 1e-4).
    horizon_s : float
        The constant horizon τ (the infinite-horizon variant: T − t never shrinks).
    size : float
        Order size, coins, on each side.
    q_max : float
        Position cap, coins, enforced by :func:`mmlab.executor.limit_exposure` as in the executor.
    sigma_half_life_s : float
        Half-life of the EWMA of squared mid log returns, seconds.
    sigma_sample_s : float
        The mid is sampled every ``sigma_sample_s`` of local time for those returns (1 s).
    warmup_returns : int
        Returns needed before the first quote.
    reprice_tolerance_bps : float
        A resting order within this distance of its target price is kept (as in the executor).
    """

    def __init__(
        self,
        instrument: InstrumentSpec,
        *,
        gamma_per_usd: float = 1.0,
        decay_per_bps: float = 1.0,
        horizon_s: float = 60.0,
        size: float = 0.01,
        q_max: float = 0.1,
        sigma_half_life_s: float = 60.0,
        sigma_sample_s: float = 1.0,
        warmup_returns: int = 30,
        reprice_tolerance_bps: float = 1.0,
    ) -> None:
        for name, value in (
            ("gamma_per_usd", gamma_per_usd),
            ("decay_per_bps", decay_per_bps),
            ("horizon_s", horizon_s),
            ("size", size),
            ("q_max", q_max),
            ("sigma_half_life_s", sigma_half_life_s),
            ("sigma_sample_s", sigma_sample_s),
        ):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"AvellanedaStoikovQuoter: {name} must be a finite number > 0, got {value!r}")
        if isinstance(warmup_returns, bool) or not isinstance(warmup_returns, int) or warmup_returns < 1:
            raise ValueError(f"AvellanedaStoikovQuoter: warmup_returns must be an integer >= 1, got {warmup_returns!r}")
        if not reprice_tolerance_bps >= 0:
            raise ValueError(f"AvellanedaStoikovQuoter: reprice_tolerance_bps must be >= 0, got {reprice_tolerance_bps!r}")
        self.instrument = instrument
        self.gamma_per_usd = float(gamma_per_usd)
        self.decay_per_bps = float(decay_per_bps)
        self.horizon_s = float(horizon_s)
        self.size = instrument.round_size(size)
        self.q_max = float(q_max)
        self.sigma_half_life_s = float(sigma_half_life_s)
        self.sigma_sample_s = float(sigma_sample_s)
        self.warmup_returns = warmup_returns
        self.reprice_tolerance_bps = float(reprice_tolerance_bps)
        self.evaluator = MarkoutEvaluator()
        # EWMA decay per sample: λ = 2^(−Δ / half-life)
        self._decay = 0.5 ** (self.sigma_sample_s / self.sigma_half_life_s)
        self._sample_ns = int(round(self.sigma_sample_s * 1e9))
        self._next_sample_ns: int | None = None
        self._last_log_mid = math.nan
        self._last_sample_ns = 0
        self._weighted_var_sum = 0.0
        self._weight_sum = 0.0
        self.returns_seen = 0

    @property
    def sigma_per_sqrt_s(self) -> float:
        """EWMA volatility of the mid's log returns (fraction per √s); NaN before any return."""
        if self._weight_sum <= 0.0:
            return math.nan
        # σ² = Σ λ^i r_i²/Δt_i / Σ λ^i  (bias-corrected EWMA)
        return math.sqrt(self._weighted_var_sum / self._weight_sum)

    @property
    def ready(self) -> bool:
        """True once ``warmup_returns`` returns have been seen."""
        return self.returns_seen >= self.warmup_returns

    def _sample(self, ts: int, mid: float) -> None:
        """Add the log return since the last sample when a ``sigma_sample_s`` boundary has passed."""
        if self._next_sample_ns is None:
            self._next_sample_ns = ts + self._sample_ns
            self._last_log_mid, self._last_sample_ns = math.log(mid), ts
            return
        if ts < self._next_sample_ns:
            return
        while self._next_sample_ns <= ts:
            self._next_sample_ns += self._sample_ns
        log_mid = math.log(mid)
        elapsed_s = (ts - self._last_sample_ns) * 1e-9
        # r² / Δt: a variance per second even when a missing book stretched the interval
        var_per_s = (log_mid - self._last_log_mid) ** 2 / elapsed_s
        self._weighted_var_sum = self._decay * self._weighted_var_sum + var_per_s
        self._weight_sum = self._decay * self._weight_sum + 1.0
        self._last_log_mid, self._last_sample_ns = log_mid, ts
        self.returns_seen += 1

    def target(self, book: L2Book, position: float) -> AvellanedaStoikovQuotes:
        """Unrounded AS prices for ``position`` on ``book`` with the current σ estimate."""
        mid = book.mid
        sigma = self.sigma_per_sqrt_s
        if not math.isfinite(sigma):
            raise ValueError("AvellanedaStoikovQuoter.target: no volatility estimate yet (no mid return seen)")
        # k per USD = κ per bps / (s · 1e-4)
        decay_per_usd = self.decay_per_bps / (mid * 1e-4)
        return avellaneda_stoikov_quotes(
            mid=mid, position=position, gamma_per_usd=self.gamma_per_usd,
            sigma_usd_per_sqrt_s=mid * sigma, horizon_s=self.horizon_s, decay_per_usd=decay_per_usd,
        )

    def cycle(self, update: VenueUpdate) -> CycleOutput:
        book = update.book
        ts = update.ts_local
        quotes = QuoteSet(ts_local=ts, bids=(), asks=())
        if book is not None and book.has_both_sides and not book.is_crossed:
            self._sample(ts, book.mid)
            if self.ready and self.size > 0:
                grid = self.instrument
                prices = self.target(book, update.position)
                # post-only: a bid strictly below the best ask, an ask strictly above the best bid;
                # a reservation price so far below the mid that the bid is not positive quotes no bid
                bid = math.nan
                if prices.bid_price > 0.0:
                    bid = min(grid.round_bid(min(prices.bid_price, book.best_ask)), grid.price_below(book.best_ask))
                # (an ask below the best bid, possibly negative, becomes the best post-only ask)
                ask = max(grid.round_ask(max(prices.ask_price, book.best_bid)), grid.price_above(book.best_bid))
                quotes = _one_quote_a_side(grid, ts, bid, ask, self.size, self.q_max, update.position)
        return _send(self, update, quotes, gamma_per_usd=self.gamma_per_usd, horizon_s=self.horizon_s)


@dataclass(frozen=True, slots=True, kw_only=True)
class DepthDecayFit:
    """Exponential decay of the depth market orders reach, Λ(δ) ∝ e^{−κ δ_bps} beyond ``threshold_bps``.

    ``decay_per_bps`` is κ̂ and ``std_err`` its asymptotic standard error κ̂/√n; ``orders`` counts
    the market orders (sweeps) seen and ``tail_orders`` those at or beyond the threshold.
    """

    decay_per_bps: float
    std_err: float
    threshold_bps: float
    orders: int
    tail_orders: int

    def summary(self) -> str:
        return (
            f"depth decay κ = {self.decay_per_bps:.4f} ± {self.std_err:.4f} per bps "
            f"(from {self.tail_orders} of {self.orders} market orders reaching ≥ {self.threshold_bps:.3f} bps)"
        )


def sweep_depths_bps(tape: "Tape", *, interval_s: float = 0.1) -> np.ndarray:
    """Depth (bps from the mid before it) of the farthest price each market order traded at.

    The tape is replayed without trading (:func:`mmlab.sensor.calibration.replay_updates`) every
    ``interval_s``; the trades of one market order (same exchange time and aggressor) are measured
    against the mid of the previous update, δ = s (p − m) / m · 1e4 with s = +1 for a buy.
    """
    from mmlab.sensor.calibration import replay_updates

    depths: list[float] = []
    mid = math.nan
    for update in replay_updates(tape, interval_s):
        if update.trades and math.isfinite(mid):
            farthest: dict[tuple[int, int], float] = {}
            for trade in update.trades:
                key = (trade.ts_exch, int(trade.aggressor))
                # δ = s (p − m) / m · 1e4
                depth = int(trade.aggressor) * (trade.price - mid) / mid * 1e4
                farthest[key] = max(farthest.get(key, -math.inf), depth)
            depths.extend(farthest.values())
        book = update.book
        if book is not None and book.has_both_sides and not book.is_crossed:
            mid = book.mid
    return np.asarray(depths, dtype=float)


def fit_depth_decay_per_bps(depths_bps: np.ndarray, *, threshold_quantile: float = 0.5) -> DepthDecayFit:
    """Maximum-likelihood κ of an exponential tail of market-order depths (bps).

    A resting quote δ bps from the mid fills when a market order reaches δ, so the fill
    intensity is proportional to the survival function of the depths. Beyond the threshold
    δ₀ (the ``threshold_quantile`` of the depths; with the default, about the touch) the excess
    δ − δ₀ is exponential with rate κ, whose MLE is κ̂ = 1 / mean(δ − δ₀) and std err κ̂/√n.
    """
    depths = np.asarray(depths_bps, dtype=float)
    depths = depths[np.isfinite(depths)]
    if depths.size < 10:
        raise ValueError(f"fit_depth_decay_per_bps: depths_bps needs at least 10 finite market-order depths, got {depths.size}")
    threshold = float(np.quantile(depths, threshold_quantile))
    tail = depths[depths >= threshold]
    excess = float(np.mean(tail - threshold))
    if not excess > 0:
        raise ValueError("fit_depth_decay_per_bps: depths_bps beyond the threshold do not vary; κ is not identified")
    # κ̂ = 1 / mean(δ − δ₀)
    decay = 1.0 / excess
    return DepthDecayFit(
        decay_per_bps=decay, std_err=decay / math.sqrt(tail.size), threshold_bps=threshold,
        orders=int(depths.size), tail_orders=int(tail.size),
    )
