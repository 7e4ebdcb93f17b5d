"""Swappable parts of the simulated venue: queue position, latency and fee models.

Queue position (after hftbacktest's ``RiskAdverseQueueModel`` and ``ProbQueueModel``,
``hftbacktest/src/backtest/models/queue.rs``, https://hftbacktest.readthedocs.io, "Queue Models")
--------------------------------------------------------------------------------------------------
An order resting at a level of displayed size ``S`` has ``front = queue_ahead`` coins ahead of it
and ``back = S − front`` behind. Trades at our price consume ``front`` first in every model. When
a BOOK row changes the level from ``prev`` to ``new``, the decrease not explained by the market
volume traded at the level since the last BOOK row (``traded``) is a cancellation:

    chg = prev − new − traded

- :class:`RiskAverseQueue`: cancellations are all behind us, ``front ← min(front, new)``.
- :class:`ProbabilisticQueue`: with ``p = prob(front, back)`` the probability that the cancelled
  size was *behind* us (hftbacktest's ``Probability::prob``),

      front ← clamp(front − (1 − p)·chg + min(back − p·chg, 0), 0, new)

  so ``(1 − p)·chg`` is taken from the front, and whatever of ``p·chg`` the back cannot supply
  comes from the front too. A growing level (``chg < 0``) leaves ``front ← min(front, new)``.

The probability functions, as hftbacktest defines them:

    power(n)   PowerProbQueueFunc    p = f(back) / (f(back) + f(front)),  f(x) = x**n
    log        LogProbQueueFunc      p = f(back) / (f(back) + f(front)),  f(x) = log(1 + x)
    power2(n)  PowerProbQueueFunc2   p = f(back) / f(back + front),       f(x) = x**n
    log2       LogProbQueueFunc2     p = f(back) / f(back + front),       f(x) = log(1 + x)
    power3(n)  PowerProbQueueFunc3   p = 1 − f(front / (front + back)),   f(x) = x**n

Because ``front − (1 − p)·chg + min(back − p·chg, 0) ≤ front`` for ``chg ≥ 0`` and ``p ∈ [0, 1]``,
a probabilistic model never leaves us further back than the risk-averse one on the same events.

Latency
-------
A latency model hands each venue a fresh sampler (``sampler() -> draw() -> ns``), so two venues
built from the same model replay identically. :class:`ConstantLatency` always draws the same
value; :class:`EmpiricalLatency` draws recorded latencies with ``np.random.default_rng(seed)``.
Order entry (us → exchange) and responses (exchange → us: acknowledgements, rejections, cancel
confirmations) take any of these.

The feed latency (market data, exchange → us) is a per-row quantity instead: a feed latency model
maps the tape's clocks to the exchange time ``E_r`` at which each row happened
(``exchange_times_ns(ts_local, ts_exch)``). :class:`ConstantLatency` gives ``E_r = L_r − f``.
:class:`RecordedFeedLatency` reads each row's own latency off the tape,

    d_r = ts_local_r − ts_exch_r                    recorded delay, clock offset included
    f_r = base_s + (d_r − min_r d_r)                the fastest row took base_s
    E_r = max(L_r − f_r, E_{r−1})                   never before an earlier row

The offset between the recorder's clock and the exchange's is constant over a recording and
cannot be told apart from the constant part of the latency, so only the excess over the fastest
row is taken from the tape and the constant part (``base_s``) is a parameter. The running maximum
keeps the exchange processing rows in tape order: the book is rebuilt from the rows in that order
(a diff applied before the one it follows would corrupt it), so a row that the tape shows after
another cannot have happened before it; such a row is taken to have happened together with its
predecessor. A tape whose ``ts_exch`` carries no information (synthetic tapes stamp
``ts_local = ts_exch + constant``) has ``d_r − min d = 0`` on every row, so ``f_r = base_s``:
exactly the constant model.

Fees (Hyperliquid perps)
------------------------
``HYPERLIQUID_PERP_FEE_TIERS`` holds the base perp tiers by 14-day weighted volume and the maker
rebate tiers by 14-day share of maker volume, from https://hyperliquid.gitbook.io/hyperliquid-docs/
trading/fees (as transcribed on 2026-11-24 via hypernode-docs.polynode.dev/research/fees and
usefelix.gitbook.io/perps/getting-started/fees; staking and referral discounts are not applied).
A name ``"vip3+mm2"`` takes the taker rate of volume tier 3 and the maker rate of rebate tier 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from mmlab.units import NS_PER_S

__all__ = [
    "QueueModel",
    "RiskAverseQueue",
    "ProbabilisticQueue",
    "queue_model_from_name",
    "LatencyModel",
    "ConstantLatency",
    "EmpiricalLatency",
    "RecordedFeedLatency",
    "FeedLatencyModel",
    "FeeSchedule",
    "HYPERLIQUID_PERP_FEE_TIERS",
    "HYPERLIQUID_MAKER_REBATE_BPS",
    "fee_schedule_for_tier",
]


# -- queue position ------------------------------------------------------------------------------


class QueueModel(Protocol):
    """How a BOOK row at our level moves the size ahead of us."""

    name: str

    def on_depth(self, front: float, prev_size: float, new_size: float, traded: float) -> float:
        """Return the new ``queue_ahead`` after the level went from ``prev_size`` to ``new_size``.

        ``traded`` is the market volume traded at the level since its last BOOK row.
        """
        ...


@dataclass(frozen=True, slots=True)
class RiskAverseQueue:
    """Only trades advance us; the queue ahead cannot be longer than the level."""

    name: str = "risk_averse"

    def on_depth(self, front: float, prev_size: float, new_size: float, traded: float) -> float:
        return front if front <= new_size else new_size


def _power(n: float) -> Callable[[float], float]:
    return lambda x: x**n


def _log1p(x: float) -> float:
    return math.log1p(x)


@dataclass(frozen=True, slots=True)
class ProbabilisticQueue:
    """Cancellations come from ahead of us with probability ``1 − prob(front, back)``.

    Build one with :meth:`power`, :meth:`log`, :meth:`power2`, :meth:`log2` or :meth:`power3`.
    """

    name: str
    prob: Callable[[float, float], float] = field(compare=False, repr=False)
    #: which of hftbacktest's functions ``prob`` is ("power", "log", "power2", "log2", "power3"),
    #: "" for a user-supplied ``prob``; with ``exponent`` it lets the compiled engine
    #: (:mod:`mmlab.sim.engine`) evaluate the same formula; the log forms have no exponent (0)
    form: str = ""
    exponent: float = 0.0

    @classmethod
    def power(cls, n: float) -> ProbabilisticQueue:
        """hftbacktest ``PowerProbQueueFunc``: ``p = f(back) / (f(back) + f(front))``, ``f = x**n``."""
        n = _check_exponent(n)
        f = _power(n)
        return cls(
            name=f"power:{n:g}", prob=lambda front, back: _ratio(f(back), f(back) + f(front)), form="power", exponent=n
        )

    @classmethod
    def log(cls) -> ProbabilisticQueue:
        """hftbacktest ``LogProbQueueFunc``: ``p = f(back) / (f(back) + f(front))``, ``f = log(1 + x)``."""
        return cls(
            name="log", prob=lambda front, back: _ratio(_log1p(back), _log1p(back) + _log1p(front)), form="log"
        )

    @classmethod
    def power2(cls, n: float) -> ProbabilisticQueue:
        """hftbacktest ``PowerProbQueueFunc2``: ``p = f(back) / f(back + front)``, ``f = x**n``."""
        n = _check_exponent(n)
        f = _power(n)
        return cls(
            name=f"power2:{n:g}", prob=lambda front, back: _ratio(f(back), f(back + front)), form="power2", exponent=n
        )

    @classmethod
    def log2(cls) -> ProbabilisticQueue:
        """hftbacktest ``LogProbQueueFunc2``: ``p = f(back) / f(back + front)``, ``f = log(1 + x)``."""
        return cls(name="log2", prob=lambda front, back: _ratio(_log1p(back), _log1p(back + front)), form="log2")

    @classmethod
    def power3(cls, n: float) -> ProbabilisticQueue:
        """hftbacktest ``PowerProbQueueFunc3``: ``p = 1 − f(front / (front + back))``, ``f = x**n``."""
        n = _check_exponent(n)
        f = _power(n)
        return cls(
            name=f"power3:{n:g}",
            prob=lambda front, back: 1.0 - f(_ratio(front, front + back)),
            form="power3",
            exponent=n,
        )

    def on_depth(self, front: float, prev_size: float, new_size: float, traded: float) -> float:
        # chg = prev − new − traded: the decrease that trades do not explain is a cancellation
        chg = prev_size - new_size - traded
        if chg <= 0.0 or front <= 0.0:
            return front if front <= new_size else new_size
        back = max(prev_size - front, 0.0)
        p = min(max(self.prob(front, back), 0.0), 1.0)
        # front ← front − (1 − p)·chg + min(back − p·chg, 0)   (hftbacktest ProbQueueModel::depth)
        estimate = front - (1.0 - p) * chg + min(back - p * chg, 0.0)
        return min(max(estimate, 0.0), new_size)


def _check_exponent(n: float) -> float:
    if isinstance(n, bool) or not isinstance(n, (int, float)) or not math.isfinite(n) or n <= 0:
        raise ValueError(f"ProbabilisticQueue: exponent n must be a positive finite number, got {n!r}")
    return float(n)


def _ratio(numerator: float, denominator: float) -> float:
    # 0/0 (an empty level) carries no information: split the cancellation evenly
    return numerator / denominator if denominator > 0.0 else 0.5


def queue_model_from_name(name: str) -> QueueModel:
    """``"risk_averse"``, ``"log"``, ``"log2"``, ``"power:N"``, ``"power2:N"`` or ``"power3:N"``.

    Raises
    ------
    ValueError
        If the name is not one of these.
    """
    kind, _, argument = name.partition(":")
    if name == "risk_averse":
        return RiskAverseQueue()
    if name == "log":
        return ProbabilisticQueue.log()
    if name == "log2":
        return ProbabilisticQueue.log2()
    factories = {"power": ProbabilisticQueue.power, "power2": ProbabilisticQueue.power2, "power3": ProbabilisticQueue.power3}
    if kind in factories and argument:
        try:
            n = float(argument)
        except ValueError:
            raise ValueError(f"queue model {name!r}: exponent {argument!r} is not a number") from None
        return factories[kind](n)
    raise ValueError(
        f"unknown queue model {name!r}; expected risk_averse, log, log2, power:N, power2:N or power3:N"
    )


# -- latency -------------------------------------------------------------------------------------


class LatencyModel(Protocol):
    """Gives each venue its own sampler of latencies in ns."""

    def sampler(self) -> Callable[[], int]: ...


@dataclass(frozen=True, slots=True)
class ConstantLatency:
    """Every message takes ``seconds``."""

    seconds: float

    def __post_init__(self) -> None:
        if isinstance(self.seconds, bool) or not isinstance(self.seconds, (int, float)):
            raise ValueError(f"ConstantLatency.seconds must be a number, got {self.seconds!r}")
        if not (math.isfinite(self.seconds) and self.seconds >= 0.0):
            raise ValueError(f"ConstantLatency.seconds must be finite and >= 0, got {self.seconds!r}")

    @property
    def ns(self) -> int:
        return round(self.seconds * NS_PER_S)

    def sampler(self) -> Callable[[], int]:
        ns = self.ns
        return lambda: ns

    def exchange_times_ns(self, ts_local: np.ndarray, ts_exch: np.ndarray) -> np.ndarray:
        """As a feed latency: every row happened ``seconds`` before we saw it, ``E_r = L_r − f``."""
        return np.asarray(ts_local, dtype=np.int64) - np.int64(self.ns)


@dataclass(frozen=True, slots=True)
class RecordedFeedLatency:
    """Feed latency read off the tape: ``f_r = base_s + (d_r − min d)``, ``d_r = ts_local_r − ts_exch_r``.

    See the module docstring for why the constant part ``base_s`` (the latency of the fastest row)
    is a parameter and why the exchange times are made non-decreasing.
    """

    base_s: float

    def __post_init__(self) -> None:
        if isinstance(self.base_s, bool) or not isinstance(self.base_s, (int, float)):
            raise ValueError(f"RecordedFeedLatency.base_s must be a number, got {self.base_s!r}")
        if not (math.isfinite(self.base_s) and self.base_s >= 0.0):
            raise ValueError(f"RecordedFeedLatency.base_s must be finite and >= 0, got {self.base_s!r}")

    @property
    def seconds(self) -> float:
        """The constant part of the latency, s (what a response latency defaults to)."""
        return float(self.base_s)

    def exchange_times_ns(self, ts_local: np.ndarray, ts_exch: np.ndarray) -> np.ndarray:
        """``E_r = max(L_r − f_r, E_{r−1})`` for every row, ns on the local clock."""
        ts_local = np.asarray(ts_local, dtype=np.int64)
        ts_exch = np.asarray(ts_exch, dtype=np.int64)
        if ts_local.shape != ts_exch.shape or ts_local.ndim != 1:
            raise ValueError("RecordedFeedLatency: ts_local and ts_exch must be 1-d arrays of one length")
        if ts_local.size == 0:
            return ts_local.copy()
        # d_r = L_r − X_r: the recorded delay plus the (unknown, constant) clock offset
        delay_ns = ts_local - ts_exch
        # f_r = base + (d_r − min d): the fastest row took base_s
        latency_ns = np.int64(round(self.base_s * NS_PER_S)) + (delay_ns - delay_ns.min())
        # E_r = max(L_r − f_r, E_{r−1}): the exchange sees the rows in tape order
        return np.maximum.accumulate(ts_local - latency_ns)


#: What a venue's feed latency may be: a constant, or recorded row by row.
FeedLatencyModel = ConstantLatency | RecordedFeedLatency


@dataclass(frozen=True, slots=True)
class EmpiricalLatency:
    """Latencies drawn uniformly, with replacement, from recorded ``samples_s`` (seconds)."""

    samples_s: tuple[float, ...]
    seed: int = 0

    def __post_init__(self) -> None:
        samples = np.asarray(self.samples_s, dtype=float)
        if samples.ndim != 1 or samples.size == 0:
            raise ValueError("EmpiricalLatency.samples_s must be a non-empty sequence of seconds")
        if not (np.isfinite(samples).all() and (samples >= 0.0).all()):
            raise ValueError("EmpiricalLatency.samples_s must be finite and >= 0")
        object.__setattr__(self, "samples_s", tuple(float(x) for x in samples))

    def sampler(self) -> Callable[[], int]:
        samples_ns = np.round(np.asarray(self.samples_s) * NS_PER_S).astype(np.int64)
        rng = np.random.default_rng(self.seed)
        count = len(samples_ns)
        return lambda: int(samples_ns[rng.integers(count)])


# -- fees ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Maker and taker fees in bps of notional (negative is a rebate)."""

    maker_bps: float
    taker_bps: float
    tier: str = ""


