"""Messages passed between the six stages of the quote cycle.

Every message is a frozen, slotted, keyword-only dataclass. Arrays inside messages are
read-only numpy arrays, sequences are tuples, so a message cannot be changed after it is made.

Conventions
-----------
- ``ts_*`` fields are integer nanoseconds since the Unix epoch (UTC). ``ts_exch`` is the
  venue's time, ``ts_local`` the time our process saw (or will see) the event.
- A derived message carries ``ts_local`` of the input that caused it, so nothing downstream can
  look ahead of the data it was computed from.
- Prices and sizes are floats in quote currency (USD/USDC) and base units (coins) until the
  executor snaps them to the venue grid. Price-relative quantities end in ``_bps``.
- Sides are ``Side.BUY`` (+1, bid) and ``Side.SELL`` (-1, ask), so ``int(side)`` is the sign of
  the position change a fill causes.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Side",
    "StateComponent",
    "Regime",
    "L2Book",
    "Trade",
    "Fill",
    "Observation",
    "MarketBelief",
    "RiskBudget",
    "LevelPricing",
    "PricingSurface",
    "Quote",
    "QuoteSet",
    "OrderAction",
    "ActionKind",
    "ParameterUpdates",
    "OpenOrder",
    "VenueUpdate",
    "MARKOUT_HORIZONS_S",
    "readonly",
]

MESSAGE = dict(frozen=True, slots=True, kw_only=True)

#: Horizons at which the evaluator marks every fill to the market, seconds.
MARKOUT_HORIZONS_S: tuple[float, ...] = (1.0, 5.0, 10.0, 30.0, 60.0, 300.0)


class Side(enum.IntEnum):
    """Side of an order or of a trade's aggressor; the value is the sign of Δposition."""

    BUY = 1
    SELL = -1

    @property
    def opposite(self) -> "Side":
        return Side(-int(self))


class StateComponent(enum.IntEnum):
    """Component of the filter state ``x = [ln V, μ, ln σ]`` that an observation measures."""

    LOG_FAIR_VALUE = 0  # ln V, V in USD
    DRIFT = 1  # μ, d ln V / dt, per second
    LOG_VOL = 2  # ln σ, σ the diffusion of ln V, per sqrt(second)


class Regime(enum.IntEnum):
    """Market regimes used by the synthetic market and the filter."""

    QUIET = 0
    TRENDING = 1
    CRISIS = 2


def readonly(values: object, dtype: type = np.float64) -> np.ndarray:
    """Return a read-only contiguous array copy of ``values``."""
    array = np.array(values, dtype=dtype, copy=True)
    array.setflags(write=False)
    return array


def _require_finite(owner: str, **values: float) -> None:
    for name, value in values.items():
        if not math.isfinite(value):
            raise ValueError(f"{owner}.{name} must be finite, got {value!r}")


@dataclass(**MESSAGE)
class L2Book:
    """Top of an L2 order book, best level first on each side.

    Parameters
    ----------
    ts_exch, ts_local : int
        Venue time and local receive time of the last update, ns.
    bid_px, bid_sz, ask_px, ask_sz : np.ndarray
        Level prices (USD) and sizes (coins); read-only, best first. Bid prices strictly
        decrease, ask prices strictly increase.
    """

    ts_exch: int
    ts_local: int
    bid_px: np.ndarray
    bid_sz: np.ndarray
    ask_px: np.ndarray
    ask_sz: np.ndarray

    @classmethod
    def from_levels(
        cls,
        *,
        ts_exch: int,
        ts_local: int,
        bid_px: object,
        bid_sz: object,
        ask_px: object,
        ask_sz: object,
    ) -> "L2Book":
        """Build a book from any sequences, copying them into read-only arrays."""
        return cls(
            ts_exch=int(ts_exch),
            ts_local=int(ts_local),
            bid_px=readonly(bid_px),
            bid_sz=readonly(bid_sz),
            ask_px=readonly(ask_px),
            ask_sz=readonly(ask_sz),
        )

    @property
    def has_both_sides(self) -> bool:
        return self.bid_px.size > 0 and self.ask_px.size > 0

    @property
    def best_bid(self) -> float:
        return float(self.bid_px[0]) if self.bid_px.size else math.nan

    @property
    def best_ask(self) -> float:
        return float(self.ask_px[0]) if self.ask_px.size else math.nan

    @property
    def mid(self) -> float:
        return 0.5 * (self.best_bid + self.best_ask)

    @property
    def spread_bps(self) -> float:
        return (self.best_ask - self.best_bid) / self.mid * 1e4

    @property
    def is_crossed(self) -> bool:
        """True when the best bid is at or above the best ask (crossed or locked)."""
        return self.has_both_sides and self.best_bid >= self.best_ask

    def depth(self, side: Side, levels: int | None = None) -> float:
        """Total displayed size (coins) on one side over the first ``levels`` levels."""
        sizes = self.bid_sz if side is Side.BUY else self.ask_sz
        return float(sizes[:levels].sum())


