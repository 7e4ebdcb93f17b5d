"""A synthetic Hyperliquid perpetual with known ground truth, deterministic for a seed.

:func:`generate` turns a :class:`SynthConfig` into a :class:`SyntheticMarket`: a tape in the
format of :mod:`mmlab.data.tape` (book levels, trades, funding and asset contexts) plus the truth
that produced it: the latent fair value, the regime, drift, volatility and funding rate at every
grid step, and every market order with its Hawkes component, whether it was informed, and the
impact it had. Every random number comes from one ``np.random.default_rng(seed)``, so the whole
output is a function of the config (and its :attr:`~mmlab.config.ConfigBase.hash_id`).

Model
-----
Time runs on a grid ``t_k = t_0 + k·Δt`` (``Δt = step_s``, ``k = 0 … n−1``); market orders arrive
in continuous time between grid points. Volatilities and drifts are fractions of price (per √s,
per s); the config carries them in bps (``1 bps = 1e-4``).

1. **Regime** ``r_k ∈ {QUIET, TRENDING, CRISIS}``, a Markov chain started in QUIET. At each step
   the chain leaves ``r`` with probability ``1 − exp(−Δt / T_r)`` (``T_r`` the mean duration) and
   jumps to ``j`` with probability ``Q[r, j]`` (``regime_transition``, zero diagonal), so a stay
   lasts a geometric number of steps. Entering TRENDING draws a sign ``s = ±1`` (equal odds):

       μ_k = s · trend_drift_bps_per_s · 1e-4  in TRENDING,  0 otherwise
       σ_k = regime_vol_bps_per_sqrt_s[r_k] · 1e-4,   h_k = regime_half_spread_bps[r_k] · 1e-4

2. **Latent log fair value** ``x = ln V``. Between grid points only market orders move it (their
   permanent impact ``I``, item 6); at a grid point it diffuses with the regime's drift and vol:

       x_k = x_{k−1} + Σ I (orders in (t_{k−1}, t_k)) + μ_k Δt + σ_k √Δt ε_k,   ε_k ~ N(0, 1)

3. **Public price** ``p = ln P``, the centre of the displayed book, follows x with lag ``L``
   (``public_price_lag_s``) and takes the same impacts, so the mid lags V and a filter pays:

       p_k = p_{k−1} + Σ I + (1 − exp(−Δt / L)) · (x_k − p_{k−1} − Σ I)

4. **Book**, rebuilt at every grid point: ``K = book_levels`` levels per side at consecutive
   valid prices (Hyperliquid's grid, which gets finer below a power of ten):

       best bid b_0 = round_bid(P (1 − h_k)),  best ask a_0 = round_ask(P (1 + h_k)),  a_0 > b_0
       target_ℓ = depth_touch · (1 + ℓ)^γ · exp(n_ℓ) · tilt_ℓ,   ℓ = 0 … K−1 (0 the touch)
       z = clip((x − p) / h_k, −3, 3),  tilt_ℓ = exp(±imbalance_tilt · z) for ℓ < 3 (+ bids, − asks)

   so the imbalance of the first levels carries information about V − mid (Stoikov's
   micro-price). The noise ``n`` belongs to a price level (it keeps its identity when the touch
   moves) and is an AR(1) with stationary std ``depth_noise`` and correlation time
   ``depth_noise_reversion_s``:

       n ← ρ n + depth_noise · √(1 − ρ²) · η,  ρ = exp(−Δt / depth_noise_reversion_s);  new level: n = depth_noise · η

   Each level's size relaxes toward its target, ``S ← S + (target − S)(1 − exp(−Δt / refill_time_s))``;
   a level entering the window starts at its target, one leaving it is deleted. The displayed
   size (on the ``sz_decimals`` grid, at least one unit) is re-published only when ``|S − shown|
   > min_size_change_frac · shown``, or when a level appears or disappears.

5. **Market orders**: a bivariate Hawkes process (component 0 buys, 1 sells) with intensities

       λ_i(t) = μ_i + Σ_j Σ_{t_e < t, side j} α_ij · β · exp(−β (t − t_e))

   (``hawkes_baseline_per_s``, ``hawkes_branching``, ``hawkes_decay_per_s``), simulated exactly
   by Ogata thinning: the total intensity only decays between events, so its current value bounds
   it until the next candidate. An accepted candidate's component is i with probability
   ``λ_i / (λ_0 + λ_1)``. With probability π = ``informed_fraction`` the order is informed and
   trades toward the latent value, ``side = sign(x − ln mid)`` (the component's side on a tie;
   ``ln P`` stands in for ``ln mid`` while a sweep has emptied one side of the book);
   otherwise it takes its component's side. The realised side is what excites the process. The
   stationary rates are ``Λ = (I − A)^{-1} μ`` (the spectral radius of ``A`` must be below one).
   Size (coins): ``median · exp(log_std · ε)`` on the size grid, at least one unit.

6. An order walks the opposite side from the touch: one TRADE row per level it takes from, then
   the BOOK rows with the reduced sizes (0 when emptied), all at the order's time. An order larger
   than the displayed side takes all of it (``filled_size``). Then the permanent impact, with
   ``D`` the displayed size on the hit side (all levels) before the order:

       I = side · α · (size / D)^β,  α = impact_alpha_bps · 1e-4,  β = impact_beta;   x += I,  p += I

7. **Funding**: the rate per funding interval is an Ornstein–Uhlenbeck process on the grid,

       f_k = m + (f_{k−1} − m) φ + s √(1 − φ²) ε_k,  φ = exp(−Δt / funding_reversion_s),  f_0 = m + s ε_0

   An ASSET_CTX row every ``asset_ctx_interval_s`` from the start (price the mid, size the open
   interest, rate ``f``); open interest is ``open_interest_coins · exp(o)`` with ``o`` an OU of
   stationary std ``open_interest_log_std`` and correlation time ``open_interest_reversion_s``,
   sampled at those rows. A FUNDING row (price the mid, size 0, rate ``f``) at every whole
   multiple of ``funding_interval_s`` since the Unix epoch inside the run.

8. **Clocks**: ``ts_exch`` is the event's time in ns (grid points exactly ``k · step_s`` after
   ``start_ts_ns``); ``ts_local = ts_exch + feed_latency_s``. The tape opens with a BOOK_CLEAR
   row and the initial book (same timestamps) and is sorted by ``ts_local`` (stable).

Conventions of the truth tables
-------------------------------
``path`` row k describes grid time ``t_k`` after its update: ``log_fair_value`` is ``x_k``,
``regime``, ``drift_per_s`` and ``sigma_per_sqrt_s`` are the ones that produced the increment into
``x_k`` and the spread of the book published at ``t_k``, ``funding_rate`` is ``f_k``. The latent
value an order at time t saw is ``x_k`` (the last grid point before t) plus the ``impact_frac`` of
the earlier orders since ``t_k``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmlab.config import ConfigBase, ConfigError, InstrumentSpec, check_field
from mmlab.data.tape import EventKind, Tape, read_tape, write_tape
from mmlab.types import Regime
from mmlab.units import (
    MAX_SIG_FIGS,
    NS_PER_S,
    PERP_MAX_DECIMALS,
    bps_to_frac,
    round_ask,
    round_bid,
    s_to_ns,
)

__all__ = [
    "DEFAULT_START_TS_NS",
    "SynthConfig",
    "SyntheticMarket",
    "SynthError",
    "generate",
    "load_synthetic",
    "TAPE_FILE",
    "PATH_FILE",
    "ORDERS_FILE",
    "TRUTH_FILE",
]

#: 2026-01-01 00:30:00 UTC in ns: an hourly funding falls inside a one-hour run.
DEFAULT_START_TS_NS = 1_767_227_400_000_000_000

TAPE_FILE = "tape.parquet"
PATH_FILE = "truth_path.parquet"
ORDERS_FILE = "truth_orders.parquet"
TRUTH_FILE = "truth.json"

#: Columns (and dtypes) of :attr:`SyntheticMarket.path`.
PATH_COLUMNS: dict[str, str] = {
    "ts_exch": "int64",
    "log_fair_value": "float64",
    "log_public_price": "float64",
    "regime": "int8",
    "drift_per_s": "float64",
    "sigma_per_sqrt_s": "float64",
    "funding_rate": "float64",
}

#: Columns (and dtypes) of :attr:`SyntheticMarket.orders`.
ORDER_COLUMNS: dict[str, str] = {
    "ts_exch": "int64",
    "side": "int8",
    "hawkes_component": "int8",
    "informed": "bool",
    "size": "float64",
    "filled_size": "float64",
    "levels_walked": "int64",
    "depth_before": "float64",
    "impact_frac": "float64",
    "first_trade_id": "int64",
    "last_trade_id": "int64",
}

# Book levels whose target size the imbalance tilt multiplies (the touch and the next two).
_TILTED_LEVELS = 3
# |z| cap of the imbalance tilt, in half spreads.
_TILT_Z_CAP = 3.0
_REGIME_COUNT = len(Regime)


class SynthError(ValueError):
    """A synthetic-market directory is missing a file or a file is missing a field."""


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SynthConfig(ConfigBase):
    """Every parameter of the synthetic market (see the module docstring for the model).

    Tuples of three are per regime, in the order (QUIET, TRENDING, CRISIS); tuples of two are per
    Hawkes component (buy, sell). ``hawkes_branching[i][j]`` is α_ij, the expected number of
    component-i arrivals one j-side arrival triggers. Integers given for float fields are stored
    as floats, so equal configs have equal hash ids however they were typed.
    """

    seed: int = 7
    minutes: float = 60.0
    start_ts_ns: int = DEFAULT_START_TS_NS
    instrument: InstrumentSpec = field(default_factory=lambda: InstrumentSpec(coin="SYN", sz_decimals=2))
    initial_price_usd: float = 150.0
    step_s: float = 0.1
    # regimes (QUIET, TRENDING, CRISIS)
    regime_mean_duration_s: tuple[float, float, float] = (600.0, 180.0, 60.0)
    regime_vol_bps_per_sqrt_s: tuple[float, float, float] = (1.0, 1.5, 4.0)
    regime_half_spread_bps: tuple[float, float, float] = (0.8, 1.0, 2.5)
    trend_drift_bps_per_s: float = 0.3
    regime_transition: tuple[tuple[float, ...], ...] = (
        (0.0, 0.7, 0.3),
        (0.8, 0.0, 0.2),
        (0.6, 0.4, 0.0),
    )
    public_price_lag_s: float = 2.0
    # book
    book_levels: int = 20
    depth_touch_coins: float = 2.0
    depth_profile_exponent: float = 0.5
    imbalance_tilt: float = 0.5
    depth_noise: float = 0.3
    depth_noise_reversion_s: float = 10.0
    refill_time_s: float = 1.0
    min_size_change_frac: float = 0.1
    # market orders
    hawkes_baseline_per_s: tuple[float, float] = (0.4, 0.4)
    hawkes_branching: tuple[tuple[float, ...], ...] = ((0.35, 0.15), (0.15, 0.35))
    hawkes_decay_per_s: float = 2.0
    informed_fraction: float = 0.2
    order_size_median_coins: float = 0.3
    order_size_log_std: float = 1.0
    impact_alpha_bps: float = 2.0
    impact_beta: float = 0.5
    feed_latency_s: float = 0.05
    # funding and asset context
    funding_interval_s: float = 3600.0
    funding_mean_per_interval: float = 1.25e-5
    funding_std_per_interval: float = 2e-5
    funding_reversion_s: float = 14400.0
    asset_ctx_interval_s: float = 60.0
    open_interest_coins: float = 50000.0
    open_interest_log_std: float = 0.02
    open_interest_reversion_s: float = 3600.0

    def __post_init__(self) -> None:
        owner = "SynthConfig"
        self._normalize_numbers()
        for name in ("seed", "start_ts_ns", "book_levels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{owner}.{name} must be an integer, got {value!r}")
        if self.seed < 0:
            raise ConfigError(f"{owner}.seed must be >= 0, got {self.seed}")
        if self.start_ts_ns < 0:
            raise ConfigError(f"{owner}.start_ts_ns must be >= 0, got {self.start_ts_ns}")
        if not 1 <= self.book_levels <= 500:
            raise ConfigError(f"{owner}.book_levels must be in [1, 500], got {self.book_levels}")
        if not isinstance(self.instrument, InstrumentSpec):
            raise ConfigError(f"{owner}.instrument must be an InstrumentSpec, got {self.instrument!r}")

        check_field(owner, "minutes", self.minutes, gt=0.0)
        check_field(owner, "step_s", self.step_s, gt=0.0)
        if s_to_ns(self.step_s) < 1:
            raise ConfigError(f"{owner}.step_s must be at least 1 ns, got {self.step_s!r}")
        if round(self.minutes * 60.0 / self.step_s) < 1:
            raise ConfigError(f"{owner}.minutes must cover at least one step of {self.step_s} s, got {self.minutes!r}")
        check_field(owner, "initial_price_usd", self.initial_price_usd, gt=0.0)

        self._check_vector("regime_mean_duration_s", self.regime_mean_duration_s, _REGIME_COUNT, gt=0.0)
        self._check_vector("regime_vol_bps_per_sqrt_s", self.regime_vol_bps_per_sqrt_s, _REGIME_COUNT, ge=0.0)
        self._check_vector("regime_half_spread_bps", self.regime_half_spread_bps, _REGIME_COUNT, gt=0.0)
        check_field(owner, "trend_drift_bps_per_s", self.trend_drift_bps_per_s, ge=0.0)
        self._check_matrix("regime_transition", self.regime_transition, _REGIME_COUNT, ge=0.0, le=1.0)
        for row_index, row in enumerate(self.regime_transition):
            if row[row_index] != 0.0:
                raise ConfigError(
                    f"{owner}.regime_transition[{row_index}][{row_index}] must be 0 (a jump leaves the regime), got {row[row_index]!r}"
                )
            if abs(math.fsum(row) - 1.0) > 1e-9:
                raise ConfigError(f"{owner}.regime_transition row {row_index} must sum to 1, got {math.fsum(row)!r}")
        check_field(owner, "public_price_lag_s", self.public_price_lag_s, gt=0.0)

        check_field(owner, "depth_touch_coins", self.depth_touch_coins, gt=0.0)
        check_field(owner, "depth_profile_exponent", self.depth_profile_exponent, ge=-5.0, le=5.0)
        check_field(owner, "imbalance_tilt", self.imbalance_tilt, ge=0.0)
        check_field(owner, "depth_noise", self.depth_noise, ge=0.0)
        check_field(owner, "depth_noise_reversion_s", self.depth_noise_reversion_s, gt=0.0)
        check_field(owner, "refill_time_s", self.refill_time_s, gt=0.0)
        check_field(owner, "min_size_change_frac", self.min_size_change_frac, ge=0.0)

        self._check_vector("hawkes_baseline_per_s", self.hawkes_baseline_per_s, 2, ge=0.0)
        if sum(self.hawkes_baseline_per_s) <= 0.0:
            raise ConfigError(f"{owner}.hawkes_baseline_per_s must have a positive entry, got {self.hawkes_baseline_per_s!r}")
        self._check_matrix("hawkes_branching", self.hawkes_branching, 2, ge=0.0)
        spectral_radius = float(np.max(np.abs(np.linalg.eigvals(np.array(self.hawkes_branching)))))
        if spectral_radius >= 1.0:
            raise ConfigError(
                f"{owner}.hawkes_branching must have spectral radius < 1 (a stationary Hawkes process), got {spectral_radius:.4g}"
            )
        check_field(owner, "hawkes_decay_per_s", self.hawkes_decay_per_s, gt=0.0)
        check_field(owner, "informed_fraction", self.informed_fraction, ge=0.0, le=1.0)
        check_field(owner, "order_size_median_coins", self.order_size_median_coins, gt=0.0)
        check_field(owner, "order_size_log_std", self.order_size_log_std, ge=0.0)
        check_field(owner, "impact_alpha_bps", self.impact_alpha_bps, ge=0.0)
        check_field(owner, "impact_beta", self.impact_beta, gt=0.0)
        check_field(owner, "feed_latency_s", self.feed_latency_s, ge=0.0)

        check_field(owner, "funding_interval_s", self.funding_interval_s, gt=0.0)
        check_field(owner, "funding_mean_per_interval", self.funding_mean_per_interval, gt=-1.0, lt=1.0)
        check_field(owner, "funding_std_per_interval", self.funding_std_per_interval, ge=0.0, lt=1.0)
        check_field(owner, "funding_reversion_s", self.funding_reversion_s, gt=0.0)
        check_field(owner, "asset_ctx_interval_s", self.asset_ctx_interval_s, gt=0.0)
        check_field(owner, "open_interest_coins", self.open_interest_coins, gt=0.0)
        check_field(owner, "open_interest_log_std", self.open_interest_log_std, ge=0.0)
        check_field(owner, "open_interest_reversion_s", self.open_interest_reversion_s, gt=0.0)

    def _normalize_numbers(self) -> None:
        """Store ints given for float fields as floats and lists as tuples (a JSON round trip
        gives lists), so the config is immutable and its hash does not depend on how it was typed."""

        def as_float(value: Any) -> Any:
            return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

        def as_tuple(value: Any) -> Any:
            if isinstance(value, (list, tuple)):
                return tuple(as_tuple(item) for item in value)
            return as_float(value)

        for name in _FLOAT_FIELDS:
            object.__setattr__(self, name, as_float(getattr(self, name)))
        for name in _TUPLE_FIELDS:
            object.__setattr__(self, name, as_tuple(getattr(self, name)))

    @staticmethod
    def _check_vector(name: str, value: Any, length: int, **bounds: float) -> None:
        if not isinstance(value, tuple) or len(value) != length:
            raise ConfigError(f"SynthConfig.{name} must be a sequence of {length} numbers, got {value!r}")
        for index, item in enumerate(value):
            check_field("SynthConfig", f"{name}[{index}]", item, **bounds)

    @staticmethod
    def _check_matrix(name: str, value: Any, size: int, **bounds: float) -> None:
        if not isinstance(value, tuple) or len(value) != size:
            raise ConfigError(f"SynthConfig.{name} must be a {size}x{size} matrix, got {value!r}")
        for row_index, row in enumerate(value):
            if not isinstance(row, tuple) or len(row) != size:
                raise ConfigError(f"SynthConfig.{name} must be a {size}x{size} matrix, got row {row_index} = {row!r}")
            for column_index, item in enumerate(row):
                check_field("SynthConfig", f"{name}[{row_index}][{column_index}]", item, **bounds)

    @property
    def duration_s(self) -> float:
        """Length of the run on the grid: ``n_steps · step_s``."""
        return self.n_steps * self.step_s

    @property
    def n_steps(self) -> int:
        """Number of grid points ``t_0 … t_{n−1}``."""
        return int(round(self.minutes * 60.0 / self.step_s))

    def stationary_order_rate_per_s(self) -> np.ndarray:
        """Stationary Hawkes intensities ``Λ = (I − A)^{-1} μ`` (buy, sell), per second.

        The informed orders' side switching preserves the total exactly when the columns of A
        have equal sums (true of the defaults); the split between sides is then still Λ.
        """
        branching = np.array(self.hawkes_branching)
        return np.linalg.solve(np.eye(2) - branching, np.array(self.hawkes_baseline_per_s))


_FLOAT_FIELDS = tuple(f.name for f in dataclasses.fields(SynthConfig) if f.type == "float")
_TUPLE_FIELDS = tuple(f.name for f in dataclasses.fields(SynthConfig) if str(f.type).startswith("tuple"))


# --------------------------------------------------------------------------------------------
# The price grid in integer units
# --------------------------------------------------------------------------------------------


class _PriceGrid:
    """Hyperliquid perp prices as integers of the finest unit ``10^-(6 − szDecimals)`` USD.

    Integers make a level's identity exact across decades (below a power of ten the tick is ten
    times finer); :func:`units_to_price` gives the double nearest the decimal price, the same float
    :func:`mmlab.units.round_bid` returns for it.
    """

    def __init__(self, sz_decimals: int) -> None:
        self.max_decimals = PERP_MAX_DECIMALS - sz_decimals
        self.units_per_usd = 10**self.max_decimals
        self._ladders: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}

    def tick_units(self, units: int) -> int:
        """Tick (in units) of prices in the decade of ``units``: see :func:`mmlab.units.price_decimals`."""
        magnitude = len(str(units)) - 1 - self.max_decimals
        decimals = max(0, min(MAX_SIG_FIGS - 1 - magnitude, self.max_decimals))
        return 10 ** (self.max_decimals - decimals)

    def to_units(self, price: float) -> int:
        return int(round(price * self.units_per_usd))

    def units_to_price(self, units: np.ndarray | int) -> np.ndarray | float:
        # an exact integer over an exact power of ten: IEEE division gives the nearest double
        return units / self.units_per_usd

    def above(self, units: int) -> int:
        """Smallest valid price strictly above ``units``."""
        return units + self.tick_units(units)

    def below(self, units: int) -> int:
        """Largest valid price strictly below ``units`` (0 when there is none)."""
        if units <= 1:
            return 0
        # the tick just below a power of ten is finer than at it
        return units - self.tick_units(units - 1)

    def ladder(self, touch_units: int, side: int, levels: int) -> tuple[np.ndarray, np.ndarray]:
        """``levels`` consecutive valid prices from the touch away from the spread.

        Returns ``(keys, prices)``: keys are ``−units`` for bids and ``+units`` for asks, so both
        sides sort ascending best first; prices are USD floats. Bid ladders stop above zero.
        Results are cached and read-only.
        """
        cache_key = (touch_units, side, levels)
        cached = self._ladders.get(cache_key)
        if cached is not None:
            return cached
        units = [touch_units]
        step = self.below if side > 0 else self.above
        while len(units) < levels:
            next_units = step(units[-1])
            if next_units <= 0:
                break
            units.append(next_units)
        units_array = np.array(units, dtype=np.int64)
        keys = -units_array if side > 0 else units_array
        prices = self.units_to_price(units_array)
        keys.setflags(write=False)
        prices.setflags(write=False)
        self._ladders[cache_key] = (keys, prices)
        return keys, prices


# --------------------------------------------------------------------------------------------
# Tape rows, collected in chunks that share a timestamp, kind and side
# --------------------------------------------------------------------------------------------


class _TapeRecorder:
    """Rows in generation order; a chunk is rows sharing ts, kind, side, rate (and trade ids)."""

    def __init__(self) -> None:
        self.ts_exch: list[int] = []
        self.kind: list[int] = []
        self.side: list[int] = []
        self.rate: list[float] = []
        self.first_trade_id: list[int] = []
        self.prices: list[np.ndarray] = []
        self.sizes: list[np.ndarray] = []

    def add(
        self,
        ts_exch: int,
        kind: EventKind,
        side: int,
        prices: np.ndarray,
        sizes: np.ndarray,
        *,
        rate: float = math.nan,
        first_trade_id: int = 0,
    ) -> None:
        if prices.size == 0:
            return
        self.ts_exch.append(ts_exch)
        self.kind.append(int(kind))
        self.side.append(side)
        self.rate.append(rate)
        self.first_trade_id.append(first_trade_id)
        self.prices.append(prices)
        self.sizes.append(sizes)

    def columns(self, feed_latency_ns: int) -> dict[str, np.ndarray]:
        """The tape's columns, stably sorted by ``ts_local``."""
        counts = np.array([p.size for p in self.prices], dtype=np.int64)
        total = int(counts.sum())
        first_row = np.cumsum(counts) - counts
        ts_exch = np.repeat(np.array(self.ts_exch, dtype=np.int64), counts)
        first_trade_id = np.repeat(np.array(self.first_trade_id, dtype=np.int64), counts)
        index_in_chunk = np.arange(total, dtype=np.int64) - np.repeat(first_row, counts)
        # trade ids run consecutively inside a trade chunk; other rows carry 0
        trade_id = np.where(first_trade_id > 0, first_trade_id + index_in_chunk, 0)
        columns = {
            "ts_exch": ts_exch,
            "ts_local": ts_exch + feed_latency_ns,
            "kind": np.repeat(np.array(self.kind, dtype=np.uint8), counts),
            "side": np.repeat(np.array(self.side, dtype=np.int8), counts),
            "price": np.concatenate(self.prices).astype(np.float64),
            "size": np.concatenate(self.sizes).astype(np.float64),
            "rate": np.repeat(np.array(self.rate, dtype=np.float64), counts),
            "trade_id": trade_id,
        }
        order = np.argsort(columns["ts_local"], kind="stable")
        return {name: column[order] for name, column in columns.items()}