#: Hyperliquid perps, base rates by 14-day weighted volume: (taker_bps, maker_bps). Source in the
#: module docstring.
HYPERLIQUID_PERP_FEE_TIERS: dict[str, tuple[float, float]] = {
    "vip0": (4.5, 1.5),  # <= $5M
    "vip1": (4.0, 1.2),  # > $5M
    "vip2": (3.5, 0.8),  # > $25M
    "vip3": (3.0, 0.4),  # > $100M
    "vip4": (2.8, 0.0),  # > $500M
    "vip5": (2.6, 0.0),  # > $2B
    "vip6": (2.4, 0.0),  # > $7B
}
#: Hyperliquid maker rebate tiers by 14-day share of exchange maker volume: maker_bps.
HYPERLIQUID_MAKER_REBATE_BPS: dict[str, float] = {
    "mm1": -0.1,  # > 0.5%
    "mm2": -0.2,  # > 1.5%
    "mm3": -0.3,  # > 3.0%
}


def fee_schedule_for_tier(tier: str) -> FeeSchedule:
    """``"vip0"``..``"vip6"``, optionally ``"+mm1"``..``"+mm3"`` for a maker rebate tier.

    A bare ``"mm2"`` means volume tier 0 with rebate tier 2.

    Raises
    ------
    ValueError
        If a part of the name is not a known tier.
    """
    volume_tier, maker_tier = "vip0", ""
    for part in tier.split("+"):
        if part in HYPERLIQUID_PERP_FEE_TIERS:
            volume_tier = part
        elif part in HYPERLIQUID_MAKER_REBATE_BPS:
            maker_tier = part
        else:
            known = ", ".join([*HYPERLIQUID_PERP_FEE_TIERS, *HYPERLIQUID_MAKER_REBATE_BPS])
            raise ValueError(f"unknown Hyperliquid fee tier {part!r} in {tier!r}; known: {known}")
    taker_bps, maker_bps = HYPERLIQUID_PERP_FEE_TIERS[volume_tier]
    if maker_tier:
        maker_bps = HYPERLIQUID_MAKER_REBATE_BPS[maker_tier]
    return FeeSchedule(maker_bps=maker_bps, taker_bps=taker_bps, tier=tier)
