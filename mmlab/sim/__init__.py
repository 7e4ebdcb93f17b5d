"""Backtester: the simulated venue (matching, queue position, latency, fees, funding)."""

from mmlab.sim.venue import FundingPayment, SimVenue

__all__ = ["SimVenue", "FundingPayment"]
