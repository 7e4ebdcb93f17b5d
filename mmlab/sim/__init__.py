"""Backtester: the simulated venue (matching, queue position, latency, fees, funding)."""

from mmlab.sim.models import (
    ConstantLatency,
    EmpiricalLatency,
    FeeSchedule,
    ProbabilisticQueue,
    RiskAverseQueue,
    fee_schedule_for_tier,
)
from mmlab.sim.venue import FundingPayment, SimVenue, SimVenueBuilder

__all__ = [
    "SimVenue",
    "SimVenueBuilder",
    "FundingPayment",
    "RiskAverseQueue",
    "ProbabilisticQueue",
    "ConstantLatency",
    "EmpiricalLatency",
    "FeeSchedule",
    "fee_schedule_for_tier",
]
