"""VPIN, the volume-synchronized probability of informed trading (Easley, López de Prado and
O'Hara 2012), and the signed order imbalance of the same volume buckets.

Buckets
-------
Traded volume (valid prints, :mod:`mmlab.sensor.flow`) is cut into buckets of equal volume V
(``bucket_volume_coins``); a print that crosses a bucket's end is split, the rest opening the next
bucket. Each bucket b gets a buy volume V_B and a sell volume V_S = V − V_B, classified either

- by the **aggressor** side the tape reports (exact: a buyer-initiated print is buy volume), or
- by **bulk volume classification** (BVC): prints are first summed into time bars of ``bar_s``
  seconds (exchange clock, bars aligned on multiples of ``bar_s`` since the epoch); a bar with
  volume v and log-price change Δ = ln p_close − ln p_prev_close (p_prev_close the close of the
  previous bar with trades; the bar's first price for the very first bar) contributes
  buy volume v · Φ(Δ / σ_Δ), σ_Δ the standard deviation of bar log-price changes (fitted by
  :func:`fit_vpin` on the bars with trades). A bar is classified when the first print of a later
  bar arrives, so BVC lags by up to one bar.

Then, over the last n = ``window_buckets`` completed buckets,

    VPIN = (1/n) Σ_b |V_B,b − V_S,b| / V          (a toxicity level in [0, 1], unsigned)
    OI   = (1/n) Σ_b (V_B,b − V_S,b) / V          (signed order imbalance in [−1, 1])

Both are NaN until n buckets are complete. VPIN is not directional; OI is positive when buyers
dominated, the sign convention of the sensor (evidence of a rise).

The bucket volume is a parameter; :func:`daily_bucket_volume` gives the paper's choice, one
fiftieth of the daily volume (extrapolated from the tape's rate), which is too large for the
minutes-long samples, where a bucket volume of the tape's volume over a few hundred is used.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtr

from mmlab.config import check_field
from mmlab.data.tape import Tape
from mmlab.sensor.flow import PrintFeatureMixin, PrintFilter, TradePrints, trade_prints
from mmlab.types import VenueUpdate
from mmlab.units import NS_PER_S, s_to_ns

__all__ = [
    "VPINParams",
    "VPINFit",
    "VPIN",
    "CLASSIFICATIONS",
    "fit_vpin",
    "daily_bucket_volume",
    "vpin_buckets",
]

CLASSIFICATIONS = ("aggressor", "bulk")
_SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True, slots=True, kw_only=True)
class VPINParams:
    """Settings of VPIN (module docstring).

    ``bar_return_std`` is σ_Δ, the standard deviation of the log-price change over one bar
    (a fraction), used only by bulk volume classification.
    """

    bucket_volume_coins: float
    window_buckets: int = 50
    bar_s: float = 1.0
    bar_return_std: float = math.nan

    def __post_init__(self) -> None:
        check_field("VPINParams", "bucket_volume_coins", self.bucket_volume_coins, gt=0.0)
        if isinstance(self.window_buckets, bool) or not isinstance(self.window_buckets, int) or self.window_buckets < 1:
            raise ValueError(f"VPINParams.window_buckets must be an integer >= 1, got {self.window_buckets!r}")
        check_field("VPINParams", "bar_s", self.bar_s, gt=0.0)
        if s_to_ns(self.bar_s) < 1:
            raise ValueError(f"VPINParams.bar_s must be at least 1 ns, got {self.bar_s!r}")
        if not (math.isnan(self.bar_return_std) or 0.0 < self.bar_return_std < math.inf):
            raise ValueError(f"VPINParams.bar_return_std must be > 0 (or NaN when unused), got {self.bar_return_std!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class VPINFit:
    """VPIN settings estimated from a tape: σ_Δ with its standard error, and the data used."""

    params: VPINParams
    std_err: dict[str, float]
    bars: int
    volume_coins: float
    span_s: float

    def summary(self) -> str:
        p = self.params
        return "\n".join(
            [
                "VPIN settings (bulk volume classification fitted from bars)",
                f"  bucket volume {p.bucket_volume_coins:.6g} coins ({self.volume_coins / p.bucket_volume_coins:,.1f} buckets in"
                f" {self.volume_coins:,.6g} coins over {self.span_s:,.1f} s); window {p.window_buckets} buckets",
                f"  bar {p.bar_s:g} s: sigma of bar log-price change {1e4 * p.bar_return_std:.4f} bps"
                f" (std err {1e4 * self.std_err['bar_return_std']:.4f} bps, {self.bars:,} bars with trades)",
            ]
        )

    def _repr_html_(self) -> str:
        return "<pre>" + self.summary() + "</pre>"


def daily_bucket_volume(tape: Tape, buckets_per_day: float = 50.0) -> float:
    """One ``buckets_per_day``-th of the daily volume, the daily volume extrapolated from the
    tape's volume per second of its trades' exchange-time span (coins)."""
    check_field("daily_bucket_volume", "buckets_per_day", buckets_per_day, gt=0.0)
    prints = trade_prints(tape)
    if len(prints) < 2 or prints.ts_exch[-1] == prints.ts_exch[0]:
        raise ValueError("daily_bucket_volume: the tape needs trades spanning some time")
    span_s = (int(prints.ts_exch[-1]) - int(prints.ts_exch[0])) / NS_PER_S
    return float(prints.size.sum() / span_s * _SECONDS_PER_DAY / buckets_per_day)


def _bars(prints: TradePrints, bar_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bars with trades: ``(bar index, volume, log-price change, index of the bar's last print)``."""
    bar_ns = s_to_ns(bar_s)
    index = prints.ts_exch // bar_ns
    new = np.r_[True, index[1:] != index[:-1]]
    first = np.flatnonzero(new)
    last = np.append(first[1:], len(prints)) - 1
    bar_of = np.cumsum(new) - 1
    volume = np.bincount(bar_of, weights=prints.size, minlength=first.size)
    close = np.log(prints.price[last])
    previous = np.r_[np.log(prints.price[0]), close[:-1]]
    return index[first], volume, close - previous, last