@dataclass(**MESSAGE)
class Trade:
    """One print on the tape; ``aggressor`` is the taker's side (BUY lifted the ask).

    ``buyer`` and ``seller`` are the two parties' addresses where the venue publishes them
    (Hyperliquid), else None.
    """

    ts_exch: int
    ts_local: int
    price: float
    size: float
    aggressor: Side
    trade_id: int = 0
    buyer: str | None = None
    seller: str | None = None

    @property
    def taker(self) -> str | None:
        """Address of the aggressor (the buyer of a buyer-initiated trade), None if unknown."""
        return self.buyer if self.aggressor == Side.BUY else self.seller

    @property
    def maker(self) -> str | None:
        """Address of the resting side, None if unknown."""
        return self.seller if self.aggressor == Side.BUY else self.buyer


@dataclass(**MESSAGE)
class Fill:
    """One fill of one of our orders.

    ``fee_usd`` is what we paid (negative for a rebate); ``is_maker`` is False only for orders
    that took liquidity.
    """

    ts_exch: int
    ts_local: int
    order_id: int
    side: Side
    price: float
    size: float
    fee_usd: float
    is_maker: bool = True

    @property
    def notional_usd(self) -> float:
        return self.price * self.size


@dataclass(**MESSAGE)
class Observation:
    """One measurement ``z`` of one state component with noise variance ``noise_var``.

    Units follow the component: ln USD for ``LOG_FAIR_VALUE``, 1/s for ``DRIFT``, ln(1/sqrt(s))
    for ``LOG_VOL``; ``noise_var`` is in the square of that unit.
    """

    ts_local: int
    component: StateComponent
    value: float
    noise_var: float
    source: str

    def __post_init__(self) -> None:
        _require_finite("Observation", value=self.value, noise_var=self.noise_var)
        if self.noise_var <= 0.0:
            raise ValueError(f"Observation.noise_var must be > 0 (source {self.source})")


@dataclass(**MESSAGE)
class MarketBelief:
    """The filter's posterior over the latent state at ``ts_local``.

    ``fair_value`` is V̂ in USD (the exponential of the posterior mean of ln V), never the
    exchange mid. ``log_fair_value_var`` is the posterior variance of ln V, so the 1-sigma band
    in bps is ``1e4 * sqrt(log_fair_value_var)``.
    """

    ts_local: int
    fair_value: float
    log_fair_value_var: float
    drift_per_s: float
    drift_var: float
    sigma_per_sqrt_s: float
    log_sigma_var: float
    regime_probs: tuple[float, float, float] = (1.0, 0.0, 0.0)
    informed_fraction: float = 0.0

    def __post_init__(self) -> None:
        _require_finite(
            "MarketBelief",
            fair_value=self.fair_value,
            log_fair_value_var=self.log_fair_value_var,
            drift_per_s=self.drift_per_s,
            drift_var=self.drift_var,
            sigma_per_sqrt_s=self.sigma_per_sqrt_s,
            log_sigma_var=self.log_sigma_var,
        )
        if self.fair_value <= 0.0:
            raise ValueError(f"MarketBelief.fair_value must be > 0, got {self.fair_value}")

    @property
    def fair_value_std_bps(self) -> float:
        return 1e4 * math.sqrt(self.log_fair_value_var)

    @property
    def sigma_bps_per_sqrt_s(self) -> float:
        return 1e4 * self.sigma_per_sqrt_s


