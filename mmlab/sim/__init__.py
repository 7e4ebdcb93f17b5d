"""Backtester: the simulated venue (matching, queue position, latency, fees, funding).

:class:`SimVenue` is the readable reference; :class:`FastSimVenue` (:mod:`mmlab.sim.engine`) runs
the same rules compiled with numba and is what ``SimConfig.engine = "compiled"`` (the default)
builds. The engine module, and numba with it, is imported only when first used.
"""

from typing import Any

from mmlab.sim.models import (
    ConstantLatency,
    EmpiricalLatency,
    FeeSchedule,
    ProbabilisticQueue,
    RecordedFeedLatency,
    RiskAverseQueue,
    fee_schedule_for_tier,
)
from mmlab.sim.venue import FundingPayment, SimVenue, SimVenueBuilder, make_sim_venue

__all__ = [
    "SimVenue",
    "SimVenueBuilder",
    "FastSimVenue",
    "make_sim_venue",
    "run_fixed_spread",
    "FundingPayment",
    "RiskAverseQueue",
    "ProbabilisticQueue",
    "ConstantLatency",
    "EmpiricalLatency",
    "RecordedFeedLatency",
    "FeeSchedule",
    "fee_schedule_for_tier",
]

_ENGINE_NAMES = ("FastSimVenue", "run_fixed_spread")


def __getattr__(name: str) -> Any:
    if name in _ENGINE_NAMES:
        from mmlab.sim import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'mmlab.sim' has no attribute {name!r}")