def fit_vpin(
    tape: Tape,
    *,
    bucket_volume_coins: float | None = None,
    buckets: int | None = None,
    window_buckets: int = 50,
    bar_s: float = 1.0,
) -> VPINFit:
    """Estimate σ_Δ of bulk volume classification and settle the bucket volume.

    Parameters
    ----------
    tape : Tape
        The fitting data (normally the first half of a tape).
    bucket_volume_coins : float, optional
        V; default the daily volume / 50 (:func:`daily_bucket_volume`), or the tape's volume /
        ``buckets`` when ``buckets`` is given.
    buckets : int, optional
        Number of buckets the tape's volume should fill (an alternative to V for short tapes).
    window_buckets, bar_s
        See :class:`VPINParams`.

    Notes
    -----
    σ_Δ is the sample standard deviation of the log-price change of the bars with trades;
    its standard error is σ_Δ / √(2 (m − 1)) for m bars (normal theory).
    """
    prints = trade_prints(tape)
    if len(prints) < 3:
        raise ValueError(f"fit_vpin: the tape has {len(prints)} valid prints; at least 3 are needed")
    if bucket_volume_coins is not None and buckets is not None:
        raise ValueError("fit_vpin: give bucket_volume_coins or buckets, not both")
    volume = float(prints.size.sum())
    if buckets is not None:
        if isinstance(buckets, bool) or not isinstance(buckets, int) or buckets < 1:
            raise ValueError(f"fit_vpin: buckets must be an integer >= 1, got {buckets!r}")
        bucket_volume_coins = volume / buckets
    elif bucket_volume_coins is None:
        bucket_volume_coins = daily_bucket_volume(tape)
    check_field("fit_vpin", "bar_s", bar_s, gt=0.0)
    _, _, change, _ = _bars(prints, bar_s)
    # the first bar's change is measured from its own first price: keep it, it is a bar return too
    if change.size < 3:
        raise ValueError(f"fit_vpin: only {change.size} bars of {bar_s} s hold trades; at least 3 are needed")
    sigma = float(np.std(change, ddof=1))
    if not sigma > 0.0:
        raise ValueError(f"fit_vpin: the price never changes between bars of {bar_s} s; bulk classification is undefined")
    params = VPINParams(bucket_volume_coins=float(bucket_volume_coins), window_buckets=window_buckets, bar_s=bar_s, bar_return_std=sigma)
    span_s = (int(prints.ts_exch[-1]) - int(prints.ts_exch[0])) / NS_PER_S
    return VPINFit(
        params=params,
        std_err={"bar_return_std": sigma / math.sqrt(2.0 * (change.size - 1)), "bucket_volume_coins": math.nan},
        bars=int(change.size),
        volume_coins=volume,
        span_s=span_s,
    )


