"""The one place for unit conversions and venue-grid rounding.

Hyperliquid perpetual price grid
--------------------------------
A perp price is valid when it has at most 5 significant figures **and** at most
``6 - szDecimals`` decimals; an integer price is always valid whatever its number of digits.
For a price p > 0 the number of decimals the 5-significant-figure rule allows is
``4 - floor(log10 p)``, so the price tick is

    decimals(p) = clamp(min(4 - floor(log10 p), 6 - szDecimals), 0, ∞)
    tick(p)     = 10 ** -decimals(p)

The tick depends on the price's magnitude, so rounding is done within the decade of the input:
a bid rounds down (never up across the touch), an ask rounds up. Rounding an ask up can reach the
next power of ten, which is itself a valid (integer or shorter) price. Sizes round to
``szDecimals`` decimals, down by default so a cap is never exceeded.
"""

from __future__ import annotations

import math

__all__ = [
    "NS_PER_S",
    "BPS_PER_UNIT",
    "PERP_MAX_DECIMALS",
    "MAX_SIG_FIGS",
    "bps_to_frac",
    "frac_to_bps",
    "ns_to_s",
    "s_to_ns",
    "price_decimals",
    "price_tick",
    "round_price",
    "round_bid",
    "round_ask",
    "round_size",
    "price_below",
    "price_above",
    "is_valid_price",
    "round_to_tick",
    "is_on_tick",
    "is_valid_size",
]

NS_PER_S = 1_000_000_000
BPS_PER_UNIT = 10_000.0
#: Hyperliquid perps: price decimals are capped at 6 - szDecimals.
PERP_MAX_DECIMALS = 6
#: Significant figures a non-integer Hyperliquid price may have.
MAX_SIG_FIGS = 5
# Ticks are counted after scaling by 10**decimals; this guards against 0.3 / 0.1 = 2.9999...
_ROUNDING_SLACK = 1e-9


def bps_to_frac(bps: float) -> float:
    """Basis points to a fraction: 1 bps = 1e-4."""
    return bps / BPS_PER_UNIT


def frac_to_bps(frac: float) -> float:
    """Fraction to basis points."""
    return frac * BPS_PER_UNIT


def ns_to_s(ns: int | float) -> float:
    """Integer nanoseconds to float seconds."""
    return ns / NS_PER_S


def s_to_ns(seconds: float) -> int:
    """Float seconds to integer nanoseconds (rounded to the nearest ns)."""
    return int(round(seconds * NS_PER_S))


def _check_sz_decimals(sz_decimals: int) -> None:
    if not 0 <= sz_decimals <= PERP_MAX_DECIMALS:
        raise ValueError(f"sz_decimals must be in [0, {PERP_MAX_DECIMALS}], got {sz_decimals}")


def price_decimals(price: float, sz_decimals: int) -> int:
    """Decimals a perp price of this magnitude may carry on Hyperliquid."""
    _check_sz_decimals(sz_decimals)
    if not (price > 0.0 and math.isfinite(price)):
        raise ValueError(f"price must be positive and finite, got {price!r}")
    magnitude = math.floor(math.log10(price))
    return max(0, min(MAX_SIG_FIGS - 1 - magnitude, PERP_MAX_DECIMALS - sz_decimals))


def price_tick(price: float, sz_decimals: int) -> float:
    """Grid step (USD) for prices of this magnitude."""
    return 10.0 ** -price_decimals(price, sz_decimals)


def round_price(price: float, sz_decimals: int, *, up: bool) -> float:
    """Round ``price`` onto the grid: up (asks) or down (bids)."""
    decimals = price_decimals(price, sz_decimals)
    scale = 10.0**decimals
    scaled = price * scale
    ticks = math.ceil(scaled - _ROUNDING_SLACK) if up else math.floor(scaled + _ROUNDING_SLACK)
    rounded = round(ticks / scale, decimals)
    if rounded <= 0.0:
        raise ValueError(f"price {price!r} rounds to {rounded!r}, below the grid")
    return rounded


def round_bid(price: float, sz_decimals: int) -> float:
    """Largest valid price at or below ``price`` (a bid never rounds up toward the ask)."""
    return round_price(price, sz_decimals, up=False)


def round_ask(price: float, sz_decimals: int) -> float:
    """Smallest valid price at or above ``price`` (an ask never rounds down toward the bid)."""
    return round_price(price, sz_decimals, up=True)


def round_size(size: float, sz_decimals: int, *, up: bool = False) -> float:
    """Round a size in coins to ``sz_decimals`` decimals, down unless ``up``."""
    _check_sz_decimals(sz_decimals)
    scale = 10.0**sz_decimals
    scaled = size * scale
    units = math.ceil(scaled - _ROUNDING_SLACK) if up else math.floor(scaled + _ROUNDING_SLACK)
    return round(units / scale, sz_decimals)


def price_below(price: float, sz_decimals: int) -> float:
    """Largest valid price strictly below ``price`` (where a post-only bid may rest)."""
    # the tick just below may be finer than at ``price`` when ``price`` is a power of ten
    tick_below = price_tick(price * (1.0 - 1e-9), sz_decimals)
    return round_bid(price - 0.5 * tick_below, sz_decimals)


def price_above(price: float, sz_decimals: int) -> float:
    """Smallest valid price strictly above ``price`` (where a post-only ask may rest)."""
    return round_ask(price + 0.5 * price_tick(price, sz_decimals), sz_decimals)


def _tick_decimals(tick: float) -> int:
    text = f"{tick:.12f}".rstrip("0")
    return len(text.partition(".")[2])


def round_to_tick(price: float, tick: float, *, up: bool) -> float:
    """Round onto a fixed grid of ``tick`` (venues other than Hyperliquid): up for asks, down for bids."""
    if not (tick > 0.0 and math.isfinite(tick)):
        raise ValueError(f"tick must be positive and finite, got {tick!r}")
    scaled = price / tick
    ticks = math.ceil(scaled - _ROUNDING_SLACK) if up else math.floor(scaled + _ROUNDING_SLACK)
    rounded = round(ticks * tick, _tick_decimals(tick))
    if rounded <= 0.0:
        raise ValueError(f"price {price!r} rounds to {rounded!r}, below the grid")
    return rounded


def is_on_tick(price: float, tick: float) -> bool:
    """True when ``price`` is a positive multiple of ``tick``."""
    if not (price > 0.0 and math.isfinite(price)):
        return False
    scaled = price / tick
    return abs(scaled - round(scaled)) <= 1e-6


def is_valid_price(price: float, sz_decimals: int) -> bool:
    """True when ``price`` is exactly on Hyperliquid's perp price grid."""
    if not (price > 0.0 and math.isfinite(price)):
        return False
    if float(price).is_integer():
        return True
    decimals = price_decimals(price, sz_decimals)
    scaled = price * 10.0**decimals
    return abs(scaled - round(scaled)) <= _ROUNDING_SLACK * max(1.0, abs(scaled))


def is_valid_size(size: float, sz_decimals: int) -> bool:
    """True when ``size`` has at most ``sz_decimals`` decimals and is positive."""
    if not (size > 0.0 and math.isfinite(size)):
        return False
    scaled = size * 10.0**sz_decimals
    return abs(scaled - round(scaled)) <= _ROUNDING_SLACK * max(1.0, abs(scaled))
