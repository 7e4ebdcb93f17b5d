"""The venue protocol: what the backtester, the paper venue and Hyperliquid all provide.

The coordinator cannot tell the implementations apart: it polls for a :class:`VenueUpdate`
and submits :class:`OrderAction` lists, always stamped with local time in ns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from mmlab.config import InstrumentSpec
from mmlab.types import OrderAction, VenueUpdate

__all__ = ["Venue", "AccountState"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountState:
    """Cash-and-position accounting of one instrument, all money in USD.

    ``cash_usd`` already includes fees and funding; equity is ``cash_usd + position * mark``.
    """

    position: float
    cash_usd: float
    fees_usd: float
    funding_usd: float
    volume_usd: float
    fills: int

    def equity_usd(self, mark_price: float) -> float:
        return self.cash_usd + self.position * mark_price


class Venue(Protocol):
    """A place to quote: simulated, paper, or Hyperliquid."""

    instrument: InstrumentSpec

    def poll(self, ts_local: int) -> VenueUpdate:
        """Deliver everything that reached us up to local time ``ts_local``."""
        ...

    def submit(self, actions: Sequence[OrderAction], ts_local: int) -> Sequence[int]:
        """Send order actions stamped with local time ``ts_local``; return the new orders' ids."""
        ...

    def account(self) -> AccountState:
        """Our position and cash as the venue books them."""
        ...