def vpin_buckets(source: Tape | TradePrints, params: VPINParams, *, classification: str = "aggressor") -> pd.DataFrame:
    """Completed volume buckets and the VPIN / OI after each, in batch.

    Columns: ``ts_exch`` and ``ts_local`` (ns) of the print (aggressor) or of the first print of
    the later bar (bulk) that completed the bucket, ``buy_volume``, ``sell_volume`` (coins),
    ``imbalance`` ((V_B − V_S)/V), ``vpin`` and ``order_imbalance`` (means over the last
    ``window_buckets`` buckets, NaN before that many).
    """
    if classification not in CLASSIFICATIONS:
        raise ValueError(f"vpin_buckets: classification must be one of {CLASSIFICATIONS}, got {classification!r}")
    prints = source if isinstance(source, TradePrints) else trade_prints(source)
    bucket = params.bucket_volume_coins
    if classification == "aggressor":
        volume = prints.size
        buy = np.where(prints.side > 0, prints.size, 0.0)
        done_ts_exch, done_ts_local = prints.ts_exch, prints.ts_local
    else:
        if math.isnan(params.bar_return_std):
            raise ValueError("vpin_buckets: bulk classification needs VPINParams.bar_return_std (fit it with fit_vpin)")
        _, volume, change, last = _bars(prints, params.bar_s)
        # V_B = v · Φ(Δ / σ_Δ); a bar is classified when the next bar's first print arrives, so
        # the last bar is still open
        buy = volume * ndtr(change / params.bar_return_std)
        volume, buy = volume[:-1], buy[:-1]
        next_first = last[:-1] + 1
        done_ts_exch, done_ts_local = prints.ts_exch[next_first], prints.ts_local[next_first]
    cum_volume = np.concatenate(([0.0], np.cumsum(volume)))
    cum_buy = np.concatenate(([0.0], np.cumsum(buy)))
    n_buckets = int(math.floor(cum_volume[-1] / bucket * (1 + 1e-12)))
    ends = bucket * np.arange(1, n_buckets + 1)
    ends = ends[ends <= cum_volume[-1] * (1 + 1e-12)]
    # buy volume is piecewise linear in cumulative volume (a print or bar is split pro rata)
    buy_at_end = np.interp(ends, cum_volume, cum_buy)
    buy_volume = np.diff(np.concatenate(([0.0], buy_at_end)))
    sell_volume = bucket - buy_volume
    # the print / bar that completed each bucket: the first whose cumulative volume reaches its end
    which = np.minimum(np.searchsorted(cum_volume[1:], ends * (1 - 1e-12), "left"), len(volume) - 1) if len(volume) else np.empty(0, int)
    imbalance = (buy_volume - sell_volume) / bucket
    n = params.window_buckets
    absolute = pd.Series(np.abs(imbalance)).rolling(n, min_periods=n).mean().to_numpy()
    signed = pd.Series(imbalance).rolling(n, min_periods=n).mean().to_numpy()
    return pd.DataFrame(
        {
            "ts_exch": np.asarray(done_ts_exch)[which].astype(np.int64),
            "ts_local": np.asarray(done_ts_local)[which].astype(np.int64),
            "buy_volume": buy_volume,
            "sell_volume": sell_volume,
            "imbalance": imbalance,
            "vpin": absolute,
            "order_imbalance": signed,
        }
    )