@dataclass(**MESSAGE)
class RiskBudget:
    """What the governor allows at ``ts_local`` for the current position.

    ``gamma_per_usd`` is γ(q), the absolute (CARA) risk aversion in 1/USD.
    ``max_buy_size`` / ``max_sell_size`` are how many coins may still be bought / sold before the
    position or notional cap binds. ``funding_carry_bps`` is the expected funding cost of holding
    one unit long over the holding horizon, in bps of price (negative when longs are paid).
    ``kelly_notional_usd`` is S*, the growth-optimal exposure scaled by ``kelly_fraction`` (which
    depends on the regime probabilities): no side of the ladder may take |position| beyond
    S* / V̂. ``urgency`` ≥ 0 (dimensionless, 0 when flat in a quiet market) says how much the
    position and the regime call for acting now; the reconciler's price tolerance shrinks with
    it. ``predicted_funding_rate`` is the governor's forecast of the next settlement's rate
    (fraction per funding interval).
    """

    ts_local: int
    position: float
    gamma_per_usd: float
    q_max: float
    max_buy_size: float
    max_sell_size: float
    max_order_size: float
    funding_carry_bps: float
    marginal_cost_bps: float
    holding_horizon_s: float
    kelly_notional_usd: float = math.inf
    kelly_fraction: float = 1.0
    urgency: float = 0.0
    predicted_funding_rate: float = 0.0


@dataclass(**MESSAGE)
class LevelPricing:
    """Economics of one resting quote at ``price`` on ``side``.

    ``depth_bps`` is the distance from V̂; ``fill_prob`` the probability of at least one fill
    over the quote's life; ``expected_pnl_bps`` = fill_prob × (edge − adverse selection −
    impact − fees − carry), per unit notional. ``theta_bps_per_s`` is the spread income rate
    (fill intensity × edge) and ``gamma_bps`` the adverse-selection exposure (fill probability ×
    adverse selection), both per unit notional.
    """

    side: Side
    level: int
    price: float
    depth_bps: float
    fill_prob: float
    edge_bps: float
    adverse_selection_bps: float
    impact_bps: float
    fee_bps: float
    carry_bps: float
    expected_pnl_bps: float
    theta_bps_per_s: float = 0.0
    gamma_bps: float = 0.0


@dataclass(**MESSAGE)
class PricingSurface:
    """The actuary's output: a reservation price and per-level economics on both sides.

    ``fair_value`` and ``sigma_per_sqrt_s`` are the V̂ and σ̂ the prices were computed from.
    ``option_floor_bps`` and ``informed_floor_bps`` are the two floors on a quote's depth from V̂;
    ``intensity_*_per_s`` (A, fills per second at depth 0) and ``decay_*_per_bps`` (κ) are the fill
    intensity Λ(δ) = A e^{−κ δ} each side was priced with.
    """

    ts_local: int
    fair_value: float
    sigma_per_sqrt_s: float
    reservation_price: float
    half_spread_bps: float
    skew_bps: float
    bids: tuple[LevelPricing, ...]
    asks: tuple[LevelPricing, ...]
    option_floor_bps: float = 0.0
    informed_floor_bps: float = 0.0
    intensity_bid_per_s: float = math.nan
    intensity_ask_per_s: float = math.nan
    decay_bid_per_bps: float = math.nan
    decay_ask_per_bps: float = math.nan


@dataclass(**MESSAGE)
class Quote:
    """One order we want resting: price on the venue grid, size in coins.

    ``tolerance_scale`` multiplies the reconciler's price tolerance for this quote: a level that
    fills rarely loses little expected PnL when it rests a little off its target, so it is
    repriced less often (the executor sets it from the level's fill probability).
    """

    side: Side
    price: float
    size: float
    level: int = 0
    tolerance_scale: float = 1.0