# --------------------------------------------------------------------------------------------
# Latent processes that do not depend on the order flow (drawn up front)
# --------------------------------------------------------------------------------------------


def _simulate_regimes(config: SynthConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Regime and drift (fraction per s) at every grid point; the chain starts in QUIET."""
    n_steps = config.n_steps
    regimes = np.empty(n_steps, dtype=np.int8)
    drifts = np.zeros(n_steps, dtype=np.float64)
    transition = np.array(config.regime_transition)
    # per-step probability of leaving regime r: 1 − exp(−Δt / T_r)
    leave_probability = -np.expm1(-config.step_s / np.array(config.regime_mean_duration_s))
    trend_drift_per_s = bps_to_frac(config.trend_drift_bps_per_s)
    regime, drift, start = int(Regime.QUIET), 0.0, 0
    while start < n_steps:
        # a stay lasts a geometric number of steps; the jump happens at step start + stay
        stay_steps = int(rng.geometric(leave_probability[regime]))
        end = min(start + stay_steps, n_steps)
        regimes[start:end] = regime
        drifts[start:end] = drift
        start = end
        regime = int(rng.choice(_REGIME_COUNT, p=transition[regime]))
        # entering TRENDING draws the drift's sign with equal odds
        drift = trend_drift_per_s * (1.0 if rng.random() < 0.5 else -1.0) if regime == Regime.TRENDING else 0.0
    return regimes, drifts


def _ornstein_uhlenbeck(
    mean: float, stationary_std: float, reversion_s: float, times_s: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """An exact OU sample at ``times_s`` started from its stationary law."""
    shocks = rng.standard_normal(times_s.size)
    values = np.empty(times_s.size, dtype=np.float64)
    if times_s.size == 0:
        return values
    level = stationary_std * shocks[0]
    values[0] = level
    decays = np.exp(-np.diff(times_s) / reversion_s)
    for index in range(1, times_s.size):
        decay = decays[index - 1]
        # y_k = φ y_{k−1} + s √(1 − φ²) ε_k
        level = decay * level + stationary_std * math.sqrt(1.0 - decay * decay) * shocks[index]
        values[index] = level
    return mean + values


# --------------------------------------------------------------------------------------------
# The simulator
# --------------------------------------------------------------------------------------------


class _BookSide:
    """One side's window of levels, best first: keys, prices, noise, latent and shown sizes."""

    __slots__ = ("sign", "keys", "prices", "noise", "internal", "displayed")

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.keys = np.empty(0, dtype=np.int64)
        self.prices = np.empty(0, dtype=np.float64)
        self.noise = np.empty(0, dtype=np.float64)
        self.internal = np.empty(0, dtype=np.float64)  # latent size, coins
        self.displayed = np.empty(0, dtype=np.int64)  # published size, size units (0 = not shown)

    def best_price(self) -> float:
        live = np.flatnonzero(self.displayed)
        return float(self.prices[live[0]]) if live.size else math.nan


class _Simulator:
    """Runs the model of the module docstring; see :func:`generate`."""

    def __init__(self, config: SynthConfig) -> None:
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self.grid = _PriceGrid(config.instrument.sz_decimals)
        self.size_units_per_coin = 10**config.instrument.sz_decimals
        self.recorder = _TapeRecorder()
        self.bids = _BookSide(+1)
        self.asks = _BookSide(-1)

        self.step_s = config.step_s
        self.step_ns = s_to_ns(config.step_s)
        self.n_steps = config.n_steps
        self.start_ns = config.start_ts_ns
        self.end_ns = self.start_ns + self.n_steps * self.step_ns

        levels = np.arange(config.book_levels, dtype=np.float64)
        # depth_touch · (1 + ℓ)^γ before noise and tilt
        self.depth_profile = config.depth_touch_coins * (1.0 + levels) ** config.depth_profile_exponent
        self.noise_persistence = math.exp(-self.step_s / config.depth_noise_reversion_s)
        self.noise_innovation_std = config.depth_noise * math.sqrt(1.0 - self.noise_persistence**2)
        self.refill_frac = -math.expm1(-self.step_s / config.refill_time_s)
        self.public_catch_up_frac = -math.expm1(-self.step_s / config.public_price_lag_s)
        self.half_spread_frac = np.array([bps_to_frac(h) for h in config.regime_half_spread_bps])
        self.sigma_per_sqrt_s = np.array([bps_to_frac(v) for v in config.regime_vol_bps_per_sqrt_s])
        self.impact_alpha = bps_to_frac(config.impact_alpha_bps)

        self.hawkes_baseline = tuple(float(m) for m in config.hawkes_baseline_per_s)
        self.hawkes_decay = config.hawkes_decay_per_s
        # jump of λ_i when a j-side order arrives: α_ij · β; column j by realised side
        branching = config.hawkes_branching
        self.excitation_jump = {
            +1: (branching[0][0] * self.hawkes_decay, branching[1][0] * self.hawkes_decay),
            -1: (branching[0][1] * self.hawkes_decay, branching[1][1] * self.hawkes_decay),
        }
        self.excitation = [0.0, 0.0]

        self.log_fair_value = math.log(config.initial_price_usd)
        self.log_public_price = self.log_fair_value
        self.next_trade_id = 1
        self.order_rows: list[tuple] = []

    # -- drivers ---------------------------------------------------------------------------

    def run(self) -> tuple[Tape, pd.DataFrame, pd.DataFrame]:
        config, rng = self.config, self.rng
        n_steps = self.n_steps
        regimes, drifts = _simulate_regimes(config, rng)
        sigmas = self.sigma_per_sqrt_s[regimes]
        # μ_k Δt + σ_k √Δt ε_k: the diffusion part of x_k − x_{k−1}; none before t_0
        diffusion = drifts * self.step_s + sigmas * math.sqrt(self.step_s) * rng.standard_normal(n_steps)
        diffusion[0] = 0.0
        grid_times_s = np.arange(n_steps, dtype=np.float64) * self.step_s
        funding_rates = _ornstein_uhlenbeck(
            config.funding_mean_per_interval,
            config.funding_std_per_interval,
            config.funding_reversion_s,
            grid_times_s,
            rng,
        )
        self.scheduled = self._schedule(rng)
        self.next_scheduled = 0
        self.funding_rates = funding_rates

        log_fair_values = np.empty(n_steps)
        log_public_prices = np.empty(n_steps)
        self.recorder.add(self.start_ns, EventKind.BOOK_CLEAR, 0, np.array([math.nan]), np.array([0.0]))
        for step in range(n_steps):
            self.step = step
            ts_ns = self.start_ns + step * self.step_ns
            # x_k = x_{k−1} + Σ I + μ_k Δt + σ_k √Δt ε_k  (the impacts are already in x)
            self.log_fair_value += diffusion[step]
            if step > 0:
                # p_k = p + (1 − exp(−Δt / L)) (x_k − p)
                self.log_public_price += self.public_catch_up_frac * (self.log_fair_value - self.log_public_price)
            self._publish_book(ts_ns, int(regimes[step]))
            log_fair_values[step] = self.log_fair_value
            log_public_prices[step] = self.log_public_price
            self._flush_scheduled(ts_ns, inclusive=True)
            self._run_interval(step)
            self._flush_scheduled(ts_ns + self.step_ns, inclusive=False)

        tape = self._tape()
        path = _frame(
            {
                "ts_exch": self.start_ns + np.arange(n_steps, dtype=np.int64) * self.step_ns,
                "log_fair_value": log_fair_values,
                "log_public_price": log_public_prices,
                "regime": regimes,
                "drift_per_s": drifts,
                "sigma_per_sqrt_s": sigmas,
                "funding_rate": funding_rates,
            },
            PATH_COLUMNS,
        )
        orders = _frame(
            {name: [row[i] for row in self.order_rows] for i, name in enumerate(ORDER_COLUMNS)},
            ORDER_COLUMNS,
        )
        return tape, path, orders

    def _schedule(self, rng: np.random.Generator) -> list[tuple[int, EventKind, float]]:
        """Asset-context and funding times inside ``[start, end)`` with open interest, by time."""
        config = self.config
        ctx_ns = s_to_ns(config.asset_ctx_interval_s)
        ctx_times_ns = np.arange(self.start_ns, self.end_ns, ctx_ns, dtype=np.int64)
        log_open_interest = _ornstein_uhlenbeck(
            0.0,
            config.open_interest_log_std,
            config.open_interest_reversion_s,
            (ctx_times_ns - self.start_ns) / NS_PER_S,
            rng,
        )
        # open interest = open_interest_coins · exp(o), on the size grid like any coin amount
        scale = self.size_units_per_coin
        open_interest = np.rint(config.open_interest_coins * np.exp(log_open_interest) * scale) / scale
        events = [(int(t), EventKind.ASSET_CTX, float(oi)) for t, oi in zip(ctx_times_ns, open_interest)]
        funding_ns = s_to_ns(config.funding_interval_s)
        # whole multiples of the funding interval since the epoch: the first at or after the start
        funding_time_ns = -(-self.start_ns // funding_ns) * funding_ns
        while funding_time_ns < self.end_ns:
            events.append((funding_time_ns, EventKind.FUNDING, 0.0))
            funding_time_ns += funding_ns
        events.sort(key=lambda event: event[0])  # stable: a context row before a funding row
        return events

    def _flush_scheduled(self, until_ns: int, *, inclusive: bool) -> None:
        """Emit the scheduled rows at or before (``inclusive``) or before ``until_ns``."""
        scheduled = self.scheduled
        while self.next_scheduled < len(scheduled):
            ts_ns, kind, open_interest = scheduled[self.next_scheduled]
            if ts_ns > until_ns or (ts_ns == until_ns and not inclusive):
                return
            self.next_scheduled += 1
            mid = self._mid_usd()
            rate = float(self.funding_rates[self.step])
            self.recorder.add(ts_ns, kind, 0, np.array([mid]), np.array([open_interest]), rate=rate)

    def _mid_usd(self) -> float:
        """Mid of the displayed book, or the public price when a side is empty."""
        best_bid, best_ask = self.bids.best_price(), self.asks.best_price()
        if math.isnan(best_bid) or math.isnan(best_ask):
            return math.exp(self.log_public_price)
        return 0.5 * (best_bid + best_ask)

    # -- the book at a grid point ----------------------------------------------------------

    def _publish_book(self, ts_ns: int, regime: int) -> None:
        grid = self.grid
        sz_decimals = self.config.instrument.sz_decimals
        half_spread = float(self.half_spread_frac[regime])
        public_price = math.exp(self.log_public_price)
        # b_0 = round_bid(P (1 − h)), a_0 = round_ask(P (1 + h)), a_0 ≥ b_0 + one tick
        bid_touch = grid.to_units(round_bid(public_price * (1.0 - half_spread), sz_decimals))
        ask_touch = grid.to_units(round_ask(public_price * (1.0 + half_spread), sz_decimals))
        if ask_touch <= bid_touch:
            ask_touch = grid.above(bid_touch)
        # z = clip((x − p) / h, −3, 3): how far the public price lags V, in half spreads
        lag_z = min(max((self.log_fair_value - self.log_public_price) / half_spread, -_TILT_Z_CAP), _TILT_Z_CAP)
        # touch-side tilt exp(±imbalance_tilt · z): bids grow when V is above the mid
        bid_tilt = math.exp(self.config.imbalance_tilt * lag_z)
        levels = self.config.book_levels
        # the asks are rebuilt first: a level that moves from one side to the other (the price
        # jumped) leaves the ask side before it joins the bid side in the same update
        self._refresh_side(self.asks, *grid.ladder(ask_touch, -1, levels), 1.0 / bid_tilt, ts_ns)
        self._refresh_side(self.bids, *grid.ladder(bid_touch, +1, levels), bid_tilt, ts_ns)

    def _refresh_side(self, book_side: _BookSide, keys: np.ndarray, prices: np.ndarray, tilt: float, ts_ns: int) -> None:
        count = keys.size
        old_count = book_side.keys.size
        shocks = self.rng.standard_normal(count)
        # which new levels were in the old window, and where
        if old_count == 0:
            carried = np.zeros(count, dtype=bool)
            source = np.empty(0, dtype=np.int64)
        elif keys is book_side.keys:
            carried = np.ones(count, dtype=bool)
            source = np.arange(count)
        else:
            positions = np.searchsorted(book_side.keys, keys)
            clipped = np.minimum(positions, old_count - 1)
            carried = (positions < old_count) & (book_side.keys[clipped] == keys)
            source = clipped[carried]

        # new level: n = depth_noise · η; kept level: n ← ρ n + depth_noise √(1 − ρ²) η
        noise = self.config.depth_noise * shocks
        noise[carried] = self.noise_persistence * book_side.noise[source] + self.noise_innovation_std * shocks[carried]
        # target_ℓ = depth_touch (1 + ℓ)^γ exp(n_ℓ) · tilt (first levels only)
        target = self.depth_profile[:count] * np.exp(noise)
        target[:_TILTED_LEVELS] *= tilt

        scale = self.size_units_per_coin
        internal = target.copy()
        displayed = np.maximum(1, np.rint(target * scale)).astype(np.int64)
        emit = ~carried
        if source.size:
            old_internal = book_side.internal[source]
            old_displayed = book_side.displayed[source]
            # S ← S + (target − S)(1 − exp(−Δt / refill_time))
            kept_internal = old_internal + (target[carried] - old_internal) * self.refill_frac
            internal[carried] = kept_internal
            candidate = np.rint(kept_internal * scale).astype(np.int64)
            # republish when |S − shown| > min_size_change_frac · shown; an emptied level reappears
            # as soon as its latent size reaches one unit
            moved = np.abs(kept_internal * scale - old_displayed) > self.config.min_size_change_frac * old_displayed
            changed = np.where(old_displayed > 0, moved & (candidate != old_displayed), candidate >= 1)
            new_displayed = np.where(changed, np.maximum(candidate, 1), old_displayed)
            displayed[carried] = new_displayed
            emit[carried] = changed

        if old_count:
            kept_old = np.zeros(old_count, dtype=bool)
            kept_old[source] = True
            deleted = ~kept_old & (book_side.displayed > 0)
            if deleted.any():
                self.recorder.add(
                    ts_ns, EventKind.BOOK, book_side.sign, book_side.prices[deleted], np.zeros(int(deleted.sum()))
                )
        if emit.any():
            self.recorder.add(ts_ns, EventKind.BOOK, book_side.sign, prices[emit], displayed[emit] / scale)

        book_side.keys, book_side.prices = keys, prices
        book_side.noise, book_side.internal, book_side.displayed = noise, internal, displayed

    # -- market orders between grid points -------------------------------------------------

    def _run_interval(self, step: int) -> None:
        """Ogata thinning of the bivariate Hawkes process over ``(t_k, t_k + Δt)``."""
        rng = self.rng
        baseline_buy, baseline_sell = self.hawkes_baseline
        decay = self.hawkes_decay
        excitation = self.excitation
        elapsed_s = 0.0  # since t_k
        while True:
            # the intensity only decays until the next event: its current value bounds it
            bound = baseline_buy + excitation[0] + baseline_sell + excitation[1]
            wait_s = rng.exponential(1.0 / bound)
            if elapsed_s + wait_s >= self.step_s:
                relax = math.exp(-decay * (self.step_s - elapsed_s))
                excitation[0] *= relax
                excitation[1] *= relax
                return
            elapsed_s += wait_s
            relax = math.exp(-decay * wait_s)
            excitation[0] *= relax
            excitation[1] *= relax
            buy_intensity = baseline_buy + excitation[0]
            total_intensity = buy_intensity + baseline_sell + excitation[1]
            # accept with probability λ(t) / bound
            if rng.random() * bound > total_intensity:
                continue
            # the component is i with probability λ_i / λ
            component_side = 1 if rng.random() * total_intensity < buy_intensity else -1
            offset_ns = min(max(int(round(elapsed_s * NS_PER_S)), 1), self.step_ns - 1)
            ts_ns = self.start_ns + step * self.step_ns + offset_ns
            self._flush_scheduled(ts_ns, inclusive=False)
            side = self._market_order(ts_ns, component_side)
            # the realised side excites: λ_i += α_{i, side} β
            jump_buy, jump_sell = self.excitation_jump[side]
            excitation[0] += jump_buy
            excitation[1] += jump_sell

    def _market_order(self, ts_ns: int, component_side: int) -> int:
        """Walk the book with one market order, record it, apply its impact; return its side."""
        config, rng = self.config, self.rng
        informed = bool(rng.random() < config.informed_fraction)
        side = component_side
        if informed:
            best_bid, best_ask = self.bids.best_price(), self.asks.best_price()
            if not (math.isnan(best_bid) or math.isnan(best_ask)):
                # side = sign(x − ln mid), the component's side on a tie
                gap = self.log_fair_value - math.log(0.5 * (best_bid + best_ask))
                side = 1 if gap > 0.0 else -1 if gap < 0.0 else component_side
            else:
                gap = self.log_fair_value - self.log_public_price
                side = 1 if gap > 0.0 else -1 if gap < 0.0 else component_side
        scale = self.size_units_per_coin
        # size = median · exp(log_std · ε), on the size grid, at least one unit
        size_coins = config.order_size_median_coins * math.exp(config.order_size_log_std * rng.standard_normal())
        size_units = max(1, int(round(size_coins * scale)))

        hit = self.asks if side > 0 else self.bids
        displayed = hit.displayed
        depth_units = int(displayed.sum())
        # take each level in turn: what is left of the order after the levels in front of it
        ahead_units = np.cumsum(displayed) - displayed
        taken = np.clip(size_units - ahead_units, 0, displayed)
        touched = np.flatnonzero(taken)
        filled_units = int(taken[touched].sum())
        first_trade_id = last_trade_id = 0
        if touched.size:
            first_trade_id = self.next_trade_id
            last_trade_id = first_trade_id + touched.size - 1
            self.next_trade_id = last_trade_id + 1
            remaining = displayed - taken
            hit.displayed = remaining
            hit.internal[touched] = remaining[touched] / scale
            self.recorder.add(
                ts_ns, EventKind.TRADE, side, hit.prices[touched], taken[touched] / scale, first_trade_id=first_trade_id
            )
            self.recorder.add(ts_ns, EventKind.BOOK, hit.sign, hit.prices[touched], remaining[touched] / scale)

        size = size_units / scale
        depth_before = depth_units / scale
        # I = side · α · (size / D)^β, permanent, on both V and the public price
        impact = side * self.impact_alpha * (size / depth_before) ** config.impact_beta if depth_units > 0 else 0.0
        self.log_fair_value += impact
        self.log_public_price += impact
        self.order_rows.append(
            (
                ts_ns,
                side,
                component_side,
                informed,
                size,
                filled_units / scale,
                int(touched.size),
                depth_before,
                impact,
                first_trade_id,
                last_trade_id,
            )
        )
        return side

    def _tape(self) -> Tape:
        config = self.config
        columns = self.recorder.columns(s_to_ns(config.feed_latency_s))
        return Tape.from_columns(
            columns,
            instrument=config.instrument,
            venue="synthetic",
            source=f"mmlab.data.synth seed={config.seed} config={config.hash_id}",
            funding_interval_s=config.funding_interval_s,
            extra={"config_hash": config.hash_id},
        )


def _frame(columns: dict[str, Any], schema: dict[str, str]) -> pd.DataFrame:
    """A DataFrame with exactly ``schema``'s columns, in order, with its dtypes."""
    return pd.DataFrame({name: np.asarray(columns[name], dtype=dtype) for name, dtype in schema.items()})


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class SyntheticMarket:
    """A generated market: the tape a strategy sees and the truth behind it.

    Attributes
    ----------
    config : SynthConfig
        What generated it.
    tape : Tape
        Book, trade, funding and asset-context rows (read-only arrays).
    path : pandas.DataFrame
        One row per grid step: ``ts_exch`` (ns), ``log_fair_value`` (ln USD), ``log_public_price``
        (ln USD), ``regime`` (:class:`~mmlab.types.Regime` value), ``drift_per_s``,
        ``sigma_per_sqrt_s`` (fractions), ``funding_rate`` (per funding interval).
    orders : pandas.DataFrame
        One row per market order: ``ts_exch``, ``side`` (+1 buy, −1 sell, realised),
        ``hawkes_component`` (+1 / −1, the component that generated the arrival), ``informed``,
        ``size`` and ``filled_size`` (coins), ``levels_walked``, ``depth_before`` (coins displayed
        on the hit side), ``impact_frac`` (Δ ln V), ``first_trade_id`` and ``last_trade_id`` (0
        when nothing filled).

    The frames are the truth: treat them as read-only.
    """

    config: SynthConfig
    tape: Tape
    path: pd.DataFrame
    orders: pd.DataFrame

    def truth(self) -> dict[str, Any]:
        """The content of ``truth.json``: config, its hash, counts and regime time fractions."""
        tape = self.tape
        regime_counts = np.bincount(self.path["regime"].to_numpy(), minlength=_REGIME_COUNT)
        return {
            "kind": "SynthConfig",
            "config": self.config.to_dict(),
            "config_hash": self.config.hash_id,
            "counts": {
                "events": len(tape),
                "book_rows": tape.count(EventKind.BOOK),
                "trades": tape.count(EventKind.TRADE),
                "funding": tape.count(EventKind.FUNDING),
                "asset_ctx": tape.count(EventKind.ASSET_CTX),
                "steps": len(self.path),
                "orders": len(self.orders),
                "informed_orders": int(self.orders["informed"].sum()),
            },
            "regime_time_fractions": {
                Regime(r).name.lower(): float(regime_counts[r] / max(1, len(self.path))) for r in range(_REGIME_COUNT)
            },
        }

    def write(self, directory: str | Path) -> Path:
        """Write ``tape.parquet``, ``truth_path.parquet``, ``truth_orders.parquet`` and
        ``truth.json`` into ``directory`` (created if needed); return the directory."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_tape(self.tape, directory / TAPE_FILE)
        for name, frame in ((PATH_FILE, self.path), (ORDERS_FILE, self.orders)):
            temporary = directory / (name + ".tmp")
            frame.to_parquet(temporary, index=False)
            temporary.replace(directory / name)
        temporary = directory / (TRUTH_FILE + ".tmp")
        temporary.write_text(json.dumps(self.truth(), indent=2, sort_keys=True) + "\n")
        temporary.replace(directory / TRUTH_FILE)
        return directory


def generate(config: SynthConfig) -> SyntheticMarket:
    """Generate the synthetic market ``config`` describes (a deterministic function of it).

    Parameters
    ----------
    config : SynthConfig
        The model's parameters and the seed.

    Returns
    -------
    SyntheticMarket
        The tape and the truth that generated it.
    """
    if not isinstance(config, SynthConfig):
        raise TypeError(f"generate expects a SynthConfig, got {type(config).__name__}")
    tape, path, orders = _Simulator(config).run()
    return SyntheticMarket(config=config, tape=tape, path=path, orders=orders)


def load_synthetic(directory: str | Path) -> SyntheticMarket:
    """Read a market written by :meth:`SyntheticMarket.write`.

    Raises
    ------
    SynthError
        Naming the file (and field) that is missing or inconsistent.
    mmlab.data.tape.TapeError, mmlab.config.ConfigError
        For a bad tape or a bad config inside ``truth.json``, naming the file.
    """
    directory = Path(directory)
    for name in (TRUTH_FILE, TAPE_FILE, PATH_FILE, ORDERS_FILE):
        if not (directory / name).is_file():
            raise SynthError(
                f"{directory / name}: no such file (a synthetic market directory holds "
                f"{TAPE_FILE}, {PATH_FILE}, {ORDERS_FILE} and {TRUTH_FILE})"
            )
    truth_path = directory / TRUTH_FILE
    try:
        truth = json.loads(truth_path.read_text())
    except json.JSONDecodeError as err:
        raise SynthError(f"{truth_path}: line {err.lineno}: not valid JSON ({err.msg})") from None
    if not isinstance(truth, dict):
        raise SynthError(f"{truth_path}: expected a JSON object, got {type(truth).__name__}")
    for name in ("config", "config_hash", "counts"):
        if name not in truth:
            raise SynthError(f"{truth_path}: missing field {name!r}")
    config = SynthConfig.from_dict(truth["config"], where=f"{truth_path}: config")
    if config.hash_id != truth["config_hash"]:
        raise SynthError(
            f"{truth_path}: field 'config_hash' is {truth['config_hash']!r} but the config hashes to {config.hash_id!r}"
        )
    tape = read_tape(directory / TAPE_FILE)
    path = _read_frame(directory / PATH_FILE, PATH_COLUMNS)
    orders = _read_frame(directory / ORDERS_FILE, ORDER_COLUMNS)
    market = SyntheticMarket(config=config, tape=tape, path=path, orders=orders)
    counts = truth["counts"]
    for name, value in market.truth()["counts"].items():
        if counts.get(name) != value:
            raise SynthError(f"{truth_path}: field 'counts.{name}' is {counts.get(name)!r}, but the files hold {value!r}")
    return market


def _read_frame(path: Path, schema: dict[str, str]) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for a corrupt file
        raise SynthError(f"{path}: not a readable parquet file: {err}") from None
    for name, dtype in schema.items():
        if name not in frame.columns:
            raise SynthError(f"{path}: missing column {name!r}")
        if str(frame[name].dtype) != dtype:
            raise SynthError(f"{path}: column {name!r} has dtype {frame[name].dtype}, expected {dtype}")
    return frame[list(schema)].reset_index(drop=True)