class VPIN(PrintFeatureMixin):
    """Online VPIN and bucket order imbalance (module docstring).

    Parameters
    ----------
    params : VPINParams or VPINFit
        Bucket volume, window, and σ_Δ for bulk classification.
    classification : {"aggressor", "bulk"}
        How buckets' volume is split into buys and sells.
    signed : bool
        ``value`` reports the signed order imbalance OI (a directional signal) instead of VPIN
        (a toxicity level).

    Attributes
    ----------
    vpin, order_imbalance : float
        Current values (NaN until ``window_buckets`` buckets are complete).
    buckets : int
        Completed buckets.
    dropped : int
        Invalid prints ignored (the book is not used).
    """

    def __init__(self, params: VPINParams | VPINFit, *, classification: str = "aggressor", signed: bool = False) -> None:
        if isinstance(params, VPINFit):
            params = params.params
        if not isinstance(params, VPINParams):
            raise TypeError(f"VPIN expects VPINParams or VPINFit, got {type(params).__name__}")
        if classification not in CLASSIFICATIONS:
            raise ValueError(f"VPIN.classification must be one of {CLASSIFICATIONS}, got {classification!r}")
        if classification == "bulk" and math.isnan(params.bar_return_std):
            raise ValueError("VPIN: bulk classification needs VPINParams.bar_return_std (fit it with fit_vpin)")
        self.params = params
        self.classification = classification
        self.signed = bool(signed)
        suffix = "" if classification == "aggressor" else "_bvc"
        self.name = ("vpin_order_imbalance" if signed else "vpin") + suffix
        self._filter = PrintFilter()
        self._bucket = params.bucket_volume_coins
        self._fill = 0.0  # volume in the open bucket
        self._fill_buy = 0.0
        self._recent: deque[float] = deque(maxlen=params.window_buckets)  # imbalances of the last buckets
        self._abs_sum = 0.0
        self._signed_sum = 0.0
        self.buckets = 0
        # bulk classification: the open bar
        self._bar_ns = s_to_ns(params.bar_s)
        self._bar_index: int | None = None
        self._bar_volume = 0.0
        self._bar_close = math.nan
        self._prev_close = math.nan

    def update(self, update: VenueUpdate) -> None:
        for trade in self._filter.valid(update.trades):
            size, price = float(trade.size), float(trade.price)
            if self.classification == "aggressor":
                self._add(size, size if int(trade.aggressor) > 0 else 0.0)
                continue
            index = int(trade.ts_exch) // self._bar_ns
            if self._bar_index is None:
                self._bar_index, self._prev_close = index, math.log(price)
            elif index != self._bar_index:
                self._close_bar()
                self._bar_index = index
            self._bar_volume += size
            self._bar_close = math.log(price)

    def _close_bar(self) -> None:
        # V_B = v · Φ(Δ / σ_Δ), Δ = ln close − ln previous close
        change = self._bar_close - self._prev_close
        volume = self._bar_volume
        self._add(volume, volume * float(ndtr(change / self.params.bar_return_std)))
        self._prev_close = self._bar_close
        self._bar_volume = 0.0

    def _add(self, volume: float, buy: float) -> None:
        """Pour ``volume`` (of which ``buy`` is buy volume) into buckets, splitting pro rata."""
        buy_share = buy / volume
        while volume > 0.0:
            room = self._bucket - self._fill
            if volume < room * (1 - 1e-12):
                self._fill += volume
                self._fill_buy += volume * buy_share
                return
            self._fill_buy += room * buy_share
            volume -= room
            # (V_B − V_S)/V with V_S = V − V_B
            imbalance = (2.0 * self._fill_buy - self._bucket) / self._bucket
            if len(self._recent) == self._recent.maxlen:
                old = self._recent[0]
                self._abs_sum -= abs(old)
                self._signed_sum -= old
            self._recent.append(imbalance)
            self._abs_sum += abs(imbalance)
            self._signed_sum += imbalance
            self.buckets += 1
            self._fill = self._fill_buy = 0.0
            if self.buckets % 4096 == 0:  # re-add to stop rounding drift in the running sums
                self._abs_sum = sum(abs(x) for x in self._recent)
                self._signed_sum = sum(self._recent)

    @property
    def vpin(self) -> float:
        if len(self._recent) < self._recent.maxlen:
            return math.nan
        return self._abs_sum / len(self._recent)

    @property
    def order_imbalance(self) -> float:
        if len(self._recent) < self._recent.maxlen:
            return math.nan
        return self._signed_sum / len(self._recent)

    @property
    def value(self) -> float:
        return self.order_imbalance if self.signed else self.vpin