@dataclass(**MESSAGE)
class QuoteSet:
    """The executor's target ladder; bids best (highest) first, asks best (lowest) first."""

    ts_local: int
    bids: tuple[Quote, ...]
    asks: tuple[Quote, ...]

    @property
    def all(self) -> tuple[Quote, ...]:
        return self.bids + self.asks


class ActionKind(enum.Enum):
    """What an :class:`OrderAction` asks the venue to do.

    - ``PLACE``: a new post-only limit order.
    - ``CANCEL``: cancel ``order_id``.
    - ``MODIFY``: replace ``order_id``'s price and size in one message (it keeps its id and
      loses its queue place, as a cancel and a new order would, without the gap between them).
    - ``TAKE``: an immediate-or-cancel order that crosses the book up to ``price`` (a taker
      order, used only by the unwind policy); what does not fill at once is cancelled.
    """

    PLACE = "place"
    CANCEL = "cancel"
    MODIFY = "modify"
    TAKE = "take"


@dataclass(**MESSAGE)
class OrderAction:
    """An instruction to a venue (see :class:`ActionKind`); ``order_id`` for CANCEL and MODIFY."""

    kind: ActionKind
    side: Side
    price: float
    size: float
    order_id: int = 0


@dataclass(**MESSAGE)
class ParameterUpdates:
    """What the evaluator learned from fills, sent to the filter and actuary.

    ``markout_bps`` holds the mean markout at each of ``MARKOUT_HORIZONS_S`` (positive is good
    for us; NaN where no fill has matured). ``adverse_selection_bps`` is the estimated
    post-fill drift against us that the actuary charges each quote. ``informed_fraction`` is an
    estimate of π for the filter, None while the evaluator has none. ``spread_adjust_bps`` is
    the multiplicative-weights spread adjustment the actuary adds to both depths.
    ``changepoint_prob`` is the posterior probability that the market's regime changed within
    the last few seconds (Bayesian online change-point detection); the filter widens its regime
    and state uncertainty by it. ``counterfactual_pnl_bps`` is the cumulative counterfactual
    PnL of each candidate spread adjustment the evaluator weighs, per unit notional.
    ``fee_bps`` is the size-weighted mean fee of the marked fills per unit notional, so
    ``markout_bps − fee_bps`` is the net edge the fills earned.
    """

    ts_local: int
    fills_marked: int
    markout_bps: tuple[float, ...] = field(
        default_factory=lambda: tuple(math.nan for _ in MARKOUT_HORIZONS_S)
    )
    adverse_selection_bps: float = 0.0
    spread_adjust_bps: float = 0.0
    informed_fraction: float | None = None
    changepoint_prob: float = 0.0
    counterfactual_pnl_bps: tuple[float, ...] = ()
    fee_bps: float = 0.0


@dataclass(**MESSAGE)
class OpenOrder:
    """One of our resting (or in-flight) orders as the strategy knows it."""

    order_id: int
    side: Side
    price: float
    size: float
    ts_local_sent: int


@dataclass(**MESSAGE)
class VenueUpdate:
    """Everything a venue reports to the strategy at local time ``ts_local``.

    ``book`` is the latest book our feed has delivered (None before the first one); ``trades``
    and ``fills`` are what arrived since the previous update. ``open_orders`` are the orders the
    strategy believes are live (placed, not known filled, not cancelled by us);
    ``pending_cancels`` are orders we asked to cancel whose cancel is not yet confirmed: they may
    still fill, so they count toward worst-case exposure.
    """

    ts_local: int
    book: L2Book | None
    trades: tuple[Trade, ...]
    fills: tuple[Fill, ...]
    position: float
    open_orders: tuple[OpenOrder, ...]
    funding_rate: float = 0.0
    mark_price: float = float("nan")
    pending_cancels: tuple[OpenOrder, ...] = ()
    #: coins, from the latest asset context (NaN before any or where the venue has none)
    open_interest: float = float("nan")
