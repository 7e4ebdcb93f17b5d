"""The coordinator: one quote cycle through the six stages.

The same object runs in the backtester, on the paper venue and live: it takes one
:class:`~mmlab.types.VenueUpdate` and returns the order actions to send, plus every intermediate
message so that a notebook or a test can look inside the cycle. Stages talk only through the
messages in :mod:`mmlab.types`; the evaluator's :class:`ParameterUpdates` reach the filter and the
actuary on the next cycle, through here and nowhere else.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from mmlab.actuary import Actuary, GlftActuary
from mmlab.config import FilterConfig, StrategyConfig
from mmlab.evaluator import Evaluator, MarkoutEvaluator
from mmlab.executor import Executor, LadderExecutor
from mmlab.filter import Filter, LatentStateFilter
from mmlab.governor import Governor, InventoryGovernor
from mmlab.sensor import MicrostructureSensor, Sensor
from mmlab.types import (
    MarketBelief,
    Observation,
    OrderAction,
    ParameterUpdates,
    PricingSurface,
    QuoteSet,
    RiskBudget,
    VenueUpdate,
)

__all__ = ["Pipeline", "CycleOutput", "STAGES"]

STAGES = ("sensor", "filter", "governor", "actuary", "executor", "evaluator")


@dataclass(frozen=True, slots=True, kw_only=True)
class CycleOutput:
    """Everything one cycle produced; ``belief`` and later are None before the first mid."""

    ts_local: int
    observations: tuple[Observation, ...]
    belief: MarketBelief | None
    budget: RiskBudget | None
    surface: PricingSurface | None
    quotes: QuoteSet
    actions: tuple[OrderAction, ...]
    updates: ParameterUpdates


class Pipeline:
    """Sensor → filter → governor → actuary → executor, with the evaluator's feedback."""

    def __init__(
        self,
        *,
        sensor: Sensor,
        filter: Filter,
        governor: Governor,
        actuary: Actuary,
        executor: Executor,
        evaluator: Evaluator,
        funding_interval_s: float = 3600.0,
    ) -> None:
        self.sensor, self.filter, self.governor = sensor, filter, governor
        self.actuary, self.executor, self.evaluator = actuary, executor, evaluator
        self.funding_interval_s = funding_interval_s
        self.updates: ParameterUpdates | None = None
        #: when ``timed`` is on, each cycle appends {stage: nanoseconds} here (cycle benchmark)
        self.timed = False
        self.stage_ns: list[dict[str, int]] = []

    @classmethod
    def from_config(cls, config: StrategyConfig, *, funding_interval_s: float = 3600.0) -> "Pipeline":
        return cls(
            sensor=MicrostructureSensor(config.sensor),
            filter=LatentStateFilter(_filter_config(config)),
            governor=InventoryGovernor(config.governor),
            actuary=GlftActuary(config.actuary),
            executor=LadderExecutor(
                config.instrument,
                config.executor,
                levels=config.actuary.levels,
                gamma_beta=config.governor.gamma_beta,
                impact_beta=config.actuary.impact_beta,
            ),
            evaluator=MarkoutEvaluator(config.evaluator),
            funding_interval_s=funding_interval_s,
        )

    def cycle(self, update: VenueUpdate) -> CycleOutput:
        """One quote cycle: observe, believe, budget, price, size, reconcile, evaluate."""
        clock = _Clock(self)
        observations = self.sensor.observe(update)
        clock.lap("sensor")
        belief = self.filter.step(update.ts_local, observations, update.fills, self.updates)
        clock.lap("filter")
        budget = surface = None
        quotes = QuoteSet(ts_local=update.ts_local, bids=(), asks=())
        if belief is not None:
            budget = self.governor.budget(
                belief, update.position, update.funding_rate, self.funding_interval_s, self.updates
            )
            clock.lap("governor")
            surface = self.actuary.price(belief, budget, update.book, self.updates)
            clock.lap("actuary")
            quotes = self.executor.quotes(surface, budget, update.book)
        actions = self.executor.reconcile(quotes, update.open_orders, update.pending_cancels, budget)
        if budget is not None and surface is not None:
            # the unwind policy sizes its taker order from the room this cycle's reconcile left
            actions = actions + self.executor.unwind(surface, budget, update.book)
        clock.lap("executor")
        self.updates = self.evaluator.evaluate(update, surface, quotes)
        clock.lap("evaluator")
        clock.record()
        return CycleOutput(
            ts_local=update.ts_local,
            observations=observations,
            belief=belief,
            budget=budget,
            surface=surface,
            quotes=quotes,
            actions=actions,
            updates=self.updates,
        )


def _filter_config(config: StrategyConfig) -> FilterConfig:
    """The filter's settings with what the sensor's calibration fitted for it."""
    calibration = config.sensor.calibration
    if calibration is None:
        return config.filter
    return config.filter.calibrated(calibration)


class _Clock:
    """Times each stage of one cycle when the pipeline's ``timed`` flag is on; free otherwise."""

    __slots__ = ("pipeline", "last", "laps")

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.laps: dict[str, int] | None = dict.fromkeys(STAGES, 0) if pipeline.timed else None
        self.last = time.perf_counter_ns() if pipeline.timed else 0

    def lap(self, stage: str) -> None:
        if self.laps is not None:
            now = time.perf_counter_ns()
            self.laps[stage] += now - self.last
            self.last = now

    def record(self) -> None:
        if self.laps is not None:
            self.pipeline.stage_ns.append(self.laps)
