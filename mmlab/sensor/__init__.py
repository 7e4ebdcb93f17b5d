"""Sensor: turn the book and the tape into observations ``(z, R)`` of the filter's state.

Every feature measures one component of ``x = [ln V, μ, ln σ]`` with its own noise variance,
so the filter weighs it by its precision. This first version has five features:

- **mid** observes ln V. If V were anywhere inside the spread with equal chance, the error of
  ln mid would be uniform on ±h (h the half spread as a fraction), so ``R = h² / 3``.
- **L1 micro-price** observes ln V. The size-weighted touch
  ``micro = (bid · ask_size + ask · bid_size) / (bid_size + ask_size)`` leans toward the side
  that is about to be taken; its error is uniform on ±h/2 under the same argument,
  ``R = h² / 12``.
- **book imbalance** ``I = (bid_size − ask_size) / (bid_size + ask_size)`` at the touch observes
  the drift: ``z = k_I · I`` per second with noise ``R = s_I²``.
- **trade-sign flow**: an exponentially weighted signed volume fraction
  ``F = Σ w_i sign_i size_i / Σ w_i size_i`` (half-life ``flow_half_life_s``) observes the drift,
  ``z = k_F · F`` with ``R = s_F²``.
- **realized volatility** observes ln σ, once per window of N non-overlapping returns of the mid
  sampled at least one second apart. With N log-returns r_i of the mid over intervals Δt_i,
  ``Σ r_i² / Σ Δt_i ~ σ² · χ²_N / N``, hence
  ``E[ln(RV)] = 2 ln σ + ψ(N/2) + ln(2/N)`` and ``Var[ln(RV)] = ψ'(N/2)`` (ψ the digamma
  function). So ``z = ½ (ln RV − ψ(N/2) − ln(2/N))`` is unbiased for ln σ with ``R = ψ'(N/2)/4``.

The coefficients of the drift features come from the config in this version; a later version
fits them and every noise variance from data. A book that is missing one side, crossed or holds a
non-finite value produces no observations and is counted in ``dropped_books``.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Protocol

from scipy.special import digamma, polygamma

from mmlab.config import SensorConfig
from mmlab.types import L2Book, Observation, StateComponent, Trade, VenueUpdate

__all__ = ["Sensor", "MicrostructureSensor", "realized_vol_observation"]

# Mid returns are sampled at least this far apart so the bid-ask bounce of one tick does not
# dominate the realized variance.
_VOL_SAMPLE_INTERVAL_NS = 1_000_000_000


class Sensor(Protocol):
    def observe(self, update: VenueUpdate) -> tuple[Observation, ...]:
        """Observations of the latent state made from one venue update."""
        ...


def realized_vol_observation(sum_sq_returns: float, sum_dt_s: float, n_returns: int) -> tuple[float, float]:
    """Unbiased observation of ln σ from N squared log-returns, and its noise variance."""
    # RV / σ² ~ χ²_N / N  =>  E[ln RV] = 2 ln σ + ψ(N/2) + ln(2/N)
    log_rv = math.log(sum_sq_returns / sum_dt_s)
    bias = float(digamma(n_returns / 2.0)) + math.log(2.0 / n_returns)
    z = 0.5 * (log_rv - bias)
    # Var[ln RV] = ψ'(N/2), and z = ½ ln RV
    noise_var = float(polygamma(1, n_returns / 2.0)) / 4.0
    return z, noise_var


class MicrostructureSensor:
    """Features from the L2 book and the trade tape (see the module docstring)."""

    def __init__(self, config: SensorConfig | None = None) -> None:
        self.config = config or SensorConfig()
        self.dropped_books = 0
        self._flow_signed = 0.0
        self._flow_total = 0.0
        self._flow_ts: int | None = None
        self._returns: deque[tuple[float, float]] = deque(maxlen=self.config.vol_window_returns)
        self._last_vol_sample: tuple[int, float] | None = None

    def observe(self, update: VenueUpdate) -> tuple[Observation, ...]:
        self._accumulate_flow(update.trades, update.ts_local)
        book = update.book
        if book is None:
            return ()
        if not _is_usable(book):
            self.dropped_books += 1
            return ()
        ts = update.ts_local
        bid, ask = float(book.bid_px[0]), float(book.ask_px[0])
        bid_size, ask_size = float(book.bid_sz[0]), float(book.ask_sz[0])
        mid = 0.5 * (bid + ask)
        # h: half spread as a fraction of the mid
        half_spread = 0.5 * (ask - bid) / mid
        log_mid = math.log(mid)
        observations = [
            # uniform error on ±h  =>  R = h²/3
            Observation(
                ts_local=ts,
                component=StateComponent.LOG_FAIR_VALUE,
                value=log_mid,
                noise_var=half_spread**2 / 3.0,
                source="mid",
            ),
        ]
        touch_size = bid_size + ask_size
        imbalance = (bid_size - ask_size) / touch_size
        micro = (bid * ask_size + ask * bid_size) / touch_size
        # uniform error on ±h/2  =>  R = h²/12
        observations.append(
            Observation(
                ts_local=ts,
                component=StateComponent.LOG_FAIR_VALUE,
                value=math.log(micro),
                noise_var=half_spread**2 / 12.0,
                source="micro_l1",
            )
        )
        cfg = self.config
        observations.append(
            Observation(
                ts_local=ts,
                component=StateComponent.DRIFT,
                value=cfg.imbalance_drift_per_s * imbalance,
                noise_var=cfg.imbalance_drift_noise_per_s**2,
                source="book_imbalance",
            )
        )
        if self._flow_total > 0.0:
            flow = self._flow_signed / self._flow_total
            observations.append(
                Observation(
                    ts_local=ts,
                    component=StateComponent.DRIFT,
                    value=cfg.flow_drift_per_s * flow,
                    noise_var=cfg.flow_drift_noise_per_s**2,
                    source="trade_flow",
                )
            )
        vol = self._sample_vol(ts, log_mid, half_spread)
        if vol is not None:
            observations.append(vol)
        return tuple(observations)

    def _accumulate_flow(self, trades: tuple[Trade, ...], ts_now: int) -> None:
        half_life_ns = self.config.flow_half_life_s * 1e9
        for trade in trades:
            self._decay_flow(trade.ts_local, half_life_ns)
            self._flow_signed += int(trade.aggressor) * trade.size
            self._flow_total += trade.size
        self._decay_flow(ts_now, half_life_ns)

    def _decay_flow(self, ts: int, half_life_ns: float) -> None:
        if self._flow_ts is not None and ts > self._flow_ts:
            # weights halve every half-life
            decay = 0.5 ** ((ts - self._flow_ts) / half_life_ns)
            self._flow_signed *= decay
            self._flow_total *= decay
        if self._flow_ts is None or ts > self._flow_ts:
            self._flow_ts = ts

    def _sample_vol(self, ts: int, log_mid: float, half_spread: float) -> Observation | None:
        last = self._last_vol_sample
        if last is None:
            self._last_vol_sample = (ts, log_mid)
            return None
        if ts - last[0] < _VOL_SAMPLE_INTERVAL_NS:
            return None
        self._returns.append((log_mid - last[1], (ts - last[0]) / 1e9))
        self._last_vol_sample = (ts, log_mid)
        n = len(self._returns)
        if n < self._returns.maxlen:
            return None
        sum_sq = sum(r * r for r, _ in self._returns)
        sum_dt = sum(dt for _, dt in self._returns)
        # Windows do not overlap, so successive observations have independent errors.
        self._returns.clear()
        # A window of unchanged mids says only that σ is small: floor it, never take ln 0.
        floor = (self.config.vol_floor_bps_per_sqrt_s * 1e-4) ** 2 * sum_dt
        z, noise_var = realized_vol_observation(max(sum_sq, floor), sum_dt, n)
        return Observation(
            ts_local=ts, component=StateComponent.LOG_VOL, value=z, noise_var=noise_var, source="realized_vol"
        )


def _is_usable(book: L2Book) -> bool:
    if book.bid_px.size == 0 or book.ask_px.size == 0:
        return False
    bid, ask = book.bid_px[0], book.ask_px[0]
    bid_size, ask_size = book.bid_sz[0], book.ask_sz[0]
    if not (math.isfinite(bid) and math.isfinite(ask) and math.isfinite(bid_size) and math.isfinite(ask_size)):
        return False
    return 0.0 < bid < ask and bid_size > 0.0 and ask_size > 0.0
